"""The example sensor package in examples/ is pip-installed, passes check_sensor and runs the whole chain
as the only sensor, selected from the configuration without any code path."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from iota2.cli import main
from iota2.core.config import validate
from iota2.core.plugins import sensors
from iota2.core.sensor_checks import check_sensor

from example_packages import installed_example



@pytest.fixture(scope="module")
def installed_planet():
    with installed_example("iota2-planet-sensor", "iota2-planet-sensor", "iota2_planet_sensor"):
        yield


@pytest.fixture(scope="module")
def planet_path(installed_planet, s2_dataset, tmp_path_factory):
    from iota2_planet_sensor.datagen import write_planet_like

    return write_planet_like(s2_dataset["s2_path"], tmp_path_factory.mktemp("planet"), resolution=5.0)


def test_planet_sensor_passes_check_sensor(installed_planet, planet_path, tmp_path, s2_dataset):
    planet = sensors()["Planet"]
    config = validate({"chain": {"output_path": str(tmp_path / "out"), "list_tile": s2_dataset["tiles"],
                                 "planet_path": str(planet_path)}})
    check_sensor(planet, config, s2_dataset["tiles"][0])
    grid = planet(config, s2_dataset["tiles"][0]).reference_grid()
    assert grid.resolution == (5.0, 5.0)


def test_chain_with_planet_only(installed_planet, planet_path, tmp_path, make_config):
    listing = subprocess.run([sys.executable, "-m", "iota2.cli", "plugins"], capture_output=True, text=True,
                             check=True).stdout
    assert "iota2-planet-sensor 0.1.0" in listing and "Planet" in listing
    config = make_config(chain={"s2_path": None, "planet_path": str(planet_path)},
                         Planet={"temporal_resolution": 30},
                         python_data_managing={"chunk_size_mode": "split_number", "number_of_chunks": 2})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "PixelsValidity.tif", "RESULTS.txt"):
        assert (out / "final" / name).stat().st_size > 0, name
    samples_file = next((out / "learningSamples").glob("Samples_region_*_seed0_learn.sqlite"))
    with sqlite3.connect(samples_file) as conn:
        columns = list(pd.read_sql("SELECT * FROM output LIMIT 1", conn).columns)
    planet = [column for column in columns if column.startswith("planet_")]
    assert "planet_nir_20180105" in planet and "planet_ndvi_20180105" in planet
    assert not any(column.startswith("sentinel2_") for column in columns)
