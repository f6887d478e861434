"""Classification tasks: every model of a tile applied chunk by chunk, then chunks merged per tile.

A chunk task computes the features of its window once and applies the models of every region and
run to it (features are not recomputed per run). Outputs per (tile, chunk, run):
``classif/chunks/<T>_seed_<S>_chunk_<i>.tif`` with band 1 the label (0 = not classified) and band 2 the
confidence (0-100, the highest class probability), and with ``enable_probability_map``
``classif/chunks/PROBAMAP_<T>_seed_<S>_chunk_<i>.tif`` (one int16 band per class, 0-1000, bands in
increasing label order over all classes of the ground truth).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.core.config import Config
from iota2.core.errors import InputDataError
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.learner import load_model
from iota2.core.raster import Grid, assemble_chunks, label_dtype, write_raster
from iota2.core.scheduler import task_threads

LOGGER = logging.getLogger(__name__)


COMPILED_BATCH = 262_144
"""Pixels per call of a learner's ``predict_proba`` (the compiled forest kernel's float64 probabilities of 256 Ki
pixels)."""


def chunk_path(output_path, tile: str, run: int, chunk: int, proba: bool = False) -> Path:
    """:meth:`iota2.core.layout.OutputLayout.classif_chunk`."""
    return OutputLayout(output_path).classif_chunk(tile, run, chunk, proba)


def tile_map_path(output_path, tile: str, run: int, kind: str = "label") -> Path:
    """:meth:`iota2.core.layout.OutputLayout.tile_map`."""
    return OutputLayout(output_path).tile_map(tile, run, kind)


def predict(model, features: np.ndarray, all_labels: list[int], threads: int = 1, rows: np.ndarray | None = None,
            **options):
    """Labels, confidence (0-100) and probabilities (n, n_all_labels, float32) of feature rows.

    Parameters
    ----------
    model
        A fitted or loaded learner (:func:`iota2.core.learner.load_model`).
    features
        float32 ``(pixels, len(model.feature_names))``.
    all_labels
        Every label of the ground truth: the columns of the probabilities (a class the model never saw has 0).
    threads
        Threads of :meth:`iota2.core.learner.Learner.predict_proba`.
    rows
        The rows of ``features`` to predict (n of them), gathered one batch at a time; None: every row (n =
        pixels). A chunk's pixels inside the common mask are predicted without copying the whole chunk's features.
    **options
        Passed to the learner's ``predict_proba`` (the scikit-learn learner takes ``compiled=False`` to bypass its
        compiled forest kernel, and ``batch``; the benchmark times both).

    Rows go to the learner :data:`COMPILED_BATCH` at a time, which bounds its float64 probabilities.
    """
    classes = np.asarray(model.classes_)
    columns = np.searchsorted(np.asarray(all_labels), classes)
    n = len(features) if rows is None else len(rows)
    labels = np.zeros(n, np.int64)
    confidence = np.zeros(n, np.uint8)
    proba_all = np.zeros((n, len(all_labels)), np.float32)
    for start in range(0, n, COMPILED_BATCH):
        stop = min(n, start + COMPILED_BATCH)
        batch = features[start:stop] if rows is None else features[rows[start:stop]]
        proba = model.predict_proba(batch, threads, **options)
        if proba.shape != (stop - start, len(classes)):
            raise ValueError(f"learner {model.name!r} returned probabilities of shape {proba.shape} for "
                             f"{stop - start} rows and {len(classes)} classes")
        best = proba.argmax(axis=1)
        labels[start:stop] = classes[best]
        confidence[start:stop] = np.rint(proba[np.arange(stop - start), best] * 100).astype(np.uint8)
        proba_all[start:stop, columns] = proba
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
            if list(model.feature_names) != list(block.labels):
                raise InputDataError(f"model {path} was learnt on {len(model.feature_names)} features that differ "
                                     f"from the {len(block.labels)} features of tile {tile}; restart from the "
                                     "'sampling' group so samples and model match the current configuration")
            rows = None if pixels.all() else np.flatnonzero(pixels)
            labels, confidence, proba = predict(model, block.features.reshape(-1, block.features.shape[-1]),
                                                all_labels, threads, rows=rows)
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
        proba = kind == "proba"
        assemble_chunks([layout.classif_chunk(tile, run, chunk, proba=proba) for chunk in range(len(windows))],
                        windows, layout.tile_map(tile, run, kind),
                        grid.profile(count, out_dtype, nodata=None if proba else 0, compress=compression),
                        source_bands=None if proba else [1 if kind == "label" else 2])
    if remove_tmp_files:
        for chunk in range(len(windows)):
            layout.classif_chunk(tile, run, chunk).unlink(missing_ok=True)
            layout.classif_chunk(tile, run, chunk, proba=True).unlink(missing_ok=True)
