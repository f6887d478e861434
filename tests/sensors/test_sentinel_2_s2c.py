"""Tests of the Sen2Cor Sentinel-2 sensor on generated JPEG 2000 products."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from iota2.core.config import all_sections, validate
from iota2.core.errors import InputDataError
from iota2.datagen.optical import generate_s2c
from iota2.sensors import sentinel_2_s2c
from iota2.sensors.sentinel_2_s2c import BANDS, NODATA, SCL_INVALID, Sentinel2S2C, s2c_date

DATES = ["20180105", "20180306", "20180410", "20180705"]
SIZE = 32


def make_config(path, tmp_path, **sections):
    raw = {"chain": {"output_path": str(tmp_path / "out"), "list_tile": "T31TCJ", "s2_s2c_path": str(path)}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return validate(raw, all_sections(sentinel_2_s2c.iota2_config_sections()))


@pytest.fixture(scope="module")
def sensor(tmp_path_factory):
    dataset = generate_s2c(tmp_path_factory.mktemp("s2c"), tiles=("T31TCJ",), size=SIZE, dates=DATES, seed=4)
    return Sentinel2S2C(make_config(dataset["s2_s2c_path"], tmp_path_factory.mktemp("out")), "T31TCJ")


def test_jpeg2000_is_readable():
    assert rasterio.drivers.raster_driver_extensions().get("jp2") == "JP2OpenJPEG"


def test_hooks_and_names():
    assert sentinel_2_s2c.iota2_register_sensors() == [Sentinel2S2C]
    sections = {section.name: section for section in sentinel_2_s2c.iota2_config_sections()}
    assert set(sections["chain"].params) == {"s2_s2c_path", "s2_s2c_output_path"}
    assert "keep_bands" in sections["Sentinel_2_S2C"].params
    assert s2c_date("S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE") == "20180511"
    assert s2c_date("S2A_MSIL2A_notadate") is None


def test_layout_values_masks_and_labels(sensor):
    sensor.check_inputs()
    assert sensor.input_dates() == DATES
    product = sensor.products[1]
    assert product.band_path("B2").name == "T31TCJ_20180306T105031_B02_10m.jp2"
    assert product.band_path("B8A").parent.name == "R20m"
    grid = sensor.reference_grid()
    assert grid.resolution == (10.0, 10.0) and grid.width == SIZE
    data = sensor.read(grid, Window(0, 0, SIZE, SIZE), DATES)
    scl = []
    for index, current in enumerate(sensor.products):
        with rasterio.open(current.band_path("B4")) as src:
            b4 = src.read(1).astype(np.float32)
        with rasterio.open(current.mask_path("SCL")) as src:
            scl.append(np.repeat(np.repeat(src.read(1), 2, 0), 2, 1))
        np.testing.assert_array_equal(data.raw[index, BANDS.index("B4")], np.where(b4 == 0, NODATA, b4))
    scl = np.stack(scl)
    assert np.isin(scl, (0, 8, 9, 3)).any() and np.isin(scl, (4, 5, 6)).any()
    np.testing.assert_array_equal(data.masks.astype(bool) | np.any(data.raw == NODATA, axis=1),
                                  np.isin(scl, SCL_INVALID) | np.any(data.raw == NODATA, axis=1))
    assert np.isin(scl, SCL_INVALID)[data.masks == 0].sum() == 0
    np.testing.assert_array_equal(data.footprint, (scl != 0).any(axis=0))
    assert (scl == 0).any()  # the no-data strip, invalid and outside the footprint of that date
    assert data.labels[0] == "sentinel2s2c_b2_20180105"
    assert "sentinel2s2c_ndvi_20180410" in data.labels
    valid = data.masks == 0
    assert data.raw.transpose(1, 0, 2, 3)[:, valid].min() > 0  # reflectances x10000, no nodata left


def test_missing_band_names_the_pattern(tmp_path):
    dataset = generate_s2c(tmp_path / "data", tiles=("T31TCJ",), size=16, dates=DATES[:2], seed=1)
    sensor = Sentinel2S2C(make_config(dataset["s2_s2c_path"], tmp_path), "T31TCJ")
    victim = sensor.products[1].band_path("B11")
    victim.unlink()
    with pytest.raises(InputDataError) as error:
        sensor.check_inputs()
    assert sensor.products[1].name in str(error.value) and "B11_20m.jp2" in str(error.value)


def _read_all(path, tmp_path):
    sensor = Sentinel2S2C(make_config(path, tmp_path), "T31TCJ")
    sensor.check_inputs()
    grid = sensor.reference_grid()
    return sensor, sensor.read(grid, Window(0, 0, grid.width, grid.height), sensor.input_dates())


def test_baseline_04_offset_is_removed(tmp_path):
    """The same landscape written before and after ESA's processing baseline 04.00 (files x10000 + 1000, offset
    declared in MTD_MSIL2A.xml) reads to the same reflectances and features."""
    dates = ["20220105", "20220306"]
    before = generate_s2c(tmp_path / "old", tiles=("T31TCJ",), size=16, dates=dates, seed=2,
                          processing_baseline="N0206")
    after = generate_s2c(tmp_path / "new", tiles=("T31TCJ",), size=16, dates=dates, seed=2)
    sensor_after, data_after = _read_all(after["s2_s2c_path"], tmp_path)
    assert [product.name.split("_")[3] for product in sensor_after.products] == ["N0206", "N0400"]
    with rasterio.open(sensor_after.products[1].band_path("B4")) as src:
        stored = src.read(1)
    _, data_before = _read_all(before["s2_s2c_path"], tmp_path)
    assert stored[stored > 0].min() > 1000  # the files do hold the offset
    np.testing.assert_array_equal(data_after.masks, data_before.masks)
    valid = data_after.masks == 0  # (edge pixels mix the files' 0 into the up-sampling of the 20 m bands)
    np.testing.assert_array_equal(data_after.raw.transpose(1, 0, 2, 3)[:, valid],
                                  data_before.raw.transpose(1, 0, 2, 3)[:, valid])
    np.testing.assert_allclose(data_after.features, data_before.features)
    # without its metadata file, a baseline 04.00 product gets ESA's offset (and a warning)
    sentinel_2_s2c.product_radiometry.cache_clear()
    (sensor_after.products[1].path / "MTD_MSIL2A.xml").unlink()
    _, trimmed = _read_all(after["s2_s2c_path"], tmp_path)
    np.testing.assert_array_equal(trimmed.raw, data_after.raw)


def test_unreadable_metadata_fails_at_check(tmp_path):
    dataset = generate_s2c(tmp_path / "data", tiles=("T31TCJ",), size=16, dates=["20220306"], seed=1)
    sensor = Sentinel2S2C(make_config(dataset["s2_s2c_path"], tmp_path), "T31TCJ")
    (sensor.products[0].path / "MTD_MSIL2A.xml").write_text("<truncated", encoding="utf-8")
    sentinel_2_s2c.product_radiometry.cache_clear()
    with pytest.raises(InputDataError, match="MTD_MSIL2A.xml is not valid XML"):
        sensor.check_inputs()
