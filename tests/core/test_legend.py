"""Legend of the class maps: names and colours, GDAL categories, QGIS styles (checked with QGIS itself when its
Python bindings are installed)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from iota2.core import legend as legend_module
from iota2.core.legend import (categories_xml, class_legend, paletted_qml, qml_path, ramp_qml, write_categories,
                               write_qml)

BAD_NAMES = {1: 'maize & "sweet" <corn>', 2: "it's > 50 % wet", 12: "forêt"}


def test_names_from_the_nomenclature_colours_from_the_table_and_defaults_for_the_rest():
    legend = class_legend([12, 1, 2], BAD_NAMES | {99: "unused"}, {1: (10, 20, 30), 2: (200, 100, 0)})
    assert legend.labels == [1, 2, 12]
    assert [entry.name for entry in legend.entries] == [BAD_NAMES[1], BAD_NAMES[2], "forêt"]
    assert legend.entries[0].hex == "#0a141e" and legend.entries[2].rgb not in ((10, 20, 30), (200, 100, 0))
    assert class_legend([3], {}, {}).entries[0].name == "class 3"


def test_labels_missing_from_the_colour_table_are_warned_once(caplog):
    legend_module._WARNED.clear()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            class_legend([1, 2, 3], {}, {1: (1, 2, 3)}, "/data/colors.txt")
        class_legend([1, 2], {}, {}, None)  # no table: default colours, nothing to warn about
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1, messages
    assert "chain.color_table '/data/colors.txt'" in messages[0] and "label(s) 2, 3" in messages[0]


def test_styles_and_categories_with_xml_characters_in_names_are_valid_xml(tmp_path):
    legend = class_legend([1, 2, 12], BAD_NAMES, {})
    palette = ET.fromstring(paletted_qml(legend).split("\n", 1)[1])
    assert palette.tag == "qgis" and palette.find("pipe/rasterrenderer").get("type") == "paletted"
    assert [entry.get("label") for entry in palette.iter("paletteEntry")] == list(BAD_NAMES.values())
    assert [entry.get("value") for entry in palette.iter("paletteEntry")] == ["1", "2", "12"]
    pam = ET.fromstring(categories_xml(legend))
    categories = [c.text or "" for c in pam.iter("Category")]
    assert len(categories) == 13 and categories[1] == BAD_NAMES[1] and categories[12] == "forêt"
    rows = [[f.text for f in row] for row in pam.iter("Row")]
    assert rows[1][:2] == ["2", BAD_NAMES[2]] and len(rows) == 3
    raster = tmp_path / "map.tif"
    assert write_categories(raster, legend) == tmp_path / "map.tif.aux.xml"
    assert ET.parse(tmp_path / "map.tif.aux.xml").getroot().tag == "PAMDataset"
    assert write_qml(raster, paletted_qml(legend)) == qml_path(raster) == tmp_path / "map.qml"
    ET.parse(tmp_path / "map.qml")


def test_large_labels_get_an_attribute_table_but_no_list_of_categories():
    pam = ET.fromstring(categories_xml(class_legend([3, 60000], {60000: "big"}, {})))
    assert pam.find(".//CategoryNames") is None and len(list(pam.iter("Row"))) == 2


def test_ramp_style_spans_the_given_range():
    shader = ET.fromstring(ramp_qml(0, 100, "%").split("\n", 1)[1]).find(".//colorrampshader")
    items = [(float(item.get("value")), item.get("color")) for item in shader.iter("item")]
    assert items[0] == (0.0, "#440154") and items[-1] == (100.0, "#fde725") and len(items) == 5
    assert ET.fromstring(ramp_qml(0, 0).split("\n", 1)[1]).find(".//colorrampshader").get("maximumValue") == "1"


# ---------------------------------------------------------------------------- QGIS

QGIS_PYTHON = "/usr/bin/python3"
QGIS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsRasterLayer)
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor
    app = QgsApplication([], False)
    app.initQgis()
    path, style, png = sys.argv[1:4]
    layer = QgsRasterLayer(path, "map", "gdal")
    assert layer.isValid(), path
    message, loaded = layer.loadNamedStyle(style)
    assert loaded, message
    paletted = layer.renderer().type() == "paletted"
    classes = [(int(c.value), c.label) for c in layer.renderer().classes()] if paletted else []
    legend = [item[0] for item in layer.renderer().legendSymbologyItems()]
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(200, 200))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(png, "PNG")
    print(json.dumps({"renderer": layer.renderer().type(), "legend": legend, "classes": classes}), flush=True)
    os._exit(0)  # QgsApplication.exitQgis() may crash on exit in headless runs
""")


def _qgis_available() -> str | None:
    if not os.path.exists(QGIS_PYTHON):
        return f"{QGIS_PYTHON} is missing"
    probe = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True,
                           env=os.environ | {"QT_QPA_PLATFORM": "offscreen"})
    if probe.returncode:
        return "QGIS's Python bindings are not installed (apt-get install python3-qgis)"
    return None


@pytest.mark.skipif(_qgis_available() is not None, reason=str(_qgis_available()))
def test_qgis_opens_a_final_map_with_its_style_and_renders_it(tmp_path):
    from matplotlib.image import imread

    from iota2.builders.mosaic import mosaic_run
    from iota2.core.layout import OutputLayout

    layout = OutputLayout(tmp_path / "out")
    values = np.repeat(np.repeat(np.array([[1, 2], [12, 0]], np.uint8), 150, axis=0), 150, axis=1)
    for path, data in ((layout.tile_map("T", 0), values), (layout.tile_map("T", 0, "confidence"), values * 8)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=1, dtype="uint8",
                           crs="EPSG:32631", transform=from_origin(300000, 4900000, 10, 10), nodata=0) as dst:
            dst.write(data, 1)
    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text("".join(f"{name}:{label}\n" for label, name in BAD_NAMES.items()))
    colors = tmp_path / "colors.txt"
    colors.write_text("1 255 0 0\n2 0 128 0\n12 0 0 255\n")
    mosaic_run(["T"], 0, [1, 2, 12], str(layout.root), "ZSTD", str(colors), nomenclature_path=str(nomenclature))

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV",
                                                                                     "GDAL_", "PROJ_"))}
    env |= {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
    script = tmp_path / "qgis_check.py"
    script.write_text(QGIS_SCRIPT)
    results = {}
    for name, path in (("classes", layout.final_classification(0)), ("indexed", layout.final_color_indexed(0)),
                       ("confidence", layout.final_confidence(0))):
        png = tmp_path / f"{name}.png"
        run = subprocess.run([QGIS_PYTHON, str(script), str(path), str(qml_path(path)), str(png)],
                             capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
        picture = (imread(png)[..., :3] * 255).round().astype(int)
        colours = {tuple(c) for c in np.unique(picture.reshape(-1, 3), axis=0).tolist()}
        assert len(colours) >= 3, (name, colours)  # not blank
        if name != "confidence":
            assert {(255, 0, 0), (0, 128, 0), (0, 0, 255)} <= colours, (name, colours)
    for name in ("classes", "indexed"):
        assert results[name]["renderer"] == "paletted"
        assert results[name]["legend"] == list(BAD_NAMES.values()), results[name]
        assert results[name]["classes"] == [[label, text] for label, text in BAD_NAMES.items()], results[name]
    assert results["confidence"]["renderer"] == "singlebandpseudocolor"
