"""End-to-end classification with Sentinel-2 and precomputed user features in another CRS and resolution."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import rasterio

from iota2.cli import main
from iota2.datagen.user_features import generate_user_features

FINAL = ["Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif", "PixelsValidity.tif",
         "RESULTS.txt"]


def test_chain_with_user_features(tmp_path, make_config, s2_dataset):
    user = generate_user_features(tmp_path / "dem", s2_dataset)  # Lambert-93, 25 m: not aligned with the tiles
    config = make_config(chain={"user_feat_path": user["user_feat_path"]},
                         userFeat={"arbo": "/*", "patterns": user["patterns"],
                                   "categorical_patterns": user["categorical_patterns"]})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in FINAL:
        assert (out / "final" / name).stat().st_size > 0, name
    conn = sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite")
    samples = pd.read_sql("SELECT * FROM output", conn)
    conn.close()
    user_columns = [column for column in samples.columns if column.startswith("userfeatures_")]
    assert user_columns == ["userfeatures_mnt", "userfeatures_pente", "userfeatures_aspect",
                            "userfeatures_landform"]
    assert samples.columns.get_loc("userfeatures_mnt") > samples.columns.get_loc(
        [c for c in samples.columns if c.startswith("sentinel2_")][-1])  # stacked after Sentinel-2
    assert samples["userfeatures_mnt"].between(150.0, 350.0).all()
    assert samples["userfeatures_pente"].between(0.0, 30.0).all()
    assert set(samples["userfeatures_landform"].unique()) <= {1.0, 2.0, 3.0}
    # the user rasters cover the tiles: the common mask is the Sentinel-2 footprint
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        assert np.mean(src.read(1) > 0) > 0.8
