"""Conformance check of a sensor plugin, in the spirit of scikit-learn's ``check_estimator``.

A sensor package runs :func:`check_sensor` in its own tests, on a small data set::

    from iota2.core.sensor_checks import check_sensor

    def test_my_sensor_follows_the_contract(config):
        check_sensor(MySensor, config, "T31TCJ")

Every failed check raises :class:`AssertionError` whose message starts with the contract point, e.g.
``"read: features dtype"``.
"""

from __future__ import annotations

import re

import numpy as np
from rasterio.windows import Window

from iota2.core.raster import Grid
from iota2.core.sensor import FeatureSpec, Sensor, SensorData

__all__ = ["check_sensor"]

_DATE = re.compile(r"\d{8}")


def _check(condition: bool, point: str, detail: str) -> None:
    if not condition:
        raise AssertionError(f"{point}: {detail}")


def _check_dates(dates, point: str, allow_empty: bool = False) -> None:
    _check(isinstance(dates, list), point, f"must be a list, got {type(dates).__name__}")
    _check(allow_empty or len(dates) > 0, point, "no date")
    bad = [date for date in dates if not (isinstance(date, str) and _DATE.fullmatch(date))]
    _check(not bad, point, f"dates must be YYYYMMDD strings, got {bad[:3]!r}")
    _check(dates == sorted(dates) and len(set(dates)) == len(dates), point,
           f"dates must be sorted and unique, got {dates!r}")


def _check_array(array, point: str, shape: tuple, dtype) -> None:
    _check(isinstance(array, np.ndarray), point, f"must be a numpy array, got {type(array).__name__}")
    _check(array.shape == shape, point, f"shape {array.shape}, expected {shape}")
    _check(array.dtype == np.dtype(dtype), point, f"dtype {array.dtype}, expected {np.dtype(dtype)}")


def _check_data(data, rows: int, cols: int, input_dates: list[str], interpolation_dates: list[str],
                point: str) -> None:
    _check(isinstance(data, SensorData), point, f"must return a SensorData, got {type(data).__name__}")
    _check(isinstance(data.sensor, str) and data.sensor != "", f"{point}: sensor", "must be a non-empty name")
    n_dates, n_bands = len(data.input_dates), len(data.band_names)
    _check(n_bands > 0, f"{point}: band_names", "no band")
    _check(list(data.input_dates) == list(input_dates), f"{point}: input_dates",
           f"{data.input_dates!r} differ from the sensor's input_dates() {input_dates!r}")
    _check(list(data.interpolation_dates) == list(interpolation_dates), f"{point}: interpolation_dates",
           "differ from the dates passed to read")
    _check_array(data.raw, f"{point}: raw", (n_dates, n_bands, rows, cols), np.float32)
    _check_array(data.masks, f"{point}: masks", (n_dates, rows, cols), np.uint8)
    _check_array(data.interpolated, f"{point}: interpolated", (len(interpolation_dates), n_bands, rows, cols),
                 np.float32)
    spec = data.spec
    _check(isinstance(spec, FeatureSpec), f"{point}: spec", f"must be a FeatureSpec, got {type(spec).__name__}")
    _check(spec.layout in ("date_major", "band_major", "static"), f"{point}: spec",
           f"layout {spec.layout!r}; use 'date_major', 'band_major' or 'static'")
    if spec.band_labels is not None:
        _check(len(spec.band_labels) == n_bands, f"{point}: spec",
               f"band_labels has {len(spec.band_labels)} name(s) for {n_bands} band(s)")
    if spec.layout == "static":
        _check(len(spec.labels) == n_bands, f"{point}: spec", f"labels has {len(spec.labels)} name(s) for {n_bands} "
               "band(s)")
        _check_array(data.static, f"{point}: static", (n_bands, rows, cols), np.float32)
    labels = data.labels
    _check(isinstance(labels, list) and all(isinstance(label, str) for label in labels), f"{point}: labels",
           "must be a list of strings")
    _check_array(data.features, f"{point}: features", (rows, cols, len(labels)), np.float32)
    _check(len(labels) > 0, f"{point}: labels", "no feature")
    _check(all(label == label.lower() for label in labels), f"{point}: labels",
           f"must be lower-case, got {[label for label in labels if label != label.lower()][:3]!r}")
    _check(len(set(labels)) == len(labels), f"{point}: labels",
           f"must be unique, {len(labels) - len(set(labels))} duplicate(s)")
    _check_array(data.validity, f"{point}: validity", (rows, cols), np.uint16)
    _check(int(data.validity.max(initial=0)) <= n_dates, f"{point}: validity",
           f"counts more valid observations ({int(data.validity.max())}) than dates ({n_dates})")
    _check_array(data.footprint, f"{point}: footprint", (rows, cols), np.bool_)
    expected = (n_dates - data.masks.sum(axis=0, dtype=np.int64)).astype(np.uint16)
    _check(np.array_equal(data.validity, expected), f"{point}: validity",
           "must equal the number of dates minus the masked ones at every pixel")


def check_sensor(sensor_class: type, config, tile: str, window_size: int = 8, grid: Grid | None = None) -> None:
    """Check that ``sensor_class`` follows the :class:`iota2.core.sensor.Sensor` contract on ``tile``.

    Parameters
    ----------
    sensor_class
        The sensor class (a :class:`~iota2.core.sensor.Sensor` subclass) to check.
    config
        A validated :class:`iota2.core.config.Config` enabling the sensor.
    tile
        A tile with data (a small one keeps the check fast).
    window_size
        Size of the small window read (a window twice as large is read too).
    grid
        The tile's reference grid, required for sensors without their own grid (``provides_grid`` False).

    Raises
    ------
    AssertionError
        At the first contract point that fails; the message names it (``"class attributes: name"``,
        ``"read: features"``, ``"read(pixels=...)"``, ...).
    """
    point = "class attributes"
    _check(isinstance(sensor_class, type) and issubclass(sensor_class, Sensor), point,
           f"{sensor_class!r} must subclass iota2.core.sensor.Sensor")
    for attribute in ("name", "config_section", "path_key"):
        value = getattr(sensor_class, attribute, None)
        _check(isinstance(value, str) and value != "", f"{point}: {attribute}", "must be a non-empty string")
    resolution = getattr(sensor_class, "native_resolution", None)
    _check(isinstance(resolution, (int, float)) and not isinstance(resolution, bool) and resolution > 0,
           f"{point}: native_resolution", f"must be a positive number, got {resolution!r}")
    _check(isinstance(getattr(sensor_class, "provides_grid", None), bool), f"{point}: provides_grid",
           "must be True or False")
    _check(sensor_class.enabled(config), "enabled", f"the configuration does not enable the sensor (set "
           f"chain.{sensor_class.path_key})")

    sensor = sensor_class(config, tile)
    if sensor_class.provides_grid:
        sensor.check_inputs()
        grid = sensor.reference_grid()
        _check(isinstance(grid, Grid), "reference_grid", f"must return an iota2.core.raster.Grid, got {grid!r}")
        _check(grid.width > 0 and grid.height > 0, "reference_grid", "empty grid")
    else:
        _check(isinstance(grid, Grid), "reference_grid", "a sensor without its own grid is checked on the grid "
               "of another sensor: pass grid=<the tile's Grid>")
        sensor.check_inputs(grid=grid)

    input_dates = sensor.input_dates()
    dateless = not input_dates and not sensor_class.provides_grid  # e.g. precomputed user rasters
    _check_dates(input_dates, "input_dates", allow_empty=dateless)
    interpolation_dates = sensor_class.interpolation_dates(config, {tile: input_dates})
    _check_dates(interpolation_dates, "interpolation_dates", allow_empty=dateless)

    size = max(2, min(window_size, grid.width // 2, grid.height // 2))
    small = Window(size // 2, size // 2, size, size)
    large = Window(0, 0, 2 * size, 2 * size)
    data = sensor.read(grid, small, interpolation_dates)
    _check_data(data, size, size, input_dates, interpolation_dates, "read")

    rng = np.random.default_rng(0)
    count = min(5, size * size)
    flat = rng.choice(size * size, size=count, replace=False)
    rows, cols = flat // size, flat % size
    picked = sensor.read(grid, small, interpolation_dates, pixels=(rows, cols))
    _check_data(picked, 1, count, input_dates, interpolation_dates, "read(pixels=...)")
    _check(picked.labels == data.labels, "read(pixels=...)", "labels differ from the window read")
    for field in ("features", "validity", "footprint"):
        window_values, pixel_values = getattr(data, field)[rows, cols], getattr(picked, field)[0]
        _check(np.allclose(window_values, pixel_values, equal_nan=True, atol=1e-3), "read(pixels=...)",
               f"{field} at the given pixels differ from the window read at those pixels")

    validity, footprint = sensor.read_masks(grid, small)
    _check_array(validity, "read_masks: validity", (size, size), np.uint16)
    _check_array(footprint, "read_masks: footprint", (size, size), np.bool_)
    _check(np.array_equal(validity, data.validity) and np.array_equal(footprint, data.footprint), "read_masks",
           "validity or footprint differ from those of read")

    whole = sensor.read(grid, large, interpolation_dates)
    _check_data(whole, 2 * size, 2 * size, input_dates, interpolation_dates, "read (larger window)")
    part = (slice(size // 2, size // 2 + size), slice(size // 2, size // 2 + size))
    _check(whole.labels == data.labels, "window consistency", "labels depend on the window")
    _check(np.allclose(whole.features[part], data.features, equal_nan=True, atol=1e-3)
           and np.array_equal(whole.validity[part], data.validity), "window consistency",
           "a window read differs from the same part of a larger read")

    memory = sensor.bytes_per_pixel(len(interpolation_dates))
    _check(isinstance(memory, (int, np.integer)) and memory > 0, "bytes_per_pixel",
           f"must be a positive integer, got {memory!r}")
