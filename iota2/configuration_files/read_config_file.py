"""iota2's configuration API for scripts (labwork section 6.3).

::

    from iota2.configuration_files import read_config_file as rcf

    config = rcf.read_config_file("config_base.cfg")            # a .cfg or a YAML file
    tiles = config.getParam("chain", "list_tile").split(" ")     # 'T31TCJ T31TDJ', as iota2 users know it
    ground_truth = config.getParam("chain", "ground_truth")
    parameters = rcf.iota2_parameters("config_base.cfg").get_sensors_parameters(tiles[0])
    # {"Sentinel_2": {"tile_name": "T31TCJ", "image_directory": ..., ...}}: sentinel_2(**parameters["Sentinel_2"])

The file is read and validated as by ``iota2 -config`` (:func:`iota2.core.config.load_config`): defaults filled
in, iota2's camelCase names accepted, one clear error for a wrong key or value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from iota2.core.config import Config, load_config, resolve_name
from iota2.core.errors import ConfigError

__all__ = ["iota2_parameters", "read_config_file"]

LOGGER = logging.getLogger(__name__)

SPACE_SEPARATED = {("chain", "list_tile")}
"""Keys iota2 gave as one space-separated string (the chain reads them as lists)."""


def _load(configuration) -> Config:
    if isinstance(configuration, Config):
        return configuration
    if isinstance(configuration, read_config_file):
        return configuration.config
    return load_config(Path(configuration))


class read_config_file:  # noqa: N801 - iota2's API name
    """A validated configuration with iota2's ``getParam(section, key)``.

    Parameters
    ----------
    path_conf
        The configuration file (``.cfg`` or YAML), or an already loaded :class:`iota2.core.config.Config`.

    Attributes
    ----------
    config
        The validated :class:`iota2.core.config.Config`.
    pathConf
        The file's path (iota2's attribute name).
    """

    def __init__(self, path_conf):
        self.config = _load(path_conf)
        self.pathConf = self.config.path  # noqa: N815 - iota2's attribute name

    def _section(self, section: str) -> str:
        sections = self.config.sections
        aliases = {alias: name for name, declared in sections.items() for alias in declared.aliases}
        name = aliases.get(section) or resolve_name(str(section), sections)
        if name not in sections:
            raise ConfigError(f"getParam: unknown section {section!r} of '{self.pathConf}'; sections: "
                              f"{', '.join(sorted(sections))}")
        return name

    def getParam(self, section: str, key: str) -> Any:  # noqa: N802 - iota2's API name
        """The value of ``key`` in ``section`` (iota2's camelCase names are accepted); defaults filled in.

        ``chain.list_tile`` is the space-separated string iota2 gave (``'T31TCJ T31TDJ'``); every other value is
        the validated one.

        Raises
        ------
        ConfigError
            For an unknown section or key, naming the valid ones.
        """
        name = self._section(section)
        values = self.config[name]
        declared = set(self.config.sections[name].params) | set(values)
        resolved = resolve_name(str(key), declared)
        if resolved not in values:
            raise ConfigError(f"getParam: unknown key {key!r} in section '{name}' of '{self.pathConf}'; keys: "
                              f"{', '.join(sorted(declared))}")
        value = values[resolved]
        if (name, resolved) in SPACE_SEPARATED and isinstance(value, list):
            return " ".join(str(item) for item in value)
        return value

    def getSection(self, section: str) -> dict:  # noqa: N802 - iota2's API name
        """A copy of a whole section, every default filled in."""
        return dict(self.config.as_dict()[self._section(section)])

    def get_builders(self) -> list[str]:
        """The builders the configuration runs (``builders.builders_class_name``)."""
        return list(self.config["builders"]["builders_class_name"])


class iota2_parameters:  # noqa: N801 - iota2's API name
    """Per-tile keyword arguments of the enabled sensors' script classes.

    Parameters
    ----------
    configuration
        The configuration file (``.cfg`` or YAML), a :class:`read_config_file` or a
        :class:`iota2.core.config.Config`.
    """

    def __init__(self, configuration):
        self.config = _load(configuration)

    def get_sensors_parameters(self, tile_name: str) -> dict[str, dict[str, Any]]:
        """``{sensor section: keyword arguments}`` for ``tile_name``, for every enabled sensor with a script class
        (``Sentinel_2``, ``Sentinel_2_S2C``, ``Sentinel_2_L3A``, ``Landsat8``), in iota2's sensor order.

        ``sentinel_2(**parameters["Sentinel_2"])`` then gives the sensor (:mod:`iota2.sensors.script_api`). Enabled
        sensors without a script class (Sentinel-1, user features, stacks: read onto another sensor's grid) are
        left out.

        Raises
        ------
        ConfigError
            When ``tile_name`` is not one of ``chain.list_tile``, or no enabled sensor has a script class.
        """
        from iota2.core.features import enabled_sensors
        from iota2.sensors.script_api import SCRIPT_CLASSES, sensor_parameters

        tiles = list(self.config["chain"]["list_tile"])
        if tile_name not in tiles:
            raise ConfigError(f"get_sensors_parameters: tile {tile_name!r} is not in chain.list_tile of "
                              f"'{self.config.path}' ({' '.join(tiles)})")
        sensors = enabled_sensors(self.config)
        parameters = {cls.config_section: sensor_parameters(self.config, cls, tile_name)
                      for cls in sensors if cls.config_section in SCRIPT_CLASSES}
        left_out = [cls.config_section for cls in sensors if cls.config_section not in SCRIPT_CLASSES]
        if left_out and parameters:
            LOGGER.warning("get_sensors_parameters: %s left out (read onto another sensor's grid, no script class)",
                           ", ".join(left_out))
        if not parameters:
            raise ConfigError(f"get_sensors_parameters: none of the enabled sensors "
                              f"({', '.join(cls.config_section for cls in sensors)}) has a script class; those that "
                              f"have one: {', '.join(sorted(SCRIPT_CLASSES))}")
        return parameters
