"""End-to-end classification run with Sentinel-2 and Sentinel-1 features."""

from __future__ import annotations

import sqlite3

import pandas as pd

from iota2.cli import main
from iota2.datagen.sentinel1 import generate_s1


def test_chain_with_s2_and_s1(tmp_path, make_config, s2_dataset):
    s1_data = generate_s1(tmp_path / "s1", s2_dataset, seed=5)
    config = make_config(chain={"s1_path": s1_data["s1_config"]})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "PixelsValidity.tif", "RESULTS.txt"):
        assert (out / "final" / name).stat().st_size > 0, name
    conn = sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(output)")]
    values = pd.read_sql("SELECT * FROM output LIMIT 50", conn)
    conn.close()
    s1_columns = [c for c in columns if c.startswith("sentinel1_")]
    s2_columns = [c for c in columns if c.startswith("sentinel2_")]
    assert s1_columns[0] == "sentinel1_des_vv_20180105" and len(s1_columns) % 4 == 0
    assert {"sentinel1_asc_vh_20180105", "sentinel1_des_vh_20180105"} <= set(s1_columns)
    assert s2_columns and columns.index(s1_columns[-1]) < columns.index(s2_columns[0])  # iota2's order: S1 first
    assert (values[s1_columns] > 0).all().all()
