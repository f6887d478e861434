"""Sampling tasks: ground-truth pixels per tile, sample selection per model, feature extraction per tile,
samples files per model.

Files (T tile, R region/model, S run):

* ``samplesSelection/<T>_pixels.parquet``: every pixel whose centre lies in a ground-truth piece of the
  tile, inside the common mask and seen clear at least ``cloud_threshold`` times (piece, row, col);
* ``samplesSelection/samples_region_<R>_seed_<S>_selection.parquet``: the selected learning pixels;
* ``learningSamples/class_statistics_seed<S>_learn.csv``: selected samples per class and region;
* ``learningSamples/<T>_features_chunk_<i>.parquet``: feature values at the selected pixels of a chunk;
* ``learningSamples/Samples_region_<R>_seed<S>_learn.sqlite`` (or ``.parquet``): one point per sample
  with the class field, ``region``, ``originfid``, ``tile_o`` and one column per feature.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import rasterio
from rasterio import features as rio_features
from rasterio.windows import Window

from iota2.builders.ground_truth import read_formatted
from iota2.builders.sampling import (SELECTION_STREAM, class_statistics_table, params_for_model, run_seed,
                                     select_samples, write_class_statistics)
from iota2.core.config import Config
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.nomenclature import read_nomenclature
from iota2.core.raster import Grid, atomic_output

LOGGER = logging.getLogger(__name__)
STRIPE_ROWS = 1024
#: rows per Parquet row group of a samples file
SAMPLES_ROW_GROUP_ROWS = 16_384
#: columns of the chunk and samples tables besides the features (with the ground truth's ``data_field``)
RESERVED_COLUMNS = {"row", "col", "piece", "label", "originfid", "region", "tile", "tile_o", "x", "y"}


def pixels_path(output_path, tile: str) -> Path:
    """:meth:`iota2.core.layout.OutputLayout.truth_pixels`."""
    return OutputLayout(output_path).truth_pixels(tile)


def tile_pixels(tile: str, grid: dict, output_path: str, cloud_threshold: int = 0) -> None:
    """Rasterise the tile's ground-truth pieces (pixel centres) and keep clear, in-mask pixels.

    Parameters
    ----------
    tile
        Tile name.
    grid
        The tile's grid (:meth:`iota2.core.raster.Grid.to_dict`).
    output_path
        ``chain.output_path``.
    cloud_threshold
        ``arg_train.cloud_threshold``: pixels seen clear fewer times are left out.
    """
    grid = Grid.from_dict(grid)
    pieces = read_formatted(output_path)
    pieces = pieces[pieces["tile"] == tile]
    threshold = cloud_threshold
    frames = []
    if len(pieces):
        geometries = pieces.geometry.to_numpy()
        values = pieces["piece"].to_numpy() + 1
        left, bottom, right, top = pieces.geometry.bounds.to_numpy().T
        layout = OutputLayout(output_path)
        with rasterio.open(layout.validity(tile)) as validity_src, \
                rasterio.open(layout.common_mask(tile)) as mask_src:
            for row0 in range(0, grid.height, STRIPE_ROWS):
                window = Window(0, row0, grid.width, min(STRIPE_ROWS, grid.height - row0))
                # only the pieces that reach the stripe: rasterio converts every shape it is given
                west, south, east, north = rasterio.windows.bounds(window, grid.transform)
                near = (left <= east) & (right >= west) & (bottom <= north) & (top >= south)
                if not near.any():
                    continue
                shapes = list(zip(geometries[near], values[near]))
                burnt = rio_features.rasterize(shapes, out_shape=(int(window.height), grid.width),
                                               transform=rasterio.windows.transform(window, grid.transform),
                                               fill=0, dtype="int64" if len(pieces) >= 2**31 - 1 else "int32")
                keep = (burnt > 0) & (mask_src.read(1, window=window) > 0)
                if threshold:
                    keep &= validity_src.read(1, window=window) >= threshold
                rows, cols = np.nonzero(keep)
                frames.append(pd.DataFrame({"piece": burnt[rows, cols].astype(np.int64) - 1,
                                            "row": (rows + row0).astype(np.int32), "col": cols.astype(np.int32)}))
    table = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame({"piece": np.array([], np.int64), "row": np.array([], np.int32), "col": np.array([], np.int32)})
    with atomic_output(OutputLayout(output_path).truth_pixels(tile)) as tmp:
        table.to_parquet(tmp, index=False)
    LOGGER.info("%s: %d ground-truth pixels", tile, len(table))


def labelled_pixels(output_path, tiles: list[str], run: int, sets: tuple[str, ...]) -> pd.DataFrame:
    """Pixels of the pieces whose ``seed_<run>`` status is in ``sets``, with label, region, originfid, tile."""
    pieces = pd.DataFrame(read_formatted(output_path).drop(columns="geometry"))
    pieces = pieces[pieces[f"seed_{run}"].isin(sets)]
    frames = []
    for tile in tiles:
        pixels = pd.read_parquet(OutputLayout(output_path).truth_pixels(tile))
        merged = pixels.merge(pieces[["piece", "label", "originfid", "region"]], on="piece", how="inner")
        merged["tile"] = tile
        frames.append(merged)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["tile", "row", "col"], kind="stable").reset_index(drop=True)


def select_region_samples(region: str, run: int, tiles: list[str], output_path: str, sample_selection: dict,
                          random_seed: int | None, cloud_threshold: int = 0) -> None:
    """Select learning pixels of one model (region) and run with the user's ``sample_selection``.

    Parameters
    ----------
    region
        The model's region.
    run
        The run.
    tiles
        Tiles whose ground-truth pixels are candidates.
    output_path
        ``chain.output_path``.
    sample_selection
        ``arg_train.sample_selection`` as checked by :func:`iota2.builders.sampling.validate_sample_selection`.
    random_seed
        ``arg_train.random_seed`` (None: a fresh draw at each run).
    cloud_threshold
        ``arg_train.cloud_threshold``, named in the error about classes without candidate pixels.
    """
    candidates = labelled_pixels(output_path, tiles, run, ("learn", "both"))
    candidates = candidates[candidates["region"] == region].reset_index(drop=True)
    pieces = read_formatted(output_path)
    expected = set(pieces.loc[(pieces["region"] == region) & pieces[f"seed_{run}"].isin(("learn", "both")),
                              "label"].tolist())
    empty = sorted(expected - set(candidates["label"].unique().tolist()))
    if empty:
        raise InputDataError(
            f"region {region}, run {run}: class(es) {empty} have learning polygons but no pixel centre inside them "
            f"(polygons smaller than a pixel, outside the common mask, or seen clear fewer than "
            f"arg_train.cloud_threshold = {cloud_threshold} times); enlarge or remove these polygons")
    params = params_for_model(sample_selection, region)
    # one stream per (seed, run, model): runs and regions never reuse a draw; random_seed None: fresh each run
    base_seed = params.get("rand") if params.get("rand") is not None else random_seed
    seed = run_seed(base_seed, run, SELECTION_STREAM, region)
    selected = select_samples(candidates, "label", {**params, "rand": None}, seed)
    with atomic_output(OutputLayout(output_path).selection(region, run)) as tmp:
        selected.to_parquet(tmp, index=False)
    LOGGER.info("region %s run %d: %d of %d pixels selected", region, run, len(selected), len(candidates))


def write_run_class_statistics(run: int, regions: list[str], output_path: str,
                               nomenclature_path: str | None = None) -> None:
    """``class_statistics_seed<S>_learn.csv``: selected samples per class (nomenclature order) and region.

    Parameters
    ----------
    run
        The run.
    regions
        Every region (model) of the run.
    output_path
        ``chain.output_path``.
    nomenclature_path
        ``chain.nomenclature_path``: its classes come first, by name; None: the classes found, by number.
    """
    layout = OutputLayout(output_path)
    counts = {}
    for region in regions:
        selected = pd.read_parquet(layout.selection(region, run), columns=["label"])
        counts[region] = {int(k): int(v) for k, v in selected["label"].value_counts().items()}
    names = read_nomenclature(nomenclature_path)
    labels = sorted(set(names) | {label for region_counts in counts.values() for label in region_counts})
    table = class_statistics_table(counts, labels, {label: names.get(label, str(label)) for label in labels})
    write_class_statistics(layout.class_statistics(run), table)


def extract_chunk_samples(config: dict, tile: str, grid: dict, window: list[int], chunk: int,
                          dates_by_sensor: dict, selections: list[list], output_path: str, data_field: str) -> None:
    """Compute features at the selected pixels of one chunk of a tile (every model and run at once).

    Only the bounding box of the chunk's samples is read, and features are computed at the samples only.
    With ``external_features`` functions (which may look at neighbouring pixels) the whole chunk is read, with
    the padding of the classification, so that a sample's features are the values its pixel gets when the
    chunk is classified.

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration.
    tile, grid, window, chunk
        The tile, its grid (:meth:`iota2.core.raster.Grid.to_dict`), the chunk's ``[col_off, row_off, width,
        height]`` and its index.
    dates_by_sensor
        Interpolation dates of each sensor.
    selections
        ``[region, run]`` of every model whose selected pixels are extracted.
    output_path
        ``chain.output_path``.
    data_field
        ``chain.data_field``: a feature may not take its name (a column of the samples files).
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    layout = OutputLayout(output_path)
    window = Window(*window)
    row0, col0 = int(window.row_off), int(window.col_off)
    row1, col1 = row0 + int(window.height), col0 + int(window.width)
    wanted = []
    for region, run in selections:
        table = pd.read_parquet(layout.selection(region, run), columns=["tile", "row", "col"])
        wanted.append(table[(table["tile"] == tile) & table["row"].between(row0, row1 - 1)
                            & table["col"].between(col0, col1 - 1)][["row", "col"]])
    points = pd.concat(wanted, ignore_index=True).drop_duplicates().sort_values(["row", "col"]).reset_index(drop=True)
    rows, cols = points["row"].to_numpy(np.int32), points["col"].to_numpy(np.int32)
    columns, names = [pa.array(rows), pa.array(cols)], ["row", "col"]
    if len(points):
        functions = None
        if config["external_features"].get("functions"):
            from iota2.core.feature_functions import FeatureFunctions

            functions = FeatureFunctions.from_config(config)
        if functions:
            sub = window
        else:
            sub = Window(int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                         int(rows.max() - rows.min() + 1))
        block = read_features(config, tile, grid, sub, dates_by_sensor, functions=functions,
                              pixels=(rows - int(sub.row_off), cols - int(sub.col_off)))
        reserved = sorted(set(block.labels) & (RESERVED_COLUMNS | {data_field.lower()}))
        if reserved:
            raise ConfigError(f"feature label(s) {reserved} are names of the samples file's own columns; rename "
                              "them in the feature function that returns them (external_features)")
        values = block.features[0]
        columns += [pa.array(values[:, index]) for index in range(values.shape[1])]  # one float32 column per feature
        names += list(block.labels)
    with atomic_output(layout.chunk_features(tile, chunk)) as tmp:
        # written with pyarrow: a pandas frame of hundreds of columns cost 2.5x more per chunk (0.05 s against 0.02)
        pq.write_table(pa.Table.from_arrays(columns, names=names), tmp)
    LOGGER.info("%s chunk %d: features of %d samples extracted", tile, chunk, len(rows))


def merge_region_samples(region: str, run: int, chunks_by_tile: dict[str, int], grids: dict, output_path: str,
                         data_field: str, samples_format: str = "sqlite") -> None:
    """Write the samples file of one model and run (label, region, originfid, tile_o, features, point).

    Parameters
    ----------
    region, run
        The model's region and run.
    chunks_by_tile
        Number of extraction chunks of each tile with ground truth.
    grids
        Grid of each tile (:meth:`iota2.core.raster.Grid.to_dict`).
    output_path
        ``chain.output_path``.
    data_field
        ``chain.data_field``: the class column, in lower case.
    samples_format
        ``arg_train.samples_format``: ``"sqlite"`` or ``"parquet"``.
    """
    field = data_field.lower()
    layout = OutputLayout(output_path)
    selected = pd.read_parquet(layout.selection(region, run))
    parts = []
    for tile, chunks in chunks_by_tile.items():
        mine = selected[selected["tile"] == tile]
        if mine.empty:
            continue
        values = pd.concat([pd.read_parquet(layout.chunk_features(tile, chunk)) for chunk in range(chunks)],
                           ignore_index=True)
        joined = mine.merge(values, on=["row", "col"], how="left", validate="one_to_one")
        transform = Grid.from_dict(grids[tile]).transform
        xs, ys = rasterio.transform.xy(transform, joined["row"].to_numpy(), joined["col"].to_numpy())
        joined["x"], joined["y"] = np.asarray(xs), np.asarray(ys)
        parts.append(joined)
    table = pd.concat(parts, ignore_index=True)
    feature_columns = [c for c in table.columns
                       if c not in ("piece", "label", "originfid", "region", "tile", "row", "col", "x", "y")]
    out = pd.DataFrame({field: table["label"].to_numpy(np.int64), "region": table["region"].astype(str).to_numpy(),
                        "originfid": table["originfid"].to_numpy(np.int64), "tile_o": table["tile"].to_numpy()})
    out = pd.concat([out, table[feature_columns].astype(np.float32).reset_index(drop=True)], axis=1)
    crs = Grid.from_dict(next(iter(grids.values()))).crs
    target = layout.samples(region, run, samples_format)
    with atomic_output(target) as tmp:
        if samples_format == "parquet":
            out["x"], out["y"] = table["x"].to_numpy(), table["y"].to_numpy()
            # row groups a batch reader can read one at a time (streaming learners read them in bounded memory)
            out.to_parquet(tmp, index=False, row_group_size=SAMPLES_ROW_GROUP_ROWS)
        else:
            frame = gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(table["x"], table["y"]), crs=crs)
            pyogrio.write_dataframe(frame, tmp, driver="SQLite", layer="output")
    LOGGER.info("region %s run %d: %d samples x %d features written to %s", region, run, len(out),
                len(feature_columns), target.name)


def read_samples(path: Path, data_field: str) -> tuple[pd.DataFrame, list[str]]:
    """Read a samples file; return the table and the feature column names."""
    path = Path(path)
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pyogrio.read_dataframe(path, read_geometry=False)
    reserved = {data_field.lower(), "region", "originfid", "tile_o", "x", "y", "geometry"}
    return table, [c for c in table.columns if c not in reserved]


def read_learning_samples(samples) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a model's learning samples file and check it can train a classifier.

    Parameters
    ----------
    samples
        :class:`iota2.core.learner.LearningSamples` (path, label field, feature names, region, run).

    Returns
    -------
    table, labels
        The samples table and its labels (int64).

    Raises
    ------
    InputDataError
        A feature column of the configuration is missing from the file, or the file holds fewer than two classes.
    """
    table, found = read_samples(samples.path, samples.label_field)
    missing = [name for name in samples.feature_names if name not in found]
    if missing:
        raise InputDataError(f"samples file {samples.path} lacks the feature column(s) {missing[:5]}; restart "
                             "from the 'sampling' group so samples match the current configuration")
    labels = table[samples.label_field].to_numpy(np.int64)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise InputDataError(f"model of region {samples.region}, run {samples.run}: only class(es) "
                             f"{classes.tolist()} in {samples.path}; a classifier needs at least two classes: add "
                             "ground truth of other classes in this region")
    return table, labels
