"""Sentinel-2 and Landsat 8 in one classification: features of both, on the finest grid, in iota2's order."""

import sqlite3

import geopandas as gpd
import rasterio
import yaml

from iota2.cli import main
from iota2.datagen.optical import generate_landsat8
from iota2.datagen.sentinel2 import generate_dataset


def test_sentinel2_and_landsat8_chain(tmp_path):
    s2 = generate_dataset(tmp_path / "s2", tiles=("T31TCJ",), size=150, seed=1)
    l8 = generate_landsat8(tmp_path / "l8", tiles=("T31TCJ",), size=150, seed=1)
    out = tmp_path / "out"
    config = {
        "chain": {"output_path": str(out), "list_tile": "T31TCJ", "s2_path": s2["s2_path"], "l8_path": l8["l8_path"],
                  "ground_truth": s2["ground_truth"], "data_field": "code",
                  "nomenclature_path": s2["nomenclature"], "color_table": s2["color_table"]},
        "arg_train": {"ratio": 0.6, "random_seed": 0,
                      "sample_selection": {"strategy": "constant", "strategy.constant.nb": 80}},
        "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": 20},
        "Landsat8": {"temporal_resolution": 32},
        "Sentinel_2": {"temporal_resolution": 32},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["-config", str(path), "-scheduler_type", "debug", "-no_progress"]) == 0
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        assert src.res == (10.0, 10.0)  # the finer of the two sensors gives the grid
    conn = sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite")
    columns = list(gpd.read_postgis("SELECT * from output", conn, geom_col="GEOMETRY").columns)
    conn.close()
    landsat = [i for i, c in enumerate(columns) if c.startswith("landsat8_")]
    sentinel = [i for i, c in enumerate(columns) if c.startswith("sentinel2_")]
    assert landsat and sentinel and max(landsat) < min(sentinel)  # iota2's order: Landsat 8 before Sentinel-2
