"""Sentinel-2 THEIA L2A (MAJA) products: dates, reference grid, windowed reading, gap-filling and features.

Layout read (iota2's)::

    <s2_path>/<TILE>/SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7/
        SENTINEL2A_..._FRE_B2.tif ... _FRE_B12.tif        (B2, B3, B4, B8 at 10 m; the others at 20 m)
        MASKS/SENTINEL2A_..._CLM_R1.tif, _SAT_R1.tif, _EDG_R1.tif   (10 m)

The acquisition date is the second ``_``-separated field of the product name, before its first ``-``.
An observation is invalid where any of the three masks is non-zero. Bands are stacked in the order
B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12; reflectances are stored x10000 with nodata -10000.

Reading is done window by window on the tile's reference grid, so memory is bounded by the window:
when a file is in the grid's CRS and aligned with it (same pixel lattice, file resolution an integer
multiple of the grid's), the matching window is read directly (bilinear up-sampling of 20 m bands,
nearest for masks); otherwise the file is warped onto the window's grid with a
:class:`rasterio.vrt.WarpedVRT`. Both give identical values on aligned data, except next to nodata
pixels, where both interpolate over the valid neighbours only but weigh them slightly differently.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import logging
import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import rasterio
import rasterio.transform
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from iota2.core import config as config_module
from iota2.core.config import Param, Section
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.raster import Grid, open_raster, read_checked
from iota2.core.sensor import Sensor, SensorData
from iota2.core.timeseries import date_grid, gapfill_linear, parse_date

LOGGER = logging.getLogger(__name__)

#: stack order of the bands
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: bands delivered at 10 m (the others are at 20 m)
BANDS_10M = frozenset({"B2", "B3", "B4", "B8"})
#: masks of the R1 (10 m) group; an observation is invalid where any of them is non-zero
MASKS = ("CLM", "SAT", "EDG")
#: nodata value of the reflectance bands
NODATA = -10000
#: value given to masks outside a file's footprint when warping (any non-zero value means invalid)
MASK_FILL = 255
#: spectral indices computed per date and the bands each one needs
INDEX_BANDS = {"NDVI": ("B4", "B8"), "NDWI": ("B8", "B11"), "BRIGHTNESS": ()}
#: denominators smaller than this in absolute value give an index of 0
INDEX_EPSILON = 1e-5

_PRODUCT_GLOB = "SENTINEL2*_L2A_*"
_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class Product:
    """One THEIA L2A product folder of a tile."""

    path: Path
    date: str

    @property
    def name(self) -> str:
        return self.path.name

    def band_path(self, band: str) -> Path:
        """Path of the flat-reflectance (``FRE``) file of ``band``."""
        return self.path / f"{self.name}_FRE_{band}.tif"

    def mask_path(self, mask: str) -> Path:
        """Path of the 10 m (``R1``) mask ``mask`` (``CLM``, ``SAT`` or ``EDG``)."""
        return self.path / "MASKS" / f"{self.name}_{mask}_R1.tif"

    def files(self) -> list[Path]:
        """Every band and mask file the product must contain."""
        return [self.band_path(band) for band in BANDS] + [self.mask_path(mask) for mask in MASKS]


def product_date(name: str) -> str | None:
    """Acquisition date ``YYYYMMDD`` of a THEIA product name, or ``None`` if the name has none.

    ``SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7`` -> ``"20180511"``.
    """
    fields = name.split("_")
    if len(fields) < 2:
        return None
    date = fields[1].split("-")[0]
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
# features
# ----------------------------------------------------------------------------------------------------

_ALLOWED_FUNCTIONS = {"sqrt": np.sqrt, "abs": np.abs, "exp": np.exp, "log": np.log, "log10": np.log10,
                      "min": np.minimum, "max": np.maximum, "sin": np.sin, "cos": np.cos, "tan": np.tan}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant,
                  ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def _compile_expression(expression: str, n_bands: int):
    """Check a band-math expression (``b1`` ... ``bN``, + - * / ^, a few functions) and compile it."""
    text = expression.strip().replace("^", "**")
    where = "Sentinel_2.additional_features"
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: cannot parse the expression {expression!r} ({exc.msg}); write e.g. "
                          "'(b7-b3)/(b7+b3)*1000'") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConfigError(f"{where}: {type(node).__name__} is not allowed in {expression!r}; use b1..b{n_bands}, "
                              f"numbers, + - * / ^ and {', '.join(sorted(_ALLOWED_FUNCTIONS))}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in _ALLOWED_FUNCTIONS):
            raise ConfigError(f"{where}: unknown function in {expression!r}; use one of "
                              f"{', '.join(sorted(_ALLOWED_FUNCTIONS))}")
        if isinstance(node, ast.Name) and node.id not in _ALLOWED_FUNCTIONS:
            match = re.fullmatch(r"b(\d+)", node.id)
            if not match or not 1 <= int(match.group(1)) <= n_bands:
                raise ConfigError(f"{where}: unknown name '{node.id}' in {expression!r}; bands are b1..b{n_bands} "
                                  f"({', '.join(BANDS)} in this order)")
    return compile(tree, "<additional_features>", "eval")


def compute_features(interpolated: np.ndarray, band_names: list[str], dates: list[str], *,
                     sensor: str = "Sentinel2", copy_input: bool = True,
                     indices: list[str] | tuple[str, ...] = ("NDVI", "NDWI", "Brightness"),
                     keep_bands: list[str] | None = None, additional_features: list[str] | tuple[str, ...] = (),
                     nodata: float = NODATA) -> tuple[np.ndarray, list[str]]:
    """Feature stack of a gap-filled time series (iota2's ``iota2FeatureExtraction``).

    The stack holds, in this order: (if ``copy_input``) the reflectances date-major (date 1: B2..B12,
    date 2: ...), then for each name of ``indices`` that index for every date, then each additional
    band-math expression for every date.

    * NDVI = (B8 - B4) / (B8 + B4) x 1000;
    * NDWI = (B11 - B8) / (B11 + B8) x 1000 -- iota2's order (SWIR first), the opposite sign of Gao's NDWI;
    * Brightness = sqrt(sum of the squares of the date's kept bands), unscaled.

    An index is 0 where the absolute value of its denominator is below 1e-5, and ``nodata`` where any
    kept band of the date equals ``nodata``. Additional expressions use ``b1`` ... ``bN`` for the date's
    bands in stack order (all bands, not only the kept ones) and are truncated towards zero, as iota2
    stores them as int16: scale them in the expression.

    Parameters
    ----------
    interpolated
        (dates, bands, rows, cols) values.
    band_names
        Band names of axis 1, e.g. :data:`BANDS`.
    dates
        ``YYYYMMDD`` dates of axis 0.
    sensor
        Label prefix (lower-cased in labels).
    copy_input
        Keep the reflectances in the stack.
    indices
        Index names among NDVI, NDWI, Brightness (case-insensitive).
    keep_bands
        Bands kept for the reflectances and the brightness; ``None`` keeps all.
    additional_features
        Band-math expressions evaluated per date.
    nodata
        Nodata value of the reflectances.

    Returns
    -------
    features : numpy.ndarray
        (rows, cols, n_features) float32, C-contiguous.
    labels : list of str
        Lower-case labels, e.g. ``sentinel2_b2_20180511``, ``sentinel2_ndvi_20180511``,
        ``sentinel2_user_features_1_20180511``.
    """
    n_dates, n_bands, rows, cols = interpolated.shape
    band_names = list(band_names)
    if keep_bands is None:
        kept = list(range(n_bands))
    else:
        unknown = [band for band in keep_bands if band not in band_names]
        if unknown:
            raise ConfigError(f"Sentinel_2.keep_bands: unknown band(s) {', '.join(map(str, unknown))}; "
                              f"use bands among {', '.join(band_names)}")
        kept = sorted({band_names.index(band) for band in keep_bands})
    kept_names = [band_names[index] for index in kept]
    requested = []
    for name in indices:
        key = str(name).upper()
        if key not in INDEX_BANDS:
            raise ConfigError(f"arg_train.features: unknown feature {name!r}; use any of NDVI, NDWI, Brightness "
                              "(or [] for none)")
        missing = [band for band in INDEX_BANDS[key] if band not in kept_names]
        if missing:
            raise ConfigError(f"Sentinel_2.keep_bands must contain {', '.join(missing)} to compute {name} "
                              f"(arg_train.features); add it or remove {name} from arg_train.features")
        requested.append(key)
    expressions = [expression for expression in additional_features if expression.strip()]
    compiled = [_compile_expression(expression, n_bands) for expression in expressions]

    prefix = sensor.lower()
    dates = list(dates)
    n_features = (n_dates * len(kept) if copy_input else 0) + n_dates * (len(requested) + len(compiled))
    features = np.empty((rows, cols, n_features), dtype=np.float32)
    pixels = features.reshape(rows * cols, n_features)  # a view: (pixels, features)
    labels: list[str] = []
    offset = 0
    if copy_input:
        block = n_dates * len(kept)
        if kept == list(range(n_bands)):
            pixels[:, offset:offset + block] = interpolated.reshape(block, rows * cols).T
        else:
            pixels[:, offset:offset + block] = interpolated[:, kept].reshape(block, rows * cols).T
        labels += [f"{prefix}_{band.lower()}_{date}" for date in dates for band in kept_names]
        offset += block
    if requested:
        no_data = np.zeros((n_dates, rows, cols), dtype=bool)
        for band in kept:
            no_data |= np.abs(interpolated[:, band] - nodata) < 0.1
        index = np.empty((n_dates, rows, cols), dtype=np.float32)
        for key in requested:
            if key == "BRIGHTNESS":
                index.fill(0.0)
                for band in kept:
                    index += np.square(interpolated[:, band], dtype=np.float32)
                np.sqrt(index, out=index)
            else:
                if key == "NDVI":  # (NIR - red) / (NIR + red)
                    high, low = interpolated[:, band_names.index("B8")], interpolated[:, band_names.index("B4")]
                else:  # NDWI in iota2's order: (SWIR - NIR) / (SWIR + NIR)
                    high, low = interpolated[:, band_names.index("B11")], interpolated[:, band_names.index("B8")]
                denominator = np.add(high, low, dtype=np.float32)
                np.subtract(high, low, out=index, dtype=np.float32)
                small = np.abs(denominator) < INDEX_EPSILON
                denominator[small] = 1.0
                index /= denominator
                index *= 1000.0
                index[small] = 0.0
            index[no_data] = nodata
            pixels[:, offset:offset + n_dates] = index.reshape(n_dates, rows * cols).T
            labels += [f"{prefix}_{key.lower()}_{date}" for date in dates]
            offset += n_dates
    if compiled:
        namespace = {f"b{band + 1}": interpolated[:, band].astype(np.float32) for band in range(n_bands)}
        for number, code in enumerate(compiled, start=1):
            with np.errstate(all="ignore"):
                value = eval(code, {"__builtins__": {}, **_ALLOWED_FUNCTIONS}, namespace)  # noqa: S307 - checked AST
            value = np.broadcast_to(np.asarray(value, dtype=np.float32), (n_dates, rows, cols))
            value = np.trunc(np.nan_to_num(value, nan=0.0, posinf=32767.0, neginf=-32768.0))
            pixels[:, offset:offset + n_dates] = value.reshape(n_dates, rows * cols).T
            labels += [f"{prefix}_user_features_{number}_{date}" for date in dates]
            offset += n_dates
    return features, labels


# ----------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------

def _is_integer(value: float) -> bool:
    return abs(value - round(value)) <= _TOLERANCE


def aligned_window(dataset, grid: Grid) -> Window | None:
    """The window of ``dataset`` covering ``grid`` if they share CRS and pixel lattice, else ``None``.

    Aligned means: same CRS, both north-up, the dataset's pixel size an integer multiple (>= 1) of the
    grid's, the grid's origin on a node of the grid-resolution lattice anchored at the dataset's
    origin, and the grid inside the dataset. The window has fractional offsets when the dataset is
    coarser than the grid (e.g. a 20 m band read onto a 10 m grid).
    """
    src, dst = dataset.transform, grid.transform
    if src.b or src.d or dst.b or dst.d or src.a <= 0 or dst.a <= 0 or src.e >= 0 or dst.e >= 0:
        return None
    x_factor, y_factor = src.a / dst.a, src.e / dst.e
    if not (_is_integer(x_factor) and _is_integer(y_factor)) or round(x_factor) < 1 or round(y_factor) < 1:
        return None
    col, row = (dst.c - src.c) / dst.a, (dst.f - src.f) / dst.e
    if not (_is_integer(col) and _is_integer(row)):
        return None
    x_factor, y_factor = round(x_factor), round(y_factor)
    col_off, row_off = round(col) / x_factor, round(row) / y_factor
    width, height = grid.width / x_factor, grid.height / y_factor
    if (col_off < 0 or row_off < 0 or col_off + width > dataset.width + _TOLERANCE
            or row_off + height > dataset.height + _TOLERANCE):
        return None
    if dataset.crs != grid.crs:
        return None
    return Window(col_off, row_off, width, height)


def read_onto_grid(path: str | Path, grid: Grid, resampling: Resampling, fill: float,
                   source_nodata: float | None = None, force_warp: bool = False) -> np.ndarray:
    """Read band 1 of a raster resampled onto ``grid``.

    Parameters
    ----------
    path
        Raster file.
    grid
        Target grid (typically a window of a tile's reference grid).
    resampling
        Resampling used when the file's resolution differs from the grid's.
    fill
        Value of grid pixels outside the file.
    source_nodata
        Nodata value of the file used when warping if the file declares none.
    force_warp
        Always warp with a :class:`~rasterio.vrt.WarpedVRT` (used to check the direct path).

    Returns
    -------
    numpy.ndarray
        (grid.height, grid.width) array in the file's data type.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or corrupt (the message names it).
    """
    shape = (grid.height, grid.width)
    with open_raster(path) as src:
        window = None if force_warp else aligned_window(src, grid)
        if window is not None:
            if window.width == grid.width and window.height == grid.height:
                return read_checked(src, 1, window=window)
            return read_checked(src, 1, window=window, out_shape=shape, resampling=resampling)
        nodata = src.nodata if src.nodata is not None else source_nodata
        try:
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=resampling, src_nodata=nodata, nodata=fill) as vrt:
                return vrt.read(1)
        except rasterio.errors.RasterioError as exc:
            raise InputDataError(f"raster '{path}' is corrupt or cannot be warped onto the tile grid ({exc}); "
                                 "replace it with a valid georeferenced GeoTIFF") from exc


class Sentinel2Theia(Sensor):
    """Sentinel-2 L2A products of the THEIA land data centre (MAJA), one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Sentinel_2``, ``sensors_data_interpolation``,
        ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.s2_path>/<tile>/``.
    """

    name = "Sentinel2"
    config_section = "Sentinel_2"
    path_key = "s2_path"
    native_resolution = 10.0
    bands = BANDS
    nodata = NODATA
    #: threads reading the products of a window in parallel; 1 (sequential) is the fastest on small
    #: uncompressed files, more helps with large or compressed ones (GDAL releases the GIL while decoding)
    read_threads = 1

    @property
    def root(self) -> Path:
        """The product root ``chain.s2_path``."""
        value = self.config["chain"].get(self.path_key)
        if value in (None, "", "None"):
            raise ConfigError(f"chain.{self.path_key} is not set: give the folder holding one sub-folder of "
                              "Sentinel-2 THEIA products per tile")
        return Path(value)

    @property
    def tile_folder(self) -> Path:
        """The folder of the tile's products."""
        return self.root / self.tile

    @cached_property
    def products(self) -> list[Product]:
        """The tile's products, one per date, chronological (names only; nothing is opened)."""
        folder = self.tile_folder
        if not folder.is_dir():
            raise InputDataError(f"Sentinel-2 tile folder '{folder}' does not exist; check chain.{self.path_key} "
                                 f"('{self.root}') and chain.list_tile")
        by_date: dict[str, Product] = {}
        for path in sorted(folder.glob(_PRODUCT_GLOB)):
            if not path.is_dir():
                continue
            date = product_date(path.name)
            if date is None:
                LOGGER.warning("ignoring '%s': no YYYYMMDD date in its name", path)
                continue
            if date in by_date:
                LOGGER.warning("tile %s: products '%s' and '%s' have the same date %s; keeping the first",
                               self.tile, by_date[date].name, path.name, date)
                continue
            by_date[date] = Product(path, date)
        if not by_date:
            raise InputDataError(f"no Sentinel-2 THEIA product ({_PRODUCT_GLOB}) in {folder}; each product must be a "
                                 "folder like SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7")
        return [by_date[date] for date in sorted(by_date)]

    def check_inputs(self, grid: Grid | None = None) -> None:
        """Check the tile folder, product names, band and mask files, and the header of each product's B2."""
        crs = None
        for product in self.products:
            for path in product.files():
                if not path.is_file():
                    raise InputDataError(f"Sentinel-2 product '{product.path}' lacks the file '{path}'; every "
                                         f"product needs the FRE bands {', '.join(BANDS)} and MASKS/*_CLM_R1.tif, "
                                         "*_SAT_R1.tif, *_EDG_R1.tif")
            with open_raster(product.band_path("B2")) as src:
                if src.crs is None:
                    raise InputDataError(f"raster '{product.band_path('B2')}' has no CRS; THEIA products are "
                                         "georeferenced, re-download it")
                if crs is None:
                    crs = src.crs
                elif src.crs != crs:
                    LOGGER.warning("tile %s: '%s' is in %s, not in %s like the first product; it will be warped",
                                   self.tile, product.name, src.crs, crs)

    def input_dates(self) -> list[str]:
        """Acquisition dates ``YYYYMMDD`` of the tile, chronological and unique."""
        return [product.date for product in self.products]

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        """The grid of the B2 file of the first product, optionally in ``crs`` and at ``resolution``.

        When the CRS or the resolution changes, the extent is computed with
        :func:`rasterio.warp.calculate_default_transform` and then snapped outwards to multiples of
        the pixel size (like ``gdalwarp -tap``), so that the grids of neighbouring tiles share one
        pixel lattice and mosaic without resampling.

        Parameters
        ----------
        crs
            Target CRS (anything :meth:`rasterio.crs.CRS.from_user_input` accepts); default: the data's.
        resolution
            Target pixel size (number or ``(x, y)``); default: the data's (10 m).
        """
        with open_raster(self.products[0].band_path("B2")) as src:
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
          latest date of all tiles every ``Sentinel_2.temporal_resolution`` days (iota2's rule);
        * otherwise from ``Sentinel_2.start_date`` to ``Sentinel_2.end_date``.
        """
        all_dates = sorted({date for dates in dates_by_tile.values() for date in dates})
        if not _option(config, "sensors_data_interpolation", "use_gapfilling", True):
            return all_dates
        step = int(_option(config, cls.config_section, "temporal_resolution", 10))
        if step <= 0:
            raise ConfigError(f"{cls.config_section}.temporal_resolution = {step} must be > 0 (days)")
        if _option(config, "sensors_data_interpolation", "auto_date", True):
            if not all_dates:
                raise InputDataError("no Sentinel-2 date found in any tile; check chain.s2_path and chain.list_tile")
            return date_grid(all_dates[0], all_dates[-1], step)
        bounds = []
        for key in ("start_date", "end_date"):
            value = _option(config, cls.config_section, key, "")
            where = f"{cls.config_section}.{key}"
            if value in (None, ""):
                raise ConfigError(f"{where} must be set (YYYYMMDD) when sensors_data_interpolation.auto_date is "
                                  "False, or set auto_date to True")
            try:
                parse_date(value)
            except ValueError as exc:
                raise ConfigError(f"{where} = {value!r} is not a valid date written YYYYMMDD") from exc
            bounds.append(str(value))
        if bounds[1] < bounds[0]:
            raise ConfigError(f"{cls.config_section}.start_date = {bounds[0]} is after "
                              f"{cls.config_section}.end_date = {bounds[1]}")
        return date_grid(bounds[0], bounds[1], step)

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read`, in bytes, with a 25 % margin.

        Counts the raw stack, the masks, the gap-filling indexes, the interpolated stack, the features
        and the temporaries of the indices.
        """
        n_input = len(self.products)
        n_bands = len(BANDS)
        per_input_date = n_bands * 4 + 3 + 8  # raw float32, masks + invalid flags, gap-filling previous/next indexes
        n_features = n_bands + 3 + len(self._additional_expressions())
        per_output_date = n_bands * 4 + n_features * 4 + 3 * 4  # interpolated, features, index temporaries
        return int(math.ceil(1.25 * (n_input * per_input_date + n_interpolation_dates * per_output_date + 256)))

    def _additional_expressions(self) -> list[str]:
        if not _option(self.config, "sensors_data_interpolation", "use_additional_features", False):
            return []
        text = _option(self.config, self.config_section, "additional_features", "") or ""
        return [expression.strip() for expression in str(text).split(",") if expression.strip()]

    @staticmethod
    def _read_product(product: Product, grid: Grid, raw: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """Read one product onto ``grid`` into ``raw`` (bands, rows, cols) and ``invalid`` (rows, cols).

        Returns where the product has data (``EDG`` mask 0).
        """
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for band_index, band in enumerate(BANDS):
                raw[band_index] = read_onto_grid(product.band_path(band), grid, Resampling.bilinear, NODATA,
                                                 source_nodata=NODATA)
            flags = np.any(raw == NODATA, axis=0)
            edge_free = None
            for mask in MASKS:
                values = read_onto_grid(product.mask_path(mask), grid, Resampling.nearest, MASK_FILL)
                flags |= values != 0
                if mask == "EDG":
                    edge_free = values == 0
        invalid[:] = flags
        return edge_free

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Clear observations (uint16) and footprint (bool) of a window from the mask files only."""
        window_grid = grid.window_grid(window)
        validity = np.zeros((window_grid.height, window_grid.width), dtype=np.uint16)
        footprint = np.zeros(validity.shape, dtype=bool)
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for product in self.products:
                invalid = np.zeros(validity.shape, dtype=bool)
                for mask in MASKS:
                    values = read_onto_grid(product.mask_path(mask), window_grid, Resampling.nearest, MASK_FILL)
                    invalid |= values != 0
                    if mask == "EDG":
                        footprint |= values == 0
                validity += ~invalid
        return validity, footprint

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
        window_grid = grid.window_grid(window)
        rows, cols = window_grid.height, window_grid.width
        raw = np.empty((len(products), len(BANDS), rows, cols), dtype=np.float32)
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
        for edge_free in seen:
            footprint |= edge_free
        if pixels is not None:
            rows_at, cols_at = (np.asarray(index) for index in pixels)
            raw = raw[:, :, rows_at, cols_at][:, :, np.newaxis, :]
            masks = masks[:, rows_at, cols_at][:, np.newaxis, :]
            footprint = footprint[rows_at, cols_at][np.newaxis, :]
            rows, cols = 1, len(rows_at)
        input_dates = [product.date for product in products]
        validity = (len(products) - masks.sum(axis=0, dtype=np.int32)).astype(np.uint16)
        interpolation_dates = list(interpolation_dates)
        if _option(self.config, "sensors_data_interpolation", "use_gapfilling", True):
            interpolated = gapfill_linear(raw, masks.astype(bool), input_dates, interpolation_dates)
        else:
            position = {date: index for index, date in enumerate(input_dates)}
            interpolated = np.full((len(interpolation_dates), len(BANDS), rows, cols), NODATA, dtype=np.float32)
            for out_index, date in enumerate(interpolation_dates):
                if date in position:
                    interpolated[out_index] = raw[position[date]]
        keep_bands = None
        if _option(self.config, "iota2_feature_extraction", "extract_bands", False):
            keep_bands = list(_option(self.config, self.config_section, "keep_bands", list(BANDS)))
        features, labels = compute_features(
            interpolated, list(BANDS), interpolation_dates, sensor=self.name,
            copy_input=_option(self.config, "iota2_feature_extraction", "copy_input", True),
            indices=list(_option(self.config, "arg_train", "features", ["NDVI", "NDWI", "Brightness"]) or []),
            keep_bands=keep_bands, additional_features=self._additional_expressions(), nodata=NODATA)
        return SensorData(sensor=self.name, band_names=list(BANDS), input_dates=input_dates, raw=raw, masks=masks,
                          interpolation_dates=interpolation_dates, interpolated=interpolated, features=features,
                          labels=labels, validity=validity, footprint=footprint)


def _check_bands(value):
    unknown = [band for band in value or [] if band not in BANDS]
    if unknown:
        return f"contains unknown band(s) {', '.join(map(str, unknown))}; use bands among {', '.join(BANDS)}"
    return None


@hookimpl
def iota2_register_sensors():
    """Register the THEIA Sentinel-2 sensor."""
    return [Sentinel2Theia]


@hookimpl
def iota2_config_sections():
    """Declare the ``Sentinel_2`` section and the ``chain`` keys of Sentinel-2 products."""
    yyyymmdd = config_module._yyyymmdd
    return [
        Section("Sentinel_2", {
            "temporal_resolution": Param("int", 10, "Days between two dates of the interpolation grid.",
                                         check=lambda value: None if value > 0 else "must be > 0 (days)"),
            "start_date": Param("str", "", "First date (YYYYMMDD) of the interpolation grid; only used when "
                                "sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
            "end_date": Param("str", "", "Last date (YYYYMMDD) of the interpolation grid, included if on the grid; "
                              "only used when sensors_data_interpolation.auto_date is False.", check=yyyymmdd),
            "keep_bands": Param("list", list(BANDS), "Bands kept in the features when "
                                "iota2_feature_extraction.extract_bands is True (B4, B8 and B11 are needed by the "
                                "indices).", check=_check_bands),
            "additional_features": Param("str", "", "Comma-separated band-math expressions computed per date when "
                                         "sensors_data_interpolation.use_additional_features is True; b1..b10 are "
                                         "the date's bands B2..B12, e.g. '(b7-b3)/(b7+b3)*1000'. Results are "
                                         "truncated to integers."),
            "write_reproject_resampled_input_dates_stack": Param(
                "bool", True, "Write the per-date resampled stacks next to the inputs (accepted for compatibility; "
                "features are computed in memory per chunk)."),
        }, "Sentinel-2 L2A products of THEIA (MAJA format)."),
        Section("chain", {
            "s2_path": Param("str", None, "Folder holding one sub-folder per tile of Sentinel-2 THEIA L2A products "
                             "(SENTINEL2*_L2A_*); enables the Sentinel-2 sensor."),
            "s2_output_path": Param("str", None, "Folder for Sentinel-2 intermediate files; default: next to the "
                                    "inputs."),
        }),
    ]
