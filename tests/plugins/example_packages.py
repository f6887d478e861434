"""Installing the example plugin packages of examples/ into the test environment (used by the plugin tests)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from iota2.core.plugins import refresh_plugins

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@contextlib.contextmanager
def installed_example(folder: str, distribution: str, module: str):
    """pip-install ``examples/<folder>``, refresh the plugins, and uninstall it afterwards."""
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", str(EXAMPLES / folder)], check=True)
    refresh_plugins()
    try:
        yield
    finally:
        subprocess.run(pip + ["uninstall", "-y", distribution], check=True)
        for name in [name for name in sys.modules if name.startswith(module)]:
            del sys.modules[name]
        refresh_plugins()
