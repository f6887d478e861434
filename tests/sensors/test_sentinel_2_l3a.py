"""Tests of the THEIA Sentinel-2 L3A sensor on generated monthly syntheses."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from iota2.core.config import all_sections, validate
from iota2.core.errors import ConfigError, InputDataError
from iota2.datagen.optical import L3A_DATES, generate_l3a
from iota2.sensors import sentinel_2_l3a
from iota2.sensors.sentinel_2_l3a import BANDS, Sentinel2L3A

SIZE = 32


def make_config(path, tmp_path, **sections):
    raw = {"chain": {"output_path": str(tmp_path / "out"), "list_tile": "T31TCJ", "s2_l3a_path": str(path)}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return validate(raw, all_sections(sentinel_2_l3a.iota2_config_sections()))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_l3a(tmp_path_factory.mktemp("l3a"), tiles=("T31TCJ",), size=SIZE, dates=L3A_DATES[:5], seed=4)


def test_hooks_and_sections(tmp_path):
    assert sentinel_2_l3a.iota2_register_sensors() == [Sentinel2L3A]
    sections = {section.name: section for section in sentinel_2_l3a.iota2_config_sections()}
    assert set(sections["chain"].params) == {"s2_l3a_path", "s2_l3a_output_path"}
    with pytest.raises(ConfigError, match="Sentinel_2_L3A.keep_bands"):
        make_config(tmp_path, tmp_path, Sentinel_2_L3A={"keep_bands": ["B1"]})


def test_products_flg_mask_and_labels(dataset, tmp_path):
    config = make_config(dataset["s2_l3a_path"], tmp_path, sensors_data_interpolation={"auto_date": False},
                         Sentinel_2_L3A={"start_date": "20180115", "end_date": "20180515", "temporal_resolution": 30})
    sensor = Sentinel2L3A(config, "T31TCJ")
    sensor.check_inputs()
    assert sensor.input_dates() == list(L3A_DATES[:5])
    product = sensor.products[0]
    assert product.name == "SENTINEL2X_20180115-000000-000_L3A_T31TCJ_D_V1-1"
    assert product.band_path("B2").name.endswith("_FRC_B2.tif") and product.mask_path("FLG").name.endswith("_FLG_R1.tif")
    dates = Sentinel2L3A.interpolation_dates(config, {"T31TCJ": sensor.input_dates()})
    assert dates == ["20180115", "20180214", "20180316", "20180415", "20180515"]
    data = sensor.read(sensor.reference_grid(), Window(0, 0, SIZE, SIZE), dates)
    flg = np.stack([rasterio.open(p.mask_path("FLG")).read(1) for p in sensor.products])
    assert set(np.unique(flg)) <= {0, 1, 3, 4} and (flg == 0).any() and (flg == 1).any()
    np.testing.assert_array_equal(data.masks.astype(bool), flg <= 1)
    np.testing.assert_array_equal(data.footprint, (flg != 0).any(axis=0))
    assert data.labels[:len(BANDS)] == [f"sentinel2l3a_{band.lower()}_20180115" for band in BANDS]
    assert data.labels[-1] == "sentinel2l3a_brightness_20180515"


def test_folder_of_other_products(tmp_path):
    (tmp_path / "l3a" / "T31TCJ" / "S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE").mkdir(
        parents=True)
    sensor = Sentinel2L3A(make_config(tmp_path / "l3a", tmp_path), "T31TCJ")
    with pytest.raises(InputDataError, match=r"no Sentinel-2 L3A product .*chain\.s2_s2c_path"):
        sensor.check_inputs()
