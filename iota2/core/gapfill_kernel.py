"""The numba kernel of :func:`iota2.core.timeseries.gapfill_linear` (a module of its own so that importing numba
and loading the compiled code happen only where a series is gap-filled, not in the driver).

Why this shape: for a block of pixels, the previous and next valid observation of every input date are found
once (one forward and one backward scan per pixel); then, per output date, the two dates and the float32 weight
of each pixel are computed once and applied to every band, with the pixels of the block as the inner loop
(contiguous in memory). The cube is read about twice and the result written once, with no temporary larger than
a block. Measured slower and not kept: a contiguous pass from the usual dates of the output date followed by a
gather of the other pixels only (+30 to +130 %). Figures against the numpy version and eo-learn: bench/README.md.

The arithmetic is the numpy version's, operation for operation (weights in float64 from day numbers, rounded
to float32; ``(high - low) * weight + low`` in float32): both give the same bits (tests/core/test_timeseries.py).
"""

import numpy as np
from numba import njit

BLOCK = 256
"""Pixels processed together (their scan indices stay in the L1/L2 cache)."""


@njit(nogil=True, cache=True)
def gapfill(values, invalid, in_days, out_days, before, after, out):  # pragma: no cover - compiled
    """Linear gap-filling of ``values`` onto ``out_days``, written into ``out``.

    Parameters
    ----------
    values
        (T, B, N) C-contiguous observations (any numeric type, converted to float32 as read).
    invalid
        (T, N) bool, True where the observation must not be used.
    in_days, out_days
        (T,) and (O,) float64 day numbers; ``in_days`` non-decreasing.
    before, after
        (O,) int64: the last input index whose day is <= each output day (-1 if none) and the first one whose
        day is >= it (T if none).
    out
        (O, B, N) C-contiguous float32 result.
    """
    n_dates, n_bands, n_pixels = values.shape
    n_out = out_days.shape[0]
    flat_in = values.reshape(-1)
    flat_out = out.reshape(-1)
    previous = np.empty((max(n_dates, 1), BLOCK), np.int32)
    following = np.empty((max(n_dates, 1), BLOCK), np.int32)
    # unsigned offsets: no negative-index wraparound test in the inner loop, which LLVM then vectorises
    low_offset = np.empty(BLOCK, np.uint64)
    high_offset = np.empty(BLOCK, np.uint64)
    weight = np.empty(BLOCK, np.float32)
    empty = np.empty(BLOCK, np.bool_)
    for start in range(0, n_pixels, BLOCK):
        width = min(BLOCK, n_pixels - start)
        for j in range(width):
            last = -1
            for t in range(n_dates):
                if not invalid[t, start + j]:
                    last = t
                previous[t, j] = last
            first = n_dates
            for t in range(n_dates - 1, -1, -1):
                if not invalid[t, start + j]:
                    first = t
                following[t, j] = first
        for o in range(n_out):
            day = out_days[o]
            b_index = before[o]
            a_index = after[o]
            any_empty = False
            for j in range(width):
                prev = previous[b_index, j] if b_index >= 0 else -1
                nxt = following[a_index, j] if a_index < n_dates else n_dates
                has_prev = prev >= 0
                has_next = nxt < n_dates
                if has_prev:
                    low = prev
                elif has_next:
                    low = nxt
                else:
                    low = 0
                high = nxt if has_next else low
                span = in_days[high] - in_days[low]
                weight[j] = np.float32((day - in_days[low]) / span) if span > 0 else np.float32(0.0)
                low_offset[j] = np.uint64(low * n_bands * n_pixels + start + j)
                high_offset[j] = np.uint64(high * n_bands * n_pixels + start + j)
                empty[j] = not (has_prev or has_next)
                any_empty |= empty[j]
            for band in range(n_bands):
                shift = np.uint64(band * n_pixels)
                base = np.uint64((o * n_bands + band) * n_pixels + start)
                for j in range(width):
                    uj = np.uint64(j)
                    low_value = np.float32(flat_in[low_offset[uj] + shift])
                    high_value = np.float32(flat_in[high_offset[uj] + shift])
                    flat_out[base + uj] = (high_value - low_value) * weight[uj] + low_value
                if any_empty:
                    for j in range(width):
                        if empty[j]:
                            flat_out[base + np.uint64(j)] = np.float32(0.0)
