"""The feature stage: sensors' series in, default features, feature functions, padding and concat_mode out."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from iota2.core.config import load_config
from iota2.core.features import read_features
from iota2.core.indices import normalised_difference
from iota2.core.tiles import prepare_tiles

TILE = "T31TCJ"

MODULE = '''
import numpy as np
from scipy.ndimage import laplace


def mean_red(self):
    red = self.get_interpolated_Sentinel2_B4()
    return red.mean(axis=2), ["mean_red"]


def laplace_ndvi(self):
    """laplacian filter over date-averaged ndvi"""
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    mean_ndvi = np.mean(ndvi, axis=2)
    filtered = laplace(mean_ndvi, mode="constant")
    return (filtered, ["laplace_ndvi"])
'''


@pytest.fixture
def functions_module(tmp_path):
    path = tmp_path / "my_features.py"
    path.write_text(MODULE)
    return path


def _tiles(make_config, **external):
    config = load_config(make_config(external_features=external) if external else make_config())
    return config, prepare_tiles(config)


def test_default_features_come_from_the_sensors_series(make_config):
    config, tiles = _tiles(make_config)
    window = Window(10, 20, 30, 25)
    block = read_features(config, TILE, tiles.grids[TILE], window, tiles.dates_by_sensor)
    data = block.sensors["Sentinel2"]
    dates = data.interpolation_dates
    assert block.features.shape == (25, 30, len(block.labels)) and block.features.dtype == np.float32
    b4 = data.band_names.index("B4")
    np.testing.assert_array_equal(block.features[:, :, block.labels.index(f"sentinel2_b4_{dates[1]}")],
                                  data.interpolated[1, b4])
    nir, red = data.interpolated[:, data.band_names.index("B8")], data.interpolated[:, b4]
    np.testing.assert_allclose(block.features[:, :, block.labels.index(f"sentinel2_ndvi_{dates[2]}")],
                               normalised_difference(nir, red)[2], rtol=1e-6)
    assert block.labels[-1] == f"sentinel2_brightness_{dates[-1]}"


def test_functions_are_appended_after_the_default_features(make_config, functions_module):
    config, tiles = _tiles(make_config, module=str(functions_module), functions="mean_red")
    window = Window(0, 0, 40, 30)
    block = read_features(config, TILE, tiles.grids[TILE], window, tiles.dates_by_sensor)
    assert block.labels[-1] == "mean_red" and block.labels[0] == f"sentinel2_b2_{tiles.dates_by_sensor['Sentinel_2'][0]}"
    red = block.sensors["Sentinel2"].interpolated[:, block.sensors["Sentinel2"].band_names.index("B4")]
    np.testing.assert_allclose(block.features[:, :, -1], red.mean(axis=0), rtol=1e-5)


def test_concat_mode_false_keeps_only_the_functions(make_config, functions_module):
    config, tiles = _tiles(make_config, module=str(functions_module), functions="mean_red laplace_ndvi",
                           concat_mode=False)
    block = read_features(config, TILE, tiles.grids[TILE], Window(0, 0, 40, 30), tiles.dates_by_sensor)
    assert block.labels == ["mean_red", "laplace_ndvi"]
    assert block.features.shape == (30, 40, 2)


@pytest.mark.parametrize("padding, equal", [(0, False), (1, True), (3, True)])
def test_padding_makes_chunked_spatial_filters_equal_the_whole_window(make_config, functions_module, padding,
                                                                      equal):
    config = load_config(make_config(external_features={"module": str(functions_module),
                                                        "functions": "laplace_ndvi", "concat_mode": False},
                                     python_data_managing={"padding_size": padding}))
    tiles = prepare_tiles(config)
    grid = tiles.grids[TILE]
    whole = read_features(config, TILE, grid, Window(0, 0, grid.width, grid.height), tiles.dates_by_sensor)
    halves = [read_features(config, TILE, grid, Window(0, row, grid.width, grid.height // 2), tiles.dates_by_sensor)
              for row in (0, grid.height // 2)]
    stitched = np.concatenate([half.features for half in halves], axis=0)
    assert stitched.shape == whole.features.shape
    assert np.array_equal(stitched, whole.features) is equal
    border = slice(grid.height // 2 - 1, grid.height // 2 + 1)
    if not equal:  # the difference is at the chunk border only
        differs = np.any(stitched != whole.features, axis=(1, 2))
        assert differs[border].all() and not np.delete(differs, np.r_[border]).any()


def test_pixels_with_functions_are_the_window_values(make_config, functions_module):
    config = load_config(make_config(external_features={"module": str(functions_module),
                                                        "functions": "laplace_ndvi"},
                                     python_data_managing={"padding_size": 2}))
    tiles = prepare_tiles(config)
    grid, window = tiles.grids[TILE], Window(5, 7, 50, 40)
    full = read_features(config, TILE, grid, window, tiles.dates_by_sensor)
    rows, cols = np.array([0, 3, 39, 20]), np.array([0, 49, 10, 25])
    some = read_features(config, TILE, grid, window, tiles.dates_by_sensor, pixels=(rows, cols))
    assert some.features.shape == (1, 4, len(full.labels)) and some.labels == full.labels
    np.testing.assert_array_equal(some.features[0], full.features[rows, cols])
    np.testing.assert_array_equal(some.validity[0], full.validity[rows, cols])
    np.testing.assert_array_equal(some.footprint[0], full.footprint[rows, cols])


def test_function_labels_that_repeat_iota2_labels_are_refused(make_config, tmp_path):
    from iota2.core.feature_functions import FeatureFunctionError

    module = tmp_path / "clash.py"
    module.write_text("def copy_b2(self):\n"
                      "    return self.get_interpolated_Sentinel2_B2()[:, :, :1], "
                      "[f'sentinel2_b2_{self.interpolated_dates[\"Sentinel2\"][0]}']\n")
    config, tiles = _tiles(make_config, module=str(module), functions="copy_b2")
    with pytest.raises(FeatureFunctionError, match="concat_mode: False"):
        read_features(config, TILE, tiles.grids[TILE], Window(0, 0, 20, 20), tiles.dates_by_sensor)
    config, tiles = _tiles(make_config, module=str(module), functions="copy_b2", concat_mode=False)
    block = read_features(config, TILE, tiles.grids[TILE], Window(0, 0, 20, 20), tiles.dates_by_sensor)
    assert block.features.shape == (20, 20, 1)
