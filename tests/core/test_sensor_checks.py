"""check_sensor passes on the built-in sensors and names the broken contract point on broken ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio

from iota2.core.config import validate
from iota2.core.sensor_checks import check_sensor
from iota2.sensors.sentinel_2 import Sentinel2Theia
from iota2.sensors.timeseries_stack import TimeSeriesStack

TILE = "T31TCJ"


@pytest.fixture(scope="module")
def small_s2(tmp_path_factory):
    from iota2.datagen.sentinel2 import generate_dataset

    root = tmp_path_factory.mktemp("s2check")
    return generate_dataset(root, tiles=(TILE,), size=32, dates=["20180105", "20180209", "20180306"], seed=2)


@pytest.fixture(scope="module")
def s2_config(small_s2, tmp_path_factory):
    return validate({"chain": {"output_path": str(tmp_path_factory.mktemp("out")), "list_tile": TILE,
                               "s2_path": small_s2["s2_path"]}})


@pytest.fixture(scope="module")
def stack_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    transform = rasterio.transform.from_origin(300000.0, 4900000.0, 20.0, 20.0)
    rng = np.random.default_rng(0)
    for date in ("20180110", "20180125", "20180215"):
        for name, data in ((f"{TILE}_{date}.tif", rng.integers(1, 5000, (3, 20, 20))),
                           (f"{TILE}_{date}_mask.tif", (rng.random((1, 20, 20)) < 0.2).astype("uint8"))):
            with rasterio.open(root / name, "w", driver="GTiff", width=20, height=20, count=data.shape[0],
                               dtype="int16" if data.shape[0] == 3 else "uint8", crs="EPSG:32631",
                               transform=transform) as dst:
                dst.write(data.astype(dst.dtypes[0]))
    return validate({"chain": {"output_path": str(root / "out"), "list_tile": TILE, "stack_path": str(root)},
                     "timeseries_stack": {"band_names": ["green", "red", "nir"], "indices": {"ndvi": ["nir", "red"]},
                                          "file_pattern": r"_(?P<date>\d{8})\.tif$",
                                          "mask_pattern": r"_(?P<date>\d{8})_mask\.tif$"}})


def test_builtin_sentinel_2_passes(s2_config):
    check_sensor(Sentinel2Theia, s2_config, TILE)


def test_generic_stack_passes(stack_config):
    check_sensor(TimeSeriesStack, stack_config, TILE)


class WrongDtype(Sentinel2Theia):
    def read(self, *args, **kwargs):
        data = super().read(*args, **kwargs)
        return dataclasses.replace(data, interpolated=data.interpolated.astype(np.float64))


class WrongBandLabelCount(Sentinel2Theia):
    def read(self, *args, **kwargs):
        data = super().read(*args, **kwargs)
        return dataclasses.replace(data, spec=dataclasses.replace(data.spec, band_labels=("b2", "b3")))


class InconsistentPixels(Sentinel2Theia):
    def read(self, grid, window, interpolation_dates, pixels=None):
        data = super().read(grid, window, interpolation_dates, pixels=pixels)
        if pixels is not None:
            data.interpolated[:] += 1.0
        return data


class UpperCaseLabels(Sentinel2Theia):
    def read(self, *args, **kwargs):
        data = super().read(*args, **kwargs)
        return dataclasses.replace(data, spec=dataclasses.replace(
            data.spec, band_labels=tuple(band.upper() for band in data.band_names)))


class WrongMasks(Sentinel2Theia):
    def read_masks(self, grid, window):
        validity, footprint = super().read_masks(grid, window)
        return validity + 1, footprint


class NoName(Sentinel2Theia):
    name = ""


class UnsortedDates(Sentinel2Theia):
    def input_dates(self):
        return list(reversed(super().input_dates()))


@pytest.mark.parametrize("broken, message", [
    (WrongDtype, r"read: interpolated: dtype float64, expected float32"),
    (WrongBandLabelCount, r"read: spec: band_labels has 2 name\(s\) for 10 band\(s\)"),
    (InconsistentPixels, r"read\(pixels=...\): features at the given pixels differ"),
    (UpperCaseLabels, r"read: labels: must be lower-case"),
    (WrongMasks, r"read_masks: validity or footprint differ"),
    (NoName, r"class attributes: name: must be a non-empty string"),
    (UnsortedDates, r"input_dates: dates must be sorted"),
])
def test_broken_sensors_fail_with_the_contract_point(s2_config, broken, message):
    with pytest.raises(AssertionError, match=message):
        check_sensor(broken, s2_config, TILE)
