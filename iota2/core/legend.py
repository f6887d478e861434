"""Legend of the class maps: class names and colours stored with the final maps, and QGIS styles beside them.

A :class:`Legend` pairs each label of the ground truth with its name (``chain.nomenclature_path``) and colour
(``chain.color_table``; a default colour, matplotlib's tab20 cycle, for the labels the table leaves out, with one
warning). It is written three ways:

* **GDAL category names and a raster attribute table** of band 1, in the PAM file GDAL reads beside a raster
  (``Classif_Seed_0.tif.aux.xml``): ``gdalinfo`` prints them ("Categories:" and the attribute table), and
  GDAL-based software (QGIS 3.30+, ArcGIS, rasterio through GDAL) finds the class names without any style.
  GeoTIFF has no tag for category names (GDAL itself keeps them in this file), and rasterio has no setter for
  them, so the file is written here; see :func:`write_categories`.
* **A palette** on the colour-indexed map (``write_colormap``, done by the mosaic).
* **A QGIS style** (``.qml``, same name as the map): unique values with class names and colours for class maps,
  a colour ramp for confidence (0-100) and validity. QGIS applies a ``.qml`` named like the raster when it opens
  it. See :func:`paletted_qml` and :func:`ramp_qml`.

Names are written through :mod:`xml.etree.ElementTree`, so a name with ``& < > "`` gives valid XML.
"""

from __future__ import annotations

import dataclasses
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)

QGIS_VERSION = "3.22.0"
"""QGIS version written in the styles (the oldest it has been tested with: Debian 12's)."""

RAMP_STOPS = ((0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725"))
"""Colour ramp of confidence and validity styles (viridis at five stops; the quicklooks use viridis too)."""

MAX_CATEGORY_LABEL = 4096
"""Largest label for which GDAL category names are written (one name per value from 0: a uint16 map with labels
in the tens of thousands gets only the attribute table, which has one row per class)."""

_WARNED: set[tuple[str, tuple[int, ...]]] = set()


@dataclasses.dataclass(frozen=True)
class LegendEntry:
    """One class: its label (pixel value), name and colour (R, G, B)."""

    label: int
    name: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        """``#rrggbb``."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@dataclasses.dataclass(frozen=True)
class Legend:
    """The classes of a map in increasing label order."""

    entries: tuple[LegendEntry, ...]

    @property
    def labels(self) -> list[int]:
        return [entry.label for entry in self.entries]

    def names(self) -> dict[int, str]:
        """``{label: name}``."""
        return {entry.label: entry.name for entry in self.entries}

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """RGBA palette: 0 transparent, then each class's colour (opaque)."""
        return {0: (0, 0, 0, 0)} | {entry.label: (*entry.rgb, 255) for entry in self.entries}


def default_colormap(labels: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """A distinct colour per label (matplotlib tab20 cycle, in label order) when no colour table gives one."""
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    return {label: tuple(int(255 * v) for v in palette(index % 20)[:3]) + (255,) for index, label in
            enumerate(sorted(labels))}


def class_colormap(colors: dict[int, tuple[int, int, int]], labels: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """RGBA palette of the colour-indexed map: 0 transparent, the colour table's colours, and a default colour
    for the labels the table leaves out (all of them without a table).

    Parameters
    ----------
    colors
        ``{label: (r, g, b)}`` from :func:`iota2.core.nomenclature.read_color_table` (a line for label 0 colours
        the nodata pixels).
    labels
        Every label of the ground truth.

    Returns
    -------
    dict
        ``{label: (r, g, b, a)}``.
    """
    colormap = {0: (0, 0, 0, 0)}
    missing = [label for label in labels if label not in colors]
    if missing:
        colormap.update(default_colormap(missing))
    colormap.update({label: (*rgb, 255) for label, rgb in colors.items()})
    return colormap


def class_legend(labels: list[int], names: dict[int, str] | None = None,
                 colors: dict[int, tuple[int, int, int]] | None = None, color_table: str | None = None) -> Legend:
    """The legend of a class map.

    Parameters
    ----------
    labels
        Every label of the ground truth (the classes a map can hold).
    names
        ``{label: name}`` from :func:`iota2.core.nomenclature.read_nomenclature`; a label it leaves out is named
        ``class <label>``.
    colors
        ``{label: (r, g, b)}`` from :func:`iota2.core.nomenclature.read_color_table`.
    color_table
        The colour table's path, for the warning about labels it leaves out (given once per process and table).

    Returns
    -------
    Legend
    """
    names, colors = names or {}, colors or {}
    palette = class_colormap(colors, labels)
    missing = tuple(sorted(label for label in labels if label not in colors))
    if colors and missing and (str(color_table), missing) not in _WARNED:
        _WARNED.add((str(color_table), missing))
        LOGGER.warning("chain.color_table '%s' has no colour for label(s) %s: default colours used; add a "
                       "'label R G B' line per label to choose them", color_table, ", ".join(map(str, missing)))
    return Legend(tuple(LegendEntry(int(label), names.get(label, f"class {label}"), tuple(palette[label][:3]))
                        for label in sorted(set(labels))))


# ---------------------------------------------------------------------------- GDAL categories (PAM .aux.xml)

def categories_path(raster: str | Path) -> Path:
    """The PAM file GDAL reads beside ``raster``: ``<raster>.aux.xml``."""
    raster = Path(raster)
    return raster.with_name(raster.name + ".aux.xml")


def categories_xml(legend: Legend) -> str:
    """PAM XML of band 1: category names (when the largest label is at most :data:`MAX_CATEGORY_LABEL`) and a
    thematic raster attribute table (``Value``, ``Class_Name``, ``Red``, ``Green``, ``Blue``, ``Alpha``)."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    if legend.entries and max(legend.labels) <= MAX_CATEGORY_LABEL:
        categories = ET.SubElement(band, "CategoryNames")
        names = legend.names()
        for value in range(max(legend.labels) + 1):
            ET.SubElement(categories, "Category").text = names.get(value, "")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    # GDAL field types: 0 integer, 2 string; usages: 5 MinMax (the pixel value), 2 Name, 6-9 Red, Green, Blue, Alpha
    fields = (("Value", 0, 5), ("Class_Name", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9))
    for index, (name, kind, usage) in enumerate(fields):
        definition = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(definition, "Name").text = name
        ET.SubElement(definition, "Type").text = str(kind)
        ET.SubElement(definition, "Usage").text = str(usage)
    for index, entry in enumerate(legend.entries):
        row = ET.SubElement(table, "Row", index=str(index))
        for value in (entry.label, entry.name, *entry.rgb, 255):
            ET.SubElement(row, "F").text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_categories(raster: str | Path, legend: Legend) -> Path:
    """Write the class names and colours of ``legend`` as GDAL category names and raster attribute table of band 1
    of ``raster``, in its PAM file (``<raster>.aux.xml``, replaced atomically).

    Returns
    -------
    Path
        The ``.aux.xml`` file.
    """
    target = categories_path(raster)
    with atomic_output(target) as tmp:
        tmp.write_text(categories_xml(legend), encoding="utf-8")
    return target


# ---------------------------------------------------------------------------- QGIS styles

def qml_path(raster: str | Path) -> Path:
    """The style QGIS applies when it opens ``raster``: same folder and name, ``.qml``."""
    return Path(raster).with_suffix(".qml")


def _qgis_root() -> ET.Element:
    return ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")


def _pipe(root: ET.Element, renderer_type: str, **attributes: str) -> tuple[ET.Element, ET.Element]:
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type=renderer_type, band="1", opacity="1", alphaBand="-1",
                             nodataColor="", **attributes)
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text
    return pipe, renderer


def _finish(root: ET.Element, pipe: ET.Element) -> str:
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0", colorizeRed="255",
                  colorizeGreen="128", colorizeBlue="128", colorizeStrength="100", invertColors="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def paletted_qml(legend: Legend) -> str:
    """A QGIS style of a class map: "Paletted/Unique values" renderer, one entry per class (value, colour, name);
    pixels of value 0 (no class) are left transparent."""
    root = _qgis_root()
    pipe, renderer = _pipe(root, "paletted")
    palette = ET.SubElement(renderer, "colorPalette")
    for entry in legend.entries:
        ET.SubElement(palette, "paletteEntry", value=str(entry.label), color=entry.hex, alpha="255", label=entry.name)
    return _finish(root, pipe)


def ramp_qml(minimum: float, maximum: float, unit: str = "") -> str:
    """A QGIS style of a continuous map (confidence, validity): "Singleband pseudocolor" renderer, viridis from
    ``minimum`` to ``maximum`` (interpolated, labelled with ``unit``)."""
    minimum, maximum = float(minimum), float(max(maximum, minimum + 1))
    root = _qgis_root()
    pipe, renderer = _pipe(root, "singlebandpseudocolor", classificationMin=f"{minimum:g}",
                           classificationMax=f"{maximum:g}")
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", colorRampType="INTERPOLATED",
                           classificationMode="1", clip="0", minimumValue=f"{minimum:g}",
                           maximumValue=f"{maximum:g}", labelPrecision="0")
    ramp = ET.SubElement(shader, "colorramp", type="gradient", name="[source]")
    stops = ":".join(f"{position:g};{_rgba(color)}" for position, color in RAMP_STOPS[1:-1])
    for key, value in (("color1", _rgba(RAMP_STOPS[0][1])), ("color2", _rgba(RAMP_STOPS[-1][1])),
                       ("discrete", "0"), ("rampType", "gradient"), ("stops", stops)):
        ET.SubElement(ramp, "prop", k=key, v=value)
    for position, color in RAMP_STOPS:
        value = minimum + position * (maximum - minimum)
        ET.SubElement(shader, "item", value=f"{value:g}", color=color, alpha="255",
                      label=f"{value:g}{(' ' + unit) if unit else ''}")
    return _finish(root, pipe)


def _rgba(color: str) -> str:
    return ",".join(str(int(color[i:i + 2], 16)) for i in (1, 3, 5)) + ",255"


def write_qml(raster: str | Path, style: str) -> Path:
    """Write ``style`` (from :func:`paletted_qml` or :func:`ramp_qml`) beside ``raster`` (atomically).

    Returns
    -------
    Path
        The ``.qml`` file.
    """
    target = qml_path(raster)
    with atomic_output(target) as tmp:
        tmp.write_text(style, encoding="utf-8")
    return target
