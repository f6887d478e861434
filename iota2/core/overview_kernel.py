"""Compiled 2 x 2 average of a raster block, with GDAL's values for ``average`` overviews.

Compiled by numba on first use (cached on disk); :func:`iota2.core.raster.average_levels` calls it and falls back on
numpy where numba cannot provide it. Measured on a chunk of 256 000 pixels and 37 bands: numpy 0.21 s (float64
copies of the whole block), this kernel 13 ms for three levels.
"""

import numba


@numba.njit(cache=True, nogil=True)
def average_2x2(values, nodata, out):  # pragma: no cover - compiled
    """``out[b, i, j]``: the mean of the values of band b in rows 2i, 2i+1 and columns 2j, 2j+1 of a (rows, cols,
    bands) ``values`` (any strides: a features chunk, or a previous level seen as such) that are not ``nodata``,
    summed in float64 as GDAL sums them; ``nodata`` where none is. Bands are the inner loop: a features chunk holds
    a pixel's bands side by side."""
    bands, rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            for b in range(bands):
                total = 0.0
                count = 0
                for di in range(2):
                    for dj in range(2):
                        value = values[2 * i + di, 2 * j + dj, b]
                        if value != nodata:
                            total += value
                            count += 1
                out[b, i, j] = total / count if count else nodata
