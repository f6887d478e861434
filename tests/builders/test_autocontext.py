"""Autocontext (labwork 3.2.2): superpixel context features, models per iteration, a map more accurate than the pixel
map where fields are coherent and pixels noisy, and the configurations it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from iota2.builders.autocontext import context_names, proportions_at, superpixel_counts
from iota2.cli import main
from iota2.core.layout import OutputLayout
from iota2.core.metrics import coefficients, read_confusion_csv
from iota2.datagen.noisy_fields import generate_noisy_fields, stack_section

TILES = ("T31TCJ", "T31TDJ")


@pytest.fixture(scope="module")
def noisy_dataset(tmp_path_factory):
    """Two 100 x 100 px tiles of 20 x 20 px fields whose pixels are very noisy (4 classes, 4 bands, 4 dates)."""
    dataset = generate_noisy_fields(tmp_path_factory.mktemp("noisy"), tiles=TILES, size=100, parcel=20)
    return {**dataset, "s2_path": None}


def stack_config(path: Path, dataset: dict, output: Path, **sections) -> Path:
    from conftest import write_config

    sections = {**sections, "chain": {"s2_path": None, "stack_path": dataset["stack_path"],
                                      **sections.get("chain", {})},
                "timeseries_stack": stack_section(dataset)}
    return write_config(path, dataset, output, **sections)


def scores(out: Path, runs: int) -> list[dict]:
    return [coefficients(read_confusion_csv(OutputLayout(out).run_confusion(run))[0]) for run in range(runs)]


# ---------------------------------------------------------------------- context features
def test_counts_and_proportions_of_superpixels():
    superpixels = np.array([[1, 1, 2, 0],
                            [1, 3, 2, 2]], np.uint32)
    labels = np.array([[5, 7, 7, 7],
                       [5, 0, 7, 5]], np.uint8)
    ids, counts = superpixel_counts(superpixels, labels, [7, 5, 9])
    assert ids.tolist() == [1, 2]  # superpixel 3 holds no classified pixel, 0 is no superpixel
    assert counts.tolist() == [[2, 1, 0], [1, 2, 0]]  # columns: labels 5, 7, 9
    context = proportions_at(superpixels, ids, counts)
    assert context.shape == (2, 4, 3) and context.dtype == np.float32
    np.testing.assert_allclose(context[0, 0], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(context[1, 3], [1 / 3, 2 / 3, 0])
    assert not context[0, 3].any() and not context[1, 1].any()
    assert context_names([7, 5, 9]) == ["context_5", "context_7", "context_9"]
    assert not proportions_at(superpixels, np.zeros(0, np.int64), np.zeros((0, 3), np.int64)).any()


# ---------------------------------------------------------------------- the chain
@pytest.mark.slow
def test_autocontext_map_is_more_accurate_than_the_pixel_map(tmp_path, noisy_dataset):
    runs = 2
    pixel = stack_config(tmp_path / "pixel.yaml", noisy_dataset, tmp_path / "pixel", arg_train={"runs": runs})
    auto = stack_config(tmp_path / "auto.yaml", noisy_dataset, tmp_path / "auto",
                        arg_train={"runs": runs, "enable_autocontext": True, "autocontext_iterations": 3})
    for config in (pixel, auto):
        assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    pixel_scores, auto_scores = scores(tmp_path / "pixel", runs), scores(tmp_path / "auto", runs)
    for run in range(runs):
        print(f"run {run}: pixel map OA {pixel_scores[run]['oa']:.4f} kappa {pixel_scores[run]['kappa']:.4f}; "
              f"autocontext (3 iterations) OA {auto_scores[run]['oa']:.4f} kappa {auto_scores[run]['kappa']:.4f}")
        assert auto_scores[run]["oa"] > pixel_scores[run]["oa"] + 0.08
        assert auto_scores[run]["kappa"] > pixel_scores[run]["kappa"] + 0.1
    out = OutputLayout(tmp_path / "auto")
    for tile in TILES:
        with rasterio.open(out.slic(tile)) as src:
            superpixels = src.read(1)
        assert src.dtypes[0] == "uint32" and 50 < len(np.unique(superpixels[superpixels > 0])) < 200
    for run in range(runs):
        features = None
        for iteration in (1, 2, 3):
            summary = json.loads(out.summary_of(out.autocontext_model("1", run, iteration)).read_text())
            assert summary["autocontext_iteration"] == iteration
            assert summary["settings"]["model_type"] == "RandomForestClassifier"
            if iteration == 1:
                features = summary["feature_names"]
                assert not any(name.startswith("context_") for name in features)
            else:
                assert summary["feature_names"] == features + ["context_1", "context_2", "context_3", "context_4"]
        samples = pd.read_parquet(out.autocontext_samples("1", run, 3))
        proportions = samples[context_names([1, 2, 3, 4])].to_numpy()
        np.testing.assert_allclose(proportions.sum(axis=1), 1.0, atol=1e-5)
        # the context of a sample mostly names its own class
        assert (proportions.argmax(axis=1) + 1 == samples["code"].to_numpy()).mean() > 0.8
    for name in ("Classif_Seed_0.tif", "Classif_Seed_1.tif", "Confidence_Seed_0.tif", "RESULTS.txt"):
        assert (out.final / name).stat().st_size > 0
    assert "OA : " in out.results.read_text()
    # the pixel chain's learning is autocontext's iteration 1: same samples, same seed, same forest
    pixel_summary = json.loads(OutputLayout(tmp_path / "pixel").model_summary("1", 0).read_text())
    auto_summary = json.loads(out.summary_of(out.autocontext_model("1", 0, 1)).read_text())
    assert pixel_summary["files"]["model_1_seed_0_forest.npz"] == auto_summary["files"]["model_1_seed_0_forest.npz"]


@pytest.mark.slow
def test_autocontext_restart_after_more_iterations_and_same_outputs(tmp_path, noisy_dataset):
    def config(name, iterations):
        return stack_config(tmp_path / f"{name}.yaml", noisy_dataset, tmp_path / name,
                            arg_train={"enable_autocontext": True, "autocontext_iterations": iterations},
                            python_data_managing={"number_of_chunks": 3})

    assert main(["-config", str(config("a", 2)), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = OutputLayout(tmp_path / "a")
    kept = [out.slic("T31TCJ"), out.autocontext_model("1", 0, 1), out.autocontext_model("1", 0, 2),
            out.autocontext_counts("T31TDJ", 0, 2, 1)]
    times = [path.stat().st_mtime_ns for path in kept]
    assert not out.autocontext_model("1", 0, 3).exists()
    # one more iteration: superpixels, iterations 1 and 2 are up to date; iteration 3 and the maps are made
    assert main(["-config", str(config("a", 3)), "-scheduler_type", "debug", "-no_progress", "-restart"]) == 0
    assert [path.stat().st_mtime_ns for path in kept] == times
    assert out.autocontext_model("1", 0, 3).exists() and out.autocontext_counts("T31TDJ", 0, 2, 2).exists()
    assert main(["-config", str(config("b", 3)), "-scheduler_type", "debug", "-no_progress"]) == 0
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif"):  # deterministic with arg_train.random_seed
        with rasterio.open(out.final / name) as a, rasterio.open(tmp_path / "b" / "final" / name) as b:
            assert np.array_equal(a.read(), b.read())
    assert (out.final / "RESULTS.txt").read_text() == (tmp_path / "b" / "final" / "RESULTS.txt").read_text()


@pytest.mark.slow
def test_autocontext_with_feature_functions_and_parquet_samples(tmp_path, make_config):
    config = make_config(arg_train={"enable_autocontext": True, "autocontext_iterations": 2,
                                    "samples_format": "parquet"},
                         external_features={"functions": "get_ndvi"}, chain={"list_tile": "T31TCJ"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = OutputLayout(tmp_path / "out")
    names = json.loads(out.summary_of(out.autocontext_model("1", 0, 2)).read_text())["feature_names"]
    ndvi = [index for index, name in enumerate(names) if name.startswith("ndvi_")]
    context = [index for index, name in enumerate(names) if name.startswith("context_")]
    assert ndvi and len(context) == 8 and max(ndvi) < min(context)  # context features after the functions'
    with rasterio.open(out.final_classification(0)) as src:
        assert np.mean(src.read(1) > 0) > 0.8


# ---------------------------------------------------------------------- refused configurations
@pytest.mark.parametrize("sections, expected", [
    ({"scikit_models_parameters": {"model_type": "ExtraTreesClassifier"}}, "model_type is 'ExtraTreesClassifier'"),
    ({"scikit_models_parameters": {"model_type": "SVC"}}, "model_type is 'SVC'"),
])
def test_autocontext_refuses_another_learner(tmp_path, make_config, capsys, sections, expected):
    config = make_config(arg_train={"enable_autocontext": True}, **sections)
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    err = capsys.readouterr().err
    assert "arg_train.enable_autocontext" in err and expected in err and "RandomForestClassifier" in err
    assert not (tmp_path / "out" / "model").exists()  # nothing written


def test_autocontext_refuses_deep_learning(tmp_path, make_config, capsys):
    from iota2.core.plugins import learners

    if not any(cls.name != "sklearn" for cls in learners().values()):
        pytest.skip("no deep-learning learner installed")
    config = make_config(arg_train={"enable_autocontext": True,
                                    "deep_learning_parameters": {"dl_name": "MLPClassifier", "epochs": 1}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    err = capsys.readouterr().err
    assert "arg_train.enable_autocontext" in err and "remove arg_train.deep_learning_parameters" in err
    assert not (tmp_path / "out" / "model").exists()
