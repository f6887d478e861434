"""The deep-learning learner (``deep_learning``): a torch network of ``arg_train.deep_learning_parameters``.

Selected when ``arg_train.deep_learning_parameters`` is set; ``dl_name`` names the network (a built-in one of
:mod:`iota2.plugins.dl_models`, a network registered by a plugin through ``iota2_register_dl_models``, or a class
of the user's ``dl_module`` file) and ``dl_parameters`` its hyper-parameters. Every accepted key is in
:data:`SETTINGS` and ``docs/deep_learning.md``.

:meth:`DeepLearningLearner.fit` streams the samples file (:mod:`iota2.plugins.dl_samples`): it holds out a share of
the polygons of each class to monitor training, normalises the features with statistics of the training rows,
trains with Adam (seeded), evaluates loss, overall accuracy, kappa and mean F-score on the held-out rows after
each epoch, keeps the weights of the best epoch (``model_selection_criterion``), may stop early, and writes the
learning curves (``<stem>_learning_curves.csv``, ``<stem>_loss.png``, ``<stem>_metrics.png``) into the report
folder.

Files of a model ``model/model_<R>_seed_<S>``: ``.pt`` (the network's ``state_dict``, read with
``torch.load(weights_only=True)``) and ``_dl.json`` (network name, hyper-parameters, feature labels, classes,
normalisation statistics). Loading rebuilds the network from its registered class and these values: nothing a
model file holds runs code.

torch is imported only when a network is built, fitted, applied or read; importing this module, listing the
plugins and checking the generic keys of a configuration do not need it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.learner import Learner, LearningSamples, Resources, check_file, file_digest, refuse_model, write_text
from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)

#: the configuration section of the learner
SECTION = "arg_train.deep_learning_parameters"

#: values of ``model_selection_criterion`` and ``early_stop_metric``
CRITERIA = ("loss", "fscore", "oa", "kappa")

#: values of ``device``
DEVICES = ("auto", "cpu", "cuda")

#: every accepted key of ``deep_learning_parameters``: ``{key: (default, doc)}``; ``dl_name`` has no default
SETTINGS = {
    "dl_name": (None, "network: a built-in one (MLPClassifier, ANN, LTAEClassifier, SimpleSelfAttentionClassifier), "
                      "one registered by a plugin, or a class of dl_module"),
    "dl_parameters": ({}, "hyper-parameters of the network (its declared keys)"),
    "epochs": (100, "maximum number of passes over the training samples (> 0)"),
    "batch_size": (1000, "samples per optimisation step (> 0)"),
    "learning_rate": (1e-3, "learning rate of Adam (> 0)"),
    "weighted_labels": (False, "weight the cross-entropy of each class by n / (n_classes * n_class)"),
    "model_selection_criterion": ("loss", "the epoch kept: lowest validation loss, or highest fscore, oa, kappa"),
    "enable_early_stop": (False, "stop when early_stop_metric has not improved for early_stop_patience epochs"),
    "early_stop_patience": (10, "epochs without improvement before stopping (> 0)"),
    "early_stop_tol": (1e-4, "smallest change of early_stop_metric counted as an improvement (>= 0)"),
    "early_stop_metric": ("loss", "loss, fscore, oa or kappa, on the validation samples"),
    "epoch_to_trigger": (1, "first epoch (1-based) after which training may stop early (> 0)"),
    "additional_statistics_percentage": (0.2, "share of each class's samples held out, by polygon, to monitor "
                                              "training, in [0, 1)"),
    "num_workers": (0, "torch DataLoader worker processes reading the samples (0: read in the training process)"),
    "device": ("auto", "auto (cuda when available, else cpu), cpu or cuda"),
    "dl_module": (None, "path of a .py file defining torch.nn.Module networks selectable by dl_name"),
}

#: a training set up to this size (``rows * features * 4`` bytes) is read once into memory; larger ones are
#: streamed from the samples file at each epoch (:class:`iota2.plugins.dl_samples.ShuffledBatches`)
IN_MEMORY_MAX_BYTES = 1 << 30

#: rows per forward pass of :meth:`DeepLearningLearner.predict_proba` on CPU: a batch's activations stay in the
#: caches (the LTAE at its default size runs 2.5x faster per pixel than with 65 536 rows; 1 024 rows keep that
#: lead when other processes share the caches, where 4 096 lose half of it)
PREDICT_BATCH = 1_024
#: rows per forward pass on a GPU, where larger batches keep it busy
PREDICT_BATCH_GPU = 65_536

#: format tag of the ``_dl.json`` file
MODEL_FORMAT = "iota2-dl-model"

TORCH_MISSING = (f"{SECTION}: deep learning needs torch, which is not installed; install it with "
                 "pip install 'iota2[dl]' (from a source tree: pip install -e \".[dl]\"), which installs torch==2.13.0")


# ---------------------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------------------
def _section(config) -> dict:
    train = config["arg_train"]
    return train.get("deep_learning_parameters") or {}


def _number(key: str, value, *, integer: bool, low: float, low_open: bool = False, high: float | None = None,
            high_open: bool = True):
    where = f"{SECTION}.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
            (integer and not float(value).is_integer()) or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: expected {kind}, got {value!r}")
    value = int(value) if integer else float(value)
    if value < low or (low_open and value == low) or \
            (high is not None and (value > high or (high_open and value == high))):
        bounds = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}" \
                 f"{')' if high is None or high_open else ']'}"
        raise ConfigError(f"{where}: expected a value in {bounds}, got {value!r}")
    return value


def _choice(key: str, value, choices) -> str:
    if value not in choices:
        raise ConfigError(f"{SECTION}.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{SECTION}.{key}: expected true or false, got {value!r}")
    return value


def check_settings(section: dict) -> dict:
    """The settings of ``deep_learning_parameters`` with their defaults, each checked; no network is looked up.

    Parameters
    ----------
    section
        The ``arg_train.deep_learning_parameters`` mapping.

    Returns
    -------
    dict
        Every key of :data:`SETTINGS` (JSON-able values); ``dl_module`` as an absolute path or None.

    Raises
    ------
    ConfigError
        An unknown key (the message lists the accepted ones), a missing ``dl_name`` or a bad value, naming the key.
    """
    if not isinstance(section, dict):
        raise ConfigError(f"{SECTION}: expected a mapping of keys (dl_name, epochs, ...), got {section!r}")
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{SECTION}: unknown key(s) {', '.join(map(str, unknown))}; accepted keys: "
                          f"{', '.join(SETTINGS)} (docs/deep_learning.md)")
    values = {key: copy.deepcopy(default) for key, (default, _) in SETTINGS.items()}
    values.update(copy.deepcopy(section))
    if not isinstance(values["dl_name"], str) or not values["dl_name"]:
        raise ConfigError(f"{SECTION}.dl_name: name the network to train (e.g. dl_name: MLPClassifier), got "
                          f"{values['dl_name']!r}")
    if values["dl_parameters"] is None:
        values["dl_parameters"] = {}
    if not isinstance(values["dl_parameters"], dict):
        raise ConfigError(f"{SECTION}.dl_parameters: expected a mapping of the network's hyper-parameters, got "
                          f"{values['dl_parameters']!r}")
    for key in ("epochs", "batch_size", "early_stop_patience", "epoch_to_trigger"):
        values[key] = _number(key, values[key], integer=True, low=1)
    values["num_workers"] = _number("num_workers", values["num_workers"], integer=True, low=0)
    values["learning_rate"] = _number("learning_rate", values["learning_rate"], integer=False, low=0, low_open=True)
    values["early_stop_tol"] = _number("early_stop_tol", values["early_stop_tol"], integer=False, low=0)
    values["additional_statistics_percentage"] = _number(
        "additional_statistics_percentage", values["additional_statistics_percentage"], integer=False, low=0, high=1)
    for key in ("weighted_labels", "enable_early_stop"):
        values[key] = _flag(key, values[key])
    for key in ("model_selection_criterion", "early_stop_metric"):
        values[key] = _choice(key, values[key], CRITERIA)
    values["device"] = _choice("device", values["device"], DEVICES)
    if values["dl_module"] is not None:
        path = Path(str(values["dl_module"])).expanduser()
        if path.suffix != ".py":
            raise ConfigError(f"{SECTION}.dl_module: {path} is not a Python file; give the path of a .py file "
                              "defining your networks")
        if not path.is_file():
            raise ConfigError(f"{SECTION}.dl_module: {path} does not exist; give the absolute path of the .py file "
                              "defining your networks")
        values["dl_module"] = str(path.resolve())
    return values


def torch_available() -> bool:
    """Whether torch is installed (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _require_torch():
    if not torch_available():
        raise ConfigError(TORCH_MISSING)
    import torch

    return torch


def module_networks(path: str | Path) -> dict:
    """``{class name: class}`` of the ``torch.nn.Module`` subclasses defined in the user's file ``path``.

    The file is imported with :func:`iota2.core.feature_functions.load_module` (by path, never through
    ``sys.path``; cached by modification time and size). Classes imported into the file from elsewhere are left out.

    Raises
    ------
    ConfigError
        The file is missing, fails to import, or defines no network; the message names ``dl_module`` and the file.
    """
    torch = _require_torch()
    from iota2.core.feature_functions import load_module

    module = load_module(path, key=f"{SECTION}.dl_module", what="your networks")
    found = {name: value for name, value in vars(module).items()
             if isinstance(value, type) and issubclass(value, torch.nn.Module)
             and value.__module__ == module.__name__}
    if not found:
        raise ConfigError(f"{SECTION}.dl_module: {path} defines no torch.nn.Module subclass; define your network "
                          "class in it (docs/deep_learning.md)")
    return found


def registered_networks() -> dict:
    """``{name: class}`` of the networks registered by plugins (:func:`iota2.core.plugins.dl_models`; imports torch).

    Raises
    ------
    ConfigError
        torch is not installed.
    PluginError
        Two plugins register one name.
    """
    _require_torch()
    from iota2.core.plugins import dl_models

    return dl_models()


def network_class(dl_name: str, dl_module: str | None = None) -> type:
    """The network class named ``dl_name``: a class of ``dl_module`` or a registered network (imports torch).

    Raises
    ------
    ConfigError
        torch is missing, the name is unknown (the message lists the installed networks and those of
        ``dl_module``), or ``dl_module`` defines a class of the name of a registered network.
    """
    registered = registered_networks()
    mine = module_networks(dl_module) if dl_module else {}
    clash = sorted(set(mine) & set(registered))
    if dl_name in clash:
        raise ConfigError(f"{SECTION}.dl_module: {dl_module} defines {dl_name}, the name of an installed network; "
                          "rename your class (and dl_name)")
    if dl_name in mine:
        return mine[dl_name]
    if dl_name in registered:
        return registered[dl_name]
    listed = ", ".join(sorted(registered)) or "none"
    extra = f"; in dl_module: {', '.join(sorted(mine))}" if mine else ""
    raise ConfigError(f"{SECTION}.dl_name: unknown network {dl_name!r}; installed networks: {listed}{extra}")


def hyper_parameters_of(network: type, given: dict) -> dict:
    """The network's hyper-parameters (declared defaults updated by ``given``), checked, as JSON-able values.

    Raises
    ------
    ConfigError
        An unknown key or a bad value (see :func:`iota2.plugins.dl_models.resolve_hyper_parameters`).
    """
    from iota2.plugins.dl_models import resolve_hyper_parameters

    values = resolve_hyper_parameters(network, dict(given or {}))
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


def resolve_device(device: str):
    """The torch device of the ``device`` setting: ``auto`` is cuda when ``torch.cuda.is_available()``.

    Raises
    ------
    ConfigError
        ``cuda`` asked for and no GPU is usable.
    """
    torch = _require_torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{SECTION}.device: cuda asked for, but torch sees no GPU (torch.cuda.is_available() is "
                          "false); use device: auto or cpu")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


def split_samples(data, settings: dict, seed: int | None):
    """The training and validation rows of a samples file (:class:`iota2.plugins.dl_samples.SamplesFile`):
    ``additional_statistics_percentage`` of each class held out by polygon with ``seed``
    (:func:`iota2.plugins.dl_samples.split_by_polygon`), as :meth:`DeepLearningLearner.fit` does."""
    from iota2.plugins.dl_samples import split_by_polygon

    ratio = settings.get("additional_statistics_percentage", SETTINGS["additional_statistics_percentage"][0])
    return split_by_polygon(data.labels(), data.polygon_ids(), ratio, seed)


# ---------------------------------------------------------------------------------------------------------------------
# metrics and curves
# ---------------------------------------------------------------------------------------------------------------------
def epoch_metrics(reference: np.ndarray, produced: np.ndarray, classes: np.ndarray) -> dict:
    """``oa``, ``kappa`` and ``fscore`` (mean F-score) of predicted labels.

    The F-score of a class is ``2 TP / (2 TP + FP + FN)`` (0 when it is never right, including a class never
    produced); the mean is over the classes present in ``reference``. OA and kappa are those of
    :func:`iota2.core.metrics.coefficients`.
    """
    from iota2.core.metrics import coefficients, confusion_matrix

    matrix = confusion_matrix(reference, produced, classes).astype(np.float64)
    found = coefficients(matrix)
    diagonal, rows, columns = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    present = rows > 0
    fscore = 2 * diagonal[present] / (rows[present] + columns[present])
    return {"oa": found["oa"], "kappa": found["kappa"],
            "fscore": float(fscore.mean()) if fscore.size else float("nan")}


def _better(criterion: str, value: float, best: float | None, tol: float = 0.0) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - tol if criterion == "loss" else value > best + tol


CURVE_COLUMNS = ("epoch", "train_loss", "validation_loss", "validation_oa", "validation_kappa", "validation_fscore")


def write_learning_curves(folder: Path, stem: str, history: list[dict], best_epoch: int) -> list[Path]:
    """Write ``<stem>_learning_curves.csv`` (one row per epoch, :data:`CURVE_COLUMNS`), ``<stem>_loss.png``
    (training and validation loss per epoch) and ``<stem>_metrics.png`` (validation OA, kappa and mean F-score per
    epoch), each atomically; the kept epoch is marked on the figures.

    Returns
    -------
    list of Path
        The three files.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    folder = Path(folder)
    csv = folder / f"{stem}_learning_curves.csv"
    lines = [",".join(CURVE_COLUMNS)]
    for row in history:
        lines.append(",".join(str(row["epoch"]) if key == "epoch" else repr(float(row[key])) for key in
                              CURVE_COLUMNS))
    write_text(csv, "\n".join(lines) + "\n")
    epochs = [row["epoch"] for row in history]
    written = [csv]
    for suffix, title, series in (
            ("loss", "Training and validation losses", (("train_loss", "training"),
                                                        ("validation_loss", "validation"))),
            ("metrics", "Validation accuracy", (("validation_oa", "OA"), ("validation_kappa", "kappa"),
                                                ("validation_fscore", "mean F-score")))):
        figure = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        for key, label in series:
            axes.plot(epochs, [row[key] for row in history], marker="." if len(epochs) < 50 else None, label=label)
        axes.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"kept epoch {best_epoch}")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel("cross-entropy" if suffix == "loss" else "score")
        axes.set_title(f"{stem}: {title}")
        axes.grid(alpha=0.3)
        axes.legend()
        target = folder / f"{stem}_{suffix}.png"
        with atomic_output(target) as tmp:
            figure.savefig(tmp, format="png")
        written.append(target)
    return written


# ---------------------------------------------------------------------------------------------------------------------
# the learner
# ---------------------------------------------------------------------------------------------------------------------
class DeepLearningLearner(Learner):
    """A torch network trained on the pixels of a samples file (``arg_train.deep_learning_parameters``).

    Parameters
    ----------
    settings
        :meth:`settings_from_config` (every key of :data:`SETTINGS`).

    Attributes
    ----------
    network_
        The trained network (``torch.nn.Module``, eval mode) after :meth:`fit` or :meth:`load`.
    statistics_
        :class:`iota2.plugins.dl_samples.FeatureStatistics` of the training rows (the normalisation).
    hyper_parameters_
        The network's hyper-parameters (declared defaults and ``dl_parameters``).
    device_
        The torch device the network runs on.
    history_
        After :meth:`fit`: one dict per epoch (:data:`CURVE_COLUMNS`).
    """

    name = "deep_learning"

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.network_ = None
        self.statistics_ = None
        self.hyper_parameters_: dict = {}
        self.device_ = None
        self.history_: list[dict] = []
        self._mean = self._scale = None

    # ------------------------------------------------------------------ configuration
    @classmethod
    def selected_by(cls, config) -> bool:
        """True when ``arg_train.deep_learning_parameters`` is set (non-empty)."""
        return bool(_section(config))

    @classmethod
    def settings_from_config(cls, config) -> dict:
        """The checked settings of ``arg_train.deep_learning_parameters`` (:func:`check_settings`).

        The generic keys are checked without torch; then, when torch is installed, ``dl_name`` is looked up (a
        registered network or a class of ``dl_module``) and ``dl_parameters`` checked against the network's declared
        hyper-parameters, so a wrong key fails before any task runs.

        Raises
        ------
        ConfigError
            A bad key or value, an unknown network (listing the installed ones), or torch missing (with the
            command that installs it).
        """
        settings = check_settings(_section(config))
        if not torch_available():
            raise ConfigError(TORCH_MISSING)
        network = network_class(settings["dl_name"], settings["dl_module"])
        hyper_parameters_of(network, settings["dl_parameters"])
        return settings

    @classmethod
    def warm_up(cls) -> None:
        """Import torch and the built-in networks."""
        if torch_available():
            import iota2.plugins.dl_networks  # noqa: F401

    def resources(self) -> Resources:
        """Every core of the worker, and the GPU unless ``device`` is ``cpu``."""
        return Resources(threads=os.cpu_count() or 1, gpu=self.settings.get("device", "auto") != "cpu")

    # ------------------------------------------------------------------ fit
    def _build(self, layout, n_classes: int):
        network = network_class(self.settings["dl_name"], self.settings.get("dl_module"))
        self.hyper_parameters_ = hyper_parameters_of(network, self.settings.get("dl_parameters") or {})
        return network(layout.n_dates, layout.n_channels, n_classes, layout.doy.tolist(), layout.n_static,
                       layout=layout, **self.hyper_parameters_)

    def fit(self, samples: LearningSamples, stem: str | None = None) -> dict:
        """Train the network on the samples file and keep the weights of the best epoch.

        Parameters
        ----------
        samples
            The samples file of the (region, run) and how to read it.
        stem
            Name of the learning-curve files in ``samples.report_folder``; default ``model_<R>_seed_<run>``.

        Returns
        -------
        dict
            ``network``, ``hyper_parameters``, ``device``, ``seed``, ``epochs_run``, ``early_stopped``,
            ``best_epoch`` and its ``best_metrics`` (validation loss, oa, kappa, fscore), ``samples_per_class`` and
            ``validation_samples_per_class``, ``validation`` (``"held-out polygons"``, or ``"training samples"``
            when no polygon could be held out), ``streamed`` and ``learning_curves`` (file names).

        Raises
        ------
        InputDataError
            The samples file is missing, unreadable, lacks a feature column, or holds fewer than two classes.
        ConfigError
            The network's output size is not the number of classes, or a setting is wrong.
        """
        torch = _require_torch()
        from iota2.core.scheduler import task_threads
        from iota2.plugins.dl_models import temporal_layout
        from iota2.plugins.dl_samples import SamplesFile, feature_statistics

        settings = {key: self.settings.get(key, default) for key, (default, _) in SETTINGS.items()}
        stem = stem or f"model_{samples.region}_seed_{samples.run}"
        data = SamplesFile(samples.path, samples.label_field, samples.feature_names)
        labels = data.labels()
        classes = np.unique(labels)
        if len(classes) < 2:
            raise InputDataError(f"model of region {samples.region}, run {samples.run}: only class(es) "
                                 f"{classes.tolist()} in {samples.path}; a classifier needs at least two classes: add "
                                 "ground truth of other classes in this region")
        seed = samples.seed if samples.seed is not None else int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        split = split_samples(data, settings, seed)
        train_rows, validation_rows = split.train, split.validation
        validation_kind = "held-out polygons"
        if len(validation_rows) == 0:
            validation_rows, validation_kind = train_rows, "training samples"
            LOGGER.warning("region %s run %d: no polygon could be held out for validation (one polygon per class or "
                           "additional_statistics_percentage 0): epochs are evaluated on the training samples",
                           samples.region, samples.run)
        statistics = feature_statistics(data, train_rows)
        layout = temporal_layout(samples.feature_names, source=str(samples.path))
        device = resolve_device(settings["device"])
        streamed = len(train_rows) * data.n_features * 4 > IN_MEMORY_MAX_BYTES

        previous_threads = torch.get_num_threads()
        try:
            # the CPU kernels of these networks are deterministic for a given number of threads (the same seed
            # gives the same weights, tested); torch.use_deterministic_algorithms is not set: it only concerns
            # CUDA kernels and costs seconds of imports
            torch.set_num_threads(task_threads())
            torch.manual_seed(seed)
            network = self._build(layout, len(classes)).to(device)
            history, best, stopped = self._train(torch, network, data, train_rows, validation_rows, statistics,
                                                 classes, settings, seed, device, streamed)
        finally:
            torch.set_num_threads(previous_threads)
        network.load_state_dict(best["state"])
        network.eval()
        self.network_, self.statistics_, self.device_, self.history_ = network, statistics, device, history
        self.classes_ = classes.astype(np.int64)
        self.feature_names = list(samples.feature_names)
        self._tensors()
        files = write_learning_curves(Path(samples.report_folder), stem, history, best["epoch"])
        train_labels, validation_labels = labels[train_rows], labels[validation_rows]
        LOGGER.info("region %s run %d: %s trained %d epochs on %s (%d samples, %d validation), kept epoch %d",
                    samples.region, samples.run, settings["dl_name"], len(history), device, len(train_rows),
                    len(validation_rows), best["epoch"])
        return {"network": settings["dl_name"], "hyper_parameters": self.hyper_parameters_, "device": str(device),
                "seed": int(seed), "epochs_run": len(history), "early_stopped": stopped,
                "model_selection_criterion": settings["model_selection_criterion"], "best_epoch": best["epoch"],
                "best_metrics": {key: best["row"][f"validation_{key}"] for key in CRITERIA},
                "n_samples": int(len(train_rows)), "n_features": data.n_features,
                "samples_per_class": {int(c): int((train_labels == c).sum()) for c in classes},
                "validation_samples_per_class": {int(c): int((validation_labels == c).sum()) for c in classes},
                "validation": validation_kind, "train_only_classes": split.train_only_classes, "streamed": streamed,
                "learning_curves": [path.name for path in files]}

    def _train(self, torch, network, data, train_rows, validation_rows, statistics, classes, settings, seed, device,
               streamed):
        from iota2.plugins.dl_samples import TorchSamplesDataset

        batch_size = settings["batch_size"]
        # batch normalisation cannot train on a batch of one sample: drop a last batch of one
        train = TorchSamplesDataset(data, train_rows, statistics, classes, batch_size=batch_size, shuffle=True,
                                    seed=seed, drop_last=len(train_rows) % batch_size == 1, in_memory=not streamed)
        validation = TorchSamplesDataset(data, validation_rows, statistics, classes, batch_size=max(batch_size, 4096),
                                         shuffle=False, in_memory=not streamed)
        reference = data.labels()[validation.rows]
        workers = settings["num_workers"]

        def batches(dataset):
            if workers:
                return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
            return dataset

        weight = None
        if settings["weighted_labels"]:
            counts = np.array([(data.labels()[train.rows] == c).sum() for c in classes], dtype=np.float64)
            weight = torch.as_tensor(len(train.rows) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32,
                                     device=device)
        loss_function = torch.nn.CrossEntropyLoss(weight=weight, reduction="sum")

        x, _ = next(iter(validation.iter_numpy()))
        network.eval()
        try:
            with torch.no_grad():
                out = network(torch.from_numpy(x[:8]).to(device))
        except Exception as exc:  # noqa: BLE001 - the user's network: report which one failed
            raise ConfigError(f"{SECTION}.dl_name: network {settings['dl_name']} fails on a batch of "
                              f"{min(8, len(x))} samples of {data.n_features} features ({type(exc).__name__}: "
                              f"{exc}); it must take (batch, n_features) tensors") from exc
        if tuple(out.shape) != (min(8, len(x)), len(classes)):
            raise ConfigError(f"{SECTION}.dl_name: network {settings['dl_name']} returns outputs of shape "
                              f"{tuple(out.shape)} for a batch of {min(8, len(x))} samples of {data.n_features} "
                              f"features; it must return (batch, n_classes) = (batch, {len(classes)}) logits (its "
                              "last layer must have n_classes outputs)")

        optimiser = torch.optim.Adam(network.parameters(), lr=settings["learning_rate"])
        criterion, stop_metric = settings["model_selection_criterion"], settings["early_stop_metric"]
        history, best, stopped = [], {"epoch": 0, "value": None}, False
        stop_best, waited = None, 0
        for epoch in range(1, settings["epochs"] + 1):
            network.train()
            train.set_epoch(epoch)
            total, count = 0.0, 0
            for features, targets in batches(train):
                features, targets = features.to(device), targets.to(device)
                optimiser.zero_grad(set_to_none=True)
                loss = loss_function(network(features), targets)
                (loss / len(targets)).backward()
                optimiser.step()
                total, count = total + float(loss.detach()), count + len(targets)
            row = {"epoch": epoch, "train_loss": total / max(count, 1)}
            row.update(self._evaluate(torch, network, batches(validation), loss_function, reference, classes, device))
            history.append(row)
            value = row[f"validation_{criterion}"]
            if epoch == 1 or _better(criterion, value, best["value"]):
                best = {"epoch": epoch, "value": value if math.isfinite(value) else None, "row": row,
                        "state": {key: tensor.detach().to("cpu", copy=True)
                                  for key, tensor in network.state_dict().items()}}
            LOGGER.info("epoch %d: train loss %.4f, validation loss %.4f, OA %.4f, kappa %.4f, mean F-score %.4f",
                        epoch, row["train_loss"], row["validation_loss"], row["validation_oa"],
                        row["validation_kappa"], row["validation_fscore"])
            if settings["enable_early_stop"]:
                watched = row[f"validation_{stop_metric}"]
                if _better(stop_metric, watched, stop_best, settings["early_stop_tol"]):
                    stop_best, waited = watched, 0
                else:
                    waited += 1
                if epoch >= settings["epoch_to_trigger"] and waited >= settings["early_stop_patience"]:
                    stopped = epoch < settings["epochs"]
                    break
        return history, best, stopped

    @staticmethod
    def _evaluate(torch, network, batches, loss_function, reference, classes, device) -> dict:
        network.eval()
        total, produced = 0.0, []
        with torch.no_grad():
            for features, targets in batches:
                logits = network(features.to(device))
                total += float(loss_function(logits, targets.to(device)))
                produced.append(logits.argmax(dim=1).cpu().numpy())
        produced = classes[np.concatenate(produced)] if produced else np.zeros(0, np.int64)
        found = epoch_metrics(reference, produced, classes)
        return {"validation_loss": total / max(len(reference), 1), "validation_oa": found["oa"],
                "validation_kappa": found["kappa"], "validation_fscore": found["fscore"]}

    # ------------------------------------------------------------------ predict
    def _tensors(self) -> None:
        import torch

        self._mean = torch.as_tensor(self.statistics_.mean, dtype=torch.float32, device=self.device_)
        self._scale = torch.as_tensor(self.statistics_.scale, dtype=torch.float32, device=self.device_)

    def predict_proba(self, features: np.ndarray, threads: int = 1, batch: int | None = None) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))`` float32 (softmax of the network's logits).

        Features are normalised with the training statistics (in float32); NaN or infinite values are then replaced
        by 0, the training mean. Rows go through the network without gradients on the learner's device, ``batch``
        at a time (by default :data:`PREDICT_BATCH` on CPU, :data:`PREDICT_BATCH_GPU` on a GPU); ``threads`` is
        torch's number of CPU threads during the call (restored after).
        """
        if self.network_ is None:
            raise ValueError("predict_proba of a learner that was neither fitted nor loaded")
        import torch

        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (n, {len(self.feature_names)}) features, got shape {features.shape}")
        out = np.empty((len(features), len(self.classes_)), np.float32)
        if batch is None:
            batch = PREDICT_BATCH if torch.device(self.device_).type == "cpu" else PREDICT_BATCH_GPU
        previous = torch.get_num_threads()
        try:
            torch.set_num_threads(max(1, int(threads)))
            with torch.inference_mode():
                for start in range(0, len(features), batch):
                    block = np.ascontiguousarray(features[start:start + batch], dtype=np.float32)
                    x = (torch.from_numpy(block).to(self.device_) - self._mean) / self._scale
                    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
                    out[start:start + len(block)] = torch.softmax(self.network_(x), dim=1).cpu().numpy()
        finally:
            torch.set_num_threads(previous)
        return out

    # ------------------------------------------------------------------ files
    def save(self, folder: Path, stem: str) -> dict[str, str]:
        """Write ``<stem>.pt`` (the ``state_dict``, on CPU) and ``<stem>_dl.json`` (network name, hyper-parameters,
        feature labels, classes, normalisation statistics, and the digest of ``dl_module`` when one is used)."""
        import torch

        if self.network_ is None:
            raise ValueError("save of a learner that was neither fitted nor loaded")
        folder = Path(folder)
        files = {}
        weights = folder / f"{stem}.pt"
        with atomic_output(weights) as tmp:
            torch.save({key: tensor.detach().cpu() for key, tensor in self.network_.state_dict().items()}, tmp)
            files[weights.name] = file_digest(tmp)
        module = self.settings.get("dl_module")
        description = {"format": MODEL_FORMAT, "version": 1, "dl_name": self.settings["dl_name"],
                       "hyper_parameters": self.hyper_parameters_, "feature_names": list(self.feature_names),
                       "classes": [int(c) for c in self.classes_],
                       "statistics": {"count": int(self.statistics_.count),
                                      "mean": [float(v) for v in self.statistics_.mean],
                                      "std": [float(v) for v in self.statistics_.std]},
                       "dl_module": module, "dl_module_sha256": file_digest(Path(module)) if module else None}
        target = folder / f"{stem}_dl.json"
        with atomic_output(target) as tmp:
            tmp.write_text(json.dumps(description, indent=1), encoding="utf-8")
            files[target.name] = file_digest(tmp)
        return files

    @classmethod
    def load(cls, folder: Path, stem: str, summary: dict) -> DeepLearningLearner:
        """Rebuild the network from ``<stem>_dl.json`` and read its weights from ``<stem>.pt``
        (``torch.load(weights_only=True)``), on the device of the ``device`` setting.

        Raises
        ------
        InputDataError
            A file is missing, modified after training (digest of the summary), unreadable, or its weights do not
            fit the network (e.g. ``dl_module`` edited since training); the message names the file.
        """
        torch = _require_torch()
        from iota2.plugins.dl_models import temporal_layout
        from iota2.plugins.dl_samples import FeatureStatistics

        folder = Path(folder)
        weights, description_path = folder / f"{stem}.pt", folder / f"{stem}_dl.json"
        for path in (weights, description_path):
            check_file(path, summary)
        learner = cls(summary.get("settings") or {})
        try:
            description = json.loads(description_path.read_text(encoding="utf-8"))
            if description.get("format") != MODEL_FORMAT:
                raise ValueError(f"format is {description.get('format')!r}, not {MODEL_FORMAT!r}")
            names = [str(name) for name in description["feature_names"]]
            classes = np.asarray(description["classes"], dtype=np.int64)
            stats = description["statistics"]
            statistics = FeatureStatistics(names, np.asarray(stats["mean"], np.float64),
                                           np.asarray(stats["std"], np.float64), int(stats["count"]))
            if not len(names) == len(statistics.mean) == len(statistics.std) or len(classes) < 2:
                raise ValueError("feature_names and statistics differ in length, or fewer than two classes")
            learner.settings.setdefault("dl_name", description["dl_name"])
            learner.settings.setdefault("dl_module", description.get("dl_module"))
            learner.settings["dl_parameters"] = dict(description["hyper_parameters"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise refuse_model(description_path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
        layout = temporal_layout(names, source=str(description_path))
        network = learner._build(layout, len(classes))
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            network.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad or mismatched file
            raise refuse_model(weights, f"does not hold the weights of {description['dl_name']} with these "
                                        f"hyper-parameters ({type(exc).__name__}: {str(exc)[:300]}); if dl_module was "
                                        "edited since training, restore it") from exc
        learner.device_ = resolve_device(learner.settings.get("device", "auto"))
        learner.network_ = network.to(learner.device_).eval()
        learner.statistics_, learner.classes_, learner.feature_names = statistics, classes, names
        learner._tensors()
        return learner


@hookimpl
def iota2_register_learners():
    """The deep-learning learner."""
    return {"deep_learning": DeepLearningLearner}
