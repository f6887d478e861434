"""SLIC superpixels on feature blocks and on a generated tile, chunk by chunk."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.core.config import load_config
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.segmentation import first_ids, merge_superpixels, segment_chunk, slic_superpixels
from iota2.core.tile_steps import sensor_config
from iota2.core.tiles import prepare_tiles


def fields_block(size: int = 120, features: int = 40, noise: float = 0.3, seed: int = 0):
    """Four rectangular fields with their own temporal profile plus per-pixel noise: (features, field ids)."""
    rng = np.random.default_rng(seed)
    fields = np.zeros((size, size), np.int64)
    half, third, two_thirds = size * 11 // 24, size * 5 // 16, size * 17 // 24  # borders off a 10-pixel grid
    fields[:half, third:] = 1
    fields[half:, :two_thirds] = 2
    fields[half:, two_thirds:] = 3
    profiles = rng.normal(0, 1, (4, features))
    block = profiles[fields] + rng.normal(0, noise, (size, size, features))
    return block.astype(np.float32), fields


def purity(ids: np.ndarray, fields: np.ndarray) -> float:
    """Share of the labelled pixels that lie in their superpixel's majority field."""
    inside = ids > 0
    pairs = np.stack([ids[inside], fields[inside]], axis=1)
    _, counts = np.unique(pairs, axis=0, return_counts=True)
    unique_pairs = np.unique(pairs, axis=0)
    best = {}
    for (segment, _), count in zip(unique_pairs, counts):
        best[segment] = max(best.get(segment, 0), count)
    return sum(best.values()) / inside.sum()


def test_superpixels_follow_field_borders_and_have_the_asked_size():
    features, fields = fields_block()
    footprint = np.ones(fields.shape, bool)
    ids = slic_superpixels(features, footprint, spatial_width=10)
    count = len(np.unique(ids))
    assert 0.5 * 144 <= count <= 1.5 * 144  # 120 x 120 pixels in 10 x 10 superpixels
    assert purity(ids, fields) > 0.97
    # a grid of 10 x 10 squares (what shape alone gives) cuts the fields
    squares = (np.arange(120)[:, None] // 10) * 12 + np.arange(120)[None, :] // 10 + 1
    assert purity(ids, fields) > purity(squares, fields)


def test_ids_are_consecutive_from_first_id_zero_outside_and_deterministic():
    features, fields = fields_block(seed=3)
    footprint = np.ones(fields.shape, bool)
    footprint[:, :17] = False
    ids = slic_superpixels(features, footprint, spatial_width=8, first_id=1000)
    assert ids.dtype == np.uint32
    assert (ids[~footprint] == 0).all() and (ids[footprint] >= 1000).all()
    present = np.unique(ids[footprint])
    assert np.array_equal(present, np.arange(1000, 1000 + len(present)))
    assert np.array_equal(ids, slic_superpixels(features, footprint, spatial_width=8, first_id=1000))
    assert not slic_superpixels(features, np.zeros_like(footprint), spatial_width=8).any()


def test_first_ids_make_chunk_ids_unique_in_a_tile():
    windows = [[0, 0, 100, 30], [0, 30, 100, 30], [0, 60, 100, 7]]
    assert first_ids(windows) == [1, 3001, 6001]


def test_tile_superpixels_chunk_by_chunk(make_config, tmp_path):
    config = load_config(make_config(python_data_managing={"chunk_size_mode": "split_number",
                                                          "number_of_chunks": 3}))
    tiles = prepare_tiles(config)
    tile = tiles.tiles[0]
    grid = tiles.grids[tile]
    windows = tiles.window_lists()[tile]
    output = tmp_path / "segmentation_out"
    OutputLayout(output).tile_features_tmp(tile).mkdir(parents=True)
    for chunk, (window, first) in enumerate(zip(windows, first_ids(windows))):
        segment_chunk(sensor_config(config), tile, grid.to_dict(), window, chunk, tiles.dates_by_sensor, str(output),
                      first_id=first)
    merge_superpixels(tile, grid.to_dict(), windows, str(output), remove_chunks=True)
    layout = OutputLayout(output)
    assert not layout.slic_chunk(tile, 0).exists()
    with rasterio.open(layout.slic(tile)) as src:
        ids = src.read(1)
        assert src.nodata == 0 and src.dtypes[0] == "uint32" and src.transform == grid.transform
    footprint = read_features(config, tile, grid, Window(0, 0, grid.width, grid.height),
                              tiles.dates_by_sensor).footprint
    assert ((ids > 0) == footprint).all()
    # no superpixel spans two chunks, ids are unique in the tile
    for chunk, (col, row, width, height) in enumerate(windows):
        inside = ids[row:row + height, col:col + width]
        others = np.delete(ids, np.s_[row:row + height], axis=0)
        assert not np.isin(np.unique(inside[inside > 0]), others).any()
    assert 0.5 * footprint.sum() / 100 <= len(np.unique(ids[ids > 0])) <= 1.5 * footprint.sum() / 100
