"""Model files."""

import hashlib
import json

import pytest

from iota2.builders.learning import load_model
from iota2.core.errors import InputDataError


def test_an_unreadable_model_names_the_file_and_the_step_to_run_again(tmp_path):
    path = tmp_path / "model_1_seed_0.skops"
    path.write_bytes(b"garbage\n")
    (tmp_path / "model_1_seed_0.json").write_text(json.dumps(
        {"feature_names": ["a"], "classes": [1, 2], "files": {path.name: hashlib.sha256(b"garbage\n").hexdigest()}}))
    with pytest.raises(InputDataError, match="model_1_seed_0.skops cannot be read .*first_step: learning"):
        load_model(path)


def test_a_missing_model_names_the_file_and_the_step_to_run_again(tmp_path):
    """Neither the model nor its summary exists."""
    with pytest.raises(InputDataError, match="model_1_seed_0.skops does not exist.*first_step: learning"):
        load_model(tmp_path / "model_1_seed_0.skops")


def test_learning_seeds_are_independent_per_run_and_region():
    from iota2.builders.learning import learning_seed

    def seed_of(base, run, region="1"):
        return learning_seed(base, run, region)

    assert seed_of(5, 1) == seed_of(5, 1)  # reproducible
    assert seed_of(5, 1) != seed_of(6, 0)  # run r of seed s is not run r-1 of seed s+1
    assert seed_of(5, 1) != seed_of(5, 1, "2")  # two regions' models do not share one stream
    assert len({seed_of(5, run) for run in range(20)}) == 20
    assert seed_of(None, 0) is None  # no seed: a fresh one, as documented


def test_the_learner_is_described_once_from_the_configuration_and_built_from_that_description():
    from iota2.builders.learning import learner_from_config, learning_seed
    from iota2.core.config import validate
    from iota2.plugins.sklearn_learner import build_estimator

    config = validate({"chain": {"output_path": "/tmp/out", "list_tile": "T31TCJ"},
                       "arg_train": {"random_seed": 3},
                       "scikit_models_parameters": {"model_type": "ExtraTreesClassifier", "n_estimators": 12,
                                                    "standardization": True,
                                                    "cross_validation_parameters": {"max_depth": [2, 4]}}})
    name, settings = learner_from_config(config)
    assert name == "sklearn"
    assert settings["model_type"] == "ExtraTreesClassifier" and settings["keywords"] == {"n_estimators": 12}
    assert settings["standardization"] is True
    assert settings["cross_validation_parameters"] == {"max_depth": [2, 4]}
    assert settings["cross_validation_folds"] == config["scikit_models_parameters"]["cross_validation_folds"]
    assert json.loads(json.dumps(settings)) == settings  # a task argument: JSON-able
    estimator = build_estimator(settings, learning_seed(3, 1, "2"), threads=2)
    scaler, trees = estimator.steps[0][1], estimator.steps[-1][1]
    assert type(scaler).__name__ == "StandardScaler" and type(trees).__name__ == "ExtraTreesClassifier"
    assert trees.n_estimators == 12 and trees.random_state == learning_seed(3, 1, "2") and trees.n_jobs == 2
    plain = build_estimator({**settings, "standardization": False}, None)
    assert not hasattr(plain, "steps") and plain.random_state is None


@pytest.mark.parametrize("section, threads", [({"model_type": "SVC"}, 1),
                                              ({"model_type": "RandomForestClassifier", "n_jobs": 3}, 3)])
def test_learning_tasks_carry_the_learner_and_its_resources(make_config, section, threads):
    """build_graph passes the learner's name and settings to the learning tasks and sets its Resources on them
    (for the scheduler), without fitting anything."""
    from iota2.builders.i2_classification import I2Classification
    from iota2.core.config import load_config
    from iota2.core.learner import Resources

    graph = I2Classification(load_config(str(make_config(scikit_models_parameters=section)))).build_graph()
    learning = graph.tasks_of_step("learning")
    assert learning and all(task.resources == Resources(threads=threads) for task in learning)
    kwargs = learning[0].kwargs
    assert kwargs["learner_name"] == "sklearn" and kwargs["settings"]["model_type"] == section["model_type"]
    assert kwargs["random_seed"] == 0 and "learner" not in kwargs
