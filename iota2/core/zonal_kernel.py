"""The numba kernel of :func:`iota2.core.zonal_stats.partial_statistics` (a module of its own so that importing numba
and loading the compiled code happen only where per-object statistics are computed, not in the driver).

Why this shape: each pixel already knows the row (slot) of its segment in the accumulators, so one pass over the
pixels, bands as the inner loop (a pixel's features are contiguous in a (pixels, bands) array), adds its values to
the sums and updates the extrema of that row. The features are read once and nothing of their size is allocated.
Measured on 10^6 pixels x 50 bands and 10^4 segments: 0.11 s for every statistic, against 4.4 s for sorting the
pixels by segment and reducing with ``np.add.reduceat`` / ``np.minimum.reduceat`` and 1.9 s for ``np.bincount``
band by band (sums only).
"""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def accumulate(slots, values, count, sums, sumsq, minimum, maximum, with_sums, with_sumsq,
               with_extrema):  # pragma: no cover - compiled
    """Add the pixels of ``values`` to the accumulator rows given by ``slots``.

    Parameters
    ----------
    slots
        (P,) int64: the accumulator row of each pixel, -1 for a pixel left out.
    values
        (P, n) C-contiguous float32 features.
    count
        (k,) int64 pixel counts, updated.
    sums, sumsq
        (k, n) float64 sums of the values and of their squares, updated when ``with_sums`` / ``with_sumsq``.
    minimum, maximum
        (k, n) float32 extrema, updated when ``with_extrema``.
    """
    n_pixels, n_bands = values.shape
    for pixel in range(n_pixels):
        slot = slots[pixel]
        if slot < 0:
            continue
        count[slot] += 1
        for band in range(n_bands):
            value = values[pixel, band]
            if with_sums:
                sums[slot, band] += value
            if with_sumsq:
                sumsq[slot, band] += np.float64(value) * np.float64(value)
            if with_extrema:
                if value < minimum[slot, band]:
                    minimum[slot, band] = value
                if value > maximum[slot, band]:
                    maximum[slot, band] = value
