"""Dates and temporal gap-filling of image time series (pure numpy).

Dates are written ``YYYYMMDD`` strings everywhere, as in iota2's date files. Gap-filling runs a
numba kernel (:mod:`iota2.core.gapfill_kernel`, compiled once and kept in numba's cache, imported on
first use) that walks the cube block of pixels by block of pixels; when numba cannot provide it, the same
arithmetic vectorised with numpy (previous and next valid observations from cumulative maxima / minima of
index arrays, a Python loop over output dates only) gives the same values, several times slower.
"""

from __future__ import annotations

import datetime
import functools
import logging

import numpy as np

LOGGER = logging.getLogger(__name__)

__all__ = ["parse_date", "format_date", "days_between", "date_grid", "day_numbers", "gapfill_linear"]


def parse_date(value: str | int) -> datetime.date:
    """Parse a ``YYYYMMDD`` date.

    Parameters
    ----------
    value
        Date as a string or an integer, e.g. ``"20180511"`` or ``20180511``.

    Returns
    -------
    datetime.date

    Raises
    ------
    ValueError
        If ``value`` is not a valid ``YYYYMMDD`` date.
    """
    text = str(value).strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"{value!r} is not a date written YYYYMMDD")
    return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))


def format_date(date: datetime.date) -> str:
    """Write a date as ``YYYYMMDD``."""
    return date.strftime("%Y%m%d")


def days_between(start: str | int, end: str | int) -> int:
    """Number of days from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    return (parse_date(end) - parse_date(start)).days


def day_numbers(dates: list[str]) -> np.ndarray:
    """Proleptic ordinal day numbers (int64) of ``YYYYMMDD`` dates, for day arithmetic on arrays."""
    return np.array([parse_date(date).toordinal() for date in dates], dtype=np.int64)


def date_grid(start: str | int, end: str | int, step_days: int) -> list[str]:
    """Dates from ``start`` every ``step_days`` days up to ``end``.

    ``end`` is included only if it falls on the grid (iota2's ``dateInterval``).

    Parameters
    ----------
    start, end
        ``YYYYMMDD`` bounds, ``start <= end``.
    step_days
        Days between two consecutive dates, > 0.

    Returns
    -------
    list of str
        ``YYYYMMDD`` dates in chronological order; ``[start]`` when ``start == end``.
    """
    if step_days <= 0:
        raise ValueError(f"step_days must be > 0, got {step_days}")
    first, last = parse_date(start), parse_date(end)
    if last < first:
        raise ValueError(f"end date {end} is before start date {start}")
    count = (last - first).days // step_days + 1
    return [format_date(first + datetime.timedelta(days=step_days * index)) for index in range(count)]


def gapfill_linear(values: np.ndarray, invalid: np.ndarray, input_dates: list[str],
                   output_dates: list[str], compiled: bool = True) -> np.ndarray:
    """Linear temporal interpolation of a time series using only its valid observations.

    For every pixel and output date, the value is interpolated linearly (weights from day
    differences) between the last valid observation on or before the date and the first valid one
    on or after it. Before the first / after the last valid observation the nearest valid value is
    held. A pixel without any valid observation gets 0.

    Parameters
    ----------
    values
        (T, B, rows, cols) observations, T input dates of B bands.
    invalid
        (T, rows, cols) bool (or 0/1), True where the observation must not be used (cloud, edge...).
    input_dates
        T ``YYYYMMDD`` dates of ``values``, chronological.
    output_dates
        ``YYYYMMDD`` dates of the result, in any order.
    compiled
        Use the compiled kernel (:mod:`iota2.core.gapfill_kernel`) when numba provides it; False runs the
        numpy version (same values).

    Returns
    -------
    numpy.ndarray
        (len(output_dates), B, rows, cols) float32.
    """
    values = np.asarray(values)
    invalid = np.asarray(invalid, dtype=bool)
    if values.ndim != 4:
        raise ValueError(f"values must be shaped (dates, bands, rows, cols), got {values.shape}")
    n_dates, n_bands, rows, cols = values.shape
    if invalid.shape != (n_dates, rows, cols):
        raise ValueError(f"invalid must be shaped {(n_dates, rows, cols)}, got {invalid.shape}")
    if len(input_dates) != n_dates:
        raise ValueError(f"{len(input_dates)} input dates for {n_dates} observations")
    in_days = day_numbers(list(input_dates))
    if np.any(np.diff(in_days) < 0):
        raise ValueError("input dates must be chronological")
    out_days = day_numbers(list(output_dates))
    n_pixels = rows * cols
    if n_dates == 0 or n_pixels == 0:
        return np.zeros((len(out_days), n_bands, rows, cols), dtype=np.float32)
    result = np.empty((len(out_days), n_bands, rows, cols), dtype=np.float32)
    flat = values.reshape(n_dates, n_bands, n_pixels)
    out_flat = result.reshape(len(out_days), n_bands, n_pixels)
    kernel = _kernel() if compiled else None
    if kernel is not None:  # no temporary of the cube's size: the mask is read as given
        before = np.searchsorted(in_days, out_days, side="right").astype(np.int64) - 1
        after = np.searchsorted(in_days, out_days, side="left").astype(np.int64)
        kernel.gapfill(np.ascontiguousarray(flat), np.ascontiguousarray(invalid.reshape(n_dates, n_pixels)),
                       in_days.astype(np.float64), out_days.astype(np.float64), before, after, out_flat)
        return result
    _gapfill_numpy(flat, ~invalid.reshape(n_dates, n_pixels), in_days, out_days, out_flat)
    return result


def warm_up() -> None:
    """Import the feature stage and load its compiled kernels now: gap-filling, upsampling and the overviews'
    average of a features-map chunk (dask workers call it at start)."""
    import iota2.core.features  # noqa: F401
    from iota2.core.raster import overview_kernel, upsample_kernel

    _kernel()
    upsample_kernel()
    overview_kernel()


@functools.lru_cache(maxsize=1)
def _kernel():
    """The numba gap-filling kernel module, compiled (or loaded from numba's cache) on first use, or None when
    numba cannot provide it (then the numpy version runs, with one warning)."""
    try:
        from iota2.core import gapfill_kernel

        out = np.empty((1, 1, 1), np.float32)
        gapfill_kernel.gapfill(np.zeros((1, 1, 1), np.float32), np.zeros((1, 1), bool), np.zeros(1),
                               np.zeros(1), np.zeros(1, np.int64), np.zeros(1, np.int64), out)
    except Exception as exc:  # noqa: BLE001 - any numba failure means the numpy path
        LOGGER.warning("the compiled gap-filling kernel is not available (%s: %s); series are gap-filled with "
                       "numpy, several times slower", type(exc).__name__, exc)
        return None
    return gapfill_kernel


def _gapfill_numpy(flat: np.ndarray, valid: np.ndarray, in_days: np.ndarray, out_days: np.ndarray,
                   out_flat: np.ndarray) -> None:
    """:func:`gapfill_linear` vectorised with numpy: (T, B, N) ``flat`` and (T, N) ``valid`` into (O, B, N)
    ``out_flat``; the same arithmetic as the compiled kernel."""
    n_dates, _, n_pixels = flat.shape
    dates_index = np.arange(n_dates, dtype=np.int32)[:, np.newaxis]
    # previous[t, p]: last valid index <= t (-1 if none); following[t, p]: first valid index >= t (T if none)
    previous = np.maximum.accumulate(np.where(valid, dates_index, -1), axis=0)
    following = np.minimum.accumulate(np.where(valid, dates_index, n_dates)[::-1], axis=0)[::-1]
    pixel_days = in_days.astype(np.float64)
    no_index = np.empty(n_pixels, dtype=np.int32)

    for out_index, day in enumerate(out_days):
        before = int(np.searchsorted(in_days, day, side="right")) - 1  # last input date <= day
        after = int(np.searchsorted(in_days, day, side="left"))  # first input date >= day
        if before >= 0:
            prev_idx = previous[before]
        else:
            prev_idx = no_index
            prev_idx.fill(-1)
        next_idx = following[after] if after < n_dates else np.full(n_pixels, n_dates, dtype=np.int32)
        has_prev = prev_idx >= 0
        has_next = next_idx < n_dates
        # hold the nearest valid value outside the valid range
        prev_safe = np.where(has_prev, prev_idx, np.where(has_next, next_idx, 0))
        next_safe = np.where(has_next, next_idx, prev_safe)
        span = pixel_days[next_safe] - pixel_days[prev_safe]
        weight = np.divide(day - pixel_days[prev_safe], span, out=np.zeros(n_pixels), where=span > 0)
        low = _gather(flat, prev_safe, before)
        target = out_flat[out_index]
        np.subtract(_gather(flat, next_safe, after), low, out=target)
        target *= weight.astype(np.float32)
        target += low
        empty = ~(has_prev | has_next)
        if empty.any():
            target[:, empty] = 0.0


def _gather(flat: np.ndarray, index: np.ndarray, usual: int) -> np.ndarray:
    """``flat[index[p], :, p]`` for every pixel p, as a (bands, pixels) float32 array.

    Most pixels take their value from the same date ``usual``: that slice is copied and only the
    other pixels are gathered, which is several times faster than a full gather.
    """
    n_dates, _, n_pixels = flat.shape
    if not 0 <= usual < n_dates:
        return np.take_along_axis(flat, index[np.newaxis, np.newaxis, :], axis=0)[0].astype(np.float32, copy=False)
    gathered = flat[usual].astype(np.float32, copy=True)
    others = np.flatnonzero(index != usual)
    if others.size:
        gathered[:, others] = flat[index[others], :, others].T
    return gathered


def interpolation_grid(all_dates: list[str], section: str, step: int, auto_date: bool, start_date, end_date,
                       what: str = "date", where: str = "") -> list[str]:
    """The interpolation dates of a sensor from the acquisition dates of all its tiles.

    With ``auto_date`` from the earliest to the latest acquisition every ``step`` days (iota2's rule);
    otherwise from ``start_date`` to ``end_date`` (``<section>.start_date`` / ``end_date``, YYYYMMDD).
    Errors name the keys; ``what`` and ``where`` describe the data in the "no date" message.
    """
    from iota2.core.errors import ConfigError, InputDataError

    if step <= 0:
        raise ConfigError(f"{section}.temporal_resolution = {step} must be > 0 (days)")
    if auto_date:
        if not all_dates:
            raise InputDataError(f"no {what} found in any tile{'; check ' + where if where else ''}")
        return date_grid(all_dates[0], all_dates[-1], step)
    bounds = []
    for key, value in (("start_date", start_date), ("end_date", end_date)):
        if value in (None, ""):
            raise ConfigError(f"{section}.{key} must be set (YYYYMMDD) when sensors_data_interpolation.auto_date is "
                              "False, or set auto_date to True")
        try:
            parse_date(value)
        except ValueError as exc:
            raise ConfigError(f"{section}.{key} = {value!r} is not a valid date written YYYYMMDD") from exc
        bounds.append(str(value))
    if bounds[1] < bounds[0]:
        raise ConfigError(f"{section}.start_date = {bounds[0]} is after {section}.end_date = {bounds[1]}")
    return date_grid(bounds[0], bounds[1], step)



def series_on_dates(raw: np.ndarray, masks: np.ndarray, footprint: np.ndarray, input_dates: list[str],
                    interpolation_dates: list[str], use_gapfilling: bool, fill: float,
                    pixels: tuple[np.ndarray, np.ndarray] | None = None):
    """From a window's raw series to the series on the interpolation dates (what every optical sensor does).

    Parameters
    ----------
    raw, masks, footprint
        (dates, bands, rows, cols) values, (dates, rows, cols) invalid flags, (rows, cols) data footprint.
    use_gapfilling
        Gap-fill linearly onto ``interpolation_dates``; otherwise place each acquisition on its date and fill
        the dates a tile lacks with ``fill``.
    pixels
        Optional (rows, cols): keep only these pixels, as an image of 1 row.

    Returns
    -------
    tuple
        ``(raw, masks, footprint, validity, interpolated)`` with validity the number of valid observations
        (uint16).

    Notes
    -----
    A NaN value (in any band) makes the observation invalid and is replaced by ``fill``: NaN never reaches the
    gap-filling, the features or a model. Sensors warn about the file that holds it when they read it.
    """
    if pixels is not None:
        rows_at, cols_at = (np.asarray(index) for index in pixels)
        raw = raw[:, :, rows_at, cols_at][:, :, np.newaxis, :]
        masks = masks[:, rows_at, cols_at][:, np.newaxis, :]
        footprint = footprint[rows_at, cols_at][np.newaxis, :]
    if raw.dtype.kind == "f":
        not_a_number = np.isnan(raw)
        if not_a_number.any():
            if pixels is None:
                raw = raw.copy()
            raw[not_a_number] = fill
            masks = np.logical_or(masks, not_a_number.any(axis=1)).astype(masks.dtype)
    validity = (len(input_dates) - masks.sum(axis=0, dtype=np.int32)).astype(np.uint16)
    if use_gapfilling:
        interpolated = gapfill_linear(raw, masks.astype(bool), input_dates, interpolation_dates)
    else:
        position = {date: index for index, date in enumerate(input_dates)}
        interpolated = np.full((len(interpolation_dates),) + raw.shape[1:], fill, dtype=np.float32)
        for out_index, date in enumerate(interpolation_dates):
            if date in position:
                interpolated[out_index] = raw[position[date]]
    return raw, masks, footprint, validity, interpolated
