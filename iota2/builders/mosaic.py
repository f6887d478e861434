"""Mosaic tasks: tiles of one run assembled into ``final/`` (label, confidence, colour-indexed map,
probabilities) and the pixel validity map."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.merge import merge

from iota2.core.config import Config
from iota2.core.layout import OutputLayout
from iota2.core.nomenclature import read_color_table
from iota2.core.raster import atomic_output, label_dtype

LOGGER = logging.getLogger(__name__)


def mosaic_files(sources: list[Path], target: Path, dtype: str, compress: str, nodata=0,
                 colormap: dict | None = None) -> None:
    """Merge rasters on one CRS and resolution (first source wins where they overlap), atomically.

    A single source already in the output's layout (one tile: the common case) is copied, not decoded and
    compressed again."""
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
            if colormap:
                with rasterio.open(tmp, "r+") as dst:
                    dst.write_colormap(1, colormap)
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


def default_colormap(labels: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """A distinct colour per label (matplotlib tab20 cycle) when no colour table is given."""
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    return {label: tuple(int(255 * v) for v in palette(index % 20)[:3]) + (255,) for index, label in
            enumerate(sorted(labels))}


def class_colormap(colors: dict[int, tuple[int, int, int]], labels: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """RGBA palette of the colour-indexed map: 0 transparent, the colour table's colours, and a default colour
    for the labels the table leaves out (all of them without a table)."""
    colormap = {0: (0, 0, 0, 0)}
    missing = [label for label in labels if label not in colors]
    if missing:
        colormap.update(default_colormap(missing))
    colormap.update({label: (*rgb, 255) for label, rgb in colors.items()})
    return colormap


def mosaic_run(config: dict, tiles: list[str], run: int, all_labels: list[int], output_path: str) -> None:
    """Write ``final/Classif_Seed_<S>.tif``, ``Confidence_Seed_<S>.tif``, ``Classif_Seed_<S>_ColorIndexed.tif``
    and, when asked, ``ProbabilityMap_seed_<S>.tif``."""
    config = Config(config)
    layout = OutputLayout(output_path)
    compress = config["chain"]["compression_algorithm"]
    dtype = label_dtype(all_labels)
    labels_out = layout.final_classification(run)
    mosaic_files([layout.tile_map(t, run) for t in tiles], labels_out, dtype, compress)
    mosaic_files([layout.tile_map(t, run, "confidence") for t in tiles], layout.final_confidence(run), "uint8",
                 compress)
    colormap = class_colormap(read_color_table(config["chain"].get("color_table")), all_labels)
    if dtype == "uint8":
        colormap = {k: v for k, v in colormap.items() if 0 <= k <= 255}
        mosaic_files([layout.tile_map(t, run) for t in tiles], layout.final_color_indexed(run), dtype, compress,
                     colormap=colormap)
    else:  # GeoTIFF palettes need 8-bit (or 16-bit with 65536 entries); write an RGB rendering instead
        _write_rgb(labels_out, layout.final_color_indexed(run), colormap, compress)
    if config["arg_classification"]["enable_probability_map"] and \
            config["arg_classification"]["generate_final_probability_map"]:
        mosaic_files([layout.tile_map(t, run, "proba") for t in tiles], layout.final_probability_map(run), "int16",
                     compress, nodata=None)


def _write_rgb(source: Path, target: Path, colormap: dict, compress: str) -> None:
    with rasterio.open(source) as src:
        profile = src.profile | {"count": 3, "dtype": "uint8", "nodata": None}
        if compress.upper() != "NONE":
            profile["compress"] = compress.lower()
        lookup = np.zeros((max(colormap) + 1, 3), np.uint8)
        for label, rgba in colormap.items():
            lookup[label] = rgba[:3]
        with atomic_output(target) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                for _, window in src.block_windows(1):
                    dst.write(np.moveaxis(lookup[src.read(1, window=window)], -1, 0), window=window)


def pixels_validity(config: dict, tiles: list[str], output_path: str) -> None:
    """``final/PixelsValidity.tif``: number of clear observations where the first run classified a pixel."""
    config = Config(config)
    layout = OutputLayout(output_path)
    compress = config["chain"]["compression_algorithm"]
    pieces = []
    for tile in tiles:
        masked = layout.tile_pixels_validity(tile)
        with rasterio.open(layout.validity(tile)) as validity, rasterio.open(layout.tile_map(tile, 0)) as labels:
            profile = validity.profile
            with atomic_output(masked) as tmp:
                with rasterio.open(tmp, "w", **profile) as dst:
                    for _, window in validity.block_windows(1):
                        values = validity.read(1, window=window)
                        values[labels.read(1, window=window) == 0] = 0
                        dst.write(values, 1, window=window)
        pieces.append(masked)
    mosaic_files(pieces, layout.pixels_validity, "uint16", compress)
