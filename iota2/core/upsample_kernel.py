"""Compiled bilinear upsampling of an integer raster block, with the values of GDAL's resampled read.

Compiled by numba on first use (cached on disk); :func:`iota2.core.raster.read_onto_grid` calls it through
:func:`iota2.core.raster.upsampled_read` and falls back on GDAL's own read wherever this kernel does not apply.
"""

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def upsample_bilinear(block, row_a, row_b, row_weight, col_a, col_b, col_weight, nodata, has_nodata, out):
    """Fill ``out`` (rows, cols) with the bilinear interpolation of ``block`` (an integer raster window).

    Output pixel (i, j) is ``(1 - wr) * ((1 - wc) * block[ra, ca] + wc * block[ra, cb]) + wr * (...)[rb]``
    with ``ra = row_a[i]``, ``rb = row_b[i]``, ``wr = row_weight[i]`` and the same for columns, computed in
    float64 (exact for integer values and dyadic weights) and rounded half away from zero, as GDAL rounds a
    float into an integer type.

    Returns False, before writing anything, when a pixel of ``block`` (every one is used by the interpolation)
    equals ``nodata`` (with ``has_nodata``): GDAL then leaves it out of its kernel and weighs the others anew,
    which the caller leaves to GDAL.
    """
    rows, cols = out.shape
    if has_nodata:
        for r in range(block.shape[0]):
            for c in range(block.shape[1]):
                if block[r, c] == nodata:
                    return False
    # columns first, once per source row (each is shared by ``factor`` output rows), then rows
    across = np.empty((block.shape[0], cols), np.float64)
    for r in range(block.shape[0]):
        for j in range(cols):
            wc = col_weight[j]
            across[r, j] = (1.0 - wc) * block[r, col_a[j]] + wc * block[r, col_b[j]]
    for i in range(rows):
        ra, rb = row_a[i], row_b[i]
        wr = row_weight[i]
        for j in range(cols):
            value = (1.0 - wr) * across[ra, j] + wr * across[rb, j]
            if value >= 0.0:
                out[i, j] = math.floor(value + 0.5)
            else:
                out[i, j] = -math.floor(-value + 0.5)
    return True
