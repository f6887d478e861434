"""Mosaic tasks: tiles of one run assembled into ``final/`` (label, confidence, colour-indexed map,
probabilities) and the pixel validity map, as Cloud Optimized GeoTIFFs with their legend (GDAL category names,
palette, QGIS ``.qml`` styles, see :mod:`iota2.core.legend`) and quicklooks (``final/quicklooks/``, see
:mod:`iota2.core.quicklook`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import rasterio

from iota2.core.layout import OutputLayout
from iota2.core.legend import (Legend, class_colormap, class_legend, default_colormap, paletted_qml, ramp_qml,
                               write_categories, write_qml)
from iota2.core.mosaic import COG_CACHE_BYTES, mosaic_files, to_cog
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.core.quicklook import class_quicklook, quicklook_path, ramp_quicklook
from iota2.core.raster import atomic_output, label_dtype, temporary_path

LOGGER = logging.getLogger(__name__)

__all__ = ["class_colormap", "default_colormap", "mosaic_run", "pixels_validity"]

MAPS_ZSTD_LEVEL = 1
"""ZSTD level of the final maps (with ``chain.compression_algorithm: ZSTD``): measured on a 5000 x 5000 class map,
level 1 writes the COG 2.5x faster than GDAL's default 9 for a file 13 % larger."""

CLASS_OVERVIEWS = "mode"
"""Overview resampling of the class maps: the most frequent class of each block of pixels."""


def mosaic_run(tiles: list[str], run: int, all_labels: list[int], output_path: str, compression: str,
               color_table: str | None = None, probability_map: bool = False,
               nomenclature_path: str | None = None) -> None:
    """Write ``final/Classif_Seed_<S>.tif``, ``Confidence_Seed_<S>.tif``, ``Classif_Seed_<S>_ColorIndexed.tif``
    and, when asked, ``ProbabilityMap_seed_<S>.tif`` (Cloud Optimized GeoTIFFs), the class names and colours
    of the class maps (``.tif.aux.xml``), a QGIS style beside each map but the probabilities (``.qml``) and the
    quicklooks of the label and confidence maps (``final/quicklooks/``).

    Parameters
    ----------
    tiles
        Tiles in ``chain.list_tile`` order (the first wins where tiles overlap).
    run
        The run.
    all_labels
        Every label of the ground truth (the maps' pixel type and the palette depend on them).
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    color_table
        ``chain.color_table`` (``label R G B`` per line), or None for default colours.
    probability_map
        Mosaic the tiles' probability maps too (``arg_classification.enable_probability_map`` and
        ``generate_final_probability_map``).
    nomenclature_path
        ``chain.nomenclature_path`` (``name:label`` per line): the class names of the legend (``class <label>``
        without it).

    GDAL's block cache is held to :data:`iota2.core.mosaic.COG_CACHE_MB` during the task, so that its memory does
    not grow with the size of the maps.
    """
    with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES):
        _mosaic_run(tiles, run, all_labels, output_path, compression, color_table, probability_map, nomenclature_path)


def _mosaic_run(tiles, run, all_labels, output_path, compression, color_table, probability_map, nomenclature_path):
    layout = OutputLayout(output_path)
    dtype = label_dtype(all_labels)
    colors = read_color_table(color_table)
    legend = class_legend(all_labels, read_nomenclature(nomenclature_path), colors, color_table)
    labels_out = layout.final_classification(run)
    colormap = class_colormap(colors, all_labels)
    indexed = layout.final_color_indexed(run)
    if dtype == "uint8":  # the class map carries its palette: the colour-indexed map is the same file, copied
        colormap = {k: v for k, v in colormap.items() if 0 <= k <= 255}
        mosaic_files([layout.tile_map(t, run) for t in tiles], labels_out, dtype, compression, colormap=colormap,
                     overview_resampling=CLASS_OVERVIEWS, zstd_level=MAPS_ZSTD_LEVEL)
        with atomic_output(indexed) as tmp:
            shutil.copyfile(labels_out, tmp)
        _class_legend_files(labels_out, legend)
        _class_legend_files(indexed, legend)
    else:  # GeoTIFF palettes need 8-bit (or 16-bit with 65536 entries); write an RGB rendering instead
        mosaic_files([layout.tile_map(t, run) for t in tiles], labels_out, dtype, compression,
                     overview_resampling=CLASS_OVERVIEWS, zstd_level=MAPS_ZSTD_LEVEL)
        _class_legend_files(labels_out, legend)
        _write_rgb(labels_out, indexed, colormap, compression)
    confidence = layout.final_confidence(run)
    mosaic_files([layout.tile_map(t, run, "confidence") for t in tiles], confidence, "uint8", compression,
                 overview_resampling="average", zstd_level=MAPS_ZSTD_LEVEL)
    write_qml(confidence, ramp_qml(0, 100, "%"))
    if probability_map:
        mosaic_files([layout.tile_map(t, run, "proba") for t in tiles], layout.final_probability_map(run), "int16",
                     compression, nodata=None, overview_resampling="average",
                 zstd_level=MAPS_ZSTD_LEVEL)
    class_quicklook(labels_out, quicklook_path(layout, labels_out), legend, title=f"Classification, run {run}")
    ramp_quicklook(confidence, quicklook_path(layout, confidence), 0, 100, label="confidence (%)",
                   title=f"Confidence, run {run}")


def _class_legend_files(raster: Path, legend: Legend) -> None:
    """Class names and colours of a class map: GDAL categories and attribute table, and its QGIS style."""
    write_categories(raster, legend)
    write_qml(raster, paletted_qml(legend))


def _write_rgb(source: Path, target: Path, colormap: dict, compress: str) -> None:
    with rasterio.open(source) as src:
        profile = src.profile | {"driver": "GTiff", "count": 3, "dtype": "uint8", "nodata": None}
        if compress.upper() != "NONE":
            profile["compress"] = compress.lower()
        lookup = np.zeros((max(colormap) + 1, 3), np.uint8)
        for label, rgba in colormap.items():
            lookup[label] = rgba[:3]
        plain = temporary_path(target.with_name(target.stem + "_rgb" + target.suffix))
        try:
            with atomic_output(plain) as tmp:
                with rasterio.open(tmp, "w", **profile) as dst:
                    for _, window in src.block_windows(1):
                        dst.write(np.moveaxis(lookup[src.read(1, window=window)], -1, 0), window=window)
            to_cog(plain, target, compress, "nearest", MAPS_ZSTD_LEVEL)
        finally:
            plain.unlink(missing_ok=True)


def pixels_validity(tiles: list[str], output_path: str, compression: str) -> None:
    """``final/PixelsValidity.tif``: number of clear observations where the first run classified a pixel (a Cloud
    Optimized GeoTIFF), its QGIS style (a ramp from 0 to the largest count) and its quicklook.

    Parameters
    ----------
    tiles
        Tiles in ``chain.list_tile`` order.
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    """
    with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES):
        _pixels_validity(tiles, output_path, compression)


def _pixels_validity(tiles, output_path, compression):
    layout = OutputLayout(output_path)
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
    mosaic_files(pieces, layout.pixels_validity, "uint16", compression, overview_resampling="average",
                 zstd_level=MAPS_ZSTD_LEVEL)
    highest = ramp_quicklook(layout.pixels_validity, quicklook_path(layout, layout.pixels_validity), 0, None,
                             label="clear observations", title="Pixel validity")
    write_qml(layout.pixels_validity, ramp_qml(0, highest, "dates"))
