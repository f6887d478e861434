"""End-to-end run of the classification builder on generated Landsat 8 THEIA products only."""

import sqlite3

import geopandas as gpd
import numpy as np
import rasterio
import yaml

from iota2.cli import main
from iota2.datagen.optical import generate_landsat8


def test_landsat8_only_chain(tmp_path):
    dataset = generate_landsat8(tmp_path / "data", tiles=("T31TCJ", "T31TDJ"), size=150, seed=1)
    out = tmp_path / "out"
    config = {
        "chain": {"output_path": str(out), "list_tile": "T31TCJ T31TDJ", "l8_path": dataset["l8_path"],
                  "ground_truth": dataset["ground_truth"], "data_field": "code",
                  "nomenclature_path": dataset["nomenclature"], "color_table": dataset["color_table"]},
        "arg_train": {"runs": 1, "ratio": 0.6, "random_seed": 0,
                      "sample_selection": {"sampler": "random", "strategy": "constant", "strategy.constant.nb": 60}},
        "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": 30},
        "Landsat8": {"temporal_resolution": 16},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["-config", str(path), "-scheduler_type", "debug", "-no_progress"]) == 0
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "PixelsValidity.tif", "RESULTS.txt"):
        assert (out / "final" / name).stat().st_size > 0, name
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        assert src.res == (30.0, 30.0)
        labels = src.read(1)
    assert set(np.unique(labels[labels > 0])) <= set(dataset["classes"].values())
    assert "OA : " in (out / "final" / "RESULTS.txt").read_text()
    conn = sqlite3.connect(next((out / "learningSamples").glob("Samples_region_*_seed0_learn.sqlite")))
    samples = gpd.read_postgis("SELECT * from output", conn, geom_col="GEOMETRY")
    conn.close()
    features = [column for column in samples.columns if column.startswith("landsat8_")]
    assert features[0] == "landsat8_b1_20180105"
    assert "landsat8_ndvi_20180121" in features and "landsat8_brightness_20181211" not in features
    assert not [column for column in samples.columns if column.startswith("sentinel2")]
