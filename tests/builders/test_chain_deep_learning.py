"""Labwork section 3.1 through the command line: the MLP of deep_learning_parameters over two runs on a local dask
cluster (final maps, RESULTS.txt over the runs, the model files and learning curves of every model), a -restart
after a change of epochs that reruns learning onwards only, and the L-TAE on the same data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

pytest.importorskip("torch")

from iota2.cli import main  # noqa: E402

#: labwork 3.1's settings, with fewer epochs than its 200 (the generated tiles are small)
LABWORK = {"dl_name": "MLPClassifier", "epochs": 4, "model_selection_criterion": "fscore"}

#: steps of the classification builder before and after learning
STEPS_BEFORE = ("validity", "ground_truth", "selection", "extraction", "merge_samples")
STEPS_AFTER = ("classification", "merge_chunks", "mosaic", "confusion", "report")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread per task in the tests' own process (the debug scheduler): the networks are small."""
    from iota2.core.scheduler import THREADS_ENV

    monkeypatch.setenv(THREADS_ENV, "1")


def _starts(out: Path, step: str) -> dict:
    """``{task: times started}`` of the tasks of ``step`` (each task's log is appended at each run)."""
    return {log.stem: log.read_text().count(" start ") for log in sorted((out / "logs" / step).glob("*.log"))}


def _ground_truth_classes(nomenclature: Path) -> set:
    return {int(line.split(":")[1]) for line in nomenclature.read_text().splitlines() if ":" in line}


def _results_line(results: str, key: str) -> str:
    lines = [line for line in results.splitlines() if line.startswith(f"{key} :")]
    assert len(lines) == 1, results
    return lines[0]


@pytest.mark.slow
def test_labwork_mlp_two_runs_then_restart_after_a_change_of_epochs(make_config, tmp_path, s2_dataset):
    config = make_config(arg_train={"runs": 2, "deep_learning_parameters": dict(LABWORK)})
    assert main(["-config", str(config), "-scheduler_type", "localCluster", "-nb_parallel_tasks", "2",
                 "-no_progress"]) == 0
    out = tmp_path / "out"
    final, model = out / "final", out / "model"
    classes = _ground_truth_classes(Path(s2_dataset["nomenclature"]))
    for run in (0, 1):
        for name in (f"Classif_Seed_{run}.tif", f"Confidence_Seed_{run}.tif"):
            assert (final / name).stat().st_size > 0, name
        with rasterio.open(final / f"Classif_Seed_{run}.tif") as source:
            labels = set(np.unique(source.read(1)).tolist()) - {0}
        assert labels and labels <= classes, (labels, classes)
        stem = f"model_1_seed_{run}"
        for name in (".pt", "_dl.json", "_learning_curves.csv", "_loss.png", "_metrics.png"):
            assert (model / f"{stem}{name}").stat().st_size > 0, stem + name
        summary = json.loads((model / f"{stem}.json").read_text())
        assert summary["learner"] == "deep_learning" and summary["settings"]["dl_name"] == "MLPClassifier"
        assert summary["settings"]["model_selection_criterion"] == "fscore"
        rows = list(csv.DictReader(open(model / f"{stem}_learning_curves.csv")))
        assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4]
        fscores = [float(row["validation_fscore"]) for row in rows]  # the kept epoch has the best F-score
        assert summary["best_metrics"]["fscore"] == pytest.approx(max(fscores), abs=1e-4)
        assert fscores[summary["best_epoch"] - 1] == pytest.approx(max(fscores), abs=1e-4)
    results = (final / "RESULTS.txt").read_text()
    for key in ("OA", "KAPPA"):  # mean +- half-width over the two runs, as with any learner
        fields = _results_line(results, key).split()
        assert fields[3] == "+-" or fields[3].startswith("+"), results
        assert -1.0 <= float(fields[2]) <= 1.0
    assert float(_results_line(results, "OA").split()[2]) > 0.5, results

    learned = _starts(out, "learning")
    assert learned == {"learning_region_1_seed_0": 1, "learning_region_1_seed_1": 1}
    before = {step: _starts(out, step) for step in STEPS_BEFORE + STEPS_AFTER}
    assert all(before.values()), before
    raw = yaml.safe_load(config.read_text())
    raw["arg_train"]["deep_learning_parameters"]["epochs"] = 2
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress", "-restart"]) == 0
    assert _starts(out, "learning") == {"learning_region_1_seed_0": 2, "learning_region_1_seed_1": 2}
    for step in STEPS_BEFORE:  # not run again
        assert _starts(out, step) == before[step], step
    for step in STEPS_AFTER:  # every task run again
        assert _starts(out, step) == {task: count + 1 for task, count in before[step].items()}, step
    for run in (0, 1):
        rows = list(csv.DictReader(open(model / f"model_1_seed_{run}_learning_curves.csv")))
        assert [int(row["epoch"]) for row in rows] == [1, 2]
        assert json.loads((model / f"model_1_seed_{run}.json").read_text())["settings"]["epochs"] == 2


@pytest.mark.slow
def test_ltae_on_the_same_data(make_config, tmp_path, s2_dataset):
    config = make_config(arg_train={"deep_learning_parameters": {
        "dl_name": "LTAEClassifier", "epochs": 3, "model_selection_criterion": "fscore",
        "dl_parameters": {"d_model": 64, "n_head": 8, "n_neurons": [64, 32], "decoder": [32]}}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    assert (out / "final" / "RESULTS.txt").stat().st_size > 0
    description = json.loads((out / "model" / "model_1_seed_0_dl.json").read_text())
    assert description["dl_name"] == "LTAEClassifier" and description["hyper_parameters"]["d_model"] == 64
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as source:
        labels = set(np.unique(source.read(1)).tolist()) - {0}
    assert labels and labels <= _ground_truth_classes(Path(s2_dataset["nomenclature"]))
    assert not (out / "final" / "Classif_Seed_1.tif").exists()
    rows = list(csv.DictReader(open(out / "model" / "model_1_seed_0_learning_curves.csv")))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
