"""Per-object (zonal) statistics of the features: mean, count, min, max and std of every feature over the pixels
of each segment, streamed in bounded memory.

A chunk of a tile gives :class:`ZonalPartials` (per segment: pixel count, sums, sums of squares, extrema) with
:func:`partial_statistics`; the partials of every chunk (and tile) holding pixels of a segment are added with
:func:`combine`, so a segment that crosses chunk or tile borders is described by all its pixels, exactly as one
call on the union of the pixels would describe it; :func:`statistics_table` turns the result into the columns
``<feature label>_<stat>`` that learning and classification read.

How the pixels are grouped: every pixel gets the row of its segment in dense accumulators (``id - smallest id``
when the ids of a batch span at most an eighth of its pixels, as for SLIC superpixels and segment rasters, else
the rank of its id among the batch's ids, from one sort of the ids), then a compiled kernel
(:mod:`iota2.core.zonal_kernel`) adds each pixel's features to its row in one pass. On 10^6 pixels x 50 features
and 10^4 segments this takes 0.11 s for every statistic, against 4.4 s for sorting the pixels and reducing with
``np.add.reduceat`` / ``np.minimum.reduceat`` and 1.9 s for ``np.bincount`` feature by feature (sums only); when
numba cannot provide the kernel the sort-and-reduce version runs (same values, with one warning).
Figures against exactextract: ``bench/README.md`` (``bench/bench_zonal_stats.py``).

Memory: besides the features given, a batch of ``batch_pixels`` pixels (``obia.buffer_size``) allocates one int64
per pixel and the accumulators of the segments it holds; the result holds ``k x n`` float64 sums (and squares)
and float32 extrema for ``k`` segments and ``n`` features.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from iota2.core.errors import ConfigError, InputDataError

LOGGER = logging.getLogger(__name__)

__all__ = ["STATISTICS", "DEFAULT_BATCH_PIXELS", "ZonalPartials", "check_statistics", "partial_statistics",
           "combine", "write_partials", "read_partials", "statistics_table"]

STATISTICS = ("mean", "count", "min", "max", "std")
"""Statistics a user may ask in ``obia.stats_used``."""

DEFAULT_BATCH_PIXELS = 1 << 20
"""Pixels processed at once when ``batch_pixels`` (``obia.buffer_size``) is not given."""

_FIELDS = ("count", "sum", "sumsq", "min", "max")


def check_statistics(stats) -> list[str]:
    """Validate ``obia.stats_used``.

    Parameters
    ----------
    stats
        A list of statistic names (a single name, or names separated by spaces or commas, is accepted too).

    Returns
    -------
    list[str]
        The names in lower case, in the order given.

    Raises
    ------
    ConfigError
        If the list is empty, holds a name not in :data:`STATISTICS` (or not a string) or a name twice; the
        message names ``obia.stats_used`` and the allowed values.
    """
    allowed = ", ".join(STATISTICS)
    if isinstance(stats, str):
        stats = stats.replace(",", " ").split()
    if stats is None or not isinstance(stats, (list, tuple)) or len(stats) == 0:
        raise ConfigError(f"obia.stats_used = {stats!r}: give a non-empty list of statistics among {allowed}, "
                          "e.g. ['mean', 'std']")
    names = []
    for entry in stats:
        if not isinstance(entry, str) or entry.strip().lower() not in STATISTICS:
            raise ConfigError(f"obia.stats_used: {entry!r} is not a statistic iota2 computes; use any of {allowed}")
        name = entry.strip().lower()
        if name in names:
            raise ConfigError(f"obia.stats_used lists {name!r} twice; list each of {allowed} at most once")
        names.append(name)
    return names


@dataclasses.dataclass
class ZonalPartials:
    """What a set of pixels tells about each segment they belong to; :func:`combine` adds such partials.

    Only what the requested statistics need is filled, the other fields are None: ``sum`` for mean and std,
    ``sumsq`` for std, ``min`` / ``max`` for min / max (``count`` always).

    Attributes
    ----------
    segments
        (k,) uint32 segment ids, sorted ascending, unique, without 0.
    count
        (k,) int64 pixel counts.
    sum, sumsq
        (k, n) float64 sums of the features and of their squares over the segment's pixels, or None.
    min, max
        (k, n) float32 extrema, or None.
    """

    segments: np.ndarray
    count: np.ndarray
    sum: np.ndarray | None = None
    sumsq: np.ndarray | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    @property
    def n_features(self) -> int | None:
        """Number of features n (None when only counts are held)."""
        for name in ("sum", "sumsq", "min", "max"):
            value = getattr(self, name)
            if value is not None:
                return int(value.shape[1])
        return None

    def __len__(self) -> int:
        return int(self.segments.shape[0])


def _needs(stats: Sequence[str]) -> tuple[bool, bool, bool]:
    """(sums, sums of squares, extrema) needed by ``stats``."""
    return ("mean" in stats or "std" in stats), "std" in stats, ("min" in stats or "max" in stats)


@functools.lru_cache(maxsize=1)
def _kernel():
    """The compiled kernel module (compiled or loaded from numba's cache on first use), or None when numba cannot
    provide it (then the numpy version runs, with one warning)."""
    try:
        from iota2.core import zonal_kernel

        empty = np.zeros((1, 1))
        extrema = np.zeros((1, 1), np.float32)
        zonal_kernel.accumulate(np.zeros(1, np.int64), np.zeros((1, 1), np.float32), np.zeros(1, np.int64), empty,
                                empty.copy(), extrema, extrema.copy(), True, True, True)
    except Exception as exc:  # noqa: BLE001 - any numba failure means the numpy path
        LOGGER.warning("the compiled zonal statistics kernel is not available (%s: %s); per-object statistics are "
                       "computed with numpy, several times slower", type(exc).__name__, exc)
        return None
    return zonal_kernel


def _empty(n: int, sums: bool, sumsq: bool, extrema: bool) -> ZonalPartials:
    return ZonalPartials(np.zeros(0, np.uint32), np.zeros(0, np.int64),
                         np.zeros((0, n)) if sums else None, np.zeros((0, n)) if sumsq else None,
                         np.zeros((0, n), np.float32) if extrema else None,
                         np.zeros((0, n), np.float32) if extrema else None)


def _batch_compiled(kernel, ids: np.ndarray, keep: np.ndarray, values: np.ndarray, sums: bool, sumsq: bool,
                    extrema: bool) -> ZonalPartials:
    """Partials of one batch with the compiled kernel: ``ids`` (P,), ``keep`` (P,) bool, ``values`` (P, n)."""
    n = values.shape[1]
    kept = ids[keep]
    if kept.size == 0:
        return _empty(n, sums, sumsq, extrema)
    low, high = int(kept.min()), int(kept.max())
    if high - low < max(kept.size // 8, 4096):  # dense rows (id - low): no more than the features' memory / 6
        segments = None
        rows = high - low + 1
        slots = np.full(ids.shape, -1, np.int64)
        slots[keep] = kept.astype(np.int64) - low
    else:  # sparse ids: their rank among the batch's ids
        segments, inverse = np.unique(kept, return_inverse=True)
        rows = segments.size
        slots = np.full(ids.shape, -1, np.int64)
        slots[keep] = inverse.reshape(-1)
    count = np.zeros(rows, np.int64)
    total = np.zeros((rows, n)) if sums else np.zeros((0, n))
    squares = np.zeros((rows, n)) if sumsq else np.zeros((0, n))
    low_values = np.full((rows, n), np.inf, np.float32) if extrema else np.zeros((0, n), np.float32)
    high_values = np.full((rows, n), -np.inf, np.float32) if extrema else np.zeros((0, n), np.float32)
    kernel.accumulate(slots, values, count, total, squares, low_values, high_values, sums, sumsq, extrema)
    if segments is None:
        present = np.flatnonzero(count)
        segments = (present + low).astype(np.uint32)
    else:
        present = slice(None)
    return ZonalPartials(segments.astype(np.uint32), count[present], total[present] if sums else None,
                         squares[present] if sumsq else None, low_values[present] if extrema else None,
                         high_values[present] if extrema else None)


def _batch_numpy(ids: np.ndarray, keep: np.ndarray, values: np.ndarray, sums: bool, sumsq: bool,
                 extrema: bool) -> ZonalPartials:
    """Partials of one batch with numpy: pixels sorted by id once, then reduced per run of equal ids."""
    n = values.shape[1]
    kept = ids[keep]
    if kept.size == 0:
        return _empty(n, sums, sumsq, extrema)
    order = np.argsort(kept, kind="stable")
    sorted_ids = kept[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    count = np.diff(np.append(starts, sorted_ids.size)).astype(np.int64)
    ordered = values[keep][order]
    as_double = ordered.astype(np.float64) if (sums or sumsq) else None
    return ZonalPartials(sorted_ids[starts].astype(np.uint32), count,
                         np.add.reduceat(as_double, starts, axis=0) if sums else None,
                         np.add.reduceat(as_double * as_double, starts, axis=0) if sumsq else None,
                         np.minimum.reduceat(ordered, starts, axis=0) if extrema else None,
                         np.maximum.reduceat(ordered, starts, axis=0) if extrema else None)


def partial_statistics(segment_ids: np.ndarray, features: np.ndarray, stats: Sequence[str], *,
                       mask: np.ndarray | None = None, batch_pixels: int | None = None,
                       compiled: bool = True) -> ZonalPartials:
    """Per-segment partial statistics of a block of pixels (a chunk of a tile).

    Parameters
    ----------
    segment_ids
        (rows, cols) segment ids (uint32; 0 = no segment, left out).
    features
        (rows, cols, n) features (float32; other types are converted).
    stats
        Statistics wanted (checked with :func:`check_statistics`): they decide which fields are filled.
    mask
        (rows, cols) bool, the pixels to count (e.g. the common mask); default every pixel with a segment.
    batch_pixels
        Most pixels processed at once (``obia.buffer_size``); default :data:`DEFAULT_BATCH_PIXELS`. Memory
        beyond ``features`` is bounded by it (one int64 per pixel of a batch, plus the accumulators of the
        segments of a batch) and by the result.
    compiled
        Use the compiled kernel when numba provides it; False runs the numpy version (same values up to the
        order of float64 additions).

    Returns
    -------
    ZonalPartials
        One row per segment with at least one counted pixel. NaN features make the sums of their segment NaN
        (and are skipped by min / max): leave such pixels out with ``mask``.

    Raises
    ------
    ValueError
        If the shapes disagree or ``batch_pixels`` is not positive.
    """
    stats = check_statistics(stats)
    segment_ids = np.asarray(segment_ids)
    features = np.asarray(features)
    if features.ndim != 3 or segment_ids.shape != features.shape[:2]:
        raise ValueError(f"segment ids {segment_ids.shape} and features {features.shape} must be (rows, cols) and "
                         "(rows, cols, n)")
    if mask is not None and np.shape(mask) != segment_ids.shape:
        raise ValueError(f"mask {np.shape(mask)} must have the shape of the segment ids {segment_ids.shape}")
    batch = DEFAULT_BATCH_PIXELS if batch_pixels is None else int(batch_pixels)
    if batch <= 0:
        raise ValueError(f"batch_pixels must be positive, got {batch_pixels}")
    sums, sumsq, extrema = _needs(stats)
    n = features.shape[2]
    ids = segment_ids.reshape(-1)
    values = np.ascontiguousarray(features, dtype=np.float32).reshape(-1, n)
    flat_mask = None if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
    kernel = _kernel() if compiled else None
    parts = []
    for start in range(0, ids.size, batch):
        stop = min(start + batch, ids.size)
        batch_ids = ids[start:stop]
        keep = batch_ids != 0
        if flat_mask is not None:
            keep &= flat_mask[start:stop]
        if kernel is not None:
            part = _batch_compiled(kernel, batch_ids, keep, values[start:stop], sums, sumsq, extrema)
        else:
            part = _batch_numpy(batch_ids, keep, values[start:stop], sums, sumsq, extrema)
        if len(part):
            parts.append(part)
    if not parts:
        return _empty(n, sums, sumsq, extrema)
    return parts[0] if len(parts) == 1 else combine(parts)


def combine(partials: Iterable[ZonalPartials]) -> ZonalPartials:
    """Add partials: the union of their segments, counts and sums added, extrema reduced.

    The result is what :func:`partial_statistics` gives on the union of the pixels of the partials (the float64
    sums up to the order of the additions, about 1e-16 relative).

    Raises
    ------
    ValueError
        If no partials are given, or they do not hold the same fields or the same number of features.
    """
    partials = list(partials)
    if not partials:
        raise ValueError("combine() needs at least one ZonalPartials")
    fields = [name for name in _FIELDS[1:] if getattr(partials[0], name) is not None]
    for part in partials[1:]:
        if [name for name in _FIELDS[1:] if getattr(part, name) is not None] != fields:
            raise ValueError("the partials to combine were computed for different statistics")
        if part.n_features != partials[0].n_features:
            raise ValueError(f"the partials to combine hold {partials[0].n_features} and {part.n_features} features")
    if len(partials) == 1:
        return partials[0]
    segments = np.concatenate([part.segments for part in partials])
    order = np.argsort(segments, kind="stable")
    sorted_ids = segments[order]
    if sorted_ids.size == 0:
        return partials[0]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    reducers = {"sum": np.add, "sumsq": np.add, "min": np.minimum, "max": np.maximum}
    result = {"segments": sorted_ids[starts].astype(np.uint32),
              "count": np.add.reduceat(np.concatenate([part.count for part in partials])[order], starts)}
    for name in fields:
        stacked = np.concatenate([getattr(part, name) for part in partials])[order]
        result[name] = reducers[name].reduceat(stacked, starts, axis=0)
    return ZonalPartials(**result)


def write_partials(path: str | Path, partials: ZonalPartials) -> Path:
    """Write partials as a ``.npz`` file, atomically (:func:`iota2.core.raster.atomic_output`)."""
    from iota2.core.raster import atomic_output

    arrays = {name: getattr(partials, name) for name in ("segments",) + _FIELDS if getattr(partials, name) is not None}
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def read_partials(path: str | Path) -> ZonalPartials:
    """Read partials written by :func:`write_partials`.

    Raises
    ------
    InputDataError
        If the file is missing or is not a partials file (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"per-object statistics '{path}' do not exist; run again with -restart to compute them")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputDataError(f"per-object statistics '{path}' cannot be read ({exc}); delete the file and run "
                             "again with -restart") from exc
    if "segments" not in arrays or "count" not in arrays:
        raise InputDataError(f"'{path}' is not a per-object statistics file (no segments or count); delete it and "
                             "run again with -restart")
    return ZonalPartials(**{name: arrays.get(name) for name in ("segments",) + _FIELDS})


def statistics_table(partials: ZonalPartials, labels: Sequence[str],
                     stats: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The statistics of every segment as a table.

    Parameters
    ----------
    partials
        Partials of every pixel of the segments (:func:`combine` of all chunks).
    labels
        The n feature labels (e.g. ``sentinel2_b2_20180511``).
    stats
        Statistics, in the order of the columns (checked with :func:`check_statistics`).

    Returns
    -------
    tuple
        ``(segments, values, columns)``: (k,) uint32 ids, (k, n * len(stats)) float32 values and the column names
        ``f"{label}_{stat}"``, label by label and, for each label, the statistics in the order given (e.g.
        ``sentinel2_b2_20180511_mean, sentinel2_b2_20180511_std, sentinel2_b3_20180511_mean`` ...). ``mean`` is
        sum / count; ``std`` the population standard deviation (ddof=0), ``sqrt(sumsq / count - mean**2)`` in
        float64 with a negative variance from rounding clipped to 0; ``count`` the number of pixels (the same in
        every label's column); ``min`` / ``max`` the extrema.

    Raises
    ------
    ValueError
        If the number of labels is not the number of features, or the partials lack a field a statistic needs.
    """
    stats = check_statistics(stats)
    n = partials.n_features
    labels = list(labels)
    if n is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} feature labels for partials of {n} features")
    n = len(labels)
    needed = {"mean": ("sum",), "std": ("sum", "sumsq"), "min": ("min",), "max": ("max",), "count": ()}
    for stat in stats:
        missing = [name for name in needed[stat] if getattr(partials, name) is None]
        if missing:
            raise ValueError(f"statistic {stat!r} needs the partial {missing[0]!r}, not computed for these partials")
    k = len(partials)
    count = partials.count.astype(np.float64)[:, np.newaxis]
    columns_of = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        if "mean" in stats or "std" in stats:
            mean = partials.sum / count
            columns_of["mean"] = mean
        if "std" in stats:
            variance = partials.sumsq / count - mean * mean
            columns_of["std"] = np.sqrt(np.maximum(variance, 0.0))
    if "min" in stats:
        columns_of["min"] = partials.min
    if "max" in stats:
        columns_of["max"] = partials.max
    if "count" in stats:
        columns_of["count"] = np.broadcast_to(count, (k, n))
    values = np.empty((k, n, len(stats)), np.float32)
    for position, stat in enumerate(stats):
        values[:, :, position] = columns_of[stat]
    names = [f"{label}_{stat}" for label in labels for stat in stats]
    return partials.segments.astype(np.uint32), values.reshape(k, n * len(stats)), names
