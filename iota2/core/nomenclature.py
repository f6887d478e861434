"""Nomenclature (``name:label`` lines) and colour table (``label R G B`` lines)."""

from __future__ import annotations

from pathlib import Path

from iota2.core.errors import InputDataError


def read_nomenclature(path: str | None) -> dict[int, str]:
    """Return ``{label: name}``; an empty dict when ``path`` is None."""
    if not path:
        return {}
    if not Path(path).is_file():
        raise InputDataError(f"nomenclature '{path}' does not exist; set chain.nomenclature_path to a text file "
                             "with one 'name:label' line per class")
    names = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, label = line.rpartition(":")
        if not sep or not label.strip().isdigit():
            raise InputDataError(f"chain.nomenclature_path: '{path}' line {number} ({line!r}) must be 'name:label' "
                                 "with an integer label, e.g. 'maize:10'")
        names[int(label)] = name.strip()
    return names


def read_color_table(path: str | None) -> dict[int, tuple[int, int, int]]:
    """Return ``{label: (r, g, b)}``; an empty dict when ``path`` is None."""
    if not path:
        return {}
    if not Path(path).is_file():
        raise InputDataError(f"colour table '{path}' does not exist; set chain.color_table to a text file with "
                             "one 'label R G B' line per class")
    colors = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 4 or not all(p.lstrip("-").isdigit() for p in parts[:4]):
            raise InputDataError(f"chain.color_table: '{path}' line {number} ({line!r}) must be 'label R G B', "
                                 "e.g. '10 255 200 0'")
        label, r, g, b = (int(p) for p in parts[:4])
        if not all(0 <= value <= 255 for value in (r, g, b)):
            raise InputDataError(f"chain.color_table: '{path}' line {number} ({line!r}): R, G and B must be "
                                 "between 0 and 255")
        colors[label] = (r, g, b)
    return colors
