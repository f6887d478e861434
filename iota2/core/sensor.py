"""The sensor contract: what every sensor plugin provides to builders.

A sensor turns the products of one tile into gap-filled series on the tile's reference grid, window by
window, so that memory is bounded by the window and not by the tile, and describes its default features
(:class:`FeatureSpec`); the feature stage of the core (:mod:`iota2.core.features`) makes them.
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


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """How the feature stage (:func:`iota2.core.features.default_features`) turns a sensor's series into its
    default features. Sensors describe their features with it; they do not compute them.

    Attributes
    ----------
    layout
        ``"date_major"``: the bands of date 1, then of date 2 ... (optical sensors, stacks);
        ``"band_major"``: band 1 over every date, then band 2 ... (Sentinel-1);
        ``"static"``: one value per band, no date (user features, read from :attr:`SensorData.static`).
    copy_input
        Keep the bands themselves (``iota2_feature_extraction.copy_input``).
    kept_bands
        Bands kept for the copied bands and the brightness; ``None`` keeps all.
    band_labels
        Label token of each band (default: the lower-case band name), e.g. ``des_vv`` for ``vv_DES``.
    labels
        Labels of a ``"static"`` sensor, one per band.
    indices
        ``(NAME, (low, high))`` normalised differences ``(high - low) / (high + low) x 1000`` and
        ``(NAME, ())`` for the brightness of the kept bands, computed for every date after the bands.
    known_indices
        Every index the sensor can compute, requested or not, in the form of ``indices``: what feature functions
        may ask for (``get_interpolated_Sentinel2_NDVI``).
    index_nodata_bands
        ``"kept"``: an index is nodata where a kept band is nodata (optical sensors); ``"all"``: where any band is.
    expressions
        Band-math expressions over ``b1`` ... ``bN`` evaluated per date after the indices.
    nodata
        Nodata value of the series.
    section
        Configuration section named in error messages.
    """

    layout: str = "date_major"
    copy_input: bool = True
    kept_bands: tuple[str, ...] | None = None
    band_labels: tuple[str, ...] | None = None
    labels: tuple[str, ...] = ()
    indices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    known_indices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    index_nodata_bands: str = "kept"
    expressions: tuple[str, ...] = ()
    nodata: float = -10000.0
    section: str = ""


@dataclasses.dataclass
class SensorData:
    """Everything a sensor read from one window of one tile: series, masks and how to make its features.

    Sensors fill the series; the feature stage of the core makes the features (:attr:`features`,
    :attr:`labels`, computed at first use from :attr:`spec`).

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
    validity
        (rows, cols) uint16 number of valid observations.
    footprint
        (rows, cols) bool, True where the sensor has data on at least one date.
    spec
        How the feature stage makes this sensor's default features.
    static
        (bands, rows, cols) float32 values of a sensor without dates (``spec.layout == "static"``).
    """

    sensor: str
    band_names: list[str]
    input_dates: list[str]
    raw: np.ndarray
    masks: np.ndarray
    interpolation_dates: list[str]
    interpolated: np.ndarray
    validity: np.ndarray
    footprint: np.ndarray
    spec: FeatureSpec = FeatureSpec()
    static: np.ndarray | None = None
    _default: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    def default_features(self) -> tuple[np.ndarray, list[str]]:
        """``(features, labels)``: (rows, cols, n) float32 default features of the sensor and their lower-case
        labels, e.g. ``sentinel2_b2_20180511``, ``sentinel2_ndvi_20180511`` (computed once)."""
        if self._default is None:
            from iota2.core.features import default_features

            self._default = default_features(self)
        return self._default

    @property
    def features(self) -> np.ndarray:
        """(rows, cols, n_features) float32 default features (see :meth:`default_features`)."""
        return self.default_features()[0]

    @property
    def labels(self) -> list[str]:
        """Labels of :attr:`features`."""
        return self.default_features()[1]


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
        """Read ``window`` of ``grid`` (the tile's reference grid) as series on ``interpolation_dates``.

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
