"""Raster helpers: tile grids, chunk windows, atomic GeoTIFF writes, checked opening of inputs."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import functools
import logging
import math
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
import rasterio.enums
import rasterio.transform
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.core.errors import ConfigError, InputDataError, OutputWriteError

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (north-up) and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        right = left + self.width * self.transform.a
        bottom = top + self.height * self.transform.e
        return (left, bottom, right, top)

    def window_grid(self, window: Window) -> "Grid":
        """The grid of a window of this grid."""
        return Grid(self.crs, rasterio.windows.transform(window, self.transform), int(window.width),
                    int(window.height))

    def coarsened(self, factor: int) -> "Grid":
        """This grid with pixels ``factor`` times larger (an overview level; the sizes must be multiples)."""
        if self.width % factor or self.height % factor:
            raise ValueError(f"a {self.width} x {self.height} grid has no exact overview at factor {factor}")
        return Grid(self.crs, self.transform @ Affine.scale(factor), self.width // factor, self.height // factor)

    def profile(self, count: int = 1, dtype: str = "uint8", nodata=None, compress: str = "ZSTD") -> dict:
        """A rasterio creation profile (tiled GeoTIFF) on this grid."""
        profile = {"driver": "GTiff", "crs": self.crs, "transform": self.transform, "width": self.width,
                   "height": self.height, "count": count, "dtype": dtype, "nodata": nodata,
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER"}
        if compress and compress.upper() != "NONE":
            profile["compress"] = compress.lower()
        if self.width < 256 or self.height < 256:
            profile["tiled"] = False
            profile.pop("blockxsize")
            profile.pop("blockysize")
        return profile

    @classmethod
    def from_dataset(cls, dataset) -> "Grid":
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    @classmethod
    def from_file(cls, path: str | Path) -> "Grid":
        with open_raster(path) as src:
            return cls.from_dataset(src)

    def to_dict(self) -> dict:
        return {"crs": self.crs.to_wkt(), "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height}

    @classmethod
    def from_dict(cls, data: dict) -> "Grid":
        return cls(CRS.from_wkt(data["crs"]), Affine(*data["transform"]), int(data["width"]), int(data["height"]))


def _open_dataset(path: str):
    if not os.path.exists(path):
        raise InputDataError(f"raster '{path}' does not exist")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"raster '{path}' cannot be read ({exc}); the file is corrupt or not a raster: "
                             "replace it with a valid GeoTIFF") from exc


@contextlib.contextmanager
def open_raster(path: str | Path):
    """Open a raster for reading; a missing or corrupt file raises :class:`InputDataError` naming it."""
    with _open_dataset(str(path)) as dataset:
        yield dataset


GDAL_CACHE_MB = 64
"""GDAL block cache (MB) of a process reading inputs through :class:`_OpenRasters`, unless ``GDAL_CACHEMAX`` is
set in the environment."""


MAX_OPEN_INPUTS = 2048
"""Most input rasters a process keeps open (a year of Sentinel-2 at 5 days, 949 files, twice over)."""


def input_raster_capacity(limits: tuple[int, int] | None = None, raise_limit: bool = True) -> int:
    """How many input rasters a process may keep open: half its soft limit on open files, at most
    :data:`MAX_OPEN_INPUTS`, at least 64.

    Parameters
    ----------
    limits
        ``(soft, hard)`` limits on open files; default ``resource.getrlimit(RLIMIT_NOFILE)``. Given limits are
        not changed: the result is the capacity the process would get with them.
    raise_limit
        When the soft limit is below ``2 * MAX_OPEN_INPUTS + 256`` (1024 on many systems), first raise it
        towards the hard limit (allowed without privileges), so that the cache can hold a year of dates while
        GDAL, dask and the outputs keep at least half of the descriptors.

    Returns
    -------
    int
    """
    import resource

    soft, hard = limits if limits is not None else resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * MAX_OPEN_INPUTS + 256
    unlimited = resource.RLIM_INFINITY
    if soft != unlimited and soft < wanted and (hard == unlimited or hard > soft):
        target = wanted if hard == unlimited else min(wanted, hard)
        if raise_limit and limits is None:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as exc:
                LOGGER.debug("open-file limit left at %s (%s)", soft, exc)
        elif raise_limit:
            soft = target
    if soft == unlimited:
        return MAX_OPEN_INPUTS
    return max(64, min(MAX_OPEN_INPUTS, soft // 2))


class _OpenRasters:
    """Rasters kept open between reads, so that the chunks of a tile read by one worker do not each re-open
    every band file (a chunk of a year of Sentinel-2 opens hundreds; measured: features of 16 chunks of a
    12-date tile, 156 files each, 4.3 s -> 2.5 s).

    A handle is lent to one reader at a time (taken out of the cache while in use), files are keyed by path,
    inode, size and modification time (a rewritten file is opened again), and the least recently used handles
    are closed beyond ``capacity``. GDAL keeps the blocks read from an open file in its block cache, 5 % of the
    machine's memory by default (1.2 GB here, 6 GB on a 128 GB node, per worker): the first use caps the
    process's cache at :data:`GDAL_CACHE_MB` unless ``GDAL_CACHEMAX`` is set in the environment, so a worker's
    memory stays flat (inputs are read once per chunk: the cache saves little; rasterising and writing maps of
    a tile are as fast with 64 MB).

    Without a ``capacity``, the first use sizes the cache from the process's limit on open files
    (:func:`input_raster_capacity`): a year of Sentinel-2 at 5 days is 73 dates x 13 files per chunk, and a
    cache smaller than what a chunk reads closes every handle before the next chunk needs it again (with 256,
    a 36-date tile re-opened its 468 files for every chunk).
    """

    def __init__(self, capacity: int | None = None):
        self._capacity = capacity
        self.lock = threading.Lock()
        self.handles: collections.OrderedDict = collections.OrderedDict()
        self.cache_limited = False

    @property
    def capacity(self) -> int:
        """Handles kept open at most (sized on first use when not given)."""
        if self._capacity is None:
            self._capacity = input_raster_capacity()
        return self._capacity

    def _limit_gdal_cache(self) -> None:
        if self.cache_limited:
            return
        self.cache_limited = True
        if "GDAL_CACHEMAX" not in os.environ:  # the user's setting wins
            from rasterio.env import set_gdal_config

            set_gdal_config("GDAL_CACHEMAX", GDAL_CACHE_MB * 2**20)  # rasterio passes an integer as bytes

    @contextlib.contextmanager
    def open(self, path: str | Path):
        path = str(path)
        try:
            stat = os.stat(path)
        except OSError:
            raise InputDataError(f"raster '{path}' does not exist") from None
        key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self.lock:
            dataset = self.handles.pop(key, None)
        self._limit_gdal_cache()
        if dataset is None:
            dataset = _open_dataset(path)
        try:
            yield dataset
        finally:
            self._give_back(key, dataset)

    def _give_back(self, key, dataset) -> None:
        to_close = []
        with self.lock:
            if key in self.handles:
                to_close.append(dataset)
            else:
                self.handles[key] = dataset
            while len(self.handles) > self.capacity:
                to_close.append(self.handles.popitem(last=False)[1])
        for handle in to_close:
            handle.close()

    def clear(self) -> None:
        with self.lock:
            handles, self.handles = list(self.handles.values()), collections.OrderedDict()
        for handle in handles:
            handle.close()


INPUT_RASTERS = _OpenRasters()


def open_input_raster(path: str | Path):
    """Like :func:`open_raster`, for input rasters read chunk after chunk: the handle stays open for the next
    chunk (see :class:`_OpenRasters`). Only for files the run does not write."""
    return INPUT_RASTERS.open(path)


def read_checked(dataset, *args, **kwargs) -> np.ndarray:
    """``dataset.read`` that turns a decoding failure (truncated/corrupt file) into :class:`InputDataError`."""
    try:
        return dataset.read(*args, **kwargs)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"raster '{dataset.name}' is corrupt ({exc}); replace it with a valid file") from exc


def warp_scale_options(dataset, grid: Grid) -> dict[str, float]:
    """GDAL warp options fixing the resampling factor of ``dataset`` onto ``grid`` (``XSCALE``, ``YSCALE``:
    destination pixels per source pixel).

    GDAL otherwise estimates the factor per processing chunk from the shapes of the source and destination
    regions. Between CRSs rotated from each other (neighbouring UTM zones) the estimate depends on the
    window, so a chunk read differed from a whole-tile read (bilinear Sentinel-1 20 m onto a 10 m grid, 64
    rows against 512: every pixel, up to 0.034 in linear backscatter). The factor is taken from the size of
    the central source pixel in the grid's CRS.
    """
    from rasterio.warp import transform as transform_points

    column, row = dataset.width / 2.0, dataset.height / 2.0
    xs, ys = rasterio.transform.xy(dataset.transform, [row, row, row + 1.0], [column, column + 1.0, column],
                                   offset="ul")
    xs, ys = transform_points(dataset.crs, grid.crs, list(xs), list(ys))
    size_x = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
    size_y = math.hypot(xs[2] - xs[0], ys[2] - ys[0])
    resolution_x, resolution_y = grid.resolution
    return {"XSCALE": size_x / resolution_x, "YSCALE": size_y / resolution_y}


ALIGNMENT_TOLERANCE = 1e-6
"""Tolerance (in pixels) of :func:`aligned_window` on offsets and resolution ratios."""


def _is_integer(value: float) -> bool:
    return abs(value - round(value)) <= ALIGNMENT_TOLERANCE


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
    if (col_off < 0 or row_off < 0 or col_off + width > dataset.width + ALIGNMENT_TOLERANCE
            or row_off + height > dataset.height + ALIGNMENT_TOLERANCE):
        return None
    if dataset.crs != grid.crs:
        return None
    return Window(col_off, row_off, width, height)


UPSAMPLED_DTYPES = ("uint8", "int8", "uint16", "int16")
"""Data types :func:`upsampled_read` interpolates itself: their bilinear values are exact in float32 and float64
alike, so they equal GDAL's whatever precision GDAL computes in."""

UPSAMPLED_FACTORS = (2, 4)
"""Upsampling factors :func:`upsampled_read` handles: their bilinear weights are dyadic (0.25, 0.75; 0.125 ...),
so the interpolated values are exact (a factor of 3 or 6 has weights of 1/3 that round)."""


@functools.lru_cache(maxsize=1)
def upsample_kernel():
    """The compiled upsampling kernel, or None when numba cannot provide it (GDAL's read is used then)."""
    try:
        from iota2.core.upsample_kernel import upsample_bilinear

        index = np.zeros(1, np.int64)
        upsample_bilinear(np.zeros((1, 1), np.int16), index, index, np.zeros(1), index, index, np.zeros(1), 0.0, False,
                          np.empty((1, 1), np.int16))
    except Exception as exc:  # noqa: BLE001 - any numba failure means GDAL's read
        LOGGER.debug("compiled upsampling not available (%s: %s)", type(exc).__name__, exc)
        return None
    return upsample_bilinear


@functools.lru_cache(maxsize=64)
def _bilinear_taps(offset: float, size: int, factor: int, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source pixels (first, second) and weight of the second for ``size`` output pixels starting at source
    coordinate ``offset``, ``factor`` output pixels per source pixel, clamped to ``[0, limit)`` as GDAL clamps
    its kernel at the raster's edges. Cached (read-only arrays): every 20 m band and date of a chunk has the same."""
    centres = (np.arange(size) + 0.5) / factor + offset - 0.5
    first = np.floor(centres)
    weight = centres - first
    first = first.astype(np.int64)
    taps = (np.clip(first, 0, limit - 1), np.clip(first + 1, 0, limit - 1), weight)
    for array in taps:
        array.setflags(write=False)
    return taps


def upsampled_read(dataset, band, window: Window, shape: tuple, resampling, nodata=None) -> np.ndarray | None:
    """GDAL's bilinear resampled read of ``window`` into ``shape`` (an integer factor finer), computed from the
    window's own pixels by a compiled kernel: the same values, bit for bit, at a fraction of the cost (a 20 m
    Sentinel-2 band read onto a 48 x 2000 px chunk of the 10 m grid: 0.68 ms through GDAL, which interpolates
    through its generic convolution, against 0.02 ms for a 10 m band; 216 such reads per 36-date chunk).

    Returns None where it does not apply, and the caller reads through GDAL: another resampling, several bands,
    a data type outside :data:`UPSAMPLED_DTYPES`, a factor outside :data:`UPSAMPLED_FACTORS` (or different across
    axes), and any window whose interpolation touches a ``nodata`` pixel (GDAL leaves those out of its kernel and
    weighs the other pixels anew).
    """
    if resampling != rasterio.enums.Resampling.bilinear or not isinstance(band, int):
        return None
    if dataset.dtypes[band - 1] not in UPSAMPLED_DTYPES:
        return None
    rows, cols = shape
    factor = rows / window.height
    if factor not in UPSAMPLED_FACTORS or cols / window.width != factor:
        return None
    kernel = upsample_kernel()
    if kernel is None:
        return None
    factor = int(factor)
    row_a, row_b, row_weight = _bilinear_taps(window.row_off, rows, factor, dataset.height)
    col_a, col_b, col_weight = _bilinear_taps(window.col_off, cols, factor, dataset.width)
    top, left = int(row_a[0]), int(col_a[0])
    block = read_checked(dataset, band, window=Window(left, top, int(col_b[-1]) - left + 1, int(row_b[-1]) - top + 1))
    out = np.empty(shape, block.dtype)
    has_nodata = nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata))
    if not kernel(block, row_a - top, row_b - top, row_weight, col_a - left, col_b - left, col_weight,
                  float(nodata) if has_nodata else 0.0, has_nodata, out):
        return None
    return out


def read_onto_grid(path: str | Path, grid: Grid, resampling: rasterio.enums.Resampling, fill: float,
                   src_nodata: float | None = None, *, bands: int | list[int] | None = 1,
                   force_warp: bool = False, resampled_direct: bool = True, undeclared_nodata_warps: bool = True,
                   dtype: str | None = None, tolerance: float = 0.125, with_valid: bool = False,
                   label: str = "raster"):
    """Read bands of a raster onto ``grid`` (typically a chunk of a tile's reference grid), whatever the
    raster's CRS, resolution and extent: the one reader of every sensor.

    A raster in the grid's CRS and on its pixel lattice (:func:`aligned_window`) is read directly: the matching
    window when it has the grid's resolution, GDAL's resampled read of it when it is an integer factor coarser
    (e.g. a 20 m band on a 10 m grid; computed with the same values by :func:`upsampled_read` where it applies). Any other raster is warped onto ``grid`` with GDAL's warper, whose
    resampling factor is fixed by :func:`warp_scale_options` so that a chunk gets the values of the same pixels
    of a whole-tile read. Both give the same values on aligned data, except next to nodata pixels, where both
    interpolate over the valid neighbours only but weigh them slightly differently. The file is opened through
    :func:`open_input_raster` (kept open for the next chunk).

    The sensors differ in ways that change values; each keeps its own through the keyword options below
    (optical products use the defaults).

    Parameters
    ----------
    path
        Raster file.
    grid
        Target grid.
    resampling
        Resampling used when the file's grid differs from ``grid`` (``nearest`` for masks and classes).
    fill
        Value of warped pixels outside the file or on its nodata (direct reads keep the file's values).
    src_nodata
        Nodata value of a file that declares none (e.g. 0 of Sen2Cor products): left out of the warp's kernel.
        A file's declared nodata wins (per band when one band is read).
    bands
        1-based band index (result (rows, cols)), a list of them, or ``None`` for every band (result
        (bands, rows, cols)).
    force_warp
        Warp even an aligned file. Sentinel-1 sets it: it wants the file's nodata replaced by ``fill`` (0,
        its invalid value) everywhere, which only the warper does; tests set it to check the direct path.
    resampled_direct
        Read an aligned but coarser file with GDAL's resampled read (True) or warp it (False). User features
        set False: their values are interpolated in ``dtype`` (float32) by the warper, whereas a resampled
        read returns the file's data type.
    undeclared_nodata_warps
        With ``src_nodata`` given for a file that declares no nodata, warp an aligned file that needs
        (non-nearest) resampling instead of reading it directly: GDAL's resampled read would mix the
        undeclared nodata into the pixels next to it, the warper leaves it out of the kernel (same values
        elsewhere). The generic stack sets False: its ``src_nodata`` is its fill value, given to the warper
        only, and its aligned coarser files keep GDAL's resampled read.
    dtype
        ``None``: the file's data type (the warper computes and rounds in it, through a
        :class:`~rasterio.vrt.WarpedVRT`). A type such as ``"float32"``: the warper computes in it and writes
        an array of it (:func:`rasterio.warp.reproject`), so an integer DEM keeps its interpolated fractions;
        direct reads are converted to it.
    tolerance
        Error threshold (pixels) of GDAL's approximate transformer: 0.125 is GDAL's default; Sentinel-1 uses
        1e-9 and user features 0 (exact) so that any window gets the values of the whole grid between UTM
        zones (a :class:`~rasterio.vrt.WarpedVRT` rejects 0).
    with_valid
        Also return where values are valid: not ``fill`` (not NaN for a NaN fill) and not the file's declared
        nodata.
    label
        How error messages name the file (e.g. ``"Sentinel-1 file"``).

    Returns
    -------
    numpy.ndarray or tuple
        The values, (grid.height, grid.width) for one band index, else (bands, rows, cols); with
        ``with_valid``, ``(values, valid)`` with ``valid`` a bool array of the same shape.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable, corrupt or without CRS (the message names it).
    """
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import reproject

    Resampling = rasterio.enums.Resampling
    with open_input_raster(path) as src:
        indexes = list(src.indexes) if bands is None else bands
        shape = (grid.height, grid.width) if isinstance(indexes, int) else (len(indexes), grid.height, grid.width)
        if isinstance(indexes, int) and src.nodatavals:
            declared = src.nodatavals[indexes - 1]
        else:
            declared = src.nodata
        nodata = declared if declared is not None else src_nodata
        window = None if force_warp else aligned_window(src, grid)
        same_size = window is not None and (window.width, window.height) == (grid.width, grid.height)
        if window is not None and not same_size:
            if not resampled_direct or (undeclared_nodata_warps and declared is None and src_nodata is not None
                                        and resampling != Resampling.nearest):
                window = None
        if window is not None:
            read_bands = indexes if bands is not None else None
            if same_size:
                values = read_checked(src, read_bands, window=window)
            else:
                values = upsampled_read(src, read_bands, window, shape, resampling, declared)
                if values is None:
                    values = read_checked(src, read_bands, window=window, out_shape=shape, resampling=resampling)
            if dtype is not None:
                values = values.astype(dtype)
        else:
            if src.crs is None:
                raise InputDataError(f"{label} '{path}' has no CRS; georeference it (e.g. gdal_edit.py -a_srs "
                                     "EPSG:...)")
            try:
                if dtype is None:
                    with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                                   height=grid.height, resampling=resampling, src_nodata=nodata, nodata=fill,
                                   tolerance=tolerance, **warp_scale_options(src, grid)) as vrt:
                        values = vrt.read(indexes)
                else:
                    values = np.full(shape, fill, dtype=dtype)
                    source = rasterio.band(src, indexes)
                    reproject(source, values, src_nodata=nodata, dst_transform=grid.transform, dst_crs=grid.crs,
                              dst_nodata=fill, resampling=resampling, tolerance=tolerance,
                              **warp_scale_options(src, grid))
            except rasterio.errors.RasterioError as exc:
                raise InputDataError(f"{label} '{path}' is corrupt or cannot be warped onto the tile grid ({exc}); "
                                     "replace it with a valid georeferenced GeoTIFF") from exc
    if not with_valid:
        return values
    valid = ~np.isnan(values) if np.isnan(fill) else values != fill
    if declared is not None and not np.isnan(declared):
        valid &= values != np.asarray(declared).astype(values.dtype)
    return values, valid


def temporary_path(path: str | Path) -> Path:
    """A unique temporary name next to ``path`` (same folder, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EFBIG: "file too large for the file system", errno.EIO: "input/output error"}
"""Errors that mean the output folder, not the program, is at fault."""

LOW_SPACE_BYTES = 64 * 2**20
"""Free space (bytes) below which a failed GDAL write is reported as a full disk (or 1/20 of a smaller file
system)."""


def free_bytes(folder: str | Path) -> tuple[int, int] | None:
    """Bytes that this process may still write on the file system of ``folder`` and its size (None when
    unknown)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    blocks = stat.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else stat.f_bavail
    return blocks * stat.f_frsize, stat.f_blocks * stat.f_frsize


def _write_error(path: Path, exc: BaseException, space: tuple[int, int] | None) -> OutputWriteError | None:
    """The :class:`OutputWriteError` that explains ``exc`` raised while writing ``path``, or None when the cause is
    not the output folder (the exception then goes up unchanged).

    Python writes carry the ``errno``; GDAL only says "Write failed" (libtiff prints the reason), so a GDAL error
    on a file system left with less than :data:`LOW_SPACE_BYTES` counts as a full disk."""
    folder = path.parent
    free = None if space is None else space[0]
    code = getattr(exc, "errno", None)
    if code not in DISK_ERRNOS and "No space left on device" in str(exc):
        code = errno.ENOSPC
    if code not in DISK_ERRNOS and isinstance(exc, (rasterio.errors.RasterioIOError, OutputWriteError)) \
            and space is not None and free < min(LOW_SPACE_BYTES, space[1] // 20):
        code = errno.ENOSPC
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutputWriteError(code, f"{DISK_ERRNOS[code]} on {folder}: '{path.name}' was not written "
                                      f"({_mib(free)} free); free space and run again with -restart")
    if code in DISK_ERRNOS:
        return OutputWriteError(code, f"{DISK_ERRNOS[code]} writing '{path}' ({exc}); check the disk of {folder} "
                                      "and run again with -restart")
    if isinstance(exc, OutputWriteError):  # an incomplete file on a disk that is not full: keep its reason
        return exc
    return None


def _mib(free: int | None) -> str:
    return "free space unknown" if free is None else f"{free / 2**20:.1f} MiB"


def check_written(path: str | Path, name: str | Path | None = None) -> None:
    """Check that the file just written at ``path`` is complete, cheaply, before it takes its final name ``name``.

    GDAL does not always raise when a write fails: an error while flushing the block cache or the TIFF directory at
    ``close()`` (a full disk, a network file system) is printed and the truncated file looks written. So a GeoTIFF
    is re-opened (its directory must read), every block must lie inside the file with a non-zero size and overlap
    no other (libtiff writes blocks over others after a failed write), and the block that ends last in the file is
    decoded. Parquet files must have their footer; SQLite files must be as long
    as their pages. Other files are written by Python, which raises on a failed write.

    Raises
    ------
    OutputWriteError
        The file is incomplete; the message names it.
    """
    path = Path(path)
    name = Path(name or path)
    suffix = name.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            _check_geotiff(path)
        elif suffix == ".parquet":
            import pyarrow.parquet

            pyarrow.parquet.read_metadata(path)
        elif suffix in (".sqlite", ".gpkg"):
            _check_sqlite(path)
    except (OSError, ValueError, rasterio.errors.RasterioError, sqlite3.Error) as exc:  # cannot be read back
        raise OutputWriteError(f"'{name}' was written incompletely ({type(exc).__name__}: {exc}); "
                               "run again with -restart") from exc


def _check_geotiff(path: Path) -> None:
    size = os.path.getsize(path)
    with rasterio.open(path) as dataset:
        if dataset.driver != "GTiff":
            return
        bands = dataset.indexes if dataset.interleaving == rasterio.enums.Interleaving.band else (1,)
        blocks = []
        for band in bands:
            for (row, col), window in dataset.block_windows(band):
                offset = int(dataset.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band) or 0)
                length = int(dataset.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band) or 0)
                if offset <= 0 or length <= 0 or offset + length > size:
                    raise ValueError(f"block ({row}, {col}) of band {band} is missing or cut (offset {offset}, "
                                     f"{length} bytes, file of {size} bytes)")
                blocks.append((offset, length, band, window))
        blocks.sort(key=lambda block: block[0])
        for before, after in zip(blocks, blocks[1:]):  # libtiff rewrites blocks over others after a failed write
            if before[0] + before[1] > after[0]:
                raise ValueError(f"blocks at offsets {before[0]} and {after[0]} overlap")
        if blocks:
            last = max(blocks, key=lambda block: block[0] + block[1])
            dataset.read(last[2], window=last[3])


def _check_sqlite(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        page_count = connection.execute("PRAGMA page_count").fetchone()[0]
    finally:
        connection.close()
    if os.path.getsize(path) < page_size * page_count:
        raise ValueError(f"{os.path.getsize(path)} bytes for {page_count} pages of {page_size}")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``path`` only if the block succeeds and the file is complete.

    A killed or failing writer therefore never leaves a truncated file under the final name, and leaves no
    temporary file. The written file is checked with :func:`check_written` before the rename (GDAL may report a
    failed write only on the console). A write that fails for want of space (or quota, or an I/O error) raises
    :class:`OutputWriteError` naming the folder and saying to free space and run again with ``-restart``;
    other errors go up unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        try:
            yield tmp
            if tmp.exists():
                check_written(tmp, path)
            os.replace(tmp, path)
        except (OSError, rasterio.errors.RasterioError) as exc:
            error = _write_error(path, exc, free_bytes(path.parent))  # measured before the file is removed
            if error is None or error is exc:
                raise
            raise error from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        for sidecar in tmp.parent.glob(tmp.name + ".*"):  # .aux.xml and friends
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()


def label_dtype(labels: list[int]) -> str:
    """Pixel type of a class map: the smallest unsigned type holding the largest label (iota2 compared the last
    label read: fixed here); labels above 65535 are refused when the ground truth is read."""
    return "uint8" if max(labels) <= 255 else "uint16"


def write_raster(path: str | Path, array: np.ndarray, grid: Grid, nodata=None, compress: str = "ZSTD",
                 colormap: dict | None = None, band_descriptions: list[str] | None = None) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a GeoTIFF, atomically.

    A write that does not fit (or fails otherwise) raises :class:`OutputWriteError` and leaves no file, see
    :func:`atomic_output`."""
    if array.ndim == 2:
        array = array[np.newaxis]
    profile = grid.profile(count=array.shape[0], dtype=array.dtype.name, nodata=nodata, compress=compress)
    with atomic_output(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array)
            if colormap:
                dst.write_colormap(1, colormap)
            if band_descriptions:
                for index, description in enumerate(band_descriptions, start=1):
                    dst.set_band_description(index, description)
    return Path(path)


ASSEMBLY_BUFFER_BYTES = 64 * 2**20
"""Most bytes :func:`assemble_chunks` holds for one strip of the target (it writes fewer bands at a time on wide
targets)."""


def assemble_chunks(chunks: list[Path], windows: list[list[int]], target: str | Path, profile: dict,
                    source_bands: list[int] | None = None, band_descriptions: list[str] | None = None,
                    bands_per_write: int = 32) -> Path:
    """Write chunk rasters into one raster, each at its window of the target, atomically.

    The target is written one strip of its blocks at a time (the rows of one row of tiles, or of one strip), each
    strip whole, from the rows of every chunk that crosses it: every block of the target is compressed and written
    once. Writing chunk after chunk instead left blocks shared by two chunks half-written; once GDAL's block cache
    could not hold a row of tiles (a features map of 37 bands on a 2000 px wide tile), it wrote them twice, the
    second copy appended to the file: a 1.08 GB tile map for 0.55 GB of data, 3.1 s instead of 1.4 s.

    Bands are copied a group of at most ``bands_per_write`` at a time (fewer on wide targets, to keep a strip
    under :data:`ASSEMBLY_BUFFER_BYTES`).

    Parameters
    ----------
    chunks
        The chunk rasters, in the order of ``windows``.
    windows
        ``[col_off, row_off, width, height]`` of each chunk in the target.
    target
        The assembled raster (written under a temporary name, renamed when complete).
    profile
        rasterio creation profile of the target (``count`` and ``dtype`` included; values are cast to it).
    source_bands
        The chunks' bands (1-based) written to bands 1, 2, ... of the target; default: bands 1 to ``count``.
    band_descriptions
        One description per band of the target, or None.
    bands_per_write
        Most bands read and written per call.

    Returns
    -------
    Path
    """
    count = profile["count"]
    source_bands = list(source_bands or range(1, count + 1))
    if len(source_bands) != count:
        raise ValueError(f"{len(source_bands)} source bands for a target of {count} bands")
    width, height = int(profile["width"]), int(profile["height"])
    itemsize = np.dtype(profile["dtype"]).itemsize
    with atomic_output(target) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for band, description in enumerate(band_descriptions or [], start=1):
                dst.set_band_description(band, description)
            block = max(1, int(dst.block_shapes[0][0]))  # 256 for tiles, a few rows for the strips of small grids
            strip = block * max(1, 256 // block)  # whole blocks, at least 256 rows: few reads of each chunk
            group = max(1, min(bands_per_write, ASSEMBLY_BUFFER_BYTES // max(1, strip * width * itemsize)))
            for first in range(0, count, group):
                bands = list(range(first + 1, min(first + group, count) + 1))
                for top in range(0, height, strip):
                    bottom = min(height, top + strip)
                    values = np.zeros((len(bands), bottom - top, width), profile["dtype"])
                    for path, (col, row, cols, rows) in zip(chunks, windows):
                        low, high = max(top, row), min(bottom, row + rows)
                        if low >= high:
                            continue
                        with rasterio.open(path) as src:
                            part = src.read(source_bands[first:first + len(bands)],
                                            window=Window(0, low - row, cols, high - low))
                        values[:, low - top:high - top, col:col + cols] = part
                    dst.write(values, bands, window=Window(0, top, width, bottom - top))
    return Path(target)


GDAL_TYPE_NAMES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
                   "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32", "float64": "Float64"}
"""GDAL's names of the pixel types a VRT band declares."""


def vrt_dataset(grid: Grid):
    """The root element of a GDAL VRT on ``grid`` (size, CRS, geotransform)."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.Element("VRTDataset", rasterXSize=str(grid.width), rasterYSize=str(grid.height))
    if grid.crs is not None:
        ElementTree.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = grid.crs.to_wkt()
    transform = grid.transform
    ElementTree.SubElement(root, "GeoTransform").text = ", ".join(
        repr(float(value)) for value in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e))
    return root


def vrt_band(root, band: int, dtype: str, description: str | None, nodata: float | None):
    """A ``VRTRasterBand`` element of ``root``, with its description and no-data value when given."""
    import xml.etree.ElementTree as ElementTree

    element = ElementTree.SubElement(root, "VRTRasterBand", dataType=GDAL_TYPE_NAMES[dtype], band=str(band))
    if description:
        ElementTree.SubElement(element, "Description").text = description
    if nodata is not None:
        ElementTree.SubElement(element, "NoDataValue").text = repr(float(nodata))
    return element


def write_chunks_vrt(chunks: list[Path], windows: list[list[int]], target: str | Path, grid: Grid,
                     nodata: float | None = None, band_descriptions: list[str] | None = None,
                     overviews: list[Path] | None = None) -> Path:
    """Write a GDAL VRT that shows chunk rasters at their windows of a grid, atomically: the chunks assembled
    without copying a pixel (a reader, or GDAL's COG driver, reads each chunk where the window lies).

    The chunks are named relative to the VRT (the output folder can move) and their sizes, types and blocks are
    written into it, so that opening the VRT opens no chunk. Each chunk is opened once here to check that it has
    the window's size and the first chunk's bands and type.

    Parameters
    ----------
    chunks
        The chunk rasters, in the order of ``windows``; together they cover the grid.
    windows
        ``[col_off, row_off, width, height]`` of each chunk in ``grid``.
    target
        The VRT (``.vrt``; written under a temporary name, renamed when complete).
    grid
        The grid of the mosaic.
    nodata
        No-data value of every band, or None.
    band_descriptions
        One description per band, or None.
    overviews
        Rasters (same bands) that GDAL is to read as the VRT's overviews, from the finest; they must lie in the
        VRT's folder or below it (named relative to it).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If a chunk's size differs from its window, or its bands or type from the first chunk's.
    """
    import xml.etree.ElementTree as ElementTree

    target = Path(target)
    sources = []
    for path, (col, row, cols, rows) in zip(chunks, windows):
        with rasterio.open(path) as src:
            if (src.width, src.height) != (cols, rows):
                raise ValueError(f"{path} is {src.width} x {src.height} pixels, its window {cols} x {rows}")
            block_rows, block_cols = src.block_shapes[0]
            sources.append((Path(path), (col, row, cols, rows), src.count, src.dtypes[0], block_cols, block_rows))
    count, dtype = sources[0][2], sources[0][3]
    for path, _window, bands, kind, _bx, _by in sources:
        if (bands, kind) != (count, dtype):
            raise ValueError(f"{path} has {bands} {kind} band(s), {sources[0][0]} {count} {dtype}")
    type_name = GDAL_TYPE_NAMES[dtype]
    root = vrt_dataset(grid)
    for band in range(1, count + 1):
        element = vrt_band(root, band, dtype, band_descriptions[band - 1] if band_descriptions else None, nodata)
        for path, (col, row, cols, rows), _bands, _kind, block_cols, block_rows in sources:
            source = ElementTree.SubElement(element, "SimpleSource")
            ElementTree.SubElement(source, "SourceFilename", relativeToVRT="1").text = os.path.relpath(
                path.resolve(), target.resolve().parent)
            ElementTree.SubElement(source, "SourceBand").text = str(band)
            ElementTree.SubElement(source, "SourceProperties", RasterXSize=str(cols), RasterYSize=str(rows),
                                   DataType=type_name, BlockXSize=str(block_cols), BlockYSize=str(block_rows))
            ElementTree.SubElement(source, "SrcRect", xOff="0", yOff="0", xSize=str(cols), ySize=str(rows))
            ElementTree.SubElement(source, "DstRect", xOff=str(col), yOff=str(row), xSize=str(cols), ySize=str(rows))
        for overview in overviews or ():
            element_overview = ElementTree.SubElement(element, "Overview")
            ElementTree.SubElement(element_overview, "SourceFilename", relativeToVRT="1").text = os.path.relpath(
                Path(overview).resolve(), target.resolve().parent)
            ElementTree.SubElement(element_overview, "SourceBand").text = str(band)
    with atomic_output(target) as tmp:
        ElementTree.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=False)
    return target


@functools.lru_cache(maxsize=1)
def overview_kernel():
    """The compiled 2 x 2 average (:mod:`iota2.core.overview_kernel`), or None when numba cannot provide it (numpy's
    version runs then, same values)."""
    try:
        from iota2.core import overview_kernel as kernel

        kernel.average_2x2(np.zeros((2, 2, 1), np.float32), 0.0, np.empty((1, 1, 1), np.float32))
        kernel.average_2x2(np.zeros((1, 2, 2), np.float32).transpose(1, 2, 0), 0.0, np.empty((1, 1, 1), np.float32))
    except Exception as exc:  # noqa: BLE001 - any numba failure means numpy's version
        LOGGER.debug("compiled overview average not available (%s: %s)", type(exc).__name__, exc)
        return None
    return kernel


AVERAGE_BANDS = 8
"""Bands :func:`average_levels` averages at a time (its float64 sums are 8 bytes a pixel of those bands)."""


def average_levels(values: np.ndarray, nodata: float, factors: list[int]) -> list[np.ndarray]:
    """Average overviews of a (rows, cols, bands) block, as GDAL makes a raster's ``average`` overviews.

    Each level is computed from the previous one (GDAL cascades: level 4 is the mean of the level-2 pixels, not
    of the 16 full-resolution ones), as the mean of the pixels that are not ``nodata`` in each 2 x 2 block (sums
    in float64, rounded once to float32: GDAL's values bit for bit), ``nodata`` where all four are. The block's
    rows and columns must be multiples of the largest factor (a chunk whose rows start on one).

    Parameters
    ----------
    values
        (rows, cols, bands) float32.
    nodata
        The no-data value.
    factors
        2, 4, 8, ...: the levels wanted, each twice the previous.

    Returns
    -------
    list of numpy.ndarray
        (bands, rows / f, cols / f) float32 per factor, ready for a band-interleaved write.
    """
    rows, cols, _bands = values.shape
    if not factors:
        return []
    if rows % factors[-1] or cols % factors[-1] or factors != [2 ** k for k in range(1, len(factors) + 1)]:
        raise ValueError(f"a {rows} x {cols} block cannot hold levels {factors}: rows and columns must be multiples "
                         "of the largest, and levels go 2, 4, 8, ...")
    bands = values.shape[2]
    levels = [np.empty((bands, rows // factor, cols // factor), np.float32) for factor in factors]
    kernel = overview_kernel()
    if kernel is not None:
        previous = values
        for level in levels:
            kernel.average_2x2(previous, float(nodata), level)
            previous = level.transpose(1, 2, 0)
        return levels
    for first in range(0, bands, AVERAGE_BANDS):  # a few bands at a time: the float64 sums stay small
        current = values[:, :, first:first + AVERAGE_BANDS].transpose(2, 0, 1)
        for level in levels:
            group, height, width = current.shape
            valid = current != nodata
            sums = np.where(valid, current, 0).astype(np.float64).reshape(group, height // 2, 2, width // 2, 2)
            counts = valid.reshape(group, height // 2, 2, width // 2, 2).sum(axis=(2, 4))
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums.sum(axis=(2, 4)) / counts
            level[first:first + group] = np.where(counts > 0, means, nodata)
            current = level[first:first + group]
    return levels


def align_stripes(windows: list[list[int]], multiple: int, width: int, height: int) -> list[list[int]] | None:
    """Full-width stripe windows with their row boundaries moved to the nearest multiple of ``multiple`` (the last
    stripe ends at ``height``), or None when the windows are not full-width stripes or a stripe would vanish."""
    if multiple <= 1:
        return windows
    if any(col != 0 or cols != width for col, _row, cols, _rows in windows):
        return None
    edges = [row for _col, row, _cols, _rows in windows] + [height]
    moved = [0] + [int(round(edge / multiple)) * multiple for edge in edges[1:-1]] + [height]
    if any(low >= high for low, high in zip(moved[:-1], moved[1:])):
        return None
    return [[0, low, width, high - low] for low, high in zip(moved[:-1], moved[1:])]


MAX_CHUNKS_PER_TILE = 10_000
"""Most chunks ``user_fixed`` may cut a tile into: each chunk is a task (1 x 1 chunks of a small tile made 80 000)."""

SMALL_CHUNK_PIXELS = 128 * 128
"""Chunks smaller than this (pixels) spend more time on task overhead (scheduling, opening every input, writing
the chunk's maps) than on computing: ``user_fixed`` warns."""

_WARNED_SIZES: set[tuple[int, int]] = set()


def _check_fixed_chunks(width: int, height: int, size_x: int, size_y: int) -> None:
    """Refuse a ``user_fixed`` size that cuts a ``width`` x ``height`` tile into more than
    :data:`MAX_CHUNKS_PER_TILE` chunks; warn (once per size) about chunks under :data:`SMALL_CHUNK_PIXELS`."""
    count = math.ceil(width / size_x) * math.ceil(height / size_y)
    if count > MAX_CHUNKS_PER_TILE:
        side = math.ceil(math.sqrt(width * height / MAX_CHUNKS_PER_TILE))
        while math.ceil(width / side) * math.ceil(height / side) > MAX_CHUNKS_PER_TILE:
            side += 1
        side = max(side, math.isqrt(SMALL_CHUNK_PIXELS))
        raise ConfigError(f"python_data_managing.chunk_size_x x chunk_size_y = {size_x} x {size_y} cuts a "
                          f"{width} x {height} tile into {count} chunks, one task each (at most "
                          f"{MAX_CHUNKS_PER_TILE}); use at least {side} x {side}, or chunk_size_mode: auto")
    if size_x * size_y < SMALL_CHUNK_PIXELS and count > 1 and (size_x, size_y) not in _WARNED_SIZES:
        _WARNED_SIZES.add((size_x, size_y))
        LOGGER.warning("python_data_managing.chunk_size_x x chunk_size_y = %d x %d: %d chunks per tile of %d pixels "
                       "each; the overhead of a task (scheduling, opening the inputs, writing the maps) outweighs "
                       "so small a chunk: use at least %d x %d, or chunk_size_mode: auto", size_x, size_y, count,
                       size_x * size_y, math.isqrt(SMALL_CHUNK_PIXELS), math.isqrt(SMALL_CHUNK_PIXELS))


def chunk_windows(grid: Grid, mode: str = "auto", number_of_chunks: int | None = None,
                  chunk_size_x: int = 50, chunk_size_y: int = 50, bytes_per_pixel: int | None = None,
                  memory_mb: int = 1024, multiple_of: int = 1) -> list[Window]:
    """Cut a grid into chunk windows.

    Parameters
    ----------
    mode
        ``"split_number"``: ``number_of_chunks`` horizontal stripes of full width (boundaries
        ``floor(linspace(0, height, n + 1))``; columns are split too when n exceeds the rows, as iota2);
        ``"user_fixed"``: ``chunk_size_x`` x ``chunk_size_y`` tiles from the origin, at most
        :data:`MAX_CHUNKS_PER_TILE` per tile (a warning below :data:`SMALL_CHUNK_PIXELS` pixels a chunk);
        ``"auto"``: full-width stripes as tall as ``memory_mb`` allows at ``bytes_per_pixel``, their
        number rounded up to a multiple of ``multiple_of`` (the tasks run in parallel) so that no worker
        idles in the last wave.
    """
    height, width = grid.height, grid.width
    if mode == "split_number":
        if not number_of_chunks:
            raise ConfigError("python_data_managing.number_of_chunks must be set when chunk_size_mode is "
                              "'split_number'")
        if number_of_chunks > width + height:
            raise ConfigError(f"python_data_managing.number_of_chunks = {number_of_chunks} is larger than the tile "
                              f"({width}x{height} pixels) can be split; use at most {height}")
        if number_of_chunks <= height:
            edges = np.floor(np.linspace(0, height, number_of_chunks + 1)).astype(int)
            return [Window(0, int(a), width, int(b - a)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        columns = math.ceil(number_of_chunks / height)
        col_edges = np.floor(np.linspace(0, width, columns + 1)).astype(int)
        rows_per = math.ceil(number_of_chunks / columns)
        row_edges = np.floor(np.linspace(0, height, rows_per + 1)).astype(int)
        return [Window(int(c0), int(r0), int(c1 - c0), int(r1 - r0))
                for r0, r1 in zip(row_edges[:-1], row_edges[1:])
                for c0, c1 in zip(col_edges[:-1], col_edges[1:]) if r1 > r0 and c1 > c0]
    if mode == "user_fixed":
        _check_fixed_chunks(width, height, chunk_size_x, chunk_size_y)
        return [Window(col, row, min(chunk_size_x, width - col), min(chunk_size_y, height - row))
                for row in range(0, height, chunk_size_y) for col in range(0, width, chunk_size_x)]
    if mode == "auto":
        per_pixel = max(int(bytes_per_pixel or 1), 1)
        rows = max(1, int(memory_mb * 1024 * 1024 // (per_pixel * width)))
        rows = min(rows, height)
        count = math.ceil(height / rows)
        if multiple_of > 1 and count > 1:
            count = min(height, math.ceil(count / multiple_of) * multiple_of)
        edges = np.floor(np.linspace(0, height, count + 1)).astype(int)
        return [Window(0, int(a), width, int(b - a)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    raise ConfigError(f"python_data_managing.chunk_size_mode = {mode!r}; use 'auto', 'split_number' or 'user_fixed'")


def pad_window(window: Window, padding: int, grid: Grid) -> tuple[Window, tuple[slice, slice]]:
    """Grow ``window`` by ``padding`` pixels (clipped to the grid) and return the slices that crop it back."""
    if padding <= 0:
        return window, (slice(0, int(window.height)), slice(0, int(window.width)))
    col0 = max(0, int(window.col_off) - padding)
    row0 = max(0, int(window.row_off) - padding)
    col1 = min(grid.width, int(window.col_off + window.width) + padding)
    row1 = min(grid.height, int(window.row_off + window.height) + padding)
    padded = Window(col0, row0, col1 - col0, row1 - row0)
    top = int(window.row_off) - row0
    left = int(window.col_off) - col0
    return padded, (slice(top, top + int(window.height)), slice(left, left + int(window.width)))
