"""Every test of this folder is a smoke run of a benchmark script: marked ``bench``, left out of the default run
(``addopts`` in pyproject.toml) and run by ``python -m pytest -q -m bench`` (CI runs both)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bench)
