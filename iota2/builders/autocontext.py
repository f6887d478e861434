"""Autocontext (``arg_train.enable_autocontext``): the pixel chain repeated with the class proportions of each
pixel's superpixel as extra features.

Iteration 1 is the pixel chain's learning (same samples file, same learner, same seed). Each later iteration k
adds, to every pixel's features, the proportions of each class of the ground truth (``context_<label>``, all
labels in increasing order) among the labels that iteration k-1 predicted inside the pixel's SLIC superpixel,
and learns a new model on the learning samples' features plus their context features. The classification applies
the iterations in sequence. Superpixels come from :mod:`iota2.core.segmentation` (``features/<T>/tmp/SLIC_<T>.tif``)
and never cross chunk borders, so a chunk task sees every pixel of its superpixels.

Tasks (see ``docs/autocontext.md``):

* :func:`train_iteration` per (region, run, iteration): iteration 1 fits on the pixel chain's samples file;
  iteration k > 1 writes ``learningSamples/autocontext/Samples_region_<R>_seed<S>_learn_it_<k>.parquet`` (the
  samples of iteration 1 plus their context features) and fits on it. Models:
  ``model/model_<R>_seed_<S>/iteration_<k>/model_<R>_seed_<S>.skops`` (+ ``.json``, ``_forest.npz``).
* :func:`classify_chunk_iteration` per (tile, chunk, iteration): features of the chunk (recomputed at each
  iteration), context of iteration k-1, models of iteration k of every region and run; iterations before the last
  write the counts of predicted labels per superpixel
  (``classif/autocontext/<T>_seed_<S>_chunk_<i>_it_<k>_superpixel_counts.parquet``), the last writes the chunk
  maps of :func:`iota2.builders.classification.classify_chunk`, so the pixel chain's merge, mosaic and
  validation run unchanged.
* :func:`add_autocontext_tasks` wires them (and the SLIC tasks) into the classification builder's graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.layout import OutputLayout

LOGGER = logging.getLogger(__name__)

CONTEXT_PREFIX = "context_"
"""Prefix of the context features: ``context_<label>``."""

SPATIAL_WIDTH = 10
"""Side of a SLIC superpixel in pixels (iota2: the sensor's resolution, 10 for Sentinel-2)."""

LEARNER = "sklearn"
MODEL_TYPE = "RandomForestClassifier"
"""The only learner autocontext trains (as iota2): scikit-learn's random forest."""


def context_names(all_labels: list[int]) -> list[str]:
    """``context_<label>`` for every label of the ground truth, in increasing label order."""
    return [f"{CONTEXT_PREFIX}{int(label)}" for label in sorted(all_labels)]


def check_learner(learner_name: str, settings: dict, config=None) -> None:
    """Refuse any learner but the random forest of the scikit-learn learner.

    Raises
    ------
    ConfigError
        Naming ``arg_train.enable_autocontext`` and what to change.
    """
    if learner_name != LEARNER:
        hint = "remove arg_train.deep_learning_parameters" if config is not None and \
            config["arg_train"].get("deep_learning_parameters") else f"select the learner {LEARNER!r}"
        raise ConfigError(f"arg_train.enable_autocontext: autocontext trains random forests only, and the "
                          f"configuration selects the learner {learner_name!r}; {hint} (scikit_models_parameters: "
                          f"{{model_type: {MODEL_TYPE}}}), or set arg_train.enable_autocontext: False")
    model_type = settings.get("model_type")
    if model_type != MODEL_TYPE:
        raise ConfigError(f"arg_train.enable_autocontext: autocontext trains random forests only, and "
                          f"scikit_models_parameters.model_type is {model_type!r}; set it to {MODEL_TYPE}, or set "
                          "arg_train.enable_autocontext: False")


# ---------------------------------------------------------------------- superpixel counts and context
def superpixel_counts(superpixels: np.ndarray, labels: np.ndarray, all_labels: list[int]) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Counts of each predicted label in each superpixel.

    Parameters
    ----------
    superpixels
        ``(rows, cols)`` superpixel ids, 0 = none.
    labels
        ``(rows, cols)`` predicted labels, 0 = not classified.
    all_labels
        Every label of the ground truth (the columns, in increasing order).

    Returns
    -------
    tuple
        Sorted superpixel ids ``(n,)`` int64 and counts ``(n, len(all_labels))`` int64 (superpixels with no
        classified pixel are left out).
    """
    ordered = np.sort(np.asarray(all_labels, np.int64))
    keep = (superpixels > 0) & (labels > 0)
    ids, inverse = np.unique(superpixels[keep].astype(np.int64), return_inverse=True)
    classes = np.searchsorted(ordered, labels[keep].astype(np.int64))
    width = len(ordered)
    counts = np.bincount(inverse.ravel() * width + classes, minlength=len(ids) * width).reshape(len(ids), width)
    return ids, counts


def proportions_at(superpixels: np.ndarray, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Class proportions of the superpixel of each pixel: ``superpixels.shape + (n_labels,)`` float32, 0 where a
    pixel has no superpixel or its superpixel no counts."""
    superpixels = np.asarray(superpixels)
    width = counts.shape[1]
    out = np.zeros(superpixels.shape + (width,), np.float32)
    if len(ids) == 0:
        return out
    totals = counts.sum(axis=1, keepdims=True)
    proportions = (counts / np.maximum(totals, 1)).astype(np.float32)
    flat = superpixels.astype(np.int64).ravel()
    index = np.minimum(np.searchsorted(ids, flat), len(ids) - 1)
    found = ids[index] == flat
    out.reshape(-1, width)[found] = proportions[index[found]]
    return out


def write_counts(path: Path, ids: np.ndarray, counts: np.ndarray, all_labels: list[int]) -> None:
    """Write superpixel ids and label counts as Parquet (columns ``superpixel``, ``n_<label>``), atomically."""
    import pandas as pd

    from iota2.core.raster import atomic_output

    table = pd.DataFrame(counts.astype(np.int32), columns=[f"n_{int(label)}" for label in sorted(all_labels)])
    table.insert(0, "superpixel", ids.astype(np.int64))
    with atomic_output(path) as tmp:
        table.to_parquet(tmp, index=False)


def read_counts(path: Path, all_labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Read :func:`write_counts`'s file: sorted ids and counts."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"superpixel counts {path} do not exist; run the 'learning' group again "
                             "(chain.first_step: learning)")
    table = pd.read_parquet(path)
    columns = [f"n_{int(label)}" for label in sorted(all_labels)]
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputDataError(f"superpixel counts {path} lack the column(s) {missing}; the ground truth's labels "
                             "changed: run the 'learning' group again (chain.first_step: learning)")
    return table["superpixel"].to_numpy(np.int64), table[columns].to_numpy(np.int64)


# ---------------------------------------------------------------------- learning
def _sample_positions(table, grids: dict) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each sample on its tile's grid, from its pixel-centre coordinates."""
    from iota2.core.raster import Grid

    rows = np.zeros(len(table), np.int64)
    cols = np.zeros(len(table), np.int64)
    for tile in table["tile_o"].unique():
        mine = (table["tile_o"] == tile).to_numpy()
        inverse = ~Grid.from_dict(grids[tile]).transform
        col, row = inverse * (table["x"].to_numpy()[mine], table["y"].to_numpy()[mine])
        rows[mine] = np.floor(row).astype(np.int64)
        cols[mine] = np.floor(col).astype(np.int64)
    return rows, cols


def sample_context(table, grids: dict, windows: dict, run: int, iteration: int, all_labels: list[int],
                   output_path: str) -> np.ndarray:
    """Context features ``(n, len(all_labels))`` of the samples of ``table`` (columns ``tile_o``, ``x``, ``y``) from
    the superpixel counts of ``iteration`` and ``run``; one chunk of superpixels read at a time."""
    import rasterio
    from rasterio.windows import Window

    layout = OutputLayout(output_path)
    rows, cols = _sample_positions(table, grids)
    context = np.zeros((len(table), len(all_labels)), np.float32)
    tiles = table["tile_o"].to_numpy()
    for tile in np.unique(tiles):
        with rasterio.open(layout.slic(tile)) as src:
            for chunk, (col0, row0, width, height) in enumerate(windows[tile]):
                inside = np.flatnonzero((tiles == tile) & (rows >= row0) & (rows < row0 + height)
                                        & (cols >= col0) & (cols < col0 + width))
                if not len(inside):
                    continue
                superpixels = src.read(1, window=Window(col0, row0, width, height))
                at = superpixels[rows[inside] - row0, cols[inside] - col0]
                ids, counts = read_counts(layout.autocontext_counts(tile, run, chunk, iteration), all_labels)
                context[inside] = proportions_at(at, ids, counts)
    return context


def _read_base_samples(path: Path, samples_format: str):
    """The samples file of iteration 1 with ``x`` and ``y`` columns (read from the points of a SQLite file)."""
    import pandas as pd
    import pyogrio

    if samples_format == "parquet":
        return pd.read_parquet(path)
    frame = pyogrio.read_dataframe(path)
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    table["x"], table["y"] = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    return table


def train_iteration(region: str, run: int, iteration: int, grids: dict, windows: dict, all_labels: list[int],
                    output_path: str, learner_name: str, settings: dict, data_field: str,
                    samples_format: str = "sqlite", random_seed: int | None = None) -> None:
    """Fit the model of one (region, run) and autocontext iteration.

    Parameters
    ----------
    region, run
        The model's region and run.
    iteration
        1: the pixel chain's samples file; k > 1: those samples plus their context features of iteration k-1,
        written to :meth:`iota2.core.layout.OutputLayout.autocontext_samples` first.
    grids
        Grid of each tile (:meth:`iota2.core.raster.Grid.to_dict`).
    windows
        ``{tile: [[col_off, row_off, width, height], ...]}``: the chunks of the classification.
    all_labels
        Every label of the ground truth (the context features).
    output_path
        ``chain.output_path``.
    learner_name, settings
        The learner (:func:`iota2.builders.learning.learner_from_config`): the scikit-learn random forest.
    data_field
        ``chain.data_field``.
    samples_format
        ``arg_train.samples_format`` of the pixel chain's samples file (iteration k > 1 writes Parquet).
    random_seed
        ``arg_train.random_seed``: iteration 1 uses the pixel chain's seed, iteration k one drawn for it.
    """
    from iota2.builders.learning import learning_seed, samples_feature_names
    from iota2.builders.samples import SAMPLES_ROW_GROUP_ROWS
    from iota2.core.learner import LearningSamples, learners, save_model
    from iota2.core.raster import atomic_output

    layout = OutputLayout(output_path)
    field = data_field.lower()
    base = layout.samples(region, run, samples_format)
    names = samples_feature_names(base, field)
    seed = learning_seed(random_seed, run, region if iteration == 1 else f"{region}/autocontext_{iteration}")
    path, path_format = base, samples_format
    if iteration > 1:
        table = _read_base_samples(base, samples_format)
        context = sample_context(table, grids, windows, run, iteration - 1, all_labels, output_path)
        extra = context_names(all_labels)
        clash = sorted(set(extra) & set(names))
        if clash:
            raise ConfigError(f"feature label(s) {clash} are names of autocontext's context features; rename them "
                              "in the feature function that returns them (external_features)")
        for index, name in enumerate(extra):
            table[name] = context[:, index]
        names = names + extra
        path, path_format = layout.autocontext_samples(region, run, iteration), "parquet"
        with atomic_output(path) as tmp:
            table.to_parquet(tmp, index=False, row_group_size=SAMPLES_ROW_GROUP_ROWS)
    target = layout.autocontext_model(region, run, iteration)
    samples = LearningSamples(path=path, samples_format=path_format, label_field=field, feature_names=names,
                              region=region, run=run, seed=seed, report_folder=target.parent)
    learner = learners()[learner_name](settings)
    report = learner.fit(samples)
    save_model(target, learner, {**(report or {}), "region": region, "run": run, "autocontext_iteration": iteration})
    LOGGER.info("region %s run %d: autocontext iteration %d fitted on %d features", region, run, iteration,
                len(names))


# ---------------------------------------------------------------------- classification
def classify_chunk_iteration(config: dict, tile: str, grid: dict, window: list[int], chunk: int,
                             dates_by_sensor: dict, regions: list[str], runs: int, all_labels: list[int],
                             output_path: str, iteration: int, last: bool, *, by_region: bool = False,
                             probability_map: bool = False, compression: str = "ZSTD") -> None:
    """Classify one chunk with the models of one autocontext iteration (every region and run).

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration.
    tile, grid, window, chunk
        The tile, its grid, the chunk's ``[col_off, row_off, width, height]`` and its index.
    dates_by_sensor
        Interpolation dates of each sensor.
    regions, runs, all_labels, by_region
        As :func:`iota2.builders.classification.classify_chunk`.
    output_path
        ``chain.output_path``.
    iteration
        The iteration whose models apply; k > 1 reads the superpixel counts of iteration k-1.
    last
        The last iteration: write the chunk maps of the pixel chain (label, confidence, probabilities); else the
        superpixel counts of this iteration.
    probability_map, compression
        ``arg_classification.enable_probability_map`` and ``chain.compression_algorithm``.
    """
    import rasterio
    from rasterio.windows import Window

    from iota2.builders.classification import predict
    from iota2.core.config import Config
    from iota2.core.features import read_features
    from iota2.core.learner import load_model
    from iota2.core.raster import Grid, label_dtype, write_raster
    from iota2.core.scheduler import task_threads

    config = Config(config)
    grid = Grid.from_dict(grid)
    window = Window(*window)
    layout = OutputLayout(output_path)
    block = read_features(config, tile, grid, window, dates_by_sensor)
    inside = block.footprint
    with rasterio.open(layout.slic(tile)) as src:
        superpixels = src.read(1, window=window)
    region_ids = None
    if by_region:
        with rasterio.open(layout.region_raster(tile)) as src:
            region_ids = src.read(1, window=window)
            region_names = src.tags().get("regions", "").split(",")
    expected = list(block.labels) + (context_names(all_labels) if iteration > 1 else [])
    chunk_grid = grid.window_grid(window)
    dtype = label_dtype(all_labels)
    threads = task_threads()
    for run in range(runs):
        context = None
        if iteration > 1:
            ids, counts = read_counts(layout.autocontext_counts(tile, run, chunk, iteration - 1), all_labels)
            context = proportions_at(superpixels, ids, counts)
        label_map = np.zeros(inside.shape, dtype)
        confidence_map = np.zeros(inside.shape, np.uint8)
        proba_map = np.zeros((len(all_labels),) + inside.shape, np.int16) if last and probability_map else None
        for region in regions:
            if region_ids is None:
                pixels = inside
            else:
                if region not in region_names:
                    continue
                pixels = inside & (region_ids == region_names.index(region) + 1)
            if not pixels.any():
                continue
            path = layout.autocontext_model(region, run, iteration)
            model = load_model(path)
            if list(model.feature_names) != expected:
                raise InputDataError(f"model {path} was learnt on {len(model.feature_names)} features that differ "
                                     f"from the {len(expected)} features of tile {tile} at autocontext iteration "
                                     f"{iteration}; restart from the 'sampling' group so samples and models match "
                                     "the current configuration")
            rows = block.features[pixels]
            if context is not None:
                rows = np.concatenate([rows, context[pixels]], axis=1)
            labels, confidence, proba = predict(model, rows, all_labels, threads)
            label_map[pixels] = labels.astype(dtype)
            confidence_map[pixels] = confidence
            if proba_map is not None:
                proba_map[:, pixels] = np.rint(proba.T * 1000).astype(np.int16)
        if last:
            write_raster(layout.classif_chunk(tile, run, chunk), np.stack([label_map, confidence_map.astype(dtype)]),
                         chunk_grid, nodata=0, compress=compression, band_descriptions=["label", "confidence"])
            if proba_map is not None:
                write_raster(layout.classif_chunk(tile, run, chunk, proba=True), proba_map, chunk_grid,
                             compress=compression, band_descriptions=[f"label_{label}" for label in all_labels])
        else:
            ids, counts = superpixel_counts(superpixels, label_map, all_labels)
            write_counts(layout.autocontext_counts(tile, run, chunk, iteration), ids, counts, all_labels)
    LOGGER.info("%s chunk %d classified at autocontext iteration %d (%d pixels inside the common mask)", tile, chunk,
                iteration, int(inside.sum()))


# ---------------------------------------------------------------------- graph
def add_autocontext_tasks(graph, *, tiles: list[str], tiles_with_truth: list[str], grids: dict, windows: dict,
                          dates_by_sensor: dict, sensors: dict, regions: list[str], runs: int,
                          all_labels: list[int], iterations: int, output_path: str, learner: tuple[str, dict],
                          learner_resources, data_field: str, samples_format: str, random_seed: int | None,
                          by_region: bool, probability_map: bool, compression: str, remove_tmp_files: bool,
                          directories, validity: dict, truth, merged_samples: dict) -> dict:
    """Add the SLIC, learning and classification tasks of autocontext to ``graph``.

    The steps ``superpixels`` and ``superpixels_merge`` (group ``init``), ``learning`` and ``context`` (group
    ``learning``) and ``classification`` (group ``classification``) must exist in ``graph``.

    Parameters
    ----------
    graph
        The classification builder's graph (:class:`iota2.core.graph.Graph`).
    merged_samples
        ``{(region, run): task}`` writing the pixel chain's samples files.
    directories, validity, truth
        The tasks creating the output folders, each tile's validity (``{tile: task}``) and the ground truth.
    Other parameters
        The values :meth:`iota2.builders.i2_classification.I2Classification.build_graph` computes.

    Returns
    -------
    dict
        ``{tile: [task, ...]}``: the tasks writing each tile's classified chunks (last iteration).
    """
    from iota2.core.segmentation import first_ids

    task = graph.add_task
    module = __name__
    slic = {}
    for tile in tiles:
        starts = first_ids(windows[tile])
        chunks = [task(f"superpixels_{tile}_chunk_{index}", "superpixels", "iota2.core.segmentation:segment_chunk",
                       {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                        "dates_by_sensor": dates_by_sensor, "output_path": output_path, "first_id": starts[index],
                        "spatial_width": SPATIAL_WIDTH, "compression": compression}, [directories, validity[tile]])
                  for index, window in enumerate(windows[tile])]
        slic[tile] = task(f"superpixels_merge_{tile}", "superpixels_merge",
                          "iota2.core.segmentation:merge_superpixels",
                          {"tile": tile, "grid": grids[tile], "windows": windows[tile], "output_path": output_path,
                           "compression": compression, "remove_chunks": remove_tmp_files}, chunks)
    learner_name, settings = learner
    models = [(region, run) for region in regions for run in range(runs)]
    previous: dict = {}
    for iteration in range(1, iterations + 1):
        learned = [task(f"learning_region_{region}_seed_{run}_it_{iteration}", "learning",
                        f"{module}:train_iteration",
                        {"region": region, "run": run, "iteration": iteration, "grids": grids, "windows": windows,
                         "all_labels": all_labels, "output_path": output_path, "learner_name": learner_name,
                         "settings": settings, "data_field": data_field, "samples_format": samples_format,
                         "random_seed": random_seed},
                        [merged_samples[region, run]] + [dep for (tile, _), dep in previous.items()
                                                         if tile in tiles_with_truth],
                        resources=learner_resources)
                   for region, run in models]
        last = iteration == iterations
        current = {}
        for tile in tiles:
            for index, window in enumerate(windows[tile]):
                name = f"classification_{tile}_chunk_{index}" if last else \
                    f"context_{tile}_chunk_{index}_it_{iteration}"
                current[tile, index] = task(
                    name, "classification" if last else "context", f"{module}:classify_chunk_iteration",
                    {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                     "dates_by_sensor": dates_by_sensor, "regions": regions, "runs": runs, "all_labels": all_labels,
                     "output_path": output_path, "iteration": iteration, "last": last, "by_region": by_region,
                     "probability_map": probability_map, "compression": compression},
                    learned + [truth, validity[tile], slic[tile], previous.get((tile, index))])
        previous = current
    return {tile: [previous[tile, index] for index in range(len(windows[tile]))] for tile in tiles}
