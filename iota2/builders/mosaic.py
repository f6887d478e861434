"""Mosaic tasks: tiles of one run assembled into ``final/`` (label, confidence, colour-indexed map,
probabilities) and the pixel validity map."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio

from iota2.core.layout import OutputLayout
from iota2.core.mosaic import mosaic_files
from iota2.core.nomenclature import read_color_table
from iota2.core.raster import atomic_output, label_dtype

LOGGER = logging.getLogger(__name__)


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


def mosaic_run(tiles: list[str], run: int, all_labels: list[int], output_path: str, compression: str,
               color_table: str | None = None, probability_map: bool = False) -> None:
    """Write ``final/Classif_Seed_<S>.tif``, ``Confidence_Seed_<S>.tif``, ``Classif_Seed_<S>_ColorIndexed.tif``
    and, when asked, ``ProbabilityMap_seed_<S>.tif``.

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
    """
    layout = OutputLayout(output_path)
    dtype = label_dtype(all_labels)
    labels_out = layout.final_classification(run)
    mosaic_files([layout.tile_map(t, run) for t in tiles], labels_out, dtype, compression)
    mosaic_files([layout.tile_map(t, run, "confidence") for t in tiles], layout.final_confidence(run), "uint8",
                 compression)
    colormap = class_colormap(read_color_table(color_table), all_labels)
    if dtype == "uint8":
        colormap = {k: v for k, v in colormap.items() if 0 <= k <= 255}
        mosaic_files([layout.tile_map(t, run) for t in tiles], layout.final_color_indexed(run), dtype, compression,
                     colormap=colormap)
    else:  # GeoTIFF palettes need 8-bit (or 16-bit with 65536 entries); write an RGB rendering instead
        _write_rgb(labels_out, layout.final_color_indexed(run), colormap, compression)
    if probability_map:
        mosaic_files([layout.tile_map(t, run, "proba") for t in tiles], layout.final_probability_map(run), "int16",
                     compression, nodata=None)


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


def pixels_validity(tiles: list[str], output_path: str, compression: str) -> None:
    """``final/PixelsValidity.tif``: number of clear observations where the first run classified a pixel.

    Parameters
    ----------
    tiles
        Tiles in ``chain.list_tile`` order.
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    """
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
    mosaic_files(pieces, layout.pixels_validity, "uint16", compression)
