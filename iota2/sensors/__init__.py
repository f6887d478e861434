"""Built-in sensors, one module per sensor, each registered as an ``iota2`` plugin.

A sensor module defines a :class:`iota2.core.sensor.Sensor` subclass and the hooks
``iota2_register_sensors`` (the class) and ``iota2_config_sections`` (its configuration keys); the optical ones
also define iota2's script class (``sentinel_2`` ...: :mod:`iota2.sensors.script_api`).

iota2's module names are aliases of the snake_case ones: ``from iota2.sensors.Sentinel_2 import sentinel_2`` is
``from iota2.sensors.sentinel_2 import sentinel_2`` (no second file: ``Sentinel_2.py`` and ``sentinel_2.py`` would
be one file on case-insensitive file systems). An alias module is made when first imported and gives the names of
its module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

ALIASES = {"Sentinel_2": "sentinel_2", "Sentinel_2_S2C": "sentinel_2_s2c", "Sentinel_2_L3A": "sentinel_2_l3a",
           "Landsat_8": "landsat_8", "Sentinel_1": "sentinel_1", "User_features": "user_features"}
"""iota2's sensor module names and the modules they stand for."""


class _AliasLoader(importlib.abc.Loader):
    """Makes ``iota2.sensors.<Alias>``: a module whose names are those of the module it stands for."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None  # a plain module

    def exec_module(self, module):
        target = importlib.import_module(self.target)
        module.__doc__ = target.__doc__
        module.__all__ = list(getattr(target, "__all__", [name for name in vars(target) if not name.startswith("_")]))
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dir__ = lambda: dir(target)
        module.__wrapped__ = target


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`ALIASES` under ``iota2.sensors``."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(f"{__name__}.{ALIASES[name]}"))


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
