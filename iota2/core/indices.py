"""Spectral indices of gap-filled series, written once for every sensor and every feature function.

iota2's scale: normalised differences are multiplied by 1000 (integer-friendly, like reflectances x 10000),
the brightness is unscaled. An index is 0 where the absolute value of its denominator is below
:data:`INDEX_EPSILON`, and ``nodata`` where any band of the observation is nodata.
"""

from __future__ import annotations

import numpy as np

#: denominators smaller than this in absolute value give an index of 0
INDEX_EPSILON = 1e-5
#: normalised differences are stored x this factor
INDEX_SCALE = 1000.0


def normalised_difference(high: np.ndarray, low: np.ndarray, no_data: np.ndarray | None = None,
                          nodata: float = -10000.0, scale: float = INDEX_SCALE,
                          out: np.ndarray | None = None) -> np.ndarray:
    """``(high - low) / (high + low) x scale`` in float32.

    Parameters
    ----------
    high, low
        Arrays of one shape (e.g. (dates, rows, cols)): for NDVI, NIR and red.
    no_data
        Boolean array of that shape, True where the result is ``nodata``; ``None`` for none.
    nodata
        Value written where ``no_data`` is True.
    scale
        Factor of the result (1000 in iota2's feature stacks; 1 for the plain ratio).
    out
        Optional float32 array receiving the result.

    Returns
    -------
    numpy.ndarray
        float32 index, 0 where ``|high + low| < INDEX_EPSILON``.
    """
    denominator = np.add(high, low, dtype=np.float32)
    result = np.subtract(high, low, out=out, dtype=np.float32)
    small = np.abs(denominator) < INDEX_EPSILON
    denominator[small] = 1.0
    result /= denominator
    if scale != 1.0:
        result *= np.float32(scale)
    result[small] = 0.0
    if no_data is not None:
        result[no_data] = nodata
    return result


def brightness(bands: list[np.ndarray], no_data: np.ndarray | None = None, nodata: float = -10000.0,
               out: np.ndarray | None = None) -> np.ndarray:
    """Square root of the sum of the squares of ``bands`` (unscaled), ``nodata`` where ``no_data``."""
    if out is None:
        out = np.zeros(np.shape(bands[0]), dtype=np.float32)
    else:
        out.fill(0.0)
    for band in bands:
        out += np.square(band, dtype=np.float32)
    np.sqrt(out, out=out)
    if no_data is not None:
        out[no_data] = nodata
    return out
