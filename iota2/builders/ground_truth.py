"""Ground truth and regions: checks, reprojection, clipping to tiles and regions, learn/validation split.

Bad input raises :class:`InputDataError` naming the file, the field or the polygons, before any heavy
work: missing file, not polygons, missing or non-integer class field, label 0 or negative, polygons
of different classes that overlap, no polygon intersecting the tiles.

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
from iota2.core.raster import Grid, atomic_output

LOGGER = logging.getLogger(__name__)
FORMATTED_NAME = "ground_truth_formatted.parquet"


def read_polygons(path: str, what: str, key: str) -> gpd.GeoDataFrame:
    """Read a polygon layer (any OGR format); ``what``/``key`` name it in errors."""
    if not path or not Path(path).exists():
        raise InputDataError(f"{what} '{path}' does not exist; set {key} to an existing vector file")
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # noqa: BLE001 - any OGR failure
        raise InputDataError(f"{what} '{path}' cannot be read as a vector file ({exc}); set {key} to a "
                             "shapefile, GeoPackage, SQLite or GeoJSON file") from exc
    if frame.crs is None:
        raise InputDataError(f"{what} '{path}' has no coordinate reference system; define it (e.g. a .prj file)")
    if len(frame) == 0:
        raise InputDataError(f"{what} '{path}' contains no feature")
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
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


def load_ground_truth(config, crs) -> gpd.GeoDataFrame:
    """Read, check and reproject the ground truth; columns ``label``, ``originfid``, geometry."""
    chain = config["chain"]
    path, field = chain["ground_truth"], chain["data_field"]
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


def load_regions(config, crs) -> gpd.GeoDataFrame | None:
    """Read the region file (``chain.region_path``) as ``region`` (string) + geometry, or None."""
    chain = config["chain"]
    path = chain.get("region_path")
    if not path:
        return None
    frame = read_polygons(path, "region file", "chain.region_path")
    field = chain["region_field"]
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


def formatted_ground_truth(config, grids: dict[str, Grid]) -> gpd.GeoDataFrame:
    """Ground truth clipped to the tile envelopes and regions, with ``tile``, ``region`` and a unique ``piece``.

    Raises :class:`InputDataError` when no polygon intersects the tiles.
    """
    crs = next(iter(grids.values())).crs
    truth = load_ground_truth(config, crs)
    envelopes = tile_envelopes(grids)
    pieces = gpd.overlay(truth, envelopes, how="intersection", keep_geom_type=True)
    if len(pieces) == 0:
        extent = truth.total_bounds
        raise InputDataError(f"no ground-truth polygon of '{config['chain']['ground_truth']}' intersects the tiles "
                             f"{', '.join(grids)} (ground truth extent {extent.round(1).tolist()} in "
                             f"{crs.to_string()}, tiles extent {np.round(envelopes.total_bounds, 1).tolist()}); "
                             "check chain.list_tile and the CRS of both")
    regions = load_regions(config, crs)
    if regions is None:
        pieces["region"] = "1"
    else:
        pieces = gpd.overlay(pieces, regions, how="intersection", keep_geom_type=True)
        if len(pieces) == 0:
            raise InputDataError(f"no ground-truth polygon intersects the regions of '{config['chain']['region_path']}'")
    pieces = pieces.explode(index_parts=False).reset_index(drop=True)
    pieces = pieces[pieces.geometry.area > 0].reset_index(drop=True)
    pieces["piece"] = np.arange(len(pieces), dtype=np.int64)
    return pieces[["piece", "label", "originfid", "tile", "region", "geometry"]]


def split_runs(pieces: gpd.GeoDataFrame, config) -> gpd.GeoDataFrame:
    """Add one column ``seed_<S>`` per run holding ``learn``, ``validation`` or ``both``.

    The split unit is a source polygon within a region (all its tile pieces go to the same set).
    """
    train = config["arg_train"]
    units = pieces.drop_duplicates(["region", "originfid"])[["region", "originfid", "label"]].reset_index(drop=True)
    for run in range(train["runs"]):
        sets = split_polygons(units, "label", "region", train["ratio"], train["random_seed"], run,
                              train["split_ground_truth"])
        mapping = dict(zip(zip(units["region"], units["originfid"]), sets))
        pieces[f"seed_{run}"] = [mapping[(r, o)] for r, o in zip(pieces["region"], pieces["originfid"])]
    return pieces


def write_split_files(pieces: gpd.GeoDataFrame, output_path: Path, data_field: str, runs: int) -> None:
    """Write ``formattingVectors/ground_truth_formatted.parquet`` and, per tile and run,
    ``dataAppVal/<T>_seed_<S>_learn.sqlite`` / ``_val.sqlite`` (layer ``output``, field ``data_field``)."""
    with atomic_output(output_path / "formattingVectors" / FORMATTED_NAME) as tmp:
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
                target = output_path / "dataAppVal" / f"{tile}_seed_{run}_{suffix}.sqlite"
                with atomic_output(target) as tmp:
                    pyogrio.write_dataframe(frame, tmp, driver="SQLite", layer="output", promote_to_multi=True)


def read_formatted(output_path: Path) -> gpd.GeoDataFrame:
    return gpd.read_parquet(Path(output_path) / "formattingVectors" / FORMATTED_NAME)
