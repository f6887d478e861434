"""Configuration loading: defaults, types, unknown keys, camelCase spellings, labwork snippets."""

from __future__ import annotations

import textwrap

import pytest

from iota2.core.config import CORE_SECTIONS, all_sections, load_config, reference_markdown, validate
from iota2.core.errors import ConfigError

MINIMAL = {"chain": {"output_path": "/tmp/out", "list_tile": "T31TCJ T31TDJ"}}


def test_defaults_are_filled():
    config = validate(MINIMAL)
    assert config["arg_train"]["ratio"] == 0.5
    assert config["arg_train"]["runs"] == 1
    assert config["chain"]["list_tile"] == ["T31TCJ", "T31TDJ"]
    assert config["builders"]["builders_class_name"] == ["i2_classification"]
    assert config["python_data_managing"]["chunk_size_mode"] == "auto"
    assert config.getParam("chain", "output_path") == "/tmp/out"


def test_plugin_sections_are_validated():
    config = validate({**MINIMAL, "Sentinel_2": {"temporal_resolution": 5}})
    assert config["Sentinel_2"]["temporal_resolution"] == 5
    assert config["chain"]["s2_path"] is None
    with pytest.raises(ConfigError, match="Sentinel_2.temporal_resolution"):
        validate({**MINIMAL, "Sentinel_2": {"temporal_resolution": "ten"}})


@pytest.mark.parametrize("raw, message", [
    ({"chain": {"output_path": "/o"}}, "mandatory key 'chain.list_tile'"),
    ({**MINIMAL, "arg_train": {"ratoi": 0.5}}, "did you mean 'ratio'"),
    ({**MINIMAL, "arg_trian": {}}, "did you mean 'arg_train'"),
    ({**MINIMAL, "arg_train": {"runs": "3"}}, "arg_train.runs must be an integer"),
    ({**MINIMAL, "arg_train": {"ratio": 1.5}}, "strictly between 0 and 1"),
    ({**MINIMAL, "arg_train": {"split_ground_truth": "yes"}}, "must be true or false"),
    ({**MINIMAL, "python_data_managing": {"chunk_size_mode": "split_numbr"}}, "did you mean 'split_number'"),
    ({**MINIMAL, "builders_class_name": ["i2_obia"]}, "key of section 'builders'"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        validate(raw)


def test_int_accepted_for_float():
    config = validate({**MINIMAL, "task_retry_limits": {"maximum_ram": 20}})
    assert config["task_retry_limits"]["maximum_ram"] == 20.0
    assert isinstance(config["task_retry_limits"]["maximum_ram"], float)


def test_camel_case_spellings_of_older_iota2():
    config = validate({"chain": {"outputPath": "/o", "listTile": "T1"}, "argTrain": {"sampleSelection": {"rand": 0}},
                       "GlobChain": {"useGapFilling": False}})
    assert config["chain"]["output_path"] == "/o"
    assert config["arg_train"]["sample_selection"] == {"rand": 0}
    assert config["sensors_data_interpolation"]["use_gapfilling"] is False


def test_labwork_section_2_snippets_paste_unchanged(tmp_path):
    """Every configuration snippet of labwork section 2 (and 5.1 chunking) is accepted as written."""
    text = textwrap.dedent("""\
        chain:
            output_path: /tmp/out
            list_tile: "T31TCJ"
        arg_train :
            ratio : 0.75  # 75% of the polygons are assigned to the learn dat set
            random_seed : 0 # Set the random seed to split the ground truth
            runs : 10
            sampleSelection :
                "rand" : 0 # In order to set the random seed for the sampleSelection app
        python_data_managing:
            chunk_size_mode: "split_number"
            number_of_chunks: 4
        """)
    path = tmp_path / "labwork.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config["arg_train"]["ratio"] == 0.75
    assert config["arg_train"]["runs"] == 10
    assert config["arg_train"]["sample_selection"]["rand"] == 0
    assert config["python_data_managing"]["number_of_chunks"] == 4


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("chain:\n  output_path: /o\n   list_tile: x\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_labwork_glued_quoted_key_is_read_with_a_warning(tmp_path, caplog):
    """The labwork says: 'just change to "sampler":"periodic"'; pasted under sampleSelection it is JSON, which
    YAML reads only inside braces. It is read as '"sampler": "periodic"', with a warning naming the line."""
    path = tmp_path / "periodic.yaml"
    path.write_text(textwrap.dedent("""\
        chain :
            output_path : '/tmp/out'
            list_tile : 'T31TCJ'
        arg_train :
            sampleSelection :
                "sampler":"periodic"
                "strategy" : "percent"
                "strategy.percent.p":0.1
        """))
    config = load_config(path)
    selection = config["arg_train"]["sample_selection"]
    assert selection["sampler"] == "periodic" and selection["strategy.percent.p"] == 0.1
    assert any("line(s) 6, 8" in record.getMessage() for record in caplog.records)


def test_glued_keys_do_not_hide_another_syntax_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('chain:\n  "output_path":/o\n   list_tile: x\n')
    with pytest.raises(ConfigError, match="line 2.*space after the ':'"):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/config.yaml")


def test_scikit_section_accepts_estimator_keywords():
    config = validate({**MINIMAL, "scikit_models_parameters": {"model_type": "SVC", "C": 10.0}})
    assert config["scikit_models_parameters"]["C"] == 10.0


def test_reference_documents_every_key():
    text = reference_markdown()
    for section in CORE_SECTIONS:
        assert f"## `{section.name}`" in text
        for key in section.params:
            assert f"`{key}`" in text
    assert "`temporal_resolution`" in text  # plugin section


def test_docs_reference_is_up_to_date():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "config_reference.md"
    assert doc.read_text(encoding="utf-8").strip() == reference_markdown(all_sections()).strip(), \
        "docs/config_reference.md is stale: run 'iota2 config-reference -o docs/config_reference.md'"


# --------------------------------------------------------------------------------------------------
# checks at load time: repeated keys, encoding, values that cannot work, misplaced keys
# --------------------------------------------------------------------------------------------------
HEADER = "chain:\n    output_path: /tmp/out\n    list_tile: T31TCJ\n"


def _write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, key, lines", [
    (HEADER + "arg_train:\n    runs: 2\narg_train:\n    ratio: 0.7\n", "arg_train", "4 and 6"),
    (HEADER + "arg_train:\n    runs: 2\n    ratio: 0.7\n    runs: 3\n", "runs", "5 and 7"),
    (HEADER + "arg_train:\n    sample_selection:\n        sampler: random\n        sampler: periodic\n", "sampler",
     "6 and 7"),
    (HEADER + "    output_path: /tmp/other\n", "output_path", "2 and 4"),
])
def test_key_written_twice_names_both_lines(tmp_path, text, key, lines):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert f"'{key}' is written twice, on lines {lines}" in message and str(path) in message


def test_repeated_key_is_found_in_the_labwork_glued_form_too(tmp_path):
    path = _write(tmp_path, HEADER + 'arg_train:\n    sampleSelection:\n        "sampler":"periodic"\n'
                  '        "sampler":"random"\n')
    with pytest.raises(ConfigError, match="'sampler' is written twice, on lines 6 and 7"):
        load_config(path)


def test_merge_keys_may_be_overridden(tmp_path):
    """A key brought by a YAML merge (<<: *anchor) and set again is what merges are for: not a repetition."""
    path = _write(tmp_path, HEADER + "python_data_managing: &chunks\n    chunk_size_mode: split_number\n"
                  "    number_of_chunks: 4\nscikit_models_parameters:\n    keyword_arguments:\n"
                  "        <<: {n_estimators: 10, max_depth: 3}\n        max_depth: 5\n")
    config = load_config(path)
    assert config["scikit_models_parameters"]["keyword_arguments"] == {"n_estimators": 10, "max_depth": 5}


@pytest.mark.parametrize("raw, message", [
    ({"chain": MINIMAL["chain"], "arg_train": {"runs": 1}, "argTrain": {"ratio": 0.6}},
     "sections 'arg_train' and 'argTrain' are both section 'arg_train'"),
    ({"chain": {**MINIMAL["chain"], "outputPath": "/other"}}, "keys 'output_path' and 'outputPath'"),
])
def test_two_spellings_of_one_name_are_refused(raw, message):
    with pytest.raises(ConfigError, match=message):
        validate(raw)


def test_config_not_utf8_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes((HEADER + "    ground_truth: /data/vérité.shp\n").encode("latin-1"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "not UTF-8" in message and "line 4" in message and "iconv" in message
    assert "\n" not in message


def test_utf8_with_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode("utf-8"))
    assert load_config(path)["chain"]["list_tile"] == ["T31TCJ"]


@pytest.mark.parametrize("chain, message", [
    ({"proj": "EPSG:99999"}, "chain.proj = 'EPSG:99999' is not a coordinate reference system that PROJ knows"),
    ({"proj": "2154"}, "write an EPSG code such as 'EPSG:2154'"),
    ({"spatial_resolution": 0}, "chain.spatial_resolution = 0 must be a positive number"),
    ({"spatial_resolution": -10}, "chain.spatial_resolution"),
    ({"spatial_resolution": "10"}, "without quotes"),
    ({"spatial_resolution": [10, -10]}, "pair of them"),
    ({"spatial_resolution": [10]}, "pair of them"),
    ({"spatial_resolution": True}, "chain.spatial_resolution"),
    ({"spatial_resolution": float("nan")}, "chain.spatial_resolution"),
    ({"list_tile": "T31TCJ T31TDJ T31TCJ"}, "chain.list_tile .* lists T31TCJ more than once"),
])
def test_chain_values_that_cannot_work(chain, message):
    with pytest.raises(ConfigError, match=message):
        validate({"chain": {**MINIMAL["chain"], **chain}})


@pytest.mark.parametrize("chain, expected", [
    ({"proj": "EPSG:2154"}, ("proj", "EPSG:2154")),
    ({"proj": "+proj=utm +zone=31 +datum=WGS84 +units=m"}, ("proj", "+proj=utm +zone=31 +datum=WGS84 +units=m")),
    ({"spatial_resolution": 20}, ("spatial_resolution", 20)),
    ({"spatial_resolution": [20, 20.5]}, ("spatial_resolution", [20, 20.5])),
    ({"spatial_resolution": None}, ("spatial_resolution", None)),
])
def test_chain_values_that_work(chain, expected):
    config = validate({"chain": {**MINIMAL["chain"], **chain}})
    assert config["chain"][expected[0]] == expected[1]


def test_unknown_proj_is_reported_in_well_under_a_second(tmp_path, capfd):
    import time

    path = _write(tmp_path, HEADER + "    proj: EPSG:99999\n")
    load_config(_write(tmp_path, HEADER, "warm.yaml"))  # sections and plugins loaded once, as in a run
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="chain.proj"):
        load_config(path)
    assert time.perf_counter() - start < 0.5
    assert "ERROR" not in capfd.readouterr().err  # PROJ's own message is not printed as a second line


@pytest.mark.parametrize("section, values, message", [
    ("arg_train", {"runs": 100000}, "arg_train.runs = 100000 must be between 1 and 1000"),
    ("arg_train", {"runs": 0}, "arg_train.runs = 0 must be between 1 and 1000"),
    ("arg_train", {"random_seed": -1}, "arg_train.random_seed = -1 must be between 0 and"),
    ("arg_train", {"random_seed": 2 ** 40}, "arg_train.random_seed"),
    ("arg_train", {"cloud_threshold": -2}, "arg_train.cloud_threshold = -2 must be >= 0"),
    ("scikit_models_parameters", {"cross_validation_folds": 1}, "cross_validation_folds = 1 must be >= 2"),
    ("task_retry_limits", {"allowed_retry": 10 ** 6}, "allowed_retry = 1000000 must be between 0 and 100"),
    ("task_retry_limits", {"maximum_ram": 0}, "maximum_ram = 0.0 must be > 0"),
    ("task_retry_limits", {"maximum_cpu": -4}, "maximum_cpu = -4 must be > 0"),
])
def test_absurd_numbers_name_the_key_and_the_range(section, values, message):
    with pytest.raises(ConfigError, match=message):
        validate({**MINIMAL, section: values})


def test_runs_upper_bound_is_accepted():
    assert validate({**MINIMAL, "arg_train": {"runs": 1000, "random_seed": 0}})["arg_train"]["runs"] == 1000


@pytest.mark.parametrize("raw, message", [
    ({"chain": {**MINIMAL["chain"], "ratio": 0.7}}, "'ratio' is a key of section 'arg_train', not of 'chain'; "
                                                    "move it under 'arg_train:'"),
    ({"chain": {**MINIMAL["chain"], "runs": 2}}, "'runs' is a key of section 'arg_train'"),
    ({**MINIMAL, "arg_train": {"outputPath": "/o"}}, "'outputPath' is a key of section 'chain'"),
    ({**MINIMAL, "arg_train": {"temporal_resolution": 5}}, "'temporal_resolution' is a key of sections .*'Sentinel_2'"),
])
def test_key_in_the_wrong_section_names_its_section(raw, message):
    with pytest.raises(ConfigError, match=message):
        validate(raw)


def test_the_obia_section_of_the_labwork_is_read():
    """Labwork 3.2.1: the obia keys under 'obia:' (any spelling of the section), with their defaults."""
    config = validate({**MINIMAL, "builders": {"builders_class_name": ["i2_obia"]},
                       "OBIA": {"obia_segmentation_path": "/XXX/segmentation.shp", "stats_used": ['mean', 'std']}})
    assert config["obia"] == {"obia_segmentation_path": "/XXX/segmentation.shp", "stats_used": ["mean", "std"],
                              "buffer_size": None, "region_priority": None, "min_class_coverage": 0.5}
    assert validate(MINIMAL)["obia"]["stats_used"] == ["mean"]
    assert validate({**MINIMAL, "obia": {"region_priority": [2, 1]}})["obia"]["region_priority"] == ["2", "1"]


@pytest.mark.parametrize("raw, message", [
    ({"chain": {**MINIMAL["chain"], "OBIA_segmentation_path": "/seg.shp"}},
     "'OBIA_segmentation_path' is a key of section 'obia', not of 'chain'; move it under 'obia:'"),
    ({**MINIMAL, "stats_used": ["mean"]}, "'stats_used' is a key of section 'obia'; write it indented under 'obia:'"),
    ({**MINIMAL, "obia": {"buffer_size": 0}}, "obia.buffer_size = 0 must be > 0"),
    ({**MINIMAL, "obia": {"min_class_coverage": 1.5}}, "obia.min_class_coverage = 1.5 must be > 0 and <= 1"),
])
def test_obia_keys_out_of_place_or_out_of_range(raw, message):
    with pytest.raises(ConfigError, match=message):
        validate(raw)


@pytest.mark.parametrize("raw, message", [
    ({**MINIMAL, "obia": {"full_learn_segment": True}},
     "'obia.full_learn_segment': learning from the part of a segment .* is not available in this version"),
    ({**MINIMAL, "dimRed": {"targetDimension": 4}}, "dimensionality reduction .* is not available"),
    ({**MINIMAL, "Simplification": {"umc1": 10}}, "vectorization builder .* is not available"),
])
def test_sections_of_features_not_in_this_version_say_so(raw, message):
    with pytest.raises(ConfigError, match=message):
        validate(raw)


def test_check_inputs_false_warns_that_inputs_are_always_checked(caplog):
    config = validate({"chain": {**MINIMAL["chain"], "check_inputs": False}})
    assert config["chain"]["check_inputs"] is False
    assert any("inputs are always checked" in record.getMessage() for record in caplog.records)
    caplog.clear()
    validate(MINIMAL)
    assert not any("check_inputs" in record.getMessage() for record in caplog.records)


def test_labwork_user_features_glued_plain_key_is_read_with_a_warning(tmp_path, caplog):
    """Labwork section 4: 'patterns:"mnt pente aspect"' (key glued to a quoted value) is read as
    'patterns: "mnt pente aspect"', with a warning naming the line."""
    path = _write(tmp_path, textwrap.dedent("""\
        chain:
            output_path: /tmp/out
            list_tile: "T31TDN T31TCN"
            user_feat_path: "/path/to/precomputed/features"
        userFeat:
            arbo: "/*"
            patterns:"mnt pente aspect"
        """))
    config = load_config(path)
    assert config["userFeat"]["patterns"] == ["mnt", "pente", "aspect"]
    assert config["chain"]["list_tile"] == ["T31TDN", "T31TCN"]
    assert any("line(s) 7" in record.getMessage() for record in caplog.records)


def test_yaml_error_names_the_line_of_the_broken_key(tmp_path):
    """PyYAML reports 'could not find expected ':'' on the line after the broken key; the error names the key's line."""
    path = _write(tmp_path, HEADER + "arg_train:\n    ratio: 0.7\n    runs 2\n\n\nbuilders: {}\n")
    with pytest.raises(ConfigError, match="at line 6, column 5"):
        load_config(path)


def test_class_files_are_read_with_the_configuration(tmp_path):
    """A wrong nomenclature fails when the configuration is loaded, before any worker or task starts."""
    from iota2.core.errors import InputDataError

    nomenclature = _write(tmp_path, "urban:1\nforest:1\n", "nomenclature.txt")
    path = _write(tmp_path, HEADER + f"    nomenclature_path: {nomenclature}\n")
    with pytest.raises(InputDataError, match="chain.nomenclature_path: .* label 1 is written twice"):
        load_config(path)
    colors = _write(tmp_path, "1 0 0 0\n2 0 0 256\n", "colors.txt")
    path = _write(tmp_path, HEADER + f"    color_table: {colors}\n")
    with pytest.raises(InputDataError, match="chain.color_table: .* line 2"):
        load_config(path)


def test_reference_says_what_is_checked_at_load():
    text = reference_markdown()
    assert "written twice" in text and "UTF-8" in text and "`obia`" in text


def test_glued_plain_key_alone_in_its_section_after_blank_lines(tmp_path, caplog):
    path = _write(tmp_path, HEADER + "\n\nuserFeat:\n\n    patterns:'mnt pente'\n")
    assert load_config(path)["userFeat"]["patterns"] == ["mnt", "pente"]
    assert any("line(s) 8 " in record.getMessage() for record in caplog.records)
