"""The learner protocol: registry and selection, the learning task through it, check_learner on the scikit-learn
learner and on learners broken on purpose, and a core that imports no learner library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iota2.core.config import validate
from iota2.core.errors import ConfigError, InputDataError, PluginError
from iota2.core.hookspecs import hookimpl
from iota2.core.learner import (Learner, LearningSamples, Resources, check_file, file_digest, load_model, save_model,
                                select_learner)
from iota2.core.learner_checks import check_learner, make_samples, write_samples_file
from iota2.core.plugins import get_plugin_manager, learners
from iota2.core.raster import atomic_output
from iota2.plugins.sklearn_learner import SklearnLearner


# ---------------------------------------------------------------------- a third-party learner, and broken ones
class CentroidLearner(Learner):
    """Nearest centroid with a softmax over negative distances, saved as a .npz: a learner written from scratch.
    Class attributes switch on one defect each."""

    name = "centroid_test"
    key = "centroid_test"
    seeded = True
    sorted_classes = True
    normalised = True
    check_digests = True
    exact_reload = True

    @classmethod
    def selected_by(cls, config) -> bool:
        return config["arg_train"].get("classifier") == cls.key

    @classmethod
    def settings_from_config(cls, config) -> dict:
        return {"temperature": 1.0}

    def resources(self) -> Resources:
        return Resources(threads=2, gpu=True)

    def fit(self, samples: LearningSamples) -> dict:
        import pandas as pd

        from iota2.builders.samples import read_samples

        table, _ = read_samples(samples.path, samples.label_field)
        labels = table[samples.label_field].to_numpy(np.int64)
        features = table[samples.feature_names].to_numpy(np.float64)
        rng = np.random.default_rng(samples.seed if self.seeded else None)
        classes = np.unique(labels) if self.sorted_classes else np.unique(labels)[::-1]
        self.centroids_ = np.stack([features[labels == c].mean(axis=0) for c in classes])
        self.centroids_ += rng.normal(0, 0.05, self.centroids_.shape)  # a random draw, as real learners have
        self.classes_ = classes.astype(np.int64)
        self.feature_names = list(samples.feature_names)
        return {"samples_per_class": {int(k): int(v) for k, v in pd.Series(labels).value_counts().items()}}

    def predict_proba(self, features, threads=1):
        distances = np.linalg.norm(np.nan_to_num(features)[:, None, :] - self.centroids_[None], axis=2)
        scores = np.exp(-(distances - distances.min(axis=1, keepdims=True)) / self.settings["temperature"])
        return scores / (scores.sum(axis=1, keepdims=True) if self.normalised else 1.0)

    def save(self, folder, stem):
        target = Path(folder) / f"{stem}.npz"
        with atomic_output(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, centroids=self.centroids_)
            return {target.name: file_digest(tmp)}

    @classmethod
    def load(cls, folder, stem, summary):
        path = Path(folder) / f"{stem}.npz"
        if cls.check_digests:
            check_file(path, summary)
        learner = cls(summary["settings"])
        with np.load(path, allow_pickle=False) as data:
            learner.centroids_ = data["centroids"] * (1.0 if cls.exact_reload else 1.5)
        learner.classes_ = np.asarray(summary["classes"], np.int64)
        learner.feature_names = list(summary["feature_names"])
        return learner


def broken(**defects) -> type[CentroidLearner]:
    return type("BrokenCentroid", (CentroidLearner,), defects)


class _Registration:
    def __init__(self, classes):
        self.classes = classes

    @hookimpl
    def iota2_register_learners(self):
        return {cls.name: cls for cls in self.classes}


@pytest.fixture
def register():
    """Register learner classes in the plugin manager for one test (as an installed plugin would)."""
    manager = get_plugin_manager()
    plugins = []

    def add(*classes):
        plugin = _Registration(classes)
        manager.register(plugin)
        plugins.append(plugin)
        learners.cache_clear()

    yield add
    for plugin in plugins:
        manager.unregister(plugin)
    learners.cache_clear()
    load_model.cache_clear()


def _config(**train):
    return validate({"chain": {"output_path": "/tmp/out", "list_tile": "T31TCJ"}, "arg_train": train})


# ---------------------------------------------------------------------- core imports
def test_the_core_imports_no_learner_library():
    """Every module of iota2.core imported, with the plugins loaded: no scikit-learn, skops or torch.
    (worker_preload is the workers' start script: it warms the default learner up by design.)"""
    code = ("import importlib, pkgutil, sys, iota2.core\n"
            "for module in pkgutil.iter_modules(iota2.core.__path__):\n"
            "    if module.name != 'worker_preload':\n"
            "        importlib.import_module('iota2.core.' + module.name)\n"
            "from iota2.core.plugins import learners, classifiers\n"
            "from iota2.core.learner import select_learner\n"
            "from iota2.core.config import validate\n"
            "config = validate({'chain': {'output_path': '/o', 'list_tile': 'T1'}})\n"
            "learner = select_learner(config)\n"
            "learners(), classifiers(), learner(learner.settings_from_config(config)).resources()\n"
            "print(' '.join(sorted(m for m in ('sklearn', 'skops', 'torch') if m in sys.modules)) or 'none')\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "none"
    sources = Path(__file__).resolve().parents[2] / "iota2" / "core"
    for source in sources.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if line.lstrip().startswith(("import ", "from ")))
        assert "iota2.plugins" not in code.replace("iota2.plugins.sklearn_learner", ""), source.name


# ---------------------------------------------------------------------- registry and selection
def test_the_scikit_learn_learner_is_registered_and_the_default():
    assert learners()["sklearn"] is SklearnLearner
    assert select_learner(_config()) is SklearnLearner


def test_a_learner_selected_by_the_configuration_wins_and_two_are_refused(register):
    register(CentroidLearner)
    config = _config(classifier="centroid_test")
    assert select_learner(config) is CentroidLearner
    assert select_learner(_config()) is SklearnLearner
    register(broken(name="centroid_twin"))
    with pytest.raises(ConfigError, match="several learners .*centroid_test.*centroid_twin"):
        select_learner(config)


def test_a_learner_registered_under_another_name_is_refused(register):
    register(broken(name="centroid_a"))
    manager = get_plugin_manager()
    plugin = _Registration([])
    plugin.iota2_register_learners = hookimpl(lambda: {"centroid_b": CentroidLearner})
    manager.register(plugin, name="misnamed")
    learners.cache_clear()
    try:
        with pytest.raises(PluginError, match="registered as 'centroid_b' has name = 'centroid_test'"):
            learners()
    finally:
        manager.unregister(name="misnamed")
        learners.cache_clear()


def test_resources_of_the_scikit_learn_learner():
    def resources(**section):
        config = validate({"chain": {"output_path": "/o", "list_tile": "T1"}, "scikit_models_parameters": section})
        return SklearnLearner(SklearnLearner.settings_from_config(config)).resources()

    assert resources() == Resources(threads=os.cpu_count() or 1)  # random forest: n_jobs
    assert resources(n_jobs=2).threads == 2
    assert resources(model_type="SVC") == Resources(threads=1)
    assert not resources().gpu


def test_bad_scikit_learn_settings_are_a_config_error():
    config = validate({"chain": {"output_path": "/o", "list_tile": "T1"},
                       "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_trees": 3}})
    with pytest.raises(ConfigError, match="n_trees not accepted by RandomForestClassifier"):
        SklearnLearner.settings_from_config(config)


# ---------------------------------------------------------------------- the learning task
@pytest.mark.parametrize("samples_format", ["sqlite", "parquet"])
def test_train_model_fits_saves_and_loads_through_the_protocol(tmp_path, samples_format):
    from iota2.builders.classification import predict
    from iota2.builders.learning import learner_from_config, learning_seed, train_model
    from iota2.core.layout import OutputLayout

    layout = OutputLayout(tmp_path)
    features, labels, polygons, names = make_samples()
    write_samples_file(layout.samples("north-east", 1, samples_format), features, labels, polygons, names, "code",
                       samples_format, "north-east")
    config = validate({"chain": {"output_path": str(tmp_path), "list_tile": "T1"}, "arg_train": {"random_seed": 4},
                       "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": 15,
                                                    "cross_validation_parameters": {"max_depth": [2, 6]},
                                                    "cross_validation_folds": 3}})
    name, settings = learner_from_config(config)
    train_model("north-east", 1, str(tmp_path), name, settings, "CODE", samples_format, random_seed=4)
    model = layout.model("north-east", 1)
    summary = json.loads(layout.model_summary("north-east", 1).read_text())
    assert summary["learner"] == "sklearn" and summary["estimator"] == "RandomForestClassifier"
    assert summary["settings"] == settings and summary["feature_names"] == names
    assert summary["classes"] == [3, 7, 11] and (summary["region"], summary["run"]) == ("north-east", 1)
    assert summary["samples_per_class"] == {"3": 60, "7": 60, "11": 60}
    assert summary["best_params"]["max_depth"] in (2, 6)
    assert layout.cross_validation("north-east", 1).exists()
    assert set(summary["files"]) == {model.name, layout.model_forest("north-east", 1).name}
    learner = load_model(model)
    assert learner.forest_ is not None
    assert learner.estimator_.random_state == learning_seed(4, 1, "north-east")
    labels_out, confidence, proba = predict(learner, features, [0, 3, 7, 11, 20])
    assert proba.shape == (len(features), 5) and np.all(proba[:, [0, 4]] == 0)
    assert (labels_out == labels).mean() > 0.95 and confidence.max() <= 100


def test_train_model_refuses_a_learner_that_is_not_installed(tmp_path):
    from iota2.builders.learning import train_model

    with pytest.raises(InputDataError, match="learner 'nope' is not installed"):
        train_model("1", 0, str(tmp_path), "nope", {}, "code")


# ---------------------------------------------------------------------- check_learner
@pytest.mark.parametrize("section", [
    {"model_type": "RandomForestClassifier", "n_estimators": 20},
    {"model_type": "SVC", "standardization": True},
], ids=["random-forest", "svc-standardized"])
def test_check_learner_passes_on_the_scikit_learn_learner(tmp_path, section):
    config = validate({"chain": {"output_path": "/o", "list_tile": "T1"}, "scikit_models_parameters": section})
    check_learner(SklearnLearner, SklearnLearner.settings_from_config(config), tmp_path)


def test_check_learner_passes_on_a_learner_written_from_scratch(tmp_path, register):
    register(CentroidLearner)
    check_learner(CentroidLearner, {"temperature": 1.0}, tmp_path)


@pytest.mark.parametrize("defects, point", [
    ({"sorted_classes": False}, "classes_"),
    ({"normalised": False}, "predict_proba"),
    ({"exact_reload": False}, "load"),
    ({"check_digests": False}, "modified file"),
    ({"seeded": False}, "determinism"),
    ({"name": ""}, "class attributes"),
])
def test_check_learner_names_the_point_a_broken_learner_fails(tmp_path, register, defects, point):
    learner_class = broken(**{"name": "centroid_broken", **defects})
    if learner_class.name:
        register(learner_class)
    with pytest.raises(AssertionError, match=rf"^check_learner: {point}:"):
        check_learner(learner_class, {"temperature": 1.0}, tmp_path)


def test_check_learner_refuses_probabilities_of_the_wrong_shape(tmp_path, register):
    class DropsAColumn(CentroidLearner):
        name = "centroid_drops"

        def predict_proba(self, features, threads=1):
            proba = super().predict_proba(features, threads)[:, :-1]
            return proba / proba.sum(axis=1, keepdims=True)

    register(DropsAColumn)
    with pytest.raises(AssertionError, match=r"check_learner: predict_proba: shape \(180, 2\), expected"):
        check_learner(DropsAColumn, {"temperature": 1.0}, tmp_path)


def test_save_model_and_load_model_dispatch_on_the_learner_name(tmp_path, register):
    register(CentroidLearner)
    learner = CentroidLearner({"temperature": 2.0})
    features, labels, polygons, names = make_samples()
    path = write_samples_file(tmp_path / "s.sqlite", features, labels, polygons, names)
    learner.fit(LearningSamples(path, "sqlite", "code", names, "1", 0, 3, tmp_path))
    target = tmp_path / "model" / "model_1_seed_0.skops"
    summary = json.loads(save_model(target, learner, {"region": "1", "run": 0}).read_text())
    assert summary["learner"] == "centroid_test" and summary["settings"] == {"temperature": 2.0}
    assert summary["files"] == {"model_1_seed_0.npz": file_digest(tmp_path / "model" / "model_1_seed_0.npz")}
    loaded = load_model(target)
    assert type(loaded) is CentroidLearner and loaded.settings == {"temperature": 2.0}
    assert load_model(target) is loaded  # kept per process while its files do not change
    np.testing.assert_array_equal(loaded.predict_proba(features), learner.predict_proba(features))


# ---------------------------------------------------------------------- resources for the scheduler
def test_resources_become_task_threads_and_a_dask_gpu_request():
    from iota2.core.learner import dask_resources, local_worker_resources, task_threads_of

    assert task_threads_of(Resources(threads=1), 8) == 1  # a single-threaded learner does not hold 8 cores
    assert task_threads_of(Resources(threads=16), 4) == 4  # never more than the task's share
    assert task_threads_of(Resources(threads=16), None) is None  # cluster jobs keep their own setting
    assert task_threads_of(None, 3) == 3
    gpu = Resources(threads=2, gpu=True)
    assert dask_resources(gpu, {"GPU": 1}) == {"GPU": 1}
    assert dask_resources(gpu, None) is None and dask_resources(gpu, {}) is None  # no GPU worker: any worker
    assert dask_resources(Resources(), {"GPU": 1}) is None
    assert local_worker_resources(SklearnLearner, {"model_type": "RandomForestClassifier"}) is None
    assert local_worker_resources(None) is None

    class WithGpu(CentroidLearner):
        @classmethod
        def gpu_available(cls):
            return True

    assert local_worker_resources(WithGpu, {"temperature": 1.0}) == {"GPU": 1}
    assert local_worker_resources(CentroidLearner, {"temperature": 1.0}) is None  # asks for one, none here
