"""End-to-end runs of the classification builder on generated THEIA-like data."""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from shapely.geometry import box

from iota2.cli import main

FINAL = ["Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif", "PixelsValidity.tif",
         "RESULTS.txt", "Confusion_Matrix_Classif_Seed_0.png"]


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile


def agreement_with_truth(classif_path, class_map_path) -> float:
    """Share of classified pixels whose label equals the generator's true class."""
    with rasterio.open(classif_path) as src:
        produced = src.read(1)
        bounds = src.bounds
    with rasterio.open(class_map_path) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        truth = src.read(1, window=window.round_offsets().round_lengths())
    valid = produced > 0
    return float((produced[valid] == truth[valid]).mean())


def two_regions(path, dataset, names, field: str = "region"):
    """A region file cutting the ground truth's extent in a west and an east half, named ``names``."""
    truth = gpd.read_file(dataset["ground_truth"])
    west, south, east, north = truth.total_bounds
    middle = (west + east) / 2
    gpd.GeoDataFrame({field: list(names)},
                     geometry=[box(west - 1e4, south - 1e4, middle, north + 1e4),
                               box(middle, south - 1e4, east + 1e4, north + 1e4)], crs=truth.crs).to_file(path)
    return path


def test_full_chain_local_cluster_two_runs_with_regions(tmp_path, make_config, s2_dataset):
    region_file = two_regions(tmp_path / "regions.gpkg", s2_dataset, ["1", "2"])
    config = make_config(chain={"region_path": str(region_file), "region_field": "region"},
                         arg_train={"runs": 2},
                         arg_classification={"enable_probability_map": True, "generate_final_probability_map": True})
    assert main(["-config", str(config), "-scheduler_type", "localCluster", "-nb_parallel_tasks", "2",
                 "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in FINAL + ["Classif_Seed_1.tif", "Confusion_Matrix_Classif_Seed_1.png", "ProbabilityMap_seed_0.tif"]:
        assert (out / "final" / name).stat().st_size > 0, name
    for region in ("1", "2"):
        for run in (0, 1):
            assert (out / "model" / f"model_{region}_seed_{run}.skops").exists()
    results = (out / "final" / "RESULTS.txt").read_text()
    assert "OA : " in results and "+-" in results
    labels, profile = read(out / "final" / "Classif_Seed_0.tif")
    assert profile["dtype"] == "uint8" and profile["nodata"] == 0
    assert agreement_with_truth(out / "final" / "Classif_Seed_0.tif", s2_dataset["class_map"]) > 0.8
    confidence, _ = read(out / "final" / "Confidence_Seed_0.tif")
    assert confidence.max() <= 100 and confidence[labels > 0].min() > 0
    proba, proba_profile = read(out / "final" / "ProbabilityMap_seed_0.tif")
    assert proba_profile["dtype"] == "int16" and proba.shape[0] == 8
    inside = labels[0] > 0
    assert np.all(np.abs(proba[:, inside].sum(axis=0) - 1000) <= 6)  # probabilities sum to 1000 (rounding)
    assert np.array_equal(proba[:, inside].argmax(axis=0) + 1, labels[0][inside])
    with rasterio.open(out / "final" / "Classif_Seed_0_ColorIndexed.tif") as src:
        assert src.colormap(1)[1][:3] == (220, 30, 200)
    stats = pd.read_csv(out / "learningSamples" / "class_statistics_seed0_learn.csv")
    assert list(stats.columns) == ["Class", "Label", "Region 1", "Region 2", "Total"]
    assert stats.iloc[-1]["Class"] == "Total"
    # the samples file reads as in the labwork's section 6.3
    conn = sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite")
    samples = gpd.read_postgis("SELECT * from output", conn, geom_col="GEOMETRY")
    conn.close()
    ndvi = [c for c in samples.columns if "ndvi" in c]
    assert len(ndvi) > 10 and ndvi[0].startswith("sentinel2_ndvi_2018")
    assert {"code", "region", "originfid", "tile_o"} <= set(samples.columns)
    assert set(samples["region"]) == {"1"}


def test_same_config_same_outputs(tmp_path, make_config):
    paths = []
    for name in ("a", "b"):
        config = make_config(f"{name}.yaml", output=tmp_path / name)
        assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
        paths.append(tmp_path / name)
    a, b = paths
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif"):
        assert np.array_equal(read(a / "final" / name)[0], read(b / "final" / name)[0])
    sa = pd.read_parquet(a / "samplesSelection" / "samples_region_1_seed_0_selection.parquet")
    sb = pd.read_parquet(b / "samplesSelection" / "samples_region_1_seed_0_selection.parquet")
    pd.testing.assert_frame_equal(sa, sb)
    assert (a / "final" / "RESULTS.txt").read_text() == (b / "final" / "RESULTS.txt").read_text()


def test_first_and_last_step(tmp_path, make_config, capsys):
    config = make_config(chain={"last_step": "learning"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    err = capsys.readouterr().err
    assert "stopped after group 'learning' (chain.last_step)" in err and "chain.first_step: classification" in err
    out = tmp_path / "out"
    assert (out / "model" / "model_1_seed_0.skops").exists()
    assert not (out / "final" / "Classif_Seed_0.tif").exists()
    config = make_config(chain={"first_step": "classification"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    for name in FINAL:
        assert (out / "final" / name).exists()


def test_only_summary_runs_nothing(tmp_path, make_config, capsys):
    config = make_config(chain={"first_step": "learning", "last_step": "mosaic"})
    assert main(["-config", str(config), "-only_summary"]) == 0
    text = capsys.readouterr().out
    assert "[ ] Step 1: create output directories" in text
    assert "[x] Step 9: learn one model by region and run" in text
    assert not (tmp_path / "out").exists()


def test_user_fixed_chunks_and_grid_search(tmp_path, make_config):
    config = make_config(python_data_managing={"chunk_size_mode": "user_fixed", "chunk_size_x": 70,
                                               "chunk_size_y": 50},
                         scikit_models_parameters={"model_type": "ExtraTreesClassifier", "n_estimators": 10,
                                                   "standardization": True, "cross_validation_folds": 3,
                                                   "cross_validation_grouped": True,
                                                   "cross_validation_parameters": {"max_depth": [2, 12]}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    assert len(list((out / "classif" / "chunks").glob("T31TCJ_seed_0_chunk_*.tif"))) == 6  # 2 x 3 chunks
    report = json.loads((out / "model" / "model_1_seed_0_cross_val_param.cv").read_text())
    assert report["best_params"]["max_depth"] == 12


def test_region_names_with_any_characters(tmp_path, make_config, s2_dataset):
    """Regions named 'north-east' and 'south west': tasks get file-safe names, models keep the region's name."""
    region_file = two_regions(tmp_path / "regions.gpkg", s2_dataset, ["north-east", "south west"], field="zone")
    config = make_config(chain={"region_path": str(region_file), "region_field": "zone"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    assert (out / "logs" / "learning" / "learning_region_north_east_seed_0.log").exists()
    for region in ("north-east", "south west"):
        assert (out / "model" / f"model_{region}_seed_0.skops").exists()
    assert (out / "final" / "Classif_Seed_0.tif").exists()


def _argument_fingerprints(config_path) -> tuple[dict, dict]:
    """Tasks of the classification graph of a configuration: the fingerprint of each task's own arguments (no
    configuration read, no dependency), and the ``config`` each task receives."""
    from iota2.builders.i2_classification import I2Classification
    from iota2.core.config import load_config
    from iota2.core.fingerprint import task_fingerprint

    graph = I2Classification(load_config(str(config_path))).build_graph()
    return ({name: task_fingerprint(task.function_name, task.kwargs, [], []) for name, task in graph.tasks.items()},
            {name: task.kwargs.get("config") for name, task in graph.tasks.items()})


def test_tasks_receive_the_values_they_use_and_a_changed_value_reaches_only_its_tasks(make_config):
    """Tasks get explicit arguments (those reading images: the sensors' part of the configuration only), so a
    changed setting changes the arguments of exactly the tasks that use it."""
    base, configs = _argument_fingerprints(make_config("base.yaml"))
    with_config = {name for name, config in configs.items() if config is not None}
    assert with_config and all(name.startswith(("validity_", "extraction_", "classification_"))
                               for name in with_config), with_config
    for name in with_config:
        assert "scikit_models_parameters" not in configs[name] and "ground_truth" not in configs[name]["chain"]
        assert configs[name]["chain"]["s2_path"]

    def changed(**sections) -> set[str]:
        fingerprints, _ = _argument_fingerprints(make_config("changed.yaml", **sections))
        assert fingerprints.keys() == base.keys()
        return {name for name in base if fingerprints[name] != base[name]}

    assert changed(scikit_models_parameters={"model_type": "RandomForestClassifier", "n_estimators": 7}) == \
        {"learning_region_1_seed_0"}
    assert changed(arg_train={"sample_selection": {"sampler": "periodic", "strategy": "constant",
                                                   "strategy.constant.nb": 100}}) == {"selection_region_1_seed_0"}
    assert changed(arg_train={"ratio": 0.7}) == {"ground_truth"}
    assert changed(chain={"nomenclature_path": None}) == {"class_statistics_seed_0", "confusion_seed_0", "report",
                                                          "mosaic_seed_0", "html_report", "stac"}  # class names
    compressed = changed(chain={"compression_algorithm": "LZW"})
    assert {"validity_T31TCJ", "classification_T31TCJ_chunk_0", "merge_chunks_T31TDJ_seed_0", "mosaic_seed_0",
            "pixels_validity"} <= compressed
    assert not any(name.startswith(("ground_truth", "selection", "learning", "confusion", "report"))
                   for name in compressed)
