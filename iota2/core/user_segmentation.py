"""A user's segmentation (``obia.obia_segmentation_path``): checked at start, burnt onto each tile grid as a raster
of segment ids, and turned back into the polygons of a tile's segments.

Vector files (shapefile, GeoPackage, SQLite, GeoJSON ... any OGR polygon layer, in any CRS) and rasters of segment
ids (any CRS and resolution; 0 and the file's nodata mean "no segment") are accepted. Files in another CRS than
the tiles' are reprojected (a log line says from which CRS to which).

Segment ids. For a vector file the id of a feature is ``1 + its position in the file`` (OGR's reading order), in
every tile, so a segment that crosses tiles (or chunks) has one id and is described by all its pixels. For a
raster the ids are its values (they must be integers from 1 to 2**32 - 1).

Burning rule (vector): a pixel belongs to the segment that contains its centre (the later feature in the file
when several do). A segment that gets no pixel that way (smaller than a pixel, or thin) is burnt on every pixel it
touches that is still free; a segment that still has no pixel (every pixel it touches belongs to others) is left
out of the tile, and their number is logged. Rasters are resampled with the nearest neighbour.

Memory: a tile is burnt and polygonised by stripes of rows of at most :data:`STRIPE_PIXELS` pixels; the segments
of a vector file that meet a tile are held in memory once.

This module imports nothing from :mod:`iota2.builders`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output, open_raster

LOGGER = logging.getLogger(__name__)

__all__ = ["KEY", "STRIPE_PIXELS", "check_segmentation", "rasterise_segmentation", "segment_polygons",
           "segmentation_kind"]

KEY = "obia.obia_segmentation_path"
"""The configuration key named in messages."""

STRIPE_PIXELS = 1 << 24
"""Most pixels of a stripe burnt, read or polygonised at once (64 MiB of uint32 ids)."""

MAX_ID = 2**32 - 1
"""Largest segment id (uint32)."""

VECTOR_SUFFIXES = (".shp", ".gpkg", ".sqlite", ".db", ".geojson", ".json", ".fgb", ".gml", ".kml", ".tab", ".mif")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".nc", ".hdr", ".asc")


def _missing(path) -> InputDataError:
    return InputDataError(f"segmentation '{path}' ({KEY}) does not exist; set {KEY} to a polygon file or a raster "
                          "of segment ids, or remove the key to compute SLIC superpixels")


def segmentation_kind(path: str | Path) -> str:
    """``"vector"`` or ``"raster"``: by the file's extension, else by which library opens it.

    Raises
    ------
    InputDataError
        If the file does not exist or is neither a raster nor a vector file.
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix in RASTER_SUFFIXES:
        return "raster"
    import pyogrio
    import rasterio

    try:
        with rasterio.open(path):
            return "raster"
    except Exception:  # noqa: BLE001 - not a raster: try a vector
        pass
    try:
        pyogrio.read_info(path)
        return "vector"
    except Exception as exc:  # noqa: BLE001 - neither
        raise InputDataError(f"segmentation '{path}' ({KEY}) is neither a raster nor a vector file GDAL can read "
                             f"({exc}); give a GeoTIFF of segment ids or a polygon file (shp, gpkg, sqlite)") from exc


def _vector_info(path: Path) -> dict:
    """pyogrio's layer information of a vector segmentation, checked: readable, CRS, polygons, not empty."""
    import pyogrio

    try:
        info = pyogrio.read_info(path, force_total_bounds=True, force_feature_count=True)
    except Exception as exc:  # noqa: BLE001 - any OGR failure
        raise InputDataError(f"segmentation '{path}' ({KEY}) cannot be read as a vector file ({exc}); give a "
                             "shapefile, GeoPackage or SQLite file of polygons") from exc
    if not info.get("crs"):
        raise InputDataError(f"segmentation '{path}' ({KEY}) has no coordinate reference system; define it (e.g. "
                             "a .prj file next to the shapefile)")
    if int(info.get("features") or 0) <= 0:
        raise InputDataError(f"segmentation '{path}' ({KEY}) contains no segment (no feature); give a file of "
                             "polygons, or remove the key to compute SLIC superpixels")
    kind = str(info.get("geometry_type") or "Unknown")
    if "polygon" not in kind.lower():
        if "unknown" not in kind.lower() and "geometry" not in kind.lower():
            raise InputDataError(f"segmentation '{path}' ({KEY}) must contain polygons, found {kind}; give a "
                                 "polygon layer (buffer points or lines into polygons first)")
        kinds = set(pyogrio.read_dataframe(path, columns=[]).geometry.dropna().geom_type)
        if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
            raise InputDataError(f"segmentation '{path}' ({KEY}) must contain polygons only, found "
                                 f"{', '.join(sorted(kinds)) or 'no geometry'}; give a polygon layer")
    return info


def _raster_scan(path: Path) -> None:
    """Refuse a raster of segment ids with no id, or with values that are not ids (negative, fractional, beyond
    uint32), reading it by stripes; an unsigned integer raster stops at its first id."""
    from rasterio.windows import Window

    with open_raster(path) as src:
        if src.crs is None:
            raise InputDataError(f"segmentation '{path}' ({KEY}) has no CRS; georeference it (e.g. gdal_edit.py "
                                 "-a_srs EPSG:...)")
        dtype = np.dtype(src.dtypes[0])
        bounded = dtype.kind == "u" and dtype.itemsize <= 4
        nodata = src.nodata
        rows = max(1, STRIPE_PIXELS // max(src.width, 1))
        found = False
        for row in range(0, src.height, rows):
            values = src.read(1, window=Window(0, row, src.width, min(rows, src.height - row)))
            valid = values != 0
            if nodata is not None:
                valid &= values != nodata
            if dtype.kind == "f":
                valid &= np.isfinite(values)
            _check_ids(values[valid], path)
            found = found or bool(valid.any())
            if found and bounded:
                break
        if not found:
            raise InputDataError(f"segmentation '{path}' ({KEY}) holds no segment: every pixel is 0 or nodata; give "
                                 "a raster of segment ids > 0, or remove the key to compute SLIC superpixels")


def _check_ids(values: np.ndarray, path) -> None:
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 1 or high > MAX_ID:
        bad = low if low < 1 else high
        raise InputDataError(f"segmentation '{path}' ({KEY}) holds the value {bad}, not a segment id: ids must be "
                             f"integers from 1 to {MAX_ID} (0 or the file's nodata for no segment); renumber it")
    if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
        raise InputDataError(f"segmentation '{path}' ({KEY}) holds fractional values (e.g. "
                             f"{values[np.mod(values, 1) != 0][0]}); segment ids must be integers")


def _crs_name(crs) -> str:
    from rasterio.crs import CRS

    crs = CRS.from_user_input(crs)
    return crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}"


def check_segmentation(path: str | Path, grids: dict[str, Grid]) -> str:
    """Check ``obia.obia_segmentation_path`` before any work.

    Parameters
    ----------
    path
        The segmentation: a polygon file or a raster of segment ids, in any CRS.
    grids
        The grid of each tile of the run.

    Returns
    -------
    str
        ``"vector"`` or ``"raster"``.

    Raises
    ------
    InputDataError
        Naming ``obia.obia_segmentation_path`` and the file: missing or unreadable, without CRS, a vector that is
        not polygons, no segment (no feature, or no non-zero id), values that are not uint32 ids, or an extent
        that meets none of the tiles (the message gives the tiles, the file's extent and CRS). Tiles the
        extent does not meet get a warning (their map stays empty); a file in another CRS a log line.
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    path = Path(path)
    kind = segmentation_kind(path)
    if kind == "vector":
        info = _vector_info(path)
        crs, bounds = CRS.from_user_input(info["crs"]), tuple(info["total_bounds"])
    else:
        _raster_scan(path)
        with open_raster(path) as src:
            crs, bounds = src.crs, tuple(src.bounds)
    tiles_crs = next(iter(grids.values())).crs
    if not CRS.from_user_input(crs) == tiles_crs:
        LOGGER.warning("segmentation '%s' (%s) is in %s; reprojected to the tiles' CRS %s", path, KEY,
                       _crs_name(crs), _crs_name(tiles_crs))
    covered, uncovered = [], []
    for tile, grid in grids.items():
        left, bottom, right, top = transform_bounds(crs, grid.crs, *bounds, densify_pts=21)
        t_left, t_bottom, t_right, t_top = grid.bounds
        meets = left < t_right and right > t_left and bottom < t_top and top > t_bottom
        (covered if meets else uncovered).append(tile)
    if not covered:
        extent = ", ".join(f"{value:.1f}" for value in bounds)
        raise InputDataError(f"segmentation '{path}' ({KEY}) covers none of the tiles {', '.join(grids)}: its extent "
                             f"is ({extent}) in {_crs_name(crs)}; give a segmentation of these tiles")
    if uncovered:
        LOGGER.warning("segmentation '%s' (%s) does not cover tile(s) %s; their maps stay empty", path, KEY,
                       ", ".join(uncovered))
    return kind


def _stripes(grid: Grid, stripe_pixels: int) -> list:
    """Full-width windows of rows of at most ``stripe_pixels`` pixels (multiples of 256 rows when taller)."""
    from rasterio.windows import Window

    rows = max(1, stripe_pixels // max(grid.width, 1))
    if rows >= 256:
        rows -= rows % 256
    return [Window(0, row, grid.width, min(rows, grid.height - row)) for row in range(0, grid.height, rows)]


def _tile_segments(path: Path, grid: Grid):
    """The features of a vector segmentation that meet the tile: ``segment`` (1 + position in the file) and the
    geometry in the tile's CRS, ordered by id."""
    import geopandas as gpd
    import pyogrio
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    info = _vector_info(path)
    crs = CRS.from_user_input(info["crs"])
    every_fid = pyogrio.read_dataframe(path, read_geometry=False, columns=[], fid_as_index=True).index.to_numpy()
    bbox = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    frame = pyogrio.read_dataframe(path, bbox=bbox, columns=[], fid_as_index=True)
    fids = frame.index.to_numpy()
    if every_fid.size and np.all(np.diff(every_fid) > 0):
        positions = np.searchsorted(every_fid, fids)
    else:
        lookup = {int(fid): position for position, fid in enumerate(every_fid)}
        positions = np.array([lookup[int(fid)] for fid in fids], dtype=np.int64)
    geometries = np.asarray(frame.geometry.values, dtype=object)
    segments = gpd.GeoDataFrame({"segment": (positions + 1).astype(np.uint32)}, geometry=geometries, crs=crs)
    segments = segments[~(shapely.is_missing(geometries) | shapely.is_empty(geometries))]
    if not segments.crs.equals(grid.crs):
        segments = segments.to_crs(grid.crs)
    invalid = ~segments.geometry.is_valid
    if invalid.any():
        segments.loc[invalid, "geometry"] = shapely.make_valid(segments.geometry[invalid].values)
    segments = segments[segments.intersects(shapely.box(*grid.bounds))]
    return segments.sort_values("segment").reset_index(drop=True)


def _burn(segments, grid: Grid, all_touched: bool = False, only=None) -> np.ndarray:
    """Segment ids of ``segments`` (id order: the later wins) burnt on ``grid``; ``only`` restricts to ids."""
    import rasterio.features
    import shapely

    out = np.zeros((grid.height, grid.width), np.uint32)
    chosen = segments.sindex.query(shapely.box(*grid.bounds), predicate="intersects")
    chosen.sort()
    if only is not None:
        chosen = chosen[np.isin(segments["segment"].to_numpy()[chosen], only)]
    if chosen.size:
        shapes = zip(segments.geometry.values[chosen], segments["segment"].to_numpy()[chosen].tolist())
        rasterio.features.rasterize(shapes, out=out, transform=grid.transform, all_touched=all_touched)
    return out


def rasterise_segmentation(segmentation_path: str, tile: str, grid: dict, output_path: str, *,
                           compression: str = "ZSTD", stripe_pixels: int = STRIPE_PIXELS) -> None:
    """Task: write the segment ids of ``tile`` (:meth:`OutputLayout.segments`, uint32, nodata 0) on its grid.

    Parameters
    ----------
    segmentation_path
        ``obia.obia_segmentation_path`` (checked by :func:`check_segmentation`).
    tile, grid
        The tile and its grid (:meth:`Grid.to_dict`).
    output_path
        ``chain.output_path``.
    compression
        GeoTIFF compression (``chain.compression_algorithm``).
    stripe_pixels
        Most pixels burnt or read at once.

    Notes
    -----
    Vector: pixel-centre rule, then ``all_touched`` on free pixels for the segments left without a pixel (see the
    module). Raster: nearest-neighbour resampling onto the grid, the file's nodata and 0 written as 0.
    The file is written atomically; an error leaves no file.
    """
    import rasterio
    import rasterio.enums

    from iota2.core.raster import read_onto_grid

    path = Path(segmentation_path)
    grid = Grid.from_dict(grid) if isinstance(grid, dict) else grid
    target = OutputLayout(output_path).segments(tile)
    kind = segmentation_kind(path)
    stripes = _stripes(grid, stripe_pixels)
    profile = grid.profile(dtype="uint32", nodata=0, compress=compression)
    with atomic_output(target) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        if kind == "vector":
            segments = _tile_segments(path, grid)
            wanted = segments["segment"].to_numpy()
            single = len(stripes) == 1
            present: set[int] = set()
            kept = None
            for window in stripes:  # first pass: who gets a pixel centre
                burnt = _burn(segments, grid.window_grid(window))
                present.update(np.unique(burnt).tolist())
                kept = burnt if single else None
            without = np.setdiff1d(wanted, np.fromiter(present, np.int64, len(present)))
            touched: set[int] = set()
            for window in stripes:
                stripe = grid.window_grid(window)
                ids = kept if single else _burn(segments, stripe)
                if without.size:
                    extra = _burn(segments, stripe, all_touched=True, only=without)
                    free = ids == 0
                    ids[free] = extra[free]
                    touched.update(np.unique(extra[free]).tolist())
                dst.write(ids, 1, window=window)
            touched.discard(0)
            lost = int(without.size - len(touched))
            if without.size:
                LOGGER.info("tile %s: %d segment(s) of '%s' smaller than a pixel or thin were burnt on the pixels "
                            "they touch", tile, len(touched), path)
            if lost:
                LOGGER.warning("tile %s: %d segment(s) of '%s' (%s) get no pixel (every pixel they touch belongs to "
                               "other segments); they are not classified", tile, lost, path, KEY)
            LOGGER.info("tile %s: %d segment(s) of '%s' burnt", tile, int(wanted.size - lost), path)
            empty = wanted.size - lost == 0
        else:
            empty = True
            for window in stripes:
                values, valid = read_onto_grid(path, grid.window_grid(window), rasterio.enums.Resampling.nearest,
                                               0, bands=1, with_valid=True, label=f"segmentation ({KEY})")
                if values.dtype.kind == "f":
                    valid &= np.isfinite(values)
                _check_ids(values[valid], path)
                ids = np.where(valid, values, 0).astype(np.uint32)
                empty = empty and not ids.any()
                dst.write(ids, 1, window=window)
    if empty:
        LOGGER.warning("tile %s: segmentation '%s' (%s) has no segment on the tile; its map stays empty", tile,
                       path, KEY)


def _polygonise(raster: Path, stripe_pixels: int):
    """Polygons of the ids of a segment raster, by stripes, dissolved by id: ``segment`` + geometry."""
    import geopandas as gpd
    import pandas as pd
    import rasterio.features
    import shapely
    from rasterio.windows import Window

    ids_out, geometries = [], []
    with open_raster(raster) as src:
        grid = Grid.from_dataset(src)
        for window in _stripes(grid, stripe_pixels):
            ids = src.read(1, window=Window(window.col_off, window.row_off, window.width, window.height))
            if not ids.any():
                continue
            values, inverse = np.unique(ids, return_inverse=True)
            inverse = inverse.reshape(ids.shape).astype(np.int32)
            for geometry, index in rasterio.features.shapes(inverse, mask=ids != 0,
                                                            transform=grid.window_grid(window).transform):
                ids_out.append(int(values[int(index)]))
                geometries.append(shapely.geometry.shape(geometry))
    frame = gpd.GeoDataFrame({"segment": np.asarray(ids_out, dtype=np.uint32)},
                             geometry=np.asarray(geometries, dtype=object) if geometries else [], crs=grid.crs)
    repeated = frame["segment"].duplicated(keep=False).to_numpy()
    if repeated.any():  # segments cut by stripes, or in several parts
        merged = frame[repeated].dissolve(by="segment", as_index=False)
        frame = gpd.GeoDataFrame(pd.concat([frame[~repeated], merged[["segment", "geometry"]]],
                                               ignore_index=True), crs=grid.crs)
    frame["segment"] = frame["segment"].astype(np.uint32)
    return frame.sort_values("segment").reset_index(drop=True)


def _raster_ids(raster: Path, stripe_pixels: int) -> np.ndarray:
    """The non-zero ids of a segment raster, read by stripes."""
    from rasterio.windows import Window

    found = np.zeros(0, np.uint32)
    with open_raster(raster) as src:
        for window in _stripes(Grid.from_dataset(src), stripe_pixels):
            ids = np.unique(src.read(1, window=Window(window.col_off, window.row_off, window.width, window.height)))
            found = np.union1d(found, ids)
    return found[found != 0].astype(np.uint32)


def segment_polygons(tile: str, grid: dict, output_path: str, segmentation_path: str | None, *,
                     stripe_pixels: int = STRIPE_PIXELS):
    """The polygons of the segments of ``tile``.

    Parameters
    ----------
    tile, grid
        The tile and its grid (:meth:`Grid.to_dict`).
    output_path
        ``chain.output_path`` (where :func:`rasterise_segmentation` or the SLIC step wrote the tile's ids).
    segmentation_path
        ``obia.obia_segmentation_path``, or None for SLIC superpixels (:meth:`OutputLayout.slic`).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``segment`` (uint32 id) and geometry, in the tile's CRS, one row per id, ordered by id. A vector
        segmentation gives its own geometries (reprojected, not clipped to the tile) of the ids present in the
        tile's id raster; a raster segmentation and SLIC give the pixels of each id polygonised and dissolved
        (a segment in several parts is a MultiPolygon).
    """
    layout = OutputLayout(output_path)
    grid = Grid.from_dict(grid) if isinstance(grid, dict) else grid
    if segmentation_path and segmentation_kind(segmentation_path) == "vector":
        present = _raster_ids(layout.segments(tile), stripe_pixels)
        segments = _tile_segments(Path(segmentation_path), grid)
        return segments[segments["segment"].isin(present)].reset_index(drop=True)
    raster = layout.segments(tile) if segmentation_path else layout.slic(tile)
    return _polygonise(raster, stripe_pixels)
