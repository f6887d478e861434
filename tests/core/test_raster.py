"""Raster helpers: chunk windows, padding, atomic writes, checked opening."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import (Grid, align_stripes, assemble_chunks, atomic_output, average_levels, chunk_windows,
                               open_raster, pad_window, write_chunks_vrt, write_raster)

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



@pytest.mark.parametrize("bands_per_write", [1, 2, 32])
def test_assemble_chunks_puts_each_chunk_at_its_window_with_the_chosen_bands(tmp_path, bands_per_write):
    rng = np.random.default_rng(0)
    whole = rng.integers(0, 300, (5, GRID.height, GRID.width)).astype(np.int32)
    windows = [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)]
               for w in chunk_windows(GRID, "split_number", number_of_chunks=3)]
    assert len(windows) == 3
    chunks = [write_raster(tmp_path / f"chunk_{i}.tif", whole[:, r:r + h, c:c + w],
                           GRID.window_grid(Window(c, r, w, h))) for i, (c, r, w, h) in enumerate(windows)]
    target = tmp_path / "tile.tif"
    assemble_chunks(chunks, windows, target, GRID.profile(3, "uint16", nodata=0, compress="ZSTD"),
                    source_bands=[4, 2, 5], band_descriptions=["d", "b", "e"], bands_per_write=bands_per_write)
    with rasterio.open(target) as src:
        assert src.dtypes == ("uint16",) * 3 and src.descriptions == ("d", "b", "e")
        assert Grid.from_dataset(src) == GRID
        assert np.array_equal(src.read(), whole[[3, 1, 4]].astype(np.uint16))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chunk_0.tif", "chunk_1.tif", "chunk_2.tif", "tile.tif"]


def test_assemble_chunks_with_a_missing_chunk_leaves_no_target(tmp_path):
    window = [0, 0, GRID.width, GRID.height]
    chunk = write_raster(tmp_path / "chunk_0.tif", np.ones((GRID.height, GRID.width), np.uint8), GRID)
    with pytest.raises(rasterio.errors.RasterioIOError):
        assemble_chunks([chunk, tmp_path / "chunk_1.tif"], [window, window], tmp_path / "tile.tif",
                        GRID.profile(1, "uint8", nodata=0, compress="ZSTD"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chunk_0.tif"]
    with pytest.raises(ValueError, match="2 source bands for a target of 1 bands"):
        assemble_chunks([chunk], [window], tmp_path / "tile.tif", GRID.profile(1, "uint8"), source_bands=[1, 1])

def test_chunks_vrt_shows_each_chunk_at_its_window_and_moves_with_its_folder(tmp_path):
    rng = np.random.default_rng(1)
    whole = rng.normal(size=(3, GRID.height, GRID.width)).astype(np.float32)
    windows = [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)]
               for w in chunk_windows(GRID, "user_fixed", chunk_size_x=17, chunk_size_y=9)]
    folder = tmp_path / "run" / "customF"
    folder.mkdir(parents=True)
    chunks = [write_raster(folder / f"chunk_{i}.tif", whole[:, r:r + h, c:c + w], GRID.window_grid(Window(c, r, w, h)),
                           nodata=-1.0) for i, (c, r, w, h) in enumerate(windows)]
    target = write_chunks_vrt(chunks, windows, folder / "tile.vrt", GRID, nodata=-10000, band_descriptions=["a", "b", "c"])
    (tmp_path / "run").rename(tmp_path / "moved")  # chunk paths are relative to the VRT
    with rasterio.open(tmp_path / "moved" / "customF" / target.name) as src:
        assert src.driver == "VRT" and Grid.from_dataset(src) == GRID
        assert src.descriptions == ("a", "b", "c") and src.nodata == -10000 and src.dtypes == ("float32",) * 3
        assert np.array_equal(src.read(), whole)
        assert np.array_equal(src.read(2, window=Window(10, 5, 20, 7)), whole[1, 5:12, 10:30])
    assert not list((tmp_path / "moved" / "customF").glob(".*tmp*"))


def test_chunks_vrt_refuses_a_chunk_of_another_size_and_writes_nothing(tmp_path):
    windows = [[0, 0, GRID.width, GRID.height // 2], [0, GRID.height // 2, GRID.width, GRID.height - GRID.height // 2]]
    first = write_raster(tmp_path / "chunk_0.tif", np.ones((GRID.height // 2, GRID.width), np.float32),
                         GRID.window_grid(Window(*windows[0])))
    wrong = write_raster(tmp_path / "chunk_1.tif", np.ones((3, GRID.width), np.float32),
                         GRID.window_grid(Window(0, 0, GRID.width, 3)))
    with pytest.raises(ValueError, match=f"chunk_1.tif is {GRID.width} x 3 pixels"):
        write_chunks_vrt([first, wrong], windows, tmp_path / "tile.vrt", GRID)
    other_type = write_raster(tmp_path / "chunk_2.tif", np.ones((windows[1][3], GRID.width), np.uint8),
                              GRID.window_grid(Window(*windows[1])))
    with pytest.raises(ValueError, match="chunk_2.tif has 1 uint8 band"):
        write_chunks_vrt([first, other_type], windows, tmp_path / "tile.vrt", GRID)
    assert not (tmp_path / "tile.vrt").exists() and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("compiled", [True, False])
def test_average_levels_are_gdals_average_overviews_bit_for_bit(tmp_path, monkeypatch, compiled):
    """GDAL cascades (level 4 averages the level-2 pixels) and leaves no-data pixels out: so do ours, with numba
    or numpy."""
    from rasterio.enums import Resampling

    from iota2.core import raster

    if not compiled:
        monkeypatch.setattr(raster, "overview_kernel", lambda: None)
    rng = np.random.default_rng(4)
    bands, rows, cols = 19, 96, 128
    values = (rng.normal(size=(bands, rows, cols)) * 1000).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = -10000
    values[:, :8, :16] = -10000  # whole blocks of no data at every level
    path = tmp_path / "map.tif"
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=bands, dtype="float32",
                       crs="EPSG:32631", transform=Affine(10, 0, 0, 0, -10, 0), tiled=True, blockxsize=16,
                       blockysize=16, nodata=-10000, interleave="band") as dst:
        dst.write(values)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4, 8], Resampling.average)
    levels = average_levels(np.ascontiguousarray(values.transpose(1, 2, 0)), -10000, [2, 4, 8])
    with rasterio.open(path) as src:
        for factor, level in zip([2, 4, 8], levels):
            assert np.array_equal(src.read(out_shape=(bands, rows // factor, cols // factor)), level), factor
    assert (levels[2][:, 0, :2] == -10000).all()
    with pytest.raises(ValueError, match="multiples of the largest"):
        average_levels(np.zeros((12, 16, 1), np.float32), -10000, [2, 4, 8])


def test_align_stripes_moves_row_boundaries_to_multiples_or_gives_up():
    stripes = [[0, 0, 100, 62], [0, 62, 100, 63], [0, 125, 100, 62], [0, 187, 100, 63]]
    assert align_stripes(stripes, 4, 100, 250) == [[0, 0, 100, 64], [0, 64, 100, 60], [0, 124, 100, 64],
                                                   [0, 188, 100, 62]]
    assert align_stripes(stripes, 1, 100, 250) == stripes
    assert align_stripes([[0, 0, 100, 3], [0, 3, 100, 3], [0, 6, 100, 4]], 8, 100, 10) is None  # a stripe would vanish
    assert align_stripes([[0, 0, 50, 250], [50, 0, 50, 250]], 2, 100, 250) is None  # not full-width stripes


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


def test_user_fixed_refuses_an_absurd_number_of_chunks_and_suggests_a_size():
    from iota2.core.raster import MAX_CHUNKS_PER_TILE

    big = Grid(GRID.crs, GRID.transform, 10980, 10980)
    with pytest.raises(ConfigError, match=r"chunk_size_x x chunk_size_y = 50 x 50 cuts a 10980 x 10980 tile into "
                                          r"48400 chunks.*at most 10000.*use at least (\d+) x \1") as caught:
        chunk_windows(big, "user_fixed", chunk_size_x=50, chunk_size_y=50)
    side = int(str(caught.value).split("use at least ")[1].split(" x ")[0])
    assert len(chunk_windows(big, "user_fixed", chunk_size_x=side, chunk_size_y=side)) <= MAX_CHUNKS_PER_TILE


def test_user_fixed_warns_about_tiny_chunks(caplog):
    with caplog.at_level("WARNING", logger="iota2.core.raster"):
        chunk_windows(GRID, "user_fixed", chunk_size_x=7, chunk_size_y=3)
    assert "7 x 3" in caplog.text and "overhead" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="iota2.core.raster"):
        chunk_windows(Grid(GRID.crs, GRID.transform, 1000, 1000), "user_fixed", chunk_size_x=500, chunk_size_y=500)
    assert caplog.text == ""


@pytest.mark.parametrize("cut", [1, 5000])
def test_a_truncated_geotiff_is_not_renamed_into_place(tmp_path, cut):
    """A GeoTIFF cut short (what a full disk leaves when GDAL only prints the error) fails the check before the
    rename; nothing is left under the final name nor as a temporary file."""
    from iota2.core.errors import OutputWriteError

    values = np.random.default_rng(0).integers(0, 255, (600, 600)).astype(np.uint8)
    target = tmp_path / "map.tif"
    with pytest.raises(OutputWriteError, match="map.tif' was written incompletely.*-restart"):
        with atomic_output(target) as tmp:
            write_raster(tmp.with_name("whole.tif"), values, Grid(GRID.crs, GRID.transform, 600, 600))
            data = tmp.with_name("whole.tif").read_bytes()
            tmp.write_bytes(data[:-cut])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.tif"]


def test_truncated_parquet_and_sqlite_are_refused(tmp_path):
    import sqlite3

    import pandas as pd

    from iota2.core.errors import OutputWriteError
    from iota2.core.raster import check_written

    table = pd.DataFrame({"a": np.arange(50_000), "b": np.random.default_rng(0).random(50_000)})
    table.to_parquet(tmp_path / "t.parquet")
    connection = sqlite3.connect(tmp_path / "t.sqlite")
    connection.execute("create table t (a integer, b real)")
    connection.executemany("insert into t values (?, ?)", table.itertuples(index=False))
    connection.commit()
    connection.close()
    for name in ("t.parquet", "t.sqlite"):
        check_written(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[:len(data) // 2])
        with pytest.raises(OutputWriteError, match=f"{name}' was written incompletely"):
            check_written(tmp_path / name)


# ---------------------------------------------------------------------------------------------------------------
# read_onto_grid: the one reader of the sensors
# ---------------------------------------------------------------------------------------------------------------

TILE = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900000), 60, 50)


def _raster(path, array, transform, crs=CRS.from_epsg(32631), nodata=None):
    array = array if array.ndim == 3 else array[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype=array.dtype.name, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(array)
    return path


def _smooth(rows, cols, bands=1, dtype="int16"):
    """Smooth positive values (100..~1000): resampled reads differ only where a kernel's weights differ."""
    y, x = np.mgrid[0:rows, 0:cols]
    values = np.stack([100 + 7 * x + 5 * y + 50 * band for band in range(bands)]).astype(dtype)
    return values[0] if bands == 1 else values


@pytest.mark.parametrize("resolution, resampling", [(10, "nearest"), (10, "bilinear"), (20, "bilinear"),
                                                    (20, "nearest")])
def test_read_onto_grid_aligned_direct_read_equals_the_warp(tmp_path, resolution, resampling):
    from rasterio.enums import Resampling

    from iota2.core.raster import aligned_window, read_onto_grid

    path = _raster(tmp_path / "aligned.tif", _smooth(1400 // resolution, 1600 // resolution),
                   Affine(resolution, 0, 299900, 0, -resolution, 4900100))
    with rasterio.open(path) as src:
        assert aligned_window(src, TILE) is not None  # the direct path is the one compared
    direct = read_onto_grid(path, TILE, Resampling[resampling], -10000)
    warped = read_onto_grid(path, TILE, Resampling[resampling], -10000, force_warp=True)
    assert direct.shape == (TILE.height, TILE.width) and direct.dtype == np.int16
    np.testing.assert_array_equal(direct, warped)


@pytest.mark.parametrize("case", ["aligned", "coarser", "shifted", "utm32_vrt", "utm32_float32"])
def test_read_onto_grid_window_equals_the_same_window_of_a_whole_read(tmp_path, case):
    from rasterio.enums import Resampling

    from iota2.core.raster import read_onto_grid

    rng = np.random.default_rng(4)
    values = rng.integers(1, 3000, (2, 80, 90)).astype(np.int16)
    values[:, 10:14, 20:25] = -10000
    transform, crs, options = Affine(10, 0, 299900, 0, -10, 4900100), CRS.from_epsg(32631), {}
    if case == "coarser":
        transform = Affine(20, 0, 299900, 0, -20, 4900100)
    elif case == "shifted":
        transform = Affine(20, 0, 299907, 0, -20, 4900093)
    elif case.startswith("utm32"):
        transform, crs = Affine(20, 0, -170300, 0, -20, 4915400), CRS.from_epsg(32632)
        options = {"tolerance": 1e-9} if case == "utm32_vrt" else {"tolerance": 0.0, "dtype": "float32"}
    path = _raster(tmp_path / f"{case}.tif", values, transform, crs, nodata=-10000)
    whole = read_onto_grid(path, TILE, Resampling.bilinear, -10000, bands=None, **options)
    assert whole.shape == (2, TILE.height, TILE.width)
    for window in (Window(0, 0, 60, 7), Window(13, 9, 31, 22), Window(59, 0, 1, 50)):
        part = read_onto_grid(path, TILE.window_grid(window), Resampling.bilinear, -10000, bands=None, **options)
        np.testing.assert_array_equal(part, whole[(slice(None),) + window.toslices()])
        second = read_onto_grid(path, TILE.window_grid(window), Resampling.bilinear, -10000, bands=2, **options)
        np.testing.assert_array_equal(second, whole[1][window.toslices()])


def test_read_onto_grid_fill_outside_and_on_declared_nodata(tmp_path):
    from rasterio.enums import Resampling

    from iota2.core.raster import read_onto_grid

    values = _smooth(40, 40)
    values[5:10, 5:10] = -1
    # half of the tile is east of the file, and the file is shifted: warped
    path = _raster(tmp_path / "west.tif", values, Affine(10, 0, 299703, 0, -10, 4900003), nodata=-1)
    read, valid = read_onto_grid(path, TILE, Resampling.nearest, -10000, with_valid=True)
    assert np.all(read[:, 30:] == -10000) and not valid[:, 30:].any()
    assert np.all(read[:, :29] != -1)  # the file's nodata became the fill
    assert np.sum(read[:, :29] == -10000) > 0 and np.all(valid[:, :29] == (read[:, :29] != -10000))
    floats, valid = read_onto_grid(path, TILE, Resampling.nearest, np.nan, dtype="float32", with_valid=True)
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(valid, ~np.isnan(floats))
    np.testing.assert_array_equal(floats[valid], read[valid])


def test_read_onto_grid_leaves_an_undeclared_nodata_out_of_the_kernel(tmp_path):
    """A 20 m file with 0 as undeclared nodata (Sen2Cor) on a 10 m grid: with ``src_nodata=0`` no pixel mixes 0
    with its valid neighbours (all >= 100); GDAL's resampled direct read (kept by the stack) does."""
    from rasterio.enums import Resampling

    from iota2.core.raster import read_onto_grid

    values = _smooth(40, 40)
    values[10:14, 10:14] = 0
    path = _raster(tmp_path / "s2c.tif", values, Affine(20, 0, 299900, 0, -20, 4900100))
    read = read_onto_grid(path, TILE, Resampling.bilinear, -10000, src_nodata=0)
    assert not np.any((read > 0) & (read < 100))
    assert np.any(read == -10000)  # inside the 0 block
    mixed = read_onto_grid(path, TILE, Resampling.bilinear, -10000, src_nodata=0, undeclared_nodata_warps=False)
    assert np.any((mixed > 0) & (mixed < 100))


def test_read_onto_grid_float32_keeps_interpolated_fractions(tmp_path):
    """An integer raster warped half a pixel off: the file's type rounds, ``dtype="float32"`` keeps the
    fractions (user features, DEMs)."""
    from rasterio.enums import Resampling

    from iota2.core.raster import read_onto_grid

    path = _raster(tmp_path / "ramp.tif", _smooth(80, 90), Affine(10, 0, 299905, 0, -10, 4900100))
    rounded = read_onto_grid(path, TILE, Resampling.bilinear, -10000)
    exact = read_onto_grid(path, TILE, Resampling.bilinear, np.nan, dtype="float32", tolerance=0.0)
    assert rounded.dtype == np.int16 and exact.dtype == np.float32
    assert np.any(exact != np.round(exact))
    np.testing.assert_allclose(rounded, exact, atol=0.5)


def test_read_onto_grid_names_a_missing_corrupt_or_unreferenced_file(tmp_path):
    from rasterio.enums import Resampling

    from iota2.core.raster import read_onto_grid

    with pytest.raises(InputDataError, match="missing.tif' does not exist"):
        read_onto_grid(tmp_path / "missing.tif", TILE, Resampling.nearest, 0)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 not a real tiff")
    with pytest.raises(InputDataError, match="corrupt.tif"):
        read_onto_grid(corrupt, TILE, Resampling.nearest, 0)
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=5, height=5, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 5, 5), np.uint8))
    with pytest.raises(InputDataError, match="S1 file '.*plain.tif' has no CRS"):
        read_onto_grid(plain, TILE, Resampling.nearest, 0, label="S1 file")


def test_input_raster_capacity_follows_the_open_file_limit():
    import resource

    from iota2.core.raster import MAX_OPEN_INPUTS, input_raster_capacity

    infinity = resource.RLIM_INFINITY
    assert input_raster_capacity((1024, 1024)) == 512  # hard limit reached: half of it
    assert input_raster_capacity((1024, 1024), raise_limit=False) == 512
    assert input_raster_capacity((1024, 524288)) == MAX_OPEN_INPUTS  # soft limit raised towards the hard one
    assert input_raster_capacity((1024, 524288), raise_limit=False) == 512
    assert input_raster_capacity((1024, 3000)) == 1500
    assert input_raster_capacity((100, 100)) == 64
    assert input_raster_capacity((infinity, infinity)) == MAX_OPEN_INPUTS
    assert input_raster_capacity((65536, infinity)) == MAX_OPEN_INPUTS
    assert MAX_OPEN_INPUTS >= 2 * 73 * 13  # a year of Sentinel-2 at 5 days, 13 files a date


def test_input_rasters_hold_every_file_of_a_36_date_chunk_between_chunks(tmp_path):
    """A chunk of 36 Sentinel-2 dates reads 36 x 13 files: the default cache keeps them all for the next chunk
    (with the former 256 handles, every chunk opened all of them again), within half the open-file limit."""
    import resource

    from iota2.core.raster import _OpenRasters

    grid = Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900020), 4, 4)
    paths = []
    for index in range(36 * 13):
        paths.append(tmp_path / f"date_{index // 13:02d}_file_{index % 13:02d}.tif")
        write_raster(paths[-1], np.full((4, 4), index, np.int16), grid)
    cache = _OpenRasters()
    try:
        first_chunk = []
        for index, path in enumerate(paths):
            with cache.open(path) as dataset:
                assert dataset.read(1)[0, 0] == index
                first_chunk.append(dataset)
        for path, earlier in zip(paths, first_chunk):
            with cache.open(path) as dataset:
                assert dataset is earlier and not dataset.closed
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert len(cache.handles) == len(paths) <= cache.capacity
        assert soft == resource.RLIM_INFINITY or cache.capacity <= soft // 2
    finally:
        cache.clear()
    assert all(dataset.closed for dataset in first_chunk)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint8"])
@pytest.mark.parametrize("factor", [2, 4])
def test_compiled_upsampling_equals_gdal_bit_for_bit(tmp_path, dtype, factor):
    """A coarser band read onto a finer aligned grid (a 20 m Sentinel-2 band on the 10 m grid) is interpolated by
    the compiled kernel with GDAL's values, bit for bit: windows at every edge, odd offsets and sizes (fractional
    source windows), negative values with .5 ties, and a declared nodata absent from the window."""
    from rasterio.enums import Resampling

    from iota2.core.raster import upsampled_read

    rng = np.random.default_rng(factor)
    info = np.iinfo(dtype)
    low, high = max(info.min, -3000), min(info.max - 1, 12000)  # the nodata value (info.max) placed below only
    values = rng.integers(low, high + 1, (61, 53)).astype(dtype)
    if info.min < 0:
        values[::3, ::2] = -rng.integers(1, 50, values[::3, ::2].shape) * 2 - 1  # odd negatives: .5 ties
    nodata = info.max  # declared, and present only in the last row
    values[-1, :5] = nodata
    path = _raster(tmp_path / "coarse.tif", values[np.newaxis], Affine(20.0 * factor / 2, 0, 0, 0, -20.0 * factor / 2, 0),
                   nodata=nodata)
    rows, cols = values.shape[0] * factor, values.shape[1] * factor
    windows = [(0, 0, rows - factor * 2, cols), (1, 3, 31, 33), (47, 0, 48, 100), (rows - 64 - factor * 2, cols - 64, 64, 64),
               (5, cols - 3, 40, 3), (rows // 2 + 1, cols // 2 + 1, 1, 1), (0, 0, 1, cols)]
    used = 0
    with rasterio.open(path) as src:
        for row, col, height, width in windows:
            window = Window(col / factor, row / factor, width / factor, height / factor)
            expected = src.read(1, window=window, out_shape=(height, width), resampling=Resampling.bilinear)
            computed = upsampled_read(src, 1, window, (height, width), Resampling.bilinear, src.nodata)
            assert computed is not None, (row, col, height, width)
            assert computed.dtype == expected.dtype
            np.testing.assert_array_equal(computed, expected, err_msg=str((row, col, height, width)))
            used += 1
        # the last rows hold nodata: GDAL's kernel leaves it out, the compiled read declines (GDAL reads them)
        bottom = Window(0, (rows - 2 * factor) / factor, cols / factor, 2.0)
        assert upsampled_read(src, 1, bottom, (2 * factor, cols), Resampling.bilinear, src.nodata) is None
        # other resamplings, several bands, other factors: GDAL reads them
        assert upsampled_read(src, 1, window, (height, width), Resampling.cubic, src.nodata) is None
        assert upsampled_read(src, [1], window, (height, width), Resampling.bilinear, src.nodata) is None
        assert upsampled_read(src, 1, Window(0, 0, 3, 3), (9, 9), Resampling.bilinear, src.nodata) is None
    assert used == len(windows)


def test_read_onto_grid_of_a_20m_band_uses_the_compiled_upsampling_with_gdal_values(tmp_path, monkeypatch):
    """The optical reader's path: read_onto_grid of a 20 m int16 band onto 10 m chunks gives GDAL's resampled read,
    and through the compiled kernel (GDAL's resampled read is not called for a window without nodata)."""
    from rasterio.enums import Resampling

    from iota2.core import raster as raster_module
    from iota2.core.raster import read_onto_grid

    values = _smooth(40, 50)
    path = _raster(tmp_path / "b5.tif", values, Affine(20.0, 0, 600000.0, 0, -20.0, 4800000.0), nodata=-10000)
    tile = Grid(CRS.from_epsg(32631), Affine(10.0, 0, 600000.0, 0, -10.0, 4800000.0), 100, 80)
    with rasterio.open(path) as src:
        whole = src.read(1, out_shape=(80, 100), resampling=Resampling.bilinear)
    calls = []
    original = raster_module.read_checked
    monkeypatch.setattr(raster_module, "read_checked",
                        lambda dataset, *args, **kwargs: calls.append(kwargs.get("resampling")) or
                        original(dataset, *args, **kwargs))
    for window in (Window(0, 0, 100, 27), Window(0, 27, 100, 27), Window(13, 54, 87, 26)):
        chunk = read_onto_grid(path, tile.window_grid(window), Resampling.bilinear, -10000)
        rows, cols = window.toslices()
        np.testing.assert_array_equal(chunk, whole[rows, cols])
    assert calls and all(resampling is None for resampling in calls)


def test_assemble_chunks_writes_every_block_once(tmp_path):
    """Chunks that split the target's blocks (rows of 60 against tiles of 256) are assembled strip by strip: with a
    GDAL block cache too small to hold a row of tiles, the file is the size of the same data written at once (a
    block written half, evicted, then completed would be written twice, the second copy appended)."""
    grid = Grid(CRS.from_epsg(32631), Affine(10.0, 0, 600000.0, 0, -10.0, 4800000.0), 600, 520)
    rng = np.random.default_rng(3)
    whole = np.cumsum(rng.normal(0, 1, (12, grid.height, grid.width)), axis=2).astype(np.float32)
    windows = [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)]
               for w in chunk_windows(grid, "split_number", number_of_chunks=9)]
    chunks = [write_raster(tmp_path / f"chunk_{i}.tif", whole[:, r:r + h, c:c + w],
                           grid.window_grid(Window(c, r, w, h))) for i, (c, r, w, h) in enumerate(windows)]
    profile = grid.profile(12, "float32", compress="ZSTD")
    with rasterio.Env(GDAL_CACHEMAX=2**20):  # 1 MiB: less than a row of tiles of one band
        assemble_chunks(chunks, windows, tmp_path / "tile.tif", profile, bands_per_write=12)
        with rasterio.open(tmp_path / "direct.tif", "w", **profile) as dst:
            dst.write(whole)
    with rasterio.open(tmp_path / "tile.tif") as src:
        np.testing.assert_array_equal(src.read(), whole)
    assembled, direct = ((tmp_path / name).stat().st_size for name in ("tile.tif", "direct.tif"))
    assert assembled <= direct * 1.02, (assembled, direct)
