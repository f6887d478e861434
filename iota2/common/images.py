"""Images that applications exchange: a file on disk or an image computed on demand, window by window.

Every application of :mod:`iota2.common.otb_app_bank` accepts as an image input a path, another application
(its output image, computed in memory when read) or any :class:`InMemoryImage`; a sensor's ``get_features``
returns one. Nothing is computed until a window is read, so a whole tile's feature stack never has to fit in
memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from rasterio.windows import Window


class InMemoryImage:
    """An image on a georeferenced grid whose pixels are produced when a window is read.

    Subclasses set the attributes in ``__init__`` and implement :meth:`read`.

    Attributes
    ----------
    crs
        ``rasterio.crs.CRS`` of the grid.
    transform
        ``affine.Affine`` of the grid (pixel corner).
    width, height
        Grid size in pixels.
    count
        Number of bands.
    dtype
        numpy dtype name of the values :meth:`read` returns.
    nodata
        Value of pixels without data, or ``None``.
    band_names
        One name per band (``sentinel2_b2_20180511`` ...), or ``None`` when the bands have no names.
    """

    crs = None
    transform = None
    width: int = 0
    height: int = 0
    count: int = 0
    dtype: str = "float32"
    nodata: float | None = None
    band_names: list[str] | None = None

    def read(self, window: Window | None = None) -> np.ndarray:
        """Values of a window, shape ``(count, rows, cols)``; the whole grid when ``window`` is ``None``."""
        raise NotImplementedError

    def block_windows(self, max_pixels: int = 1 << 20) -> Iterator[Window]:
        """Windows of whole rows covering the grid, each of at most ``max_pixels`` pixels (at least one row)."""
        rows = max(1, int(max_pixels) // max(1, self.width))
        for row in range(0, self.height, rows):
            yield Window(0, row, self.width, min(rows, self.height - row))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(count, height, width)``."""
        return self.count, self.height, self.width
