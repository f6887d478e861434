"""iota2's .cfg syntax: the same validated configuration as YAML, convert-config, one clear error per mistake."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from iota2.cli import main
from iota2.core.cfg_syntax import load_cfg, parse, resolve, to_yaml
from iota2.core.config import load_config
from iota2.core.errors import ConfigError

# every construct of the reference's section 1.1, in iota2's 2020 names (argTrain, GlobChain, outputPath ...)
CFG = """\
# iota2 configuration, as the labwork's config_base.cfg
chain :
{
    # where every output goes
    outputPath : '{out}'          # the output root
    listTile : 'T31TCJ T31TDJ',   # commas between entries are allowed
    S2Path : "{data}/s2"
    groundTruth : $chain.S2Path + '/../gt.shp'
    dataField : "code"
    nomenclaturePath : '{data}/nomenclature.txt'
    colorTable : '{data}/colors.txt'
    spatialResolution : [10, 10]
    proj : 'EPSG:32631'
    regionPath : None
    remove_outputPath : False
    first_step : 'init', last_step : 'validation'
}

argTrain :
{
    runs : 2
    ratio : 0.75
    random_seed : 0
    cloud_threshold : -0 + 1
    features : ["NDVI", 'NDWI',
                'Brightness']    # a list on two lines
    sampleSelection : {"sampler" : "random", "strategy" : "percent",
                       'strategy.percent.p' : 0.1, 'rand' : 3}
    split_ground_truth : True
}
scikit_models_parameters : { model_type : 'RandomForestClassifier', n_estimators : 30,
                             cross_validation_parameters : {'max_depth' : [5, 10]} }
GlobChain : { useGapFilling : True, autoDate : False, writeOutputs : False }
Sentinel_2 :
{
    temporalResolution : 10
    startDate : '20180101'
    endDate : "20181231"
    keepBands : ['B2', 'B3', 'B4', 'B8', 'B11']
    additionalFeatures : '(b4-b3)/(b4+b3)*1000'
}
iota2FeatureExtraction : { extractBands : True, copyinput : True }
python_data_managing :
{
    chunk_size_mode : "split_number"
    number_of_chunks : 4
    padding_size : 2
}
builders : { builders_class_name : ["i2_classification"] }
# end of file
"""

YAML = """\
chain:
    output_path: {out}
    list_tile: T31TCJ T31TDJ
    s2_path: {data}/s2
    ground_truth: {data}/s2/../gt.shp
    data_field: code
    nomenclature_path: {data}/nomenclature.txt
    color_table: {data}/colors.txt
    spatial_resolution: [10, 10]
    proj: EPSG:32631
    region_path: null
    remove_output_path: false
    first_step: init
    last_step: validation
arg_train:
    runs: 2
    ratio: 0.75
    random_seed: 0
    cloud_threshold: 1
    features: [NDVI, NDWI, Brightness]
    sample_selection: {{sampler: random, strategy: percent, strategy.percent.p: 0.1, rand: 3}}
    split_ground_truth: true
scikit_models_parameters:
    model_type: RandomForestClassifier
    n_estimators: 30
    cross_validation_parameters: {{max_depth: [5, 10]}}
sensors_data_interpolation: {{use_gapfilling: true, auto_date: false, write_outputs: false}}
Sentinel_2:
    temporal_resolution: 10
    start_date: '20180101'
    end_date: '20181231'
    keep_bands: [B2, B3, B4, B8, B11]
    additional_features: (b4-b3)/(b4+b3)*1000
iota2_feature_extraction: {{extract_bands: true, copy_input: true}}
python_data_managing: {{chunk_size_mode: split_number, number_of_chunks: 4, padding_size: 2}}
builders: {{builders_class_name: [i2_classification]}}
"""


@pytest.fixture
def twins(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "nomenclature.txt").write_text("wheat:1\nforest:2\n")
    (data / "colors.txt").write_text("1 255 0 0\n2 0 255 0\n")
    values = {"out": str(tmp_path / "out"), "data": str(data)}
    cfg = tmp_path / "config_base.cfg"
    cfg.write_text(CFG.replace("{out}", values["out"]).replace("{data}", values["data"]))
    twin = tmp_path / "config.yaml"
    twin.write_text(YAML.format(**values))
    return cfg, twin


def test_cfg_gives_the_configuration_of_its_yaml_twin(twins):
    cfg, twin = twins
    from_cfg, from_yaml = load_config(cfg).as_dict(), load_config(twin).as_dict()
    assert from_cfg == from_yaml
    assert from_cfg["arg_train"]["sample_selection"]["strategy.percent.p"] == 0.1
    assert from_cfg["chain"]["ground_truth"].endswith("/s2/../gt.shp")
    assert from_cfg["Sentinel_2"]["keep_bands"] == ["B2", "B3", "B4", "B8", "B11"]
    assert from_cfg["sensors_data_interpolation"]["auto_date"] is False


def test_convert_config_output_loads_to_the_same_configuration(twins, tmp_path, capsys):
    cfg, twin = twins
    assert main(["convert-config", str(cfg)]) == 0
    printed = capsys.readouterr().out
    converted = tmp_path / "converted.yaml"
    assert main(["convert-config", str(cfg), "-o", str(converted)]) == 0
    assert converted.read_text() == printed
    assert load_config(converted).as_dict() == load_config(twin).as_dict()
    lines = printed.splitlines()
    # a comment line before a key stays before that key; one at the end of a line stays on it
    assert lines[lines.index("    # where every output goes") + 1].startswith("    outputPath: ")
    assert "# the output root" in next(line for line in lines if line.startswith("    outputPath: "))
    assert lines[0] == "# iota2 configuration, as the labwork's config_base.cfg"
    assert lines[-1] == "# end of file"
    assert "# was: $chain.S2Path + '/../gt.shp'" in next(line for line in lines if "groundTruth" in line)
    assert next(line for line in lines if "features:" in line).endswith("  # a list on two lines")


def test_yaml_named_cfg_and_cfg_named_yaml_are_both_read(twins, tmp_path):
    cfg, twin = twins
    swapped_cfg, swapped_yaml = tmp_path / "yaml_inside.cfg", tmp_path / "cfg_inside.yaml"
    swapped_cfg.write_text(twin.read_text())
    swapped_yaml.write_text(cfg.read_text())
    assert load_config(swapped_cfg).as_dict() == load_config(swapped_yaml).as_dict() == load_config(cfg).as_dict()


def test_the_old_hint_test_file_is_read(tmp_path):
    path = tmp_path / "config_base.cfg"
    path.write_text("chain :\n{\n  outputPath : '/tmp/out'\n  listTile : 'T31TCJ'\n}\narg_train : { runs : 1 }\n")
    config = load_config(path)
    assert config["chain"]["output_path"] == "/tmp/out" and config["chain"]["list_tile"] == ["T31TCJ"]


def test_values():
    tree = parse(textwrap.dedent("""\
        a : { s1 : "it's", s2 : "tab\\there", s3 : '''multi
        line''', path : 'C:\\data\\set', word : rf, n : -3, f : 2.5e-3, big : 1E3, t : True, f2 : False,
              none : None, empty : [], nested : [[1, 2], {k : 'v'}], e : {} }
        b : $a.nested[1].k + "w"
        c : $a.nested[0] + $a.nested[0]
        d : $a["n"] + 4
        'key.with.dots' : ($b + '!')
        """), "x.cfg")
    values = resolve(tree)
    a = values["a"]
    assert a["s1"] == "it's"
    assert a["s2"] == "tab\there" and a["s3"] == "multi\nline" and a["path"] == "C:\\data\\set"
    assert a["word"] == "rf" and a["n"] == -3 and a["f"] == 0.0025 and a["big"] == 1000.0
    assert a["t"] is True and a["f2"] is False and a["none"] is None
    assert a["empty"] == [] and a["nested"] == [[1, 2], {"k": "v"}] and a["e"] == {}
    assert values["b"] == "vw" and values["c"] == [1, 2, 1, 2] and values["d"] == 1
    assert values["key.with.dots"] == "vw!"
    assert yaml.safe_load(to_yaml(tree)) == values


@pytest.mark.parametrize("text, message", [
    ("chain : { output_path : '/x' ", "x.cfg:1:30: expected '}' closing the '{' of line 1, column 9, found the end"),
    ("chain :\n{\n  output_path : /data/out\n}\n", "x.cfg:3:17: expected a value"),
    ("chain :\n{\n  proj : EPSG:2154\n}\n", "x.cfg:3:14: expected a new 'key : value' entry, ',' or '}', found ':'; "
                                          "a value containing ':' must be quoted"),
    ("a : { strategy.percent.p : 0.1 }", "x.cfg:1:15: expected ':' after the key, found '.'; a key containing dots "
                                         "must be quoted, e.g. 'strategy.percent.p' : value"),
    ("a : { b : 'open\n}", "x.cfg:1:11: string opened with ' is not closed on its line"),
    ("a : { b c : 2 }", "x.cfg:1:9: expected ':' after the key 'b', found 'c'"),
    ("a : { b : 1, b : 2 }", "x.cfg:1:14: 'b' is written twice in this mapping (first on line 1)"),
    ("a : { b : 1 }\na : { c : 2 }", "x.cfg:2:1: 'a' is written twice in this file"),
    ("a : { b : 4 - 1 }", "x.cfg:1:13: expected the end of the value, found '-'"),
    ("a : { b : 4 * 2 }", "x.cfg:1:13: expected the end of the value, found '*'"),
    ("a : { b : `os.getcwd()` }", "x.cfg:1:11: expected a value"),
    ("a : @'other.cfg'", "x.cfg:1:5: expected a value"),
    ("a : [1, 2", "x.cfg:1:10: expected ',' or ']' closing the '[' of line 1, column 5"),
    ("a : { b : .5 }", "write 0.5 for .5"),
    ("a : { b : 1 } }", "x.cfg:1:15: expected a 'key : value' entry, found '}'; this '}' closes no '{'"),
    ("a : { b : 'x' ; }", "x.cfg:1:15: unexpected character ';'"),
    ("a : { b : $ c }", "x.cfg:1:13: expected a name right after '$'"),
    ("a : { b : __import__('os') }", "x.cfg:1:21: expected a new 'key : value' entry, ',' or '}', found '('"),
])
def test_syntax_errors_name_file_line_and_column(text, message):
    with pytest.raises(ConfigError) as error:
        resolve(parse(text, "x.cfg"), "x.cfg")
    assert message in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("a : { b : $a.c }", "x.cfg:1:11: $a.c refers to nothing: 'a' has no entry 'c' (entries: b)"),
    ("a : { b : $z }", "x.cfg:1:11: $z refers to nothing: the file has no entry 'z' (entries: a)"),
    ("a : { b : $a.c, c : $a.b }", "x.cfg:1:11: circular reference $a.c -> $a.b -> $a.c"),
    ("a : { b : 'x' + 1 }", "x.cfg:1:15: '+' cannot join a string and a number"),
    ("a : { b : [1][0] }", "expected a new 'key : value' entry"),
    ("a : { b : [1], c : $a.b[3] }", "index 3 is outside the 1 items of 'a.b'"),
])
def test_reference_errors(text, message):
    with pytest.raises(ConfigError) as error:
        resolve(parse(text, "x.cfg"), "x.cfg")
    assert message in str(error.value)


def test_load_config_reports_cfg_errors_with_position(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("chain :\n{\n    output_path : '/tmp/out'\n    list_tile : T31TCJ T31TDJ\n}\n")
    with pytest.raises(ConfigError, match=r"bad\.cfg:4:24: expected ',' or a new line after the value, found "
                                          r"'T31TDJ'; a value containing spaces must be quoted, "
                                          r"e\.g\. 'T31TCJ T31TDJ'"):
        load_config(path)
    path.write_text("chain :\n{\n    outputPath : '/tmp/out'\n    listTile : 'T31TCJ'\n    ratio : 0.5\n}\n")
    with pytest.raises(ConfigError, match="'ratio' is a key of section 'arg_train', not of 'chain'"):
        load_config(path)
    assert load_cfg(path)["chain"]["ratio"] == 0.5


def test_convert_config_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.cfg"
    bad.write_text("chain : { output_path : '/x'\n")
    assert main(["convert-config", str(bad)]) == 2
    assert f"{bad}:2:1: expected '}}'" in capsys.readouterr().err
    assert main(["convert-config", str(tmp_path / "missing.cfg")]) == 2
    assert "does not exist" in capsys.readouterr().err
