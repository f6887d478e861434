"""Sensors' script API (labwork 6.3): sentinel_2(**parameters).get_features(ram) gives the chain's features,
window by window; iota2's module names (iota2.sensors.Sentinel_2) import the same classes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from iota2.cli import main
from iota2.common.images import InMemoryImage
from iota2.configuration_files import read_config_file as rcf
from iota2.core.errors import ConfigError
from iota2.core.layout import OutputLayout
from iota2.sensors.sentinel_2 import sentinel_2

TILES = ("T31TCJ", "T31TDJ")
DATES = {"T31TCJ": ["20180105", "20180306", "20180510", "20180704"],
         "T31TDJ": ["20180115", "20180326", "20180520", "20180814"]}

CFG = """\
chain :
{{
    outputPath : '{out}'
    listTile : 'T31TCJ T31TDJ'
    S2Path : '{s2}'
}}
builders : {{ builders_class_name : ['i2_features_map'] }}
Sentinel_2 : {{ temporalResolution : 20 }}
python_data_managing : {{ chunk_size_mode : 'split_number', number_of_chunks : 3 }}
"""


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    """Two 40 x 40 tiles with different dates, and the features map the chain writes for them (a .cfg config)."""
    from iota2.datagen.sentinel2 import generate_dataset

    root = tmp_path_factory.mktemp("script_api")
    dataset = generate_dataset(root / "data", tiles=TILES, size=40, dates=DATES, seed=5)
    cfg = root / "config_base.cfg"
    cfg.write_text(CFG.format(out=root / "out", s2=dataset["s2_path"]))
    assert main(["-config", str(cfg), "-scheduler_type", "debug", "-no_progress"]) == 0
    return {"cfg": cfg, "out": root / "out", "s2_path": dataset["s2_path"], "root": root}


def _chain_map(out, tile):
    with rasterio.open(OutputLayout(out).features_map_tile(tile)) as src:  # a VRT of the chunks
        return src.read(), list(src.descriptions), src.transform, src.crs


def test_labwork_script_gives_the_chains_features(chain_run):
    configuration_file = str(chain_run["cfg"])
    config_i2_object = rcf.read_config_file(configuration_file)
    tiles_to_compute = config_i2_object.getParam("chain", "list_tile")
    i2_parameters = rcf.iota2_parameters(configuration_file)
    first_tile = tiles_to_compute.split(" ")[1]
    i2_sensors_parameters = i2_parameters.get_sensors_parameters(first_tile)
    available_sensors_keys = list(i2_sensors_parameters.keys())
    assert available_sensors_keys == ["Sentinel_2"]
    s2_instance = sentinel_2(**i2_sensors_parameters[available_sensors_keys[0]])
    (full_feat_stack, dependencies), features_names = s2_instance.get_features(ram=1024)

    expected, labels, transform, crs = _chain_map(chain_run["out"], first_tile)
    assert isinstance(full_feat_stack, InMemoryImage) and dependencies
    assert features_names == labels == full_feat_stack.band_names
    assert "sentinel2_ndvi_20180105" in features_names  # dates span both tiles, as in the chain
    assert (full_feat_stack.count, full_feat_stack.height, full_feat_stack.width) == expected.shape
    assert full_feat_stack.transform == transform and full_feat_stack.crs == crs
    np.testing.assert_array_equal(full_feat_stack.read(), expected)
    window = Window(7, 11, 13, 5)
    np.testing.assert_array_equal(full_feat_stack.read(window), expected[:, 11:16, 7:20])
    # blocks of the ram budget cover the tile and give the same values
    blocks = list(full_feat_stack.block_windows(max_pixels=40 * 9))
    assert len(blocks) == 5
    np.testing.assert_array_equal(np.concatenate([full_feat_stack.read(w) for w in blocks], axis=1), expected)
    small = sentinel_2(**i2_sensors_parameters["Sentinel_2"]).get_features(ram=0.05)[0][0]
    assert len(list(small.block_windows())) > 1


def test_reading_a_window_reads_only_that_window(chain_run, tmp_path):
    """Band values changed outside a window (and a margin for the 20 m bands) leave the window's features as
    they were, while the whole tile's change."""
    s2 = tmp_path / "s2"
    shutil.copytree(chain_run["s2_path"], s2)
    parameters = rcf.iota2_parameters(chain_run["cfg"]).get_sensors_parameters("T31TCJ")["Sentinel_2"]
    window = Window(16, 20, 8, 6)
    before = sentinel_2(**parameters).get_features(ram=16)[0][0]
    for band in (s2 / "T31TCJ").glob("*/*_FRE_*.tif"):
        with rasterio.open(band, "r+") as src:
            values = src.read(1)
            factor = 40 // src.width
            keep = np.zeros(values.shape, bool)
            keep[(20 - 4) // factor:(26 + 4) // factor, (16 - 4) // factor:(24 + 4) // factor] = True
            values[~keep & (values != -10000)] += 777
            src.write(values, 1)
    after = sentinel_2(**{**parameters, "image_directory": str(s2)}).get_features(ram=16)[0][0]
    np.testing.assert_array_equal(after.read(window), before.read(window))
    assert not np.array_equal(after.read(), before.read())


def test_parameters_and_keywords(chain_run):
    parameters = rcf.iota2_parameters(chain_run["cfg"]).get_sensors_parameters("T31TCJ")["Sentinel_2"]
    assert parameters["tile_name"] == "T31TCJ" and parameters["all_tiles"] == "T31TCJ T31TDJ"
    assert parameters["image_directory"] == str(chain_run["s2_path"]) and parameters["temporal_res"] == 20
    assert parameters["auto_date_flag"] is True and parameters["features"] == ["NDVI", "NDWI", "Brightness"]
    # iota2's keywords by hand: an EPSG number, no indices, no reflectances but the kept ones
    by_hand = sentinel_2(tile_name="T31TCJ", image_directory=str(chain_run["s2_path"]), target_proj=32631,
                         all_tiles=["T31TCJ"], temporal_res=30, features=[], extract_bands_flag=True,
                         keep_bands=["B4", "B8"], vhr_path=None)
    labels = by_hand.get_features()[1]
    assert labels == [f"sentinel2_{band}_{date}" for date in ("20180105", "20180204", "20180306", "20180405",
                                                                "20180505", "20180604", "20180704")
                      for band in ("b4", "b8")]
    with pytest.raises(TypeError, match="unexpected keyword argument 'temporal_resolutoin'; accepted: .*temporal_res"):
        sentinel_2(tile_name="T31TCJ", image_directory=str(chain_run["s2_path"]), temporal_resolutoin=10)
    with pytest.raises(ConfigError, match="Sentinel_2.temporal_resolution"):
        sentinel_2(tile_name="T31TCJ", image_directory=str(chain_run["s2_path"]), temporal_res="ten")
    with pytest.raises(ConfigError, match="give image_directory"):
        sentinel_2(tile_name="T31TCJ")
    with pytest.raises(ConfigError, match="not in chain.list_tile .*T31TCJ T31TDJ"):
        rcf.iota2_parameters(chain_run["cfg"]).get_sensors_parameters("T99XXX")
    pipeline = sentinel_2(**parameters).get_features()[0][0]
    with pytest.raises(ValueError, match="not inside the 40 x 40 grid"):
        pipeline.read(Window(30, 30, 20, 5))


def test_landsat_8_script_class(tmp_path):
    from iota2.datagen.optical import generate_landsat8
    from iota2.sensors.Landsat_8 import landsat_8

    dataset = generate_landsat8(tmp_path, tiles=("T31TCJ",), size=24, dates=["20180105", "20180306"], seed=2)
    (pipeline, _), labels = landsat_8(tile_name="T31TCJ", image_directory=str(dataset["l8_path"]),
                                      temporal_res=16).get_features(ram=64)
    assert labels[0] == "landsat8_b1_20180105" and "landsat8_ndvi_20180222" in labels
    values = pipeline.read(Window(0, 0, 3, 2))
    assert values.shape == (len(labels), 2, 3) and values.dtype == np.float32


def test_iota2_module_names_import_the_same_classes():
    code = ("from iota2.sensors.Sentinel_2 import sentinel_2 as a; from iota2.sensors.sentinel_2 import sentinel_2 "
            "as b; from iota2.sensors.Landsat_8 import landsat_8; from iota2.sensors.Sentinel_2_S2C import "
            "sentinel_2_s2c; from iota2.sensors.Sentinel_2_L3A import sentinel_2_l3a; import iota2.sensors.Sentinel_2 "
            "as m; print(a is b, m.Sentinel2Theia.__module__, 'sentinel_2' in dir(m))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "iota2.sensors.sentinel_2", "True"]
    result = subprocess.run([sys.executable, "-c", "import iota2.sensors.Sentinel_3"], capture_output=True, text=True)
    assert "No module named 'iota2.sensors.Sentinel_3'" in result.stderr
