"""The deep-learning learner: settings, training on real samples files (the chain's and SQLite files of the chain's
layout), kept epoch, early stop, learning curves, files and their round trip, user networks of dl_module."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from iota2.core.errors import ConfigError, InputDataError  # noqa: E402
from iota2.core.learner import LearningSamples, read_summary, save_model  # noqa: E402
from iota2.plugins.dl_learner import (CURVE_COLUMNS, DeepLearningLearner, iota2_register_learners,  # noqa: E402
                                      split_samples)
from iota2.plugins.dl_samples import SamplesFile  # noqa: E402

DATES = ("20180105", "20180304", "20180511", "20180716", "20180920")
CHANNELS = ("sentinel2_b2", "sentinel2_b4", "sentinel2_ndvi")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread per fit, as a task given one core (the tests' networks are too small for more)."""
    from iota2.core.scheduler import THREADS_ENV

    monkeypatch.setenv(THREADS_ENV, "1")


def config_of(**parameters) -> dict:
    return {"arg_train": {"deep_learning_parameters": parameters}}


def settings(**parameters) -> dict:
    parameters.setdefault("dl_name", "MLPClassifier")
    return DeepLearningLearner.settings_from_config(config_of(**parameters))


def write_samples(path: Path, n_classes: int = 3, polygons_per_class: int = 6, pixels: int = 25, noise: float = 1.0,
                  label_noise: float = 0.0, seed: int = 0) -> tuple[Path, list[str]]:
    """A SQLite samples file with the chain's table layout: per class, polygons of pixels around a class mean
    profile (5 dates x 3 channels and one static feature); ``label_noise`` of the pixels get a random class."""
    rng = np.random.default_rng(seed)
    names = [f"{channel}_{date}" for date in DATES for channel in CHANNELS] + ["userfeatures_mnt"]
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE 'output' ( \"ogc_fid\" INTEGER PRIMARY KEY AUTOINCREMENT, 'GEOMETRY' BLOB, "
                       "'code' BIGINT, 'region' VARCHAR, 'originfid' BIGINT, 'tile_o' VARCHAR, "
                       + ", ".join(f"'{name}' FLOAT" for name in names) + ")")
    insert = f"INSERT INTO output (code, region, originfid, tile_o, {', '.join(names)}) VALUES " \
             f"({', '.join('?' * (len(names) + 4))})"
    centres = rng.normal(0, 2, (n_classes, len(names))) * 100 + 1000
    fid = 0
    for label in range(1, n_classes + 1):
        for _ in range(polygons_per_class):
            values = centres[label - 1] + rng.normal(0, noise * 100, (pixels, len(names)))
            codes = np.where(rng.random(pixels) < label_noise, rng.integers(1, n_classes + 1, pixels), label)
            connection.executemany(insert, ([int(code), "1", fid, "T31TCJ", *row] for code, row
                                            in zip(codes, values.tolist())))
            fid += 1
    connection.commit()
    connection.close()
    return path, names


def samples_of(path: Path, names: list[str], report: Path, seed: int | None = 3) -> LearningSamples:
    report.mkdir(parents=True, exist_ok=True)
    return LearningSamples(path=path, samples_format="sqlite", label_field="code", feature_names=names, region="1",
                           run=0, seed=seed, report_folder=report)


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("easy") / "easy.sqlite")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Overlapping classes with wrong labels: the validation loss rises after a few epochs of a large MLP."""
    return write_samples(tmp_path_factory.mktemp("noisy") / "noisy.sqlite", noise=3.0, label_noise=0.3, seed=1)


@pytest.fixture(scope="module")
def chain_samples(tmp_path_factory, s2_dataset):
    """The samples file of region 1, run 0 written by the chain's sampling group."""
    from conftest import write_config

    from iota2.cli import main

    root = tmp_path_factory.mktemp("dl_learner")
    config = write_config(root / "config.yaml", s2_dataset, root / "out", chain={"last_step": "sampling"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    return root / "out" / "learningSamples" / "Samples_region_1_seed0_learn.sqlite"


# ---------------------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------------------

def test_selection_and_registration():
    assert DeepLearningLearner.selected_by(config_of(dl_name="MLPClassifier"))
    assert not DeepLearningLearner.selected_by({"arg_train": {"deep_learning_parameters": None}})
    assert not DeepLearningLearner.selected_by({"arg_train": {}})
    assert iota2_register_learners() == {"deep_learning": DeepLearningLearner}
    assert DeepLearningLearner.name == "deep_learning"
    found = settings(epochs=200, model_selection_criterion="fscore")  # labwork 3.1
    assert found["dl_name"] == "MLPClassifier" and found["epochs"] == 200 and found["batch_size"] == 1000
    assert found["model_selection_criterion"] == "fscore" and found["device"] == "auto"
    assert json.loads(json.dumps(found)) == found


@pytest.mark.parametrize("parameters, message", [
    ({"dl_name": "ResNet"}, r"dl_name: unknown network 'ResNet'; installed networks: ANN, LTAEClassifier, "
                            r"MLPClassifier, SimpleSelfAttentionClassifier"),
    ({"dl_parameters": {"hidden_layer": [64]}}, r"dl_parameters: unknown key\(s\) hidden_layer for MLPClassifier; "
                                                r"accepted keys: hidden_layers"),
    ({"dl_parameters": {"dropout": "high"}}, r"dl_parameters\.dropout \(MLPClassifier\): expected a number"),
    ({"model_selection_criterion": "accuracy"}, r"model_selection_criterion: expected one of loss, fscore, oa, kappa"),
    ({"early_stop_metric": "f1"}, r"early_stop_metric: expected one of loss, fscore, oa, kappa"),
    ({"epochs": 0}, r"deep_learning_parameters\.epochs: expected a value in \[1, inf\), got 0"),
    ({"epochs": 2.5}, r"deep_learning_parameters\.epochs: expected an integer"),
    ({"learning_rate": 0}, r"learning_rate: expected a value in \(0, inf\)"),
    ({"additional_statistics_percentage": 1}, r"additional_statistics_percentage: expected a value in \[0, 1\)"),
    ({"enable_early_stop": "yes"}, r"enable_early_stop: expected true or false"),
    ({"device": "tpu"}, r"device: expected one of auto, cpu, cuda"),
    ({"epoch": 10}, r"unknown key\(s\) epoch; accepted keys: dl_name, dl_parameters, epochs, batch_size"),
    ({"dl_module": "/nowhere/networks.py"}, r"dl_module: /nowhere/networks\.py does not exist"),
])
def test_bad_settings(parameters, message):
    with pytest.raises(ConfigError, match=message):
        settings(**parameters)


def test_dl_name_is_required():
    with pytest.raises(ConfigError, match=r"dl_name: name the network to train \(e\.g\. dl_name: MLPClassifier\)"):
        DeepLearningLearner.settings_from_config(config_of(epochs=3))


def test_without_torch_the_settings_say_how_to_install_it():
    """The module imports without torch; selecting it without torch is one ConfigError with the install command."""
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError
        from iota2.plugins.dl_learner import DeepLearningLearner
        from iota2.core.errors import ConfigError
        config = {"arg_train": {"deep_learning_parameters": {"dl_name": "MLPClassifier", "epochs": 3}}}
        print(DeepLearningLearner.selected_by(config))
        try:
            DeepLearningLearner.settings_from_config(config)
        except ConfigError as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True"
    assert "needs torch, which is not installed" in lines[1] and "pip install 'iota2[dl]'" in lines[1]
    assert 'pip install -e ".[dl]"' in lines[1] and "torch==2.13.0" in lines[1]


# ---------------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------------

def test_fit_on_the_chain_samples_reaches_the_stated_accuracy(chain_samples, tmp_path):
    """An MLP on the chain's samples (8 classes, 455 features): validation OA >= 0.9 after 12 epochs; the report,
    the curves CSV and PNGs in the report folder; the predictions on held-out polygons agree with the curves."""
    names = SamplesFile(chain_samples, "code").feature_names
    learner = DeepLearningLearner(settings(epochs=12, batch_size=128, model_selection_criterion="oa"))
    report = learner.fit(samples_of(chain_samples, names, tmp_path / "model"))
    assert report["best_metrics"]["oa"] >= 0.9, report
    assert report["epochs_run"] == 12 and report["validation"] == "held-out polygons"
    assert sorted(report["samples_per_class"]) == list(range(1, 9)) and report["n_features"] == 455
    assert report["device"] == "cpu" and not report["streamed"]
    json.dumps(report)
    rows = list(csv.DictReader(open(tmp_path / "model" / "model_1_seed_0_learning_curves.csv")))
    assert tuple(rows[0]) == CURVE_COLUMNS and [int(row["epoch"]) for row in rows] == list(range(1, 13))
    assert max(float(row["validation_oa"]) for row in rows) == report["best_metrics"]["oa"]
    for name in ("model_1_seed_0_loss.png", "model_1_seed_0_metrics.png"):
        assert (tmp_path / "model" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["learning_curves"] == ["model_1_seed_0_learning_curves.csv", "model_1_seed_0_loss.png",
                                         "model_1_seed_0_metrics.png"]
    data = SamplesFile(chain_samples, "code", names)
    split = split_samples(data, learner.settings, 3)
    batch = data.read(split.validation)
    produced = learner.classes_[learner.predict_proba(batch.features).argmax(axis=1)]
    assert np.mean(produced == batch.labels) == pytest.approx(report["best_metrics"]["oa"], abs=1e-9)


@pytest.mark.parametrize("criterion", ["loss", "fscore"])
def test_kept_weights_are_those_of_the_best_epoch(noisy, tmp_path, criterion):
    """The kept network, evaluated again on the held-out rows, gives the curves' values of the best epoch by the
    criterion, not those of the last epoch."""
    path, names = noisy
    learner = DeepLearningLearner(settings(epochs=15, batch_size=64, learning_rate=0.01,
                                           model_selection_criterion=criterion,
                                           dl_parameters={"hidden_layers": [256, 256], "dropout": 0.0}))
    report = learner.fit(samples_of(path, names, tmp_path))
    history = learner.history_
    column = [row[f"validation_{criterion}"] for row in history]
    best = int(np.argmin(column) if criterion == "loss" else np.argmax(column)) + 1
    assert report["best_epoch"] == best
    data = SamplesFile(path, "code", names)
    batch = data.read(split_samples(data, learner.settings, 3).validation)
    probabilities = learner.predict_proba(batch.features)
    produced = learner.classes_[probabilities.argmax(axis=1)]
    index = np.searchsorted(learner.classes_, batch.labels)
    loss = float(-np.log(probabilities[np.arange(len(index)), index]).mean())
    from iota2.plugins.dl_learner import epoch_metrics

    found = epoch_metrics(batch.labels, produced, learner.classes_)
    assert loss == pytest.approx(history[best - 1]["validation_loss"], rel=1e-4)
    assert found["fscore"] == pytest.approx(history[best - 1]["validation_fscore"], abs=1e-9)
    if criterion == "loss":  # overfitting: the validation loss is lowest early, the last epoch differs
        assert best < len(history)
        assert loss != pytest.approx(history[-1]["validation_loss"], rel=1e-3)


def test_early_stop_on_a_plateau(easy, tmp_path):
    """A learning rate too small to move the weights: the loss is flat, training stops after the patience, not
    before epoch_to_trigger."""
    path, names = easy
    common = dict(epochs=50, learning_rate=1e-12, enable_early_stop=True, early_stop_patience=3, early_stop_tol=1e-3,
                  dl_parameters={"batch_norm": False})  # running statistics would move the loss
    learner = DeepLearningLearner(settings(**common))
    report = learner.fit(samples_of(path, names, tmp_path))
    assert report["early_stopped"] and report["epochs_run"] == 4  # best at 1, three epochs without improvement
    late = DeepLearningLearner(settings(**common, epoch_to_trigger=8))
    assert late.fit(samples_of(path, names, tmp_path))["epochs_run"] == 8
    without = DeepLearningLearner(settings(**{**common, "enable_early_stop": False, "epochs": 6}))
    assert without.fit(samples_of(path, names, tmp_path))["epochs_run"] == 6


def test_same_seed_same_probabilities_and_round_trip(easy, tmp_path):
    """Two fits with one seed give identical probabilities, another seed others; the saved model read back gives
    identical probabilities; files modified after training are refused naming them."""
    path, names = easy
    parameters = dict(epochs=4, batch_size=128, weighted_labels=True, device="cpu")
    first, second, other = (DeepLearningLearner(settings(**parameters)) for _ in range(3))
    first.fit(samples_of(path, names, tmp_path / "a", seed=5))
    second.fit(samples_of(path, names, tmp_path / "b", seed=5))
    other.fit(samples_of(path, names, tmp_path / "c", seed=6))
    rows = SamplesFile(path, "code", names).read(np.arange(0, 450, 7)).features
    rows[0, 2], rows[1, 4] = np.nan, np.inf  # non-finite values: classified as the mean
    probabilities = first.predict_proba(rows, threads=2)
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(rows), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert np.array_equal(probabilities, second.predict_proba(rows))
    assert not np.allclose(probabilities, other.predict_proba(rows))
    np.testing.assert_allclose(first.predict_proba(rows, batch=10), probabilities, atol=1e-6)  # other blocking

    model = tmp_path / "model" / "model_1_seed_0.skops"
    summary_file = save_model(model, first, {"region": "1", "run": 0})
    summary = read_summary(model)
    assert sorted(summary["files"]) == ["model_1_seed_0.pt", "model_1_seed_0_dl.json"]
    assert summary["learner"] == "deep_learning" and summary["classes"] == [1, 2, 3]
    description = json.loads((model.parent / "model_1_seed_0_dl.json").read_text())
    assert description["dl_name"] == "MLPClassifier" and description["feature_names"] == names
    loaded = DeepLearningLearner.load(model.parent, "model_1_seed_0", summary)
    assert np.array_equal(loaded.predict_proba(rows), probabilities)
    assert loaded.feature_names == names and loaded.classes_.tolist() == [1, 2, 3]
    assert summary_file.name == "model_1_seed_0.json"

    weights = model.parent / "model_1_seed_0.pt"
    weights.write_bytes(weights.read_bytes()[:-3] + b"xyz")
    with pytest.raises(InputDataError, match=r"model_1_seed_0\.pt was modified after training"):
        DeepLearningLearner.load(model.parent, "model_1_seed_0", summary)


def test_temporal_network_trains_and_round_trips(easy, tmp_path):
    path, names = easy
    learner = DeepLearningLearner(settings(epochs=3, batch_size=64, dl_name="LTAEClassifier", dl_parameters={
        "d_model": 16, "n_head": 4, "d_k": 4, "n_neurons": [16, 8], "decoder": [8]}))
    report = learner.fit(samples_of(path, names, tmp_path))
    assert report["hyper_parameters"]["d_model"] == 16 and report["epochs_run"] == 3
    rows = SamplesFile(path, "code", names).read(np.arange(40)).features
    save_model(tmp_path / "model_1_seed_0.skops", learner)
    loaded = DeepLearningLearner.load(tmp_path, "model_1_seed_0", read_summary(tmp_path / "model_1_seed_0.skops"))
    assert np.array_equal(loaded.predict_proba(rows), learner.predict_proba(rows))


def test_fewer_than_two_classes(tmp_path):
    path, names = write_samples(tmp_path / "one.sqlite", n_classes=1)
    with pytest.raises(InputDataError, match=r"only class\(es\) \[1\] in .*one\.sqlite; a classifier needs at least "
                                             r"two classes"):
        DeepLearningLearner(settings(epochs=2)).fit(samples_of(path, names, tmp_path))


def test_single_polygon_classes_are_evaluated_on_the_training_samples(tmp_path):
    path, names = write_samples(tmp_path / "single.sqlite", polygons_per_class=1)
    report = DeepLearningLearner(settings(epochs=2)).fit(samples_of(path, names, tmp_path))
    assert report["validation"] == "training samples" and report["train_only_classes"] == [1, 2, 3]


# ---------------------------------------------------------------------------------------------------------------------
# networks of dl_module
# ---------------------------------------------------------------------------------------------------------------------

USER_NETWORKS = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    hyper_parameters = {"width": (8, "hidden width")}

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, width=8):
        super().__init__()
        n_features = layout.n_features if layout is not None else n_dates * n_channels + n_static
        self.layers = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, n_classes))

    def forward(self, x):
        return self.layers(x)


class WrongOutput(nn.Module):
    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None):
        super().__init__()
        self.layer = nn.Linear(layout.n_features, n_classes + 1)

    def forward(self, x):
        return self.layer(x)
'''


def test_user_network_of_dl_module(easy, tmp_path):
    path, names = easy
    module = tmp_path / "my_networks.py"
    module.write_text(USER_NETWORKS)
    found = settings(dl_name="TinyNet", dl_module=str(module), dl_parameters={"width": 12}, epochs=20,
                     learning_rate=0.01)
    assert found["dl_module"] == str(module.resolve())
    with pytest.raises(ConfigError, match=r"dl_parameters: unknown key\(s\) depth for TinyNet; accepted keys: width"):
        settings(dl_name="TinyNet", dl_module=str(module), dl_parameters={"depth": 2})
    with pytest.raises(ConfigError, match=r"unknown network 'Tiny'; installed networks: ANN, .*; in dl_module: "
                                          r"TinyNet, WrongOutput"):
        settings(dl_name="Tiny", dl_module=str(module))
    learner = DeepLearningLearner(found)
    report = learner.fit(samples_of(path, names, tmp_path / "model"))
    assert report["network"] == "TinyNet" and report["best_metrics"]["oa"] >= 0.9
    assert learner.network_.layers[0].out_features == 12
    save_model(tmp_path / "model" / "model_1_seed_0.skops", learner)
    loaded = DeepLearningLearner.load(tmp_path / "model", "model_1_seed_0",
                                      read_summary(tmp_path / "model" / "model_1_seed_0.skops"))
    rows = SamplesFile(path, "code", names).read(np.arange(30)).features
    assert np.array_equal(loaded.predict_proba(rows), learner.predict_proba(rows))

    wrong = DeepLearningLearner(settings(dl_name="WrongOutput", dl_module=str(module), epochs=2))
    with pytest.raises(ConfigError, match=r"network WrongOutput returns outputs of shape \(8, 4\) .* it must return "
                                          r"\(batch, n_classes\) = \(batch, 3\) logits"):
        wrong.fit(samples_of(path, names, tmp_path / "wrong"))
    assert not (tmp_path / "wrong" / "model_1_seed_0_learning_curves.csv").exists()

    broken = tmp_path / "broken.py"
    broken.write_text("import torch\n\nraise RuntimeError('no network today')\n")
    with pytest.raises(ConfigError, match=r"deep_learning_parameters\.dl_module: .*broken\.py failed to import "
                                          r"\(line 3\): RuntimeError: no network today"):
        settings(dl_name="TinyNet", dl_module=str(broken))


# ---------------------------------------------------------------------------------------------------------------------
# GPU
# ---------------------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no GPU (torch.cuda.is_available() is false): "
                                                          "the CUDA training and inference are not exercised")
def test_training_and_inference_on_the_gpu(easy, tmp_path):
    path, names = easy
    learner = DeepLearningLearner(settings(epochs=5, batch_size=64, device="cuda"))
    report = learner.fit(samples_of(path, names, tmp_path))
    assert report["device"] == "cuda" and learner.resources().gpu
    assert next(learner.network_.parameters()).is_cuda
    rows = SamplesFile(path, "code", names).read(np.arange(100)).features
    probabilities = learner.predict_proba(rows)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    save_model(tmp_path / "model_1_seed_0.skops", learner)
    loaded = DeepLearningLearner.load(tmp_path, "model_1_seed_0", read_summary(tmp_path / "model_1_seed_0.skops"))
    assert next(loaded.network_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.predict_proba(rows), probabilities, atol=1e-6)
    cpu = DeepLearningLearner.load(tmp_path, "model_1_seed_0",
                                   {**read_summary(tmp_path / "model_1_seed_0.skops"),
                                    "settings": {**learner.settings, "device": "cpu"}})
    np.testing.assert_allclose(cpu.predict_proba(rows), probabilities, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# the learner protocol
# ---------------------------------------------------------------------------------------------------------------------

@pytest.fixture
def registered():
    """The learner registered with the plugin manager (as its entry point does), for load_model."""
    from iota2.core.plugins import get_plugin_manager, learners
    from iota2.plugins import dl_learner

    manager = get_plugin_manager()
    added = not manager.is_registered(dl_learner) and "deep_learning" not in learners()
    if added:
        manager.register(dl_learner)
        learners.cache_clear()
    yield
    if added:
        manager.unregister(dl_learner)
        learners.cache_clear()


def test_check_learner(registered, tmp_path):
    from iota2.core.learner import load_model, select_learner
    from iota2.core.learner_checks import check_learner

    assert select_learner(config_of(dl_name="MLPClassifier", epochs=3)) is DeepLearningLearner
    check_learner(DeepLearningLearner, settings(epochs=15, batch_size=64, device="cpu"), tmp_path)
    load_model.cache_clear()


@pytest.mark.slow
def test_classification_chain_with_deep_learning(registered, make_config, tmp_path):
    """The whole chain through the CLI with an MLP (labwork 3.1 settings, fewer epochs): final map, RESULTS.txt, the
    model's files and learning curves in model/."""
    from iota2.cli import main

    config = make_config(arg_train={"deep_learning_parameters": {"dl_name": "MLPClassifier", "epochs": 5,
                                                                 "model_selection_criterion": "fscore"}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    assert (out / "final" / "Classif_Seed_0.tif").is_file() and (out / "final" / "RESULTS.txt").is_file()
    model = out / "model"
    summary = json.loads((model / "model_1_seed_0.json").read_text())
    assert summary["learner"] == "deep_learning" and summary["settings"]["dl_name"] == "MLPClassifier"
    assert sorted(summary["files"]) == ["model_1_seed_0.pt", "model_1_seed_0_dl.json"]
    for name in ("model_1_seed_0_learning_curves.csv", "model_1_seed_0_loss.png", "model_1_seed_0_metrics.png"):
        assert (model / name).is_file(), name
    rows = list(csv.DictReader(open(model / "model_1_seed_0_learning_curves.csv")))
    assert len(rows) == 5
    results = (out / "final" / "RESULTS.txt").read_text()
    oa = float(results.split("OA :")[1].split()[0])
    assert oa >= 0.8, results
