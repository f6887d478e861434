"""Tests of the THEIA Sentinel-2 sensor on generated products written to disk."""

import logging
import shutil
import tracemalloc

import numpy as np
import pytest
import rasterio
import rasterio.warp
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy import ndimage

from iota2.core.config import all_sections, validate
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import Grid
from iota2.datagen.sentinel2 import generate_dataset
from iota2.sensors import sentinel_2
from iota2.sensors.sentinel_2 import (BANDS, NODATA, Sentinel2Theia, aligned_window, compute_features,
                                      product_date, read_onto_grid)

DATES = ["20180105", "20180209", "20180306", "20180410", "20180510", "20180614", "20180803", "20181007"]
SIZE = 64


def make_config(s2_path, tmp_path, **sections):
    raw = {"chain": {"output_path": str(tmp_path / "out"), "list_tile": "T31TCJ T31TDJ", "s2_path": str(s2_path)}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return validate(raw, all_sections(sentinel_2.iota2_config_sections()))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s2data")
    return generate_dataset(folder, size=SIZE, dates=DATES, seed=3)


@pytest.fixture(scope="module")
def sensor(dataset, tmp_path_factory):
    config = make_config(dataset["s2_path"], tmp_path_factory.mktemp("out"))
    return Sentinel2Theia(config, "T31TCJ")


@pytest.fixture()
def small_dataset(tmp_path):
    """A private dataset that a test may damage."""
    return generate_dataset(tmp_path / "data", size=32, dates=DATES[:3], seed=1)


def test_hooks_register_sensor_and_sections():
    assert sentinel_2.iota2_register_sensors() == [Sentinel2Theia]
    sections = {section.name: section for section in sentinel_2.iota2_config_sections()}
    assert set(sections["chain"].params) == {"s2_path", "s2_output_path"}
    assert sections["Sentinel_2"].params["keep_bands"].default == list(BANDS)
    assert Sentinel2Theia.name == "Sentinel2" and Sentinel2Theia.path_key == "s2_path"


def test_config_section_defaults_and_date_conversion(tmp_path):
    config = make_config(tmp_path, tmp_path, Sentinel_2={"start_date": 20180101, "end_date": "20181231"})
    assert config["Sentinel_2"]["start_date"] == "20180101"
    assert config["Sentinel_2"]["temporal_resolution"] == 10
    assert config["Sentinel_2"]["write_reproject_resampled_input_dates_stack"] is True
    with pytest.raises(ConfigError, match="Sentinel_2.start_date"):
        make_config(tmp_path, tmp_path, Sentinel_2={"start_date": "2018-01-01"})
    with pytest.raises(ConfigError, match="Sentinel_2.keep_bands"):
        make_config(tmp_path, tmp_path, Sentinel_2={"keep_bands": ["B2", "B9"]})


def test_product_date_parsing():
    assert product_date("SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7") == "20180511"
    assert product_date("SENTINEL2X_20180515-000000-000_L3A_T31TCJ_D_V1-1") == "20180515"
    assert product_date("SENTINEL2A_notadate_L2A") is None


def test_input_dates_found(sensor, dataset):
    sensor.check_inputs()
    assert sensor.input_dates() == DATES
    assert sensor.products[0].name == "SENTINEL2A_20180105-105804-037_L2A_T31TCJ_D_V1-7"


def test_duplicated_date_keeps_first_and_warns(small_dataset, tmp_path, caplog):
    tile_folder = f"{small_dataset['s2_path']}/T31TCJ"
    original = "SENTINEL2A_20180105-105804-037_L2A_T31TCJ_D_V1-7"
    duplicate = "SENTINEL2B_20180105-110000-000_L2A_T31TCJ_D_V1-7"
    shutil.copytree(f"{tile_folder}/{original}", f"{tile_folder}/{duplicate}")
    sensor = Sentinel2Theia(make_config(small_dataset["s2_path"], tmp_path), "T31TCJ")
    with caplog.at_level(logging.WARNING):
        assert sensor.input_dates() == DATES[:3]
    assert sensor.products[0].name == original
    assert any("same date" in record.getMessage() for record in caplog.records)
    # sensors are made again per tile, check and task: the folder is warned about once per process
    again = Sentinel2Theia(make_config(small_dataset["s2_path"], tmp_path), "T31TCJ")
    with caplog.at_level(logging.WARNING):
        assert again.input_dates() == DATES[:3]
    assert sum("same date" in record.getMessage() for record in caplog.records) == 1


def test_reference_grid(sensor, dataset):
    first_b2 = sensor.products[0].band_path("B2")
    assert sensor.reference_grid() == Grid.from_file(first_b2)
    coarse = sensor.reference_grid(resolution=20)
    assert coarse.resolution == (20.0, 20.0) and (coarse.width, coarse.height) == (SIZE // 2, SIZE // 2)
    assert sensor.reference_grid(crs="EPSG:32631", resolution=10) == sensor.reference_grid()
    lambert = sensor.reference_grid(crs="EPSG:2154")
    assert lambert.crs.to_epsg() == 2154
    assert lambert.resolution == (10.0, 10.0)
    assert lambert.transform.c % 10 == 0 and lambert.transform.f % 10 == 0  # target-aligned pixels
    # the grid covers the tile's footprint
    native_bounds = sensor.reference_grid().bounds
    left, bottom, right, top = rasterio.warp.transform_bounds("EPSG:32631", "EPSG:2154", *native_bounds)
    g_left, g_bottom, g_right, g_top = lambert.bounds
    assert g_left <= left and g_bottom <= bottom and g_right >= right and g_top >= top
    assert g_right - g_left < right - left + 30


def test_band_order_raw_values_and_labels(sensor):
    grid = sensor.reference_grid()
    data = sensor.read(grid, Window(0, 0, SIZE, SIZE), DATES)
    assert data.band_names == list(BANDS)
    product = sensor.products[4]
    files = {}
    for band in BANDS:
        with rasterio.open(product.band_path(band)) as src:
            values = src.read(1).astype(np.float32)
        files[band] = np.repeat(np.repeat(values, 2, 0), 2, 1) if values.shape[0] != SIZE else values
    for index, band in enumerate(BANDS):
        if band in ("B2", "B3", "B4", "B8"):
            np.testing.assert_array_equal(data.raw[4, index], files[band])
        errors = {other: np.abs(data.raw[4, index] - files[other]).mean() for other in BANDS}
        assert min(errors, key=errors.get) == band
    first = [f"sentinel2_{band.lower()}_20180105" for band in BANDS]
    assert data.labels[:10] == first
    assert data.labels[10] == "sentinel2_b2_20180209"
    n_refl = len(BANDS) * len(DATES)
    assert data.labels[n_refl:n_refl + 2] == ["sentinel2_ndvi_20180105", "sentinel2_ndvi_20180209"]
    assert data.labels[n_refl + len(DATES)] == "sentinel2_ndwi_20180105"
    assert data.labels[-1] == "sentinel2_brightness_20181007"
    assert data.features.shape == (SIZE, SIZE, len(data.labels)) and data.features.dtype == np.float32
    # reflectances are date-major copies of the interpolated stack
    np.testing.assert_array_equal(data.features[:, :, 13], data.interpolated[1, 3])


def test_masks_validity_footprint_and_gapfilling(sensor):
    grid = sensor.reference_grid()
    data = sensor.read(grid, Window(0, 0, SIZE, SIZE), DATES)
    clm = np.stack([rasterio.open(p.mask_path("CLM")).read(1) for p in sensor.products])
    sat = np.stack([rasterio.open(p.mask_path("SAT")).read(1) for p in sensor.products])
    edg = np.stack([rasterio.open(p.mask_path("EDG")).read(1) for p in sensor.products])
    assert clm.any() and sat.any() and edg.any()
    np.testing.assert_array_equal(data.masks.astype(bool), (clm != 0) | (sat != 0) | (edg != 0))
    np.testing.assert_array_equal(data.validity, len(DATES) - data.masks.sum(axis=0))
    assert data.validity.dtype == np.uint16
    np.testing.assert_array_equal(data.footprint, (edg == 0).any(axis=0))
    valid = ~data.masks.astype(bool)
    # valid observations are kept as they are, masked ones are replaced by interpolated values
    np.testing.assert_array_equal(data.interpolated.transpose(1, 0, 2, 3)[:, valid],
                                  data.raw.transpose(1, 0, 2, 3)[:, valid])
    cloudy = (clm[3] != 0) & valid[2] & valid[4]
    assert cloudy.any()
    expected = data.raw[2] + (data.raw[4] - data.raw[2]) * (35.0 / 65.0)  # 20180306 -> 20180410 -> 20180510
    np.testing.assert_allclose(data.interpolated[3][:, cloudy], expected[:, cloudy], rtol=1e-5, atol=0.05)
    assert np.all(data.interpolated > 0)


def test_fast_path_equals_warped_vrt(sensor):
    grid = sensor.reference_grid()
    window_grid = grid.window_grid(Window(7, 13, 41, 30))  # odd offsets: half 20 m pixels
    for product in sensor.products:
        with rasterio.open(product.band_path("B5")) as src:
            window = aligned_window(src, window_grid)
        assert window is not None and window.col_off == 3.5  # the direct read is really used
        edge_free = rasterio.open(product.mask_path("EDG")).read(1, window=Window(7, 13, 41, 30)) == 0
        far_from_edges = ndimage.binary_erosion(edge_free, iterations=3, border_value=1)
        assert far_from_edges.mean() > 0.8
        for band in BANDS:
            direct = read_onto_grid(product.band_path(band), window_grid, Resampling.bilinear, NODATA, NODATA)
            warped = read_onto_grid(product.band_path(band), window_grid, Resampling.bilinear, NODATA, NODATA,
                                    force_warp=True)
            # both are nodata-aware; next to nodata their weights differ, elsewhere they are identical
            np.testing.assert_array_equal(direct[far_from_edges], warped[far_from_edges])
            if band in ("B2", "B3", "B4", "B8"):
                np.testing.assert_array_equal(direct, warped)
        for mask in ("CLM", "SAT", "EDG"):
            direct = read_onto_grid(product.mask_path(mask), window_grid, Resampling.nearest, 255)
            warped = read_onto_grid(product.mask_path(mask), window_grid, Resampling.nearest, 255, force_warp=True)
            np.testing.assert_array_equal(direct, warped)


def test_window_outside_the_file_is_warped_and_filled(sensor):
    grid = sensor.reference_grid()
    shifted = Grid(grid.crs, grid.transform @ grid.transform.translation(-5, 0), 20, 20)
    assert aligned_window(rasterio.open(sensor.products[0].band_path("B2")), shifted) is None
    values = read_onto_grid(sensor.products[0].band_path("B2"), shifted, Resampling.bilinear, NODATA, NODATA)
    assert np.all(values[:, :5] == NODATA) and np.all(values[:, 6:] != NODATA)
    edge = read_onto_grid(sensor.products[0].mask_path("EDG"), shifted, Resampling.nearest, 255)
    assert np.all(edge[:, :5] == 255) and np.all(edge[:, 5:] == 0)


def test_features_of_a_window_equal_part_of_full_tile(sensor):
    grid = sensor.reference_grid()
    interpolation = Sentinel2Theia.interpolation_dates(sensor.config, {"T31TCJ": sensor.input_dates()})
    full = sensor.read(grid, Window(0, 0, SIZE, SIZE), interpolation)
    part = sensor.read(grid, Window(11, 5, 29, 40), interpolation)
    rows, cols = slice(5, 45), slice(11, 40)
    np.testing.assert_array_equal(part.features, full.features[rows, cols])
    np.testing.assert_array_equal(part.validity, full.validity[rows, cols])
    np.testing.assert_array_equal(part.footprint, full.footprint[rows, cols])
    assert part.labels == full.labels


def test_read_onto_another_crs_and_resolution(sensor):
    coarse = sensor.reference_grid(resolution=20)
    data = sensor.read(coarse, Window(0, 0, coarse.width, coarse.height), DATES)
    assert data.features.shape[:2] == (SIZE // 2, SIZE // 2)
    lambert = sensor.reference_grid(crs="EPSG:2154")
    data = sensor.read(lambert, Window(0, 0, lambert.width, lambert.height), DATES)
    assert data.features.shape[:2] == (lambert.height, lambert.width)
    assert data.footprint.mean() > 0.5  # the reprojected tile covers most of its bounding grid
    ndvi = data.features[:, :, data.labels.index("sentinel2_ndvi_20180614")]
    assert -1000 <= ndvi[data.footprint].min() and ndvi[data.footprint].max() <= 1000


def test_index_scaling_on_known_values():
    values = np.zeros((2, len(BANDS), 1, 3), dtype=np.float32)
    values[:, :, 0, 0] = 100.0
    b4, b8, b11 = BANDS.index("B4"), BANDS.index("B8"), BANDS.index("B11")
    values[0, b4, 0, 0], values[0, b8, 0, 0], values[0, b11, 0, 0] = 1000.0, 3000.0, 2000.0
    values[:, :, 0, 1] = 0.0  # zero denominators
    values[1, :, 0, 2] = 500.0
    values[1, BANDS.index("B12"), 0, 2] = NODATA
    features, labels = compute_features(values, list(BANDS), ["20180101", "20180111"])
    column = {label: features[0, :, index] for index, label in enumerate(labels)}
    assert column["sentinel2_ndvi_20180101"][0] == pytest.approx(500.0)  # (3000-1000)/(3000+1000)*1000
    assert column["sentinel2_ndwi_20180101"][0] == pytest.approx(-200.0)  # (2000-3000)/(2000+3000)*1000
    expected_brightness = np.sqrt(1000.0 ** 2 + 3000.0 ** 2 + 2000.0 ** 2 + 7 * 100.0 ** 2)
    assert column["sentinel2_brightness_20180101"][0] == pytest.approx(expected_brightness, rel=1e-6)
    assert column["sentinel2_ndvi_20180111"][0] == 0.0  # equal bands
    for name in ("ndvi", "ndwi", "brightness"):
        assert column[f"sentinel2_{name}_20180101"][1] == 0.0
        assert column[f"sentinel2_{name}_20180111"][2] == NODATA  # a nodata band on that date
    assert column["sentinel2_b8_20180101"][0] == 3000.0


def test_feature_options_keep_bands_copy_input_and_additional():
    values = np.random.default_rng(0).uniform(100, 5000, (3, len(BANDS), 2, 2)).astype(np.float32)
    dates = ["20180101", "20180111", "20180121"]
    features, labels = compute_features(values, list(BANDS), dates, copy_input=False, indices=["ndvi"],
                                        additional_features=["b7-b3", "sqrt(b1)"])
    assert labels == ([f"sentinel2_ndvi_{d}" for d in dates] + [f"sentinel2_user_features_1_{d}" for d in dates]
                      + [f"sentinel2_user_features_2_{d}" for d in dates])
    np.testing.assert_array_equal(features[:, :, 3], np.trunc(values[0, 6] - values[0, 2]))
    np.testing.assert_array_equal(features[:, :, 8], np.trunc(np.sqrt(values[2, 0])))
    features, labels = compute_features(values, list(BANDS), dates, keep_bands=["B8", "B4", "B11"])
    assert labels[:3] == ["sentinel2_b4_20180101", "sentinel2_b8_20180101", "sentinel2_b11_20180101"]
    brightness = features[:, :, labels.index("sentinel2_brightness_20180111")]
    expected = np.sqrt(values[1, 2] ** 2 + values[1, 6] ** 2 + values[1, 8] ** 2)
    np.testing.assert_allclose(brightness, expected, rtol=1e-6)
    with pytest.raises(ConfigError, match="Sentinel_2.keep_bands"):
        compute_features(values, list(BANDS), dates, keep_bands=["B2", "B3", "B8", "B11"])  # NDVI needs B4
    with pytest.raises(ConfigError, match="Sentinel_2.keep_bands"):
        compute_features(values, list(BANDS), dates, keep_bands=["B4", "B8", "B11", "B13"])
    with pytest.raises(ConfigError, match="arg_train.features"):
        compute_features(values, list(BANDS), dates, indices=["NDSI"])
    with pytest.raises(ConfigError, match="additional_features"):
        compute_features(values, list(BANDS), dates, additional_features=["__import__('os')"])


def test_read_honours_feature_configuration(dataset, tmp_path):
    config = make_config(dataset["s2_path"], tmp_path, iota2_feature_extraction={"extract_bands": True},
                         Sentinel_2={"keep_bands": ["B4", "B8", "B11"]}, arg_train={"features": ["NDWI"]})
    sensor = Sentinel2Theia(config, "T31TCJ")
    data = sensor.read(sensor.reference_grid(), Window(0, 0, 8, 8), DATES)
    assert len(data.labels) == 3 * len(DATES) + len(DATES)
    assert data.labels[-1] == "sentinel2_ndwi_20181007"
    nir, swir = data.interpolated[-1, BANDS.index("B8")], data.interpolated[-1, BANDS.index("B11")]
    np.testing.assert_allclose(data.features[:, :, -1], (swir - nir) / (swir + nir) * 1000, rtol=1e-5)


def test_without_gapfilling_dates_are_the_union_and_raw_values_are_kept(dataset, tmp_path):
    config = make_config(dataset["s2_path"], tmp_path, sensors_data_interpolation={"use_gapfilling": False})
    dates = Sentinel2Theia.interpolation_dates(config, {"T31TCJ": DATES[:4], "T31TDJ": DATES[2:]})
    assert dates == DATES
    sensor = Sentinel2Theia(config, "T31TCJ")
    data = sensor.read(sensor.reference_grid(), Window(0, 0, 16, 16), DATES[:2] + ["20180110"])
    np.testing.assert_array_equal(data.interpolated[:2], data.raw[:2])
    assert np.all(data.interpolated[2] == NODATA)
    assert np.all(data.features[:, :, data.labels.index("sentinel2_ndvi_20180110")] == NODATA)


def test_interpolation_dates(tmp_path):
    auto = make_config(tmp_path, tmp_path, Sentinel_2={"temporal_resolution": 20})
    dates = Sentinel2Theia.interpolation_dates(auto, {"A": ["20180110", "20180301"], "B": ["20180105", "20180220"]})
    assert dates == ["20180105", "20180125", "20180214"]  # earliest to latest of all tiles, end off the grid
    manual = make_config(tmp_path, tmp_path, sensors_data_interpolation={"auto_date": False},
                         Sentinel_2={"start_date": 20180101, "end_date": 20180201})
    assert Sentinel2Theia.interpolation_dates(manual, {"A": ["20170101"]}) == \
        ["20180101", "20180111", "20180121", "20180131"]
    unset = make_config(tmp_path, tmp_path, sensors_data_interpolation={"auto_date": False})
    with pytest.raises(ConfigError, match="Sentinel_2.start_date"):
        Sentinel2Theia.interpolation_dates(unset, {"A": ["20180101"]})


def test_memory_estimate_bounds_the_real_peak(sensor):
    grid = sensor.reference_grid()
    interpolation = Sentinel2Theia.interpolation_dates(sensor.config, {"T31TCJ": sensor.input_dates()})
    window = Window(0, 0, SIZE, 48)
    sensor.read(grid, window, interpolation).default_features()  # warm-up (GDAL caches, imports)
    tracemalloc.start()
    try:  # what the estimate sizes chunks for: the read and the feature stage's default features
        sensor.read(grid, window, interpolation).default_features()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = sensor.bytes_per_pixel(len(interpolation)) * SIZE * 48
    assert peak <= estimate
    assert estimate <= 2.5 * peak


def test_missing_tile_folder(dataset, tmp_path):
    sensor = Sentinel2Theia(make_config(dataset["s2_path"], tmp_path), "T30XYZ")
    with pytest.raises(InputDataError, match="chain.s2_path") as error:
        sensor.check_inputs()
    assert "T30XYZ" in str(error.value)


def test_folder_without_product(tmp_path):
    (tmp_path / "s2" / "T31TCJ" / "not_a_product").mkdir(parents=True)
    sensor = Sentinel2Theia(make_config(tmp_path / "s2", tmp_path), "T31TCJ")
    with pytest.raises(InputDataError, match=r"no Sentinel-2 THEIA product \(SENTINEL2\*_L2A_\*\) in "):
        sensor.check_inputs()


@pytest.mark.parametrize("missing", ["FRE_B8A.tif", "CLM_R1.tif"])
def test_missing_band_or_mask_file(small_dataset, tmp_path, missing):
    sensor = Sentinel2Theia(make_config(small_dataset["s2_path"], tmp_path), "T31TCJ")
    victim = next(path for path in sensor.products[1].files() if path.name.endswith(missing))
    victim.unlink()
    with pytest.raises(InputDataError) as error:
        sensor.check_inputs()
    assert str(victim) in str(error.value)


def test_corrupt_geotiff_names_the_file(small_dataset, tmp_path):
    sensor = Sentinel2Theia(make_config(small_dataset["s2_path"], tmp_path), "T31TCJ")
    victim = sensor.products[2].band_path("B11")
    content = victim.read_bytes()
    victim.write_bytes(content[:len(content) // 2])
    sensor.check_inputs()  # names and headers are fine
    grid = sensor.reference_grid()
    with pytest.raises(InputDataError) as error:
        sensor.read(grid, Window(0, 0, 32, 32), DATES[:3])
    assert str(victim) in str(error.value)
    with pytest.raises(InputDataError) as error:
        read_onto_grid(victim, grid, Resampling.bilinear, NODATA, NODATA, force_warp=True)
    assert str(victim) in str(error.value)


def test_read_masks_equals_the_full_read(sensor):
    grid = sensor.reference_grid()
    window = Window(5, 7, 40, 30)
    data = sensor.read(grid, window, sensor.input_dates())
    validity, footprint = sensor.read_masks(grid, window)
    assert validity.dtype == np.uint16 and footprint.dtype == bool
    assert np.array_equal(validity, data.validity)
    assert np.array_equal(footprint, data.footprint)


def test_read_at_pixels_equals_the_window_read(sensor):
    grid = sensor.reference_grid()
    window = Window(3, 4, 50, 40)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 40, 300), rng.integers(0, 50, 300)
    full = sensor.read(grid, window, sensor.input_dates())
    points = sensor.read(grid, window, sensor.input_dates(), pixels=(rows, cols))
    assert points.features.shape == (1, 300, full.features.shape[2])
    np.testing.assert_array_equal(points.features[0], full.features[rows, cols])
    np.testing.assert_array_equal(points.validity[0], full.validity[rows, cols])
    assert points.labels == full.labels


def test_nan_reflectances_are_masked_with_a_warning(small_dataset, tmp_path, caplog):
    """A float band holding NaN: the observations are masked (gap-filled from the other dates), the file is
    named once in a warning, and no NaN reaches the series or the features."""
    sensor = Sentinel2Theia(make_config(small_dataset["s2_path"], tmp_path), "T31TCJ")
    grid = sensor.reference_grid()
    clean = sensor.read(grid, Window(0, 0, 32, 32), DATES[:3])
    victim = sensor.products[1].band_path("B4")
    with rasterio.open(victim) as src:
        profile, values = src.profile, src.read(1).astype(np.float32)
    values[5:15, 5:15] = np.nan
    profile.update(dtype="float32")
    with rasterio.open(victim, "w", **profile) as dst:
        dst.write(values, 1)
    with caplog.at_level(logging.WARNING):
        data = sensor.read(grid, Window(0, 0, 32, 32), DATES[:3])
        sensor.read(grid, Window(0, 0, 32, 32), DATES[:3])
    warnings = [r.getMessage() for r in caplog.records if "NaN" in r.getMessage()]
    assert len(warnings) == 1 and str(victim) in warnings[0]
    for array in (data.raw, data.interpolated, data.features):
        assert not np.isnan(array).any()
    assert data.masks[1, 5:15, 5:15].all()
    np.testing.assert_array_equal(data.masks[1, 20:, 20:], clean.masks[1, 20:, 20:])
    np.testing.assert_array_equal(data.validity[5:15, 5:15].astype(int),
                                  clean.validity[5:15, 5:15].astype(int) - (clean.masks[1, 5:15, 5:15] == 0))
    clear, footprint = sensor.read_clear_by_date(grid, Window(0, 0, 32, 32))
    assert clear.shape == (3, 32, 32) and np.array_equal(clear, clean.masks == 0)


def test_nan_in_a_series_is_an_invalid_observation():
    """series_on_dates, shared by the sensors, never passes NaN on: it masks the observation and gap-fills it."""
    from iota2.core.timeseries import series_on_dates

    raw = np.full((3, 2, 2, 2), 100.0, np.float32)
    raw[1, 0, 0, 0] = np.nan
    raw[2] = 300.0
    masks = np.zeros((3, 2, 2), np.uint8)
    dates = ["20180101", "20180111", "20180121"]
    out_raw, out_masks, _, validity, interpolated = series_on_dates(raw, masks, np.ones((2, 2), bool), dates, dates,
                                                                    True, NODATA)
    assert out_masks[1, 0, 0] == 1 and validity[0, 0] == 2 and validity[1, 1] == 3
    assert not np.isnan(interpolated).any() and not np.isnan(out_raw).any()
    np.testing.assert_allclose(interpolated[1, :, 0, 0], [200.0, 200.0])  # from the two other dates
    assert np.isnan(raw[1, 0, 0, 0])  # the caller's array is left alone
    _, _, _, _, placed = series_on_dates(raw, masks, np.ones((2, 2), bool), dates, dates, False, NODATA)
    assert placed[1, 0, 0, 0] == NODATA
