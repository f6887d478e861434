"""Built-in deep-learning networks for pixel time series, selectable by ``deep_learning_parameters.dl_name``.

Four networks are registered through the ``iota2`` entry-point group (hook ``iota2_register_dl_models``):
``MLPClassifier``, ``ANN``, ``LTAEClassifier`` and ``SimpleSelfAttentionClassifier`` (``docs/deep_learning.md``).

This module does not import torch: the feature labels of a samples file are turned into a
:class:`TemporalLayout` (which feature of the flat vector is which (date, channel) pair) with numpy only, and
hyper-parameters are checked here. The networks themselves live in :mod:`iota2.plugins.dl_networks`, imported
on first use (the hook, :func:`networks`, or an attribute such as ``dl_models.LTAEClassifier``), so that plugin
discovery neither fails without torch nor pays for importing it.

Constructor convention of every network (third-party ones included)::

    Network(n_dates, n_channels, n_classes, doy, n_static=0, *, layout=None, **hyper_parameters)

``forward(x)`` takes a float tensor (batch, n_features) of the samples file's feature columns, in their order,
and returns logits (batch, n_classes). With ``layout`` (a :class:`TemporalLayout`), ``n_features`` is
``layout.n_features`` and the network gathers the (batch, dates, channels) series and the static features
from it; without, the flat vector is read as a complete date-major series (date 1: channel 1 ... channel C,
date 2: ...) of ``n_dates * n_channels`` values followed by ``n_static`` static features.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import re

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.zonal_stats import STATISTICS

__all__ = ["NETWORK_NAMES", "TemporalLayout", "temporal_layout", "resolve_hyper_parameters", "networks",
           "check_dl_model"]

#: names of the built-in networks, as written in ``deep_learning_parameters.dl_name``
NETWORK_NAMES = ("MLPClassifier", "ANN", "LTAEClassifier", "SimpleSelfAttentionClassifier")

#: message when torch is missing
TORCH_MISSING = ("deep_learning_parameters: the deep-learning networks need torch, which is not installed; "
                 "install it with pip install 'iota2[dl]' (torch==2.13.0)")

_DATED = re.compile(rf"^(?P<channel>.+)_(?P<date>\d{{8}})(?P<statistic>_(?:{'|'.join(STATISTICS)}))?$")


@dataclasses.dataclass(frozen=True, eq=False)
class TemporalLayout:
    """Where each (date, channel) pair and each static feature sits in a flat feature vector.

    Attributes
    ----------
    labels
        The feature labels, in the order of the flat vector.
    dates
        Sorted ``YYYYMMDD`` dates: every date of every dated label (the union of the sensors' date grids).
    channels
        Channel names (a label without its date, e.g. ``sentinel2_b2``, ``sentinel2_ndvi``,
        ``sentinel1_des_vv``, ``soi``), sorted by name with digit runs read as numbers.
    index
        (n_dates, n_channels) int64: position in the flat vector of each (date, channel) pair, -1 where the
        pair has no feature (another sensor's date).
    mask
        (n_dates, n_channels) bool: True where the pair has a feature.
    static
        (n_static,) int64: positions of the dateless features (``userfeatures_mnt``, ``laplace_ndvi`` ...),
        sorted by label like the channels.
    static_labels
        Their labels.
    doy
        (n_dates,) float32: days since the first date, the positions of the temporal encodings.
    """

    labels: tuple
    dates: tuple
    channels: tuple
    index: np.ndarray
    mask: np.ndarray
    static: np.ndarray
    static_labels: tuple
    doy: np.ndarray

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_static(self) -> int:
        return len(self.static)

    @property
    def n_features(self) -> int:
        """Length of the flat vector."""
        return len(self.labels)

    @property
    def day_of_year(self) -> np.ndarray:
        """(n_dates,) int day of year (1..366) of each date."""
        return np.array([_date(d).timetuple().tm_yday for d in self.dates], dtype=np.int64)

    def dims(self) -> dict:
        """``{"n_dates", "n_channels", "doy", "n_static"}``: the constructor arguments of a network."""
        return {"n_dates": self.n_dates, "n_channels": self.n_channels, "doy": self.doy.tolist(),
                "n_static": self.n_static}

    def split(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gather flat vectors into series and static features (numpy; networks do the same in torch).

        Parameters
        ----------
        values
            (n, n_features) array in the order of :attr:`labels`.

        Returns
        -------
        series : numpy.ndarray
            (n, n_dates, n_channels), 0 where :attr:`mask` is False.
        static : numpy.ndarray
            (n, n_static).
        """
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) values, got shape {values.shape}")
        padded = np.concatenate([values, np.zeros((values.shape[0], 1), dtype=values.dtype)], axis=1)
        series = padded[:, np.where(self.mask, self.index, self.n_features)]
        return series, values[:, self.static]


def _date(text: str) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _natural(text: str) -> tuple:
    """Sort key reading digit runs as numbers: ``b2`` < ``b3`` < ``b11`` < ``b8a``... as in ``b8`` < ``b8a``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def temporal_layout(feature_labels, source: str = "the samples file") -> TemporalLayout:
    """The :class:`TemporalLayout` of a list of feature labels.

    A label ending in ``_YYYYMMDD`` (a valid date) is the value of channel ``<label without the date>`` at that
    date: ``sentinel2_b2_20180511`` (channel ``sentinel2_b2``), ``sentinel2_ndvi_20180511``,
    ``sentinel1_des_vv_20180511``, ``soi_20180511`` (a feature function). An object statistic of OBIA,
    ``<label>_<statistic>`` (:data:`iota2.core.zonal_stats.STATISTICS`), is the channel ``<channel>_<statistic>``
    at the label's date: ``sentinel2_b2_20180511_mean`` is channel ``sentinel2_b2_mean``. Any other label is static:
    ``userfeatures_mnt``, ``laplace_ndvi``. Dates are the sorted union of all dates, so sensors with
    different date grids share one time axis; the pairs a sensor does not have are missing
    (``index`` -1, ``mask`` False) and networks fill them with 0. Channels and static features are sorted by
    name (digits as numbers: ``b2`` before ``b11``), so the layout depends on the set of labels, not on the
    order of the columns: a network reads its features by label.

    Parameters
    ----------
    feature_labels
        Feature column names, in the order of the flat feature vector.
    source
        What the labels come from, named in error messages (e.g. the samples file's path).

    Returns
    -------
    TemporalLayout

    Raises
    ------
    InputDataError
        No labels, or a label given twice.
    """
    labels = tuple(str(label) for label in feature_labels)
    if not labels:
        raise InputDataError(f"{source}: no feature column; extract samples with at least one feature")
    seen, duplicates = set(), []
    for label in labels:
        if label in seen:
            duplicates.append(label)
        seen.add(label)
    if duplicates:
        raise InputDataError(f"{source}: feature label(s) {sorted(set(duplicates))[:5]} appear more than once; "
                             "each feature column needs its own label (rename the feature functions' outputs)")
    pairs, static = {}, []
    for position, label in enumerate(labels):
        match = _DATED.match(label)
        if match and _date(match["date"]) is not None:
            pairs[(match["date"], match["channel"] + (match["statistic"] or ""))] = position
        else:
            static.append(position)
    static.sort(key=lambda position: _natural(labels[position]))
    dates = tuple(sorted({date for date, _ in pairs}))
    channel_names = tuple(sorted({channel for _, channel in pairs}, key=_natural))
    date_index = {date: i for i, date in enumerate(dates)}
    channel_index = {channel: j for j, channel in enumerate(channel_names)}
    index = np.full((len(dates), len(channel_names)), -1, dtype=np.int64)
    for (date, channel), position in pairs.items():
        index[date_index[date], channel_index[channel]] = position
    first = _date(dates[0]) if dates else None
    doy = np.array([(_date(date) - first).days for date in dates], dtype=np.float32)
    return TemporalLayout(labels=labels, dates=dates, channels=channel_names, index=index, mask=index >= 0,
                          static=np.array(static, dtype=np.int64),
                          static_labels=tuple(labels[i] for i in static), doy=doy)


def _check_value(network: str, key: str, value, default):
    """``value`` converted to the type of ``default`` (sequences to tuples), or a :class:`ConfigError`."""
    where = f"deep_learning_parameters.dl_parameters.{key} ({network})"
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"{where}: expected a list such as {list(default)}, got {value!r}")
        items = tuple(value)
        if any(isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 1 for item in items):
            raise ConfigError(f"{where}: expected a list of positive integers such as {list(default)}, got {value!r}")
        return tuple(int(item) for item in items)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def resolve_hyper_parameters(network: type, given: dict) -> dict:
    """The hyper-parameters of ``network``: its declared defaults updated by ``given``, checked.

    Parameters
    ----------
    network
        A class with a ``hyper_parameters`` attribute ``{key: (default, doc)}``.
    given
        The keys set by the user (``deep_learning_parameters.dl_parameters``).

    Returns
    -------
    dict
        Every declared key with its value.

    Raises
    ------
    ConfigError
        An unknown key (the message lists the accepted keys and their defaults) or a value of the wrong type.
    """
    declared = dict(getattr(network, "hyper_parameters", {}))
    name = getattr(network, "__name__", str(network))
    unknown = sorted(set(given) - set(declared))
    if unknown:
        accepted = ", ".join(f"{key} (default {_format(default)})" for key, (default, _) in declared.items())
        raise ConfigError(f"deep_learning_parameters.dl_parameters: unknown key(s) {', '.join(unknown)} for "
                          f"{name}; accepted keys: {accepted or 'none'}")
    values = {key: default for key, (default, _) in declared.items()}
    for key, value in given.items():
        values[key] = _check_value(name, key, value, declared[key][0])
    return values


def _format(value) -> str:
    if isinstance(value, tuple):
        return str(list(value))
    return repr(value)


def networks() -> dict:
    """``{name: class}`` of the built-in networks (imports torch).

    Raises
    ------
    ConfigError
        torch is not installed.
    """
    try:
        module = importlib.import_module("iota2.plugins.dl_networks")
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "torch":
            raise ConfigError(TORCH_MISSING) from None
        raise
    return {name: getattr(module, name) for name in NETWORK_NAMES}


@hookimpl
def iota2_register_dl_models():
    """The four built-in networks; none without torch (:func:`networks` says how to install it)."""
    try:
        return networks()
    except ConfigError:
        return {}


def check_dl_model(cls, layout_or_dims, n_classes: int, *, seed: int = 0, batch_size: int = 8,
                   hyper_parameters: dict | None = None):
    """Check that a network class honours the contract of iota2's deep-learning networks.

    Like scikit-learn's ``check_estimator``: build the network, run it on random inputs and check, in this
    order, (1) construction with the seeded convention ``cls(n_dates, n_channels, n_classes, doy, n_static,
    layout=..., **hyper_parameters)``, (2) an unknown hyper-parameter raises :class:`ConfigError`, (3) output
    shape (batch, n_classes), (4) finite outputs, (5) determinism in eval mode, (6) determinism of a seeded
    construction, (7) a training step (finite loss and gradients), (8) batch size 1, (9) ``state_dict`` save
    and load round trip through ``torch.save``/``torch.load(weights_only=True)``.

    Parameters
    ----------
    cls
        The network class (a ``torch.nn.Module`` subclass).
    layout_or_dims
        A :class:`TemporalLayout`, or a dict with ``n_dates``, ``n_channels``, ``doy`` and optionally
        ``n_static``, or a tuple ``(n_dates, n_channels, doy[, n_static])``.
    n_classes
        Number of classes.
    seed
        Seed of the constructions and inputs.
    batch_size
        Batch size of the checks (>= 2: batch normalisation trains on batches).
    hyper_parameters
        Hyper-parameters passed to the constructor.

    Returns
    -------
    torch.nn.Module
        The network built in check (1), in eval mode.

    Raises
    ------
    AssertionError
        Naming the first failed check.
    """
    try:
        import torch
    except ModuleNotFoundError:
        raise ConfigError(TORCH_MISSING) from None
    import io

    hyper_parameters = dict(hyper_parameters or {})
    layout = layout_or_dims if isinstance(layout_or_dims, TemporalLayout) else None
    if layout is not None:
        dims = layout.dims()
    elif isinstance(layout_or_dims, dict):
        dims = {"n_static": 0, **layout_or_dims}
    else:
        dims = dict(zip(("n_dates", "n_channels", "doy", "n_static"), tuple(layout_or_dims) + (0,)))
    n_features = layout.n_features if layout is not None else dims["n_dates"] * dims["n_channels"] + dims["n_static"]
    name = getattr(cls, "__name__", str(cls))

    def build(build_seed: int):
        torch.manual_seed(build_seed)
        return cls(dims["n_dates"], dims["n_channels"], n_classes, dims["doy"], dims["n_static"], layout=layout,
                   **hyper_parameters)

    try:
        model = build(seed)
    except Exception as error:  # noqa: BLE001 - reported as the failed check
        raise AssertionError(f"{name}: (1) construction failed: {type(error).__name__}: {error}") from error
    if not isinstance(model, torch.nn.Module):
        raise AssertionError(f"{name}: (1) construction: not a torch.nn.Module but {type(model).__name__}")
    try:
        torch.manual_seed(seed)
        cls(dims["n_dates"], dims["n_channels"], n_classes, dims["doy"], dims["n_static"], layout=layout,
            **hyper_parameters, __unknown_hyper_parameter__=1)
    except ConfigError:
        pass
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"{name}: (2) an unknown hyper-parameter must raise ConfigError, not "
                             f"{type(error).__name__}: {error}") from error
    else:
        raise AssertionError(f"{name}: (2) an unknown hyper-parameter must raise ConfigError; it was accepted")

    generator = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.randn(batch_size, n_features, generator=generator).to(device)
    model.eval()
    with torch.no_grad():
        out = model(x)
        if tuple(out.shape) != (batch_size, n_classes):
            raise AssertionError(f"{name}: (3) output shape: expected ({batch_size}, {n_classes}) logits for "
                                 f"{n_features} features, got {tuple(out.shape)}")
        if not torch.isfinite(out).all():
            raise AssertionError(f"{name}: (4) outputs are not finite (NaN or infinity) on random inputs")
        again = model(x)
        if not torch.equal(out, again):
            raise AssertionError(f"{name}: (5) two forward passes in eval mode differ: dropout or other "
                                 "randomness must be off in eval mode")
    other = build(seed)
    other.eval()
    with torch.no_grad():
        if not torch.equal(other.to(device)(x), out):
            raise AssertionError(f"{name}: (6) two constructions with the same seed give different outputs")

    model.train()
    model.zero_grad()
    targets = torch.arange(batch_size, device=device) % n_classes
    loss = torch.nn.functional.cross_entropy(model(x), targets)
    if not torch.isfinite(loss):
        raise AssertionError(f"{name}: (7) training step: the loss is not finite")
    loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise AssertionError(f"{name}: (7) training step: the network has no trainable parameter")
    if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in trainable):
        raise AssertionError(f"{name}: (7) training step: gradients are not finite")
    if all(p.grad is None for p in trainable):
        raise AssertionError(f"{name}: (7) training step: no parameter received a gradient")
    model.zero_grad()
    model.eval()
    with torch.no_grad():
        reference = model(x)
        single = model(x[:1])
        if tuple(single.shape) != (1, n_classes):
            raise AssertionError(f"{name}: (8) batch size 1: expected (1, {n_classes}), got {tuple(single.shape)}")
        if not torch.allclose(single, reference[:1], rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{name}: (8) batch size 1: the output of a sample alone differs from its output "
                                 "in a batch (statistics of the batch used in eval mode?)")

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        loaded = build(seed + 1)
        try:
            loaded.load_state_dict(torch.load(buffer, weights_only=True))
        except Exception as error:  # noqa: BLE001
            raise AssertionError(f"{name}: (9) state_dict round trip: loading failed: {error}") from error
        loaded.to(device).eval()
        if not torch.equal(loaded(x), reference):
            raise AssertionError(f"{name}: (9) state_dict round trip: the reloaded network gives other outputs")
    return model


def __getattr__(name: str):
    """``dl_models.LTAEClassifier`` and the other networks, imported with torch on first access."""
    if name in NETWORK_NAMES or name == "DLNetwork":
        module = importlib.import_module("iota2.plugins.dl_networks")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
