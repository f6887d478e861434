"""Quicklooks: a PNG picture of a final map (class map with its legend, confidence or validity with a colour bar),
in ``final/quicklooks/``.

The map is read decimated to at most :data:`MAX_SIZE` pixels a side (``out_shape=``): GDAL then reads the COG's
overview nearest to that size, or decimates block by block a map without overviews, so the memory used is that of
the picture whatever the size of the map (about 60 MB in all for a 10000 x 10000 map). Class maps are read with
nearest-neighbour sampling of their mode overviews (a class is never averaged), confidence and validity from their
average overviews. Rendering uses matplotlib's Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from iota2.core.layout import OutputLayout
from iota2.core.legend import RAMP_STOPS, Legend
from iota2.core.raster import atomic_output

MAX_SIZE = 1024
"""Largest side, in pixels, of the map in a quicklook (the figure adds the legend or colour bar and a title)."""

QUICKLOOK_FOLDER = "quicklooks"
"""Folder of the quicklooks in ``final/``."""

DPI = 100


def quicklook_path(layout: OutputLayout, raster: str | Path) -> Path:
    """``final/quicklooks/<map name>.png``: the quicklook of a final map (e.g. ``Classif_Seed_0.png``)."""
    return layout.final / QUICKLOOK_FOLDER / (Path(raster).stem + ".png")


def read_decimated(path: str | Path, max_size: int = MAX_SIZE) -> tuple[np.ma.MaskedArray, dict]:
    """Band 1 of a raster, decimated so that its largest side is at most ``max_size`` pixels.

    Returns
    -------
    (numpy.ma.MaskedArray, dict)
        The values (nodata masked) and a description of the map: ``width``, ``height``, ``crs``, ``resolution``.
    """
    with rasterio.open(path) as src:
        scale = max(src.width, src.height) / max_size
        shape = (src.height, src.width) if scale <= 1 else \
            (max(1, math.ceil(src.height / scale)), max(1, math.ceil(src.width / scale)))
        data = src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)
        info = {"width": src.width, "height": src.height, "crs": src.crs.to_string() if src.crs else "no CRS",
                "resolution": src.res[0]}
    return data, info


def _figure(shape: tuple[int, int], side_inches: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = shape
    longest = max(rows, cols)
    width = max(2.0, MAX_SIZE / DPI * cols / longest)
    height = max(2.0, MAX_SIZE / DPI * rows / longest)
    figure = Figure(figsize=(width + side_inches, height + 0.6), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, width / (width + side_inches), height / (height + 0.6)))
    axes.set_axis_off()
    return figure, axes


def _caption(info: dict) -> str:
    return f"{info['width']} x {info['height']} px at {info['resolution']:g}, {info['crs']}"


def _text(value: str) -> str:
    """``value`` shown as is by matplotlib (a ``$`` would start mathematical text)."""
    return value.replace("$", r"\$")


def _save(figure, target: Path) -> Path:
    with atomic_output(target) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return target


def class_quicklook(source: str | Path, target: str | Path, legend: Legend, title: str = "",
                    max_size: int = MAX_SIZE) -> Path:
    """PNG of a class map in its legend's colours, with the legend (label, name, colour) beside it; pixels of
    value 0 (no class) are white.

    Parameters
    ----------
    source
        The class map (band 1).
    target
        The PNG (written atomically).
    legend
        Classes, names and colours (:func:`iota2.core.legend.class_legend`).
    title
        Title of the picture.
    max_size
        Largest side of the map in the picture, in pixels.

    Returns
    -------
    Path
    """
    from matplotlib.patches import Patch

    data, info = read_decimated(source, max_size)
    values = np.ma.filled(data, 0).astype(np.int64)
    top = max([int(values.max(initial=0)), *legend.labels, 0])
    lookup = np.full((top + 1, 4), 255, np.uint8)
    lookup[0] = (255, 255, 255, 0)
    for entry in legend.entries:
        lookup[entry.label, :3] = entry.rgb
    rows = min(len(legend.entries), 30)
    columns = max(1, math.ceil(len(legend.entries) / rows))
    figure, axes = _figure(values.shape, 0.4 + 2.6 * columns)
    axes.imshow(lookup[values], interpolation="nearest")
    axes.set_title(_text(title), fontsize=11)
    handles = [Patch(facecolor=entry.hex, edgecolor="black", linewidth=0.5, label=_text(f"{entry.label} {entry.name}"))
               for entry in legend.entries]
    figure.legend(handles=handles, loc="center right", ncols=columns, fontsize=9, frameon=False)
    figure.text(0.01, 0.01, _text(_caption(info)), fontsize=8)
    return _save(figure, Path(target))


def ramp_quicklook(source: str | Path, target: str | Path, minimum: float = 0, maximum: float | None = None,
                   label: str = "", title: str = "", max_size: int = MAX_SIZE) -> float:
    """PNG of a continuous map (confidence, validity) in the viridis ramp of the QGIS styles, with a colour bar;
    nodata pixels are white.

    Parameters
    ----------
    source
        The map (band 1).
    target
        The PNG (written atomically).
    minimum, maximum
        Values at the ends of the ramp; ``maximum`` None: the largest value of the decimated map.
    label
        Label of the colour bar.
    title
        Title of the picture.
    max_size
        Largest side of the map in the picture, in pixels.

    Returns
    -------
    float
        The maximum used (for a style with the same ramp).
    """
    from matplotlib.colors import LinearSegmentedColormap

    data, info = read_decimated(source, max_size)
    if maximum is None:
        maximum = float(data.max()) if data.count() else minimum + 1
    maximum = max(float(maximum), float(minimum) + 1)
    ramp = LinearSegmentedColormap.from_list("iota2_ramp", list(RAMP_STOPS)).with_extremes(bad="white")
    figure, axes = _figure(data.shape, 1.4)
    image = axes.imshow(data, cmap=ramp, vmin=minimum, vmax=maximum, interpolation="nearest")
    axes.set_title(_text(title), fontsize=11)
    bar_axes = figure.add_axes((1 - 1.0 / figure.get_figwidth(), 0.15, 0.2 / figure.get_figwidth(), 0.7))
    figure.colorbar(image, cax=bar_axes, label=_text(label))
    figure.text(0.01, 0.01, _text(_caption(info)), fontsize=8)
    _save(figure, Path(target))
    return maximum
