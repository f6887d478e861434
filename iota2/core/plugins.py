"""Plugin discovery through the ``iota2`` entry-point group, and registries built from the hooks."""

from __future__ import annotations

import functools
import logging
import os
import sys

import pluggy

from iota2.core import hookspecs
from iota2.core.errors import PluginError

ENTRY_POINT_GROUP = "iota2"
LOGGER = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager with every installed ``iota2`` plugin loaded.

    Set ``IOTA2_TRACE_PLUGINS=1`` to log every hook call and its results.
    """
    manager = pluggy.PluginManager("iota2")
    manager.add_hookspecs(hookspecs)
    try:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken third-party plugin must not look like an iota2 bug
        raise PluginError(
            f"a plugin of the entry-point group '{ENTRY_POINT_GROUP}' failed to load: {exc!r}; "
            "run 'iota2 plugins' to list them and uninstall or fix the broken package"
        ) from exc
    if os.environ.get("IOTA2_TRACE_PLUGINS"):
        manager.trace.root.setwriter(lambda message: sys.stderr.write(f"iota2 plugin trace: {_shorten(message)}\n"))
        manager.enable_tracing()
    return manager


def _shorten(message: str, limit: int = 300) -> str:
    """One trace line, cut after ``limit`` characters (hook results such as the config sections are long)."""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[:limit] + f" ... ({len(message)} characters)"


def refresh_plugins() -> pluggy.PluginManager:
    """Forget the cached plugin manager (after a ``pip install`` in the same process) and rebuild it."""
    get_plugin_manager.cache_clear()
    sensors.cache_clear()
    builders.cache_clear()
    classifiers.cache_clear()
    learners.cache_clear()
    dl_models.cache_clear()
    return get_plugin_manager()


def _merge_dicts(kind: str, results: list[dict]) -> dict:
    merged: dict = {}
    for result in results:
        for name, value in (result or {}).items():
            if name in merged and merged[name] is not value:
                raise PluginError(
                    f"two plugins register the {kind} '{name}'; uninstall one of them "
                    "('iota2 plugins' lists where each comes from)"
                )
            merged[name] = value
    return merged


@functools.lru_cache(maxsize=1)
def sensors() -> dict:
    """Return ``{config_section: sensor_class}`` for every registered sensor."""
    found = {}
    for result in get_plugin_manager().hook.iota2_register_sensors():
        for sensor_class in result or []:
            found[sensor_class.config_section] = sensor_class
    return found


@functools.lru_cache(maxsize=1)
def builders() -> dict:
    """Return ``{name: builder_class}`` for every registered builder."""
    return _merge_dicts("builder", get_plugin_manager().hook.iota2_register_builders())


@functools.lru_cache(maxsize=1)
def classifiers() -> dict:
    """Return ``{name: factory}`` for every registered scikit-learn model type (``scikit_models_parameters.
    model_type``)."""
    return _merge_dicts("classifier", get_plugin_manager().hook.iota2_register_classifiers())


@functools.lru_cache(maxsize=1)
def learners() -> dict:
    """Return ``{name: learner class}`` for every registered learner (:class:`iota2.core.learner.Learner`).

    Raises
    ------
    PluginError
        Two plugins register one name, or a class's ``name`` differs from the name it is registered under (the
        model summaries record that name, and loading a model looks it up).
    """
    found = _merge_dicts("learner", get_plugin_manager().hook.iota2_register_learners())
    for name, learner_class in found.items():
        if getattr(learner_class, "name", None) != name:
            raise PluginError(f"the learner registered as '{name}' has name = "
                              f"{getattr(learner_class, 'name', None)!r}; a learner class's name must be the name it "
                              "is registered under: fix the plugin ('iota2 plugins' lists where it comes from)")
    return found


@functools.lru_cache(maxsize=1)
def dl_models() -> dict:
    """Return ``{name: network class}`` for every deep-learning network registered through
    ``iota2_register_dl_models`` (the built-ins of :mod:`iota2.plugins.dl_models` and those of installed packages).

    The built-in networks are imported with torch on this call; without torch they are absent and the deep-learning
    learner says how to install it.

    Raises
    ------
    PluginError
        Two plugins register one name (the message says to uninstall one of them).
    """
    return _merge_dicts("network", get_plugin_manager().hook.iota2_register_dl_models())


def commands() -> dict:
    """Return ``{name: function}`` of the command-line commands registered by plugins."""
    return _merge_dicts("command", get_plugin_manager().hook.iota2_register_commands())


def config_sections() -> list:
    """Return the configuration sections declared by plugins."""
    sections = []
    for result in get_plugin_manager().hook.iota2_config_sections():
        sections.extend(result or [])
    return sections


def describe_plugins() -> list[dict]:
    """Describe each loaded plugin: its name, where it comes from and what it registers."""
    manager = get_plugin_manager()
    distributions = {plugin: dist for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None or name.startswith("_"):
            continue
        dist = distributions.get(plugin)
        source = f"{dist.project_name} {dist.version}" if dist is not None else "registered in code"
        provides = []
        for hook in ("iota2_register_sensors", "iota2_register_builders", "iota2_register_classifiers",
                     "iota2_register_learners", "iota2_register_feature_functions", "iota2_register_dl_models",
                     "iota2_register_commands", "iota2_config_sections"):
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            value = impl()
            if isinstance(value, dict):
                provides.extend(f"{hook.replace('iota2_register_', '').rstrip('s')}:{key}" for key in value)
            elif value:
                for item in value:
                    label = getattr(item, "config_section", None) or getattr(item, "name", repr(item))
                    provides.append(f"{hook.replace('iota2_register_', '').replace('iota2_', '').rstrip('s')}:{label}")
        rows.append({"name": name, "module": getattr(plugin, "__name__", repr(plugin)), "source": source,
                     "provides": provides})
    return rows
