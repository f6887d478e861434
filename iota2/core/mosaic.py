"""Mosaic of tile rasters into one file, shared by the builders (class maps, validity, feature maps)."""

from __future__ import annotations

import shutil
from pathlib import Path

import rasterio
from rasterio.merge import merge

from iota2.core.raster import atomic_output


def mosaic_files(sources: list[Path], target: Path, dtype: str, compress: str, nodata=0,
                 colormap: dict | None = None, band_descriptions: list[str] | None = None) -> None:
    """Merge rasters on one CRS and resolution (first source wins where they overlap), atomically.

    A single source already in the output's layout (one tile: the common case) is copied, not decoded and
    compressed again. Rasters of several bands are merged band by band (rasterio merges by blocks, so the
    memory used does not grow with the mosaic).

    Parameters
    ----------
    sources
        The tile rasters, all with the same number of bands.
    target
        The mosaic (written under a temporary name, renamed when complete).
    dtype
        Pixel type of the mosaic.
    compress
        ``chain.compression_algorithm`` (``"NONE"`` for none).
    nodata
        Value of the pixels no source covers (and of the sources' pixels to ignore).
    colormap
        Palette of band 1, or None.
    band_descriptions
        One description per band (e.g. feature names), or None to keep none.
    """
    datasets = [rasterio.open(path) for path in sources]
    try:
        profile = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER",
                   "dtype": dtype}
        if compress.upper() != "NONE":
            profile["compress"] = compress.lower()
        with atomic_output(target) as tmp:
            if len(datasets) == 1 and _same_layout(datasets[0], profile):
                shutil.copyfile(sources[0], tmp)
                with rasterio.open(tmp, "r+") as dst:
                    dst.nodata = nodata
            else:
                merge(datasets, nodata=nodata, method="first", dst_path=tmp, dst_kwds=profile)
            if colormap or band_descriptions:
                with rasterio.open(tmp, "r+") as dst:
                    if colormap:
                        dst.write_colormap(1, colormap)
                    for index, description in enumerate(band_descriptions or [], start=1):
                        dst.set_band_description(index, description)
    finally:
        for dataset in datasets:
            dataset.close()


def _same_layout(dataset, profile: dict) -> bool:
    """Whether ``dataset`` is a GeoTIFF with the type, tiling and compression of ``profile``."""
    source = dataset.profile
    return (source["driver"] == "GTiff" and source["dtype"] == profile["dtype"] and bool(source.get("tiled"))
            and source.get("blockxsize") == profile["blockxsize"] and source.get("blockysize") == profile["blockysize"]
            and str(source.get("compress") or "none").lower() == str(profile.get("compress") or "none").lower()
            and dataset.colorinterp[0].name != "palette")
