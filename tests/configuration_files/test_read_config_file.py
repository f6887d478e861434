"""iota2's configuration API for scripts (labwork 6.3): read_config_file(...).getParam and
iota2_parameters(...).get_sensors_parameters, on .cfg and YAML files."""

from __future__ import annotations

import pytest

from iota2.configuration_files import read_config_file as rcf
from iota2.core.errors import ConfigError

CFG = """\
chain :
{
    outputPath : '/data/out'
    listTile : 'T31TCJ T31TDJ'
    groundTruth : '/data/gt.shp'
    dataField : 'code'
    s2_path : '/data/s2'
    l8_path : '/data/l8'
}
argTrain : { runs : 2, sampleSelection : {'sampler' : 'random', 'strategy.percent.p' : 0.1} }
Sentinel_2 : { temporalResolution : 5, keep_bands : ['B4', 'B8', 'B11'] }
"""

YAML = """\
chain:
    output_path: /data/out
    list_tile: [T31TCJ, T31TDJ]
    ground_truth: /data/gt.shp
    data_field: code
    s2_path: /data/s2
    l8_path: /data/l8
arg_train: {runs: 2, sample_selection: {sampler: random, strategy.percent.p: 0.1}}
Sentinel_2: {temporal_resolution: 5, keep_bands: [B4, B8, B11]}
"""


@pytest.fixture(params=["config_base.cfg", "config.yaml"])
def configuration_file(request, tmp_path):
    path = tmp_path / request.param
    path.write_text(CFG if path.suffix == ".cfg" else YAML)
    return str(path)


def test_get_param_as_the_labwork_uses_it(configuration_file):
    config_i2_object = rcf.read_config_file(configuration_file)
    tiles_to_compute = config_i2_object.getParam("chain", "list_tile")
    assert tiles_to_compute == "T31TCJ T31TDJ" and tiles_to_compute.split(" ")[0] == "T31TCJ"
    assert config_i2_object.getParam("chain", "ground_truth") == "/data/gt.shp"
    assert config_i2_object.getParam("chain", "data_field") == "code"
    assert config_i2_object.getParam("chain", "output_path") == "/data/out"
    # iota2's camelCase names, defaults filled in, nested values
    assert config_i2_object.getParam("argTrain", "runs") == 2
    assert config_i2_object.getParam("chain", "outputPath") == "/data/out"
    assert config_i2_object.getParam("arg_train", "ratio") == 0.5
    assert config_i2_object.getParam("arg_train", "sample_selection")["strategy.percent.p"] == 0.1
    assert config_i2_object.getSection("Sentinel_2")["temporal_resolution"] == 5
    assert config_i2_object.get_builders() == ["i2_classification"]


def test_unknown_section_or_key_names_the_valid_ones(configuration_file):
    config = rcf.read_config_file(configuration_file)
    with pytest.raises(ConfigError, match=r"unknown section 'chian' of .*; sections: .*arg_train.*chain"):
        config.getParam("chian", "list_tile")
    with pytest.raises(ConfigError, match=r"unknown key 'list_tiles' in section 'chain' of .*; keys: .*list_tile"):
        config.getParam("chain", "list_tiles")


def test_sensors_parameters(configuration_file):
    parameters = rcf.iota2_parameters(configuration_file).get_sensors_parameters("T31TDJ")
    assert list(parameters) == ["Landsat8", "Sentinel_2"]  # iota2's sensor order
    s2 = parameters["Sentinel_2"]
    assert s2["tile_name"] == "T31TDJ" and s2["all_tiles"] == "T31TCJ T31TDJ"
    assert s2["image_directory"] == "/data/s2" and s2["temporal_res"] == 5
    assert s2["keep_bands"] == ["B4", "B8", "B11"] and s2["features"] == ["NDVI", "NDWI", "Brightness"]
    assert s2["auto_date_flag"] is True and s2["enable_gapfilling"] is True and s2["copy_input"] is True
    assert parameters["Landsat8"]["image_directory"] == "/data/l8" and parameters["Landsat8"]["temporal_res"] == 16
    with pytest.raises(ConfigError, match=r"tile 'T31TXX' is not in chain.list_tile .*\(T31TCJ T31TDJ\)"):
        rcf.iota2_parameters(configuration_file).get_sensors_parameters("T31TXX")


def test_a_bad_file_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("chain : { outputPath : '/x', listTile : T31TCJ T31TDJ }\n")
    with pytest.raises(ConfigError, match=r"bad\.cfg:1:48: expected ',' or a new line after the value"):
        rcf.read_config_file(str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        rcf.read_config_file(str(tmp_path / "missing.cfg"))
