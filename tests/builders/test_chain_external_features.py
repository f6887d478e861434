"""Labwork 5.4: feature functions in the classification chain, appended to or replacing the default features."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
import rasterio

from iota2.cli import main

MODULE = '''
import numpy as np


def weighted_bands(self, weights):
    """Weighted average of bands 2, 3, 4 and 8, per date; the weights come from the configuration."""
    bands = [self.get_interpolated_Sentinel2_B2(), self.get_interpolated_Sentinel2_B3(),
             self.get_interpolated_Sentinel2_B4(), self.get_interpolated_Sentinel2_B8()]
    total = sum(weight * band for weight, band in zip(weights, bands)) / sum(weights)
    return total, [f"weighted_{date}" for date in self.interpolated_dates["Sentinel2"]]
'''


def _samples(out):
    with sqlite3.connect(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite") as conn:
        return pd.read_sql("SELECT * FROM output", conn)


@pytest.mark.slow
def test_functions_are_sampled_learned_and_classified(tmp_path, make_config):
    module = tmp_path / "my_indices.py"
    module.write_text(MODULE)
    weights = [1.0, 2.0, 3.0, 4.0]
    config = make_config(external_features={"module": str(module),
                                            "functions": [["weighted_bands", {"weights": weights}], "get_ndvi"]})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    samples = _samples(out)
    defaults = [column for column in samples.columns if column.startswith("sentinel2_")]
    weighted = [column for column in samples.columns if column.startswith("weighted_")]
    ndvi = [column for column in samples.columns if column.startswith("ndvi_")]
    assert defaults and weighted and len(weighted) == len(ndvi)
    assert samples.columns.get_loc(weighted[0]) > samples.columns.get_loc(defaults[-1])  # appended after
    date = weighted[3].removeprefix("weighted_")
    expected = sum(weight * samples[f"sentinel2_{band}_{date}"]
                   for weight, band in zip(weights, ("b2", "b3", "b4", "b8"))) / sum(weights)
    np.testing.assert_allclose(samples[weighted[3]], expected, rtol=1e-5)
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        assert np.mean(src.read(1) > 0) > 0.8
    oa = [line for line in (out / "final" / "RESULTS.txt").read_text().splitlines() if line.startswith("OA :")]
    assert float(oa[0].split(":")[1].split()[0]) > 0.6


@pytest.mark.slow
def test_concat_mode_false_learns_the_functions_only(tmp_path, make_config):
    config = make_config(external_features={"functions": "get_ndvi get_soi", "concat_mode": False})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    samples = _samples(tmp_path / "out")
    features = [column for column in samples.columns if column not in ("code", "region", "originfid", "tile_o", "ogc_fid", "GEOMETRY")]
    assert features and all(column.startswith(("ndvi_", "soi_")) for column in features)
    assert (tmp_path / "out" / "final" / "Classif_Seed_0.tif").exists()


def test_a_missing_function_fails_before_any_task(tmp_path, make_config, capsys):
    module = tmp_path / "my_indices.py"
    module.write_text(MODULE)
    config = make_config(external_features={"module": str(module), "functions": "weighted_band"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    error = capsys.readouterr().err
    assert "weighted_band" in error and "weighted_bands" in error
    assert not (tmp_path / "out" / "final").exists()
