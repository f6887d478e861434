"""Ground truth and regions: checks, reprojection, clipping to tiles and regions, learn/validation split.

Bad input raises :class:`InputDataError` naming the file, the field or the polygons, before any heavy
work: missing file, truncated shapefile or one whose .shp/.shx/.dbf disagree, not polygons, missing or
non-integer class field, label 0, negative or above 65535, polygons of different classes that overlap, no
polygon intersecting the tiles. Features without geometry are dropped with a warning giving their number.

The split is done once over the whole ground truth, per (region, class) and per run, on the
polygons clipped to the regions (reference: iota2 splits tile by tile, so a polygon crossing two
tiles could be learnt in one and validated in the other; splitting globally avoids that leak).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import box

from iota2.builders.sampling import split_polygons
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output
from iota2.core.sensor import warn_once

LOGGER = logging.getLogger(__name__)
#: largest class label: maps are written as uint8 or uint16 (0 is no-data)
MAX_LABEL = 65535


def _sibling(path: Path, suffix: str) -> Path | None:
    """The file next to ``path`` with ``suffix`` in either case, or None."""
    for candidate in (path.with_suffix(suffix.lower()), path.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def check_shapefile(path: str | Path, what: str, key: str) -> None:
    """Refuse a truncated shapefile or one whose .shp, .shx and .dbf do not hold the same records.

    GDAL reads such a file without an error: a .shp cut short gives features without geometry, and a .dbf of
    another length silently gives fewer features. The headers tell: the .shp and .shx headers give their
    file length, every .shx record gives the position and length of its shape in the .shp, and the .dbf
    header gives its record count and size.

    Parameters
    ----------
    path
        A ``.shp`` file (other files are not checked).
    what, key
        What the file is and its configuration key, for the message.

    Raises
    ------
    InputDataError
        Naming the damaged file and what is wrong with it.
    """
    path = Path(path)
    if path.suffix.lower() != ".shp":
        return

    def damaged(file: Path, problem: str) -> InputDataError:
        return InputDataError(f"{what} '{path}' is damaged: {file.name} {problem}; its features cannot all be "
                              f"read. Export the layer again (e.g. ogr2ogr) and set {key} to the new file")

    shp_size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or int.from_bytes(header[0:4], "big") != 9994:
        raise damaged(path, "has no valid shapefile header")
    declared = int.from_bytes(header[24:28], "big") * 2
    if declared != shp_size:
        raise damaged(path, f"is {shp_size} bytes long but its header says {declared} (the file was cut or "
                      "written only in part)")
    shx = _sibling(path, ".shx")
    records = None
    if shx is not None:
        data = shx.read_bytes()
        if len(data) < 100 or int.from_bytes(data[24:28], "big") * 2 != len(data) or (len(data) - 100) % 8:
            raise damaged(shx, f"is {len(data)} bytes long, which its header does not announce")
        index = np.frombuffer(data, dtype=">i4", offset=100).reshape(-1, 2).astype(np.int64) * 2
        records = len(index)
        ends = index[:, 0] + 8 + index[:, 1]
        if records and (ends.max() > shp_size or index[:, 0].min() < 100):
            bad = int(np.count_nonzero((ends > shp_size) | (index[:, 0] < 100)))
            raise damaged(path, f"lacks {bad} of the {records} shapes listed in {shx.name}")
    dbf = _sibling(path, ".dbf")
    if dbf is not None:
        dbf_size = dbf.stat().st_size
        with open(dbf, "rb") as handle:
            head = handle.read(12)
        if len(head) < 12:
            raise damaged(dbf, "has no valid dBASE header")
        count = int.from_bytes(head[4:8], "little")
        header_size, record_size = int.from_bytes(head[8:10], "little"), int.from_bytes(head[10:12], "little")
        if dbf_size < header_size + count * record_size:
            raise damaged(dbf, f"is {dbf_size} bytes long, too short for the {count} records its header announces")
        if records is not None and count != records:
            raise damaged(dbf, f"has {count} records but {shx.name} lists {records} shapes (the files come from "
                          "different exports)")


def read_polygons(path: str, what: str, key: str) -> gpd.GeoDataFrame:
    """Read a polygon layer (any OGR format); ``what``/``key`` name it in errors.

    A damaged shapefile is refused (:func:`check_shapefile`); features without geometry or with an empty one
    are dropped with one warning giving their number.
    """
    if not path or not Path(path).exists():
        raise InputDataError(f"{what} '{path}' does not exist; set {key} to an existing vector file")
    check_shapefile(path, what, key)
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # noqa: BLE001 - any OGR failure
        raise InputDataError(f"{what} '{path}' cannot be read as a vector file ({exc}); set {key} to a "
                             "shapefile, GeoPackage, SQLite or GeoJSON file") from exc
    if frame.crs is None:
        raise InputDataError(f"{what} '{path}' has no coordinate reference system; define it (e.g. a .prj file)")
    if len(frame) == 0:
        raise InputDataError(f"{what} '{path}' contains no feature")
    geometries = np.asarray(frame.geometry.values, dtype=object)
    has_geometry = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    if not has_geometry.all():
        dropped = int((~has_geometry).sum())
        if dropped == len(frame):
            raise InputDataError(f"{what} '{path}': none of its {dropped} features has a geometry; set {key} to a "
                                 "file of polygons")
        rows = ", ".join(map(str, frame.index[~has_geometry][:5].tolist()))
        warn_once(LOGGER, "%s '%s': %d of %d features have no geometry or an empty one (rows %s%s); they are "
                  "dropped", what, path, dropped, len(frame), rows, ", ..." if dropped > 5 else "")
    frame = frame[has_geometry]
    kinds = set(frame.geometry.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputDataError(f"{what} '{path}' must contain polygons, found {', '.join(sorted(kinds))}; "
                             "buffer points or lines into polygons first")
    invalid = ~frame.geometry.is_valid
    if invalid.any():
        LOGGER.warning("%s '%s': %d invalid polygon(s) repaired with make_valid", what, path, int(invalid.sum()))
        frame.loc[invalid, "geometry"] = shapely.make_valid(frame.geometry[invalid].values)
        frame = frame.explode(index_parts=False)
        frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    return frame


def check_labels(frame: gpd.GeoDataFrame, field: str, path: str) -> pd.Series:
    """Return the class field as int64, or raise a clear error."""
    if field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != "geometry")
        raise InputDataError(f"ground truth '{path}' has no field '{field}' (chain.data_field); its fields are: "
                             f"{fields}")
    values = frame[field]
    if values.isna().any():
        raise InputDataError(f"ground truth '{path}': {int(values.isna().sum())} polygon(s) have no value in "
                             f"'{field}'; give every polygon a class label")
    if not pd.api.types.is_numeric_dtype(values):
        raise InputDataError(f"ground truth '{path}': field '{field}' must hold integer class labels, found "
                             f"{values.dtype} values like {values.iloc[0]!r}; recode the classes as integers > 0")
    if not np.all(np.equal(np.mod(values.to_numpy(dtype=float), 1), 0)):
        raise InputDataError(f"ground truth '{path}': field '{field}' has non-integer labels (e.g. "
                             f"{values[np.mod(values, 1) != 0].iloc[0]}); class labels must be integers > 0")
    labels = values.astype(np.int64)
    if (labels <= 0).any():
        bad = frame.index[labels <= 0][:5].tolist()
        raise InputDataError(f"ground truth '{path}': label 0 or negative in '{field}' (rows {bad}); 0 is the "
                             "no-data value of every map: give these polygons a label > 0 or remove them")
    if (labels > MAX_LABEL).any():
        bad = sorted(set(labels[labels > MAX_LABEL].tolist()))
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        raise InputDataError(f"ground truth '{path}' (chain.ground_truth): label(s) {shown} of field '{field}' "
                             f"(chain.data_field) exceed {MAX_LABEL}, the largest label a map holds (uint16); "
                             f"recode these classes with labels from 1 to {MAX_LABEL}")
    return labels


def check_overlaps(frame: gpd.GeoDataFrame, field: str, path: str) -> None:
    """Polygons of different classes that overlap → error; of the same class → warning."""
    left, right = frame.sindex.query(frame.geometry.values, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if len(left) == 0:
        return
    geoms = frame.geometry.values
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    overlapping = areas > 1e-9 * np.maximum(shapely.area(geoms[left]), 1.0)
    left, right = left[overlapping], right[overlapping]
    if len(left) == 0:
        return
    labels = frame[field].to_numpy()
    different = labels[left] != labels[right]
    if different.any():
        examples = ", ".join(f"rows {a} and {b} ({labels[a]} vs {labels[b]})"
                             for a, b in list(zip(left[different], right[different]))[:3])
        raise InputDataError(f"ground truth '{path}': {int(different.sum())} pair(s) of polygons of different "
                             f"classes overlap ({examples}); their shared pixels have no single label: fix the "
                             "polygons (e.g. difference or dissolve)")
    LOGGER.warning("ground truth '%s': %d pair(s) of polygons of the same class overlap; their shared pixels "
                   "are counted once", path, len(left))


def tile_envelopes(grids: dict[str, Grid]) -> gpd.GeoDataFrame:
    """Disjoint tile envelopes: each tile's extent minus the extents of the tiles listed before it."""
    rows, taken = [], None
    crs = next(iter(grids.values())).crs
    for tile, grid in grids.items():
        extent = box(*grid.bounds)
        envelope = extent if taken is None else extent.difference(taken)
        taken = extent if taken is None else taken.union(extent)
        rows.append({"tile": tile, "geometry": envelope})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def load_ground_truth(path: str, field: str, crs) -> gpd.GeoDataFrame:
    """Read, check and reproject the ground truth (``chain.ground_truth``, class field ``chain.data_field``);
    columns ``label``, ``originfid``, geometry."""
    frame = read_polygons(path, "ground truth", "chain.ground_truth")
    labels = check_labels(frame, field, path)
    frame = gpd.GeoDataFrame({"label": labels.to_numpy(), "originfid": np.arange(len(frame))},
                             geometry=frame.geometry.values, crs=frame.crs)
    if not frame.crs.equals(crs):
        LOGGER.warning("ground truth '%s' is in %s; reprojected to the tiles' CRS %s", path,
                       frame.crs.to_string(), crs.to_string() if hasattr(crs, "to_string") else crs)
        frame = frame.to_crs(crs)
    check_overlaps(frame, "label", path)
    return frame


def load_regions(path: str | None, field: str, crs) -> gpd.GeoDataFrame | None:
    """Read the region file (``chain.region_path``, region attribute ``chain.region_field``) as ``region``
    (string) + geometry, or None without a region file."""
    if not path:
        return None
    frame = read_polygons(path, "region file", "chain.region_path")
    if field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != "geometry")
        raise InputDataError(f"region file '{path}' has no field '{field}' (chain.region_field); its fields are: "
                             f"{fields}")
    regions = gpd.GeoDataFrame({"region": frame[field].astype(str).str.strip().to_numpy()},
                               geometry=frame.geometry.values, crs=frame.crs)
    if not regions.crs.equals(crs):
        LOGGER.warning("region file '%s' reprojected to the tiles' CRS", path)
        regions = regions.to_crs(crs)
    return regions.dissolve(by="region", as_index=False)


def formatted_ground_truth(grids: dict[str, Grid], ground_truth: str, data_field: str, region_path: str | None = None,
                           region_field: str | None = "region") -> gpd.GeoDataFrame:
    """Ground truth clipped to the tile envelopes and regions, with ``tile``, ``region`` and a unique ``piece``.

    Parameters
    ----------
    grids
        Grid of each tile.
    ground_truth, data_field
        ``chain.ground_truth`` and ``chain.data_field``.
    region_path, region_field
        ``chain.region_path`` (None: one region ``"1"``) and ``chain.region_field``.

    Raises
    ------
    InputDataError
        When no polygon intersects the tiles (or the regions).
    """
    crs = next(iter(grids.values())).crs
    truth = load_ground_truth(ground_truth, data_field, crs)
    envelopes = tile_envelopes(grids)
    pieces = gpd.overlay(truth, envelopes, how="intersection", keep_geom_type=True)
    if len(pieces) == 0:
        extent = truth.total_bounds
        raise InputDataError(f"no ground-truth polygon of '{ground_truth}' intersects the tiles "
                             f"{', '.join(grids)} (ground truth extent {extent.round(1).tolist()} in "
                             f"{crs.to_string()}, tiles extent {np.round(envelopes.total_bounds, 1).tolist()}); "
                             "check chain.list_tile and the CRS of both")
    regions = load_regions(region_path, region_field, crs)
    if regions is None:
        pieces["region"] = "1"
    else:
        pieces = gpd.overlay(pieces, regions, how="intersection", keep_geom_type=True)
        if len(pieces) == 0:
            raise InputDataError(f"no ground-truth polygon intersects the regions of '{region_path}'")
    pieces = pieces.explode(index_parts=False).reset_index(drop=True)
    pieces = pieces[pieces.geometry.area > 0].reset_index(drop=True)
    pieces["piece"] = np.arange(len(pieces), dtype=np.int64)
    return pieces[["piece", "label", "originfid", "tile", "region", "geometry"]]


def split_runs(pieces: gpd.GeoDataFrame, runs: int, ratio: float, random_seed: int | None,
               split_ground_truth: bool = True) -> gpd.GeoDataFrame:
    """Add one column ``seed_<S>`` per run holding ``learn``, ``validation`` or ``both``.

    The split unit is a source polygon within a region (all its tile pieces go to the same set); ``runs``,
    ``ratio``, ``random_seed`` and ``split_ground_truth`` are those of ``arg_train``.
    """
    units = pieces.drop_duplicates(["region", "originfid"])[["region", "originfid", "label"]].reset_index(drop=True)
    for run in range(runs):
        sets = split_polygons(units, "label", "region", ratio, random_seed, run, split_ground_truth)
        mapping = dict(zip(zip(units["region"], units["originfid"]), sets))
        pieces[f"seed_{run}"] = [mapping[(r, o)] for r, o in zip(pieces["region"], pieces["originfid"])]
    return pieces


def write_split_files(pieces: gpd.GeoDataFrame, output_path: Path, data_field: str, runs: int) -> None:
    """Write ``formattingVectors/ground_truth_formatted.parquet`` and, per tile and run,
    ``dataAppVal/<T>_seed_<S>_learn.sqlite`` / ``_val.sqlite`` (layer ``output``, field ``data_field``)."""
    layout = OutputLayout(output_path)
    with atomic_output(layout.formatted_ground_truth) as tmp:
        pieces.to_parquet(tmp)
    for tile, tile_pieces in pieces.groupby("tile"):
        for run in range(runs):
            column = tile_pieces[f"seed_{run}"]
            for suffix, keep in (("learn", ("learn", "both")), ("val", ("validation", "both"))):
                subset = tile_pieces[column.isin(keep)]
                frame = gpd.GeoDataFrame({data_field.lower(): subset["label"].to_numpy(),
                                          "region": subset["region"].to_numpy(),
                                          "originfid": subset["originfid"].to_numpy(),
                                          "tile_o": subset["tile"].to_numpy()},
                                         geometry=subset.geometry.values, crs=pieces.crs)
                target = layout.split_polygons(tile, run, suffix)
                with atomic_output(target) as tmp:
                    pyogrio.write_dataframe(frame, tmp, driver="SQLite", layer="output", promote_to_multi=True)


def read_formatted(output_path: Path) -> gpd.GeoDataFrame:
    return gpd.read_parquet(OutputLayout(output_path).formatted_ground_truth)
