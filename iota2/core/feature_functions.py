"""Feature functions (``external_features``): user or plugin code that turns a window's series into features.

A feature function receives a :class:`FeatureContainer` (``self``) holding the series of every sensor of one
window, and returns ``(array, labels)``: ``array`` (rows, cols, n) or (rows, cols), ``labels`` n names::

    def red_nir_ratio(self, scale=100.0):
        red = self.get_interpolated_Sentinel2_B4()   # (rows, cols, dates) float32, reflectance x 10000
        nir = self.get_interpolated_Sentinel2_B8()
        ratio = np.divide(red, nir, out=np.zeros_like(red), where=nir > 0) * scale
        return ratio, [f"red_nir_{date}" for date in self.interpolated_dates["Sentinel2"]]

Functions come from the file named by ``external_features.module`` (imported from that path only, under a
private module name) and from plugins (hook ``iota2_register_feature_functions``); the file wins on a name
clash. The feature stage (:func:`iota2.core.features.read_features`) calls :meth:`FeatureFunctions.apply`
once per window. :func:`check_feature_function` checks a function against the contract on synthetic data.
"""

from __future__ import annotations

import collections
import hashlib
import inspect
import keyword
import logging
import sys
import traceback
import types
from pathlib import Path

import numpy as np

from iota2.core.errors import ConfigError, InputDataError, PluginError
from iota2.core.indices import brightness, normalised_difference
from iota2.core.sensor import FeatureSpec, SensorData

__all__ = ["FeatureContainer", "FeatureFunctionError", "FeatureFunctions", "UnknownAccessorError",
           "check_feature_function", "load_module", "parse_functions", "registered_functions",
           "synthetic_sentinel2"]

LOGGER = logging.getLogger(__name__)

#: how ``external_features.functions`` may be written, quoted in error messages
SYNTAX = ('a space-separated string ("get_soi get_ndvi"), a list of names ([get_soi, get_ndvi]), list items '
          '[name, {keyword: value}] or a mapping {name: {keyword: value}}')

#: Sentinel-2 bands of the synthetic series of :func:`check_feature_function` (those of iota2's Sentinel-2 sensors)
SENTINEL2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: Sentinel-2 indices of the synthetic series, in the form of :attr:`FeatureSpec.known_indices`
SENTINEL2_INDICES = (("NDVI", ("B4", "B8")), ("NDWI", ("B8", "B11")), ("BRIGHTNESS", ()))


class FeatureFunctionError(InputDataError):
    """A feature function failed or broke its contract while running on a window.

    ``point`` names the contract point (``"return type"``, ``"array shape"``, ``"labels count"``, ...), used by
    :func:`check_feature_function`.
    """

    def __init__(self, message: str, point: str = "call"):
        super().__init__(message)
        self.point = point


class UnknownAccessorError(AttributeError):
    """A feature function asked the container for an accessor that does not exist."""


# --------------------------------------------------------------------------------------------------------------
# discovery: the user module and the registered functions
# --------------------------------------------------------------------------------------------------------------
_MODULES: dict[str, tuple[tuple[int, int], object]] = {}


def _user_line(exc: BaseException, path: str) -> str:
    """`` (line N)`` of the deepest frame of ``exc`` in the file ``path``, or ``""``."""
    if isinstance(exc, SyntaxError) and exc.lineno and Path(exc.filename or "") == Path(path):
        return f" (line {exc.lineno})"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == Path(path)]
    return f" (line {lines[-1]})" if lines else ""


def load_module(path: str | Path, key: str = "external_features.module", what: str = "your feature functions"):
    """Import the Python file ``path`` under a private module name, never through ``sys.path``.

    The module is cached by path, modification time and size: a task that rebuilds the functions of its
    configuration does not import the file again, and an edited file is imported anew. No bytecode file is
    written next to it.

    Parameters
    ----------
    path
        The ``.py`` file.
    key
        The configuration key that names the file, written at the start of every error message.
    what
        What the file defines, for the messages (``give the path of a .py file defining <what>``).

    Raises
    ------
    ConfigError
        When the file is missing, not a ``.py`` file, or fails to import (the message names the file, the line
        and the exception).
    """
    path = Path(path)
    if path.suffix != ".py":
        raise ConfigError(f"{key}: {path} is not a Python file; give the path of a .py file defining {what}")
    if not path.is_file():
        raise ConfigError(f"{key}: {path} does not exist; give the absolute path of the .py file defining {what}")
    path = path.resolve()
    stat = path.stat()
    source_key, stamp = str(path), (stat.st_mtime_ns, stat.st_size)
    cached = _MODULES.get(source_key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    name = "_iota2_feature_module_" + hashlib.sha1(source_key.encode()).hexdigest()[:16]
    module = types.ModuleType(name)
    module.__file__ = source_key
    sys.modules[name] = module  # dataclasses and pickling inside the module look themselves up there
    try:
        # compiled from the source each time, without bytecode file: an edit is never hidden by a stale cache,
        # and nothing is written next to the user's file
        source = path.read_bytes()
        code = compile(source, source_key, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the user's own module
    except Exception as exc:
        sys.modules.pop(name, None)
        LOGGER.error("%s %s failed to import", key, path, exc_info=exc)
        raise ConfigError(f"{key}: {path} failed to import{_user_line(exc, str(path))}: "
                          f"{type(exc).__name__}: {exc}; fix the file (python {path} shows the error)") from exc
    _MODULES[source_key] = (stamp, module)
    return module


def registered_functions() -> dict:
    """``{name: function}`` registered by plugins (hook ``iota2_register_feature_functions``).

    Asked of the plugin manager at each call (a few microseconds), so plugins registered later are seen.
    """
    from iota2.core.plugins import get_plugin_manager

    merged: dict = {}
    for result in get_plugin_manager().hook.iota2_register_feature_functions():
        for name, function in (result or {}).items():
            if name in merged and merged[name] is not function:
                raise PluginError(f"two plugins register the feature function '{name}'; uninstall one of them "
                                  "('iota2 plugins' lists where each comes from)")
            merged[name] = function
    return merged


def _module_functions(module) -> list[str]:
    """Public functions defined in ``module`` (not imported into it)."""
    return sorted(name for name, value in vars(module).items()
                  if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__)


# --------------------------------------------------------------------------------------------------------------
# configuration: which functions, with which keywords
# --------------------------------------------------------------------------------------------------------------
def _check_name(name, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(f"external_features.functions: {where} {name!r} is not a function name; write "
                          f"{SYNTAX}")
    return name


def _check_kwargs(name: str, kwargs) -> dict:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"external_features.functions: the keyword arguments of '{name}' must be a mapping "
                          f"{{keyword: value}}, got {kwargs!r}; write {SYNTAX}")
    for key in kwargs:
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"external_features.functions: keyword {key!r} of '{name}' is not a Python name")
    return dict(kwargs)


def parse_functions(value) -> list[tuple[str, dict]]:
    """``[(name, kwargs), ...]`` from the value of ``external_features.functions``.

    Accepted: ``None`` or ``""`` (no function); ``"get_soi get_ndvi"``; ``["get_soi", "get_ndvi"]``; list items
    ``["weighted", {"w2": 1}]`` (``["get_soi"]`` alone too) or ``{"weighted": {"w2": 1}}``; a mapping
    ``{"get_soi": None, "weighted": {"w2": 1}}``. Raises :class:`ConfigError` for anything else.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [(_check_name(name, "item"), {}) for name in value.replace(",", " ").split()]
    if isinstance(value, dict):
        return [(_check_name(name, "key"), _check_kwargs(name, kwargs)) for name, kwargs in value.items()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"external_features.functions: got {type(value).__name__} {value!r}; write {SYNTAX}")
    entries = []
    for item in value:
        if isinstance(item, str):
            entries.extend((_check_name(name, "item"), {}) for name in item.replace(",", " ").split())
        elif isinstance(item, dict):
            entries.extend((_check_name(name, "key"), _check_kwargs(name, kwargs)) for name, kwargs in item.items())
        elif isinstance(item, (list, tuple)) and len(item) in (1, 2):
            name = _check_name(item[0], "item")
            entries.append((name, _check_kwargs(name, item[1] if len(item) == 2 else None)))
        else:
            raise ConfigError(f"external_features.functions: item {item!r} is not understood; write {SYNTAX}")
    return entries


def _check_signature(name: str, function, kwargs: dict) -> None:
    """Raise :class:`ConfigError` when ``function(container, **kwargs)`` cannot be called."""
    if not callable(function):
        raise ConfigError(f"external_features.functions: '{name}' is a {type(function).__name__}, not a function")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some callables have no signature: they are checked when called
        return
    try:
        signature.bind(None, **kwargs)
    except TypeError as exc:
        accepted = [parameter.name for parameter in list(signature.parameters.values())[1:]
                    if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]
        accepts = f"it accepts {', '.join(accepted)}" if accepted else "it accepts no keyword"
        raise ConfigError(f"external_features.functions: function '{name}' cannot be called with "
                          f"{_describe_kwargs(kwargs)}: {exc} ({accepts}; a feature function takes the data "
                          "container first, e.g. def my_index(self, weight=1.0))") from None


def _describe_kwargs(kwargs: dict) -> str:
    return "the keywords " + ", ".join(sorted(kwargs)) if kwargs else "no keyword"


# --------------------------------------------------------------------------------------------------------------
# the data container
# --------------------------------------------------------------------------------------------------------------
class FeatureContainer:
    """The ``self`` of feature functions: the series of every sensor of one window, through accessors.

    Accessors (band and sensor names as in the sensor's labels, case-insensitive):

    * ``get_interpolated_<Sensor>_<band>()``: (rows, cols, interpolation dates) float32 gap-filled series, for
      every band and every index of the sensor's ``spec.known_indices`` (e.g. ``get_interpolated_Sentinel2_B4``,
      ``get_interpolated_Sentinel2_NDVI``), in the scale of the series (reflectance x 10000, normalised
      differences x 1000, brightness unscaled), ``nodata`` where the date is nodata;
    * ``get_<Sensor>_<band>()``: the same (iota2 2020 spelling); for a sensor without dates (user features),
      its band as (rows, cols, 1);
    * ``get_raw_<Sensor>_<band>()``: (rows, cols, input dates) float32 values as acquired;
    * ``get_raw_<Sensor>_masks()``: (rows, cols, input dates) uint8, 1 where the observation is invalid.

    Attributes
    ----------
    interpolated_dates, raw_dates
        ``{sensor: [YYYYMMDD, ...]}`` dates of the last axis of the interpolated and raw accessors.
    nodata
        ``{sensor: nodata value}``.
    shape
        (rows, cols) of the window.
    computed
        Number of indices computed: an index asked for twice in a window is computed once.

    Each call returns a new C-contiguous array: a function may modify it in place.
    """

    def __init__(self, data: dict):
        if not data:
            raise FeatureFunctionError("external_features: no sensor data in this window; enable a sensor "
                                       "(e.g. chain.s2_path)", point="data")
        self._data = dict(data)
        self._accessors: dict[str, tuple[str, str, str]] = {}  # lower-case name -> (kind, sensor, band)
        self._names: dict[str, str] = {}  # lower-case name -> spelling shown to users
        self._cache: dict[tuple[str, str], np.ndarray] = {}  # (sensor, index) -> (dates, rows, cols)
        self.computed = 0
        self.interpolated_dates: dict[str, list[str]] = {}
        self.raw_dates: dict[str, list[str]] = {}
        self.nodata: dict[str, float] = {}
        shape = None
        for name, sensor_data in self._data.items():
            spec = sensor_data.spec
            self.nodata[name] = spec.nodata
            if spec.layout == "static":
                shape = shape or tuple(sensor_data.static.shape[1:])
                for band in sensor_data.band_names:
                    self._add(f"get_{name}_{band}", ("static", name, band))
                continue
            shape = shape or tuple(sensor_data.interpolated.shape[2:])
            self.interpolated_dates[name] = list(sensor_data.interpolation_dates)
            self.raw_dates[name] = list(sensor_data.input_dates)
            for band in list(sensor_data.band_names) + [index for index, _roles in spec.known_indices]:
                self._add(f"get_interpolated_{name}_{band}", ("interpolated", name, band))
                self._add(f"get_{name}_{band}", ("interpolated", name, band))
            for band in sensor_data.band_names:
                self._add(f"get_raw_{name}_{band}", ("raw", name, band))
            self._add(f"get_raw_{name}_masks", ("masks", name, ""))
        self.shape = shape

    def _add(self, name: str, target: tuple[str, str, str]) -> None:
        self._accessors.setdefault(name.lower(), target)
        self._names.setdefault(name.lower(), name)

    @property
    def sensors(self) -> list[str]:
        """Names of the sensors of the window, e.g. ``["Sentinel2"]``."""
        return list(self._data)

    def accessors(self) -> list[str]:
        """Every accessor name, sorted."""
        return sorted(self._names.values())

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._names.values()))

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        target = self._accessors.get(name.lower())
        if target is None:
            available = ", ".join(self.accessors())
            raise UnknownAccessorError(f"the data container has no accessor '{name}' (sensors in this window: "
                                       f"{', '.join(self._data)}); available: {available}")
        key = name.lower()

        def accessor() -> np.ndarray:
            return self._compute(*target)

        accessor.__name__ = self._names[key]
        return accessor

    def _compute(self, kind: str, sensor: str, band: str) -> np.ndarray:
        """A new (rows, cols, dates) array: bands are copied from the series, indices computed once per window."""
        data: SensorData = self._data[sensor]
        if kind == "static":
            return np.array(data.static[data.band_names.index(band)][..., np.newaxis], dtype=np.float32)
        if kind == "masks":
            return np.array(data.masks.transpose(1, 2, 0), dtype=np.uint8, order="C")
        if band in data.band_names:
            series = data.raw if kind == "raw" else data.interpolated
            values = series[:, data.band_names.index(band)]
        else:  # an index of spec.known_indices, on the gap-filled series
            key = (sensor, band)
            if key not in self._cache:
                self._cache[key] = self._index(data, band)
                self.computed += 1
            values = self._cache[key]
        return np.array(values.transpose(1, 2, 0), dtype=np.float32, order="C")

    @staticmethod
    def _index(data: SensorData, index: str) -> np.ndarray:
        """(dates, rows, cols) index as the feature stage computes it (:mod:`iota2.core.indices`)."""
        spec = data.spec
        roles = dict(spec.known_indices)[index]
        names = list(data.band_names)
        kept = names if spec.kept_bands is None else list(spec.kept_bands)
        checked = kept if spec.index_nodata_bands == "kept" else names
        interpolated = data.interpolated
        no_data = np.zeros((interpolated.shape[0],) + interpolated.shape[2:], dtype=bool)
        for band in checked:
            no_data |= np.abs(interpolated[:, names.index(band)] - spec.nodata) < 0.1
        if not roles:
            return brightness([interpolated[:, names.index(band)] for band in kept], no_data, spec.nodata)
        low, high = (interpolated[:, names.index(band)] for band in roles)
        return normalised_difference(high, low, no_data, spec.nodata)


# --------------------------------------------------------------------------------------------------------------
# the functions of a configuration
# --------------------------------------------------------------------------------------------------------------
def _check_result(name: str, result, rows: int, cols: int, where: str) -> tuple[np.ndarray, list[str]]:
    """``(array (rows, cols, n) float32, labels)`` from what function ``name`` returned, or
    :class:`FeatureFunctionError` naming the contract point."""
    head = f"external_features: function '{name}'"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = f"a {type(result).__name__} of {len(result)}" if isinstance(result, (tuple, list)) \
            else f"a {type(result).__name__}"
        raise FeatureFunctionError(f"{head} returned {got} on {where}; return (array, labels), e.g. "
                                   f"return ndvi, [f\"ndvi_{{date}}\" for date in self.interpolated_dates[...]]",
                                   point="return type")
    array, labels = result
    if not isinstance(array, np.ndarray):
        raise FeatureFunctionError(f"{head} returned a {type(array).__name__} as array on {where}; return a numpy "
                                   "array (rows, cols, n)", point="array type")
    if array.dtype.kind not in "biuf":
        raise FeatureFunctionError(f"{head} returned an array of dtype {array.dtype} on {where}; return numbers "
                                   "(integers or floats)", point="array dtype")
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[:2] != (rows, cols):
        raise FeatureFunctionError(f"{head} returned an array of shape {array.shape} on {where}; expected (rows, "
                                   f"cols, n) or (rows, cols) with (rows, cols) = ({rows}, {cols}), the window "
                                   "(put the dates or features on the last axis)", point="array shape")
    n_bands = array.shape[2]
    if n_bands == 0:
        raise FeatureFunctionError(f"{head} returned no feature (shape {array.shape}) on {where}",
                                   point="array shape")
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise FeatureFunctionError(f"{head} returned labels of type {type(labels).__name__} on {where}; return a "
                                   "list of strings, one per feature", point="labels type")
    if len(labels) == 0:  # iota2's convention: no label, default names
        labels = [f"{name}_b{band + 1}" for band in range(n_bands)]
    if len(labels) != n_bands:
        raise FeatureFunctionError(f"{head} returned {len(labels)} label(s) for {n_bands} feature(s) on {where}; "
                                   "return one label per band of the last axis", point="labels count")
    labels = [label.strip().lower() for label in labels]
    if any(not label for label in labels):
        raise FeatureFunctionError(f"{head} returned an empty label on {where}", point="labels type")
    duplicates = sorted(label for label, count in collections.Counter(labels).items() if count > 1)
    if duplicates:
        raise FeatureFunctionError(f"{head} returned duplicate labels {', '.join(duplicates[:5])} on {where}; "
                                   "make every label unique, e.g. with the date: f\"index_{date}\"",
                                   point="labels unique")
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(array, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        total = values.size
        first = labels[int(np.argwhere(~np.isfinite(values))[0, 2])]
        raise FeatureFunctionError(f"{head} returned {bad} NaN/inf value(s) of {total} on {where} (first in "
                                   f"'{first}'); guard divisions, e.g. np.divide(a, b, out=np.zeros_like(a), "
                                   "where=b != 0), and keep values within float32", point="finite values")
    return values, labels


class FeatureFunctions:
    """The feature functions of a configuration, applied to each window by the feature stage.

    Parameters
    ----------
    entries
        ``[(name, kwargs), ...]`` in the order of ``external_features.functions``.
    module
        Path of the user's ``.py`` file, or ``None``.
    concat_mode
        True: the features are appended after iota2's; False: they replace them.

    Raises
    ------
    ConfigError
        For a module that is missing or fails to import, an unknown function name (the message lists those of
        the module and the registered ones) or keywords a function does not accept.
    """

    def __init__(self, entries: list[tuple[str, dict]], module: str | None = None, concat_mode: bool = True):
        self.entries = [(name, dict(kwargs)) for name, kwargs in entries]
        self.module = None if module is None else str(module)
        self.concat_mode = bool(concat_mode)
        user = load_module(self.module) if self.module is not None else None
        registered = registered_functions()
        self.functions = []
        for name, kwargs in self.entries:
            function = getattr(user, name, None) if user is not None else None
            if function is None or name.startswith("_"):
                function = registered.get(name)
            if function is None:
                registered_names = ", ".join(sorted(registered)) or "none"
                if user is not None:
                    found = f"neither in {self.module} ({', '.join(_module_functions(user)) or 'no function'}) " \
                        f"nor among the registered ones ({registered_names})"
                else:
                    found = f"not among the registered ones ({registered_names}) and external_features.module " \
                        "is not set"
                raise ConfigError(f"external_features.functions: unknown function '{name}': it is {found}; check the "
                                  "spelling or set external_features.module to the file defining it")
            _check_signature(name, function, kwargs)
            self.functions.append(function)

    @classmethod
    def from_config(cls, config) -> FeatureFunctions | None:
        """The functions of ``config['external_features']``, or ``None`` when ``functions`` is empty.

        A relative ``module`` is resolved against the folder of the configuration file.
        """
        section = config["external_features"]
        entries = parse_functions(section.get("functions"))
        if not entries:
            return None
        module = section.get("module")
        if module in (None, "", "None"):
            module = None
        else:
            module = Path(str(module)).expanduser()
            if not module.is_absolute():
                base = Path(config.path).parent if getattr(config, "path", None) else Path.cwd()
                module = base / module
        concat_mode = section.get("concat_mode")
        return cls(entries, module, True if concat_mode is None else concat_mode)

    def __reduce__(self):
        # functions of a user module are not importable by name in another process: rebuild from the path
        return (FeatureFunctions, (self.entries, self.module, self.concat_mode))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        names = ", ".join(name for name, _kwargs in self.entries)
        return f"FeatureFunctions([{names}], module={self.module!r}, concat_mode={self.concat_mode})"

    @property
    def names(self) -> list[str]:
        """Function names in order."""
        return [name for name, _kwargs in self.entries]

    def apply(self, data: dict, where: str = "this window") -> tuple[np.ndarray, list[str]]:
        """Run every function on one window.

        Parameters
        ----------
        data
            ``{sensor name: SensorData}`` of the window (padded by the feature stage when
            ``python_data_managing.padding_size`` is set).
        where
            The window in words, for error messages, e.g. ``"tile T31TCJ, window rows 0-250, cols 0-500"``.

        Returns
        -------
        features : numpy.ndarray
            (rows, cols, n) float32 C-contiguous, the functions' results in order.
        labels : list of str
            n lower-case labels.

        Raises
        ------
        FeatureFunctionError
            When a function raises, asks for an accessor that does not exist, or returns something that breaks
            the contract (type, shape, labels, NaN/inf); the message names the function and ``where``.
        """
        container = FeatureContainer(data)
        rows, cols = container.shape
        blocks, labels, owners = [], [], {}
        for (name, kwargs), function in zip(self.entries, self.functions):
            result = _call(name, function, container, kwargs, where)
            values, names = _check_result(name, result, rows, cols, where)
            clashes = [label for label in names if label in owners]
            if clashes:
                raise FeatureFunctionError(
                    f"external_features: functions '{owners[clashes[0]]}' and '{name}' both return the label(s) "
                    f"{', '.join(clashes[:5])} on {where}; give each function its own label prefix",
                    point="labels unique")
            owners.update((label, name) for label in names)
            blocks.append(values)
            labels.extend(names)
        features = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2)
        return np.ascontiguousarray(features, dtype=np.float32), labels


def _call(name: str, function, container: FeatureContainer, kwargs: dict, where: str):
    """``function(container, **kwargs)``; its exceptions become one :class:`FeatureFunctionError` (the traceback
    is logged at ERROR level, in the task's log)."""
    head = f"external_features: function '{name}'"
    try:
        return function(container, **kwargs)
    except UnknownAccessorError as exc:
        raise FeatureFunctionError(f"{head} failed on {where}: {exc}", point="accessor") from None
    except FeatureFunctionError as exc:
        raise FeatureFunctionError(f"{head} on {where}: {exc}", point=exc.point) from None
    except Exception as exc:
        LOGGER.error("%s failed on %s", head, where, exc_info=exc)
        raise FeatureFunctionError(f"{head} failed on {where}: {type(exc).__name__}: {exc}",
                                   point="call") from exc


# --------------------------------------------------------------------------------------------------------------
# conformance check
# --------------------------------------------------------------------------------------------------------------
def synthetic_sentinel2(rows: int = 6, cols: int = 7, dates: list[str] | None = None,
                        seed: int = 0) -> SensorData:
    """A small in-memory Sentinel-2-like window: 10 bands B2..B12, vegetation-like reflectances x 10000.

    Pixel (0, 0) is 0 in every band (a division by a band sum is 0/0 there), pixel (0, 1) is nodata
    (-10000) on every date, the last date of pixel (1, 0) is masked in the raw series.
    """
    dates = list(dates or ["20180511", "20180616", "20180721", "20180825"])
    rng = np.random.default_rng(seed)
    n_dates = len(dates)
    base = np.array([400, 700, 600, 1200, 2500, 2900, 3100, 3200, 2000, 1100], dtype=np.float32)
    season = np.sin(np.linspace(0.3, 2.8, n_dates, dtype=np.float32))[:, None, None, None]
    green = rng.uniform(0.2, 1.0, (1, 1, rows, cols)).astype(np.float32)
    weight = np.array([-0.3, 0.1, -0.5, 0.2, 0.6, 0.7, 0.8, 0.8, -0.2, -0.4], dtype=np.float32)[None, :, None, None]
    values = base[None, :, None, None] * (1 + weight * season * green)
    values += rng.normal(0, 40, values.shape).astype(np.float32)
    values = np.clip(np.round(values), 1, 10000).astype(np.float32)
    values[:, :, 0, 0] = 0.0
    values[:, :, 0, 1] = -10000.0
    masks = np.zeros((n_dates, rows, cols), dtype=np.uint8)
    masks[:, 0, 1] = 1
    if rows > 1:
        masks[-1, 1, 0] = 1
    spec = FeatureSpec(indices=SENTINEL2_INDICES, known_indices=SENTINEL2_INDICES, nodata=-10000.0,
                       section="Sentinel_2")
    validity = (n_dates - masks.sum(axis=0)).astype(np.uint16)
    return SensorData(sensor="Sentinel2", band_names=list(SENTINEL2_BANDS), input_dates=list(dates),
                      raw=values.copy(), masks=masks, interpolation_dates=list(dates), interpolated=values,
                      validity=validity, footprint=validity > 0, spec=spec)


def check_feature_function(function, kwargs: dict | None = None, sensors: dict | None = None) -> None:
    """Check that ``function`` follows the feature-function contract (like
    :func:`iota2.core.sensor_checks.check_sensor` for sensors).

    The function runs on two windows of different sizes and date counts (synthetic Sentinel-2 series from
    :func:`synthetic_sentinel2`, or ``sensors``) and must return ``(array, labels)``: a numpy array of numbers
    (rows, cols, n) or (rows, cols), one unique non-empty string label per feature, finite values; the
    synthetic series hold a pixel at 0 in every band and a nodata pixel, so an unguarded division fails.

    Parameters
    ----------
    function
        The feature function, called as ``function(container, **kwargs)``.
    kwargs
        Keyword arguments, as they would be given in ``external_features.functions``.
    sensors
        ``{sensor name: SensorData}`` to run on instead of the synthetic series (one window).

    Raises
    ------
    AssertionError
        At the first contract point that fails; the message starts with it (``"signature"``, ``"call"``,
        ``"accessor"``, ``"return type"``, ``"array type"``, ``"array dtype"``, ``"array shape"``,
        ``"labels type"``, ``"labels count"``, ``"labels unique"`` or ``"finite values"``).
    """
    kwargs = dict(kwargs or {})
    name = getattr(function, "__name__", repr(function))
    try:
        _check_signature(name, function, kwargs)
    except ConfigError as exc:
        raise AssertionError(f"signature: {exc}") from None
    if sensors is not None:
        windows = [dict(sensors)]
    else:
        windows = [{"Sentinel2": synthetic_sentinel2(6, 7, seed=0)},
                   {"Sentinel2": synthetic_sentinel2(9, 4, dates=["20180401", "20180503", "20180610"], seed=1)}]
    for number, data in enumerate(windows, start=1):
        container = FeatureContainer(data)
        rows, cols = container.shape
        where = f"synthetic window {number} ({rows} x {cols} pixels)"
        try:
            result = _call(name, function, container, kwargs, where)
            _check_result(name, result, rows, cols, where)
        except FeatureFunctionError as exc:
            raise AssertionError(f"{exc.point}: {exc}") from None
        if len(result[1]) == 0:
            raise AssertionError(f"labels count: function '{name}' returned no label on {where}; return one label "
                                 "per feature (runs name unlabelled features <function>_b<i>, which says nothing "
                                 "of the date or the index)")
