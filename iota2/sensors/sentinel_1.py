"""Sentinel-1 GRD backscatter: configuration file, file naming, reprojection, speckle filter, gap-filling.

The sensor is enabled by ``chain.s1_path``, the path of the Sentinel-1 processor configuration file
(an INI file, iota2's ``SARconfig.cfg``). It has no tile grid of its own (``provides_grid = False``):
acquisitions are read onto the grid of the optical sensor of the tile.

Differences with iota2: there is no calibration nor orthorectification here. Inputs must already be
calibrated, terrain-corrected GRD GeoTIFFs in **linear** backscatter (e.g. Copernicus RTC / GRD-COG
products), in any CRS; ``srtm``, ``geoidfile``, ``tilesshapefile`` and ``srtmshapefile`` are accepted
and ignored. See ``docs/sentinel_1.md`` for the full description.

File naming rule (case-insensitive, ``.tif`` / ``.tiff`` files anywhere under ``s1images``): the name
(without extension) split on ``_`` must

* start with ``s1a``, ``s1b``, ``s1c`` or ``s1d`` (the platform);
* contain a field ``YYYYMMDDTHHMMSS`` (the first such field gives the acquisition date);
* contain a field ``ASC`` or ``DES`` (the orbit direction);
* optionally contain a field ``vv`` or ``vh``: the file holds that polarisation in band 1. Without it,
  the file holds both, in the bands whose descriptions are ``VV`` and ``VH``.

e.g. ``s1a_31TCJ_20180105T060512_DES_grd.tif`` (two bands) or ``s1b_20180108T174011_ASC_vh_rtc.tif``.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from iota2.core.config import Param, Section
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.raster import Grid, atomic_output, open_input_raster, open_raster, read_onto_grid
from iota2.core.sensor import FeatureSpec, Sensor, SensorData
from iota2.core.timeseries import date_grid, day_numbers, gapfill_linear

LOGGER = logging.getLogger(__name__)

#: orbit directions in stacking order (iota2's label order: des before asc)
ORBITS = ("DES", "ASC")
#: polarisations in stacking order
POLARISATIONS = ("vv", "vh")
#: band names of :class:`SensorData` (orbit-major): ``vv_DES``, ``vh_DES``, ``vv_ASC``, ``vh_ASC``
BAND_NAMES = tuple(f"{pol}_{orbit}" for orbit in ORBITS for pol in POLARISATIONS)
#: default features: every band over every date, orbit-major, then polarisation, then date
#: (``sentinel1_des_vv_<date>`` ...)
FEATURE_SPEC = FeatureSpec(layout="band_major",
                           band_labels=tuple(f"{orbit.lower()}_{pol}" for orbit in ORBITS for pol in POLARISATIONS),
                           nodata=0.0, section="Sentinel_1")

#: keys of the configuration file: section -> {key (lower-case): default, or MANDATORY}
MANDATORY = object()
CONFIG_KEYS = {
    "Paths": {"output": MANDATORY, "s1images": MANDATORY, "srtm": "", "geoidfile": ""},
    "Processing": {"tiles": MANDATORY, "tilesshapefile": "", "referencesfolder": MANDATORY,
                   "srtmshapefile": "", "rasterpattern": MANDATORY, "gapfilling_interpolation": "linear",
                   "temporalresolution": MANDATORY, "borderthreshold": "1e-3", "ramperprocess": "5000",
                   # iota2 keys accepted and ignored
                   "manyprojection": "", "filteringmode": "multi", "outputspatialresolution": "",
                   "orthorectification_gridspacing": "", "mode": "", "writetemporaryfiles": "",
                   "getmasks": "", "outputstack": ""},
    "Filtering": {"window_radius": "2"},
    "Features": {"expression": ""},
}

_DATE_FIELD = re.compile(r"^(\d{8})t\d{6}$")
_PLATFORM = re.compile(r"^s1[a-d]$")


# ----------------------------------------------------------------------------------------------------
# configuration file
# ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class S1Config:
    """The parsed Sentinel-1 configuration file.

    Attributes
    ----------
    path
        The file read.
    output
        Folder of the preprocessed stacks (``iota2 s1-preprocess``).
    s1images
        Folder holding the GRD GeoTIFFs (searched recursively).
    tiles
        Tiles to process, as written in the file (without the leading ``T``, e.g. ``31TCJ``).
    references_folder, raster_pattern
        Where the S2 reference image of a tile is found (:func:`find_reference`).
    interpolation
        ``linear`` or ``spline``.
    temporal_resolution
        Days between two dates of the gap-filling grid.
    border_threshold
        Values below it are invalid (no-data border of GRD products).
    window_radius
        Radius of the speckle filter (2 gives a 5 x 5 window).
    """

    path: Path
    output: Path
    s1images: Path
    tiles: tuple[str, ...]
    references_folder: Path
    raster_pattern: str
    interpolation: str
    temporal_resolution: int
    border_threshold: float
    window_radius: int
    ram_per_process: float


def _section_of(key: str) -> str | None:
    for section, keys in CONFIG_KEYS.items():
        if key in keys:
            return section
    return None


def _raw_config(path: Path) -> dict[str, dict[str, str]]:
    """``{section: {lower-case key: value}}`` of an INI file with or without section headers."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the Sentinel-1 configuration file '{path}' ({exc}); check chain.s1_path") \
            from exc
    has_headers = any(re.match(r"^\s*\[[^\]]+\]\s*$", line) for line in text.splitlines())
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text if has_headers else "[__root__]\n" + text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"Sentinel-1 configuration file '{path}' cannot be parsed: {exc}") from exc
    known = {name.lower(): name for name in CONFIG_KEYS}
    values: dict[str, dict[str, str]] = {name: {} for name in CONFIG_KEYS}
    for section in parser.sections():
        for key, value in parser.items(section):
            if section == "__root__" or section.lower() not in known:
                target = _section_of(key)
                if target is None:
                    LOGGER.warning("%s: unknown key '%s' ignored", path, key)
                    continue
            else:
                target = known[section.lower()]
            values[target][key] = value.strip()
    return values


@functools.lru_cache(maxsize=32)
def _read_config_cached(path: str, mtime: float) -> S1Config:
    path_obj = Path(path)
    raw = _raw_config(path_obj)
    resolved: dict[str, str] = {}
    for section, keys in CONFIG_KEYS.items():
        for key, default in keys.items():
            value = raw[section].get(key)
            if value in (None, ""):
                if default is MANDATORY:
                    raise ConfigError(f"Sentinel-1 configuration file '{path}' lacks the key '{key}' of section "
                                      f"[{section}]; add e.g. '{key} = ...' (see docs/sentinel_1.md)")
                value = default
            resolved[key] = value

    def number(key, kind):
        try:
            return kind(resolved[key])
        except ValueError as exc:
            raise ConfigError(f"Sentinel-1 configuration file '{path}': {key} = {resolved[key]!r} is not "
                              f"a{'n integer' if kind is int else ' number'}") from exc

    interpolation = resolved["gapfilling_interpolation"].lower()
    if interpolation not in ("linear", "spline"):
        raise ConfigError(f"Sentinel-1 configuration file '{path}': gapFilling_interpolation = "
                          f"{resolved['gapfilling_interpolation']!r}; use linear or spline")
    resolution = number("temporalresolution", int)
    radius = number("window_radius", int)
    if resolution <= 0 or radius < 0:
        raise ConfigError(f"Sentinel-1 configuration file '{path}': temporalResolution must be > 0 and "
                          "window_radius >= 0")
    tiles = tuple(tile.strip() for tile in re.split(r"[,\s]+", resolved["tiles"]) if tile.strip())
    return S1Config(path=path_obj, output=Path(resolved["output"]), s1images=Path(resolved["s1images"]),
                    tiles=tiles, references_folder=Path(resolved["referencesfolder"]),
                    raster_pattern=resolved["rasterpattern"], interpolation=interpolation,
                    temporal_resolution=resolution, border_threshold=number("borderthreshold", float),
                    window_radius=radius, ram_per_process=number("ramperprocess", float))


def read_config(path: str | Path) -> S1Config:
    """Parse a Sentinel-1 configuration file.

    Keys are case-insensitive. The file may have the ``[Paths]``, ``[Processing]``, ``[Filtering]``
    (and ``[Features]``) headers of iota2's ``SARconfig.cfg``, or no header at all: keys are then
    assigned to their sections by name.

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, a mandatory key is missing (the message names the file
        and the key) or a value is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Sentinel-1 configuration file '{path}' does not exist; chain.s1_path must be the path "
                          "of the S1 processor configuration file")
    return _read_config_cached(str(path.resolve()), path.stat().st_mtime)


def tile_code(tile: str) -> str:
    """The tile name as written in the configuration file: ``T31TCJ`` -> ``31TCJ``."""
    return tile[1:] if len(tile) == 6 and tile[0] in "Tt" else tile


# ----------------------------------------------------------------------------------------------------
# acquisitions
# ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class S1File:
    """One GeoTIFF of an acquisition: its bands holding VV and VH (1-based band indexes)."""

    path: Path
    date: str
    orbit: str
    bands: dict  # {"vv": index, "vh": index} of the polarisations present in the file


def parse_name(path: str | Path) -> tuple[str, str, str | None]:
    """Date ``YYYYMMDD``, orbit (``ASC``/``DES``) and polarisation (``vv``, ``vh`` or ``None``) of a file name.

    Raises
    ------
    InputDataError
        If the name does not follow the naming rule of this module (the message names the file).
    """
    path = Path(path)
    fields = path.stem.lower().split("_")
    rule = ("Sentinel-1 files must be named s1<a|b|c|d>_..._<YYYYMMDDTHHMMSS>_..._<ASC|DES>[_<vv|vh>]_....tif, "
            "e.g. s1a_31TCJ_20180105T060512_DES_grd.tif (see docs/sentinel_1.md)")
    if not _PLATFORM.match(fields[0]):
        raise InputDataError(f"'{path}': the name does not start with s1a_, s1b_, s1c_ or s1d_. {rule}")
    dates = [match.group(1) for match in map(_DATE_FIELD.match, fields) if match]
    if not dates:
        raise InputDataError(f"'{path}': no acquisition time field YYYYMMDDTHHMMSS in the name. {rule}")
    orbits = {field.upper() for field in fields if field in ("asc", "des")}
    if len(orbits) != 1:
        raise InputDataError(f"'{path}': the name must contain exactly one orbit field ASC or DES. {rule}")
    pols = {field for field in fields if field in POLARISATIONS}
    if len(pols) > 1:
        raise InputDataError(f"'{path}': the name contains both vv and vh; a file holding both polarisations "
                             "must not name either (its bands are described VV and VH). " + rule)
    try:
        day_numbers([dates[0]])
    except ValueError as exc:
        raise InputDataError(f"'{path}': {dates[0]} is not a valid date. {rule}") from exc
    return dates[0], orbits.pop(), (pols.pop() if pols else None)


@functools.lru_cache(maxsize=4096)
def _file_info(path: str, mtime: float) -> tuple[dict, tuple, str]:
    """(polarisation band indexes, bounds, CRS WKT) of a file, from its header."""
    date, orbit, pol = parse_name(path)
    with open_raster(path) as src:
        if src.crs is None:
            raise InputDataError(f"Sentinel-1 file '{path}' has no CRS; inputs must be terrain-corrected, "
                                 "georeferenced GeoTIFFs")
        if pol is not None:
            bands = {pol: 1}
        else:
            descriptions = [(description or "").strip().lower() for description in src.descriptions]
            bands = {p: descriptions.index(p) + 1 for p in POLARISATIONS if p in descriptions}
            if not bands:
                raise InputDataError(f"Sentinel-1 file '{path}' names no polarisation (_vv_ or _vh_) and none of "
                                     "its bands is described 'VV' or 'VH'; rename it or set the band descriptions")
        return bands, tuple(src.bounds), src.crs.to_wkt()


def list_files(folder: Path) -> list[S1File]:
    """Every acquisition file under ``folder`` (recursive), sorted by date, orbit and name."""
    if not folder.is_dir():
        raise InputDataError(f"Sentinel-1 image folder '{folder}' does not exist; check s1images in the "
                             "Sentinel-1 configuration file")
    files = []
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if not name.lower().endswith((".tif", ".tiff")):
                continue
            path = Path(root) / name
            date, orbit, _ = parse_name(path)
            bands, _, _ = _file_info(str(path), path.stat().st_mtime)
            files.append(S1File(path, date, orbit, bands))
    return sorted(files, key=lambda item: (item.date, item.orbit, str(item.path)))


def covers(path: Path, grid: Grid) -> bool:
    """Whether the bounds of ``path`` intersect ``grid`` (header only)."""
    _, bounds, wkt = _file_info(str(path), path.stat().st_mtime)
    left, bottom, right, top = transform_bounds(rasterio.crs.CRS.from_wkt(wkt), grid.crs, *bounds, densify_pts=21)
    g_left, g_bottom, g_right, g_top = grid.bounds
    return left < g_right and right > g_left and bottom < g_top and top > g_bottom


def _warp(path: Path, band: int, grid: Grid) -> np.ndarray:
    """Band ``band`` of ``path`` resampled (bilinear) onto ``grid``; 0 outside the file and at no-data.

    The warp uses an (almost) exact transformer (``tolerance=1e-9``; GDAL rejects 0), so any window of a grid gets the same values
    as the whole grid. Even a file aligned with the grid is warped: only the warper turns its nodata into 0
    (see :func:`iota2.core.raster.read_onto_grid`).
    """
    values = read_onto_grid(path, grid, Resampling.bilinear, 0.0, 0.0, bands=band, force_warp=True, tolerance=1e-9,
                            label="Sentinel-1 file")
    values = values.astype(np.float32, copy=False)
    values[~np.isfinite(values)] = 0.0
    return values


def _padded(grid: Grid, radius: int) -> Grid:
    """``grid`` extended by ``radius`` pixels on every side."""
    transform = grid.transform @ Affine.translation(-radius, -radius)
    return Grid(grid.crs, transform, grid.width + 2 * radius, grid.height + 2 * radius)


def read_acquisitions(files: list[S1File], orbit: str, grid: Grid, border_threshold: float
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Mosaic the acquisitions of one orbit onto ``grid``, one image per date.

    Several files of the same date and orbit are mosaicked by pixel maximum. A pixel is invalid where
    a polarisation is below ``border_threshold`` (no-data border) or missing.

    Returns
    -------
    dates : list of str
        Dates of the orbit, chronological.
    values : numpy.ndarray
        (dates, 2, rows, cols) float32 linear backscatter (vv, vh); 0 where invalid.
    invalid : numpy.ndarray
        (dates, rows, cols) bool.
    """
    dates = sorted({item.date for item in files if item.orbit == orbit})
    values = np.zeros((len(dates), 2, grid.height, grid.width), dtype=np.float32)
    for item in files:
        if item.orbit != orbit:
            continue
        index = dates.index(item.date)
        for pol_index, pol in enumerate(POLARISATIONS):
            if pol in item.bands:
                np.maximum(values[index, pol_index], _warp(item.path, item.bands[pol], grid),
                           out=values[index, pol_index])
    invalid = np.any(values < border_threshold, axis=1)
    values[np.broadcast_to(invalid[:, np.newaxis], values.shape)] = 0.0
    return dates, values, invalid


def speckle_filter(values: np.ndarray, invalid: np.ndarray, radius: int) -> np.ndarray:
    """Multi-temporal (Quegan-like) speckle filter of one polarisation of one orbit.

    ``filtered_t = m_t x mean over valid dates of (I_t / m_t)`` with ``m_t`` the local mean of date t
    over the valid pixels of a (2 radius + 1)^2 window. Invalid pixels stay 0. The border of the array
    (``radius`` pixels) is computed with truncated windows: callers pad their reads by ``radius``.

    Parameters
    ----------
    values
        (dates, rows, cols) linear intensities.
    invalid
        (dates, rows, cols) bool.
    radius
        Window radius; 0 returns the input.
    """
    if radius <= 0 or values.shape[0] == 0:
        return values.astype(np.float32, copy=True)
    size = 2 * radius + 1
    valid = (~invalid).astype(np.float64)
    data = np.where(invalid, 0.0, values).astype(np.float64)
    from scipy import ndimage  # scipy imported where used: plugin discovery loads every sensor module

    sums = ndimage.uniform_filter(data, size=(1, size, size), mode="constant")
    counts = ndimage.uniform_filter(valid, size=(1, size, size), mode="constant")
    local_mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 1e-6)
    ratio = np.divide(data, local_mean, out=np.zeros_like(data), where=(local_mean > 0) & (valid > 0))
    n_valid = valid.sum(axis=0)
    mean_ratio = np.divide(ratio.sum(axis=0), n_valid, out=np.zeros_like(n_valid), where=n_valid > 0)
    filtered = local_mean * mean_ratio[np.newaxis]
    filtered[invalid] = 0.0
    return filtered.astype(np.float32, copy=False)


def gapfill_spline(values: np.ndarray, invalid: np.ndarray, input_dates: list[str],
                   output_dates: list[str], floor: float | None = None) -> np.ndarray:
    """Cubic-spline temporal gap-filling (``not-a-knot`` splines through each pixel's valid dates).

    Pixels are grouped by their pattern of valid dates and each group is interpolated at once
    (vectorised). Outside a pixel's valid range the nearest valid value is held; with fewer than
    three valid dates the interpolation is linear; a pixel without valid date gets 0 (like
    :func:`iota2.core.timeseries.gapfill_linear`). A spline overshoots between observations; ``floor``
    (0 for linear backscatter, which cannot be negative) bounds the values from below.

    Parameters
    ----------
    values
        (T, B, rows, cols) observations.
    invalid
        (T, rows, cols) bool.
    input_dates, output_dates
        ``YYYYMMDD`` dates.

    Returns
    -------
    numpy.ndarray
        (len(output_dates), B, rows, cols) float32.
    """
    n_dates, n_bands, rows, cols = values.shape
    result = gapfill_linear(values, invalid, input_dates, output_dates)
    if n_dates < 3:
        return result
    in_days = day_numbers(list(input_dates)).astype(np.float64)
    out_days = day_numbers(list(output_dates)).astype(np.float64)
    valid = ~np.asarray(invalid, dtype=bool).reshape(n_dates, rows * cols)
    flat = values.reshape(n_dates, n_bands, rows * cols)
    out_flat = result.reshape(len(out_days), n_bands, rows * cols)
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for pattern_index, pattern in enumerate(patterns):
        if pattern.sum() < 3:
            continue  # linear (already computed)
        pixels = np.flatnonzero(inverse == pattern_index)
        x = in_days[pattern]
        from scipy.interpolate import CubicSpline

        spline = CubicSpline(x, flat[pattern][:, :, pixels].astype(np.float64), axis=0)
        out_flat[:, :, pixels] = spline(np.clip(out_days, x[0], x[-1])).astype(np.float32)
    if floor is not None:
        np.maximum(result, np.float32(floor), out=result)
    return result


# ----------------------------------------------------------------------------------------------------
# reference grids and preprocessing
# ----------------------------------------------------------------------------------------------------

def find_reference(cfg: S1Config, tile: str) -> Path:
    """The S2 reference image of ``tile``: the first GeoTIFF (sorted paths) under ``referencesfolder``
    whose path contains the tile code (``31TCJ``, so ``T31TCJ`` folders match) and whose file name
    contains ``rasterpattern``."""
    folder = cfg.references_folder
    code = tile_code(tile).lower()
    if folder.is_dir():
        for root, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                if (name.lower().endswith((".tif", ".tiff")) and cfg.raster_pattern in name
                        and code in str(path.relative_to(folder)).lower()):
                    return path
    raise InputDataError(f"no reference image for tile {tile} in '{folder}': expected a GeoTIFF whose path contains "
                         f"'{tile_code(tile)}' and whose name contains '{cfg.raster_pattern}' (referencesfolder and "
                         f"rasterpattern of '{cfg.path}')")


def stack_path(cfg: S1Config, tile: str, pol: str, orbit: str) -> Path:
    """``<output>/<tile>/<tile>_<pol>_<ORBIT>_STACK.tif``."""
    return cfg.output / tile / f"{tile}_{pol}_{orbit}_STACK.tif"


FINGERPRINT_TAG = "IOTA2_S1_FINGERPRINT"
"""Tag of a preprocessed stack: what it was computed from (see :func:`stack_fingerprint`)."""


def stack_fingerprint(cfg: S1Config, files: list[S1File], grid: Grid) -> str:
    """Digest of what the stack of one orbit depends on: its files (names and sizes), the filter radius, the
    border threshold and the tile grid. A stack whose tag differs is stale and is not used."""
    payload = {"files": sorted((item.path.name, item.path.stat().st_size) for item in files),
               "window_radius": cfg.window_radius, "border_threshold": cfg.border_threshold,
               "grid": [grid.crs.to_wkt(), list(grid.transform)[:6], grid.width, grid.height]}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _usable_stacks(paths: tuple[str, ...], mtimes: tuple[float, ...], fingerprint: str) -> bool:
    """Whether every stack of ``paths`` carries ``fingerprint`` (checked once per file version)."""
    stale = []
    for path in paths:
        with open_raster(path) as src:
            if src.tags().get(FINGERPRINT_TAG) != fingerprint:
                stale.append(path)
    if stale:
        LOGGER.warning("Sentinel-1 stack(s) %s were computed from other images or settings; they are ignored and the "
                       "values are computed in memory (run 'iota2 s1-preprocess' again to refresh them)",
                       ", ".join(f"'{path}'" for path in stale))
    return not stale


def preprocessed_stacks(cfg: S1Config, tile: str, orbit: str, files: list[S1File], grid: Grid) -> list[Path] | None:
    """The (vv, vh) stacks of ``orbit`` written by ``iota2 s1-preprocess`` for ``tile``, if they exist and match
    the current files, settings and grid; else None."""
    paths = [stack_path(cfg, tile, pol, orbit) for pol in POLARISATIONS]
    if not all(path.is_file() for path in paths):
        return None
    fingerprint = stack_fingerprint(cfg, [item for item in files if item.orbit == orbit], grid)
    if not _usable_stacks(tuple(map(str, paths)), tuple(path.stat().st_mtime for path in paths), fingerprint):
        return None
    return paths


def read_stacks(paths: list[Path], window: Window) -> tuple[np.ndarray, np.ndarray]:
    """``window`` of preprocessed (vv, vh) stacks: (dates, 2, rows, cols) filtered values and (dates, rows, cols)
    invalid flags (the stacks hold 0 where invalid)."""
    bands = []
    for path in paths:
        with open_input_raster(path) as src:
            bands.append(src.read(window=window).astype(np.float32, copy=False))
    values = np.stack(bands, axis=1)
    return values, np.any(values == 0.0, axis=1)


def preprocess_tile(cfg: S1Config, tile: str, rows_per_block: int = 512) -> list[Path]:
    """Write the filtered stacks of ``tile`` reprojected onto its S2 reference grid.

    For each polarisation and orbit: ``<output>/<tile>/<tile>_<pol>_<ORBIT>_STACK.tif`` (float32, one band
    per date of that orbit, 0 where invalid) with ``<pol>_<ORBIT>_dates_input.txt`` (its dates, one per
    line) and ``<pol>_<ORBIT>_dates_interpolation.txt`` (the gap-filling grid of the tile, from its first to
    its last acquisition of either orbit: the chain's grid for this tile alone). Blocks of rows are read
    with a padding of ``window_radius``, so the result equals a whole-tile computation.

    Returns
    -------
    list of Path
        The stacks written.
    """
    tile = tile if tile.upper().startswith("T") and len(tile) == 6 else f"T{tile}"
    grid = Grid.from_file(find_reference(cfg, tile))
    files = [item for item in list_files(cfg.s1images) if covers(item.path, grid)]
    if not files:
        raise InputDataError(f"S1 tile not covered: no Sentinel-1 file of '{cfg.s1images}' covers tile {tile}")
    folder = cfg.output / tile
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    radius = cfg.window_radius
    all_dates = sorted({item.date for item in files})
    grid_dates = date_grid(all_dates[0], all_dates[-1], cfg.temporal_resolution)  # both orbits: the chain's grid
    for orbit in ORBITS:
        dates = sorted({item.date for item in files if item.orbit == orbit})
        if not dates:
            continue
        paths = [stack_path(cfg, tile, pol, orbit) for pol in POLARISATIONS]
        profile = grid.profile(len(dates), "float32", nodata=0.0)
        with atomic_output(paths[0]) as tmp_vv, atomic_output(paths[1]) as tmp_vh:
            with rasterio.open(tmp_vv, "w", **profile) as out_vv, rasterio.open(tmp_vh, "w", **profile) as out_vh:
                for row in range(0, grid.height, rows_per_block):
                    window = Window(0, row, grid.width, min(rows_per_block, grid.height - row))
                    padded = _padded(grid.window_grid(window), radius)
                    _, values, invalid = read_acquisitions(files, orbit, padded, cfg.border_threshold)
                    inner = (slice(None), slice(radius, radius + int(window.height)),
                             slice(radius, radius + int(window.width)))
                    for pol_index, out in enumerate((out_vv, out_vh)):
                        filtered = speckle_filter(values[:, pol_index], invalid, radius)
                        out.write(filtered[inner], window=window)
                fingerprint = stack_fingerprint(cfg, [item for item in files if item.orbit == orbit], grid)
                for out in (out_vv, out_vh):
                    out.descriptions = tuple(dates)
                    out.update_tags(**{FINGERPRINT_TAG: fingerprint})
        for pol in POLARISATIONS:
            (folder / f"{pol}_{orbit}_dates_input.txt").write_text("".join(f"{d}\n" for d in dates))
            (folder / f"{pol}_{orbit}_dates_interpolation.txt").write_text("".join(f"{d}\n" for d in grid_dates))
        written += paths
    return written


def s1_preprocess_command(argv: list[str]) -> int:
    """``iota2 s1-preprocess <s1.cfg> [--tile T31TCJ]``: write the filtered stacks of the tiles."""
    parser = argparse.ArgumentParser(prog="iota2 s1-preprocess",
                                     description="Filter and reproject Sentinel-1 images onto the S2 reference "
                                                 "grids of the tiles of a Sentinel-1 configuration file.")
    parser.add_argument("config", help="Sentinel-1 configuration file (INI)")
    parser.add_argument("--tile", action="append", help="tile to process (repeatable); default: every tile of "
                                                        "the file")
    args = parser.parse_args(argv)
    cfg = read_config(args.config)
    tiles = args.tile or list(cfg.tiles)
    for tile in tiles:
        for path in preprocess_tile(cfg, tile):
            print(path)
    return 0


# ----------------------------------------------------------------------------------------------------
# the sensor
# ----------------------------------------------------------------------------------------------------

class Sentinel1(Sensor):
    """Sentinel-1 GRD backscatter of one tile, read onto the tile grid of the optical sensor.

    Features are the speckle-filtered, gap-filled linear backscatter, ordered orbit (DES, ASC), then
    polarisation (vv, vh), then date, labelled ``sentinel1_<des|asc>_<vv|vh>_<YYYYMMDD>``. Both orbits
    are gap-filled onto one date grid shared by all tiles (:meth:`interpolation_dates`); an orbit
    without any acquisition on the tile gives zeros.
    """

    name = "Sentinel1"
    config_section = "Sentinel_1"
    path_key = "s1_path"
    native_resolution = 20.0
    provides_grid = False

    def __init__(self, config, tile: str):
        super().__init__(config, tile)
        self._grid: Grid | None = None

    @property
    def s1_config(self) -> S1Config:
        """The parsed configuration file ``chain.s1_path``."""
        value = self.config["chain"].get(self.path_key)
        if value in (None, "", "None"):
            raise ConfigError("chain.s1_path is not set: give the path of the Sentinel-1 configuration file")
        return read_config(value)

    def _check_tile_listed(self, cfg: S1Config) -> None:
        if tile_code(self.tile).upper() not in {tile_code(t).upper() for t in cfg.tiles}:
            raise ConfigError(f"tile {self.tile} is not listed in 'tiles' of the Sentinel-1 configuration file "
                              f"'{cfg.path}' ({', '.join(cfg.tiles)}); add {tile_code(self.tile)} (written without "
                              "the leading T)")

    def files(self, grid: Grid | None = None) -> list[S1File]:
        """The acquisition files covering ``grid`` (all files when no grid is known)."""
        grid = grid or self._grid
        files = list_files(self.s1_config.s1images)
        if grid is not None:
            files = [item for item in files if covers(item.path, grid)]
        return files

    def check_inputs(self, grid: Grid | None = None) -> None:
        """Check the configuration file, the file names and that some file covers ``grid``."""
        cfg = self.s1_config
        self._check_tile_listed(cfg)
        if grid is not None:
            self._grid = grid
        files = self.files(grid)
        if not files:
            raise InputDataError(f"S1 tile not covered: no Sentinel-1 file of '{cfg.s1images}' covers tile "
                                 f"{self.tile}; check s1images in '{cfg.path}'")

    def input_dates(self) -> list[str]:
        """Acquisition dates of the tile (both orbits), chronological and unique."""
        return sorted({item.date for item in self.files()})

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        raise ConfigError("Sentinel-1 has no tile grid of its own; enable an optical sensor (e.g. chain.s2_path) "
                          "next to chain.s1_path")

    @classmethod
    def interpolation_dates(cls, config, dates_by_tile: dict[str, list[str]]) -> list[str]:
        """From the earliest to the latest acquisition of all tiles every ``temporalresolution`` days."""
        cfg = read_config(config["chain"][cls.path_key])
        all_dates = sorted({date for dates in dates_by_tile.values() for date in dates})
        if not all_dates:
            raise InputDataError(f"no Sentinel-1 acquisition found in '{cfg.s1images}'")
        return date_grid(all_dates[0], all_dates[-1], cfg.temporal_resolution)

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read` (with a margin for the padding and the filter)."""
        n_input = max(1, len(self.input_dates()))
        per_input = 2 * 2 * 4 * 4 + 4  # values, filter temporaries (float32), masks
        per_output = 4 * 4 * 2 + 4 * 4  # interpolated, spline temporaries, features
        return int(math.ceil(1.5 * (n_input * per_input + n_interpolation_dates * per_output + 64)))

    def read(self, grid: Grid, window: Window, interpolation_dates: list[str],
             pixels: tuple[np.ndarray, np.ndarray] | None = None) -> SensorData:
        """Read ``window`` of ``grid``: warp, mosaic, mask, filter and gap-fill each orbit, then stack.

        The window is read with a padding of ``window_radius`` pixels so that the speckle filter gives
        the same values whatever the chunking.
        """
        cfg = self.s1_config
        files = self.files(grid)
        radius = cfg.window_radius
        window_grid = grid.window_grid(window)
        rows, cols = window_grid.height, window_grid.width
        padded = _padded(window_grid, radius)
        inner = (slice(radius, radius + rows), slice(radius, radius + cols))
        input_dates = sorted({item.date for item in files})
        position = {date: index for index, date in enumerate(input_dates)}
        interpolation_dates = list(interpolation_dates)
        raw = np.zeros((len(input_dates), len(BAND_NAMES), rows, cols), dtype=np.float32)
        no_obs = np.ones((len(input_dates), rows, cols), dtype=bool)
        interpolated = np.zeros((len(interpolation_dates), len(BAND_NAMES), rows, cols), dtype=np.float32)
        validity = np.zeros((rows, cols), dtype=np.uint16)
        gapfill = functools.partial(gapfill_spline, floor=0.0) if cfg.interpolation == "spline" else gapfill_linear
        for orbit_index, orbit in enumerate(ORBITS):
            stacks = preprocessed_stacks(cfg, self.tile, orbit, files, grid)
            if stacks is not None:  # written by iota2 s1-preprocess: the same values, already filtered
                dates = sorted({item.date for item in files if item.orbit == orbit})
                filtered, invalid = read_stacks(stacks, window)
            else:
                dates, values, invalid = read_acquisitions(files, orbit, padded, cfg.border_threshold)
                if not dates:
                    continue
                filtered = np.stack([speckle_filter(values[:, pol], invalid, radius) for pol in range(2)], axis=1)
                filtered = filtered[(slice(None), slice(None)) + inner]
                invalid = invalid[(slice(None),) + inner]
            bands = slice(2 * orbit_index, 2 * orbit_index + 2)
            indexes = [position[date] for date in dates]
            raw[indexes, bands] = filtered
            no_obs[indexes] &= invalid
            validity += (~invalid).sum(axis=0, dtype=np.uint16)
            interpolated[:, bands] = gapfill(filtered, invalid, dates, interpolation_dates)
        footprint = validity > 0
        masks = no_obs.astype(np.uint8)
        if pixels is not None:
            rows_at, cols_at = (np.asarray(index) for index in pixels)
            raw = raw[:, :, rows_at, cols_at][:, :, np.newaxis, :]
            masks = masks[:, rows_at, cols_at][:, np.newaxis, :]
            interpolated = interpolated[:, :, rows_at, cols_at][:, :, np.newaxis, :]
            validity = validity[rows_at, cols_at][np.newaxis, :]
            footprint = footprint[rows_at, cols_at][np.newaxis, :]
            rows, cols = 1, len(rows_at)
        return SensorData(sensor=self.name, band_names=list(BAND_NAMES), input_dates=input_dates, raw=raw,
                          masks=masks, interpolation_dates=interpolation_dates, interpolated=interpolated,
                          validity=validity, footprint=footprint, spec=FEATURE_SPEC)

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Valid (date, orbit) acquisitions (uint16) and footprint of a window, without filtering."""
        cfg = self.s1_config
        files = self.files(grid)
        window_grid = grid.window_grid(window)
        validity = np.zeros((window_grid.height, window_grid.width), dtype=np.uint16)
        for orbit in ORBITS:
            stacks = preprocessed_stacks(cfg, self.tile, orbit, files, grid)
            if stacks is not None:
                _, invalid = read_stacks(stacks, window)
            else:
                _, _, invalid = read_acquisitions(files, orbit, window_grid, cfg.border_threshold)
            validity += (~invalid).sum(axis=0, dtype=np.uint16)
        return validity, validity > 0


@hookimpl
def iota2_register_sensors():
    """Register the Sentinel-1 sensor."""
    return [Sentinel1]


@hookimpl
def iota2_register_commands():
    """Register ``iota2 s1-preprocess``."""
    return {"s1-preprocess": s1_preprocess_command}


@hookimpl
def iota2_config_sections():
    """Declare ``chain.s1_path``."""
    return [Section("chain", {
        "s1_path": Param("str", None, "Sentinel-1 configuration file (INI, iota2's SARconfig.cfg: [Paths] "
                         "s1images, output; [Processing] tiles, referencesfolder, rasterpattern, temporalResolution, "
                         "borderThreshold, gapFilling_interpolation; [Filtering] window_radius); enables the "
                         "Sentinel-1 sensor (terrain-corrected GRD GeoTIFFs in linear backscatter)."),
    })]
