"""Area-adjusted accuracy and area estimates with confidence intervals (Olofsson et al. 2014).

Olofsson, Foody, Herold, Stehman, Woodcock and Wulder (2014), "Good practices for estimating area and assessing
accuracy of land change", Remote Sensing of Environment 148: 42-57. The map classes are the strata of a
stratified sample: from the mapped area of each class and the confusion matrix of the validation sample, the
stratified estimators give the overall, user's and producer's accuracies and the area of each class as the
reference data would have it, each with a standard error.

Notation (the paper's, rows = map classes i, columns = reference classes j; iota2's confusion matrices have the
reference on the rows, see :mod:`iota2.core.metrics`, and are transposed here):

* ``W_i = A_m,i / A_tot``: share of the map's area mapped as class i (label 0 is no data and is not counted);
* ``n_ij``: validation pixels mapped i with reference j, ``n_i. = sum_j n_ij``;
* ``p_ij = W_i n_ij / n_i.`` (eq. 4 and 9), estimated share of the area mapped i whose reference is j;
* overall accuracy ``O = sum_j p_jj`` (eq. 1), user's accuracy ``U_i = p_ii / p_i.`` (eq. 2), producer's
  accuracy ``P_j = p_jj / p_.j`` (eq. 3);
* ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)`` (eq. 5), ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)`` (eq. 6),
  ``V(P_j) = [W_j^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1) + P_j^2 sum_{i != j} W_i^2 (n_ij / n_i.)
  (1 - n_ij / n_i.) / (n_i. - 1)] / p_.j^2`` (eq. 7, with ``N_i. / N_.j = W_i / p_.j``);
* area proportion of class j ``p_.j = sum_i W_i n_ij / n_i.`` (eq. 9), its standard error
  ``S(p_.j) = sqrt(sum_i W_i^2 (n_ij / n_i.) (1 - n_ij / n_i.) / (n_i. - 1))`` (eq. 10), area
  ``A_j = A_tot p_.j`` and ``S(A_j) = A_tot S(p_.j)`` (eq. 11);
* 95 % confidence interval: estimate +- 1.96 standard errors (eq. 12, the paper's 1.96).

Undefined values are NaN: every estimate that involves a mapped class without validation pixels (its stratum
cannot be estimated), a variance with ``n_i. = 1``, the producer's accuracy of a class of zero estimated area.
Intervals that would leave the range of their quantity ([0, 1] for accuracies and proportions, [0, A_tot] for
areas) are cut at the bound (``low`` / ``high``); RESULTS.txt marks them (``estimate +up/-down``).

The estimators assume that the validation pixels are a stratified random sample of the map; iota2's validation
pixels are every pixel of the validation polygons, so the figures are indicative unless the validation data is
such a sample (see ``docs/validation.md``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from iota2.core.errors import InputDataError
from iota2.core.raster import atomic_output

#: Normal quantile of the 95 % intervals, as in Olofsson et al. (2014), eq. 12.
Z_95 = 1.96

#: Pixels read at once when counting a map's classes (bounds the memory of :func:`map_class_areas`).
_READ_PIXELS = 1 << 22

#: GDAL block cache while counting (MB): each band of rows is read once, a larger cache would only grow the memory.
_GDAL_CACHE_MB = 32

_SQUARE_METRES_PER_HECTARE = 10_000.0


@dataclass
class AreaAccuracy:
    """Stratified estimates of one run (Olofsson et al. 2014), arrays in the order of ``labels``.

    ``*_half_width`` are the half-widths of the 95 % intervals (1.96 standard errors), ``*_low`` / ``*_high`` the
    bounds of those intervals cut to the range of the quantity. NaN where undefined (see the module notes).
    """

    labels: list[int]
    map_pixels: np.ndarray
    """Pixels mapped in each class (int64)."""
    map_area_ha: np.ndarray
    """Area mapped in each class (ha)."""
    samples: np.ndarray
    """Confusion matrix of the validation pixels in the paper's orientation: rows = map, columns = reference."""
    weights: np.ndarray
    """``W_i``, share of the mapped area in each class."""
    proportions: np.ndarray
    """``p_ij``: estimated area proportions, rows = map, columns = reference (the paper's Table 9)."""
    area_proportion: np.ndarray
    area_proportion_half_width: np.ndarray
    area_ha: np.ndarray
    area_ha_half_width: np.ndarray
    user_accuracy: np.ndarray
    user_accuracy_half_width: np.ndarray
    producer_accuracy: np.ndarray
    producer_accuracy_half_width: np.ndarray
    overall_accuracy: float
    overall_accuracy_half_width: float
    map_path: str = ""
    unsampled: list[int] = field(default_factory=list)
    """Labels mapped on some area but without validation pixels (the stratified estimates are then undefined)."""

    @property
    def total_area_ha(self) -> float:
        """Area of the map's classified pixels (ha)."""
        return float(np.sum(self.map_area_ha))

    @property
    def validation_pixels(self) -> np.ndarray:
        """``n_i.``: validation pixels of each map class."""
        return self.samples.sum(axis=1)

    def interval(self, name: str):
        """``(low, high)`` of ``name`` (``area_proportion``, ``area_ha``, ``user_accuracy``, ``producer_accuracy``,
        ``overall_accuracy``): estimate -+ half-width cut to the range of the quantity."""
        upper = self.total_area_ha if name == "area_ha" else 1.0
        estimate = np.asarray(getattr(self, name), dtype=np.float64)
        half_width = np.asarray(getattr(self, f"{name}_half_width"), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            low = np.clip(estimate - half_width, 0.0, upper)
            high = np.clip(estimate + half_width, 0.0, upper)
        if estimate.ndim == 0:
            return float(low), float(high)
        return low, high


# --------------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------------
def _ratio(numerator, denominator):
    """Element-wise ``numerator / denominator``, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0), np.nan)


def _weighted(weights, values):
    """``weights * values`` with 0 where the weight is 0 (a stratum absent from the map adds nothing, even when
    its values are undefined); ``weights`` broadcast over the rows of a 2-D ``values``."""
    weights = np.asarray(weights, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        weights = weights[:, None]
    with np.errstate(invalid="ignore"):
        return np.where(weights != 0, weights * values, 0.0)


def stratified_estimates(confusion, labels, map_area_ha, map_pixels=None, map_path: str = "") -> AreaAccuracy:
    """Olofsson et al. (2014) estimates from a validation confusion matrix and the mapped area of each class.

    Parameters
    ----------
    confusion : array_like
        Validation confusion matrix in **iota2's orientation: rows = reference, columns = map** (as written by
        :func:`iota2.core.metrics.write_confusion_csv`), over ``labels``.
    labels : sequence of int
        Class labels of the rows and columns of ``confusion`` and of ``map_area_ha``.
    map_area_ha : array_like
        Area mapped in each class (ha, or any unit: only the areas in ha are then in that unit).
    map_pixels : array_like, optional
        Pixels mapped in each class (reported only); default: NaN.
    map_path : str
        The map, for messages and reports.

    Returns
    -------
    AreaAccuracy
        The estimates with their 95 % half-widths (see the module notes for the equations).
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    labels = [int(label) for label in labels]
    areas = np.asarray(map_area_ha, dtype=np.float64)
    if matrix.shape != (len(labels), len(labels)) or areas.shape != (len(labels),):
        raise ValueError(f"confusion matrix of shape {matrix.shape} and {areas.size} mapped areas do not match "
                         f"{len(labels)} labels")
    if np.any(matrix < 0) or np.any(areas < 0) or not np.all(np.isfinite(areas)):
        raise ValueError("confusion counts and mapped areas must be finite and >= 0")
    samples = matrix.T  # the paper's orientation: rows = map (strata), columns = reference
    total_area = float(areas.sum())
    weights = areas / total_area if total_area > 0 else np.full(areas.shape, np.nan)
    stratum_size = samples.sum(axis=1)  # n_i.
    share = _ratio(samples, stratum_size[:, None])  # n_ij / n_i., NaN for an unsampled stratum
    proportions = _weighted(weights, share)  # p_ij (eq. 4, 9)
    stratum_variance = _ratio(share * (1.0 - share), (stratum_size - 1.0)[:, None])  # (n_ij/n_i.)(1-..)/(n_i.-1)

    area_proportion = proportions.sum(axis=0)  # p_.j (eq. 9)
    area_proportion_se = np.sqrt(_weighted(weights ** 2, stratum_variance).sum(axis=0))  # eq. 10
    user = np.diag(share).copy()  # U_i = p_ii / p_i. = n_ii / n_i. (eq. 2)
    user_variance = np.diag(stratum_variance).copy()  # eq. 6
    overall = float(np.trace(proportions))  # eq. 1
    overall_se = math.sqrt(float(_weighted(weights ** 2, user_variance).sum()))  # eq. 5
    producer = _ratio(np.diag(proportions), area_proportion)  # eq. 3
    # eq. 7: (1 / N_.j^2) [N_j.^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1) + P_j^2 sum_{i!=j} N_i.^2 (..)] with
    # N_i. / N_.j = W_i / p_.j
    own = _weighted(weights ** 2, user_variance) * (1.0 - producer) ** 2
    off_diagonal = _weighted(weights ** 2, stratum_variance)
    np.fill_diagonal(off_diagonal, 0.0)
    producer_se = np.sqrt(_ratio(own + producer ** 2 * off_diagonal.sum(axis=0), area_proportion ** 2))

    pixels = np.full(len(labels), np.nan) if map_pixels is None else np.asarray(map_pixels)
    return AreaAccuracy(
        labels=labels, map_pixels=pixels, map_area_ha=areas, samples=samples, weights=weights,
        proportions=proportions, area_proportion=area_proportion, area_proportion_half_width=Z_95 * area_proportion_se,
        area_ha=total_area * area_proportion, area_ha_half_width=Z_95 * total_area * area_proportion_se,
        user_accuracy=user, user_accuracy_half_width=Z_95 * np.sqrt(user_variance),
        producer_accuracy=producer, producer_accuracy_half_width=Z_95 * producer_se,
        overall_accuracy=overall, overall_accuracy_half_width=Z_95 * overall_se, map_path=str(map_path),
        unsampled=[label for label, area, size in zip(labels, areas, stratum_size) if area > 0 and size == 0])


# --------------------------------------------------------------------------------------------------
# mapped areas
# --------------------------------------------------------------------------------------------------
def _authalic_q(latitude, eccentricity_squared: float):
    """``q(phi)`` of the ellipsoid (Snyder 1987, eq. 3-12): the area between two latitudes over one radian of
    longitude is ``a^2 / 2 |q(phi_2) - q(phi_1)|`` (``2 sin(phi)`` on a sphere)."""
    sine = np.sin(latitude)
    if eccentricity_squared == 0:
        return 2.0 * sine
    e = math.sqrt(eccentricity_squared)
    return (1.0 - eccentricity_squared) * (sine / (1.0 - eccentricity_squared * sine ** 2)
                                           - np.log((1.0 - e * sine) / (1.0 + e * sine)) / (2.0 * e))


def _row_areas_m2(src, row_start: int, rows: int):
    """Area (m^2) of one pixel of each row ``row_start .. row_start + rows - 1``, or a float for every row."""
    transform = src.transform
    if src.crs is None:
        raise InputDataError(f"class map '{src.name}' has no coordinate reference system: its class areas cannot be "
                             "measured; write the map with a CRS (the tiles' grid)")
    if src.crs.is_geographic:
        if transform.b != 0 or transform.d != 0:
            raise InputDataError(f"class map '{src.name}' is in geographic coordinates on a rotated grid: its class "
                                 "areas cannot be measured; use a projected or north-up grid")
        from pyproj import CRS

        ellipsoid = CRS.from_wkt(src.crs.to_wkt()).ellipsoid
        semi_major = ellipsoid.semi_major_metre
        flattening = 1.0 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
        edges = transform.f + transform.e * np.arange(row_start, row_start + rows + 1, dtype=np.float64)
        zone = _authalic_q(np.radians(np.clip(edges, -90.0, 90.0)), flattening * (2.0 - flattening))
        return semi_major ** 2 / 2.0 * abs(math.radians(transform.a)) * np.abs(np.diff(zone))
    _, metres = src.crs.linear_units_factor
    return abs(transform.a * transform.e - transform.b * transform.d) * metres ** 2


def map_class_areas(path: str | Path, labels) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Pixels and area (ha) of each class of a class map, read a band of rows at a time (bounded memory).

    Parameters
    ----------
    path : str or pathlib.Path
        Single-band class map (label 0 = no data; the file's own nodata value, if any, is not counted either).
    labels : sequence of int
        Labels to report, in order; labels found in the map but not in ``labels`` are appended (sorted).

    Returns
    -------
    pixels : numpy.ndarray
        ``int64`` pixel counts per label.
    area_ha : numpy.ndarray
        Areas in hectares: pixels x pixel area for a projected CRS (its linear unit converted to metres), the
        area of each row's cells on the CRS's ellipsoid for geographic coordinates.
    labels : list of int
        ``labels`` followed by the extra labels of the map.

    Raises
    ------
    InputDataError
        If the map is missing, unreadable, has no CRS, or holds negative or non-integer values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"class map '{path}' does not exist: the area-adjusted accuracy of a run needs its final "
                             "map; run the chain again with -restart to produce it")
    labels = [int(label) for label in labels]
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioError as exc:
        raise InputDataError(f"class map '{path}' cannot be read ({exc}); run the chain again with -restart") from exc
    with src, rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB * 2**20):  # an integer is bytes
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InputDataError(f"class map '{path}' has {src.dtypes[0]} pixels: a class map holds integer labels")
        nodata = src.nodata
        block_height = max(1, src.block_shapes[0][0])
        step = max(block_height, (_READ_PIXELS // max(src.width, 1)) // block_height * block_height)
        pixels = np.zeros(0, dtype=np.int64)
        area = np.zeros(0, dtype=np.float64)
        for row in range(0, src.height, step):
            rows = min(step, src.height - row)
            values = src.read(1, window=Window(0, row, src.width, rows))
            if nodata is not None and nodata < 0:
                values[values == nodata] = 0
            if values.min() < 0:
                raise InputDataError(f"class map '{path}' holds negative values: labels are integers > 0, 0 = no data")
            row_area = _row_areas_m2(src, row, rows)
            counts = np.bincount(values.ravel())
            if np.ndim(row_area):  # geographic coordinates: each row's cells have their own area
                areas = np.bincount(values.ravel(), weights=np.repeat(row_area, src.width), minlength=counts.size)
            else:
                areas = counts * float(row_area)
            size = max(pixels.size, counts.size)
            pixels = np.pad(pixels, (0, size - pixels.size)) + np.pad(counts, (0, size - counts.size))
            area = np.pad(area, (0, size - area.size)) + np.pad(areas, (0, size - areas.size))
    for skipped in {0, nodata} - {None}:  # label 0 is no data, and so is the file's nodata value
        if float(skipped).is_integer() and 0 <= skipped < pixels.size:
            pixels[int(skipped)], area[int(skipped)] = 0, 0.0
    found = [int(label) for label in np.flatnonzero(pixels)]
    every = labels + sorted(set(found) - set(labels))
    pixels_out = np.array([pixels[label] if label < pixels.size else 0 for label in every], dtype=np.int64)
    area_out = np.array([area[label] if label < area.size else 0.0 for label in every]) / _SQUARE_METRES_PER_HECTARE
    return pixels_out, area_out, every


def assess_map(map_path: str | Path, confusion, labels) -> AreaAccuracy:
    """Area-adjusted accuracy of a class map from its validation confusion matrix.

    Parameters
    ----------
    map_path : str or pathlib.Path
        The class map (e.g. ``final/Classif_Seed_S.tif``).
    confusion : array_like
        Its validation confusion matrix, iota2's orientation (rows = reference, columns = map), over ``labels``.
    labels : sequence of int
        Labels of ``confusion``; labels of the map outside them are added with no validation pixel (and so make
        the estimates undefined, see :attr:`AreaAccuracy.unsampled`).

    Returns
    -------
    AreaAccuracy
    """
    pixels, area, every = map_class_areas(map_path, labels)
    matrix = np.zeros((len(every), len(every)), dtype=np.float64)
    matrix[:len(labels), :len(labels)] = np.asarray(confusion, dtype=np.float64)
    return stratified_estimates(matrix, every, area, pixels, str(map_path))


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("label", "class", "map_pixels", "map_area_ha", "validation_pixels", "weight",
               "area_proportion", "area_proportion_ci95", "area_proportion_low", "area_proportion_high",
               "area_ha", "area_ha_ci95", "area_ha_low", "area_ha_high",
               "user_accuracy", "user_accuracy_ci95", "user_accuracy_low", "user_accuracy_high",
               "producer_accuracy", "producer_accuracy_ci95", "producer_accuracy_low", "producer_accuracy_high",
               "overall_accuracy", "overall_accuracy_ci95", "overall_accuracy_low", "overall_accuracy_high")
"""Columns of :func:`write_area_accuracy_csv`, followed by one ``p_<label>`` column per reference class."""


def _csv_number(value) -> str:
    value = float(value)
    if math.isnan(value):
        return "nan"
    return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)


def write_area_accuracy_csv(path: str | Path, result: AreaAccuracy, class_names=None) -> None:
    """Write one run's estimates as a CSV (one row per class), atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file (``final/TMP/area_accuracy_seed_S.csv``).
    result : AreaAccuracy
        The estimates.
    class_names : mapping, optional
        ``{label: name}``; labels without a name are written as numbers.

    Notes
    -----
    Columns: :data:`CSV_COLUMNS` then ``p_<label>`` for each reference class: the row of the estimated area
    proportions ``p_ij`` of the map class (the paper's Table 9). ``*_ci95`` are 95 % half-widths, ``*_low`` /
    ``*_high`` the intervals cut to [0, 1] (areas: [0, total area]). The overall accuracy is the same on every
    row. Undefined values are ``nan``.
    """
    names = class_names or {}
    columns = [
        result.map_pixels, result.map_area_ha, result.validation_pixels, result.weights,
        result.area_proportion, result.area_proportion_half_width, *result.interval("area_proportion"),
        result.area_ha, result.area_ha_half_width, *result.interval("area_ha"),
        result.user_accuracy, result.user_accuracy_half_width, *result.interval("user_accuracy"),
        result.producer_accuracy, result.producer_accuracy_half_width, *result.interval("producer_accuracy")]
    overall = [result.overall_accuracy, result.overall_accuracy_half_width, *result.interval("overall_accuracy")]
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(list(CSV_COLUMNS) + [f"p_{label}" for label in result.labels])
            for index, label in enumerate(result.labels):
                name = names.get(label, names.get(str(label), str(label)))
                writer.writerow([label, name] + [_csv_number(column[index]) for column in columns]
                                + [_csv_number(value) for value in overall]
                                + [_csv_number(value) for value in result.proportions[index]])
