"""Validation tasks: pixel-based confusion matrices on the validation polygons, and the multi-run report."""

from __future__ import annotations

import logging

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.builders.samples import labelled_pixels
from iota2.core.area_accuracy import AreaAccuracy, assess_map, write_area_accuracy_csv
from iota2.core.layout import OutputLayout
from iota2.core.metrics import (confusion_matrix, plot_confusion_matrix, read_confusion_csv,
                                write_confusion_csv, write_results_txt, coefficients)
from iota2.core.nomenclature import read_nomenclature

LOGGER = logging.getLogger(__name__)


def confusion_of_run(tiles: list[str], run: int, all_labels: list[int], output_path: str,
                     nomenclature_path: str | None = None) -> None:
    """Confusion matrix of one run over every validation pixel of every tile (per tile and summed), and its figure.

    Parameters
    ----------
    tiles
        Tiles of the run.
    run
        The run.
    all_labels
        Every label of the ground truth (rows and columns of the matrix).
    output_path
        ``chain.output_path``.
    nomenclature_path
        ``chain.nomenclature_path`` (``name:label`` per line), naming the classes of the figure; None: numbers.
    """
    layout = OutputLayout(output_path)
    pixels = labelled_pixels(output_path, tiles, run, ("validation", "both"))
    total = np.zeros((len(all_labels), len(all_labels)), np.int64)
    for tile in tiles:
        mine = pixels[pixels["tile"] == tile]
        matrix = np.zeros_like(total)
        if len(mine):
            rows, cols = mine["row"].to_numpy(), mine["col"].to_numpy()
            with rasterio.open(layout.tile_map(tile, run)) as src:
                window = Window(int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                                int(rows.max() - rows.min() + 1))
                produced = src.read(1, window=window)[rows - int(window.row_off), cols - int(window.col_off)]
            matrix = confusion_matrix(mine["label"].to_numpy(), produced, all_labels)
        write_confusion_csv(layout.tile_confusion(tile, run), matrix, all_labels)
        total += matrix
    write_confusion_csv(layout.run_confusion(run), total, all_labels)
    scores = coefficients(total)
    LOGGER.info("run %d: OA %.4f, kappa %.4f over %d validation pixels", run, scores["oa"], scores["kappa"],
                int(total.sum()))
    # drawn here rather than in the report, so the figures of the runs are drawn side by side with the mosaic
    names = read_nomenclature(nomenclature_path)
    plot_confusion_matrix(layout.confusion_figure(run), total,
                          all_labels, {label: names.get(label, str(label)) for label in all_labels},
                          title=f"Classif_Seed_{run}")


def area_accuracy_csv(output_path: str, run: int):
    """``final/TMP/area_accuracy_seed_<S>.csv``: the area-adjusted accuracy of a run (one row per class)."""
    return OutputLayout(output_path).area_accuracy(run)


def area_accuracy_of_runs(runs: int, output_path: str, nomenclature_path: str | None = None) -> list[AreaAccuracy]:
    """Area-adjusted accuracy (Olofsson et al. 2014) of each run, from its final map and its pixel-based confusion
    matrix; each run's figures are also written to :func:`area_accuracy_csv`.

    Parameters
    ----------
    runs
        ``arg_train.runs``.
    output_path
        ``chain.output_path``: reads ``final/Classif_Seed_<S>.tif`` (counted by bands of rows) and
        ``final/TMP/Classif_Seed_<S>.csv``, so the task calling it must depend on the mosaic and confusion tasks.
    nomenclature_path
        ``chain.nomenclature_path``, naming the classes of the CSV; None: numbers.

    Returns
    -------
    list of AreaAccuracy
        One per run, in run order (for :func:`iota2.core.metrics.write_results_txt`'s ``area_accuracy``).
    """
    layout = OutputLayout(output_path)
    names = read_nomenclature(nomenclature_path)
    results = []
    for run in range(runs):
        matrix, labels = read_confusion_csv(layout.run_confusion(run))
        result = assess_map(layout.final_classification(run), matrix, labels)
        result.map_path = layout.final_classification(run).relative_to(layout.root).as_posix()
        write_area_accuracy_csv(area_accuracy_csv(output_path, run), result, names)
        LOGGER.info("run %d: area-adjusted OA %.4f +- %.4f", run, result.overall_accuracy,
                    result.overall_accuracy_half_width)
        results.append(result)
    return results


def report(runs: int, output_path: str, nomenclature_path: str | None = None) -> None:
    """``final/RESULTS.txt``: mean over runs with 95 % intervals cut to the range of each coefficient, then the
    area-adjusted accuracy of each run and its mean (each run's PNG is drawn by its confusion task; each run's
    area-adjusted figures are also in ``final/TMP/area_accuracy_seed_<S>.csv``).

    Parameters
    ----------
    runs
        ``arg_train.runs``.
    output_path
        ``chain.output_path``.
    nomenclature_path
        ``chain.nomenclature_path``, naming the classes; None: numbers.
    """
    names = read_nomenclature(nomenclature_path)
    matrices, labels = [], None
    for run in range(runs):
        matrix, labels = read_confusion_csv(OutputLayout(output_path).run_confusion(run))
        matrices.append(matrix)
    area_accuracy = area_accuracy_of_runs(runs, output_path, nomenclature_path)
    write_results_txt(OutputLayout(output_path).results, matrices, labels,
                      {label: names.get(label, str(label)) for label in labels}, area_accuracy=area_accuracy)
