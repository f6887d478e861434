"""Generic time-series stack: a folder of per-date multi-band GeoTIFFs from any sensor.

Layout read::

    <stack_path>/<TILE>/modis_20180105.tif, modis_20180121.tif, ...   (one sub-folder per tile)
    <stack_path>/T31TCJ_20180105.tif, T31TDJ_20180105.tif, ...        (or file names containing the tile)

Every file holds the same bands, in the order of ``timeseries_stack.band_names``; its acquisition date
is the named group ``date`` of ``timeseries_stack.file_pattern`` (a regular expression searched in the
file name, parsed with ``date_format``). Optional mask files (``mask_pattern``, same ``date`` group) flag
invalid observations with any non-zero value; pixels equal to ``nodata`` in any band are invalid too.

The grid of the tile is the grid of its first date's file. Data are read window by window onto the
reference grid (directly when aligned, warped otherwise), gap-filled onto the common temporal grid, and
the features are the bands of every interpolation date (labels ``<name>_<band>_<YYYYMMDD>``) followed by
the normalised differences of ``indices`` (x1000, labels ``<name>_<index>_<YYYYMMDD>``).

:class:`TimeSeriesStack` is also a base class: a sensor package with a fixed layout (e.g. the Planet
example in ``examples/iota2-planet-sensor``) overrides :meth:`TimeSeriesStack.settings`.
"""

from __future__ import annotations

import datetime
import logging
import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from iota2.core import config as config_module
from iota2.core.config import Param, Section
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.raster import Grid, open_input_raster, open_raster, read_onto_grid
from iota2.core.sensor import FeatureSpec, Sensor, SensorData, warn_once
from iota2.core.timeseries import interpolation_grid, series_on_dates

LOGGER = logging.getLogger(__name__)

#: value of pixels outside the files when neither ``nodata`` nor the files declare one
DEFAULT_FILL = -10000.0
#: value given to masks outside a mask file's footprint (any non-zero value means invalid)
MASK_FILL = 255
#: file-name suffixes considered as rasters
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
DEFAULT_PATTERN = r"(?P<date>\d{8})"


def _option(config, section: str, key: str, default):
    if section not in config:
        return default
    value = config[section].get(key, default)
    return default if value is None and default is not None else value


def _check_pattern(value):
    if value in (None, ""):
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if "date" not in compiled.groupindex:
        return "needs a named group 'date', e.g. '(?P<date>\\d{8})'"
    return None


def _check_indices(value):
    for key, bands in (value or {}).items():
        if not isinstance(bands, (list, tuple)) or len(bands) != 2:
            return f"entry {key!r} must be a list of two band names [high, low], e.g. {{ndvi: [nir, red]}}"
    return None


def _read_bands(path: Path, grid: Grid, resampling: Resampling, fill: float) -> np.ndarray:
    """Every band of ``path`` on ``grid`` as (bands, rows, cols) float32 (direct read when aligned).

    ``fill`` is the warp's nodata for a file that declares none; an aligned coarser file keeps GDAL's resampled
    read (``undeclared_nodata_warps=False``, see :func:`iota2.core.raster.read_onto_grid`)."""
    values = read_onto_grid(path, grid, resampling, fill, fill, bands=None, undeclared_nodata_warps=False)
    return values.astype(np.float32, copy=False)


class TimeSeriesStack(Sensor):
    """A folder of per-date GeoTIFFs of one tile, all with the bands ``band_names``.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``timeseries_stack``,
        ``sensors_data_interpolation`` and ``iota2_feature_extraction`` are read).
    tile
        Tile name; its files are in ``<chain.stack_path>/<tile>/`` or are the files of
        ``chain.stack_path`` whose names contain it.
    """

    name = "stack"
    config_section = "timeseries_stack"
    path_key = "stack_path"
    native_resolution = 10.0
    provides_grid = True
    #: human-readable name used in messages
    description = "time-series stack"

    def __init__(self, config, tile: str):
        super().__init__(config, tile)
        self.name = str(self.settings()["name"])

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        """The sensor's settings: ``name``, ``file_pattern``, ``date_format``, ``band_names``,
        ``mask_pattern``, ``nodata``, ``indices``, ``temporal_resolution``, ``start_date``, ``end_date``.

        Subclasses with a fixed product layout override this method.
        """
        return self._section_settings(self.config)

    @classmethod
    def _section_settings(cls, config) -> dict:
        section = cls.config_section
        return {
            "name": _option(config, section, "name", "stack") or "stack",
            "file_pattern": _option(config, section, "file_pattern", DEFAULT_PATTERN) or DEFAULT_PATTERN,
            "date_format": _option(config, section, "date_format", "%Y%m%d") or "%Y%m%d",
            "band_names": list(_option(config, section, "band_names", []) or []),
            "mask_pattern": _option(config, section, "mask_pattern", None) or None,
            "nodata": _option(config, section, "nodata", None),
            "indices": dict(_option(config, section, "indices", {}) or {}),
            "temporal_resolution": _option(config, section, "temporal_resolution", 10),
            "start_date": _option(config, section, "start_date", ""),
            "end_date": _option(config, section, "end_date", ""),
        }

    @cached_property
    def band_names(self) -> list[str]:
        """Band names in file order; a :class:`ConfigError` if unset or duplicated."""
        bands = [str(band) for band in self.settings()["band_names"]]
        if not bands:
            raise ConfigError(f"{self.config_section}.band_names is mandatory when chain.{self.path_key} is set: "
                              "list one name per band of the files, e.g. [blue, green, red, nir]")
        if len({band.lower() for band in bands}) != len(bands):
            raise ConfigError(f"{self.config_section}.band_names = {bands} has duplicated names")
        return bands

    @cached_property
    def indices(self) -> dict[str, tuple[int, int]]:
        """``{index name: (high band index, low band index)}`` of the normalised differences."""
        found = {}
        lower = [band.lower() for band in self.band_names]
        for key, bands in self.settings()["indices"].items():
            if not isinstance(bands, (list, tuple)) or len(bands) != 2:
                raise ConfigError(f"{self.config_section}.indices.{key} must be two band names [high, low]")
            positions = []
            for band in bands:
                if str(band).lower() not in lower:
                    raise ConfigError(f"{self.config_section}.indices.{key}: unknown band {band!r}; use bands "
                                      f"among {', '.join(self.band_names)}")
                positions.append(lower.index(str(band).lower()))
            found[str(key)] = tuple(positions)
        return found

    def _compile(self, key: str) -> re.Pattern:
        text = self.settings()[key]
        problem = _check_pattern(text)
        if problem:
            raise ConfigError(f"{self.config_section}.{key} = {text!r} {problem}")
        return re.compile(text)

    # ------------------------------------------------------------------ files
    @property
    def root(self) -> Path:
        """The folder ``chain.<path_key>``."""
        value = self.config["chain"].get(self.path_key)
        if value in (None, "", "None"):
            raise ConfigError(f"chain.{self.path_key} is not set: give the folder of the {self.description} "
                              "files (one sub-folder per tile, or file names containing the tile)")
        return Path(value)

    @cached_property
    def candidate_files(self) -> tuple[Path, list[Path]]:
        """The folder searched and the raster files of the tile in it (names only)."""
        root = self.root
        if not root.is_dir():
            raise InputDataError(f"{self.description} folder '{root}' (chain.{self.path_key}) does not exist")
        folder = root / self.tile
        if folder.is_dir():
            files = [path for path in sorted(folder.iterdir())]
        else:
            folder = root
            files = [path for path in sorted(root.iterdir()) if self.tile in path.name]
        files = [path for path in files if path.is_file() and path.suffix.lower() in RASTER_SUFFIXES]
        return folder, files

    def _dated(self, key: str, files: list[Path]) -> dict[str, Path]:
        pattern = self._compile(key)
        date_format = self.settings()["date_format"]
        by_date: dict[str, Path] = {}
        for path in files:
            match = pattern.search(path.name)
            if match is None:
                continue
            text = match.group("date")
            try:
                date = datetime.datetime.strptime(text, date_format).strftime("%Y%m%d")
            except (TypeError, ValueError):
                warn_once(LOGGER, "ignoring '%s': '%s' does not read as a date with %s.date_format = %r",
                               path, text, self.config_section, date_format)
                continue
            if date in by_date:
                warn_once(LOGGER, "tile %s: '%s' and '%s' have the same date %s; keeping the first",
                               self.tile, by_date[date].name, path.name, date)
                continue
            by_date[date] = path
        return by_date

    @cached_property
    def files(self) -> dict[str, Path]:
        """``{YYYYMMDD: image file}`` of the tile, chronological."""
        folder, files = self.candidate_files
        masks = set(self.mask_files.values()) if self.settings()["mask_pattern"] else set()
        by_date = self._dated("file_pattern", [path for path in files if path not in masks])
        if not by_date:
            raise InputDataError(f"no {self.description} file of tile {self.tile} matches "
                                 f"{self.config_section}.file_pattern = {self.settings()['file_pattern']!r} in "
                                 f"'{folder}'; put the tile's files in '{self.root / self.tile}' or name them with "
                                 "the tile, and check the pattern (its group 'date' must match the date)")
        return {date: by_date[date] for date in sorted(by_date)}

    @cached_property
    def mask_files(self) -> dict[str, Path]:
        """``{YYYYMMDD: mask file}`` of the tile (empty without ``mask_pattern``)."""
        if not self.settings()["mask_pattern"]:
            return {}
        _, files = self.candidate_files
        return self._dated("mask_pattern", files)

    # ------------------------------------------------------------------ contract
    def check_inputs(self, grid: Grid | None = None) -> None:
        """Check settings, file names, band counts, masks and that every date of the tile has one grid."""
        bands = self.band_names
        _ = self.indices
        first, first_grid = None, None
        for date, path in self.files.items():
            with open_raster(path) as src:
                if src.crs is None:
                    raise InputDataError(f"raster '{path}' has no CRS; georeference it (e.g. gdal_edit.py -a_srs)")
                if src.count != len(bands):
                    raise InputDataError(f"'{path}' has {src.count} band(s) but {self.config_section}.band_names "
                                         f"lists {len(bands)} ({', '.join(bands)}); give one name per band")
                file_grid = Grid.from_dataset(src)
            if first_grid is None:
                first, first_grid = path, file_grid
            elif not _same_grid(file_grid, first_grid):
                raise InputDataError(f"tile {self.tile}: '{path}' and '{first}' have different grids (CRS, origin, "
                                     "pixel size or size); every date of a tile must be on one grid: resample them "
                                     "(e.g. gdalwarp -te ... -tr ...)")
            if self.settings()["mask_pattern"]:
                mask = self.mask_files.get(date)
                if mask is None:
                    raise InputDataError(f"tile {self.tile}: no mask file for the date {date} ('{path}') matches "
                                         f"{self.config_section}.mask_pattern = {self.settings()['mask_pattern']!r}")
                with open_raster(mask) as src:
                    if src.crs is None:
                        raise InputDataError(f"mask '{mask}' has no CRS; georeference it")

    def input_dates(self) -> list[str]:
        """Acquisition dates ``YYYYMMDD`` of the tile, chronological and unique."""
        return list(self.files)

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        """The grid of the first date's file, optionally in ``crs`` and at ``resolution``."""
        first = next(iter(self.files.values()))
        native = Grid.from_file(first)
        self.native_resolution = float(native.resolution[0])
        same_crs = crs in (None, "") or rasterio.crs.CRS.from_user_input(crs) == native.crs
        if resolution in (None, "", []):
            resolution = None
        elif isinstance(resolution, (int, float)):
            resolution = (float(resolution), float(resolution))
        else:
            resolution = tuple(float(value) for value in resolution)
        if same_crs and resolution in (None, native.resolution):
            return native
        return _reproject_grid(native, crs if crs not in (None, "") else native.crs, resolution or native.resolution)

    @classmethod
    def interpolation_dates(cls, config, dates_by_tile: dict[str, list[str]]) -> list[str]:
        """The common temporal grid, with the rules of the Sentinel-2 sensor (``auto_date`` or start/end)."""
        settings = cls(config, next(iter(dates_by_tile), "")).settings()
        all_dates = sorted({date for dates in dates_by_tile.values() for date in dates})
        if not _option(config, "sensors_data_interpolation", "use_gapfilling", True):
            return all_dates
        return interpolation_grid(
            all_dates, cls.config_section, int(settings["temporal_resolution"] or 10),
            _option(config, "sensors_data_interpolation", "auto_date", True), settings["start_date"],
            settings["end_date"], where=f"chain.{cls.path_key} and chain.list_tile")

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read`, in bytes, with a 25 % margin."""
        n_bands = len(self.band_names)
        n_input = len(self.files)
        per_input = n_bands * 4 * 2 + 3 + 8 + 4  # raw + read buffer, masks, gap-filling indexes, mask read
        n_features = n_bands + len(self.indices)
        per_output = n_bands * 4 + n_features * 4 + 3 * 4
        return int(math.ceil(1.25 * (n_input * per_input + n_interpolation_dates * per_output + 256)))

    def _fill(self) -> float:
        nodata = self.settings()["nodata"]
        return float(nodata) if nodata is not None else DEFAULT_FILL

    def _read_date(self, date: str, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bands, rows, cols) values, invalid flags and has-data flags of one date on ``grid``."""
        path = self.files[date]
        fill = self._fill()
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            values = _read_bands(path, grid, Resampling.bilinear, fill)
            nodata = self.settings()["nodata"]
            if nodata is None:
                with open_input_raster(path) as src:
                    nodata = src.nodata
            no_data = np.zeros(values.shape[1:], dtype=bool)
            for value in {fill} | ({float(nodata)} if nodata is not None else set()):
                no_data |= np.any(values == value, axis=0)
            not_a_number = np.isnan(values).any(axis=0)
            if not_a_number.any():
                warn_once(LOGGER, "'%s' holds NaN values; these observations are treated as masked", path)
                no_data |= not_a_number
            invalid = no_data.copy()
            mask = self.mask_files.get(date)
            if mask is not None:
                invalid |= read_onto_grid(mask, grid, Resampling.nearest, MASK_FILL) != 0
        values[:, no_data] = fill
        return values, invalid, ~no_data

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Valid observations (uint16) and footprint (bool) of a window, without gap-filling or features."""
        window_grid = grid.window_grid(window)
        validity = np.zeros((window_grid.height, window_grid.width), dtype=np.uint16)
        footprint = np.zeros(validity.shape, dtype=bool)
        for date in self.files:
            _, invalid, has_data = self._read_date(date, window_grid)
            validity += ~invalid
            footprint |= has_data
        return validity, footprint

    def read(self, grid: Grid, window: Window, interpolation_dates: list[str],
             pixels: tuple[np.ndarray, np.ndarray] | None = None) -> SensorData:
        """Read ``window`` of ``grid``, gap-fill it onto ``interpolation_dates`` and compute the features.

        Parameters
        ----------
        grid
            The tile's reference grid.
        window
            Window of ``grid`` to read.
        interpolation_dates
            Common temporal grid (:meth:`interpolation_dates`).
        pixels
            Optional (rows, cols) inside the window: the result is an image of 1 row and ``len(rows)`` columns.

        Returns
        -------
        SensorData
        """
        bands = self.band_names
        dates = self.input_dates()
        window_grid = grid.window_grid(window)
        rows, cols = window_grid.height, window_grid.width
        raw = np.empty((len(dates), len(bands), rows, cols), dtype=np.float32)
        masks = np.zeros((len(dates), rows, cols), dtype=np.uint8)
        footprint = np.zeros((rows, cols), dtype=bool)
        for index, date in enumerate(dates):
            raw[index], invalid, has_data = self._read_date(date, window_grid)
            masks[index] = invalid
            footprint |= has_data
        interpolation_dates = list(interpolation_dates)
        fill = self._fill()
        raw, masks, footprint, validity, interpolated = series_on_dates(
            raw, masks, footprint, dates, interpolation_dates,
            _option(self.config, "sensors_data_interpolation", "use_gapfilling", True), fill, pixels)
        return SensorData(sensor=self.name, band_names=list(bands), input_dates=dates, raw=raw, masks=masks,
                          interpolation_dates=interpolation_dates, interpolated=interpolated, validity=validity,
                          footprint=footprint, spec=self.feature_spec())

    def feature_spec(self) -> FeatureSpec:
        """Bands of every date (when ``copy_input``) then the normalised differences x1000 of ``indices``, nodata
        where any band of the date is."""
        bands = self.band_names
        indices = tuple((str(key), (bands[low_at], bands[high_at])) for key, (high_at, low_at) in self.indices.items())
        return FeatureSpec(copy_input=_option(self.config, "iota2_feature_extraction", "copy_input", True),
                           indices=indices, known_indices=indices, index_nodata_bands="all", nodata=self._fill(),
                           section=self.config_section)


def _same_grid(one: Grid, other: Grid) -> bool:
    return (one.crs == other.crs and one.width == other.width and one.height == other.height
            and one.transform.almost_equals(other.transform, precision=1e-6))


def _reproject_grid(native: Grid, crs, resolution: tuple[float, float]) -> Grid:
    """``native`` in ``crs`` at ``resolution``, snapped outwards to multiples of the pixel size."""
    from rasterio.crs import CRS
    from rasterio.warp import calculate_default_transform

    target = CRS.from_user_input(crs)
    x_size, y_size = resolution
    transform, width, height = calculate_default_transform(native.crs, target, native.width, native.height,
                                                           *native.bounds, resolution=(x_size, y_size))
    left, top = transform.c, transform.f
    right, bottom = left + width * x_size, top - height * y_size
    left, right = math.floor(left / x_size + 1e-9) * x_size, math.ceil(right / x_size - 1e-9) * x_size
    bottom, top = math.floor(bottom / y_size + 1e-9) * y_size, math.ceil(top / y_size - 1e-9) * y_size
    return Grid(target, rasterio.transform.from_origin(left, top, x_size, y_size),
                int(round((right - left) / x_size)), int(round((top - bottom) / y_size)))


@hookimpl
def iota2_register_sensors():
    """Register the generic time-series stack sensor."""
    return [TimeSeriesStack]


@hookimpl
def iota2_config_sections():
    """Declare the ``timeseries_stack`` section and ``chain.stack_path``."""
    yyyymmdd = config_module._yyyymmdd
    return [
        Section("timeseries_stack", {
            "name": Param("str", "stack", "Prefix of the feature labels (<name>_<band>_<YYYYMMDD>, lower-case)."),
            "file_pattern": Param("str", DEFAULT_PATTERN, "Regular expression searched in the file names; its "
                                  "named group 'date' is the acquisition date.", check=_check_pattern),
            "date_format": Param("str", "%Y%m%d", "strptime format of the 'date' group, e.g. '%Y-%m-%d' or '%Y%j'."),
            "band_names": Param("list", [], "One name per band of the files, in band order (mandatory when "
                                "chain.stack_path is set), e.g. [blue, green, red, nir]."),
            "mask_pattern": Param("str", None, "Optional regular expression (named group 'date') of the mask "
                                  "files; a mask value != 0 marks the observation invalid.", check=_check_pattern),
            "nodata": Param("float", None, "Nodata value of the files (default: the files' own); pixels with it "
                            "in any band are invalid."),
            "indices": Param("dict", {}, "Normalised differences computed per date, x1000, named by the key, "
                             "e.g. {ndvi: [nir, red]} for (nir - red) / (nir + red).", check=_check_indices),
            "temporal_resolution": Param("int", 10, "Days between two dates of the interpolation grid.",
                                         check=lambda value: None if value > 0 else "must be > 0 (days)"),
            "start_date": Param("str", "", "First date (YYYYMMDD) of the interpolation grid when "
                                "sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
            "end_date": Param("str", "", "Last date (YYYYMMDD) of the interpolation grid when "
                              "sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
        }, "Generic time series: a folder of per-date multi-band GeoTIFFs (MODIS, Planet, exported cubes...)."),
        Section("chain", {
            "stack_path": Param("str", None, "Folder of per-date GeoTIFFs (one sub-folder per tile, or file names "
                                "containing the tile); enables the time-series stack sensor."),
        }),
    ]
