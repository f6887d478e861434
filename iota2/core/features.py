"""Features of a window of a tile across every enabled sensor.

Sensors are stacked in iota2's order (Landsat 5 old, Landsat 8, Landsat 8 old, Sentinel-1,
Sentinel-2 THEIA, Sentinel-2 Sen2Cor, Sentinel-2 L3A, generic time-series stack, user features); sensors unknown to that list
come after, by name. The :class:`FeatureBlock` keeps each sensor's data so feature functions can
read interpolated bands, raw series and masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from rasterio.windows import Window

from iota2.core.errors import ConfigError
from iota2.core.raster import Grid

SENSOR_ORDER = ["Landsat5_old", "Landsat8", "Landsat8_old", "Sentinel_1", "Sentinel_2", "Sentinel_2_S2C",
                "Sentinel_2_L3A", "timeseries_stack", "userFeat"]


@dataclasses.dataclass
class FeatureBlock:
    """Features of one window: ``features`` (rows, cols, n) float32 and their ``labels``.

    ``validity`` counts valid observations over all sensors; ``footprint`` is True where every
    sensor has data (iota2's common mask); ``sensors`` maps sensor names to their
    :class:`iota2.core.sensor.SensorData`.
    """

    features: np.ndarray
    labels: list[str]
    validity: np.ndarray
    footprint: np.ndarray
    sensors: dict


def enabled_sensors(config) -> list[type]:
    """Sensor classes enabled by ``config`` in stacking order."""
    from iota2.core.plugins import sensors

    registered = sensors()
    order = {name: index for index, name in enumerate(SENSOR_ORDER)}
    enabled = [cls for section, cls in registered.items() if cls.enabled(config)]
    enabled.sort(key=lambda cls: (order.get(cls.config_section, len(order)), cls.config_section))
    if not enabled:
        keys = ", ".join(f"chain.{cls.path_key}" for cls in registered.values())
        raise ConfigError(f"no sensor is enabled: set one of {keys} to the folder of your images")
    return enabled


def grid_sensor(sensor_classes: list[type]) -> type:
    """The sensor whose grid is the tiles' reference grid: among sensors that provide a grid, the one with
    the finest native resolution (the first in stacking order on a tie)."""
    candidates = [cls for cls in sensor_classes if getattr(cls, "provides_grid", True)]
    if not candidates:
        names = ", ".join(cls.config_section for cls in sensor_classes)
        raise ConfigError(f"none of the enabled sensors ({names}) defines a tile grid; enable an optical sensor "
                          "(e.g. chain.s2_path) or a time-series stack next to them")
    return min(candidates, key=lambda cls: cls.native_resolution)


def read_features(config, tile: str, grid: Grid, window: Window, dates_by_sensor: dict[str, list[str]],
                  sensor_classes: list[type] | None = None,
                  pixels: tuple[np.ndarray, np.ndarray] | None = None) -> FeatureBlock:
    """Read ``window`` of ``tile`` from every enabled sensor and stack the features.

    With ``pixels`` = (rows, cols) relative to the window, only those pixels are computed and the block
    is an image of 1 row and ``len(rows)`` columns.
    """
    sensor_classes = sensor_classes or enabled_sensors(config)
    blocks, labels, data = [], [], {}
    validity = None
    footprint = None
    for cls in sensor_classes:
        sensor = cls(config, tile)
        sensor_data = sensor.read(grid, window, dates_by_sensor[cls.config_section], pixels=pixels)
        data[sensor_data.sensor] = sensor_data
        blocks.append(sensor_data.features)
        labels.extend(sensor_data.labels)
        validity = sensor_data.validity.astype(np.uint16) if validity is None else validity + sensor_data.validity
        footprint = sensor_data.footprint.copy() if footprint is None else footprint & sensor_data.footprint
    features = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2)
    return FeatureBlock(np.ascontiguousarray(features, dtype=np.float32), labels, validity, footprint, data)


def bytes_per_pixel(config, tile: str, dates_by_sensor: dict[str, list[str]],
                    sensor_classes: list[type] | None = None) -> int:
    """Estimated peak memory per pixel of :func:`read_features` plus a classification of its result."""
    sensor_classes = sensor_classes or enabled_sensors(config)
    total = 0
    for cls in sensor_classes:
        total += cls(config, tile).bytes_per_pixel(len(dates_by_sensor[cls.config_section]))
    return int(total * 1.5) + 64
