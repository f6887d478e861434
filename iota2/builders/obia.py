"""Tasks of the OBIA builder (``i2_obia``): objects described by zonal statistics, labelled from the ground
truth, classified once, rasterised into the pixel chain's maps and validated by pixel and by object.

An *object* is a segment of the segmentation: a SLIC superpixel of a tile (ids unique in the tile) or a segment
of the user's segmentation (ids global, 1 + the feature's position in a vector file, or the raster's value). Its
key in every table (column ``object``, int64) is the segment id for a user segmentation, so a segment crossing
tiles is one object, and ``(tile position + 1) << 32 | id`` for SLIC (:func:`object_keys`).

Files (T tile, S run, i chunk; see :class:`iota2.core.layout.OutputLayout`):

* ``obia/zonal/<T>_chunk_<i>.npz``: per-segment partial sums of the chunk's features
  (:func:`iota2.core.zonal_stats.partial_statistics`), ``..._regions.parquet`` the regions each segment touches;
* ``obia/objects/<T>_objects.parquet``: the objects a tile holds, their pixel count, region and statistics;
* ``obia/objects/<T>_truth.parquet``: ground-truth pixels per (object, ground-truth piece);
* ``obia/objects/<T>_polygons.parquet``: object outlines;
* ``obia/classif/<T>_seed_<S>_objects.parquet``: the objects' label, confidence and probabilities;
* the pixel chain's samples, models, tile maps, ``final/`` maps and confusion matrices, plus
  ``final/Classif_Seed_<S>_objects.gpkg`` and the object-based confusion matrix.
"""

from __future__ import annotations

import contextlib
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
from rasterio.windows import Window

from iota2.builders.ground_truth import read_formatted
from iota2.builders.sampling import SELECTION_STREAM, params_for_model, run_seed, select_samples
from iota2.core.config import Config
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output, label_dtype

LOGGER = logging.getLogger(__name__)

STRIPE_ROWS = 1024
"""Rows of the segment raster read at once where a task reads it whole (truth pixels)."""

LEARN_SETS = ("learn", "both")
"""Statuses of a ground-truth piece (``seed_<S>``) that make it a learning polygon."""
VALIDATION_SETS = ("validation", "both")
"""Statuses that make it a validation polygon."""

OBJECT_COLUMNS = ("object", "segment", "tile", "pixels", "region")
"""Columns of an objects table before the statistics."""

SQLITE_MAX_COLUMNS = 2000
"""Columns of a SQLite table at most (SQLite's default SQLITE_MAX_COLUMN)."""


# ------------------------------------------------------------------ segments and objects
def segment_raster(output_path, tile: str, user_segmentation: bool):
    """The segment ids of a tile: the user's rasterised segmentation (``segmentation/<T>_segments.tif``) or the
    SLIC superpixels (``features/<T>/tmp/SLIC_<T>.tif``)."""
    layout = OutputLayout(output_path)
    return layout.segments(tile) if user_segmentation else layout.slic(tile)


def object_keys(segments: np.ndarray, tile_index: int, user_segmentation: bool) -> np.ndarray:
    """The object key (int64) of segment ids of the tile at position ``tile_index`` of ``chain.list_tile``.

    A user segmentation's ids are global: the key is the id. SLIC ids are unique within a tile only: the key
    is ``(tile_index + 1) << 32 | id``. Id 0 (no segment) stays 0.
    """
    segments = np.asarray(segments).astype(np.int64)
    if user_segmentation:
        return segments
    return np.where(segments > 0, ((tile_index + 1) << 32) | segments, 0)


def owned_mask(window: Window, grid: Grid, earlier: list[Grid]) -> np.ndarray:
    """True for the pixels of ``window`` whose centre lies in none of the ``earlier`` tiles' extents (the tile
    envelopes of the ground truth): a user segment crossing overlapping tiles counts each pixel once."""
    rows, cols = int(window.height), int(window.width)
    owned = np.ones((rows, cols), dtype=bool)
    if not earlier:
        return owned
    transform = grid.transform
    xs = transform.c + transform.a * (int(window.col_off) + np.arange(cols) + 0.5)
    ys = transform.f + transform.e * (int(window.row_off) + np.arange(rows) + 0.5)
    for other in earlier:
        west, south, east, north = other.bounds
        inside_x = (xs >= west) & (xs < east)
        inside_y = (ys > south) & (ys <= north)
        owned &= ~(inside_y[:, None] & inside_x[None, :])
    return owned


def _read_window(path, window: Window) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, window=window)


def zonal_chunk(config: dict, tile: str, grid: dict, window: list[int], chunk: int, dates_by_sensor: dict,
                output_path: str, *, user_segmentation: bool, stats: list[str], earlier_grids: list[dict],
                by_region: bool = False, buffer_size: int | None = None) -> None:
    """Per-segment partial statistics of the features of one chunk (and the regions its segments touch).

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration.
    tile, grid, window, chunk
        The tile, its grid (:meth:`iota2.core.raster.Grid.to_dict`), the chunk's ``[col_off, row_off, width,
        height]`` and its index.
    dates_by_sensor
        Interpolation dates of each sensor.
    output_path
        ``chain.output_path``.
    user_segmentation
        The segments are the user's (``obia.obia_segmentation_path``), else SLIC superpixels.
    stats
        ``obia.stats_used``.
    earlier_grids
        Grids of the tiles listed before this one: with a user segmentation their pixels are left out here
        (:func:`owned_mask`), so a pixel of an overlap counts once.
    by_region
        ``chain.region_path`` is set: also write the regions each segment touches.
    buffer_size
        ``obia.buffer_size``: pixels per batch of the grouped sums (None: the whole chunk).
    """
    from iota2.core.zonal_stats import partial_statistics, write_partials

    config = Config(config)
    grid = Grid.from_dict(grid)
    window = Window(*window)
    layout = OutputLayout(output_path)
    block = read_features(config, tile, grid, window, dates_by_sensor)
    segments = _read_window(segment_raster(output_path, tile, user_segmentation), window).astype(np.uint32)
    mask = block.footprint.copy()
    if user_segmentation:
        mask &= owned_mask(window, grid, [Grid.from_dict(other) for other in earlier_grids])
    partials = partial_statistics(segments, block.features, list(stats), mask=mask, batch_pixels=buffer_size)
    write_partials(layout.zonal_partials(tile, chunk), partials)
    if by_region:
        regions = _read_window(layout.region_raster(tile), window)
        with rasterio.open(layout.region_raster(tile)) as src:
            names = src.tags().get("regions", "").split(",")
        keep = mask & (segments > 0) & (regions > 0)
        pairs = np.unique(np.stack([segments[keep].astype(np.int64), regions[keep].astype(np.int64)]), axis=1)
        table = pd.DataFrame({"segment": pairs[0].astype(np.uint32),
                              "region": [names[index - 1] for index in pairs[1].tolist()]})
        with atomic_output(layout.zonal_regions(tile, chunk)) as tmp:
            table.to_parquet(tmp, index=False)
    LOGGER.info("%s chunk %d: statistics of %d segments", tile, chunk, len(partials.segments))


def _subset(partials, keep: np.ndarray):
    """The rows ``keep`` (boolean or indices) of a :class:`iota2.core.zonal_stats.ZonalPartials`."""
    from iota2.core.zonal_stats import ZonalPartials

    fields = ("segments", "count", "sum", "sumsq", "min", "max")
    return ZonalPartials(*(None if getattr(partials, name) is None else np.asarray(getattr(partials, name))[keep]
                           for name in fields))


def _feature_labels(config: Config, tile: str, grid: Grid, dates_by_sensor: dict) -> list[str]:
    """The feature labels of a tile (read from one pixel: the labels do not depend on the window)."""
    return list(read_features(config, tile, grid, Window(0, 0, 1, 1), dates_by_sensor).labels)


def region_of_objects(segments: np.ndarray, pairs: pd.DataFrame, order: list[str]) -> np.ndarray:
    """The region of each segment: the first region of ``order`` it touches ("" if none).

    Parameters
    ----------
    segments
        Segment ids.
    pairs
        (segment, region) rows: the regions each segment touches.
    order
        Region names in priority order (``obia.region_priority``, then the others in numeric order).
    """
    result = np.full(len(segments), "", dtype=object)
    if len(pairs) == 0:
        return result
    rank = {name: position for position, name in enumerate(order)}
    pairs = pairs[pairs["region"].isin(rank)].copy()
    pairs["rank"] = pairs["region"].map(rank)
    best = pairs.sort_values(["segment", "rank"], kind="stable").drop_duplicates("segment")
    lookup = dict(zip(best["segment"].astype(np.int64).tolist(), best["region"].tolist()))
    return np.array([lookup.get(int(segment), "") for segment in segments], dtype=object)


def object_statistics(config: dict, tile: str, tiles: list[str], grids: dict, chunks_by_tile: dict[str, int],
                      dates_by_sensor: dict, output_path: str, *, user_segmentation: bool, stats: list[str],
                      region_order: list[str] | None = None) -> None:
    """The objects a tile holds and their statistics: ``obia/objects/<T>_objects.parquet``.

    The partial sums of the tile's chunks are combined, so a segment cut by chunk borders is described by all its
    pixels. With a user segmentation the partial sums of the other tiles' chunks are added for the segments
    present here, so a segment crossing tiles is described by all its pixels too; such a segment is held (and
    classified) by the tile with most of its pixels, the first listed on a tie.

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` (the feature labels are read from one pixel).
    tile
        The tile.
    tiles
        Every tile, in ``chain.list_tile`` order.
    grids
        Grid of each tile.
    chunks_by_tile
        Number of chunks of each tile.
    dates_by_sensor
        Interpolation dates of each sensor.
    output_path
        ``chain.output_path``.
    user_segmentation, stats
        See :func:`zonal_chunk`.
    region_order
        Region names in priority order (with ``chain.region_path``); None: one region ``"1"``.

    The table has the columns :data:`OBJECT_COLUMNS` (object key, segment id, holding tile, pixels used, region)
    and one float32 column per feature and statistic, named ``<feature label>_<stat>``.
    """
    from iota2.core.zonal_stats import combine, read_partials, statistics_table

    layout = OutputLayout(output_path)
    own = combine([read_partials(layout.zonal_partials(tile, chunk)) for chunk in range(chunks_by_tile[tile])])
    own_segments = np.asarray(own.segments)
    held = np.ones(len(own_segments), dtype=bool)
    total = own
    region_pairs = []
    if region_order is not None:
        region_pairs += [pd.read_parquet(layout.zonal_regions(tile, chunk)) for chunk in range(chunks_by_tile[tile])]
    if user_segmentation and len(own_segments):
        position = tiles.index(tile)
        parts = [own]
        for other in tiles:
            if other == tile:
                continue
            pieces = []
            for chunk in range(chunks_by_tile[other]):
                partials = read_partials(layout.zonal_partials(other, chunk))
                present = np.isin(np.asarray(partials.segments), own_segments)
                if present.any():
                    pieces.append(_subset(partials, present))
                if region_order is not None:
                    pairs = pd.read_parquet(layout.zonal_regions(other, chunk))
                    region_pairs.append(pairs[pairs["segment"].isin(own_segments)])
            if not pieces:
                continue
            theirs = combine(pieces)
            parts.append(theirs)
            counts = np.zeros(len(own_segments), np.int64)
            at = np.searchsorted(own_segments, np.asarray(theirs.segments))
            counts[at] = np.asarray(theirs.count)
            mine = np.asarray(own.count).astype(np.int64)
            held &= (mine > counts) | ((mine == counts) & (position < tiles.index(other)))
        total = combine(parts)
    total = _subset(total, np.isin(np.asarray(total.segments), own_segments[held]))
    grid = Grid.from_dict(grids[tile])
    labels = _feature_labels(Config(config), tile, grid, dates_by_sensor)
    segments, values, names = statistics_table(total, labels, list(stats))
    segments = np.asarray(segments)
    table = pd.DataFrame({"object": object_keys(segments, tiles.index(tile), user_segmentation),
                          "segment": segments.astype(np.uint32), "tile": tile,
                          "pixels": np.asarray(total.count).astype(np.int64)})
    if region_order is None:
        table["region"] = "1"
    else:
        pairs = pd.concat(region_pairs, ignore_index=True) if region_pairs else \
            pd.DataFrame({"segment": np.array([], np.uint32), "region": np.array([], object)})
        table["region"] = region_of_objects(segments, pairs, region_order)
    table = pd.concat([table, pd.DataFrame(np.asarray(values, dtype=np.float32), columns=list(names))], axis=1)
    with atomic_output(layout.object_statistics(tile)) as tmp:
        table.to_parquet(tmp, index=False)
    LOGGER.info("%s: %d objects (%d segments with pixels here, the others held by another tile)", tile,
                len(table), len(own_segments))


def object_truth(tile: str, tiles: list[str], output_path: str, *, user_segmentation: bool) -> None:
    """Ground-truth pixels of a tile per (object, piece): ``obia/objects/<T>_truth.parquet``.

    Parameters
    ----------
    tile, tiles
        The tile and every tile in ``chain.list_tile`` order.
    output_path
        ``chain.output_path``.
    user_segmentation
        See :func:`zonal_chunk`.
    """
    layout = OutputLayout(output_path)
    pixels = pd.read_parquet(layout.truth_pixels(tile))
    frames = []
    if len(pixels):
        rows, cols, pieces = (pixels[name].to_numpy() for name in ("row", "col", "piece"))
        with rasterio.open(segment_raster(output_path, tile, user_segmentation)) as src:
            for row0 in range(int(rows.min()), int(rows.max()) + 1, STRIPE_ROWS):
                inside = (rows >= row0) & (rows < row0 + STRIPE_ROWS)
                if not inside.any():
                    continue
                height = min(STRIPE_ROWS, src.height - row0)
                stripe = src.read(1, window=Window(0, row0, src.width, height))
                ids = stripe[rows[inside] - row0, cols[inside]]
                frames.append(pd.DataFrame({"segment": ids.astype(np.int64), "piece": pieces[inside]}))
    table = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame({"segment": np.array([], np.int64), "piece": np.array([], np.int64)})
    table = table[table["segment"] > 0]
    table["object"] = object_keys(table["segment"].to_numpy(), tiles.index(tile), user_segmentation)
    counts = table.groupby(["object", "piece"], sort=True).size().rename("pixels").reset_index()
    with atomic_output(layout.object_truth(tile)) as tmp:
        counts.to_parquet(tmp, index=False)
    LOGGER.info("%s: %d ground-truth pixels in %d objects", tile, int(counts["pixels"].sum()),
                counts["object"].nunique())


def object_polygons(tile: str, tiles: list[str], grid: dict, output_path: str, *,
                    segmentation_path: str | None = None) -> None:
    """The outlines of a tile's objects: ``obia/objects/<T>_polygons.parquet`` (object, segment, geometry).

    Parameters
    ----------
    tile, tiles
        The tile and every tile in ``chain.list_tile`` order.
    grid
        The tile's grid.
    output_path
        ``chain.output_path``.
    segmentation_path
        ``obia.obia_segmentation_path`` (None: the SLIC superpixels are polygonised).
    """
    from iota2.core.user_segmentation import segment_polygons

    frame = segment_polygons(tile, grid, output_path, segmentation_path)
    frame = frame[frame["segment"] > 0]
    if frame["segment"].duplicated().any():  # several parts of one segment: one (multi)polygon
        frame = frame[["segment", "geometry"]].dissolve(by="segment", as_index=False)
    keys = object_keys(frame["segment"].to_numpy(), tiles.index(tile), segmentation_path is not None)
    out = gpd.GeoDataFrame({"object": keys, "segment": frame["segment"].to_numpy().astype(np.int64)},
                           geometry=frame.geometry.values, crs=frame.crs)
    with atomic_output(OutputLayout(output_path).object_polygons(tile)) as tmp:
        out.to_parquet(tmp, index=False)
    LOGGER.info("%s: %d object outlines", tile, len(out))


# ------------------------------------------------------------------ labels of objects
def _read_objects(output_path, tiles: list[str], columns: list[str] | None = None) -> pd.DataFrame:
    layout = OutputLayout(output_path)
    return pd.concat([pd.read_parquet(layout.object_statistics(tile), columns=columns) for tile in tiles],
                     ignore_index=True)


def _truth_of_run(output_path, tiles: list[str], run: int) -> pd.DataFrame:
    """Ground-truth pixels per (object, piece) with the piece's label, originfid, region and status in ``run``."""
    layout = OutputLayout(output_path)
    truth = pd.concat([pd.read_parquet(layout.object_truth(tile)) for tile in tiles], ignore_index=True)
    truth = truth.groupby(["object", "piece"], sort=True, as_index=False)["pixels"].sum()
    pieces = pd.DataFrame(read_formatted(output_path).drop(columns="geometry"))
    return truth.merge(pieces[["piece", "label", "originfid", f"seed_{run}"]].rename(columns={f"seed_{run}": "set"}),
                       on="piece", how="inner")


def majority_labels(truth: pd.DataFrame, pixels: pd.Series, min_coverage: float) -> pd.DataFrame:
    """The class each object takes from ground-truth pixels: the label with most pixels in the object, kept when
    they cover at least ``min_coverage`` of the object's pixels (ties: the smallest label).

    Parameters
    ----------
    truth
        Rows (object, piece, pixels, label, originfid).
    pixels
        Pixels of each object (indexed by object key).
    min_coverage
        ``obia.min_class_coverage``.

    Returns
    -------
    pandas.DataFrame
        Columns object, label, originfid (the polygon holding most of the label's pixels), coverage.
    """
    empty = pd.DataFrame({"object": np.array([], np.int64), "label": np.array([], np.int64),
                          "originfid": np.array([], np.int64), "coverage": np.array([], np.float64)})
    if len(truth) == 0:
        return empty
    by_label = truth.groupby(["object", "label"], as_index=False)["pixels"].sum()
    by_label = by_label.sort_values(["object", "pixels", "label"], ascending=[True, False, True], kind="stable")
    best = by_label.drop_duplicates("object").copy()
    polygons = truth.groupby(["object", "label", "originfid"], as_index=False)["pixels"].sum()
    polygons = polygons.sort_values(["object", "label", "pixels", "originfid"], ascending=[True, True, False, True],
                                    kind="stable").drop_duplicates(["object", "label"])
    best = best.merge(polygons[["object", "label", "originfid"]], on=["object", "label"], how="left")
    best["coverage"] = best["pixels"].to_numpy() / best["object"].map(pixels).to_numpy(dtype=np.float64)
    best = best[best["coverage"] >= min_coverage - 1e-12]
    return best[["object", "label", "originfid", "coverage"]].reset_index(drop=True)


def object_samples(region: str, run: int, tiles: list[str], output_path: str, data_field: str, *,
                   samples_format: str, sample_selection: dict, random_seed: int | None, min_coverage: float,
                   crs: str) -> None:
    """The learning samples of one model and run: one row per learning object, written where the pixel chain's
    learning task reads them (:meth:`iota2.core.layout.OutputLayout.samples`), and the selected objects as the
    model's selection (read by the class statistics).

    An object of the region is a learning sample of class c when the learning polygons of class c cover the
    largest share of its pixels among the learning classes and at least ``min_coverage`` of them, and no
    validation-only polygon of the run reaches it (no leak between learning and validation). Then
    ``arg_train.sample_selection`` selects among these objects as it selects among pixels in the pixel chain.

    Parameters
    ----------
    region, run
        The model's region and the run.
    tiles
        Every tile.
    output_path
        ``chain.output_path``.
    data_field
        ``chain.data_field``: the class column (lower case).
    samples_format
        ``arg_train.samples_format``.
    sample_selection, random_seed
        ``arg_train.sample_selection`` (checked) and ``arg_train.random_seed``.
    min_coverage
        ``obia.min_class_coverage``.
    crs
        The tiles' CRS (WKT or EPSG), for the points of a SQLite samples file.

    Raises
    ------
    InputDataError
        When fewer than two classes have a learning object in the region.
    """
    layout = OutputLayout(output_path)
    objects = _read_objects(output_path, tiles)
    objects = objects[objects["region"] == region].reset_index(drop=True)
    truth = _truth_of_run(output_path, tiles, run)
    truth = truth[truth["object"].isin(objects["object"])]
    leaking = set(truth.loc[truth["set"] == "validation", "object"].tolist())
    learn = truth[truth["set"].isin(LEARN_SETS) & ~truth["object"].isin(leaking)]
    labelled = majority_labels(learn, objects.set_index("object")["pixels"], min_coverage)
    candidates = objects.merge(labelled, on="object", how="inner").sort_values("object", kind="stable")
    candidates = candidates.reset_index(drop=True)
    expected = sorted(set(truth.loc[truth["set"].isin(LEARN_SETS), "label"].tolist()))
    missing = sorted(set(expected) - set(candidates["label"].tolist()))
    if missing:
        LOGGER.warning("region %s run %d: class(es) %s have learning polygons but no object they cover at least "
                       "%.2f of (obia.min_class_coverage), or only objects reaching a validation polygon; the model "
                       "will not predict them", region, run, missing, min_coverage)
    if candidates["label"].nunique() < 2:
        raise InputDataError(f"region {region}, run {run}: learning objects of {candidates['label'].nunique()} "
                             f"class(es) only ({len(candidates)} objects); a model needs two. Objects are larger "
                             "than the learning polygons: lower obia.min_class_coverage, give a finer segmentation "
                             "(obia.obia_segmentation_path) or larger polygons")
    params = params_for_model(sample_selection, region)
    base_seed = params.get("rand") if params.get("rand") is not None else random_seed
    selected = select_samples(candidates, "label", {**params, "rand": None},
                              run_seed(base_seed, run, SELECTION_STREAM, region)).reset_index(drop=True)
    selection = selected[["object", "label", "originfid", "region", "tile", "coverage"]]
    with atomic_output(layout.selection(region, run)) as tmp:
        selection.to_parquet(tmp, index=False)
    field = data_field.lower()
    features = [c for c in objects.columns if c not in OBJECT_COLUMNS]
    if samples_format == "sqlite" and len(features) + 5 > SQLITE_MAX_COLUMNS:
        raise ConfigError(f"{len(features)} object statistics (features x obia.stats_used) do not fit a SQLite "
                          f"samples file ({SQLITE_MAX_COLUMNS} columns at most); set arg_train.samples_format: parquet "
                          "or ask fewer statistics")
    points = _object_points(output_path, tiles, selected["object"].to_numpy())
    out = pd.DataFrame({field: selected["label"].to_numpy(np.int64),
                        "region": selected["region"].astype(str).to_numpy(),
                        "originfid": selected["originfid"].to_numpy(np.int64),
                        "tile_o": selected["tile"].astype(str).to_numpy()})
    out = pd.concat([out, selected[features].astype(np.float32).reset_index(drop=True)], axis=1)
    target = layout.samples(region, run, samples_format)
    with atomic_output(target) as tmp:
        if samples_format == "parquet":
            out["x"], out["y"] = points.x.to_numpy(), points.y.to_numpy()
            out.to_parquet(tmp, index=False)
        else:
            frame = gpd.GeoDataFrame(out, geometry=points.values, crs=crs)
            pyogrio.write_dataframe(frame, tmp, driver="SQLite", layer="output")
    LOGGER.info("region %s run %d: %d learning objects of %d candidates, %d features", region, run, len(out),
                len(candidates), len(features))


def _object_points(output_path, tiles: list[str], keys: np.ndarray) -> gpd.GeoSeries:
    """A point inside each object of ``keys`` (in that order), from the objects' outlines."""
    layout = OutputLayout(output_path)
    frames = [gpd.read_parquet(layout.object_polygons(tile)) for tile in tiles]
    polygons = pd.concat(frames, ignore_index=True)
    polygons = polygons[polygons["object"].isin(keys)]
    if polygons["object"].duplicated().any():
        polygons = polygons[["object", "geometry"]].dissolve(by="object", as_index=False)
    points = gpd.GeoSeries(polygons.geometry.representative_point().values, index=polygons["object"].to_numpy(),
                           crs=frames[0].crs)
    return gpd.GeoSeries(points.reindex(keys).values, crs=frames[0].crs)


# ------------------------------------------------------------------ classification
def classify_objects(tile: str, regions: list[str], runs: int, all_labels: list[int], output_path: str) -> None:
    """Predict every object a tile holds with the model of its region, for every run:
    ``obia/classif/<T>_seed_<S>_objects.parquet`` (object, label, confidence 0-100, ``proba_<label>`` 0-1000).

    Objects of a region without a model (no ground truth there) or outside every region keep label 0.

    Parameters
    ----------
    tile
        The tile.
    regions
        Regions with a model.
    runs
        ``arg_train.runs``.
    all_labels
        Every label of the ground truth (the probability columns).
    output_path
        ``chain.output_path``.
    """
    from iota2.builders.classification import predict
    from iota2.core.learner import load_model
    from iota2.core.scheduler import task_threads

    layout = OutputLayout(output_path)
    objects = pd.read_parquet(layout.object_statistics(tile))
    features = [c for c in objects.columns if c not in OBJECT_COLUMNS]
    values = objects[features].to_numpy(np.float32)
    threads = task_threads()
    unmodelled = ~objects["region"].isin(regions)
    if unmodelled.any():
        LOGGER.warning("%s: %d object(s) lie in no region with ground truth; they are not classified", tile,
                       int(unmodelled.sum()))
    for run in range(runs):
        labels = np.zeros(len(objects), np.int64)
        confidence = np.zeros(len(objects), np.uint8)
        proba = np.zeros((len(objects), len(all_labels)), np.int16)
        for region in regions:
            rows = np.flatnonzero(objects["region"].to_numpy() == region)
            if not len(rows):
                continue
            path = layout.model(region, run)
            model = load_model(path)
            if list(model.feature_names) != features:
                raise InputDataError(f"model {path} was learnt on {len(model.feature_names)} features that differ "
                                     f"from the {len(features)} object statistics of tile {tile}; restart from the "
                                     "'sampling' group so samples and model match the current configuration")
            predicted, confident, probabilities = predict(model, values[rows], all_labels, threads)
            labels[rows], confidence[rows] = predicted, confident
            proba[rows] = np.rint(probabilities * 1000).astype(np.int16)
        table = pd.DataFrame({"object": objects["object"].to_numpy(np.int64), "label": labels,
                              "confidence": confidence})
        table = pd.concat([table, pd.DataFrame(proba, columns=[f"proba_{label}" for label in all_labels])], axis=1)
        with atomic_output(layout.object_predictions(tile, run)) as tmp:
            table.to_parquet(tmp, index=False)
    LOGGER.info("%s: %d objects classified for %d run(s)", tile, int((~unmodelled).sum()), runs)


def _predictions(output_path, tiles: list[str], run: int) -> pd.DataFrame:
    layout = OutputLayout(output_path)
    table = pd.concat([pd.read_parquet(layout.object_predictions(tile, run)) for tile in tiles], ignore_index=True)
    return table.sort_values("object", kind="stable").reset_index(drop=True)


def rasterise_objects(tile: str, tiles: list[str], grid: dict, windows: list[list[int]], run: int,
                      all_labels: list[int], output_path: str, *, user_segmentation: bool, compression: str,
                      probability_map: bool = False) -> None:
    """The tile maps of one run (``classif/Classif_<T>_seed_<S>.tif``, confidence, probabilities), chunk by chunk:
    each pixel of the common mask gets the label of its object.

    Parameters
    ----------
    tile, tiles
        The tile and every tile (with a user segmentation, objects held by another tile are looked up there).
    grid, windows
        The tile's grid and its chunk windows.
    run
        The run.
    all_labels
        Every label of the ground truth.
    output_path
        ``chain.output_path``.
    user_segmentation
        See :func:`zonal_chunk`.
    compression
        ``chain.compression_algorithm``.
    probability_map
        ``arg_classification.enable_probability_map``.
    """
    grid = Grid.from_dict(grid)
    layout = OutputLayout(output_path)
    table = _predictions(output_path, tiles if user_segmentation else [tile], run)
    keys = table["object"].to_numpy(np.int64)
    dtype = label_dtype(all_labels)
    labels = table["label"].to_numpy().astype(dtype)
    confidence = table["confidence"].to_numpy(np.uint8)
    proba = table[[f"proba_{label}" for label in all_labels]].to_numpy(np.int16) if probability_map else None
    position = tiles.index(tile)
    kinds = [("label", 1, dtype, 0), ("confidence", 1, "uint8", 0)]
    if probability_map:
        kinds.append(("proba", len(all_labels), "int16", None))
    with contextlib.ExitStack() as stack:
        segments_src = stack.enter_context(rasterio.open(segment_raster(output_path, tile, user_segmentation)))
        mask_src = stack.enter_context(rasterio.open(layout.common_mask(tile)))
        outputs = []
        for kind, count, out_dtype, nodata in kinds:  # all written, or none (atomic)
            tmp = stack.enter_context(atomic_output(layout.tile_map(tile, run, kind)))
            outputs.append(stack.enter_context(rasterio.open(tmp, "w", **grid.profile(
                count, out_dtype, nodata=nodata, compress=compression))))
        for window in windows:
            window = Window(*window)
            segments = segments_src.read(1, window=window)
            inside = (segments > 0) & (mask_src.read(1, window=window) > 0)
            wanted = object_keys(segments, position, user_segmentation)
            at = np.clip(np.searchsorted(keys, wanted), 0, max(len(keys) - 1, 0))
            found = inside & (keys[at] == wanted) if len(keys) else np.zeros_like(inside)
            found &= labels[at] > 0 if len(keys) else found
            label_block = np.zeros(segments.shape, dtype)
            confidence_block = np.zeros(segments.shape, np.uint8)
            label_block[found] = labels[at[found]]
            confidence_block[found] = confidence[at[found]]
            outputs[0].write(label_block, 1, window=window)
            outputs[1].write(confidence_block, 1, window=window)
            if probability_map:
                proba_block = np.zeros((len(all_labels),) + segments.shape, np.int16)
                proba_block[:, found] = proba[at[found]].T
                outputs[2].write(proba_block, window=window)
    LOGGER.info("%s run %d: objects rasterised (%d chunks)", tile, run, len(windows))


def vectorise_objects(tiles: list[str], run: int, all_labels: list[int], output_path: str) -> None:
    """``final/Classif_Seed_<S>_objects.gpkg``: every classified object with its outline, segment id, tile,
    region, ``class``, ``confidence`` (0-100) and ``proba_<label>`` (0-1000).

    Parameters
    ----------
    tiles
        Every tile.
    run
        The run.
    all_labels
        Every label of the ground truth.
    output_path
        ``chain.output_path``.
    """
    layout = OutputLayout(output_path)
    predictions = _predictions(output_path, tiles, run)
    objects = _read_objects(output_path, tiles, ["object", "segment", "tile", "region"])
    frames = [gpd.read_parquet(layout.object_polygons(tile)) for tile in tiles]
    crs = frames[0].crs
    polygons = pd.concat(frames, ignore_index=True)[["object", "geometry"]]
    if polygons["object"].duplicated().any():  # a user segment on several tiles: one outline
        polygons = gpd.GeoDataFrame(polygons, geometry="geometry", crs=crs).dissolve(by="object", as_index=False)
    table = objects.merge(predictions, on="object", how="inner").rename(columns={"label": "class"})
    table = table[table["class"] > 0]
    table = gpd.GeoDataFrame(table.merge(pd.DataFrame(polygons), on="object", how="inner"), geometry="geometry",
                             crs=crs)
    table["segment"] = table["segment"].astype(np.int64)
    with atomic_output(layout.final_objects(run)) as tmp:
        pyogrio.write_dataframe(table.drop(columns="object"), tmp, driver="GPKG", layer="objects",
                                promote_to_multi=True)
    LOGGER.info("run %d: %d classified objects written", run, len(table))


# ------------------------------------------------------------------ validation
def object_confusion(tiles: list[str], run: int, all_labels: list[int], output_path: str, *, min_coverage: float,
                     nomenclature_path: str | None = None) -> None:
    """Object-based confusion matrix of one run (``final/TMP/Classif_Seed_<S>_objects.csv`` and its figure).

    An object is a validation object of class c under the rule of the learning samples (:func:`majority_labels`
    on the validation polygons of the run); it counts once, whatever its size, with its predicted class.

    Parameters
    ----------
    tiles
        Every tile.
    run
        The run.
    all_labels
        Every label of the ground truth.
    output_path
        ``chain.output_path``.
    min_coverage
        ``obia.min_class_coverage``.
    nomenclature_path
        ``chain.nomenclature_path``, naming the classes of the figure.
    """
    from iota2.core.metrics import coefficients, confusion_matrix, plot_confusion_matrix, write_confusion_csv
    from iota2.core.nomenclature import read_nomenclature

    layout = OutputLayout(output_path)
    objects = _read_objects(output_path, tiles, ["object", "pixels"])
    truth = _truth_of_run(output_path, tiles, run)
    truth = truth[truth["set"].isin(VALIDATION_SETS) & truth["object"].isin(objects["object"])]
    reference = majority_labels(truth, objects.set_index("object")["pixels"], min_coverage)
    produced = reference.merge(_predictions(output_path, tiles, run)[["object", "label"]].rename(
        columns={"label": "produced"}), on="object", how="left").fillna({"produced": 0})
    matrix = confusion_matrix(produced["label"].to_numpy(), produced["produced"].to_numpy(np.int64), all_labels)
    write_confusion_csv(layout.object_confusion(run), matrix, all_labels)
    scores = coefficients(matrix)
    LOGGER.info("run %d: object-based OA %.4f, kappa %.4f over %d validation objects", run, scores["oa"],
                scores["kappa"], int(matrix.sum()))
    names = read_nomenclature(nomenclature_path)
    plot_confusion_matrix(layout.object_confusion_figure(run), matrix, all_labels,
                          {label: names.get(label, str(label)) for label in all_labels},
                          title=f"Classif_Seed_{run} (objects)")


def report(runs: int, output_path: str, nomenclature_path: str | None = None) -> None:
    """``final/RESULTS.txt`` of an OBIA run: the pixel-based report (every pixel of the validation polygons, as the
    pixel chain's) then the object-based one (one count per validation object), each averaged over runs.

    Parameters
    ----------
    runs
        ``arg_train.runs``.
    output_path
        ``chain.output_path``.
    nomenclature_path
        ``chain.nomenclature_path``, naming the classes.
    """
    from iota2.builders.validation import area_accuracy_of_runs
    from iota2.core.metrics import read_confusion_csv, write_results_txt
    from iota2.core.nomenclature import read_nomenclature

    layout = OutputLayout(output_path)
    names = read_nomenclature(nomenclature_path)
    parts = []
    # area-adjusted estimates for the pixel part only: objects of different sizes are not equal-area sample units
    for title, confusion, target, area_accuracy in (
            ("Pixel-based validation: every pixel of the validation polygons", layout.run_confusion,
             layout.pixel_results, area_accuracy_of_runs(runs, output_path, nomenclature_path)),
            ("Object-based validation: one count per object labelled from the validation polygons "
             "(obia.min_class_coverage)", layout.object_confusion, layout.object_results, None)):
        matrices, labels = [], None
        for run in range(runs):
            matrix, labels = read_confusion_csv(confusion(run))
            matrices.append(matrix)
        write_results_txt(target, matrices, labels, {label: names.get(label, str(label)) for label in labels},
                          area_accuracy=area_accuracy)
        parts.append(f"#################### {title} ####################\n\n{target.read_text(encoding='utf-8')}")
    with atomic_output(layout.results) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
