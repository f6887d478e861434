"""Tests of the THEIA Landsat 8 sensor and of the shared optical checks, on generated products."""

import shutil

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from iota2.core.config import all_sections, validate
from iota2.core.errors import ConfigError, InputDataError
from iota2.datagen.optical import generate_landsat8
from iota2.sensors import landsat_8
from iota2.sensors.landsat_8 import BANDS, Landsat8Theia

DATES = ["20180105", "20180306", "20180410", "20180705", "20180907"]
SIZE = 48  # 10 m pixels: 16 x 16 Landsat pixels


def make_config(path, tmp_path, **sections):
    raw = {"chain": {"output_path": str(tmp_path / "out"), "list_tile": "T31TCJ", "l8_path": str(path)}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return validate(raw, all_sections(landsat_8.iota2_config_sections()))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_landsat8(tmp_path_factory.mktemp("l8"), tiles=("T31TCJ",), size=SIZE, dates=DATES, seed=4)


@pytest.fixture(scope="module")
def sensor(dataset, tmp_path_factory):
    return Landsat8Theia(make_config(dataset["l8_path"], tmp_path_factory.mktemp("out")), "T31TCJ")


@pytest.fixture()
def private(tmp_path):
    """A dataset that a test may damage."""
    dataset = generate_landsat8(tmp_path / "data", tiles=("T31TCJ",), size=24, dates=DATES[:3], seed=1)
    return Landsat8Theia(make_config(dataset["l8_path"], tmp_path), "T31TCJ")


def test_hooks_and_config_section(tmp_path):
    assert landsat_8.iota2_register_sensors() == [Landsat8Theia]
    sections = {section.name: section for section in landsat_8.iota2_config_sections()}
    assert set(sections["chain"].params) == {"l8_path", "l8_output_path"}
    assert sections["Landsat8"].params["keep_bands"].default == list(BANDS)
    config = make_config(tmp_path, tmp_path)
    assert config["Landsat8"]["temporal_resolution"] == 16
    with pytest.raises(ConfigError, match="Landsat8.keep_bands"):
        make_config(tmp_path, tmp_path, Landsat8={"keep_bands": ["B2", "B8"]})
    assert Landsat8Theia.enabled(config) and Landsat8Theia.native_resolution == 30


def test_dates_grid_values_masks_and_labels(sensor):
    sensor.check_inputs()
    assert sensor.input_dates() == DATES
    grid = sensor.reference_grid()
    assert grid.resolution == (30.0, 30.0) and (grid.width, grid.height) == (SIZE // 3, SIZE // 3)
    data = sensor.read(grid, Window(0, 0, grid.width, grid.height), DATES)
    product = sensor.products[2]
    for index, band in enumerate(BANDS):
        with rasterio.open(product.band_path(band)) as src:
            np.testing.assert_array_equal(data.raw[2, index], src.read(1))
    masks = {name: np.stack([rasterio.open(p.mask_path(name)).read(1) for p in sensor.products])
             for name in ("CLM", "SAT", "EDG")}
    assert masks["CLM"].any() and masks["EDG"].any()
    np.testing.assert_array_equal(data.masks.astype(bool),
                                  (masks["CLM"] != 0) | (masks["SAT"] != 0) | (masks["EDG"] != 0))
    np.testing.assert_array_equal(data.footprint, (masks["EDG"] == 0).any(axis=0))
    assert data.labels[:7] == [f"landsat8_{band.lower()}_20180105" for band in BANDS]
    assert data.labels[-1] == "landsat8_brightness_20180907"
    ndvi = data.features[:, :, data.labels.index("landsat8_ndvi_20180410")]
    red, nir = data.interpolated[2, BANDS.index("B4")], data.interpolated[2, BANDS.index("B5")]
    np.testing.assert_allclose(ndvi, (nir - red) / (nir + red) * 1000, rtol=1e-5, atol=1e-3)
    ndwi = data.features[:, :, data.labels.index("landsat8_ndwi_20180410")]
    swir = data.interpolated[2, BANDS.index("B6")]
    np.testing.assert_allclose(ndwi, (swir - nir) / (swir + nir) * 1000, rtol=1e-5, atol=1e-3)
    validity, footprint = sensor.read_masks(grid, Window(2, 3, 10, 9))
    np.testing.assert_array_equal(validity, data.validity[3:12, 2:12])
    np.testing.assert_array_equal(footprint, data.footprint[3:12, 2:12])


def test_read_onto_a_10m_grid(sensor):
    grid = sensor.reference_grid(resolution=10)
    data = sensor.read(grid, Window(0, 0, grid.width, grid.height), DATES)
    assert data.features.shape[:2] == (SIZE, SIZE)


def test_interpolation_dates_use_the_landsat_section(tmp_path):
    config = make_config(tmp_path, tmp_path, sensors_data_interpolation={"auto_date": False},
                         Landsat8={"start_date": "20180101", "end_date": "20180201"})
    assert Landsat8Theia.interpolation_dates(config, {"A": ["20180301"]}) == ["20180101", "20180117"]


def test_missing_band_file(private):
    victim = private.products[1].band_path("B6")
    victim.unlink()
    with pytest.raises(InputDataError) as error:
        private.check_inputs()
    assert str(victim) in str(error.value)


def test_band_with_another_grid(private):
    victim = private.products[2].band_path("B3")
    with rasterio.open(victim) as src:
        values, profile = src.read(1), src.profile
    profile["transform"] = profile["transform"] @ profile["transform"].translation(1, 0)
    with rasterio.open(victim, "w", **profile) as dst:
        dst.write(values, 1)
    with pytest.raises(InputDataError, match="does not cover the same area") as error:
        private.check_inputs()
    assert str(victim) in str(error.value)


def test_product_with_another_grid(private):
    product = private.products[1]
    for band in BANDS:
        path = product.band_path(band)
        with rasterio.open(path) as src:
            values, profile = src.read(1), src.profile
        profile["transform"] = profile["transform"] @ profile["transform"].translation(2, 0)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, 1)
    with pytest.raises(InputDataError, match="different grid") as error:
        private.check_inputs()
    assert product.name in str(error.value) and "T31TCJ" in str(error.value)


def test_unknown_layouts_are_named(tmp_path, private):
    folder = tmp_path / "l8" / "T31TCJ"
    (folder / "some_folder").mkdir(parents=True)
    sensor = Landsat8Theia(make_config(tmp_path / "l8", tmp_path), "T31TCJ")
    with pytest.raises(InputDataError) as error:
        sensor.check_inputs()
    message = str(error.value)
    assert str(folder) in message and "some_folder" in message
    assert "LANDSAT8-OLITIRS-XS_20180511-103411-123_L2A_T31TCJ_D_V1-9" in message
    assert "SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7" in message  # the other known layouts
    # Sentinel-2 products given as Landsat 8 products: the message says which key to use
    shutil.copytree(private.products[0].path, folder / "SENTINEL2A_20180105-105804-037_L2A_T31TCJ_D_V1-7")
    sensor = Landsat8Theia(make_config(tmp_path / "l8", tmp_path), "T31TCJ")
    with pytest.raises(InputDataError, match="chain.s2_path"):
        sensor.check_inputs()


def test_missing_tile_folder(dataset, tmp_path):
    sensor = Landsat8Theia(make_config(dataset["l8_path"], tmp_path), "T30XYZ")
    with pytest.raises(InputDataError, match="chain.l8_path"):
        sensor.check_inputs()
