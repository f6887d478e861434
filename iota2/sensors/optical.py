"""Shared machinery of the optical sensors (THEIA Sentinel-2 L2A and L3A, Sen2Cor, Landsat 8).

An optical sensor is a set of products per tile, one per date, each holding one file per band (at
one or two resolutions) and one or more mask files. A subclass of :class:`OpticalSensor` describes
its layout with class attributes:

* :attr:`OpticalSensor.product_glob` / :attr:`OpticalSensor.product_regex`: product folders of a tile;
* :attr:`OpticalSensor.product_class`: an :class:`OpticalProduct` subclass that names the band and
  mask files of a product and parses its date;
* :attr:`OpticalSensor.bands`, :attr:`OpticalSensor.reference_band`, :attr:`OpticalSensor.source_nodata`;
* :attr:`OpticalSensor.mask_specs`: how each mask file flags invalid observations and the footprint;
* :attr:`OpticalSensor.index_bands`: the (low, high) bands of the normalised indices.

Everything else is shared: product discovery and checks, the reference grid, the temporal grid,
window reading onto the reference grid, gap-filling, spectral indices and labels.

Reading is done window by window on the tile's reference grid, so memory is bounded by the window:
when a file is in the grid's CRS and aligned with it (same pixel lattice, file resolution an integer
multiple of the grid's), the matching window is read directly (bilinear up-sampling of coarser bands,
nearest for masks); otherwise the file is warped onto the window's grid
(:func:`iota2.core.raster.read_onto_grid`, the reader shared by every sensor). Both give identical values on aligned data, except next to nodata
pixels, where both interpolate over the valid neighbours only but weigh them slightly differently.
Reflectances are kept in the products' scale (x10000); the products' nodata value is replaced by
:data:`NODATA` (-10000) so that every sensor shares one nodata value.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import re
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import rasterio
import rasterio.transform
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from iota2.core import config as config_module
from iota2.core.config import Param, Section
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import Grid, open_raster, read_onto_grid
from iota2.core.features import INDEX_BANDS, NODATA, spectral_feature_spec, spectral_features
from iota2.core.indices import INDEX_EPSILON  # noqa: F401  (part of this module's names)
from iota2.core.sensor import FeatureSpec, Sensor, SensorData, warn_once
from iota2.core.timeseries import interpolation_grid, parse_date, series_on_dates

LOGGER = logging.getLogger(__name__)

#: value given to THEIA masks outside a file's footprint when warping (any non-zero value means invalid)
MASK_FILL = 255
#: the feature stage's function for a sensor's stack of bands, indices and expressions (kept under this name)
compute_features = spectral_features


def theia_date(name: str) -> str | None:
    """Acquisition date ``YYYYMMDD`` of a THEIA product name, or ``None`` if the name has none.

    The date is the second ``_``-separated field, before its first ``-``:
    ``SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7`` -> ``"20180511"``.
    """
    fields = name.split("_")
    if len(fields) < 2:
        return None
    return _valid_date(fields[1].split("-")[0])


def _valid_date(date: str) -> str | None:
    try:
        parse_date(date)
    except ValueError:
        return None
    return date


def _option(config, section: str, key: str, default):
    """Value of ``section.key`` in ``config``, or ``default`` when the section or key is absent."""
    if section not in config:
        return default
    return config[section].get(key, default)


# ----------------------------------------------------------------------------------------------------
# products
# ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """How one mask file of a product is read.

    Attributes
    ----------
    name
        Mask key given to :meth:`OpticalProduct.mask_path`, e.g. ``"CLM"`` or ``"SCL"``.
    invalid
        Values flagging an invalid observation; ``None``: any non-zero value.
    footprint
        Whether the mask also tells where the product has data.
    outside
        For a footprint mask, the values meaning "no data"; ``None``: any non-zero value.
    fill
        Value given to pixels outside the file when warping (must be both invalid and outside).
    """

    name: str
    invalid: tuple[int, ...] | None = None
    footprint: bool = False
    outside: tuple[int, ...] | None = None
    fill: int = MASK_FILL

    def flags(self, values: np.ndarray) -> np.ndarray:
        """True where ``values`` flag an invalid observation."""
        return values != 0 if self.invalid is None else np.isin(values, self.invalid)

    def has_data(self, values: np.ndarray) -> np.ndarray:
        """True where ``values`` say the product has data (footprint masks only)."""
        return values == 0 if self.outside is None else ~np.isin(values, self.outside)


@dataclasses.dataclass(frozen=True)
class OpticalProduct:
    """One product (one date) of a tile. Subclasses name the band and mask files.

    Attributes
    ----------
    path
        The product folder.
    date
        Acquisition date ``YYYYMMDD``.
    """

    path: Path
    date: str

    #: band names in stack order
    bands: ClassVar[tuple[str, ...]] = ()
    #: mask keys
    masks: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @staticmethod
    def parse_date(name: str) -> str | None:
        """Acquisition date of a product folder name, or ``None`` if it has none."""
        return theia_date(name)

    def band_path(self, band: str) -> Path:
        """Path of the file of ``band``."""
        raise NotImplementedError

    def mask_path(self, mask: str) -> Path:
        """Path of the mask file ``mask``."""
        raise NotImplementedError

    def radiometry(self, band: str) -> tuple[float, float]:
        """``(offset, factor)`` turning the file's values into the chain's reflectance x10000:
        ``(value + offset) * factor`` (nodata excluded). Identity unless the product says otherwise."""
        return 0.0, 1.0

    def files(self) -> list[Path]:
        """Every band and mask file the product must contain."""
        return [self.band_path(band) for band in self.bands] + [self.mask_path(mask) for mask in self.masks]


@dataclasses.dataclass(frozen=True)
class TheiaProduct(OpticalProduct):
    """A THEIA product: ``<name>_<band_prefix>_<band>.tif`` and ``MASKS/<name>_<mask>_<mask_suffix>.tif``."""

    #: reflectance kind of the band files (``FRE`` flat reflectance, ``FRC`` L3A composite)
    band_prefix: ClassVar[str] = "FRE"
    #: resolution group of the masks (``R1`` 10 m, ``XS`` Landsat)
    mask_suffix: ClassVar[str] = "R1"

    def band_path(self, band: str) -> Path:
        """Path of the ``<band_prefix>`` reflectance file of ``band``."""
        return self.path / f"{self.name}_{self.band_prefix}_{band}.tif"

    def mask_path(self, mask: str) -> Path:
        """Path of the mask ``mask`` in the product's ``MASKS`` folder."""
        return self.path / "MASKS" / f"{self.name}_{mask}_{self.mask_suffix}.tif"


# ----------------------------------------------------------------------------------------------------
# the sensor
# ----------------------------------------------------------------------------------------------------

def _same_grid(first: Grid, second: Grid, pixel: float) -> bool:
    """Whether two grids have the same CRS and bounds, within a thousandth of ``pixel``."""
    if first.crs != second.crs:
        return False
    return all(abs(a - b) <= 1e-3 * pixel for a, b in zip(first.bounds, second.bounds))


class OpticalSensor(Sensor):
    """Base class of the optical sensors: one product per date, per-band files and mask files.

    Subclasses set the class attributes below; they usually need no method.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, the sensor's own section,
        ``sensors_data_interpolation``, ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.<path_key>>/<tile>/``.
    """

    #: human-readable name used in messages, e.g. "Sentinel-2 THEIA"
    label: ClassVar[str] = ""
    #: glob of the product folders inside a tile folder
    product_glob: ClassVar[str] = ""
    #: regular expression a product folder name must match (full match)
    product_regex: ClassVar[str] = ""
    #: an example product name, for messages
    product_example: ClassVar[str] = ""
    #: class of the products (names the files, parses the date)
    product_class: ClassVar[type[OpticalProduct]] = OpticalProduct
    #: band names in stack order (also the label names, lower-cased)
    bands: ClassVar[tuple[str, ...]] = ()
    #: band whose file defines the reference grid (one of the finest bands)
    reference_band: ClassVar[str] = ""
    #: nodata value of the band files
    source_nodata: ClassVar[float] = NODATA
    #: nodata value of the reflectances once read
    nodata: ClassVar[float] = NODATA
    #: how the mask files are read
    mask_specs: ClassVar[tuple[MaskSpec, ...]] = ()
    #: (low, high) bands of the normalised indices; "BRIGHTNESS" uses every kept band
    index_bands: ClassVar[dict[str, tuple[str, ...]]] = INDEX_BANDS
    #: default temporal resolution (days) of the configuration section
    default_temporal_resolution: ClassVar[int] = 10
    #: threads reading the products of a window in parallel; 1 (sequential) is the fastest on small
    #: uncompressed files, more helps with large or compressed ones (GDAL releases the GIL while decoding)
    read_threads = 1

    # -- products -------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The product root ``chain.<path_key>``."""
        value = self.config["chain"].get(self.path_key)
        if value in (None, "", "None"):
            raise ConfigError(f"chain.{self.path_key} is not set: give the folder holding one sub-folder of "
                              f"{self.label} products per tile")
        return Path(value)

    @property
    def tile_folder(self) -> Path:
        """The folder of the tile's products."""
        return self.root / self.tile

    @classmethod
    def layout(cls) -> str:
        """Description of the expected product folders, for messages."""
        return f"{cls.label} product ({cls.product_glob})"

    @classmethod
    def _matches(cls, name: str) -> bool:
        return re.fullmatch(cls.product_regex, name) is not None

    def _unknown_layout_message(self, folder: Path) -> str:
        entries = sorted(path.name for path in folder.iterdir())
        message = (f"no {self.layout()} in {folder}; each product must be a folder like {self.product_example}")
        if not entries:
            return message + " (the folder is empty)"
        others = [other for other in _optical_sensor_classes() if other is not self.__class__ and other.product_regex]
        for other in others:
            found = [name for name in entries if other._matches(name)]
            if found:
                return (message + f"; '{found[0]}' is a {other.label} product: set chain.{other.path_key} to "
                        f"'{self.root}' instead of chain.{self.path_key}")
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        expected = "; ".join(f"{other.label}: {other.product_example}" for other in [self.__class__] + others)
        return message + f"; found only: {shown} (known layouts: {expected})"

    @cached_property
    def products(self) -> list[OpticalProduct]:
        """The tile's products, one per date, chronological (names only; nothing is opened)."""
        folder = self.tile_folder
        if not folder.is_dir():
            raise InputDataError(f"{self.label} tile folder '{folder}' does not exist; check chain.{self.path_key} "
                                 f"('{self.root}') and chain.list_tile")
        by_date: dict[str, OpticalProduct] = {}
        for path in sorted(folder.glob(self.product_glob)):
            if not path.is_dir():
                continue
            date = self.product_class.parse_date(path.name)
            if date is None:
                warn_once(LOGGER, "ignoring '%s': no YYYYMMDD date in its name", path)
                continue
            if date in by_date:
                warn_once(LOGGER, "tile %s: products '%s' and '%s' have the same date %s; keeping the first",
                               self.tile, by_date[date].name, path.name, date)
                continue
            by_date[date] = self.product_class(path, date)
        if not by_date:
            raise InputDataError(self._unknown_layout_message(folder))
        return [by_date[date] for date in sorted(by_date)]

    def _missing_file_message(self, product: OpticalProduct, path: Path) -> str:
        bands = ", ".join(self.bands)
        masks = ", ".join(self.product_class.masks)
        kind = "mask file" if len(self.product_class.masks) == 1 else "mask files"
        return (f"{self.label} product '{product.path}' lacks the file '{path}'; every product needs the band files "
                f"{bands} and the {kind} {masks}")

    def check_inputs(self, grid: Grid | None = None) -> None:
        """Check the tile folder, the product names, the band and mask files and the grids of the bands.

        Only file names and headers are read. Within a product every band must cover the extent of the
        reference band; products in the CRS of the first product must have the grids of the first
        product (band by band); products in another CRS are warped (a warning is logged).
        """
        first: dict[str, Grid] = {}
        for product in self.products:
            for path in product.files():
                if not path.is_file():
                    raise InputDataError(self._missing_file_message(product, path))
            for band in self.bands:  # reads the product's radiometric metadata, if any: a bad file fails here
                product.radiometry(band)
            grids = {}
            for band in self.bands:
                path = product.band_path(band)
                with open_raster(path) as src:
                    if src.crs is None:
                        raise InputDataError(f"raster '{path}' has no CRS; {self.label} products are "
                                             "georeferenced, re-download it")
                    grids[band] = Grid.from_dataset(src)
            reference = grids[self.reference_band]
            pixel = reference.resolution[0]
            for band, band_grid in grids.items():
                if not _same_grid(reference, band_grid, pixel):
                    raise InputDataError(
                        f"{self.label} product '{product.path}': '{product.band_path(band)}' does not cover the "
                        f"same area as its {self.reference_band} (bounds {band_grid.bounds} in {band_grid.crs} "
                        f"instead of {reference.bounds} in {reference.crs}); the product is damaged")
            if not first:
                first = grids
                continue
            if reference.crs != first[self.reference_band].crs:
                LOGGER.warning("tile %s: '%s' is in %s, not in %s like the first product; it will be warped",
                               self.tile, product.name, reference.crs, first[self.reference_band].crs)
                continue
            for band, band_grid in grids.items():
                if band_grid != first[band]:
                    raise InputDataError(
                        f"{self.label} product '{product.path}': '{product.band_path(band)}' has a different grid "
                        f"({band_grid.width}x{band_grid.height} pixels of {band_grid.resolution[0]:g} m at "
                        f"{band_grid.transform.c:g}, {band_grid.transform.f:g}) than in the other products of tile "
                        f"{self.tile} ({first[band].width}x{first[band].height} pixels of "
                        f"{first[band].resolution[0]:g} m at {first[band].transform.c:g}, "
                        f"{first[band].transform.f:g}); remove the product or fix the tile")

    def input_dates(self) -> list[str]:
        """Acquisition dates ``YYYYMMDD`` of the tile, chronological and unique."""
        return [product.date for product in self.products]

    # -- grids ----------------------------------------------------------------------------------------

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        """The grid of the reference band of the first product, optionally in ``crs`` and at ``resolution``.

        When the CRS or the resolution changes, the extent is computed with
        :func:`rasterio.warp.calculate_default_transform` and then snapped outwards to multiples of
        the pixel size (like ``gdalwarp -tap``), so that the grids of neighbouring tiles share one
        pixel lattice and mosaic without resampling.

        Parameters
        ----------
        crs
            Target CRS (anything :meth:`rasterio.crs.CRS.from_user_input` accepts); default: the data's.
        resolution
            Target pixel size (number or ``(x, y)``); default: the data's.
        """
        with open_raster(self.products[0].band_path(self.reference_band)) as src:
            native = Grid.from_dataset(src)
            target_crs = CRS.from_user_input(crs) if crs not in (None, "") else src.crs
            if resolution in (None, "", []):
                resolution = None
            elif isinstance(resolution, (int, float)):
                resolution = (float(resolution), float(resolution))
            else:
                resolution = tuple(float(value) for value in resolution)
            if target_crs == src.crs and resolution in (None, native.resolution):
                return native
            x_size, y_size = resolution or native.resolution
            transform, width, height = calculate_default_transform(
                src.crs, target_crs, src.width, src.height, *src.bounds, resolution=(x_size, y_size))
        left, top = transform.c, transform.f
        right, bottom = left + width * x_size, top - height * y_size
        left, right = math.floor(left / x_size + 1e-9) * x_size, math.ceil(right / x_size - 1e-9) * x_size
        bottom, top = math.floor(bottom / y_size + 1e-9) * y_size, math.ceil(top / y_size - 1e-9) * y_size
        return Grid(target_crs, rasterio.transform.from_origin(left, top, x_size, y_size),
                    int(round((right - left) / x_size)), int(round((top - bottom) / y_size)))

    @classmethod
    def interpolation_dates(cls, config, dates_by_tile: dict[str, list[str]]) -> list[str]:
        """The common temporal grid of all tiles.

        * ``sensors_data_interpolation.use_gapfilling`` False: the sorted union of the input dates;
        * ``sensors_data_interpolation.auto_date`` True: from the earliest date of all tiles to the
          latest date of all tiles every ``<section>.temporal_resolution`` days (iota2's rule);
        * otherwise from ``<section>.start_date`` to ``<section>.end_date``.
        """
        all_dates = sorted({date for dates in dates_by_tile.values() for date in dates})
        if not _option(config, "sensors_data_interpolation", "use_gapfilling", True):
            return all_dates
        section = cls.config_section
        return interpolation_grid(
            all_dates, section,
            int(_option(config, section, "temporal_resolution", cls.default_temporal_resolution)),
            _option(config, "sensors_data_interpolation", "auto_date", True),
            _option(config, section, "start_date", ""), _option(config, section, "end_date", ""),
            what=f"{cls.label} date", where=f"chain.{cls.path_key} and chain.list_tile")

    # -- reading --------------------------------------------------------------------------------------

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read`, in bytes, with a 25 % margin.

        Counts the raw stack, the masks, the gap-filling indexes, the interpolated stack, the features
        and the temporaries of the indices.
        """
        n_input = len(self.products)
        n_bands = len(self.bands)
        per_input_date = n_bands * 4 + 3 + 8  # raw float32, masks + invalid flags, gap-filling previous/next indexes
        n_features = n_bands + 3 + len(self._additional_expressions())
        per_output_date = n_bands * 4 + n_features * 4 + 3 * 4  # interpolated, features, index temporaries
        return int(math.ceil(1.25 * (n_input * per_input_date + n_interpolation_dates * per_output_date + 256)))

    def _additional_expressions(self) -> list[str]:
        if not _option(self.config, "sensors_data_interpolation", "use_additional_features", False):
            return []
        text = _option(self.config, self.config_section, "additional_features", "") or ""
        return [expression.strip() for expression in str(text).split(",") if expression.strip()]

    def _read_masks(self, product: OpticalProduct, grid: Grid) -> tuple[np.ndarray, np.ndarray | None]:
        """Invalid observations (bool) and data footprint (bool, or ``None`` without footprint mask)."""
        invalid = np.zeros((grid.height, grid.width), dtype=bool)
        has_data = None
        for spec in self.mask_specs:
            values = read_onto_grid(product.mask_path(spec.name), grid, Resampling.nearest, spec.fill)
            invalid |= spec.flags(values)
            if spec.footprint:
                inside = spec.has_data(values)
                has_data = inside if has_data is None else has_data & inside
        return invalid, has_data

    def _read_product(self, product: OpticalProduct, grid: Grid, raw: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """Read one product onto ``grid`` into ``raw`` (bands, rows, cols) and ``invalid`` (rows, cols).

        Returns where the product has data (its footprint mask, or where no band is nodata).
        """
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for band_index, band in enumerate(self.bands):
                values = read_onto_grid(product.band_path(band), grid, Resampling.bilinear, self.nodata,
                                        src_nodata=self.source_nodata)
                if values.dtype.kind == "f":
                    not_a_number = np.isnan(values)
                    if not_a_number.any():
                        warn_once(LOGGER, "'%s' holds NaN reflectances; these observations are treated as masked",
                                  product.band_path(band))
                        values = np.where(not_a_number, np.asarray(self.source_nodata, values.dtype), values)
                raw[band_index] = values
                offset, factor = product.radiometry(band)
                if offset != 0.0 or factor != 1.0:
                    has_value = (values != self.source_nodata) & (values != self.nodata)
                    raw[band_index][has_value] = (values[has_value] + offset) * factor
                if self.source_nodata != self.nodata:
                    raw[band_index][values == self.source_nodata] = self.nodata
            no_data = np.any(raw == self.nodata, axis=0)
            flags, has_data = self._read_masks(product, grid)
        invalid[:] = flags | no_data
        return ~no_data if has_data is None else has_data

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Clear observations (uint16) and footprint (bool) of a window from the mask files only."""
        clear, footprint = self.read_clear_by_date(grid, window)
        return clear.sum(axis=0, dtype=np.uint16), footprint

    def read_clear_by_date(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Clear observations of a window date by date, and the footprint.

        Read from the mask files only when the sensor has a footprint mask, otherwise through :meth:`read`
        (bands included, so nodata and NaN reflectances count as masked).

        Returns
        -------
        clear : numpy.ndarray
            (input dates, rows, cols) bool, True where the observation is valid.
        footprint : numpy.ndarray
            (rows, cols) bool, True where the sensor has data on at least one date.
        """
        if not any(spec.footprint for spec in self.mask_specs):
            data = self.read(grid, window, self.input_dates())
            return data.masks == 0, data.footprint
        window_grid = grid.window_grid(window)
        clear = np.zeros((len(self.products), window_grid.height, window_grid.width), dtype=bool)
        footprint = np.zeros(clear.shape[1:], dtype=bool)
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for index, product in enumerate(self.products):
                invalid, has_data = self._read_masks(product, window_grid)
                footprint |= has_data
                np.logical_not(invalid, out=clear[index])
        return clear, footprint

    def read(self, grid: Grid, window: Window, interpolation_dates: list[str],
             pixels: tuple[np.ndarray, np.ndarray] | None = None) -> SensorData:
        """Read ``window`` of ``grid``, gap-fill it onto ``interpolation_dates`` and compute the features.

        Parameters
        ----------
        grid
            The tile's reference grid (:meth:`reference_grid`).
        window
            Window of ``grid`` to read.
        interpolation_dates
            Common temporal grid (:meth:`interpolation_dates`). Without gap-filling, dates this tile
            lacks are filled with nodata (and their indices are nodata).
        pixels
            Optional (rows, cols) inside the window: only these pixels are gap-filled and featured, and
            the result is shaped as an image of 1 row and ``len(rows)`` columns.

        Returns
        -------
        SensorData
        """
        products = self.products
        bands = list(self.bands)
        window_grid = grid.window_grid(window)
        rows, cols = window_grid.height, window_grid.width
        raw = np.empty((len(products), len(bands), rows, cols), dtype=np.float32)
        masks = np.zeros((len(products), rows, cols), dtype=np.uint8)
        footprint = np.zeros((rows, cols), dtype=bool)

        def read_date(date_index: int) -> np.ndarray:
            return self._read_product(products[date_index], window_grid, raw[date_index], masks[date_index])

        workers = max(1, min(self.read_threads, len(products)))
        if workers == 1:
            seen = [read_date(index) for index in range(len(products))]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                seen = list(pool.map(read_date, range(len(products))))
        for has_data in seen:
            footprint |= has_data
        input_dates = [product.date for product in products]
        interpolation_dates = list(interpolation_dates)
        raw, masks, footprint, validity, interpolated = series_on_dates(
            raw, masks, footprint, input_dates, interpolation_dates,
            _option(self.config, "sensors_data_interpolation", "use_gapfilling", True), self.nodata, pixels)
        return SensorData(sensor=self.name, band_names=bands, input_dates=input_dates, raw=raw, masks=masks,
                          interpolation_dates=interpolation_dates, interpolated=interpolated, validity=validity,
                          footprint=footprint, spec=self.feature_spec())

    def feature_spec(self) -> FeatureSpec:
        """The sensor's default features: reflectances (``copy_input``; ``keep_bands`` with ``extract_bands``),
        the indices of ``arg_train.features`` and the additional band-math expressions.

        Raises :class:`iota2.core.errors.ConfigError` on unknown bands or indices."""
        bands = list(self.bands)
        keep_bands = None
        if _option(self.config, "iota2_feature_extraction", "extract_bands", False):
            keep_bands = list(_option(self.config, self.config_section, "keep_bands", bands))
        indices = list(_option(self.config, "arg_train", "features", ["NDVI", "NDWI", "Brightness"]) or [])
        return spectral_feature_spec(bands, copy_input=_option(self.config, "iota2_feature_extraction", "copy_input",
                                                              True),
                                     indices=indices, keep_bands=keep_bands,
                                     additional_features=self._additional_expressions(), nodata=self.nodata,
                                     index_bands=self.index_bands, section=self.config_section)


def _optical_sensor_classes() -> list[type[OpticalSensor]]:
    """Every optical sensor class: the registered sensors and the subclasses of :class:`OpticalSensor`."""
    from iota2.core.plugins import sensors

    try:
        registered = [cls for cls in sensors().values() if isinstance(cls, type) and issubclass(cls, OpticalSensor)]
    except Exception:  # noqa: BLE001 - messages must not fail because of a broken plugin
        registered = []
    found, queue = [], registered + list(OpticalSensor.__subclasses__())
    while queue:
        cls = queue.pop(0)
        queue.extend(cls.__subclasses__())
        if cls.product_regex and cls not in found:
            found.append(cls)
    return found


# ----------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------

def sensor_sections(sensor: type[OpticalSensor], section_doc: str, path_doc: str) -> list[Section]:
    """The configuration section of an optical sensor and its ``chain`` keys.

    Parameters
    ----------
    sensor
        The sensor class (its ``config_section``, ``path_key``, ``bands``, ``index_bands`` and
        ``default_temporal_resolution`` are used).
    section_doc
        Description of the sensor's section.
    path_doc
        Description of ``chain.<path_key>``.

    Returns
    -------
    list of Section
        The sensor's section and a ``chain`` section with ``<path_key>`` and its ``_output_path`` twin.
    """
    yyyymmdd = config_module._yyyymmdd
    bands = list(sensor.bands)
    needed = sorted({band for roles in sensor.index_bands.values() for band in roles}, key=bands.index)
    numbered = ", ".join(f"b{index + 1}={band}" for index, band in enumerate(bands))

    def check_bands(value):
        unknown = [band for band in value or [] if band not in bands]
        if unknown:
            return f"contains unknown band(s) {', '.join(map(str, unknown))}; use bands among {', '.join(bands)}"
        return None

    output_key = sensor.path_key[:-len("_path")] + "_output_path"
    return [
        Section(sensor.config_section, {
            "temporal_resolution": Param("int", sensor.default_temporal_resolution,
                                         "Days between two dates of the interpolation grid.",
                                         check=lambda value: None if value > 0 else "must be > 0 (days)"),
            "start_date": Param("str", "", "First date (YYYYMMDD) of the interpolation grid; only used when "
                                "sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
            "end_date": Param("str", "", "Last date (YYYYMMDD) of the interpolation grid, included if on the grid; "
                              "only used when sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
            "keep_bands": Param("list", bands, "Bands kept in the features when "
                                f"iota2_feature_extraction.extract_bands is True ({', '.join(needed)} are needed by "
                                "the indices).", check=check_bands),
            "additional_features": Param("str", "", "Comma-separated band-math expressions computed per date when "
                                         "sensors_data_interpolation.use_additional_features is True; "
                                         f"b1..b{len(bands)} are the date's bands ({numbered}), e.g. "
                                         "'(b2-b1)/(b2+b1)*1000'. Results are truncated to integers."),
            "write_reproject_resampled_input_dates_stack": Param(
                "bool", True, "Write the per-date resampled stacks next to the inputs (accepted for compatibility; "
                "features are computed in memory per chunk)."),
        }, section_doc),
        Section("chain", {
            sensor.path_key: Param("str", None, path_doc),
            output_key: Param("str", None, f"Folder for {sensor.label} intermediate files; default: next to the "
                              "inputs."),
        }),
    ]
