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


def test_old_cfg_syntax_gets_a_hint(tmp_path):
    path = tmp_path / "config_base.cfg"
    path.write_text("chain :\n{\n  outputPath : '/tmp/out'\n  listTile : 'T31TCJ'\n}\narg_train : { runs : 1 }\n")
    with pytest.raises(ConfigError, match="older '.cfg' syntax"):
        load_config(path)
