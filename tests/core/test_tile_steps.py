"""The part of the configuration that the tasks reading images receive (``tile_steps.sensor_config``)."""

from __future__ import annotations

from iota2.core.config import Config, validate
from iota2.core.features import enabled_sensors
from iota2.core.tile_steps import sensor_config

RAW = {"chain": {"output_path": "/tmp/out", "list_tile": "T31TCJ", "s2_path": "/data/s2",
                 "user_feat_path": "/data/user", "ground_truth": "/data/truth.shp", "data_field": "code",
                 "nomenclature_path": "/data/nomenclature.txt", "compression_algorithm": "LZW"},
       "arg_train": {"ratio": 0.7, "features": ["NDVI"], "sample_selection": {"sampler": "random"}},
       "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": 10},
       "Sentinel_2": {"temporal_resolution": 5},
       "python_data_managing": {"padding_size": 3},
       "external_features": {"functions": "get_soi"}}


def test_sensor_config_keeps_what_sensors_and_the_feature_stage_read_and_nothing_else():
    config = validate(RAW)
    reduced = sensor_config(config)
    # sensors' chain keys (their product folders), declared by the sensor plugins; nothing else of chain
    assert reduced["chain"]["s2_path"] == "/data/s2" and reduced["chain"]["user_feat_path"] == "/data/user"
    assert "s2_output_path" in reduced["chain"]
    for key in ("output_path", "ground_truth", "data_field", "nomenclature_path", "compression_algorithm",
                "list_tile"):
        assert key not in reduced["chain"], key
    # whole sections of the sensor plugins and of the feature stage
    assert reduced["Sentinel_2"]["temporal_resolution"] == 5 and "userFeat" in reduced
    assert reduced["python_data_managing"]["padding_size"] == 3
    assert reduced["external_features"]["functions"] == config["external_features"]["functions"]
    assert reduced["sensors_data_interpolation"] == config["sensors_data_interpolation"]
    assert reduced["iota2_feature_extraction"] == config["iota2_feature_extraction"]
    # of the other sections, only the spectral indices
    assert reduced["arg_train"] == {"features": ["NDVI"]}
    for section in ("scikit_models_parameters", "arg_classification", "builders", "slurm", "task_retry_limits"):
        assert section not in reduced, section


def test_sensor_config_enables_the_same_sensors_and_is_a_copy():
    config = validate(RAW)
    reduced = sensor_config(config)
    assert enabled_sensors(Config(reduced)) == enabled_sensors(config)
    assert sensor_config(config.as_dict()) == reduced  # from the plain mapping as well
    reduced["Sentinel_2"]["temporal_resolution"] = 20
    reduced["arg_train"]["features"].append("NDWI")
    assert config["Sentinel_2"]["temporal_resolution"] == 5 and config["arg_train"]["features"] == ["NDVI"]
