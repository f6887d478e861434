"""The sensor contract: what every sensor plugin provides to builders.

A sensor turns the products of one tile into gap-filled features on the tile's reference grid,
window by window, so that memory is bounded by the window and not by the tile.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from rasterio.windows import Window

from iota2.core.raster import Grid

_WARNED: set[tuple] = set()


def warn_once(logger: logging.Logger, message: str, *args) -> None:
    """Log a warning about the input data once per process: sensors are instantiated again for each tile,
    check and task, and the same folder would otherwise be warned about at each of them."""
    key = (logger.name, message, args)
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message, *args)


@dataclasses.dataclass
class SensorData:
    """Everything a sensor knows about one window of one tile.

    Attributes
    ----------
    sensor
        Sensor name used in feature labels, e.g. ``"Sentinel2"``.
    band_names
        Band names in stack order, e.g. ``["B2", "B3", ...]``.
    input_dates
        Acquisition dates ``YYYYMMDD`` in chronological order.
    raw
        (dates, bands, rows, cols) float32 values as stored by the product (reflectance x 10000).
    masks
        (dates, rows, cols) uint8, 1 where the observation is invalid (cloud, saturation, edge).
    interpolation_dates
        Dates ``YYYYMMDD`` of the common temporal grid.
    interpolated
        (interpolation dates, bands, rows, cols) float32 gap-filled values.
    features
        (rows, cols, n_features) float32 feature stack of this sensor.
    labels
        ``n_features`` lower-case labels, e.g. ``sentinel2_b2_20180511``, ``sentinel2_ndvi_20180511``.
    validity
        (rows, cols) uint16 number of valid observations.
    footprint
        (rows, cols) bool, True where the sensor has data on at least one date.
    """

    sensor: str
    band_names: list[str]
    input_dates: list[str]
    raw: np.ndarray
    masks: np.ndarray
    interpolation_dates: list[str]
    interpolated: np.ndarray
    features: np.ndarray
    labels: list[str]
    validity: np.ndarray
    footprint: np.ndarray


class Sensor:
    """Base class of sensors. Subclasses set the class attributes and implement the methods.

    Parameters
    ----------
    config
        The validated :class:`iota2.core.config.Config`.
    tile
        Tile name, e.g. ``"T31TCJ"``.
    """

    #: feature-label prefix, e.g. "Sentinel2"
    name: str = ""
    #: configuration section of the sensor, e.g. "Sentinel_2"
    config_section: str = ""
    #: key of the ``chain`` section holding the product root; the sensor is enabled when it is set
    path_key: str = ""
    #: native pixel size in metres
    native_resolution: float = 10.0
    #: whether the sensor has its own tile grid; sensors without one (Sentinel-1, user rasters) are read
    #: onto the grid of another sensor
    provides_grid: bool = True

    def __init__(self, config, tile: str):
        self.config = config
        self.tile = tile

    @classmethod
    def enabled(cls, config) -> bool:
        """Whether the configuration enables this sensor."""
        value = config["chain"].get(cls.path_key)
        return value not in (None, "", "None")

    def check_inputs(self, grid: Grid | None = None) -> None:
        """Raise :class:`iota2.core.errors.InputDataError` if the tile's products are missing or inconsistent.

        Must be cheap (file names and headers only): it runs before any heavy work. ``grid`` is the tile's
        reference grid when another sensor provides it (e.g. to check that Sentinel-1 images cover the tile).
        """
        raise NotImplementedError

    def input_dates(self) -> list[str]:
        """Acquisition dates ``YYYYMMDD`` of the tile, chronological."""
        raise NotImplementedError

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        """The tile's grid in ``crs`` (default: the data's) at ``resolution`` (default: native)."""
        raise NotImplementedError

    @classmethod
    def interpolation_dates(cls, config, dates_by_tile: dict[str, list[str]]) -> list[str]:
        """The common temporal grid shared by all tiles, from the per-tile acquisition dates."""
        raise NotImplementedError

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read`, used to size chunks."""
        raise NotImplementedError

    def read(self, grid: Grid, window: Window, interpolation_dates: list[str],
             pixels: tuple[np.ndarray, np.ndarray] | None = None) -> SensorData:
        """Read ``window`` of ``grid`` (the tile's reference grid) and compute the sensor's features.

        With ``pixels`` = (rows, cols) inside the window, only those pixels are processed after reading
        and every per-pixel array is shaped as an image of 1 row and ``len(rows)`` columns (used to
        extract samples without computing the features of whole windows).
        """
        raise NotImplementedError

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Number of valid observations (uint16) and footprint (bool) of a window, without the bands.

        The default goes through :meth:`read`; sensors override it with a cheaper masks-only read.
        """
        dates = self.input_dates()
        data = self.read(grid, window, dates)
        return data.validity, data.footprint
