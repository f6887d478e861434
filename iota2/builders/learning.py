"""Learning task: one model per (region, run) from its samples file, with the learner the configuration selects.

The builder picks the learner (:func:`iota2.core.learner.select_learner`) and turns its configuration section into
settings once (:func:`learner_from_config`); the task receives the learner's name and settings, not the
configuration, fits the learner (:class:`iota2.core.learner.Learner`) and writes its files and summary
(:func:`iota2.core.learner.save_model`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from iota2.builders.learner_settings import (DEFAULT_MODEL, FRAMEWORK_KEYS, accepted_keywords,  # noqa: F401
                                             check_estimator_settings, estimator_settings)
from iota2.builders.sampling import LEARNING_STREAM, run_seed
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.learner import LearningSamples, learners, load_model, save_model, select_learner  # noqa: F401
from iota2.core.learner import summary_path as _summary_path

LOGGER = logging.getLogger(__name__)

NON_FEATURE_COLUMNS = ("region", "originfid", "tile_o", "x", "y", "geometry")
"""Columns of a samples file that are not features, besides the class field."""


def model_path(output_path, region: str, run: int) -> Path:
    """``model/model_<R>_seed_<S>.skops``: names the model of (region, run) (its folder and stem; a learner writes
    its own extensions); see :meth:`iota2.core.layout.OutputLayout.model`."""
    return OutputLayout(output_path).model(region, run)


def forest_path(path: Path) -> Path:
    """``model_<R>_seed_<S>_forest.npz`` next to the model: the node arrays of a tree ensemble."""
    return OutputLayout.forest_of(path)


def summary_path(path: Path) -> Path:
    """``model_<R>_seed_<S>.json``: the readable summary, which also records the digests of the model files."""
    return _summary_path(path)


def learner_from_config(config) -> tuple[str, dict]:
    """The learner the configuration selects and the settings its learning tasks receive.

    Parameters
    ----------
    config
        The validated configuration.

    Returns
    -------
    tuple
        The learner's registry name and its settings (:meth:`iota2.core.learner.Learner.settings_from_config`).

    Raises
    ------
    ConfigError
        Several learners are selected, or a setting is wrong (e.g. an unknown ``model_type``).
    """
    learner_class = select_learner(config)
    return learner_class.name, learner_class.settings_from_config(config)


def learning_seed(seed: int | None, run: int, region: str = "") -> int | None:
    """The learner's seed of one model: drawn from the stream of (``seed``, run, region), so no two runs or models
    share one; None (a fresh seed) when ``seed`` (``arg_train.random_seed``) is None."""
    if seed is None:
        return None
    return int(np.random.default_rng(run_seed(seed, run, LEARNING_STREAM, region)).integers(2**31 - 1))


def samples_feature_names(path: Path, label_field: str) -> list[str]:
    """Feature columns of a samples file, in file order, read from its schema (not its rows)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"samples file {path} does not exist; run the 'sampling' group again "
                             "(chain.first_step: sampling)")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = pq.read_schema(path).names
    else:
        import pyogrio

        columns = list(pyogrio.read_info(path)["fields"])
    reserved = {label_field.lower(), *NON_FEATURE_COLUMNS}
    return [c for c in columns if c not in reserved and not c.startswith("__")]


def train_model(region: str, run: int, output_path: str, learner_name: str, settings: dict, data_field: str,
                samples_format: str = "sqlite", random_seed: int | None = None) -> None:
    """Fit the model of ``region`` and ``run`` and write it to ``model/`` (for the scikit-learn learner
    ``model_<R>_seed_<S>.skops`` + ``_forest.npz`` for tree ensembles) with its ``.json`` summary.

    Parameters
    ----------
    region, run
        The model's region and run.
    output_path
        ``chain.output_path``.
    learner_name, settings
        The learner (:func:`learner_from_config`).
    data_field
        ``chain.data_field``: the class column of the samples file.
    samples_format
        ``arg_train.samples_format``: ``"sqlite"`` or ``"parquet"``.
    random_seed
        ``arg_train.random_seed``; the model's seed is :func:`learning_seed` of it.
    """
    layout = OutputLayout(output_path)
    registry = learners()
    if learner_name not in registry:
        raise InputDataError(f"learner {learner_name!r} is not installed in this environment (installed: "
                             f"{', '.join(sorted(registry))}); install its plugin where the tasks run")
    field = data_field.lower()
    path = layout.samples(region, run, samples_format)
    samples = LearningSamples(path=path, samples_format=samples_format, label_field=field,
                              feature_names=samples_feature_names(path, field), region=region, run=run,
                              seed=learning_seed(random_seed, run, region), report_folder=layout.models)
    learner = registry[learner_name](settings)
    report = learner.fit(samples)
    save_model(layout.model(region, run), learner, {**(report or {}), "region": region, "run": run})
    LOGGER.info("region %s run %d: learner %s fitted", region, run, learner_name)
