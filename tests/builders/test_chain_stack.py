"""End-to-end run of the classification chain with the generic time-series stack as the only sensor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from iota2.cli import main

STACK_BANDS = ("B2", "B3", "B4", "B8")


def write_stack_from_s2(s2_path: str, out: Path) -> Path:
    """Turn the THEIA products of every tile into ``<out>/<tile>/cube_<date>.tif`` (4 bands) and
    ``cube_<date>_invalid.tif`` (CLM | SAT | EDG) files."""
    for tile_folder in sorted(Path(s2_path).iterdir()):
        for product in sorted(tile_folder.iterdir()):
            date = product.name.split("_")[1].split("-")[0]
            bands = []
            for band in STACK_BANDS:
                with rasterio.open(product / f"{product.name}_FRE_{band}.tif") as src:
                    bands.append(src.read(1))
                    profile = src.profile
            invalid = np.zeros(bands[0].shape, dtype=np.uint8)
            for mask in ("CLM", "SAT", "EDG"):
                with rasterio.open(product / "MASKS" / f"{product.name}_{mask}_R1.tif") as src:
                    invalid |= (src.read(1) != 0).astype(np.uint8)
            folder = out / tile_folder.name
            folder.mkdir(parents=True, exist_ok=True)
            profile.update(count=len(bands), driver="GTiff")
            with rasterio.open(folder / f"cube_{date}.tif", "w", **profile) as dst:
                dst.write(np.stack(bands))
            profile.update(count=1, dtype="uint8", nodata=None)
            with rasterio.open(folder / f"cube_{date}_invalid.tif", "w", **profile) as dst:
                dst.write(invalid, 1)
    return out


@pytest.mark.slow
def test_chain_with_the_generic_stack_only(tmp_path, make_config, s2_dataset):
    stack = write_stack_from_s2(s2_dataset["s2_path"], tmp_path / "cube")
    config = make_config(chain={"s2_path": None, "stack_path": str(stack)},
                         timeseries_stack={"name": "Cube", "band_names": ["blue", "green", "red", "nir"],
                                           "file_pattern": r"cube_(?P<date>\d{8})\.tif$",
                                           "mask_pattern": r"cube_(?P<date>\d{8})_invalid\.tif$",
                                           "indices": {"ndvi": ["nir", "red"]}, "temporal_resolution": 20})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "PixelsValidity.tif", "RESULTS.txt"):
        assert (out / "final" / name).stat().st_size > 0, name
    assert "OA : " in (out / "final" / "RESULTS.txt").read_text()
    samples_file = next((out / "learningSamples").glob("Samples_region_*_seed0_learn.sqlite"))
    with sqlite3.connect(samples_file) as conn:
        columns = pd.read_sql("SELECT * FROM output LIMIT 1", conn).columns
    features = [column for column in columns if column.startswith("cube_")]
    assert "cube_nir_20180105" in features and "cube_ndvi_20180105" in features
    assert not any(column.startswith("sentinel2_") for column in columns)
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        produced = src.read(1)
        bounds = src.bounds
    with rasterio.open(s2_dataset["class_map"]) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        truth = src.read(1, window=window.round_offsets().round_lengths())
    valid = produced > 0
    assert float((produced[valid] == truth[valid]).mean()) > 0.7
