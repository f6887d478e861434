"""Nomenclature (``name:label`` lines) and colour table (``label R G B`` lines).

Both files are UTF-8 text, one class per line; empty lines and lines starting with ``#`` are skipped. They are
read when the configuration is loaded (:func:`iota2.core.config.load_config`), so a wrong line stops the run
before anything starts, with an :class:`~iota2.core.errors.InputDataError` naming the configuration key, the
file, the line and the fix.

* Nomenclature labels are integers > 0 (0 is nodata), each label and each name written once.
* Colour-table labels are integers >= 0, each written once; the line of label 0, if any, colours the nodata
  pixels of the colour-indexed map (transparent otherwise). R, G and B are integers from 0 to 255.
"""

from __future__ import annotations

import re
from pathlib import Path

from iota2.core.config import read_utf8_text
from iota2.core.errors import InputDataError

_INTEGER = re.compile(r"[+-]?\d+")


def _lines(path: str, key: str, what: str, example: str):
    """Yield ``(number, stripped line)`` for the non-empty, non-comment lines of a class file."""
    if not Path(path).is_file():
        raise InputDataError(f"chain.{key}: {what} '{path}' does not exist; set chain.{key} to a text file with one "
                             f"'{example}' line per class")
    for number, line in enumerate(read_utf8_text(path, InputDataError, f"chain.{key}").splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def read_nomenclature(path: str | None) -> dict[int, str]:
    """Read a nomenclature file.

    Parameters
    ----------
    path
        Text file (``chain.nomenclature_path``) with one ``name:label`` line per class, e.g. ``maize:10``;
        None for none.

    Returns
    -------
    dict
        ``{label: name}``; empty when ``path`` is None.

    Raises
    ------
    InputDataError
        When the file is missing or not UTF-8, a line is not ``name:label``, a label is not an integer > 0, or a
        label or a name is written twice (the message names both lines).
    """
    if not path:
        return {}
    names: dict[int, str] = {}
    label_lines: dict[int, int] = {}
    name_lines: dict[str, tuple[int, int]] = {}
    where = f"chain.nomenclature_path: '{path}'"
    for number, line in _lines(path, "nomenclature_path", "nomenclature", "name:label"):
        name, sep, text = line.rpartition(":")
        name, text = name.strip(), text.strip()
        if not sep or not name or not _INTEGER.fullmatch(text):
            raise InputDataError(f"{where} line {number} ({line!r}) must be 'name:label' with an integer label, "
                                 "e.g. 'maize:10'")
        label = int(text)
        if label <= 0:
            raise InputDataError(f"{where} line {number} ({line!r}): label {label} must be > 0 (0 is nodata); "
                                 "number the classes from 1")
        if label in label_lines:
            raise InputDataError(f"{where}: label {label} is written twice, on lines {label_lines[label]} "
                                 f"({names[label]!r}) and {number} ({name!r}); give each class its own label")
        if name.casefold() in name_lines:
            first, other = name_lines[name.casefold()]
            raise InputDataError(f"{where}: class name {name!r} is written twice, on lines {first} (label {other}) "
                                 f"and {number} (label {label}); give each class its own name, or merge the two "
                                 "labels in the ground truth")
        names[label] = name
        label_lines[label] = number
        name_lines[name.casefold()] = (number, label)
    return names


def read_color_table(path: str | None) -> dict[int, tuple[int, int, int]]:
    """Read a colour table.

    Parameters
    ----------
    path
        Text file (``chain.color_table``) with one ``label R G B`` line per class (spaces or commas), e.g.
        ``10 255 200 0``; None for none.

    Returns
    -------
    dict
        ``{label: (r, g, b)}``; empty when ``path`` is None.

    Raises
    ------
    InputDataError
        When the file is missing or not UTF-8, a line is not four integers, a label is negative or written twice
        (the message names both lines), or a colour component is outside 0-255.
    """
    if not path:
        return {}
    colors: dict[int, tuple[int, int, int]] = {}
    label_lines: dict[int, int] = {}
    where = f"chain.color_table: '{path}'"
    for number, line in _lines(path, "color_table", "colour table", "label R G B"):
        parts = line.replace(",", " ").split()
        if len(parts) < 4 or not all(_INTEGER.fullmatch(part) for part in parts[:4]):
            raise InputDataError(f"{where} line {number} ({line!r}) must be 'label R G B' (four integers), "
                                 "e.g. '10 255 200 0'")
        label, r, g, b = (int(part) for part in parts[:4])
        if label < 0:
            raise InputDataError(f"{where} line {number} ({line!r}): label {label} must be >= 0 (the labels of "
                                 "chain.nomenclature_path, or 0 for nodata)")
        if not all(0 <= value <= 255 for value in (r, g, b)):
            raise InputDataError(f"{where} line {number} ({line!r}): R, G and B must be between 0 and 255")
        if label in label_lines:
            raise InputDataError(f"{where}: label {label} is written twice, on lines {label_lines[label]} and "
                                 f"{number}; keep one colour per label")
        colors[label] = (r, g, b)
        label_lines[label] = number
    return colors
