"""Nomenclature and colour table: one clear error per wrong line, naming the key, the file and the line."""

from __future__ import annotations

import pytest

from iota2.core.errors import InputDataError
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.datagen.sentinel2 import CLASSES


def _write(tmp_path, text: str, name: str = "classes.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_nomenclature_is_read(tmp_path):
    path = _write(tmp_path, "# name:label\n\nble tendre:11\n  mais : 12 \nforêt de feuillus:31\n")
    assert read_nomenclature(path) == {11: "ble tendre", 12: "mais", 31: "forêt de feuillus"}
    assert read_nomenclature(None) == {}


def test_generated_class_files_are_read(tmp_path):
    """The nomenclature and colour table written by the project's data generator are accepted."""
    names = _write(tmp_path, "".join(f"{name}:{label}\n" for label, name, _ in CLASSES), "nomenclature.txt")
    colors = _write(tmp_path, "".join(f"{label} {r} {g} {b}\n" for label, _, (r, g, b) in CLASSES), "colors.txt")
    assert read_nomenclature(names) == {label: name for label, name, _ in CLASSES}
    assert read_color_table(colors) == {label: rgb for label, _, rgb in CLASSES}


@pytest.mark.parametrize("text, message", [
    ("urban:1\nforest:2\nwater:1\n", r"label 1 is written twice, on lines 1 \('urban'\) and 3 \('water'\)"),
    ("urban:1\nforest:2\nurban:3\n", r"class name 'urban' is written twice, on lines 1 \(label 1\) and 3 \(label 3\)"),
    ("urban:1\nUrban:2\n", "class name 'Urban' is written twice"),
    ("urban:1\nforest:-2\n", r"line 2 \('forest:-2'\): label -2 must be > 0"),
    ("nodata:0\nurban:1\n", "label 0 must be > 0 .0 is nodata"),
    ("urban:1.5\n", r"line 1 \('urban:1.5'\) must be 'name:label' with an integer label"),
    ("urban:ten\n", "must be 'name:label'"),
    ("urban 1\n", "must be 'name:label'"),
    (":1\n", "must be 'name:label'"),
])
def test_bad_nomenclature_lines(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputDataError, match=message) as error:
        read_nomenclature(path)
    assert str(error.value).startswith(f"chain.nomenclature_path: '{path}'")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("1 255 0 0\n2 0 255 0\n1 0 0 255\n", "label 1 is written twice, on lines 1 and 3"),
    ("-1 255 0 0\n", "label -1 must be >= 0"),
    ("1.5 255 0 0\n", "must be 'label R G B' .four integers."),
    ("1 255 0\n", "must be 'label R G B'"),
    ("1 255 0 -1\n", "between 0 and 255"),
    ("1 256 0 0\n", "between 0 and 255"),
    ("1 red green blue\n", "must be 'label R G B'"),
])
def test_bad_color_table_lines(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputDataError, match=message) as error:
        read_color_table(path)
    assert str(error.value).startswith(f"chain.color_table: '{path}'")


def test_color_table_accepts_commas_and_a_nodata_colour(tmp_path):
    path = _write(tmp_path, "# label R G B\n0 255 255 255\n10, 255, 200, 0\n")
    assert read_color_table(path) == {0: (255, 255, 255), 10: (255, 200, 0)}


@pytest.mark.parametrize("read, key", [(read_nomenclature, "nomenclature_path"), (read_color_table, "color_table")])
def test_class_file_not_utf8(tmp_path, read, key):
    path = tmp_path / "latin1.txt"
    content = "forêt:1\n" if key == "nomenclature_path" else "# forêt\n1 0 128 0\n"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(InputDataError) as error:
        read(str(path))
    message = str(error.value)
    assert message.startswith(f"chain.{key}: '{path}' is not UTF-8 text") and "line 1" in message
    assert "iconv" in message


@pytest.mark.parametrize("read, key", [(read_nomenclature, "nomenclature_path"), (read_color_table, "color_table")])
def test_missing_class_file(tmp_path, read, key):
    with pytest.raises(InputDataError, match=f"chain.{key}: .* does not exist"):
        read(str(tmp_path / "absent.txt"))
