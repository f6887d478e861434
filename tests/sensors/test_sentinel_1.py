"""Sentinel-1 sensor: configuration file, naming rule, reprojection, filtering, gap-filling, preprocessing."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.cli import main
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import Grid
from iota2.datagen.sentinel1 import generate_s1
from iota2.datagen.sentinel2 import generate_dataset
from iota2.sensors import sentinel_1 as s1

TILE = "T31TCJ"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("s1data")
    s2 = generate_dataset(root, tiles=(TILE,), size=100, seed=3,
                          dates=["20180105", "20180209", "20180306", "20180410", "20180510", "20180614"])
    s1_data = generate_s1(root, s2, seed=4)
    cfg = s1.read_config(s1_data["s1_config"])
    grid = Grid.from_file(s1.find_reference(cfg, TILE))
    return {"s2": s2, "s1": s1_data, "cfg": cfg, "grid": grid, "root": root}


def sensor(path) -> s1.Sentinel1:
    return s1.Sentinel1({"chain": {"s1_path": str(path)}}, TILE)


def write_geotiff(path, array, transform, crs="EPSG:32631", descriptions=None):
    """Write a (bands, rows, cols) float32 GeoTIFF with no-data 0."""
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype="float32", crs=CRS.from_user_input(crs), transform=transform, nodata=0.0) as dst:
        dst.write(array.astype(np.float32))
        for index, description in enumerate(descriptions or [], start=1):
            dst.set_band_description(index, description)


# ------------------------------------------------------------------ configuration file
CFG_BODY = {"Paths": "output = {out}\ns1images = {img}\nsrtm = /x/SRTM\ngeoidfile = /x/egm96.grd\n",
            "Processing": "tiles = 31TCJ,31TDJ\ntilesshapefile = /x/f.shp\nreferencesfolder = {ref}\n"
                          "srtmshapefile = /x/s.shp\nrasterpattern = STACK.tif\ngapFilling_interpolation = spline\n"
                          "temporalresolution = 10\nborderthreshold = 1e-3\nramperprocess = 5000\n",
            "Filtering": "window_radius = 3\n"}


def test_config_with_sections_case_insensitive(tmp_path):
    text = "".join(f"[{name.upper() if name == 'Paths' else name}]\n{body}\n" for name, body in CFG_BODY.items())
    text = text.replace("temporalresolution", "TemporalResolution").replace("output", "Output")
    path = tmp_path / "s1.cfg"
    path.write_text(text.format(out="/o", img="/i", ref="/r"))
    cfg = s1.read_config(path)
    assert cfg.tiles == ("31TCJ", "31TDJ") and cfg.temporal_resolution == 10 and cfg.window_radius == 3
    assert cfg.interpolation == "spline" and cfg.border_threshold == pytest.approx(1e-3)
    assert str(cfg.output) == "/o" and cfg.raster_pattern == "STACK.tif"


def test_config_without_sections_as_in_the_labwork(tmp_path):
    path = tmp_path / "s1.cfg"
    path.write_text("\n".join(CFG_BODY.values()).format(out="/o", img="/i", ref="/r"))
    cfg = s1.read_config(path)
    assert cfg.window_radius == 3 and str(cfg.s1images) == "/i" and str(cfg.references_folder) == "/r"


def test_config_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "s1.cfg"
    path.write_text("\n".join(CFG_BODY.values()).replace("referencesfolder = {ref}\n", "")
                    .format(out="/o", img="/i"))
    with pytest.raises(ConfigError, match=r"s1\.cfg.*referencesfolder"):
        s1.read_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        s1.read_config(tmp_path / "missing.cfg")


# ------------------------------------------------------------------ naming rule
def test_naming_rule():
    assert s1.parse_name("s1a_31TCJ_20180105T060512_20180105T060537_DES_grd.tif") == ("20180105", "DES", None)
    assert s1.parse_name("S1B_IW_20180108T174011_ASC_VH_rtc.tif") == ("20180108", "ASC", "vh")
    for name, reason in (("sentinel1_20180105T060512_DES.tif", "s1a_"), ("s1a_20180105_DES.tif", "YYYYMMDDTHHMMSS"),
                         ("s1a_20180105T060512_grd.tif", "ASC or DES"),
                         ("s1a_20181305T060512_DES.tif", "not a valid date")):
        with pytest.raises(InputDataError, match=reason) as info:
            s1.parse_name(name)
        assert name in str(info.value)


def test_badly_named_file_fails_check_inputs(tmp_path, data):
    images = tmp_path / "images"
    images.mkdir()
    write_geotiff(images / "scene_20180105.tif", np.ones((1, 4, 4)), Affine(20, 0, 0, 0, -20, 0), descriptions=["VV"])
    cfg = tmp_path / "s1.cfg"
    cfg.write_text(data["cfg"].path.read_text().replace(str(data["cfg"].s1images), str(images)))
    with pytest.raises(InputDataError, match="scene_20180105.tif"):
        sensor(cfg).check_inputs(data["grid"])


# ------------------------------------------------------------------ reading
def test_reprojection_onto_the_s2_grid_and_border_threshold(tmp_path, data):
    """A file in EPSG:4326 with a known value in a corner; below-threshold values are invalid."""
    grid = data["grid"]
    left, bottom, right, top = grid.bounds
    from rasterio.warp import transform_bounds
    lon0, lat0, lon1, lat1 = transform_bounds(grid.crs, "EPSG:4326", left - 500, bottom - 500, right + 500, top + 500)
    n = 200
    transform = Affine((lon1 - lon0) / n, 0, lon0, 0, -(lat1 - lat0) / n, lat1)
    vv = np.full((n, n), 0.1, dtype=np.float32)
    vh = np.full((n, n), 0.02, dtype=np.float32)
    vh[:, : n // 2] = 1e-4  # west half: below the border threshold
    images = tmp_path / "img"
    images.mkdir()
    write_geotiff(images / "s1a_x_20180105T060512_DES.tif", np.stack([vv, vh]), transform, "EPSG:4326",
                  descriptions=["VV", "VH"])
    cfg = tmp_path / "s1.cfg"
    cfg.write_text(data["cfg"].path.read_text().replace(str(data["cfg"].s1images), str(images))
                   .replace("Window_radius = 2", "Window_radius = 0"))
    sen = sensor(cfg)
    sen.check_inputs(grid)
    result = sen.read(grid, Window(0, 0, grid.width, grid.height), ["20180105"])
    # pixel at known coordinates: far east of the tile is east of the mid-longitude -> valid
    row, col = 50, grid.width - 5
    x, y = grid.transform @ (col + 0.5, row + 0.5)
    assert result.interpolated[0, 0, row, col] == pytest.approx(0.1, rel=1e-5)
    assert result.interpolated[0, 1, row, col] == pytest.approx(0.02, rel=1e-5)
    assert result.validity[row, col] == 1 and result.masks[0, row, col] == 0
    from rasterio.warp import transform as transform_points
    mid_lon = (lon0 + lon1) / 2
    lons, _ = transform_points(grid.crs, "EPSG:4326", [grid.transform.c + 5], [y])
    assert lons[0] < mid_lon  # the west edge of the tile falls in the invalid half
    assert result.validity[row, 0] == 0 and not result.footprint[row, 0]
    assert x > grid.transform.c


def test_speckle_filter_reduces_variance_on_homogeneous_parcels(data):
    grid, cfg = data["grid"], data["cfg"]
    files = s1.list_files(cfg.s1images)
    _, values, invalid = s1.read_acquisitions(files, "DES", grid, cfg.border_threshold)
    filtered = s1.speckle_filter(values[:, 0], invalid, 2)
    with rasterio.open(data["s2"]["class_map"]) as src:
        classes = src.read(1)[: grid.height, : grid.width]
    inner = np.zeros_like(classes, dtype=bool)
    inner[3:-3, 3:-3] = True
    for label in (1, 8):  # urban and water have flat backscatter
        from scipy import ndimage
        where = ndimage.binary_erosion(classes == label, iterations=4) & inner & ~invalid[3]
        assert filtered[3][where].std() / filtered[3][where].mean() < 0.85 * (values[3, 0][where].std()
                                                                           / values[3, 0][where].mean())
        assert abs(filtered[3][where].mean() / values[3, 0][where].mean() - 1) < 0.1
    assert np.all(filtered[invalid] == 0)


def test_speckle_filter_on_pure_speckle():
    """Constant backscatter x gamma speckle (4 looks) over 6 dates: the CV drops by about sqrt(6)."""
    rng = np.random.default_rng(0)
    values = (0.05 * rng.gamma(4.0, 0.25, (6, 60, 60))).astype(np.float32)
    invalid = np.zeros(values.shape, dtype=bool)
    invalid[2, :10] = True
    filtered = s1.speckle_filter(values, invalid, 2)
    core = (slice(None), slice(12, -2), slice(2, -2))
    cv_in = values[core].std() / values[core].mean()
    cv_out = filtered[core].std() / filtered[core].mean()
    assert cv_out < 0.5 * cv_in  # about 1 / sqrt(number of dates) plus the local-mean noise
    assert filtered[core].mean() == pytest.approx(0.05, rel=0.05)
    assert np.all(filtered[2, :10] == 0)
    assert np.array_equal(s1.speckle_filter(values, invalid, 0), values)


def test_chunked_read_equals_whole_tile(data):
    grid = data["grid"]
    sen = sensor(data["cfg"].path)
    dates = s1.Sentinel1.interpolation_dates(sen.config, {TILE: sen.input_dates()})
    whole = sen.read(grid, Window(0, 0, grid.width, grid.height), dates)
    part = sen.read(grid, Window(17, 33, 40, 25), dates)
    np.testing.assert_allclose(part.features, whole.features[33:58, 17:57], rtol=1e-5, atol=1e-7)
    assert np.array_equal(part.validity, whole.validity[33:58, 17:57])
    pixels = (np.array([0, 5, 24]), np.array([0, 9, 39]))
    some = sen.read(grid, Window(17, 33, 40, 25), dates, pixels=pixels)
    assert some.features.shape == (1, 3, whole.features.shape[2])
    np.testing.assert_allclose(some.features[0, 2], whole.features[33 + 24, 17 + 39], rtol=1e-5)


def test_dates_labels_order_and_gapfilling(data):
    grid = data["grid"]
    sen = sensor(data["cfg"].path)
    sen.check_inputs(grid)
    inputs = sen.input_dates()
    expected = sorted(set(data["s1"]["dates"]["DES"]) | set(data["s1"]["dates"]["ASC"]))
    assert inputs == expected
    dates = s1.Sentinel1.interpolation_dates(sen.config, {TILE: inputs})
    assert dates[0] == "20180105" and dates[1] == "20180115" and dates[-1] <= expected[-1]
    result = sen.read(grid, Window(0, 0, grid.width, grid.height), dates)
    n = len(dates)
    assert result.labels[0] == "sentinel1_des_vv_20180105"
    assert result.labels[n] == "sentinel1_des_vh_20180105"
    assert result.labels[2 * n] == "sentinel1_asc_vv_20180105"
    assert result.labels[4 * n - 1] == f"sentinel1_asc_vh_{dates[-1]}"
    assert result.features.shape == (grid.height, grid.width, 4 * n)
    assert np.array_equal(result.features[..., n + 3], result.interpolated[3, 1])
    # the ASC strip of the second ASC date is invalid in the west: gap-filled between its neighbours
    assert result.validity.max() == len(data["s1"]["dates"]["DES"]) * 2
    assert result.validity.min() >= result.validity.max() - 3
    assert result.footprint.all() and np.all(result.features > 0)
    masks_validity, footprint = sen.read_masks(grid, Window(0, 0, grid.width, grid.height))
    assert footprint.all() and abs(int(masks_validity.sum()) - int(result.validity.sum())) < 10


def test_spline_gapfilling_matches_a_cubic():
    days = ["20180101", "20180111", "20180121", "20180131", "20180210"]
    t = np.arange(5) * 10.0
    values = np.stack([(t ** 3 / 1000)[:, None, None]] * 1, axis=1) * np.ones((5, 1, 2, 3))
    invalid = np.zeros((5, 2, 3), dtype=bool)
    invalid[2, 0, 0] = True
    out = s1.gapfill_spline(values, invalid, days, ["20180116", "20180121"])
    np.testing.assert_allclose(out[:, 0], [[[3.375] * 3] * 2, [[8.0] * 3] * 2], rtol=1e-4)


def test_spline_gapfilling_of_backscatter_never_goes_below_zero():
    """A cubic spline overshoots between observations: a sharp drop next to a peak swings below zero, which
    linear backscatter cannot be. The floor bounds it; the observations themselves are kept."""
    days = ["20180101", "20180111", "20180121", "20180131", "20180210", "20180220"]
    series = np.array([0.05, 0.06, 0.9, 0.01, 0.012, 0.05], np.float32)
    values = series[:, None, None, None] * np.ones((6, 1, 1, 2), np.float32)
    invalid = np.zeros((6, 1, 2), dtype=bool)
    output = [f"201801{d:02d}" for d in range(1, 32)] + [f"201802{d:02d}" for d in range(1, 21)]
    free = s1.gapfill_spline(values, invalid, days, output)
    assert free.min() < 0  # the case is real
    floored = s1.gapfill_spline(values, invalid, days, output, floor=0.0)
    assert floored.min() >= 0 and np.array_equal(floored[free >= 0], free[free >= 0])
    on_days = [output.index(day) for day in days]
    np.testing.assert_allclose(floored[on_days, 0, 0, 0], series, rtol=1e-6)


def test_tile_not_covered_and_not_listed(tmp_path, data):
    far = Grid(data["grid"].crs, Affine(10, 0, 900000, 0, -10, 5900000), 50, 50)
    with pytest.raises(InputDataError, match="S1 tile not covered.*s1_images.*T31TCJ"):
        sensor(data["cfg"].path).check_inputs(far)
    other = s1.Sentinel1({"chain": {"s1_path": str(data["cfg"].path)}}, "T30TXY")
    with pytest.raises(ConfigError, match="T30TXY is not listed.*31TCJ"):
        other.check_inputs(data["grid"])


def test_s1_preprocess_command_writes_the_stacks(tmp_path, data):
    cfg = tmp_path / "s1.cfg"
    cfg.write_text(data["cfg"].path.read_text().replace(str(data["cfg"].output), str(tmp_path / "pre")))
    sen = sensor(cfg)
    result = sen.read(data["grid"], Window(0, 0, 100, 100), ["20180105"])  # computed in memory: no stack yet
    assert main(["s1-preprocess", str(cfg), "--tile", TILE]) == 0
    folder = tmp_path / "pre" / TILE
    for pol in ("vv", "vh"):
        for orbit in ("DES", "ASC"):
            with rasterio.open(folder / f"{TILE}_{pol}_{orbit}_STACK.tif") as src:
                assert Grid.from_dataset(src) == data["grid"]
                assert src.count == len(data["s1"]["dates"][orbit])
            dates = (folder / f"{pol}_{orbit}_dates_input.txt").read_text().split()
            assert dates == data["s1"]["dates"][orbit]
            # the chain's grid of this tile: both orbits share it (the feature labels name these dates)
            chain_grid = s1.Sentinel1.interpolation_dates(sen.config, {TILE: sen.input_dates()})
            assert (folder / f"{pol}_{orbit}_dates_interpolation.txt").read_text().split() == chain_grid
    # the stack equals the sensor's filtered raw series
    des_index = [result.input_dates.index(d) for d in data["s1"]["dates"]["DES"]]
    with rasterio.open(folder / f"{TILE}_vh_DES_STACK.tif") as src:
        np.testing.assert_allclose(src.read(), result.raw[des_index, 1], rtol=1e-5, atol=1e-8)
    assert main(["s1-preprocess", str(cfg), "--tile", "T30TXY"]) == 2  # no reference image


def test_chain_reads_the_preprocessed_stacks_when_they_match(tmp_path, data, caplog):
    """With stacks written by s1-preprocess, the sensor reads them (same values as computing in memory); stacks
    computed with other settings are ignored with a warning."""
    cfg = tmp_path / "s1.cfg"
    text = data["cfg"].path.read_text().replace(str(data["cfg"].output), str(tmp_path / "pre"))
    cfg.write_text(text)
    grid, window = data["grid"], Window(10, 20, 60, 30)
    dates = s1.Sentinel1.interpolation_dates(sensor(cfg).config, {TILE: sensor(cfg).input_dates()})
    in_memory = sensor(cfg).read(grid, window, dates)
    assert main(["s1-preprocess", str(cfg), "--tile", TILE]) == 0
    from_stacks = sensor(cfg).read(grid, window, dates)
    np.testing.assert_array_equal(from_stacks.features, in_memory.features)
    np.testing.assert_array_equal(from_stacks.validity, in_memory.validity)
    np.testing.assert_array_equal(sensor(cfg).read_masks(grid, window)[0], in_memory.validity)
    # the stacks are what is read: doubling one doubles the raw values of its orbit and polarisation
    path = tmp_path / "pre" / TILE / f"{TILE}_vv_DES_STACK.tif"
    with rasterio.open(path, "r+") as dst:
        dst.write(dst.read() * 2.0)
    doubled = sensor(cfg).read(grid, window, dates)
    des_index = [in_memory.input_dates.index(d) for d in data["s1"]["dates"]["DES"]]
    np.testing.assert_allclose(doubled.raw[des_index, 0], 2.0 * in_memory.raw[des_index, 0])
    # other settings (border threshold): the stale stacks are ignored
    cfg.write_text(re.sub(r"(?im)^(borderthreshold\s*=\s*).*$", r"\g<1>0.002", text))
    assert s1.read_config(cfg).border_threshold != data["cfg"].border_threshold
    caplog.clear()
    stale = sensor(cfg).read(grid, window, dates)
    assert "ignored" in caplog.text and "s1-preprocess" in caplog.text
    assert f"{TILE}_vv_DES_STACK.tif" in caplog.text and f"{TILE}_vh_DES_STACK.tif" in caplog.text  # both named
    reference = sensor(cfg)
    assert not np.array_equal(stale.raw[des_index, 0], doubled.raw[des_index, 0])
    np.testing.assert_array_equal(stale.features, reference.read(grid, window, dates).features)
