"""Compiled kernels of :mod:`iota2.simplification.zonal_stats`: which pixels of a strip of rows belong to each zone,
with which weight, and the per-zone accumulation of class areas and statistics in the same pass.

How a zone's pixels are found (no rasterisation of all zones at once, so overlapping zones each keep their pixels):
the zone's rings, in pixel coordinates (column, row), are walked edge by edge into a small buffer covering the zone's
box in the strip, then one running sum along each row of the buffer gives every pixel's weight.

* ``centre`` (mode 0): an edge crossing the horizontal line through the pixel centres of a row adds its direction
  (+1 / -1) at the first column whose centre lies right of the crossing; the running sum is the winding number at
  each pixel centre, and a pixel belongs to the zone when it is not 0 (the pixel-centre rule of GDAL's rasterisation).
* ``exact`` (mode 1): the covered area of each pixel, from Green's theorem: a piece of edge inside one pixel row adds
  to a pixel the signed area between the piece and the pixel's right side, and its whole height to every pixel
  further right (added once, to the next pixel, so the running sum spreads it). Summed over the rings (exterior
  counter-clockwise, holes clockwise, ensured by ``ring_sign``) this is the exact area of the polygon in each pixel
  square, for concave rings, holes and multi-polygons alike, in float64 (errors near 1e-13 of a pixel).
* ``touched`` (mode 2): the pixels whose covered area is above 1e-12 of a pixel, weight 1.

Pieces of edges left of the zone's first column count in full for every column (they lie left of all of them);
pieces right of its last column count for none; rows outside the strip are not walked. So a zone crossing the
raster border gets exactly its inside part. The work per zone is proportional to its edges' length in pixels plus
its box's pixels.
"""

import numpy as np
from numba import njit, prange

WEIGHT_EPSILON = 1e-12
"""Covered fractions at or below this are taken as 0 (float64 noise of the running sums)."""


@njit(nogil=True, cache=True)
def _row_piece(buf, row, xa, xb, dy, ncols):  # pragma: no cover - compiled
    """Add a piece of edge within one pixel row: x from ``xa`` to ``xb`` (buffer columns), signed height ``dy``."""
    if xa == xb:
        if xa >= ncols:
            return
        x = xa if xa > 0.0 else 0.0
        col = int(np.floor(x))
        buf[row, col] += dy * (col + 1.0 - x)
        buf[row, col + 1] += dy * (x - col)
        return
    span = xb - xa
    low = xa if xa < xb else xb
    high = xb if xa < xb else xa
    if high <= 0.0:  # wholly left of the box: full height for every column
        buf[row, 0] += dy
        return
    if low >= ncols:
        return
    if low < 0.0:  # the part left of column 0
        buf[row, 0] += dy * (0.0 - low) / abs(span)
        low = 0.0
    if high > ncols:
        high = ncols
    # the part inside [0, ncols], column by column (the fraction of height is the fraction of x travelled)
    col = int(np.floor(low))
    x = low
    while x < high:
        nxt = col + 1.0
        end = high if high < nxt else nxt
        part = dy * (end - x) / abs(span)
        middle = 0.5 * (x + end)
        buf[row, col] += part * (col + 1.0 - middle)
        buf[row, col + 1] += part * (middle - col)
        x = end
        col += 1


@njit(nogil=True, cache=True)
def zone_weights(xy, ring_start, ring_sign, ring_first, ring_last, row0, col0, buf, mode):  # pragma: no cover
    """Fill ``buf`` (rows, cols + 1), zeroed, with the weights of the pixels of one zone.

    Parameters
    ----------
    xy
        (N, 2) float64 vertices (column, row) in pixel coordinates of the raster; each ring closed.
    ring_start
        (R + 1,) int64 offsets of the rings in ``xy``.
    ring_sign
        (R,) float64 +1 or -1: turns each ring to the orientation of its role (exterior or hole).
    ring_first, ring_last
        The zone's rings are ``ring_first`` to ``ring_last - 1``.
    row0, col0
        Raster row and column of ``buf[0, 0]``.
    buf
        (rows, cols + 1) float64 work buffer; on return ``buf[:, :cols]`` holds the weights (0 to 1).
    mode
        0 pixel centres, 1 exact covered fraction, 2 pixels touched (covered area > 0).
    """
    nrows = buf.shape[0]
    ncols = buf.shape[1] - 1
    for ring in range(ring_first, ring_last):
        sign = ring_sign[ring]
        for k in range(ring_start[ring], ring_start[ring + 1] - 1):
            x0 = xy[k, 0] - col0
            y0 = xy[k, 1] - row0
            x1 = xy[k + 1, 0] - col0
            y1 = xy[k + 1, 1] - row0
            if y0 == y1:
                continue
            direction = sign if y1 > y0 else -sign
            ylo = y0 if y0 < y1 else y1
            yhi = y1 if y0 < y1 else y0
            if ylo >= nrows or yhi <= 0.0:
                continue
            slope = (x1 - x0) / (y1 - y0)
            if mode == 0:
                first = int(np.ceil(ylo - 0.5))
                last = int(np.ceil(yhi - 0.5))  # centres in [ylo, yhi)
                if first < 0:
                    first = 0
                if last > nrows:
                    last = nrows
                for row in range(first, last):
                    x = x0 + (row + 0.5 - y0) * slope
                    col = int(np.floor(x - 0.5)) + 1
                    if col >= ncols:
                        continue
                    if col < 0:
                        col = 0
                    buf[row, col] += direction
            else:
                start = ylo if ylo > 0.0 else 0.0
                stop = yhi if yhi < nrows else float(nrows)
                row = int(np.floor(start))
                while row < stop:
                    ya = start if start > row else float(row)
                    yb = stop if stop < row + 1.0 else row + 1.0
                    if yb > ya:
                        xa = x0 + (ya - y0) * slope
                        xb = x0 + (yb - y0) * slope
                        _row_piece(buf, row, xa, xb, direction * (yb - ya), ncols)
                    row += 1
    for row in range(nrows):
        total = 0.0
        for col in range(ncols):
            total += buf[row, col]
            if mode == 0:
                buf[row, col] = 1.0 if abs(total) > 0.5 else 0.0
            else:
                weight = total
                if weight <= WEIGHT_EPSILON:
                    weight = 0.0
                elif weight > 1.0:
                    weight = 1.0
                if mode == 2 and weight > 0.0:
                    weight = 1.0
                buf[row, col] = weight


@njit(nogil=True, cache=True, parallel=True)
def accumulate_strip(xy, ring_start, ring_sign, zone_ring, zone_box, zones, strip_row0, classes, values, stat_rate,
                     stat_target, counts, acc, mode):  # pragma: no cover - compiled
    """Add the pixels of one strip of rows to the accumulators of the zones that meet it (zones in parallel).

    Parameters
    ----------
    xy, ring_start, ring_sign
        The rings of every zone (see :func:`zone_weights`).
    zone_ring
        (Z + 1,) int64: zone ``z`` owns rings ``zone_ring[z]`` to ``zone_ring[z + 1] - 1``.
    zone_box
        (Z, 4) int64 raster rows ``[row0, row1)`` and columns ``[col0, col1)`` of each zone, inside the raster.
    zones
        (m,) int64 indices of the zones to process (those whose rows meet the strip).
    strip_row0
        Raster row of the strip's first row.
    classes
        (n_rate, h, W) int32 class index of each pixel of each categorical band (-1: nodata).
    values
        (n_stat, h, W) float64 values of each band with statistics (NaN: nodata).
    stat_rate
        (n_stat,) int64: for a statistic restricted to a class, the position in ``classes`` of the band giving
        the class; -1 for statistics of every pixel.
    stat_target
        (n_stat, Z) int32: class index a pixel must have for each restricted statistic and zone (-2: none).
    counts
        (n_rate, Z, C) float64 covered pixels (weights) per class index, updated.
    acc
        (n_stat, Z, 5) float64 weight sum, weighted mean, weighted sum of squared deviations (West's update),
        min and max, updated.
    mode
        As in :func:`zone_weights`.
    """
    height = classes.shape[1] if classes.shape[0] > 0 else values.shape[1]
    n_rate = classes.shape[0]
    n_stat = values.shape[0]
    for index in prange(zones.shape[0]):
        zone = zones[index]
        row0 = max(zone_box[zone, 0], strip_row0)
        row1 = min(zone_box[zone, 1], strip_row0 + height)
        col0 = zone_box[zone, 2]
        col1 = zone_box[zone, 3]
        if row1 <= row0 or col1 <= col0:
            continue
        buf = np.zeros((row1 - row0, col1 - col0 + 1))
        zone_weights(xy, ring_start, ring_sign, zone_ring[zone], zone_ring[zone + 1], row0, col0, buf, mode)
        for r in range(row1 - row0):
            strip_row = row0 - strip_row0 + r
            for c in range(col1 - col0):
                weight = buf[r, c]
                if weight <= 0.0:
                    continue
                col = col0 + c
                for band in range(n_rate):
                    code = classes[band, strip_row, col]
                    if code >= 0:
                        counts[band, zone, code] += weight
                for stat in range(n_stat):
                    value = values[stat, strip_row, col]
                    if np.isnan(value):
                        continue
                    rate_band = stat_rate[stat]
                    if rate_band >= 0 and classes[rate_band, strip_row, col] != stat_target[stat, zone]:
                        continue
                    total = acc[stat, zone, 0] + weight
                    delta = value - acc[stat, zone, 1]
                    mean = acc[stat, zone, 1] + delta * (weight / total)
                    acc[stat, zone, 2] += weight * delta * (value - mean)
                    acc[stat, zone, 1] = mean
                    acc[stat, zone, 0] = total
                    if value < acc[stat, zone, 3]:
                        acc[stat, zone, 3] = value
                    if value > acc[stat, zone, 4]:
                        acc[stat, zone, 4] = value
