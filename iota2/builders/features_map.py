"""Steps of the features-map builder: the features of every chunk written to ``customF/``, assembled per tile,
then mosaicked into ``final/<output_name>.tif``.

A chunk task runs the feature stage (:func:`iota2.core.features.read_features`: each sensor's default features,
then the ``external_features`` functions on the chunk grown by ``python_data_managing.padding_size`` pixels)
and writes ``customF/<T>_chunk_<i>.tif``: float32, one band per feature, each band described by its feature's
label, :data:`NODATA` where a sensor has no data. Every file is written under a temporary name and renamed when
complete, so a failed or killed task leaves no partial map.

This module imports nothing of the classification builder (its steps, ground truth or learners).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.core.config import Config
from iota2.core.errors import ConfigError
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.mosaic import mosaic_files
from iota2.core.raster import Grid, atomic_output, average_levels, write_chunks_vrt

LOGGER = logging.getLogger(__name__)

NODATA = -10000.0
"""Value of the feature maps where a sensor has no data (outside the common footprint)."""

DTYPE = "float32"
"""Pixel type of the feature maps."""

BANDS_PER_WRITE = 32
"""Bands read or written per call (a call per band costs milliseconds each on maps of hundreds of features;
all bands at once would hold a second copy of the chunk)."""


def write_chunk(config: dict, tile: str, grid: dict, window: list[int], chunk: int,
                dates_by_sensor: dict[str, list[str]], output_path: str, output_name: str | None = None,
                compression: str = "ZSTD", overview_factors: list[int] = ()) -> None:
    """Compute the features of one chunk of a tile and write ``customF/<T>_chunk_<i>.tif``, and its average
    overviews ``customF/<T>_chunk_<i>_x<f>.tif`` for ``overview_factors``.

    The tile map and the final map, made from the previous chunks, are removed first: once a chunk changes
    they are out of date, and a run that fails leaves no map that looks current.

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration.
    tile
        Tile name.
    grid
        The tile's grid (:meth:`iota2.core.raster.Grid.to_dict`).
    window
        ``[col_off, row_off, width, height]`` of the chunk in the tile's grid.
    chunk
        Index of the chunk in the tile.
    dates_by_sensor
        Interpolation dates of each sensor.
    output_path
        ``chain.output_path``.
    output_name
        ``external_features.output_name`` (None: ``features_map``): the final map removed.
    compression
        ``chain.compression_algorithm``.
    overview_factors
        2, 4, ...: the final map's overview levels this chunk makes from its pixels, while it holds them
        (:func:`iota2.core.raster.average_levels`, GDAL's values); the chunk's rows start on a multiple of the
        largest. The final map then only copies them.
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    window = Window(*window)
    layout = OutputLayout(output_path)
    layout.final_features_map(output_name).unlink(missing_ok=True)
    layout.features_map_tile(tile).unlink(missing_ok=True)
    block = read_features(config, tile, grid, window, dates_by_sensor)
    features = block.features
    features[~block.footprint] = NODATA
    chunk_grid = grid.window_grid(window)
    profile = _profile(chunk_grid, len(block.labels), compression)
    with atomic_output(layout.features_map_chunk(tile, chunk)) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for band, label in enumerate(block.labels, start=1):
                dst.set_band_description(band, label)
            for first in range(0, len(block.labels), BANDS_PER_WRITE):
                bands = range(first, min(first + BANDS_PER_WRITE, len(block.labels)))
                dst.write(np.ascontiguousarray(features[:, :, bands.start:bands.stop].transpose(2, 0, 1)),
                          [band + 1 for band in bands])
    overview_factors = list(overview_factors)
    for factor, level in zip(overview_factors, average_levels(features, NODATA, overview_factors)):
        with atomic_output(layout.features_map_chunk_level(tile, chunk, factor)) as tmp:
            with rasterio.open(tmp, "w", **_profile(chunk_grid.coarsened(factor), len(block.labels),
                                                      compression)) as dst:
                dst.write(level)
    LOGGER.info("tile %s chunk %d: %d features on %dx%d pixels", tile, chunk, len(block.labels),
                int(window.width), int(window.height))


ZSTD_LEVEL = 1
"""ZSTD level of the feature maps: float features compress to the same size at level 1 as at GDAL's default 9
(measured: 133 MB for 37 bands of 1000 x 1000 px at both) for a third of the CPU time."""


def _profile(grid: Grid, count: int, compression: str) -> dict:
    """Creation profile of a feature map: float32, :data:`NODATA`, bands stored one after the other (a
    pixel-interleaved block of hundreds of features would hold them all), ZSTD at :data:`ZSTD_LEVEL`."""
    profile = grid.profile(count, DTYPE, nodata=NODATA, compress=compression)
    profile["interleave"] = "band"
    if compression.upper() == "ZSTD":
        profile["zstd_level"] = ZSTD_LEVEL
    return profile


def _labels(path: Path) -> list[str]:
    with rasterio.open(path) as src:
        return [description or "" for description in src.descriptions]


def _check_same_labels(expected: list[str], found: list[str], where: str, reference: str) -> None:
    if found != expected:
        raise ConfigError(f"{where} has {len(found)} feature(s) ({', '.join(found[:5])}"
                          f"{' ...' if len(found) > 5 else ''}) but {reference} has {len(expected)} "
                          f"({', '.join(expected[:5])}{' ...' if len(expected) > 5 else ''}): a function of "
                          "external_features.functions returns different features on different chunks; make it "
                          "return the same number of bands and labels whatever the chunk")


def merge_tile(tile: str, grid: dict, windows: list[list[int]], output_path: str,
               overview_factors: list[int] = ()) -> None:
    """Assemble the chunks of a tile into ``customF/<T>_features.vrt``: a VRT of the chunks at their windows (same
    bands and descriptions), written in milliseconds; the final map is encoded once, from it. The chunks' average
    overviews (``overview_factors``) are assembled the same way, into ``customF/<T>_features_x<f>.vrt``, which the
    tile's VRT names as its overviews.

    Parameters
    ----------
    tile, grid
        The tile and its grid (:meth:`iota2.core.raster.Grid.to_dict`).
    windows
        ``[col_off, row_off, width, height]`` of each chunk, in chunk order.
    output_path
        ``chain.output_path``.
    overview_factors
        The factors the chunks made overviews at (see :func:`write_chunk`).

    Raises
    ------
    ConfigError
        If the chunks do not have the same features (a feature function that returns different bands on
        different chunks); the message names the chunk.
    """
    grid = Grid.from_dict(grid)
    layout = OutputLayout(output_path)
    chunks = [layout.features_map_chunk(tile, index) for index in range(len(windows))]
    labels = _labels(chunks[0])
    for index, path in enumerate(chunks[1:], start=1):
        _check_same_labels(labels, _labels(path), f"chunk {index} of tile {tile} ({path.name})",
                           f"chunk 0 ({chunks[0].name})")
    levels = []
    for factor in overview_factors:
        level_windows = [[col // factor, row // factor, cols // factor, rows // factor]
                         for col, row, cols, rows in windows]
        levels.append(write_chunks_vrt([layout.features_map_chunk_level(tile, index, factor)
                                        for index in range(len(windows))], level_windows,
                                       layout.features_map_tile_level(tile, factor), grid.coarsened(factor),
                                       nodata=NODATA, band_descriptions=labels))
    write_chunks_vrt(chunks, windows, layout.features_map_tile(tile), grid, nodata=NODATA, band_descriptions=labels,
                     overviews=levels)
    LOGGER.info("tile %s: %d chunks assembled into %s", tile, len(chunks), layout.features_map_tile(tile))


def mosaic_tiles(tiles: list[str], output_path: str, output_name: str | None = None, compression: str = "ZSTD",
                 chunks_per_tile: dict[str, int] | None = None, remove_tmp_files: bool = False,
                 overview_factors: list[int] = ()) -> None:
    """Mosaic the tile maps into ``final/<output_name>.tif`` (band descriptions = feature labels).

    The tiles' grids share one CRS (``chain.proj``, or the first tile's); where tiles overlap the first in
    ``chain.list_tile`` order wins. A single tile's map is encoded straight from its chunks (the tile's VRT).

    Parameters
    ----------
    tiles
        Tiles in ``chain.list_tile`` order.
    output_path
        ``chain.output_path``.
    output_name
        ``external_features.output_name`` (None: ``features_map``).
    compression
        ``chain.compression_algorithm``.
    chunks_per_tile
        Number of chunks of each tile: with ``remove_tmp_files``, the chunks and the tiles' VRTs are deleted once
        the final map is written.
    remove_tmp_files
        ``chain.remove_tmp_files``.
    overview_factors
        The factors the chunks made overviews at: their files are deleted with the chunks.

    Raises
    ------
    ConfigError
        If the tiles do not have the same features.
    """
    layout = OutputLayout(output_path)
    sources = [layout.features_map_tile(tile) for tile in tiles]
    labels = _labels(sources[0])
    for tile, path in zip(tiles[1:], sources[1:]):
        _check_same_labels(labels, _labels(path), f"tile {tile} ({path.name})", f"tile {tiles[0]}")
    target = layout.final_features_map(output_name)
    mosaic_files(sources, target, DTYPE, compression, nodata=NODATA, band_descriptions=labels,
                 zstd_level=ZSTD_LEVEL)
    LOGGER.info("feature map of %d tile(s) and %d features written to %s", len(tiles), len(labels), target)
    if remove_tmp_files:
        for tile in tiles:
            for factor in overview_factors:
                layout.features_map_tile_level(tile, factor).unlink(missing_ok=True)
            for index in range((chunks_per_tile or {}).get(tile, 0)):
                layout.features_map_chunk(tile, index).unlink(missing_ok=True)
                for factor in overview_factors:
                    layout.features_map_chunk_level(tile, index, factor).unlink(missing_ok=True)
            layout.features_map_tile(tile).unlink(missing_ok=True)
