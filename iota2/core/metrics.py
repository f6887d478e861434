"""Accuracy assessment: confusion matrices, agreement coefficients and the validation reports.

Conventions
-----------
* A confusion matrix has the **reference** (ground truth) labels on the rows and the **produced**
  (classified) labels on the columns, both over the same ordered list of class labels.
* Overall accuracy ``OA = trace / total``; precision of class c = ``M[c, c] / column sum``; recall of
  class c = ``M[c, c] / row sum``; ``F = 2 P R / (P + R)``; Cohen's kappa
  ``(OA N^2 - sum_c row_c col_c) / (N^2 - sum_c row_c col_c)`` with N the total count.
* A coefficient that is undefined (division by zero, e.g. the precision of a class that is never
  produced) is ``NaN``. iota2 writes ``-1000`` in that case; here the reports print ``nan``.

File formats
------------
* Confusion CSV (OTB ``ComputeConfusionMatrix`` layout)::

      #Reference labels (rows):1,2,3
      #Produced labels (columns):1,2,3
      10,2,0
      1,20,3
      0,0,7

* ``RESULTS.txt``: the multi-run report of iota2 (mean confusion matrix, kappa, OA and per-class
  precision / recall / F-score with 95 % Student-t half-widths), then, when given, the area-adjusted accuracy
  of each run (:mod:`iota2.core.area_accuracy`), see :func:`write_results_txt`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from iota2.core.errors import InputDataError
from iota2.core.raster import atomic_output

#: Number of pixels handled at once by :func:`confusion_matrix` (bounds its temporary memory).
_CHUNK_SIZE = 1 << 22

#: Confidence level of the intervals printed in RESULTS.txt.
CONFIDENCE_LEVEL = 0.95

#: Range of each coefficient: intervals of the mean are cut to it (OA, precision, recall and F-score are
#: proportions; kappa lies in [-1, 1]).
BOUNDS = {"oa": (0.0, 1.0), "kappa": (-1.0, 1.0), "precision": (0.0, 1.0), "recall": (0.0, 1.0),
          "fscore": (0.0, 1.0)}

_REFERENCE_HEADER = "#Reference labels (rows):"
_PRODUCED_HEADER = "#Produced labels (columns):"


# --------------------------------------------------------------------------------------------------
# confusion matrix and coefficients
# --------------------------------------------------------------------------------------------------
def _check_labels(labels) -> np.ndarray:
    """Validate a class label list: one-dimensional, integer, positive, without duplicates."""
    label_array = np.asarray(labels)
    if label_array.ndim != 1 or label_array.size == 0:
        raise ValueError("labels must be a non-empty one-dimensional list of class labels")
    if not np.issubdtype(label_array.dtype, np.integer):
        as_int = label_array.astype(np.int64)
        if not np.array_equal(as_int, label_array):
            raise ValueError(f"class labels must be integers, got {label_array.tolist()}")
        label_array = as_int
    label_array = label_array.astype(np.int64)
    if np.any(label_array <= 0):
        raise ValueError(f"class labels must be > 0 (0 is nodata), got {label_array.tolist()}")
    if np.unique(label_array).size != label_array.size:
        raise ValueError(f"class labels contain duplicates: {label_array.tolist()}")
    return label_array


def _label_positions(values: np.ndarray, sorted_labels: np.ndarray, order: np.ndarray):
    """Position of each value in the original label list, and a mask of values that are labels."""
    index = np.searchsorted(sorted_labels, values)
    np.clip(index, 0, sorted_labels.size - 1, out=index)
    known = sorted_labels[index] == values
    return order[index], known


def confusion_matrix(reference, produced, labels) -> np.ndarray:
    """Count pixels per (reference class, produced class) pair.

    Parameters
    ----------
    reference : array_like
        Reference (ground truth) labels, any shape.
    produced : array_like
        Produced (classified) labels, same number of elements as ``reference``.
    labels : sequence of int
        The class labels (> 0, distinct) defining the order of the rows and columns.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(len(labels), len(labels))``; ``[i, j]`` counts the pixels whose
        reference is ``labels[i]`` and whose produced class is ``labels[j]``. A pixel is ignored when
        either value is 0 (nodata) or not in ``labels``.

    Notes
    -----
    The counting is a single :func:`numpy.bincount` on the combined index ``i * n + j``, done in
    chunks of a few million pixels so that 10^7+ pixels use bounded memory.
    """
    label_array = _check_labels(labels)
    reference = np.asarray(reference).ravel()
    produced = np.asarray(produced).ravel()
    if reference.size != produced.size:
        raise ValueError(f"reference has {reference.size} values but produced has {produced.size}")
    n_classes = label_array.size
    order = np.argsort(label_array, kind="stable")
    sorted_labels = label_array[order]
    counts = np.zeros(n_classes * n_classes, dtype=np.int64)
    for start in range(0, reference.size, _CHUNK_SIZE):
        ref_chunk = reference[start:start + _CHUNK_SIZE]
        prod_chunk = produced[start:start + _CHUNK_SIZE]
        ref_pos, ref_known = _label_positions(ref_chunk, sorted_labels, order)
        prod_pos, prod_known = _label_positions(prod_chunk, sorted_labels, order)
        valid = ref_known & prod_known
        combined = ref_pos[valid] * n_classes + prod_pos[valid]
        counts += np.bincount(combined, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _divide(numerator, denominator):
    """Element-wise division giving NaN where the denominator is zero."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0),
                          np.nan)
    return result


def coefficients(matrix) -> dict:
    """Agreement coefficients of a confusion matrix (rows = reference, columns = produced).

    Parameters
    ----------
    matrix : array_like
        Square confusion matrix (counts, or mean counts over runs).

    Returns
    -------
    dict
        ``oa`` (float), ``kappa`` (float), and per-class ``precision``, ``recall`` and ``fscore``
        (float64 arrays in row order).

    Notes
    -----
    Undefined values are ``NaN`` (iota2 writes ``-1000``): OA and kappa of an empty matrix, kappa when
    ``N^2 == sum_c row_c col_c`` (a single class in both reference and production), the precision of
    a class never produced, the recall of a class absent from the reference, and the F-score when
    precision or recall is undefined. When both precision and recall are defined and equal to 0 the
    F-score is 0 (its limit), not NaN.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    diagonal = np.diag(matrix)
    row_sums = matrix.sum(axis=1)
    column_sums = matrix.sum(axis=0)
    total = float(matrix.sum())

    overall_accuracy = float(_divide(diagonal.sum(), total))
    chance = float(np.dot(row_sums, column_sums))
    kappa = float(_divide(overall_accuracy * total ** 2 - chance, total ** 2 - chance))

    precision = _divide(diagonal, column_sums)
    recall = _divide(diagonal, row_sums)
    fscore = _divide(2.0 * precision * recall, precision + recall)
    both_zero = (precision == 0) & (recall == 0)
    fscore[both_zero] = 0.0
    return {"oa": overall_accuracy, "kappa": kappa, "precision": precision, "recall": recall,
            "fscore": fscore}


# --------------------------------------------------------------------------------------------------
# several runs
# --------------------------------------------------------------------------------------------------
def _mean_and_half_width(values: np.ndarray, runs: int):
    """Mean over axis 0 ignoring NaN, and the 95 % Student-t half-width (None for a single run).

    The half-width uses ``df = n - 1`` where ``n`` is the number of runs in which the value is
    defined; it is NaN where fewer than two runs define the value.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as wanted
        mean = np.nanmean(values, axis=0)
        if runs == 1:
            return mean, None
        defined = np.sum(~np.isnan(values), axis=0)
        std = np.nanstd(values, axis=0, ddof=1)
        df = np.where(defined >= 2, defined - 1, 1)
        from scipy.special import stdtrit  # Student-t quantile; scipy.stats would cost 2.5x its import time

        quantile = stdtrit(df, 0.5 + CONFIDENCE_LEVEL / 2.0)
        half_width = np.where(defined >= 2, quantile * std / np.sqrt(np.maximum(defined, 1)), np.nan)
    return mean, half_width


def multi_run_summary(matrices: Sequence[np.ndarray]) -> dict:
    """Summarise the confusion matrices of several runs (seeds).

    Parameters
    ----------
    matrices : sequence of numpy.ndarray
        One square confusion matrix per run, all over the same class list.

    Returns
    -------
    dict
        ``runs`` (int), ``mean_matrix`` (float64 mean of the matrices), ``per_run`` (the
        :func:`coefficients` of each run), and for ``oa`` and ``kappa`` (floats) and ``precision``,
        ``recall``, ``fscore`` (per-class arrays) a dict ``{"mean": ..., "half_width": ...}``.
        ``half_width`` is the half-width of the 95 % Student-t confidence interval of the mean,
        ``t.ppf(0.975, runs - 1) * std(ddof=1) / sqrt(runs)``, and is ``None`` with a single run;
        ``low`` and ``high`` are the bounds of that interval cut to the range of the coefficient
        (:data:`BOUNDS`: [0, 1], kappa [-1, 1]), ``None`` with a single run.

    Notes
    -----
    Means ignore the runs in which a coefficient is undefined (NaN); the interval of such a
    coefficient then uses the number of runs defining it, and is NaN if fewer than two do.

    iota2 computes the interval with ``scipy.stats.t.interval(0.95, df, loc=mean, scale=sem)`` but
    with ``df`` = number of classes - 1 instead of runs - 1. That quirk is not reproduced: the
    degrees of freedom here are the number of runs - 1, which is the correct value for a mean over
    runs.
    """
    if len(matrices) == 0:
        raise ValueError("multi_run_summary needs at least one confusion matrix")
    stack = np.stack([np.asarray(matrix, dtype=np.float64) for matrix in matrices])
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"all confusion matrices must be square and of the same shape, got {stack.shape[1:]}")
    runs = stack.shape[0]
    per_run = [coefficients(matrix) for matrix in stack]
    summary: dict = {"runs": runs, "mean_matrix": stack.mean(axis=0), "per_run": per_run}
    for key in ("oa", "kappa"):
        values = np.array([run[key] for run in per_run], dtype=np.float64)
        mean, half_width = _mean_and_half_width(values, runs)
        low, high = _cut_interval(mean, half_width, BOUNDS[key])
        summary[key] = {"mean": float(mean), "half_width": None if half_width is None else float(half_width),
                        "low": None if low is None else float(low), "high": None if high is None else float(high)}
    for key in ("precision", "recall", "fscore"):
        values = np.stack([run[key] for run in per_run])
        mean, half_width = _mean_and_half_width(values, runs)
        low, high = _cut_interval(mean, half_width, BOUNDS[key])
        summary[key] = {"mean": mean, "half_width": half_width, "low": low, "high": high}
    return summary


def _cut_interval(mean, half_width, bounds):
    """``mean -+ half_width`` cut to ``bounds``; ``(None, None)`` without a half-width. NaN stays NaN."""
    if half_width is None:
        return None, None
    with np.errstate(invalid="ignore"):
        low = np.clip(np.asarray(mean) - half_width, *bounds)
        high = np.clip(np.asarray(mean) + half_width, *bounds)
    return low, high


# --------------------------------------------------------------------------------------------------
# OTB confusion CSV
# --------------------------------------------------------------------------------------------------
def _format_count(value) -> str:
    """Integers without decimals, other values with full precision."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def write_confusion_csv(path: str | Path, matrix, labels) -> None:
    """Write a confusion matrix in OTB ``ComputeConfusionMatrix`` CSV format.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file; written atomically.
    matrix : array_like
        Square matrix, rows = reference, columns = produced.
    labels : sequence of int
        Class labels of the rows (and columns), in matrix order.
    """
    label_array = _check_labels(labels)
    matrix = np.asarray(matrix)
    if matrix.shape != (label_array.size, label_array.size):
        raise ValueError(f"matrix shape {matrix.shape} does not match {label_array.size} labels")
    label_text = ",".join(str(int(label)) for label in label_array)
    lines = [f"{_REFERENCE_HEADER}{label_text}", f"{_PRODUCED_HEADER}{label_text}"]
    lines += [",".join(_format_count(value) for value in row) for row in matrix]
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _parse_label_header(line: str, prefix: str, path) -> list[int]:
    if not line.startswith(prefix):
        raise InputDataError(f"confusion matrix '{path}': expected a line starting with '{prefix}', "
                             f"got '{line}'")
    text = line[len(prefix):].strip()
    try:
        return [int(float(item)) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise InputDataError(f"confusion matrix '{path}': bad label list '{text}'") from exc


def read_confusion_csv(path: str | Path) -> tuple[np.ndarray, list[int]]:
    """Read an OTB-format confusion CSV.

    Parameters
    ----------
    path : str or pathlib.Path
        File written by :func:`write_confusion_csv` or by OTB ``ComputeConfusionMatrix``.

    Returns
    -------
    matrix : numpy.ndarray
        Square matrix over ``labels`` (``int64`` when every value is integral, float64 otherwise).
    labels : list of int
        The class labels. When the reference and produced label lists of the file differ (OTB only
        lists the labels it met), the matrix is expanded to their sorted union, missing cells = 0.

    Raises
    ------
    InputDataError
        If the file is missing or not in the expected format.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"confusion matrix '{path}' does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < 2:
        raise InputDataError(f"confusion matrix '{path}' has no label header lines")
    reference_labels = _parse_label_header(lines[0], _REFERENCE_HEADER, path)
    produced_labels = _parse_label_header(lines[1], _PRODUCED_HEADER, path)
    try:
        rows = [[float(item) for item in line.split(",")] for line in lines[2:]]
    except ValueError as exc:
        raise InputDataError(f"confusion matrix '{path}' contains a non-numeric count") from exc
    values = np.array(rows, dtype=np.float64).reshape(len(rows), -1) if rows else np.zeros((0, 0))
    if values.shape != (len(reference_labels), len(produced_labels)):
        raise InputDataError(f"confusion matrix '{path}' has shape {values.shape} but its headers list "
                             f"{len(reference_labels)} reference and {len(produced_labels)} produced labels")
    if reference_labels == produced_labels:
        labels = list(reference_labels)
        matrix = values
    else:
        labels = sorted(set(reference_labels) | set(produced_labels))
        position = {label: index for index, label in enumerate(labels)}
        matrix = np.zeros((len(labels), len(labels)), dtype=np.float64)
        row_index = [position[label] for label in reference_labels]
        column_index = [position[label] for label in produced_labels]
        matrix[np.ix_(row_index, column_index)] = values
    if np.all(np.mod(matrix, 1.0) == 0):
        matrix = matrix.astype(np.int64)
    return matrix, labels


# --------------------------------------------------------------------------------------------------
# RESULTS.txt
# --------------------------------------------------------------------------------------------------
def _class_name_list(labels, class_names) -> list[str]:
    """Names of ``labels``: from a ``{label: name}`` mapping, a list aligned with labels, or the labels."""
    labels = [int(label) for label in labels]
    if class_names is None:
        return [str(label) for label in labels]
    if isinstance(class_names, Mapping):
        names = []
        for label in labels:
            name = class_names.get(label, class_names.get(str(label)))
            names.append(str(label) if name is None else str(name))
        return names
    names = [str(name) for name in class_names]
    if len(names) != len(labels):
        raise ValueError(f"{len(names)} class names given for {len(labels)} labels")
    return names


def _format_value(value, half_width=None, bounds=None, digits: int = 3) -> str:
    """``0.123``, ``0.123 +- 0.004``, or ``0.990 +0.010/-0.025`` when the interval is cut at a bound of
    ``bounds`` (e.g. 1 for a proportion); undefined values print as ``nan``; ``digits`` decimals."""
    text = "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"
    if half_width is None:
        return text
    if math.isnan(half_width) or math.isnan(value):
        return f"{text} +- nan"
    if bounds is not None and (value + half_width > bounds[1] or value - half_width < bounds[0]):
        up = min(value + half_width, bounds[1]) - value
        down = value - max(value - half_width, bounds[0])
        return f"{text} +{up:.{digits}f}/-{down:.{digits}f}"
    return f"{text} +- {half_width:.{digits}f}"


def _matrix_table(matrix: np.ndarray, names: list[str]) -> list[str]:
    """The mean matrix as centred fixed-width cells separated by ``|``, row name repeated at the end."""
    cells = [[f"{value:.2f}" for value in row] for row in matrix]
    width = max([len(name) for name in names] + [len(cell) for row in cells for cell in row]) + 2
    lines = [" " * width + "|" + "|".join(name.center(width) for name in names) + "|"]
    for name, row in zip(names, cells):
        lines.append(name.center(width) + "|" + "|".join(cell.center(width) for cell in row) + "|"
                     + name.center(width))
    return lines


def _most_confused(row: np.ndarray, names: list[str], count: int = 3) -> str:
    """Names of the ``count`` most frequent produced classes of one reference row (zero counts skipped)."""
    order = np.argsort(-row, kind="stable")
    chosen = [names[index] for index in order[:count] if row[index] > 0]
    return ", ".join(chosen) if chosen else "-"


def _text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Centred columns separated by `` | ``, a line of dashes under the header."""
    widths = [max(len(headers[column]), *(len(row[column]) for row in rows)) + 2
              for column in range(len(headers))]
    header_line = " | ".join(text.center(width) for text, width in zip(headers, widths))
    lines = [header_line, "-" * len(header_line)]
    for row in rows:
        lines.append(" | ".join(text.center(width) for text, width in zip(row, widths)))
    return lines


#: Title of the area-adjusted part of RESULTS.txt.
AREA_ACCURACY_TITLE = "Area-adjusted accuracy (Olofsson et al. 2014)"

_AREA_HEADERS = ["Classes", "Mapped area (ha)", "Adjusted area (ha)", "Adjusted area (proportion)", "User's accuracy",
                 "Producer's accuracy"]


def _mean_over_runs(values) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a value undefined in every run stays NaN
        return np.nanmean(np.stack([np.asarray(value, dtype=np.float64) for value in values]), axis=0)


def area_accuracy_lines(results, class_names: Mapping | None = None) -> list[str]:
    """The ``Area-adjusted accuracy (Olofsson et al. 2014)`` part of RESULTS.txt.

    Parameters
    ----------
    results : sequence of iota2.core.area_accuracy.AreaAccuracy
        One per run, in run order.
    class_names : mapping, optional
        ``{label: name}``; labels without a name are printed as numbers.

    Returns
    -------
    list of str
        Header lines (method, intervals, the sampling caveat), then per run its map, total area and validation
        pixels, a table ``Classes | Mapped area (ha) | Adjusted area (ha) | Adjusted area (proportion) | User's
        accuracy | Producer's accuracy`` and ``Overall accuracy (area-adjusted) : O +- h``; with several runs, the
        same table and line with the mean of each estimate over the runs (no interval: each run's interval is the
        sampling uncertainty of that run).

    Notes
    -----
    Estimates are written ``estimate +- h`` (h = 1.96 standard errors); an interval that would leave [0, 1]
    (accuracies, proportions) or [0, total area] (areas) is cut at the bound and written
    ``estimate +up/-down``, as the intervals over runs above it. Areas in ha with 1 decimal, the rest with 3.
    """
    names = dict(class_names or {})
    lines = [f"*********** {AREA_ACCURACY_TITLE} ***********", "",
             "# stratified estimators with the map classes as strata: area mapped in each class counted on the "
             "run's final map (label 0 = no data), validation pixels from the run's confusion matrix",
             "# '+-' values are half-widths of 95 % confidence intervals (1.96 standard errors, Olofsson et al. 2014 "
             "eq. 5-7, 10-12); an interval cut at 0, 1 or the total area is written 'estimate +up/-down'",
             "# the estimators assume the validation pixels are a stratified random sample of the map; iota2's are "
             "every pixel of the validation polygons: treat these figures as indicative (docs/validation.md)", ""]

    def name(label: int) -> str:
        return str(names.get(label, names.get(str(label), label)))

    def table(result, estimates) -> list[str]:
        rows = []
        for index, label in enumerate(result.labels):
            rows.append([name(label), f"{estimates['map_area_ha'][index]:.1f}"]
                        + [estimates[key](index) for key in ("area_ha", "area_proportion", "user_accuracy",
                                                             "producer_accuracy")])
        return _text_table(_AREA_HEADERS, rows)

    def with_interval(result, key: str, digits: int):
        upper = result.total_area_ha if key == "area_ha" else 1.0
        values, half_widths = getattr(result, key), getattr(result, f"{key}_half_width")
        return lambda index: _format_value(float(values[index]), float(half_widths[index]), (0.0, upper), digits)

    for run, result in enumerate(results):
        lines.append(f"Run {run}: {result.map_path}, {result.total_area_ha:.1f} ha classified "
                     f"({int(np.sum(result.map_pixels))} pixels), {int(result.samples.sum())} validation pixels")
        if result.unsampled:
            lines.append("# classes mapped without any validation pixel: " + ", ".join(name(label) for label in
                         result.unsampled) + "; the stratified estimates need validation pixels in every mapped "
                         "class (nan below)")
        estimates = {"map_area_ha": result.map_area_ha, "area_ha": with_interval(result, "area_ha", 1)}
        estimates.update({key: with_interval(result, key, 3)
                          for key in ("area_proportion", "user_accuracy", "producer_accuracy")})
        lines += table(result, estimates)
        overall = _format_value(result.overall_accuracy, result.overall_accuracy_half_width, (0.0, 1.0))
        lines += ["", f"Overall accuracy (area-adjusted) : {overall}", ""]

    if len(results) > 1:
        first = results[0]
        if all(result.labels == first.labels for result in results):
            means = {key: _mean_over_runs([getattr(result, key) for result in results])
                     for key in ("map_area_ha", "area_ha", "area_proportion", "user_accuracy", "producer_accuracy")}
            estimates = {"map_area_ha": means["map_area_ha"],
                         "area_ha": lambda index: _format_value(float(means["area_ha"][index]), digits=1)}
            estimates.update({key: (lambda index, key=key: _format_value(float(means[key][index])))
                              for key in ("area_proportion", "user_accuracy", "producer_accuracy")})
            overall = float(_mean_over_runs([result.overall_accuracy for result in results]))
            lines.append(f"Mean over {len(results)} runs (mean of each run's estimate)")
            lines += table(first, estimates)
            lines += ["", f"Overall accuracy (area-adjusted) : {_format_value(overall)}", ""]
        else:
            lines.append("# no mean over runs: the runs' maps hold different classes")
    return lines


def write_results_txt(path: str | Path, matrices, labels, class_names=None, area_accuracy=None) -> None:
    """Write iota2's ``RESULTS.txt`` report for one or several runs.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file; written atomically.
    matrices : sequence of numpy.ndarray or numpy.ndarray
        One confusion matrix per run (a single 2-D array is one run), all over ``labels``.
    labels : sequence of int
        Class labels in matrix order.
    class_names : mapping or sequence of str, optional
        ``{label: name}`` (the nomenclature) or names aligned with ``labels``; labels without a name
        are printed as numbers.
    area_accuracy : sequence of iota2.core.area_accuracy.AreaAccuracy, optional
        One per run: the area-adjusted accuracy (Olofsson et al. 2014) of each run's map, appended after the
        pixel metrics (see :func:`area_accuracy_lines`); None: no such part.

    Notes
    -----
    Layout, as in iota2 (``ResultsUtils.stats_report``):

    1. header lines saying rows = reference and columns = production, plus lines stating that the
       ``+-`` values are 95 % Student-t half-widths with runs - 1 degrees of freedom (iota2 uses
       classes - 1) and that intervals are cut to the range of each coefficient, then the title
       ``Confusion matrix`` (iota2: ``Matrice de confusion``);
    2. the confusion matrix averaged over runs (2 decimals), rows and columns labelled with the class
       names in centred fixed-width cells separated by ``|``, the row name repeated at the end;
    3. ``KAPPA : m`` and ``OA : m`` (``m +- h`` when there are several runs);
    4. the table ``Classes | Precision mean | Recall mean | F-score mean | Confusion max`` (iota2:
       ``Rappel mean``), one line per class; ``Confusion max`` lists the (up to) three produced classes
       with the largest mean counts for that reference class;
    5. with ``area_accuracy``, the part ``Area-adjusted accuracy (Olofsson et al. 2014)`` of
       :func:`area_accuracy_lines` (not in iota2).

    Values are printed with 3 decimals; undefined ones (see :func:`coefficients`) as ``nan``. OA,
    precision, recall and F-score are proportions and kappa lies in [-1, 1]: an interval ``m +- h``
    that would leave that range is cut at the bound and written ``m +up/-down`` (e.g.
    ``0.990 +0.010/-0.025``), so no printed interval reaches an impossible value.
    """
    if isinstance(matrices, np.ndarray) and matrices.ndim == 2:
        matrices = [matrices]
    label_array = _check_labels(labels)
    names = _class_name_list(label_array, class_names)
    for matrix in matrices:
        if np.shape(matrix) != (label_array.size, label_array.size):
            raise ValueError(f"matrix shape {np.shape(matrix)} does not match {label_array.size} labels")
    summary = multi_run_summary(matrices)
    runs = summary["runs"]
    mean_matrix = summary["mean_matrix"]

    lines = ["#row = reference", "#col = production",
             f"# runs: {runs}; '+-' values are half-widths of 95 % Student-t confidence intervals of the "
             f"mean over runs ({max(runs - 1, 0)} = runs - 1 degrees of freedom)",
             "# intervals are cut to [0, 1] (kappa: [-1, 1]); a cut interval is written 'mean +up/-down'",
             "# undefined values are written as nan", "",
             "*********** Confusion matrix ***********", ""]
    lines += _matrix_table(mean_matrix, names)
    lines.append("")
    for key in ("kappa", "oa"):
        lines.append(f"{key.upper()} : {_format_value(summary[key]['mean'], summary[key]['half_width'], BOUNDS[key])}")
    lines.append("")

    def per_class(key: str, index: int) -> str:
        half_width = summary[key]["half_width"]
        return _format_value(float(summary[key]["mean"][index]),
                             None if half_width is None else float(half_width[index]), BOUNDS[key])

    headers = ["Classes", "Precision mean", "Recall mean", "F-score mean", "Confusion max"]
    rows = [[names[index], per_class("precision", index), per_class("recall", index),
             per_class("fscore", index), _most_confused(mean_matrix[index], names)]
            for index in range(len(names))]
    lines += _text_table(headers, rows)
    if area_accuracy:
        name_of = dict(zip((int(label) for label in label_array), names))
        lines += [""] + area_accuracy_lines(area_accuracy, name_of)

    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------------
def _format_metric(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _count_text(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.1f}"


def plot_confusion_matrix(path: str | Path, matrix, labels, class_names=None, title: str = "") -> None:
    """Draw a confusion matrix figure as a PNG.

    Parameters
    ----------
    path : str or pathlib.Path
        Output PNG; written atomically.
    matrix : array_like
        Square matrix, rows = reference, columns = produced (counts or mean counts).
    labels : sequence of int
        Class labels in matrix order.
    class_names : mapping or sequence of str, optional
        As in :func:`write_results_txt`.
    title : str
        First line of the title; a second line gives OA and kappa.

    Notes
    -----
    The cell colour is the row-normalised value (share of each reference class going to each
    produced class); non-empty cells show that percentage and the count. Precision of each produced
    class is written above the columns, recall and F-score of each reference class right of the rows.
    The figure and fonts scale with the number of classes so that ~25 classes stay readable. Only the
    non-interactive Agg canvas is used (no display needed, pyplot state untouched).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    label_array = _check_labels(labels)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (label_array.size, label_array.size):
        raise ValueError(f"matrix shape {matrix.shape} does not match {label_array.size} labels")
    names = _class_name_list(label_array, class_names)
    coeffs = coefficients(matrix)
    n_classes = label_array.size
    row_sums = matrix.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(row_sums > 0, matrix / np.where(row_sums > 0, row_sums, 1.0), 0.0)

    side = max(6.0, 0.6 * n_classes + 4.0)
    cell_font = float(np.clip(180.0 / n_classes, 5.0, 11.0))
    tick_font = float(np.clip(220.0 / n_classes, 7.0, 12.0))

    figure = Figure(figsize=(side + 2.5, side + 1.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest",
                        aspect="equal")
    for row in range(n_classes):
        for column in range(n_classes):
            count = matrix[row, column]
            if count == 0:
                continue
            share = normalised[row, column]
            axes.text(column, row, f"{100.0 * share:.1f}%\n({_count_text(count)})", ha="center",
                      va="center", fontsize=cell_font, color="white" if share > 0.5 else "black")

    positions = np.arange(n_classes)
    axes.set_xticks(positions, labels=names, rotation=60, ha="right", rotation_mode="anchor",
                    fontsize=tick_font)
    axes.set_yticks(positions, labels=names, fontsize=tick_font)
    axes.set_xlabel("Produced class", fontsize=tick_font + 1)
    axes.set_ylabel("Reference class", fontsize=tick_font + 1)

    top_axis = axes.secondary_xaxis("top")
    top_axis.set_xticks(positions, labels=[_format_metric(value) for value in coeffs["precision"]],
                        rotation=90, fontsize=tick_font)
    top_axis.set_xlabel("Precision", fontsize=tick_font + 1)
    right_axis = axes.secondary_yaxis("right")
    right_axis.set_yticks(positions, labels=[f"R {_format_metric(recall)}  F {_format_metric(fscore)}"
                                             for recall, fscore in zip(coeffs["recall"], coeffs["fscore"])],
                          fontsize=tick_font)
    right_axis.set_ylabel("Recall (R) / F-score (F)", fontsize=tick_font + 1)

    colorbar = figure.colorbar(image, ax=axes, location="bottom", shrink=0.5, aspect=40)
    colorbar.set_label("Share of the reference class", fontsize=tick_font)
    colorbar.ax.tick_params(labelsize=tick_font)

    heading = f"{title}\n" if title else ""
    figure.suptitle(f"{heading}OA = {_format_metric(coeffs['oa'])}   Kappa = {_format_metric(coeffs['kappa'])}",
                    fontsize=tick_font + 3)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
