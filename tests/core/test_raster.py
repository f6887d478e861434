"""Raster helpers: chunk windows, padding, atomic writes, checked opening."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import Grid, atomic_output, chunk_windows, open_raster, pad_window, write_raster

GRID = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900000), 100, 37)


def covered(windows, grid):
    count = np.zeros((grid.height, grid.width), int)
    for w in windows:
        count[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] += 1
    return count


@pytest.mark.parametrize("mode, kwargs, expected", [
    ("split_number", {"number_of_chunks": 4}, 4),
    ("split_number", {"number_of_chunks": 50}, 50),
    ("user_fixed", {"chunk_size_x": 30, "chunk_size_y": 20}, 8),
    ("auto", {"bytes_per_pixel": 1000, "memory_mb": 1}, 37 // 10 + 1),
])
def test_chunks_cover_the_grid_exactly_once(mode, kwargs, expected):
    windows = chunk_windows(GRID, mode, **kwargs)
    assert len(windows) == expected
    assert np.all(covered(windows, GRID) == 1)


def test_split_number_boundaries_as_iota2():
    windows = chunk_windows(GRID, "split_number", number_of_chunks=4)
    assert [int(w.row_off) for w in windows] == list(np.floor(np.linspace(0, 37, 5)).astype(int)[:-1])


def test_auto_chunks_follow_the_memory_budget():
    small = chunk_windows(GRID, "auto", bytes_per_pixel=4000, memory_mb=1)
    large = chunk_windows(GRID, "auto", bytes_per_pixel=4000, memory_mb=4)
    assert len(small) > len(large)
    for w in small:
        assert w.width * w.height * 4000 <= 1024 * 1024


def test_too_many_chunks_is_a_config_error():
    with pytest.raises(ConfigError, match="number_of_chunks"):
        chunk_windows(GRID, "split_number", number_of_chunks=1000)
    with pytest.raises(ConfigError, match="number_of_chunks must be set"):
        chunk_windows(GRID, "split_number")


def test_pad_window_and_crop_back():
    padded, (rows, cols) = pad_window(Window(10, 0, 20, 10), 3, GRID)
    assert (padded.col_off, padded.row_off, padded.width, padded.height) == (7, 0, 26, 13)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 10, 3, 23)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())


def test_write_raster_round_trip_and_grid(tmp_path):
    data = np.arange(GRID.width * GRID.height, dtype=np.uint16).reshape(GRID.height, GRID.width)
    path = write_raster(tmp_path / "a.tif", data, GRID, nodata=0)
    with rasterio.open(path) as src:
        assert np.array_equal(src.read(1), data)
        assert Grid.from_dataset(src) == GRID
    assert Grid.from_dict(GRID.to_dict()) == GRID
    assert GRID.window_grid(Window(10, 5, 20, 7)).bounds == (300100.0, 4899880.0, 300300.0, 4899950.0)


def test_open_raster_errors(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        with open_raster(tmp_path / "missing.tif"):
            pass
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(InputDataError, match="bad.tif"):
        with open_raster(bad):
            pass


def test_auto_chunk_count_is_a_multiple_of_parallel_tasks():
    windows = chunk_windows(GRID, "auto", bytes_per_pixel=1000, memory_mb=1, multiple_of=3)
    assert len(windows) % 3 == 0 and len(windows) >= 4
    assert np.all(covered(windows, GRID) == 1)


def test_warp_scale_makes_a_reprojected_read_independent_of_the_window(tmp_path):
    """A 20 m raster in UTM 30 warped (bilinear) onto a 10 m UTM 31 grid: a strip of rows gets the values of the
    whole grid (GDAL would otherwise estimate the resampling factor per window, and the rotation between the
    zones makes that estimate depend on the window's shape)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import transform_bounds

    from iota2.core.raster import warp_scale_options

    grid = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900020), 400, 400)
    left, bottom, right, top = transform_bounds(grid.crs, CRS.from_epsg(32630), *grid.bounds)
    source = Grid(CRS.from_epsg(32630), Affine(20, 0, left - 400, 0, -20, top + 400),
                  int((right - left + 800) / 20), int((top - bottom + 800) / 20))
    rng = np.random.default_rng(0)
    path = tmp_path / "utm30.tif"
    write_raster(path, rng.random((source.height, source.width)).astype(np.float32) + 1.0, source)

    def warp(target: Grid) -> np.ndarray:
        with rasterio.open(path) as src:
            options = warp_scale_options(src, target)
            assert options["XSCALE"] == pytest.approx(2.0, rel=0.01) and options["YSCALE"] == pytest.approx(2.0, rel=0.01)
            with WarpedVRT(src, crs=target.crs, transform=target.transform, width=target.width, height=target.height,
                           resampling=Resampling.bilinear, tolerance=1e-9, **options) as vrt:
                return vrt.read(1)

    whole = warp(grid)
    for window in (Window(0, 0, 400, 6), Window(0, 200, 400, 50), Window(350, 0, 20, 400)):
        strip = warp(grid.window_grid(window))
        np.testing.assert_array_equal(strip, whole[window.toslices()])


def test_input_rasters_stay_open_between_reads_and_follow_rewrites(tmp_path):
    from iota2.core.raster import _OpenRasters

    grid = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900020), 8, 8)
    paths = [tmp_path / f"band_{index}.tif" for index in range(3)]
    for index, path in enumerate(paths):
        write_raster(path, np.full((8, 8), index, np.int16), grid)
    cache = _OpenRasters(capacity=2)
    with cache.open(paths[0]) as first:
        assert first.read(1)[0, 0] == 0
        with cache.open(paths[0]) as second:  # lent to one reader at a time: a second reader gets its own
            assert second is not first
    with cache.open(paths[0]) as again:
        assert again in (first, second) and not again.closed
    # a rewritten file (new inode, size or time) is opened again and read anew
    write_raster(paths[0], np.full((8, 8), 7, np.int16), grid)
    with cache.open(paths[0]) as rewritten:
        assert rewritten.read(1)[0, 0] == 7
    # beyond the capacity the least recently used handles are closed
    kept = []
    for path in paths:
        with cache.open(path) as dataset:
            kept.append(dataset)
    assert len(cache.handles) == 2 and kept[0].closed and not kept[2].closed
    cache.clear()
    assert kept[2].closed and not cache.handles
    with pytest.raises(InputDataError, match="does not exist"):
        with cache.open(tmp_path / "missing.tif"):
            pass


def test_input_rasters_cap_gdal_block_cache(tmp_path, monkeypatch):
    """Open handles keep their blocks in GDAL's cache: the first use caps it (default 5 % of the memory)."""
    from rasterio.env import get_gdal_config

    from iota2.core.raster import GDAL_CACHE_MB, _OpenRasters

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    grid = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900020), 4, 4)
    write_raster(tmp_path / "a.tif", np.zeros((4, 4), np.int16), grid)
    with _OpenRasters(capacity=4).open(tmp_path / "a.tif"):
        assert int(get_gdal_config("GDAL_CACHEMAX")) == GDAL_CACHE_MB * 2**20  # bytes
