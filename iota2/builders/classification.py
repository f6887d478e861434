"""Classification tasks: every model of a tile applied chunk by chunk, then chunks merged per tile.

A chunk task computes the features of its window once and applies the models of every region and
run to it (features are not recomputed per run). Outputs per (tile, chunk, run):
``classif/chunks/<T>_seed_<S>_chunk_<i>.tif`` with band 1 the label (0 = not classified) and band 2 the
confidence (0-100, the highest class probability), and with ``enable_probability_map``
``classif/chunks/PROBAMAP_<T>_seed_<S>_chunk_<i>.tif`` (one int16 band per class, 0-1000, bands in
increasing label order over all classes of the ground truth).
"""

from __future__ import annotations

import concurrent.futures
import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.builders.learning import load_model
from iota2.core.config import Config
from iota2.core.errors import InputDataError
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output, label_dtype, write_raster
from iota2.core.scheduler import task_threads
from iota2.core.tree_ensemble import compiled_forest

LOGGER = logging.getLogger(__name__)


COMPILED_BATCH = 262_144
"""Pixels per call of the compiled forest kernel."""


def chunk_path(output_path, tile: str, run: int, chunk: int, proba: bool = False) -> Path:
    """:meth:`iota2.core.layout.OutputLayout.classif_chunk`."""
    return OutputLayout(output_path).classif_chunk(tile, run, chunk, proba)


def tile_map_path(output_path, tile: str, run: int, kind: str = "label") -> Path:
    """:meth:`iota2.core.layout.OutputLayout.tile_map`."""
    return OutputLayout(output_path).tile_map(tile, run, kind)


def _single_threaded(estimator) -> None:
    target = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(target, "n_jobs"):
        target.n_jobs = 1


def predict(model: dict, features: np.ndarray, all_labels: list[int], threads: int = 1, batch: int = 65_536,
            compiled: bool = True):
    """Labels, confidence (0-100) and probabilities (n, n_all_labels, float32) of feature rows.

    Random forests, extra trees and decision trees go through the compiled kernel of
    :mod:`iota2.core.tree_ensemble` (scikit-learn's probabilities, faster; ``model["forest"]`` when the model
    file came with its node arrays, see :func:`iota2.builders.learning.load_model`); other learners, and features
    with NaN or infinite values, through the estimator's ``predict_proba`` in batches (small enough to
    stay cache-friendly for tree ensembles), spread over ``threads`` threads. ``compiled=False`` forces the
    latter (used by the benchmark to time both).
    """
    classes = np.asarray(model["classes"])
    columns = np.searchsorted(np.asarray(all_labels), classes)
    n = len(features)
    labels = np.zeros(n, np.int64)
    confidence = np.zeros(n, np.uint8)
    proba_all = np.zeros((n, len(all_labels)), np.float32)

    def store(start: int, stop: int, proba: np.ndarray) -> None:
        best = proba.argmax(axis=1)
        labels[start:stop] = classes[best]
        confidence[start:stop] = np.rint(proba[np.arange(stop - start), best] * 100).astype(np.uint8)
        proba_all[start:stop, columns] = proba

    forest = (model.get("forest") or compiled_forest(model["estimator"])) if compiled else None
    if forest is not None and np.isfinite(features).all():
        for start in range(0, n, COMPILED_BATCH):  # bounds the float64 probabilities to 256 Ki pixels
            stop = min(n, start + COMPILED_BATCH)
            store(start, stop, forest.predict_proba(features[start:stop], threads))
        return labels, confidence, proba_all
    estimator = model["estimator"]  # a loaded model reads it from its file only now
    _single_threaded(estimator)

    def run(start: int) -> None:
        stop = min(n, start + batch)
        store(start, stop, estimator.predict_proba(features[start:stop]))

    starts = range(0, n, batch)
    if threads > 1 and n > batch:
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    return labels, confidence, proba_all


def classify_chunk(config: dict, tile: str, grid: dict, window: list[int], chunk: int, dates_by_sensor: dict,
                   regions: list[str], runs: int, all_labels: list[int], output_path: str, *,
                   by_region: bool = False, probability_map: bool = False, compression: str = "ZSTD") -> None:
    """Classify one chunk of a tile with the models of every region and run.

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration (the whole configuration works too).
    tile, grid, window, chunk
        The tile, its grid (:meth:`iota2.core.raster.Grid.to_dict`), the chunk's ``[col_off, row_off, width,
        height]`` and its index.
    dates_by_sensor
        Interpolation dates of each sensor.
    regions
        Every region (model); without ``by_region`` the only one applies everywhere.
    runs
        ``arg_train.runs``.
    all_labels
        Every label of the ground truth (pixel type and probability bands).
    output_path
        ``chain.output_path``.
    by_region
        ``chain.region_path`` is set: each pixel gets the model of its region, from the tile's region raster.
    probability_map
        ``arg_classification.enable_probability_map``: also write the per-class probabilities.
    compression
        ``chain.compression_algorithm``.
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    window = Window(*window)
    block = read_features(config, tile, grid, window, dates_by_sensor)
    inside = block.footprint
    layout = OutputLayout(output_path)
    region_ids = None
    region_raster = layout.region_raster(tile)
    if by_region:
        with rasterio.open(region_raster) as src:
            region_ids = src.read(1, window=window)
            region_names = src.tags().get("regions", "").split(",")
    chunk_grid = grid.window_grid(window)
    dtype = label_dtype(all_labels)
    threads = task_threads()
    for run in range(runs):
        label_map = np.zeros(inside.shape, dtype)
        confidence_map = np.zeros(inside.shape, np.uint8)
        proba_map = np.zeros((len(all_labels),) + inside.shape, np.int16) if probability_map else None
        for region in regions:
            if region_ids is None:
                pixels = inside
            else:
                if region not in region_names:
                    continue
                pixels = inside & (region_ids == region_names.index(region) + 1)
            if not pixels.any():
                continue
            path = layout.model(region, run)
            model = load_model(path)
            if model["feature_names"] != block.labels:
                raise InputDataError(f"model {path} was learnt on {len(model['feature_names'])} features that differ "
                                     f"from the {len(block.labels)} features of tile {tile}; restart from the "
                                     "'sampling' group so samples and model match the current configuration")
            labels, confidence, proba = predict(model, block.features[pixels], all_labels, threads)
            label_map[pixels] = labels.astype(dtype)
            confidence_map[pixels] = confidence
            if probability_map:
                proba_map[:, pixels] = np.rint(proba.T * 1000).astype(np.int16)
        target = layout.classif_chunk(tile, run, chunk)
        write_raster(target, np.stack([label_map, confidence_map.astype(dtype)]), chunk_grid, nodata=0,
                     compress=compression, band_descriptions=["label", "confidence"])
        if probability_map:
            write_raster(layout.classif_chunk(tile, run, chunk, proba=True), proba_map, chunk_grid,
                         compress=compression, band_descriptions=[f"label_{label}" for label in all_labels])
    LOGGER.info("%s chunk %d classified (%d pixels inside the common mask)", tile, chunk, int(inside.sum()))


def merge_tile_chunks(tile: str, grid: dict, windows: list[list[int]], run: int, all_labels: list[int],
                      output_path: str, compression: str, probability_map: bool = False,
                      remove_tmp_files: bool = False) -> None:
    """Assemble the chunks of one tile and run into the tile's label, confidence (and probability) maps.

    Parameters
    ----------
    tile, grid
        The tile and its grid (:meth:`iota2.core.raster.Grid.to_dict`).
    windows
        ``[col_off, row_off, width, height]`` of each chunk, in chunk order.
    run
        The run.
    all_labels
        Every label of the ground truth.
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    probability_map
        ``arg_classification.enable_probability_map``: assemble the probability chunks too.
    remove_tmp_files
        ``chain.remove_tmp_files``: delete the chunks once assembled.
    """
    grid = Grid.from_dict(grid)
    layout = OutputLayout(output_path)
    dtype = label_dtype(all_labels)
    outputs = [("label", 1, dtype), ("confidence", 1, "uint8")]
    if probability_map:
        outputs.append(("proba", len(all_labels), "int16"))
    for kind, count, out_dtype in outputs:
        with atomic_output(layout.tile_map(tile, run, kind)) as tmp:
            with rasterio.open(tmp, "w", **grid.profile(count, out_dtype, nodata=0 if kind != "proba" else None,
                                                         compress=compression)) as dst:
                for chunk, window in enumerate(windows):
                    window = Window(*window)
                    if kind == "proba":
                        with rasterio.open(layout.classif_chunk(tile, run, chunk, proba=True)) as src:
                            dst.write(src.read(), window=window)
                    else:
                        with rasterio.open(layout.classif_chunk(tile, run, chunk)) as src:
                            band = 1 if kind == "label" else 2
                            dst.write(src.read(band).astype(out_dtype), 1, window=window)
    if remove_tmp_files:
        for chunk in range(len(windows)):
            layout.classif_chunk(tile, run, chunk).unlink(missing_ok=True)
            layout.classif_chunk(tile, run, chunk, proba=True).unlink(missing_ok=True)
