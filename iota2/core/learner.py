"""The learner protocol: what the chain asks of any learner (scikit-learn estimators, torch networks ...).

A learner is a class registered by a plugin (hook ``iota2_register_learners``, see :func:`learners`). The
classification builder

1. picks the learner the configuration selects (:func:`select_learner`) and turns its configuration section into
   small JSON-able settings once (:meth:`Learner.settings_from_config`), which the learning tasks receive;
2. in each learning task, builds the learner from the settings, fits it from the samples file of one (region, run)
   (:class:`LearningSamples`) and writes its files and a ``.json`` summary next to them (:func:`save_model`);
3. in each classification task, loads the model (:func:`load_model`, which dispatches on the learner's name written
   in the summary) and applies :meth:`Learner.predict_proba` to blocks of feature rows.

The core knows no learner library: this module and the whole of :mod:`iota2.core` import neither scikit-learn nor
torch; learners live in plugins (:mod:`iota2.plugins.sklearn_learner` for the built-in one).
:func:`iota2.core.learner_checks.check_learner` tests a learner against this contract.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import atomic_output


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one fit or prediction of a learner uses, declared to the scheduler.

    Attributes
    ----------
    threads
        CPU threads a fit / predict uses (the scheduler gives a learning task at most its share of the cores).
    memory_mb
        Memory a fit needs, when the learner can tell (None: unknown); informative.
    gpu
        The learner would use a GPU if one is available (on a cluster whose workers declare one, the task is sent
        to such a worker).
    """

    threads: int = 1
    memory_mb: int | None = None
    gpu: bool = False


@dataclasses.dataclass(frozen=True)
class LearningSamples:
    """The samples a learner is fitted on: one file of the (region, run) and how to read it.

    Attributes
    ----------
    path
        ``learningSamples/Samples_region_<R>_seed<S>_learn.<sqlite|parquet>``
        (:meth:`iota2.core.layout.OutputLayout.samples`).
    samples_format
        ``"sqlite"`` or ``"parquet"``.
    label_field
        The lower-case class column (``chain.data_field``).
    feature_names
        Feature columns, in the order :meth:`Learner.predict_proba` will receive them.
    region, run
        The model's region and run.
    seed
        The model's seed, already derived per region and run (:func:`iota2.builders.learning.learning_seed`); None
        for a fresh one.
    report_folder
        Where a learner may write reports (learning curves, cross-validation results), e.g. ``model/``.
    """

    path: Path
    samples_format: str
    label_field: str
    feature_names: list[str]
    region: str
    run: int
    seed: int | None
    report_folder: Path


class Learner:
    """Base class of learners; subclasses override what they do.

    Class attributes
    ----------------
    name
        Registry name (the key under which the plugin registers the class), written in the model summary.
    default
        The learner used when no registered learner's :meth:`selected_by` is true (the scikit-learn learner).

    Fitted state (after :meth:`fit` or :meth:`load`)
    ------------------------------------------------
    classes_
        Sorted int64 labels; the columns of :meth:`predict_proba`.
    feature_names
        The feature names the model was fitted on, in column order.
    """

    name: ClassVar[str] = ""
    default: ClassVar[bool] = False

    classes_: np.ndarray
    feature_names: list[str]

    @classmethod
    def selected_by(cls, config) -> bool:
        """Whether the configuration selects this learner (a deep-learning learner: ``arg_train.
        deep_learning_parameters`` is set). The default learner answers False."""
        return False

    @classmethod
    def settings_from_config(cls, config) -> dict:
        """The small JSON-able settings a learning task receives, from the learner's configuration section.

        Raises
        ------
        ConfigError
            For a bad setting, naming the key; without importing the learner's library.
        """
        return {}

    @classmethod
    def gpu_available(cls) -> bool:
        """Whether this machine has a GPU the learner can use (a torch learner: ``torch.cuda.is_available()``).
        Asked only when a run's learner requests a GPU (:func:`local_worker_resources`). False by default."""
        return False

    @classmethod
    def warm_up(cls) -> None:
        """Called once by each dask worker at start (:mod:`iota2.core.worker_preload`): import libraries, compile
        kernels, so the first task does not wait. Does nothing by default."""

    def __init__(self, settings: dict):
        self.settings = dict(settings or {})
        self.classes_ = np.zeros(0, np.int64)
        self.feature_names = []

    def resources(self) -> Resources:
        """Threads, memory and GPU a fit or prediction uses (:class:`Resources`)."""
        return Resources()

    def fit(self, samples: LearningSamples) -> dict:
        """Fit from the samples file; set :attr:`classes_` and :attr:`feature_names`.

        Returns
        -------
        dict
            A JSON-able report for the model summary (samples per class, best parameters ...).
        """
        raise NotImplementedError

    def predict_proba(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Class probabilities of feature rows.

        Parameters
        ----------
        features
            float32 array ``(n, len(feature_names))``; may hold NaN or infinite values.
        threads
            CPU threads the call may use.

        Returns
        -------
        numpy.ndarray
            ``(n, len(classes_))`` float32 or float64, columns in :attr:`classes_` order, rows summing to 1.
        """
        raise NotImplementedError

    def save(self, folder: Path, stem: str) -> dict[str, str]:
        """Write the fitted model into ``folder`` as ``<stem>.<ext>`` (or ``<stem>_<part>.<ext>``) files, each
        atomically (:func:`iota2.core.raster.atomic_output`).

        Returns
        -------
        dict
            ``{file name: sha256}`` of every file written (see :func:`file_digest`).
        """
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, stem: str, summary: dict) -> Learner:
        """Read a model written by :meth:`save`.

        ``summary`` is the model's summary (:func:`save_model`): ``files`` holds the digests to check (see
        :func:`check_file`), ``feature_names`` and ``classes``. Files modified after training, or holding what
        the learner does not trust, are refused with an :class:`InputDataError` naming the file and how to fix
        it (:func:`refuse_model`). Nothing a file holds may run code.
        """
        raise NotImplementedError


# ---------------------------------------------------------------------- registry and selection
def learners() -> dict[str, type[Learner]]:
    """``{name: learner class}`` of every registered learner (see :func:`iota2.core.plugins.learners`)."""
    from iota2.core.plugins import learners as registered

    return registered()


def select_learner(config) -> type[Learner]:
    """The learner the configuration selects: the one whose :meth:`Learner.selected_by` is true, else the default
    learner.

    Raises
    ------
    ConfigError
        Two learners are selected, or none is and no learner is the default.
    """
    registry = learners()
    selected = [cls for _, cls in sorted(registry.items()) if cls.selected_by(config)]
    if len(selected) > 1:
        raise ConfigError(f"the configuration selects several learners ({', '.join(c.name for c in selected)}); "
                          "keep the section of one of them (e.g. remove arg_train.deep_learning_parameters to use "
                          "scikit_models_parameters)")
    if selected:
        return selected[0]
    defaults = [cls for _, cls in sorted(registry.items()) if cls.default]
    if not defaults:
        raise ConfigError("no learner is selected by the configuration and no default learner is installed "
                          f"(registered: {', '.join(sorted(registry)) or 'none'}); reinstall iota2")
    return defaults[0]


# ---------------------------------------------------------------------- resources for the scheduler
GPU_RESOURCE = "GPU"
"""Name of the dask worker resource a GPU is declared as (``dask worker --resources GPU=1``)."""


def task_threads_of(resources: Resources | None, share: int | None) -> int | None:
    """Threads a task runs with: the scheduler's share of the cores (``share``; None where cluster jobs keep their
    own setting), at most the ``threads`` its learner declares (a single-threaded learner does not hold cores)."""
    if share is None or resources is None:
        return share
    return max(1, min(share, int(resources.threads)))


def dask_resources(resources: Resources | None, worker_resources: dict | None) -> dict | None:
    """The ``resources=`` of a dask submit: ``{"GPU": 1}`` when the task's learner would use a GPU and the
    cluster's workers declare one (a worker then runs one such task at a time), else None (the task runs on any
    worker, on its CPU)."""
    if resources is not None and resources.gpu and (worker_resources or {}).get(GPU_RESOURCE):
        return {GPU_RESOURCE: 1}
    return None


def local_worker_resources(learner_class: type[Learner] | None, settings: dict | None = None) -> dict | None:
    """The resources the workers of a local cluster declare: ``{"GPU": 1}`` when the run's learner asks for a GPU
    and reports one on this machine (:meth:`Learner.gpu_available`), else None. Every local worker declares it:
    they share the machine's GPU, one GPU task per worker at a time."""
    if learner_class is None or not learner_class(settings or {}).resources().gpu:
        return None
    return {GPU_RESOURCE: 1} if learner_class.gpu_available() else None


# ---------------------------------------------------------------------- model files
def file_digest(path: Path) -> str:
    """sha256 of a file, hexadecimal."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def summary_path(model_path: Path) -> Path:
    """``<stem>.json`` next to a model path ``<stem>.<ext>`` (:meth:`iota2.core.layout.OutputLayout.summary_of`)."""
    from iota2.core.layout import OutputLayout

    return OutputLayout.summary_of(model_path)


def refuse_model(path: Path, why: str) -> InputDataError:
    """The error for a model file that cannot be used: names it and says to run the learning step again."""
    return InputDataError(f"model {path} {why}; run the 'learning' group again (chain.first_step: learning) to "
                          "rewrite it")


def check_file(path: Path, summary: dict) -> None:
    """Refuse ``path`` when it is missing, or its digest differs from the one in ``summary["files"]``."""
    path = Path(path)
    if not path.exists():
        raise refuse_model(path, "is missing")
    if (summary.get("files") or {}).get(path.name) != file_digest(path):
        raise refuse_model(path, f"was modified after training (its digest differs from the one recorded in "
                                 f"{summary_path(path)})")


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_model(model_path: Path, learner: Learner, summary: dict | None = None) -> Path:
    """Write a fitted learner: its files (:meth:`Learner.save` into ``model_path``'s folder with its stem), then
    the ``.json`` summary (:func:`summary_path`), last, so a model whose summary exists is complete.

    Parameters
    ----------
    model_path
        :meth:`iota2.core.layout.OutputLayout.model` of the (region, run): ``model/model_<R>_seed_<S>.skops``; its
        folder and stem name the files (a learner writes its own extensions).
    learner
        The fitted learner.
    summary
        What else the summary records (``region``, ``run``, the fit's report).

    Returns
    -------
    Path
        The summary file. It holds ``learner`` (the registry name), ``settings``, ``files`` (``{name: sha256}``),
        ``feature_names``, ``classes``, ``region`` and ``run`` besides ``summary``.
    """
    model_path = Path(model_path)
    summary = dict(summary or {})
    files = learner.save(model_path.parent, model_path.stem)
    summary.update({"learner": learner.name, "settings": learner.settings, "feature_names": list(learner.feature_names),
                    "classes": [int(c) for c in learner.classes_], "region": summary.get("region"),
                    "run": summary.get("run"), "files": dict(files)})
    target = summary_path(model_path)
    write_text(target, json.dumps(summary, indent=2, default=str))
    return target


def read_summary(model_path: Path) -> dict:
    """The summary of a model, checked for the keys every learner writes.

    Raises
    ------
    InputDataError
        No summary, or one that is not readable.
    """
    model_path = Path(model_path)
    target = summary_path(model_path)
    if not target.exists() and not model_path.exists():
        raise refuse_model(model_path, "does not exist")
    try:
        summary = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(summary, dict) or not isinstance(summary["files"], dict):
            raise TypeError("not a model summary")
        summary["feature_names"], summary["classes"]  # noqa: B018 - required keys
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise refuse_model(model_path, f"has no readable summary with its digests ({target}: "
                                       f"{type(exc).__name__}: {exc})") from exc
    return summary


def load_model(model_path: Path) -> Learner:
    """Load the model of ``model_path`` (:meth:`iota2.core.layout.OutputLayout.model`) with the learner named in its
    summary; kept in memory per process (keyed by the sizes and modification times of the summary and of the files
    it lists), so the chunks a worker classifies do not each read the same model.

    A summary without ``learner`` is a scikit-learn model of a version that did not name learners: the default
    learner reads it.

    Raises
    ------
    InputDataError
        The summary or a file is missing, modified after training, unreadable, holds untrusted content, or was
        written by a learner that is not installed; the message names the file and the fix.
    """
    model_path = Path(model_path)
    summary = read_summary(model_path)
    keys = []
    for name in sorted(summary["files"]) + [summary_path(model_path).name]:
        try:
            stat = (model_path.parent / name).stat()
            keys.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:
            keys.append((name, None))
    return _load_model(str(model_path), tuple(keys))


@functools.lru_cache(maxsize=8)
def _load_model(model_path: str, keys: tuple) -> Learner:
    model_path = Path(model_path)
    summary = read_summary(model_path)
    registry = learners()
    name = summary.get("learner")
    if name is None:
        defaults = [cls for cls in registry.values() if cls.default]
        if not defaults:
            raise refuse_model(model_path, "names no learner and no default learner is installed")
        cls = defaults[0]
    elif name in registry:
        cls = registry[name]
    else:
        raise InputDataError(f"model {model_path} was written by the learner {name!r}, which is not installed "
                             f"(installed: {', '.join(sorted(registry))}); install the plugin that provides it, or run "
                             "the 'learning' group again (chain.first_step: learning) with an installed learner")
    return cls.load(model_path.parent, model_path.stem, summary)


load_model.cache_clear = _load_model.cache_clear  # type: ignore[attr-defined]
