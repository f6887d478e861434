"""Feature functions: the data container, configuration syntax, loading a user module, errors and the
conformance check, on real arrays (and one window read from a generated Sentinel-2 tile)."""

from __future__ import annotations

import logging
import pickle
import textwrap

import numpy as np
import pytest
from scipy.ndimage import laplace

from iota2.core.config import Config, load_config
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.feature_functions import (FeatureContainer, FeatureFunctionError, FeatureFunctions,
                                          check_feature_function, parse_functions, synthetic_sentinel2)
from iota2.core.sensor import FeatureSpec, SensorData

NODATA = -10000.0

LAPLACE_NDVI = '''
from scipy.ndimage import laplace
import numpy as np

def laplace_ndvi(self):
    """laplacian filter over date-averaged ndvi"""
    # gets ndvi of the chunk for all dates (x,y,t)
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    # average over dates
    mean_ndvi = np.mean(ndvi, axis=2)
    # apply laplace filter
    filtered = laplace(mean_ndvi, mode="constant")
    return (filtered, ["laplace_ndvi"])
'''

WEIGHTED = '''
import numpy as np


def weighted_visible_nir(self, w2=1.0, w3=1.0, w4=1.0, w8=1.0):
    """Weighted average of B2, B3, B4 and B8 for every date."""
    total = w2 + w3 + w4 + w8
    mean = (w2 * self.get_interpolated_Sentinel2_B2() + w3 * self.get_interpolated_Sentinel2_B3()
            + w4 * self.get_interpolated_Sentinel2_B4() + w8 * self.get_interpolated_Sentinel2_B8()) / total
    return mean, [f"wmean_{date}" for date in self.interpolated_dates["Sentinel2"]]
'''


def _config(tmp_path=None, **section) -> Config:
    values = {"module": None, "functions": None, "concat_mode": True, "output_name": None}
    values.update(section)
    return Config({"external_features": values}, path=None if tmp_path is None else str(tmp_path / "cfg.yaml"))


def _module(tmp_path, text: str, name: str = "my_indices.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _sensor_data(rows=5, cols=4, seed=3) -> dict:
    """Sentinel2 series with random values and a static user-feature sensor, as sensors fill them."""
    rng = np.random.default_rng(seed)
    bands = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]
    input_dates, dates = ["20180503", "20180520", "20180612"], ["20180501", "20180601"]
    raw = rng.integers(1, 5000, (3, 10, rows, cols)).astype(np.float32)
    interpolated = rng.integers(1, 5000, (2, 10, rows, cols)).astype(np.float32)
    interpolated[1, 0, 2, 3] = NODATA  # B2 nodata on the second date of one pixel
    masks = (rng.random((3, rows, cols)) < 0.3).astype(np.uint8)
    indices = (("NDVI", ("B4", "B8")), ("NDWI", ("B8", "B11")), ("BRIGHTNESS", ()))
    spec = FeatureSpec(indices=indices, known_indices=indices, nodata=NODATA, section="Sentinel_2")
    s2 = SensorData("Sentinel2", bands, input_dates, raw, masks, dates, interpolated,
                    (3 - masks.sum(axis=0)).astype(np.uint16), np.ones((rows, cols), bool), spec)
    static = rng.random((2, rows, cols)).astype(np.float32)
    user = SensorData("userFeatures", ["elevation", "slope"], [], np.zeros((0, 2, rows, cols), np.float32),
                      np.zeros((0, rows, cols), np.uint8), [], np.zeros((0, 2, rows, cols), np.float32),
                      np.zeros((rows, cols), np.uint16), np.ones((rows, cols), bool),
                      FeatureSpec(layout="static", labels=("elevation", "slope")), static=static)
    return {"Sentinel2": s2, "userFeatures": user}


# ------------------------------------------------------------------------------------------------ the container
def test_accessors_return_the_sensor_data_arrays():
    data = _sensor_data()
    s2, user = data["Sentinel2"], data["userFeatures"]
    container = FeatureContainer(data)
    assert container.shape == (5, 4) and container.sensors == ["Sentinel2", "userFeatures"]
    b4 = s2.interpolated[:, 2].transpose(1, 2, 0)
    for accessor in ("get_interpolated_Sentinel2_B4", "get_Sentinel2_B4", "get_interpolated_sentinel2_b4"):
        value = getattr(container, accessor)()
        assert value.shape == (5, 4, 2) and value.dtype == np.float32
        np.testing.assert_array_equal(value, b4)
    np.testing.assert_array_equal(container.get_raw_Sentinel2_B11(), s2.raw[:, 8].transpose(1, 2, 0))
    masks = container.get_raw_Sentinel2_masks()
    assert masks.dtype == np.uint8 and masks.shape == (5, 4, 3)
    np.testing.assert_array_equal(masks, s2.masks.transpose(1, 2, 0))
    np.testing.assert_array_equal(container.get_userFeatures_slope(), user.static[1][..., np.newaxis])
    assert container.interpolated_dates == {"Sentinel2": ["20180501", "20180601"]}
    assert container.raw_dates == {"Sentinel2": ["20180503", "20180520", "20180612"]}
    assert container.nodata["Sentinel2"] == NODATA
    assert "get_interpolated_Sentinel2_NDWI" in dir(container)


def test_index_accessors_follow_the_formulas_and_the_nodata_rule():
    data = _sensor_data()
    s2 = data["Sentinel2"]
    container = FeatureContainer(data)
    red, nir = s2.interpolated[:, 2].astype(np.float64), s2.interpolated[:, 6].astype(np.float64)
    expected = ((nir - red) / (nir + red) * 1000).transpose(1, 2, 0)
    expected[2, 3, 1] = NODATA  # B2 is nodata there: every index of that date is nodata, as in the features
    ndvi = container.get_interpolated_Sentinel2_NDVI()
    np.testing.assert_allclose(ndvi, expected, rtol=1e-5)
    kept = s2.interpolated.astype(np.float64)
    bright = np.sqrt((kept ** 2).sum(axis=1)).transpose(1, 2, 0)
    bright[2, 3, 1] = NODATA
    np.testing.assert_allclose(container.get_Sentinel2_BRIGHTNESS(), bright, rtol=1e-5)
    features, labels = s2.default_features()  # the accessor gives the sensor's NDVI feature
    np.testing.assert_array_equal(ndvi[:, :, 1], features[:, :, labels.index("sentinel2_ndvi_20180601")])


def test_an_accessor_is_computed_once_per_window_and_returns_a_writable_copy():
    container = FeatureContainer({"Sentinel2": synthetic_sentinel2()})
    first = container.get_interpolated_Sentinel2_NDVI()
    first[:] = 0.0
    second = container.get_interpolated_Sentinel2_NDVI()
    assert container.computed == 1
    assert np.count_nonzero(second) > 0


def test_an_unknown_accessor_lists_the_available_ones(tmp_path):
    module = _module(tmp_path, """
        def uses_b9(self):
            return self.get_interpolated_Sentinel2_B9(), []
    """)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="uses_b9"))
    with pytest.raises(FeatureFunctionError) as error:
        functions.apply({"Sentinel2": synthetic_sentinel2()}, "tile T31TCJ, window rows 0-6, cols 0-7")
    message = str(error.value)
    assert "function 'uses_b9' failed on tile T31TCJ, window rows 0-6, cols 0-7" in message
    assert "no accessor 'get_interpolated_Sentinel2_B9'" in message
    assert "get_interpolated_Sentinel2_B8A" in message and "get_raw_Sentinel2_masks" in message


# ------------------------------------------------------------------------------------ configuration and modules
def test_the_functions_syntaxes():
    assert parse_functions(None) == [] and parse_functions("") == []
    assert parse_functions("get_soi  get_ndvi") == [("get_soi", {}), ("get_ndvi", {})]
    assert parse_functions(["get_soi", "get_ndvi"]) == [("get_soi", {}), ("get_ndvi", {})]
    assert parse_functions([["get_soi"], ["weighted", {"w2": 2}], {"other": {"k": 1}}]) == \
        [("get_soi", {}), ("weighted", {"w2": 2}), ("other", {"k": 1})]
    assert parse_functions({"get_soi": None, "weighted": {"w8": 0.5}}) == [("get_soi", {}), ("weighted", {"w8": 0.5})]
    for bad, fragment in ((3, "got int 3"), (["get-soi"], "'get-soi' is not a function name"),
                          ([["weighted", [1, 2]]], "keyword arguments of 'weighted' must be a mapping"),
                          ([["a", {}, {}]], "is not understood"), ({"f": {"1x": 1}}, "keyword '1x' of 'f'")):
        with pytest.raises(ConfigError, match="external_features.functions") as error:
            parse_functions(bad)
        assert fragment in str(error.value)
    assert FeatureFunctions.from_config(_config(functions=None)) is None
    assert FeatureFunctions.from_config(_config(functions=[])) is None
    functions = FeatureFunctions.from_config(_config(functions="get_ndvi", concat_mode=False))
    assert functions and len(functions) == 1 and functions.concat_mode is False


def test_the_labwork_laplace_ndvi_runs_from_a_module_path(tmp_path):
    module = _module(tmp_path, LAPLACE_NDVI)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="laplace_ndvi"))
    data = {"Sentinel2": synthetic_sentinel2(8, 9)}
    extra, labels = functions.apply(data, "a window")
    assert labels == ["laplace_ndvi"] and extra.shape == (8, 9, 1) and extra.dtype == np.float32
    assert extra.flags.c_contiguous
    ndvi = FeatureContainer(data).get_interpolated_Sentinel2_NDVI()
    np.testing.assert_allclose(extra[:, :, 0], laplace(ndvi.mean(axis=2), mode="constant"), rtol=1e-5)


def test_keyword_arguments_from_the_yaml_configuration_reach_the_function(tmp_path, make_config):
    module = _module(tmp_path, WEIGHTED)
    path = make_config(external_features={"module": str(module), "functions": [
        ["weighted_visible_nir", {"w2": 1, "w3": 2, "w4": 3, "w8": 4}]]})
    config = load_config(path)
    functions = FeatureFunctions.from_config(config)
    data = synthetic_sentinel2(4, 5)
    extra, labels = functions.apply({"Sentinel2": data}, "a window")
    bands = data.interpolated.astype(np.float64)
    expected = (bands[:, 0] + 2 * bands[:, 1] + 3 * bands[:, 2] + 4 * bands[:, 6]) / 10
    np.testing.assert_allclose(extra, expected.transpose(1, 2, 0), rtol=1e-5)
    assert labels == [f"wmean_{date}" for date in data.interpolation_dates]
    mapping = FeatureFunctions.from_config(_config(module=str(module),
                                                   functions={"weighted_visible_nir": {"w8": 0.0}}))
    extra, _labels = mapping.apply({"Sentinel2": data}, "a window")
    np.testing.assert_allclose(extra, (bands[:, [0, 1, 2]].sum(axis=1) / 3).transpose(1, 2, 0), rtol=1e-5)


def test_the_module_is_imported_from_its_path_not_from_sys_path(tmp_path, monkeypatch):
    ours = _module(tmp_path, """
        import numpy as np

        def origin(self):
            return np.full(self.shape, 1.0), ["origin"]
    """)
    shadow = tmp_path / "elsewhere"
    shadow.mkdir()
    _module(shadow, """
        import numpy as np

        def origin(self):
            return np.full(self.shape, 2.0), ["origin"]
    """)
    monkeypatch.syspath_prepend(str(shadow))
    functions = FeatureFunctions.from_config(_config(module=str(ours), functions="origin"))
    extra, _labels = functions.apply({"Sentinel2": synthetic_sentinel2()}, "a window")
    assert np.all(extra == 1.0)


def test_a_relative_module_is_found_next_to_the_configuration(tmp_path):
    _module(tmp_path, WEIGHTED)
    functions = FeatureFunctions.from_config(_config(tmp_path, module="my_indices.py",
                                                     functions="weighted_visible_nir"))
    assert functions.module == str(tmp_path / "my_indices.py")


def test_functions_travel_to_other_processes_and_an_edited_module_is_imported_again(tmp_path):
    module = _module(tmp_path, """
        import numpy as np

        def constant(self):
            return np.full(self.shape, 3.0), ["constant"]
    """)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="constant"))
    copy = pickle.loads(pickle.dumps(functions))
    data = {"Sentinel2": synthetic_sentinel2()}
    assert np.all(copy.apply(data, "a window")[0] == 3.0)
    module.write_text(module.read_text().replace("3.0", "4.5"))  # same size, same second: still seen
    again = FeatureFunctions.from_config(_config(module=str(module), functions="constant"))
    assert np.all(again.apply(data, "a window")[0] == 4.5)
    assert not (tmp_path / "__pycache__").exists()  # nothing written next to the user's file


def test_a_user_function_wins_over_a_registered_one_of_the_same_name(tmp_path):
    module = _module(tmp_path, """
        import numpy as np

        def get_ndvi(self):
            return np.zeros(self.shape), ["mine"]
    """)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="get_ndvi get_soi"))
    _extra, labels = functions.apply({"Sentinel2": synthetic_sentinel2()}, "a window")
    assert labels[0] == "mine" and labels[1] == "soi_20180511"


# -------------------------------------------------------------------------------------------------- bad inputs
def test_bad_modules_give_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"external_features.module: .*missing.py does not exist"):
        FeatureFunctions.from_config(_config(module=str(tmp_path / "missing.py"), functions="f"))
    text = _module(tmp_path, "def f(self): pass\n", "indices.txt")
    with pytest.raises(ConfigError, match=r"indices.txt is not a Python file"):
        FeatureFunctions.from_config(_config(module=str(text), functions="f"))
    broken = _module(tmp_path, "def f(self):\n    return (\n", "broken.py")
    with pytest.raises(ConfigError, match=r"broken.py failed to import \(line 2\): SyntaxError"):
        FeatureFunctions.from_config(_config(module=str(broken), functions="f"))
    failing = _module(tmp_path, "import numpy\n\nSCALE = 1 / 0\n", "failing.py")
    with pytest.raises(ConfigError, match=r"failing.py failed to import \(line 3\): ZeroDivisionError"):
        FeatureFunctions.from_config(_config(module=str(failing), functions="f"))


def test_an_unknown_function_lists_the_module_and_the_registered_ones(tmp_path):
    module = _module(tmp_path, WEIGHTED)
    with pytest.raises(ConfigError) as error:
        FeatureFunctions.from_config(_config(module=str(module), functions="weighted_visible_nir get_sio"))
    message = str(error.value)
    assert "unknown function 'get_sio'" in message and "(weighted_visible_nir)" in message
    assert "get_soi" in message and "get_cari" in message


def test_a_keyword_the_function_does_not_accept_is_refused_at_start(tmp_path):
    module = _module(tmp_path, WEIGHTED)
    with pytest.raises(ConfigError) as error:
        FeatureFunctions.from_config(_config(module=str(module), functions=[["weighted_visible_nir", {"w5": 1}]]))
    message = str(error.value)
    assert "function 'weighted_visible_nir' cannot be called with the keywords w5" in message
    assert "it accepts w2, w3, w4, w8" in message
    with pytest.raises(ConfigError, match="function 'get_soi' cannot be called with the keywords scale"):
        FeatureFunctions.from_config(_config(functions=[["get_soi", {"scale": 2}]]))
    required = _module(tmp_path, "def scaled(self, scale):\n    return self.get_Sentinel2_B2() * scale, []\n",
                       "required.py")
    with pytest.raises(ConfigError, match="function 'scaled' cannot be called with no keyword: missing a required "
                                          "argument: 'scale'"):
        FeatureFunctions.from_config(_config(module=str(required), functions="scaled"))


def test_a_function_that_raises_names_itself_and_the_window_and_logs_the_traceback(tmp_path, caplog):
    module = _module(tmp_path, """
        def divide(self):
            return {}["missing"]
    """)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="divide"))
    where = "tile T31TCJ, window rows 0-250, cols 0-500"
    with caplog.at_level(logging.ERROR, logger="iota2.core.feature_functions"):
        with pytest.raises(FeatureFunctionError) as error:
            functions.apply({"Sentinel2": synthetic_sentinel2()}, where)
    assert isinstance(error.value, InputDataError)
    assert str(error.value) == f"external_features: function 'divide' failed on {where}: KeyError: 'missing'"
    record = [record for record in caplog.records if "divide" in record.getMessage()][0]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert 'return {}["missing"]' in caplog.text  # the traceback, with the user's line


BROKEN = {
    "no_tuple": ("return self.get_Sentinel2_B2()", "return type", "returned a ndarray"),
    "not_array": ("return [[1.0]], ['a']", "array type", "returned a list as array"),
    "strings": ("return np.full(self.shape, 'a'), ['a']", "array dtype", "dtype <U1"),
    "bad_shape": ("return np.zeros((3, 3, 1)), ['a']", "array shape", "expected (rows, cols, n)"),
    "labels_count": ("return self.get_Sentinel2_B2(), ['a', 'b']", "labels count", "2 label(s) for"),
    "labels_type": ("return np.zeros(self.shape), 'a'", "labels type", "labels of type str"),
    "duplicates": ("return np.zeros(self.shape + (2,)), ['a', 'A']", "labels unique", "duplicate labels a"),
    "unguarded": ("b = self.get_Sentinel2_B4(); return (b - b) / (b - b), ['x_' + d for d in "
                  "self.interpolated_dates['Sentinel2']]", "finite values", "NaN/inf value(s) of"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_result_is_refused_with_its_contract_point(tmp_path, name):
    body, point, fragment = BROKEN[name]
    module = _module(tmp_path, f"import numpy as np\n\n\ndef {name}(self):\n    {body}\n")
    functions = FeatureFunctions.from_config(_config(module=str(module), functions=name))
    with np.errstate(all="ignore"), pytest.raises(FeatureFunctionError) as error:
        functions.apply({"Sentinel2": synthetic_sentinel2()}, "window 3")
    assert error.value.point == point
    assert f"function '{name}'" in str(error.value) and "window 3" in str(error.value)
    assert fragment in str(error.value)
    namespace = {}
    exec(compile(f"import numpy as np\n\ndef {name}(self):\n    {body}\n", "broken", "exec"), namespace)
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=f"^{point}: "):
        check_feature_function(namespace[name])


def test_the_nan_count_and_the_fix_are_given():
    def half_nan(self):
        values = np.zeros(self.shape + (2,))
        values[0, :, 1] = np.nan
        return values, ["a", "b"]

    container_data = {"Sentinel2": synthetic_sentinel2(6, 7)}
    with pytest.raises(AssertionError) as error:
        check_feature_function(half_nan, sensors=container_data)
    message = str(error.value)
    assert message.startswith("finite values: ") and "returned 7 NaN/inf value(s) of 84" in message
    assert "first in 'b'" in message and "guard divisions" in message


def test_labels_clashing_between_functions_are_refused(tmp_path):
    module = _module(tmp_path, """
        import numpy as np

        def first(self):
            return np.zeros(self.shape), ["same"]

        def second(self):
            return np.ones(self.shape), ["SAME"]
    """)
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="first second"))
    with pytest.raises(FeatureFunctionError, match="functions 'first' and 'second' both return the label"):
        functions.apply({"Sentinel2": synthetic_sentinel2()}, "a window")


def test_empty_labels_get_default_names_in_a_run_but_fail_the_conformance_check(tmp_path):
    module = _module(tmp_path, "def unlabelled(self):\n    return self.get_Sentinel2_B2(), []\n")
    functions = FeatureFunctions.from_config(_config(module=str(module), functions="unlabelled"))
    _extra, labels = functions.apply({"Sentinel2": synthetic_sentinel2()}, "a window")
    assert labels == ["unlabelled_b1", "unlabelled_b2", "unlabelled_b3", "unlabelled_b4"]
    with pytest.raises(AssertionError, match="^labels count: function 'unlabelled' returned no label"):
        check_feature_function(functions.functions[0])


# ---------------------------------------------------------------------------------------------- conformance kit
def test_the_conformance_check_passes_a_good_function_and_checks_keywords(tmp_path):
    namespace = {}
    exec(WEIGHTED, namespace)
    check_feature_function(namespace["weighted_visible_nir"], {"w2": 2.0})
    with pytest.raises(AssertionError, match="^signature: .*cannot be called with the keywords w9"):
        check_feature_function(namespace["weighted_visible_nir"], {"w9": 2.0})

    def hard_coded(self):  # right on the first window, wrong on the second (9 x 4 pixels, 3 dates)
        return np.zeros((6, 7, 4)), ["a", "b", "c", "d"]

    with pytest.raises(AssertionError, match=r"^array shape: .*synthetic window 2 \(9 x 4 pixels\)"):
        check_feature_function(hard_coded)

    def raises(self):
        raise ValueError("no luck")

    with pytest.raises(AssertionError, match="^call: .*ValueError: no luck"):
        check_feature_function(raises)

    def asks_landsat(self):
        return self.get_interpolated_Landsat8_B4(), ["x"]

    with pytest.raises(AssertionError, match="^accessor: .*no accessor 'get_interpolated_Landsat8_B4'"):
        check_feature_function(asks_landsat)


def test_the_synthetic_window_has_the_traps_it_promises():
    data = synthetic_sentinel2(6, 7)
    assert data.band_names == ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]
    assert np.all(data.interpolated[:, :, 0, 0] == 0) and np.all(data.interpolated[:, :, 0, 1] == NODATA)
    assert data.masks[-1, 1, 0] == 1 and data.masks[:, 0, 1].all()
    valid = data.interpolated[:, :, 1:, :]
    assert valid.min() >= 1 and valid.max() <= 10000


# ------------------------------------------------------------------------------------------ a real sensor window
def test_functions_run_on_a_window_read_by_the_sentinel2_sensor(tmp_path, make_config):
    from rasterio.windows import Window

    from iota2.core.tiles import prepare_tiles

    module = _module(tmp_path, LAPLACE_NDVI + WEIGHTED)
    config = load_config(make_config(external_features={"module": str(module), "functions": [
        "laplace_ndvi", {"weighted_visible_nir": {"w8": 2}}, "get_ndvi"]}))
    tiles = prepare_tiles(config)
    sensor_class = tiles.sensor_classes[0]
    data = sensor_class(config, "T31TCJ").read(tiles.grids["T31TCJ"], Window(5, 7, 20, 15),
                                               tiles.dates_by_sensor[sensor_class.config_section])
    functions = FeatureFunctions.from_config(config)
    extra, labels = functions.apply({data.sensor: data}, "tile T31TCJ, window rows 7-22, cols 5-25")
    dates = data.interpolation_dates
    assert labels == ["laplace_ndvi"] + [f"wmean_{date}" for date in dates] + [f"ndvi_{date}" for date in dates]
    assert extra.shape == (15, 20, 1 + 2 * len(dates))
    container = FeatureContainer({data.sensor: data})
    np.testing.assert_array_equal(container.get_interpolated_Sentinel2_B8(),
                                  data.interpolated[:, data.band_names.index("B8")].transpose(1, 2, 0))
    np.testing.assert_array_equal(extra[:, :, 1 + len(dates):], container.get_interpolated_Sentinel2_NDVI())
