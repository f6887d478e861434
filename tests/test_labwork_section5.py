"""Labwork section 5 (external features), step by step on the demo data, with the labwork's snippets as printed."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from iota2.cli import main
from iota2.datagen.sentinel2 import generate_demo

SECTION_5_1 = """
builders:
  builders_class_name: ["i2_features_map"]
external_features:
  functions: "get_soi"
python_data_managing:
  chunk_size_mode: "split_number"
  number_of_chunks: 4
"""

WRITING_ONLY = """
first_step: "writing"
last_step: "writing"
"""

# labwork 5.2 (an index of several bands; an average of bands 2, 3, 4, 8 with weights from the configuration)
# and 5.3 (the spatial filter, as printed)
MY_INDICES = '''
from scipy.ndimage import laplace
import numpy as np


def get_red_edge_ratio(self):
    """(B8 - B5) / (B8 + B5) x 1000 for every date."""
    b5, b8 = self.get_interpolated_Sentinel2_B5(), self.get_interpolated_Sentinel2_B8()
    ratio = np.where(b8 + b5 == 0, 0, (b8 - b5) / np.where(b8 + b5 == 0, 1, b8 + b5)) * 1000
    return ratio, [f"rer_{date}" for date in self.interpolated_dates["Sentinel2"]]


def weighted_visible_nir(self, w2=1.0, w3=1.0, w4=1.0, w8=1.0):
    bands = [self.get_interpolated_Sentinel2_B2(), self.get_interpolated_Sentinel2_B3(),
             self.get_interpolated_Sentinel2_B4(), self.get_interpolated_Sentinel2_B8()]
    weights = [w2, w3, w4, w8]
    mean = sum(w * b for w, b in zip(weights, bands)) / sum(weights)
    return mean, [f"wmean_{date}" for date in self.interpolated_dates["Sentinel2"]]


def laplace_ndvi(self):
    """laplacian filter over date-averaged ndvi"""
    # gets ndvi of the chunk for all dates (x,y,t)
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    # average over dates
    mean_ndvi = np.mean(ndvi, axis=2)
    # apply laplace filter
    filtered = laplace(mean_ndvi, mode="constant")
    return (filtered, ["laplace_ndvi"])
'''


def _edit(path, **sections):
    """Edit the configuration as a user would: change keys of existing sections, add new ones."""
    config = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _run(path, *extra):
    return main(["-config", str(path), "-scheduler_type", "debug", "-no_progress", *extra])


def _map(path):
    with rasterio.open(path) as src:
        return src.read(), list(src.descriptions)


@pytest.mark.slow
def test_labwork_section_5_on_the_demo_data(tmp_path):
    generate_demo(tmp_path / "demo", size=60, runs=1)
    config = tmp_path / "demo" / "config.yaml"
    out = tmp_path / "demo" / "output"
    for name, values in yaml.safe_load(SECTION_5_1).items():  # 5.1 as printed (the demo has its own chunking)
        _edit(config, **{name: values})
    assert _run(config) == 0
    soi, labels = _map(out / "final" / "features_map.tif")
    dates = [label.rsplit("_", 1)[1] for label in labels if label.startswith("soi_")]
    assert labels[0].startswith("sentinel2_b2_") and labels[-1] == f"soi_{dates[-1]}"
    assert sorted(p.name for p in (out / "customF").glob("T31TCJ_chunk_*.tif")) == \
        [f"T31TCJ_chunk_{i}.tif" for i in range(4)]

    # 5.1 question 1: leave the spectral bands out; question 2: another built-in, the writing group only
    _edit(config, external_features={"functions": "get_ndvi", "concat_mode": False},
          chain=yaml.safe_load(WRITING_ONLY))
    validity = (out / "features" / "T31TCJ" / "nbView.tif").stat().st_mtime_ns
    assert _run(config) == 0
    ndvi, labels = _map(out / "final" / "features_map.tif")
    assert labels == [f"ndvi_{date}" for date in dates]
    assert (out / "features" / "T31TCJ" / "nbView.tif").stat().st_mtime_ns == validity  # init not rerun
    inside = ndvi[0] != -10000
    assert inside.mean() > 0.9 and -1000 <= ndvi[:, inside].min() and ndvi[:, inside].max() <= 1000

    # 5.2: my own indices, one with keyword arguments from the configuration
    module = tmp_path / "my_indices.py"
    module.write_text(MY_INDICES)
    _edit(config, external_features={"module": str(module), "concat_mode": False,
                                     "functions": ["get_red_edge_ratio",
                                                   ["weighted_visible_nir", {"w2": 1, "w3": 2, "w4": 3, "w8": 4}]]})
    assert _run(config) == 0
    mine, labels = _map(out / "final" / "features_map.tif")
    assert labels == [f"rer_{date}" for date in dates] + [f"wmean_{date}" for date in dates]

    # 5.3: a spatial filter, with chunk-border artefacts, then padding
    _edit(config, external_features={"module": str(module), "functions": "laplace_ndvi", "concat_mode": False})
    assert _run(config) == 0
    chunked, _ = _map(out / "final" / "features_map.tif")
    _edit(config, python_data_managing={"padding_size": 1})
    assert _run(config) == 0
    padded, labels = _map(out / "final" / "features_map.tif")
    _edit(config, python_data_managing={"padding_size": 0, "number_of_chunks": 1})
    assert _run(config) == 0
    whole, _ = _map(out / "final" / "features_map.tif")
    assert labels == ["laplace_ndvi"]
    assert not np.array_equal(chunked, whole) and np.array_equal(padded, whole)

    # 5.4: the custom index in the classification workflow, as an additional feature
    raw = yaml.safe_load(config.read_text())
    raw["chain"].pop("first_step"), raw["chain"].pop("last_step")
    raw["builders"]["builders_class_name"] = ["i2_classification"]
    raw["external_features"] = {"module": str(module), "functions": "get_red_edge_ratio"}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert _run(config) == 0
    with sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite") as conn:
        samples = pd.read_sql("SELECT * FROM output", conn)
    assert [c for c in samples.columns if c.startswith("rer_")] == [f"rer_{date}" for date in dates]
    assert any(c.startswith("sentinel2_ndvi_") for c in samples.columns)
    assert (out / "final" / "Classif_Seed_0.tif").exists() and (out / "final" / "features_map.tif").exists()
