"""The built-in feature functions (get_soi, get_ndvi, get_ndsi, get_cari): registered through the ``iota2``
entry-point group, values checked against their formulas, conformance, and the error without Sentinel-2."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from iota2.core.config import Config
from iota2.core.feature_functions import (SENTINEL2_BANDS, SENTINEL2_INDICES, FeatureContainer,
                                          FeatureFunctionError, FeatureFunctions, check_feature_function,
                                          registered_functions, synthetic_sentinel2)
from iota2.core.sensor import SensorData
from iota2.plugins import feature_functions as builtins

NODATA = -10000.0
NAMES = ("get_soi", "get_ndvi", "get_ndsi", "get_cari")


def _functions(functions) -> FeatureFunctions:
    return FeatureFunctions.from_config(Config({"external_features": {"module": None, "functions": functions,
                                                                      "concat_mode": True}}))


def _band(data: SensorData, band: str) -> np.ndarray:
    """(rows, cols, dates) float64 values of ``band``."""
    return data.interpolated[:, data.band_names.index(band)].transpose(1, 2, 0).astype(np.float64)


def _normalised(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    total = high + low
    with np.errstate(all="ignore"):
        value = np.where(total == 0, 0.0, (high - low) / np.where(total == 0, 1.0, total) * 1000)
    value[(high == NODATA) | (low == NODATA)] = NODATA
    return value


def test_builtins_come_through_the_entry_point_group():
    group = {entry.name: entry.value for entry in entry_points(group="iota2")}
    assert group.get("feature_functions") == "iota2.plugins.feature_functions"
    registered = registered_functions()
    for name in NAMES:
        assert registered[name] is getattr(builtins, name)


def test_a_plugin_registering_a_builtin_name_again_is_refused():
    from iota2.core.errors import PluginError
    from iota2.core.hookspecs import hookimpl
    from iota2.core.plugins import get_plugin_manager

    class OtherNdvi:
        @staticmethod
        @hookimpl
        def iota2_register_feature_functions():
            return {"get_ndvi": lambda self: (np.zeros(self.shape), ["other"]), "get_other": builtins.get_soi}

    manager = get_plugin_manager()
    plugin = OtherNdvi()
    manager.register(plugin, name="other_ndvi")
    try:
        with pytest.raises(PluginError, match="two plugins register the feature function 'get_ndvi'"):
            _functions("get_soi")
    finally:
        manager.unregister(plugin)
    assert "get_other" not in registered_functions()


def test_the_synthetic_series_match_the_sentinel2_sensor():
    from iota2.sensors.sentinel_2 import BANDS, INDEX_BANDS

    assert SENTINEL2_BANDS == tuple(BANDS)
    assert dict(SENTINEL2_INDICES) == {name: tuple(roles) for name, roles in INDEX_BANDS.items()}


@pytest.mark.parametrize("name", NAMES)
def test_each_builtin_follows_the_contract(name):
    check_feature_function(getattr(builtins, name))


def test_normalised_indices_follow_their_formulas():
    data = synthetic_sentinel2(6, 7)
    extra, labels = _functions("get_soi get_ndvi get_ndsi").apply({"Sentinel2": data}, "a window")
    n = len(data.interpolation_dates)
    assert labels == [f"{index}_{date}" for index in ("soi", "ndvi", "ndsi") for date in data.interpolation_dates]
    b3, b4, b8, b11 = (_band(data, band) for band in ("B3", "B4", "B8", "B11"))
    np.testing.assert_allclose(extra[:, :, :n], _normalised(b11, b8), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(extra[:, :, n:2 * n], _normalised(b8, b4), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(extra[:, :, 2 * n:], _normalised(b3, b11), rtol=1e-5, atol=1e-3)
    assert np.all(extra[0, 0] == 0.0) and np.all(extra[0, 1] == NODATA)  # all-zero pixel, nodata pixel
    assert -1000 <= extra[1:].min() and extra[1:].max() <= 1000


def test_cari_follows_kim_et_al():
    data = synthetic_sentinel2(6, 7)
    extra, labels = _functions(["get_cari"]).apply({"Sentinel2": data}, "a window")
    assert labels == [f"cari_{date}" for date in data.interpolation_dates]
    r550, r670, r700 = (_band(data, band) / 10000 for band in ("B3", "B4", "B5"))
    a = (r700 - r550) / 150
    b = r550 - a * 550
    with np.errstate(all="ignore"):
        expected = np.abs(a * 670 + b - r670) / np.sqrt(a ** 2 + 1) * (r700 / r670) * 1000
    expected[0, 0] = 0.0
    expected[0, 1] = NODATA
    np.testing.assert_allclose(extra, expected, rtol=1e-4)
    # a pixel on the line through 550 and 700 nm has no absorption at 670 nm: CARI = 0
    flat = synthetic_sentinel2(2, 2)
    bands = flat.band_names
    flat.interpolated[:, bands.index("B3")] = 500.0
    flat.interpolated[:, bands.index("B5")] = 800.0
    flat.interpolated[:, bands.index("B4")] = 500.0 + 300.0 * 120 / 150
    cari, _labels = builtins.get_cari(FeatureContainer({"Sentinel2": flat}))
    np.testing.assert_allclose(cari[1, 1], 0.0, atol=1e-2)


def _renamed(data: SensorData, sensor: str) -> SensorData:
    data.sensor = sensor
    return data


def test_without_sentinel2_the_error_names_the_sensor_needed():
    landsat = _renamed(synthetic_sentinel2(), "Landsat8")
    with pytest.raises(FeatureFunctionError) as error:
        _functions("get_soi").apply({"Landsat8": landsat}, "tile T31TCJ, window rows 0-6, cols 0-7")
    message = str(error.value)
    assert "function 'get_soi' on tile T31TCJ, window rows 0-6, cols 0-7" in message
    assert "needs the Sentinel-2 series of sensor 'Sentinel2'" in message and "only Landsat8" in message
    assert "chain.s2_path" in message


def test_the_sensor_keyword_reads_another_sentinel2_flavour():
    l3a = _renamed(synthetic_sentinel2(), "Sentinel2L3A")
    with pytest.raises(FeatureFunctionError, match=r"write \[get_ndvi, \{sensor: Sentinel2L3A\}\]"):
        _functions("get_ndvi").apply({"Sentinel2L3A": l3a}, "a window")
    extra, labels = _functions([["get_ndvi", {"sensor": "Sentinel2L3A"}]]).apply({"Sentinel2L3A": l3a}, "a window")
    assert labels[0] == "sentinel2l3a_ndvi_20180511"
    np.testing.assert_allclose(extra, _normalised(_band(l3a, "B8"), _band(l3a, "B4")), rtol=1e-5, atol=1e-3)
