"""Zonal statistics of classification maps over polygons (class proportions, descriptive statistics).

The library API of iota2's labwork (section 6.2)::

    from iota2.simplification import zonal_stats as zs
    zs.compute_zonal_stats(tmppath, ["classif.tif"], "rpg_2018.shp", ["1:rate"], "stats_classif.shp")

and the command ``iota2 zonal-stats -zones Z -rasters A.tif [B.tif ...] -params 1:rate 2:statsmaj -out O.gpkg``.

Bands are numbered across the list of rasters (raster 1's bands first). Methods per band (``"<band>:<method>"``):

* ``rate``: share of each pixel value (class code) among the zone's valid pixels, one column per code (``"11"``,
  ``"12"`` ...) and the zone's majority class ``classmaj``;
* ``stats``: ``meanb<k>``, ``stdb<k>``, ``maxb<k>``, ``minb<k>``;
* ``statsmaj``: the same four on the pixels of the zone's majority class (``meanmajb<k>`` ...);
* ``stats_<cl>``: the same four on the pixels of class ``cl`` (``meanb<k>c<cl>`` ...);
* ``val``: the pixel value under a point (``valb<k>``).

The class of a pixel (majority, ``stats_<cl>``) is read on the first ``rate`` band. 0 and each band's nodata are
left out. Which pixels belong to a zone (``coverage``): ``centre`` (default; pixel centres inside the polygon, the
rule of GDAL's rasterisation and of rasterstats), ``exact`` (each pixel weighted by the fraction of its area the
polygon covers, as exactextract's ``frac``) or ``touched`` (every pixel the polygon covers a part of). Every zone gets
its own pixels (overlapping zones share pixels). See ``docs/zonal_stats.md``.

How: the rasters are read once by strips of rows (bounded memory); for each strip, the compiled kernel of
:mod:`iota2.simplification.coverage_kernel` walks each zone's edges into a buffer of the zone's box and adds its
pixels to the zone's class areas and running statistics (mean and spread by West's weighted update), zones in
parallel. ``statsmaj`` reads the strips a second time, once the majority classes are known.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl

LOGGER = logging.getLogger(__name__)

__all__ = ["METHODS", "COVERAGES", "OUTPUT_DRIVERS", "parse_params", "zonal_statistics", "compute_zonal_stats",
           "main"]

METHODS = ("rate", "stats", "statsmaj", "stats_<cl>", "val")
"""Methods a band may get in ``params``."""

COVERAGES = ("centre", "exact", "touched")
"""Rules deciding which pixels belong to a zone (and with which weight)."""

OUTPUT_DRIVERS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".sqlite": "SQLite", ".geojson": "GeoJSON",
                  ".json": "GeoJSON"}
"""OGR driver of each output extension."""

DEFAULT_STRIP_PIXELS = 1 << 22
"""Pixels of a strip of rows read at once (per band)."""

_SHAPEFILE_NAME_LIMIT = 10
_SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")
_MODES = {"centre": 0, "center": 0, "exact": 1, "touched": 2, "all_touched": 2}


# ------------------------------------------------------------------------------------------------ parameters
def parse_params(params, n_bands: int) -> list[tuple[int, str, float | None]]:
    """Check and normalise the statistics asked.

    Parameters
    ----------
    params
        ``["1:rate", "2:statsmaj"]``, ``{1: "rate", 2: "statsmaj"}``, or one method without band (``["stats"]``:
        that method for every band, as iota2).
    n_bands
        Number of bands of the rasters, all together.

    Returns
    -------
    list
        ``(band, method, class)`` in the order given: band numbered from 1, method one of ``rate``, ``stats``,
        ``statsmaj``, ``stats_cl`` or ``val``, ``class`` the class code of ``stats_<cl>`` (else None).

    Raises
    ------
    ConfigError
        An empty list, an entry not ``<band>:<method>``, a band number outside 1..n_bands, an unknown method, a
        method asked twice for a band; the message names the entry and what is allowed.
    """
    if isinstance(params, str):
        params = params.split()
    if isinstance(params, Mapping):
        pairs = [(key, value) for key, value in params.items()]
    elif isinstance(params, (list, tuple)) and params:
        if len(params) == 1 and isinstance(params[0], str) and ":" not in params[0]:
            pairs = [(band, params[0]) for band in range(1, n_bands + 1)]
        else:
            pairs = []
            for entry in params:
                if not isinstance(entry, str) or entry.count(":") != 1:
                    raise ConfigError(f"zonal statistics params: {entry!r} is not '<band>:<method>' (e.g. '1:rate', "
                                      f"'2:statsmaj'); methods: {', '.join(METHODS)}")
                pairs.append(tuple(part.strip() for part in entry.split(":")))
    else:
        raise ConfigError(f"zonal statistics params = {params!r}: give a non-empty list such as ['1:rate', "
                          f"'2:statsmaj'] or a dict {{1: 'rate'}}; methods: {', '.join(METHODS)}")
    result = []
    for band, method in pairs:
        try:
            number = int(str(band).strip())
        except ValueError:
            number = None
        if number is None:
            raise ConfigError(f"zonal statistics params: band {band!r} of '{band}:{method}' is not a band number "
                              f"(1 to {n_bands})")
        if not 1 <= number <= n_bands:
            raise ConfigError(f"zonal statistics params: band {number} of '{band}:{method}' is beyond the rasters' "
                              f"{n_bands} band(s) (numbered 1 to {n_bands} across the list of rasters)")
        name = str(method).strip().lower()
        klass = None
        if name.startswith("stats_"):
            text = name[len("stats_"):]
            try:
                klass = float(text)
            except ValueError:
                raise ConfigError(f"zonal statistics params: '{band}:{method}': the class of stats_<cl> must be a "
                                  "class code, e.g. '2:stats_11'") from None
            name = "stats_cl"
        elif name not in ("rate", "stats", "statsmaj", "val"):
            raise ConfigError(f"zonal statistics params: unknown method {method!r} in '{band}:{method}'; use one of "
                              f"{', '.join(METHODS)}")
        key = (number, name, klass)
        if key in result:
            raise ConfigError(f"zonal statistics params: '{band}:{method}' is asked twice; list it once")
        result.append(key)
    return result


def _code_name(code: float) -> str:
    """Column text of a class code: ``11`` for 11.0, ``1.5`` for 1.5."""
    return str(int(code)) if float(code).is_integer() else repr(float(code))


def _columns(params, rate_bands: list[int]) -> dict[tuple, list[str]]:
    """Column names of each statistic except rate's class columns (which depend on the codes found)."""
    names = {}
    for band, method, klass in params:
        if method == "rate":
            names[(band, method, klass)] = ["classmaj" if len(rate_bands) == 1 else f"classmajb{band}"]
        elif method == "stats":
            names[(band, method, klass)] = [f"{stat}b{band}" for stat in ("mean", "std", "max", "min")]
        elif method == "statsmaj":
            names[(band, method, klass)] = [f"{stat}majb{band}" for stat in ("mean", "std", "max", "min")]
        elif method == "stats_cl":
            names[(band, method, klass)] = [f"{stat}b{band}c{_code_name(klass)}" for stat in ("mean", "std", "max",
                                                                                             "min")]
        else:
            names[(band, method, klass)] = [f"valb{band}"]
    return names


def _rate_column(code: float, band: int, rate_bands: list[int], aliases: Mapping) -> str:
    if code in aliases:
        return str(aliases[code])
    return _code_name(code) if len(rate_bands) == 1 else f"b{band}c{_code_name(code)}"


# ------------------------------------------------------------------------------------------------ inputs
class _Rasters:
    """The rasters' common grid and where each band lives."""

    def __init__(self, rasters: Sequence[str | os.PathLike]):
        import rasterio

        if isinstance(rasters, (str, os.PathLike)):
            rasters = [rasters]
        if not rasters:
            raise ConfigError("zonal statistics: no raster given; pass a list of rasters (e.g. ['classif.tif'])")
        self.paths = [Path(path) for path in rasters]
        self.bands = []  # (raster index, band index in the raster, nodata, dtype)
        grid = None
        for index, path in enumerate(self.paths):
            if not path.is_file():
                raise InputDataError(f"zonal statistics: raster '{path}' does not exist; give the path of a GeoTIFF")
            try:
                with rasterio.open(path) as src:
                    here = (src.crs, src.transform, src.width, src.height)
                    for band in range(src.count):
                        self.bands.append((index, band + 1, src.nodatavals[band], np.dtype(src.dtypes[band])))
            except rasterio.errors.RasterioError as exc:
                raise InputDataError(f"zonal statistics: raster '{path}' cannot be read ({exc}); give a GeoTIFF") \
                    from exc
            if grid is None:
                grid, first = here, path
            elif here[0] != grid[0] or not here[1].almost_equals(grid[1]) or here[2:] != grid[2:]:
                raise InputDataError(
                    f"zonal statistics: rasters '{first}' ({grid[2]} x {grid[3]} px, {grid[1][0]:g} m, {grid[0]}) and "
                    f"'{path}' ({here[2]} x {here[3]} px, {here[1][0]:g} m, {here[0]}) are not on the same grid; "
                    "resample one onto the other (same CRS, origin, pixel size and size)")
        self.crs, self.transform, self.width, self.height = grid
        if self.transform.is_degenerate:
            raise InputDataError(f"zonal statistics: raster '{self.paths[0]}' has a degenerate geotransform")

    def read(self, band: int, row0: int, row1: int) -> tuple[np.ndarray, float | None]:
        """Rows ``[row0, row1)`` of band ``band`` (numbered from 1 across the rasters) and its nodata."""
        import rasterio
        from rasterio.windows import Window

        index, number, nodata, _ = self.bands[band - 1]
        with rasterio.open(self.paths[index]) as src:
            return src.read(number, window=Window(0, row0, self.width, row1 - row0)), nodata


def _crs_name(crs) -> str:
    from rasterio.crs import CRS

    crs = CRS.from_user_input(crs)
    return crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}"


def _read_zones(zones):
    """The zones as a GeoDataFrame (a path is read with pyogrio)."""
    import geopandas as gpd

    if isinstance(zones, gpd.GeoDataFrame):
        return zones.copy(), "<GeoDataFrame>"
    path = Path(zones)
    if not path.exists():
        raise InputDataError(f"zonal statistics: zones file '{path}' does not exist; give a polygon file (shp, gpkg, "
                             "sqlite, geojson)")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - any OGR failure
        raise InputDataError(f"zonal statistics: zones file '{path}' cannot be read as a vector file ({exc}); give a "
                             "polygon file (shp, gpkg, sqlite, geojson)") from exc
    return frame, str(path)


def _geometries(frame, name: str, methods: set[str], buffer: float | None, rasters: _Rasters):
    """The zones' geometries in the rasters' CRS: polygons (points buffered by ``buffer``), or points for ``val``."""
    import shapely

    if len(frame) == 0 or frame.geometry.isna().all() or frame.geometry.is_empty.all():
        raise InputDataError(f"zonal statistics: zones file '{name}' holds no feature; give a file of polygons")
    kinds = set(frame.geometry.dropna().geom_type)
    points = kinds <= {"Point", "MultiPoint"}
    polygons = kinds <= {"Polygon", "MultiPolygon"}
    if not points and not polygons:
        raise InputDataError(f"zonal statistics: zones file '{name}' must hold polygons (or points for 'val' or with "
                             f"a buffer), found {', '.join(sorted(kinds))}; give a polygon layer")
    if "val" in methods and not (points and buffer is None):
        raise ConfigError(f"zonal statistics: 'val' reads the pixel under a point, but '{name}' holds "
                          f"{'polygons' if polygons else 'points with a buffer'}; use rate / stats methods, or give "
                          "points without buffer")
    if points and buffer is None and methods - {"val"}:
        raise ConfigError(f"zonal statistics: '{name}' holds points: only 'val' applies to them; give a buffer "
                          "distance (buffer=..., -buffer) to compute statistics over a disc around each point")
    geometries = frame.geometry
    if frame.crs is None and rasters.crs is not None or frame.crs is not None and rasters.crs is None:
        which = f"zones file '{name}'" if frame.crs is None else f"raster '{rasters.paths[0]}'"
        raise InputDataError(f"zonal statistics: the {which} has no coordinate reference system, so the zones cannot "
                             "be placed on the raster; define it (a .prj next to a shapefile, gdal_edit.py -a_srs "
                             "for a raster)")
    if frame.crs is not None and not frame.crs.equals(rasters.crs):
        LOGGER.warning("zones '%s' (%s) reprojected to the rasters' CRS %s", name, _crs_name(frame.crs),
                       _crs_name(rasters.crs))
        geometries = geometries.to_crs(rasters.crs)
    geometries = np.asarray(geometries.values, dtype=object)
    if points and buffer is not None:
        geometries = shapely.buffer(geometries, float(buffer))
    elif polygons:
        invalid = ~shapely.is_valid(geometries) & ~shapely.is_missing(geometries)
        if invalid.any():
            LOGGER.warning("%d zone(s) of '%s' are invalid polygons (self-intersections ...): repaired with "
                           "make_valid", int(invalid.sum()), name)
            geometries[invalid] = shapely.make_valid(geometries[invalid])
    return geometries, points and buffer is None


def _to_pixels(geometries, transform):
    """Geometries in pixel coordinates (column, row) of ``transform``."""
    import shapely

    inverse = ~transform

    def apply(coords):
        cols = inverse.a * coords[:, 0] + inverse.b * coords[:, 1] + inverse.c
        rows = inverse.d * coords[:, 0] + inverse.e * coords[:, 1] + inverse.f
        return np.column_stack([cols, rows])

    return shapely.transform(geometries, apply)


def _rings(pixel_geometries, width: int, height: int):
    """Rings of every zone as flat arrays for the kernel, and each zone's box of pixels inside the raster."""
    import shapely

    n = len(pixel_geometries)
    parts, part_zone = shapely.get_parts(pixel_geometries, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    parts, part_zone = parts[polygonal], part_zone[polygonal]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    shell = np.ones(len(rings), bool)
    shell[1:] = ring_part[1:] != ring_part[:-1]
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    counts = np.bincount(coord_ring, minlength=len(rings))
    ring_start = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(counts, out=ring_start[1:])
    # signed area of each ring (shoelace); the kernel counts area positive for rings of negative shoelace area
    if len(coords) > 1:
        cross = coords[:-1, 0] * coords[1:, 1] - coords[1:, 0] * coords[:-1, 1]
        cross = np.append(cross, 0.0)
        cross[ring_start[1:] - 1] = 0.0  # the pair that would join two rings
        nonempty = counts > 0
        area = np.zeros(len(rings))
        area[nonempty] = np.add.reduceat(cross, ring_start[:-1][nonempty])
    else:
        area = np.zeros(len(rings))
    ring_sign = np.where(shell, -np.sign(area), np.sign(area)).astype(np.float64)
    ring_zone = part_zone[ring_part]
    zone_ring = np.searchsorted(ring_zone, np.arange(n + 1)).astype(np.int64)
    box = np.zeros((n, 4), np.int64)
    if len(coords):
        zone_of_coord = ring_zone[coord_ring]
        low_col = np.full(n, np.inf)
        high_col = np.full(n, -np.inf)
        low_row = np.full(n, np.inf)
        high_row = np.full(n, -np.inf)
        np.minimum.at(low_col, zone_of_coord, coords[:, 0])
        np.maximum.at(high_col, zone_of_coord, coords[:, 0])
        np.minimum.at(low_row, zone_of_coord, coords[:, 1])
        np.maximum.at(high_row, zone_of_coord, coords[:, 1])
        found = np.isfinite(low_col)
        box[found, 0] = np.clip(np.floor(low_row[found]), 0, height)
        box[found, 1] = np.clip(np.ceil(high_row[found]), 0, height)
        box[found, 2] = np.clip(np.floor(low_col[found]), 0, width)
        box[found, 3] = np.clip(np.ceil(high_col[found]), 0, width)
    return coords, ring_start, ring_sign, zone_ring, box


class _CodeTable:
    """Class codes met so far and their index (columns of the class counts)."""

    def __init__(self):
        self.codes: list[float] = []
        self.index: dict[float, int] = {}

    def add(self, code: float) -> int:
        code = float(code)
        if code not in self.index:
            self.index[code] = len(self.codes)
            self.codes.append(code)
        return self.index[code]

    def classes_of(self, data: np.ndarray, nodata) -> np.ndarray:
        """(rows, cols) int32 index of each pixel's code, -1 for 0, nodata and NaN."""
        dtype = data.dtype
        if dtype.kind in "ui" and dtype.itemsize <= 2:
            offset = int(np.iinfo(dtype).min)
            shifted = data.astype(np.int32) - offset if offset else data
            present = np.flatnonzero(np.bincount(shifted.ravel(), minlength=1)) + offset
            lut = np.full(int(np.iinfo(dtype).max) - offset + 1, -1, np.int32)
            for value in present:
                if value != 0 and (nodata is None or value != nodata):
                    lut[value - offset] = self.add(value)
            return lut[shifted]
        values, inverse = np.unique(data, return_inverse=True)
        lut = np.full(len(values), -1, np.int32)
        for position, value in enumerate(values):
            if value != 0 and not (isinstance(value, float) and math.isnan(value)) and not np.isnan(value) and \
                    (nodata is None or value != nodata):
                lut[position] = self.add(value)
        return lut[inverse.reshape(data.shape)]


def _values_of(data: np.ndarray, nodata) -> np.ndarray:
    """Band values as float64 with NaN for 0 and nodata."""
    values = data.astype(np.float64)
    invalid = values == 0
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        invalid |= values == nodata
    values[invalid] = np.nan
    return values


def _strips(rasters: _Rasters, box: np.ndarray, strip_pixels: int):
    """``(row0, row1, zones)`` for each strip of rows that some zone meets."""
    rows = max(1, int(strip_pixels) // max(rasters.width, 1))
    usable = (box[:, 1] > box[:, 0]) & (box[:, 3] > box[:, 2])
    for row0 in range(0, rasters.height, rows):
        row1 = min(row0 + rows, rasters.height)
        zones = np.flatnonzero(usable & (box[:, 0] < row1) & (box[:, 1] > row0)).astype(np.int64)
        if zones.size:
            yield row0, row1, zones


def _pass(kernel, rasters, layout, strip_pixels, rate_bands, stat_bands, stat_rate, stat_target, table, counts,
          acc, mode):
    """Read every strip once and accumulate; returns the counts (grown when new codes appear)."""
    coords, ring_start, ring_sign, zone_ring, box = layout
    for row0, row1, zones in _strips(rasters, box, strip_pixels):
        classes = np.empty((len(rate_bands), row1 - row0, rasters.width), np.int32)
        for position, band in enumerate(rate_bands):
            data, nodata = rasters.read(band, row0, row1)
            classes[position] = table.classes_of(data, nodata)
        if counts.shape[2] < len(table.codes):
            grown = np.zeros(counts.shape[:2] + (max(len(table.codes), 2 * counts.shape[2]),))
            grown[:, :, :counts.shape[2]] = counts
            counts = grown
        values = np.empty((len(stat_bands), row1 - row0, rasters.width))
        for position, band in enumerate(stat_bands):
            data, nodata = rasters.read(band, row0, row1)
            values[position] = _values_of(data, nodata)
        kernel.accumulate_strip(coords, ring_start, ring_sign, zone_ring, box, zones, row0, classes, values,
                                stat_rate, stat_target, counts, acc, mode)
    return counts


def _describe(acc: np.ndarray) -> np.ndarray:
    """(Z, 4) mean, std, max, min from the accumulators (NaN where no pixel counted)."""
    weight = acc[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.column_stack([acc[:, 1], np.sqrt(np.maximum(acc[:, 2] / weight, 0.0)), acc[:, 4], acc[:, 3]])
    result[weight <= 0] = np.nan
    return result


# ------------------------------------------------------------------------------------------------ API
def zonal_statistics(rasters, zones, params, *, coverage: str = "centre", buffer: float | None = None,
                     classes: Mapping | Sequence | None = None, strip_pixels: int = DEFAULT_STRIP_PIXELS,
                     threads: int | None = None):
    """Zonal statistics of bands of rasters over zones, in full precision (nothing written).

    Parameters
    ----------
    rasters
        A raster path or a list of them, on one grid; bands are numbered from 1 across the list.
    zones
        A vector file (shp, gpkg, sqlite, geojson ...) or a GeoDataFrame of polygons, or of points for ``val``
        (or with ``buffer``). Zones in another CRS than the rasters are reprojected (a log line names both).
    params
        Statistics per band, see :func:`parse_params`.
    coverage
        ``centre`` (pixels whose centre lies in the zone), ``exact`` (each pixel weighted by the covered fraction
        of its area) or ``touched`` (pixels with any covered area, weight 1).
    buffer
        Distance (in the rasters' CRS units) by which points are buffered into discs.
    classes
        Class codes that get a ``rate`` column even where absent (0), e.g. the nomenclature's; a mapping
        ``{code: column name}`` also renames the columns.
    strip_pixels
        Pixels per band read at once; memory is about ``strip_pixels * 8`` bytes per band asked, plus the
        accumulators (8 bytes per zone and class, 40 per zone and statistic).
    threads
        Threads of the kernel (zones in parallel); default numba's.

    Returns
    -------
    geopandas.GeoDataFrame
        The zones (attributes and geometries as read) with the statistics' columns (floats; ``classmaj`` the
        majority code). A zone without any valid pixel (outside the rasters, only nodata) has empty (NaN)
        statistics; their number is logged as a warning.

    Raises
    ------
    ConfigError
        Bad ``params``, ``coverage`` or a method that does not fit the zones (see :func:`parse_params`).
    InputDataError
        A raster or the zones file missing or unreadable, rasters on different grids, zones without polygons, a
        CRS missing on one side.
    """
    return _zonal_statistics(rasters, zones, params, coverage=coverage, buffer=buffer, classes=classes,
                             strip_pixels=strip_pixels, threads=threads)[0]


def _zonal_statistics(rasters, zones, params, *, coverage, buffer, classes, strip_pixels, threads):
    """:func:`zonal_statistics` and the names of the statistics' columns."""
    import pandas as pd

    mode = _MODES.get(str(coverage).lower())
    if mode is None:
        raise ConfigError(f"zonal statistics: coverage {coverage!r} is not one of {', '.join(COVERAGES)}")
    grid = _Rasters(rasters)
    params = parse_params(params, len(grid.bands))
    methods = {method for _, method, _ in params}
    frame, name = _read_zones(zones)
    geometries, as_points = _geometries(frame, name, methods, buffer, grid)
    rate_bands = [band for band, method, _ in params if method == "rate"]
    if methods & {"statsmaj", "stats_cl"} and not rate_bands:
        raise ConfigError("zonal statistics: 'statsmaj' and 'stats_<cl>' need the class of each pixel: add the "
                          "classification band with 'rate' (e.g. ['1:rate', '2:statsmaj'])")
    aliases = {}
    wanted_codes = []
    if classes is not None:
        if isinstance(classes, Mapping):
            aliases = {float(code): str(label) for code, label in classes.items()}
        wanted_codes = [float(code) for code in classes]
    names = _columns(params, rate_bands)
    result = pd.DataFrame(index=frame.index)
    if as_points:
        _point_values(grid, geometries, params, names, result)
    else:
        if threads is not None:
            import numba

            numba.set_num_threads(int(threads))
        from iota2.simplification import coverage_kernel as kernel

        layout = _rings(_to_pixels(geometries, grid.transform), grid.width, grid.height)
        n_zones = len(frame)
        table = _CodeTable()
        for code in wanted_codes:
            table.add(code)
        for _, method, klass in params:
            if method == "stats_cl":
                table.add(klass)
        first_stats = [(band, method, klass) for band, method, klass in params if method in ("stats", "stats_cl")]
        stat_rate = np.array([0 if method == "stats_cl" else -1 for _, method, _ in first_stats], np.int64)
        stat_target = np.full((len(first_stats), n_zones), -2, np.int32)
        for position, (_, method, klass) in enumerate(first_stats):
            if method == "stats_cl":
                stat_target[position] = table.index[klass]
        counts = np.zeros((len(rate_bands), n_zones, max(len(table.codes), 16)))
        acc = _new_acc(len(first_stats), n_zones)
        counts = _pass(kernel, grid, layout, strip_pixels, rate_bands, [band for band, _, _ in first_stats],
                       stat_rate, stat_target, table, counts, acc, mode)
        codes = np.array(table.codes + [np.inf] * (counts.shape[2] - len(table.codes)))
        order = np.argsort(codes, kind="stable")
        majority = np.full((len(rate_bands), n_zones), -2, np.int32)
        for position, band in enumerate(rate_bands):
            area = counts[position][:, order]
            total = area.sum(axis=1)
            best = order[np.argmax(area, axis=1)]  # ties: the smallest code
            majority[position] = np.where(total > 0, best, -2)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = area / total[:, np.newaxis]
            present = area.max(axis=0) > 0
            for column, code in zip(range(len(order)), codes[order]):
                if not np.isfinite(code) or not (present[column] or code in wanted_codes):
                    continue
                result[_rate_column(code, band, rate_bands, aliases)] = shares[:, column]
            labels = np.where(total > 0, codes[np.maximum(majority[position], 0)], np.nan)
            result[names[(band, "rate", None)][0]] = labels
        for position, key in enumerate(first_stats):
            result[names[key]] = _describe(acc[position])
        majority_stats = [(band, method, klass) for band, method, klass in params if method == "statsmaj"]
        if majority_stats:
            acc = _new_acc(len(majority_stats), n_zones)
            target = np.repeat(majority[:1], len(majority_stats), axis=0)
            _pass(kernel, grid, layout, strip_pixels, rate_bands[:1], [band for band, _, _ in majority_stats],
                  np.zeros(len(majority_stats), np.int64), target, table, np.zeros((1, n_zones, counts.shape[2])),
                  acc, mode)
            for position, key in enumerate(majority_stats):
                result[names[key]] = _describe(acc[position])
    empty = int(result.isna().all(axis=1).sum()) if result.shape[1] else 0
    if empty:
        LOGGER.warning("%d of %d zone(s) of '%s' have no valid pixel (outside the rasters, or only 0 / nodata): "
                       "their statistics are empty", empty, len(frame), name)
    clashes = [column for column in result.columns if column in frame.columns]
    if clashes:
        LOGGER.warning("zones '%s' already have the column(s) %s: replaced by the statistics", name,
                       ", ".join(clashes))
        frame = frame.drop(columns=clashes)
    order = [column for column in frame.columns if column != frame.geometry.name]
    out = pd.concat([frame[order], result], axis=1)
    import geopandas as gpd

    return gpd.GeoDataFrame(out, geometry=frame.geometry, crs=frame.crs), [str(column) for column in result.columns]


def _new_acc(n_stats: int, n_zones: int) -> np.ndarray:
    acc = np.zeros((n_stats, n_zones, 5))
    acc[:, :, 3] = np.inf
    acc[:, :, 4] = -np.inf
    return acc


def _point_values(grid: _Rasters, geometries, params, names, result) -> None:
    """``valb<k>``: the pixel under each point (its first point for a multi-point); NaN outside or nodata."""
    import shapely

    points = np.array([shapely.get_geometry(geom, 0) if geom is not None and geom.geom_type == "MultiPoint" else geom
                       for geom in geometries], dtype=object)
    xy = shapely.get_coordinates(points, return_index=True)
    coords, owner = xy
    inverse = ~grid.transform
    cols = np.floor(inverse.a * coords[:, 0] + inverse.b * coords[:, 1] + inverse.c).astype(np.int64)
    rows = np.floor(inverse.d * coords[:, 0] + inverse.e * coords[:, 1] + inverse.f).astype(np.int64)
    inside = (cols >= 0) & (cols < grid.width) & (rows >= 0) & (rows < grid.height)
    for band, method, klass in params:
        values = np.full(len(geometries), np.nan)
        if inside.any():
            low, high = int(rows[inside].min()), int(rows[inside].max()) + 1
            data, nodata = grid.read(band, low, high)
            picked = _values_of(data[rows[inside] - low, cols[inside]], nodata)
            values[owner[inside]] = picked
        result[names[(band, method, klass)][0]] = values


def _check_output(output: Path, columns: list[str]) -> str:
    driver = OUTPUT_DRIVERS.get(output.suffix.lower())
    if driver is None:
        raise ConfigError(f"zonal statistics: output '{output}' must end with one of {', '.join(OUTPUT_DRIVERS)} "
                          "(the extension chooses the format)")
    if driver == "ESRI Shapefile":
        long = [column for column in columns if len(column.encode("utf-8")) > _SHAPEFILE_NAME_LIMIT]
        if long:
            raise ConfigError(f"zonal statistics: output '{output}' is a shapefile, whose column names hold at most "
                              f"10 characters, but the statistics give {', '.join(long)}; write a .gpkg or .sqlite "
                              "instead")
    return driver


def _write(frame, output: Path, driver: str) -> None:
    """Write ``frame`` atomically: a temporary name in the output folder, renamed once complete (a shapefile's
    other files first, its .shp last)."""
    import pyogrio

    from iota2.core.raster import atomic_output

    output.parent.mkdir(parents=True, exist_ok=True)
    if driver != "ESRI Shapefile":
        if output.exists():
            output.unlink()
        with atomic_output(output) as tmp:
            pyogrio.write_dataframe(frame, tmp, driver=driver, layer=output.stem)
        return
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.stem}.") as folder:
        tmp = Path(folder) / output.name
        pyogrio.write_dataframe(frame, tmp, driver=driver, encoding="UTF-8")
        written = {path.suffix.lower(): path for path in Path(folder).iterdir()}
        for suffix in _SHAPEFILE_SIDECARS:
            old = output.with_suffix(suffix)
            if suffix not in written:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        for suffix, path in written.items():
            if suffix != ".shp":
                os.replace(path, output.with_suffix(suffix))
        os.replace(written[".shp"], output)


def compute_zonal_stats(tmppath, rasters, zones, params, output, *, coverage: str = "centre",
                        buffer: float | None = None, classes: Mapping | Sequence | None = None,
                        decimals: int | None = 2, strip_pixels: int = DEFAULT_STRIP_PIXELS, threads: int | None = None):
    """Write the zonal statistics of ``rasters`` over ``zones`` to the vector file ``output`` (iota2's API).

    Parameters
    ----------
    tmppath
        Working folder of iota2's signature; nothing is written there (the output is written under a temporary
        name next to itself), so None is accepted.
    rasters, zones, params, coverage, buffer, classes, strip_pixels, threads
        As :func:`zonal_statistics`.
    output
        Vector file; its extension chooses the format: ``.shp``, ``.gpkg``, ``.sqlite``, ``.geojson``. A shapefile
        refuses column names over 10 characters (e.g. ``meanb2c211``) before anything is computed.
    decimals
        Statistics are rounded to this many decimals when written, as iota2 (2); None keeps full precision.

    Returns
    -------
    geopandas.GeoDataFrame
        What was written.

    Raises
    ------
    ConfigError, InputDataError
        As :func:`zonal_statistics`, and an output extension not handled; nothing is written then.
    """
    output = Path(output)
    grid = _Rasters(rasters)
    parsed = parse_params(params, len(grid.bands))
    names = [name for columns in _columns(parsed, [b for b, m, _ in parsed if m == "rate"]).values()
             for name in columns]
    driver = _check_output(output, names)
    frame, columns = _zonal_statistics(rasters, zones, params, coverage=coverage, buffer=buffer, classes=classes,
                                       strip_pixels=strip_pixels, threads=threads)
    if driver == "ESRI Shapefile":
        _check_output(output, [str(column) for column in frame.columns])
    if decimals is not None:
        frame[columns] = frame[columns].round(int(decimals))
    _write(frame, output, driver)
    LOGGER.info("zonal statistics of %d zone(s) written to %s", len(frame), output)
    return frame


# ------------------------------------------------------------------------------------------------ command line
def main(argv: list[str]) -> int:
    """``iota2 zonal-stats -zones Z -rasters A.tif [B.tif] -params 1:rate 2:statsmaj -out O.gpkg``."""
    parser = argparse.ArgumentParser(
        prog="iota2 zonal-stats",
        description="Zonal statistics of classification maps over polygons: class proportions and majority "
                    "(rate), mean / std / max / min (stats, statsmaj, stats_<cl>), pixel values under points (val).")
    parser.add_argument("-zones", "-shape", required=True, help="polygon file (shp, gpkg, sqlite, geojson), or "
                        "points for val / with -buffer")
    parser.add_argument("-rasters", "-inr", required=True, nargs="+", help="rasters on one grid; bands are numbered "
                        "across the list")
    parser.add_argument("-params", nargs="+", default=["1:rate"], help="<band>:<method>, methods rate, stats, "
                        "statsmaj, stats_<cl>, val (default 1:rate)")
    parser.add_argument("-out", "-output", required=True, help="output vector: .gpkg, .sqlite, .shp or .geojson")
    parser.add_argument("-coverage", default="centre", choices=COVERAGES, help="pixels of a zone: centre (default), "
                        "exact (weighted by covered area), touched")
    parser.add_argument("-buffer", type=float, default=None, help="buffer distance of point zones (raster CRS units)")
    parser.add_argument("-decimals", type=int, default=2, help="decimals written (default 2, as iota2; -1: all)")
    parser.add_argument("-threads", type=int, default=None, help="threads of the kernel (default: all cores)")
    parser.add_argument("-wd", default=None, help="working folder (accepted for iota2's command; unused)")
    args = parser.parse_args(argv)
    frame = compute_zonal_stats(args.wd, args.rasters, args.zones, args.params, args.out, coverage=args.coverage,
                                buffer=args.buffer, decimals=None if args.decimals < 0 else args.decimals,
                                threads=args.threads)
    print(f"zonal statistics of {len(frame)} zone(s) written to {args.out}")
    return 0


@hookimpl
def iota2_register_commands():
    """Register ``iota2 zonal-stats``."""
    return {"zonal-stats": main}
