"""Coherent fields with very noisy pixels, as a generic time-series stack: the data where spatial context matters.

The area is cut into square fields of ``parcel`` x ``parcel`` pixels, each of one class (classes balanced). A class
has a random profile (one value per date and band); each pixel of a field is its class profile plus independent
Gaussian noise, ``sigma`` times the spread of the profiles, so a pixel classifier is often wrong while the
majority of a field's pixels is right (with the defaults, a random forest labels about half the pixels right).
Ground-truth polygons cover every field, shrunk by one pixel.

Files (read by the ``timeseries_stack`` sensor, ``chain.stack_path``):
``<out_dir>/cube/<T>/cube_<YYYYMMDD>.tif`` (int16, one band per name of ``bands``, nodata -10000), ``truth.gpkg``
(field ``code``), ``nomenclature.txt``, ``colors.txt`` and ``class_map.tif`` (the true class of every pixel).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box

__all__ = ["BANDS", "DATES", "generate_noisy_fields", "stack_section"]

BANDS = ("blue", "green", "red", "nir")
DATES = ("20180105", "20180125", "20180214", "20180306")
_PIXEL = 10.0


def generate_noisy_fields(out_dir: str | Path, tiles=("T31TCJ", "T31TDJ"), size: int = 100, parcel: int = 20,
                          classes: int = 4, sigma: float = 0.9, dates=DATES, bands=BANDS, seed: int = 3,
                          crs: str = "EPSG:32631", origin: tuple[float, float] = (300000.0, 4900020.0)) -> dict:
    """Write the stack, ground truth, nomenclature, colour table and true class map.

    Parameters
    ----------
    out_dir
        Output folder; created if needed.
    tiles
        Tile names; tile k lies east of tile k-1.
    size
        Tile width and height in pixels (10 m), a multiple of ``parcel``.
    parcel
        Side of a field in pixels.
    classes
        Number of classes (labels 1 ... ``classes``).
    sigma
        Standard deviation of the per-pixel noise, relative to the profiles' values drawn in [0, 1].
    dates, bands
        ``YYYYMMDD`` dates and band names of the stack.
    seed
        Seed of every draw: the same seed writes the same files.
    crs, origin
        CRS and upper-left corner of the first tile.

    Returns
    -------
    dict
        ``stack_path``, ``ground_truth``, ``nomenclature``, ``color_table``, ``class_map``, ``tiles``, ``dates``,
        ``bands``.
    """
    if size % parcel:
        raise ValueError(f"size {size} is not a multiple of parcel {parcel}")
    out_dir = Path(out_dir)
    tiles, dates, bands = list(tiles), list(dates), list(bands)
    rng = np.random.default_rng(seed)
    x0, y0 = origin
    field_rows, field_cols = size // parcel, size * len(tiles) // parcel
    field_class = rng.permutation(np.arange(field_rows * field_cols) % classes + 1).reshape(field_rows, field_cols)
    class_map = np.repeat(np.repeat(field_class, parcel, axis=0), parcel, axis=1).astype(np.uint8)
    profiles = rng.uniform(0.0, 1.0, (classes, len(dates), len(bands)))
    for tile_index, tile in enumerate(tiles):
        folder = out_dir / "cube" / tile
        folder.mkdir(parents=True, exist_ok=True)
        cols = slice(tile_index * size, (tile_index + 1) * size)
        transform = Affine(_PIXEL, 0.0, x0 + tile_index * size * _PIXEL, 0.0, -_PIXEL, y0)
        for date_index, date in enumerate(dates):
            values = profiles[class_map[:, cols].astype(np.int64) - 1, date_index]
            values = values + rng.normal(0.0, sigma, values.shape)
            data = np.clip(np.rint(2000 + 1500 * values), 1, 10000).astype(np.int16).transpose(2, 0, 1)
            with rasterio.open(folder / f"cube_{date}.tif", "w", driver="GTiff", width=size, height=size,
                               count=len(bands), dtype="int16", crs=crs, transform=transform, nodata=-10000,
                               tiled=size >= 256, compress="deflate") as dst:
                dst.write(data)
    codes, geometries = [], []
    for row in range(field_rows):
        for col in range(field_cols):
            codes.append(int(field_class[row, col]))
            geometries.append(box(x0 + (col * parcel + 1) * _PIXEL, y0 - ((row + 1) * parcel - 1) * _PIXEL,
                                  x0 + ((col + 1) * parcel - 1) * _PIXEL, y0 - (row * parcel + 1) * _PIXEL))
    truth = out_dir / "truth.gpkg"
    gpd.GeoDataFrame({"code": codes}, geometry=geometries, crs=crs).to_file(truth)
    nomenclature = out_dir / "nomenclature.txt"
    nomenclature.write_text("".join(f"class_{label}:{label}\n" for label in range(1, classes + 1)), encoding="utf-8")
    colors = out_dir / "colors.txt"
    colors.write_text("".join(f"{label} {(60 * label) % 256} 120 {(255 - 50 * label) % 256}\n"
                              for label in range(1, classes + 1)), encoding="utf-8")
    class_map_path = out_dir / "class_map.tif"
    with rasterio.open(class_map_path, "w", driver="GTiff", width=class_map.shape[1], height=size, count=1,
                       dtype="uint8", crs=crs, transform=Affine(_PIXEL, 0.0, x0, 0.0, -_PIXEL, y0), nodata=0) as dst:
        dst.write(class_map, 1)
    return {"stack_path": str((out_dir / "cube").resolve()), "ground_truth": str(truth.resolve()),
            "nomenclature": str(nomenclature.resolve()), "color_table": str(colors.resolve()),
            "class_map": str(class_map_path.resolve()), "tiles": tiles, "dates": dates, "bands": bands}


def stack_section(dataset: dict, temporal_resolution: int = 20) -> dict:
    """The ``timeseries_stack`` section that reads :func:`generate_noisy_fields`'s stack."""
    return {"name": "cube", "band_names": list(dataset["bands"]), "file_pattern": r"cube_(?P<date>\d{8})\.tif$",
            "temporal_resolution": temporal_resolution}
