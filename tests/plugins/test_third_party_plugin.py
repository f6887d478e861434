"""The example third-party plugin in examples/ is pip-installed, discovered through its entry point and
selected from a configuration."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from example_packages import installed_example
from iota2.cli import main


@pytest.fixture
def installed_classifier():
    with installed_example("iota2-centroid-classifier", "iota2-centroid-classifier", "iota2_centroid_classifier"):
        yield


def test_example_plugin_is_listed_and_used(tmp_path, make_config, installed_classifier):
    listing = subprocess.run([sys.executable, "-m", "iota2.cli", "plugins"], capture_output=True, text=True,
                             check=True).stdout
    assert "centroid_classifier" in listing and "iota2-centroid-classifier 0.1.0" in listing
    assert "classifier:SoftCentroidClassifier" in listing
    config = make_config(scikit_models_parameters={"model_type": "SoftCentroidClassifier", "temperature": 0.5})
    assert main(["-config", str(config), "-scheduler_type", "localCluster", "-nb_parallel_tasks", "2",
                 "-no_progress"]) == 0
    summary = json.loads((tmp_path / "out" / "model" / "model_1_seed_0.json").read_text())
    assert summary["learner"] == "sklearn" and summary["estimator"] == "SoftCentroidClassifier"
    assert (tmp_path / "out" / "final" / "RESULTS.txt").exists()


def test_builtins_come_through_the_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="iota2")}
    assert {"sentinel_2", "i2_classification", "sklearn_classifiers"} <= names
    from iota2.core import plugins

    assert "Sentinel_2" in plugins.sensors()
    assert "i2_classification" in plugins.builders()
    assert "RandomForestClassifier" in plugins.classifiers()


def test_every_hook_is_documented():
    from iota2.core import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("iota2_")]
    assert len(hooks) >= 6
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.strip()) > 40, f"hook {name} is not documented"


def test_learner_keywords_are_checked_at_start_without_importing_scikit_learn(tmp_path):
    """The accepted keywords of the built-in learners are kept per scikit-learn version in the user cache:
    after the first run, checking a configuration does not import scikit-learn (about 1 s)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from iota2.core.config import validate\n"
        "from iota2.builders.learning import check_estimator_settings\n"
        "config = validate({'chain': {'output_path': '/o', 'list_tile': 'T1'},\n"
        "                   'scikit_models_parameters': {'model_type': 'ExtraTreesClassifier', 'max_depth': 5}})\n"
        "check_estimator_settings(config)\n"
        "print('sklearn' in sys.modules)\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    first, second = (subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                    check=True).stdout.strip() for _ in range(2))
    assert (first, second) == ("True", "False")
    cache = tmp_path / "iota2" / "estimator_parameters.json"
    known = json.loads(cache.read_text())
    assert any(key.startswith("sklearn.ensemble.ExtraTreesClassifier==") and "max_depth" in names
               for key, names in known.items())
    cache.write_text("{not json")  # a damaged cache is read again from the library
    assert subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
