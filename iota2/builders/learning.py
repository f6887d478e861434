"""Learning task: one model per (region, run) from its samples file, with the configured learner.

The builder turns ``scikit_models_parameters`` and ``arg_train.random_seed`` into a small learner description
once (:func:`learner_from_config`); the task receives it, not the configuration.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from iota2.builders.learner_settings import (DEFAULT_MODEL, FRAMEWORK_KEYS, accepted_keywords,  # noqa: F401
                                             check_estimator_settings, estimator_settings)
from iota2.builders.samples import read_samples
from iota2.builders.sampling import LEARNING_STREAM, run_seed
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.plugins import classifiers
from iota2.core.raster import atomic_output
from iota2.core.scheduler import task_threads
from iota2.core.tree_ensemble import CompiledForest

LOGGER = logging.getLogger(__name__)


def model_path(output_path, region: str, run: int) -> Path:
    """``model/model_<R>_seed_<S>.skops``: the fitted learner (skops format: loading it runs no code); see
    :meth:`iota2.core.layout.OutputLayout.model`."""
    return OutputLayout(output_path).model(region, run)


def forest_path(path: Path) -> Path:
    """``model_<R>_seed_<S>_forest.npz`` next to the model: the node arrays of a tree ensemble, what the
    classification loads (no scikit-learn object to rebuild)."""
    return OutputLayout.forest_of(path)


def summary_path(path: Path) -> Path:
    """``model_<R>_seed_<S>.json``: the readable summary, which also records the digests of the model files."""
    return OutputLayout.summary_of(path)


BUILTIN_TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)
"""Types, besides those skops trusts by default (scikit-learn estimators, numpy, scipy, builtins), that the fitted
built-in learners hold."""


def trusted_types() -> frozenset[str]:
    """Types a model file may hold: :data:`BUILTIN_TRUSTED_TYPES`, every registered learner class, and the types a
    learner plugin lists in a ``trusted_types`` attribute of what it registers."""
    names = set(BUILTIN_TRUSTED_TYPES)
    for factory in classifiers().values():
        names.update(getattr(factory, "trusted_types", ()) or ())
        if inspect.isclass(factory):
            names.add(f"{factory.__module__}.{factory.__qualname__}")
    return frozenset(names)


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def learner_from_config(config) -> dict:
    """The learner description a learning task receives, from ``scikit_models_parameters`` and
    ``arg_train.random_seed``.

    Parameters
    ----------
    config
        The validated configuration.

    Returns
    -------
    dict
        ``model_type`` (a registered classifier), ``keywords`` (its keyword arguments: ``keyword_arguments``
        and the section's other keys), ``standardization``, the grid search settings
        ``cross_validation_parameters`` (``{}``: no search), ``cross_validation_folds`` and
        ``cross_validation_grouped``, and ``random_seed``.

    Raises
    ------
    ConfigError
        For an unknown ``model_type`` (see :func:`iota2.builders.learner_settings.estimator_settings`).
    """
    section = config["scikit_models_parameters"]
    name, keywords = estimator_settings(config)
    return {"model_type": name, "keywords": keywords, "standardization": bool(section["standardization"]),
            "cross_validation_parameters": dict(section.get("cross_validation_parameters") or {}),
            "cross_validation_folds": section["cross_validation_folds"],
            "cross_validation_grouped": bool(section["cross_validation_grouped"]),
            "random_seed": config["arg_train"]["random_seed"]}


def learning_seed(seed: int | None, run: int, region: str = "") -> int | None:
    """The learner's ``random_state`` of one model: drawn from the stream of (``seed``, run, region), so
    no two runs or models share one; None (a fresh seed) when ``seed`` (``arg_train.random_seed``) is None."""
    if seed is None:
        return None
    return int(np.random.default_rng(run_seed(seed, run, LEARNING_STREAM, region)).integers(2**31 - 1))


def build_estimator(learner: dict, run: int, region: str = ""):
    """An unfitted estimator (a pipeline with a scaler when ``standardization`` is set) of a
    :func:`learner_from_config` description."""
    factory = classifiers()[learner["model_type"]]
    params = dict(learner["keywords"])
    accepted = accepted_keywords(factory)
    if accepted is not None:
        if "random_state" in accepted and "random_state" not in params:
            params["random_state"] = learning_seed(learner["random_seed"], run, region)
        if "n_jobs" in accepted and "n_jobs" not in params:
            params["n_jobs"] = task_threads()
    estimator = factory(**params)
    if learner["standardization"]:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = make_pipeline(StandardScaler(), estimator)
    return estimator


def train_model(region: str, run: int, output_path: str, learner: dict, data_field: str,
                samples_format: str = "sqlite") -> None:
    """Fit the model of ``region`` and ``run``; write ``model/model_<R>_seed_<S>.skops`` (+ ``_forest.npz`` for
    tree ensembles, + ``.json`` summary with the files' digests).

    Parameters
    ----------
    region, run
        The model's region and run.
    output_path
        ``chain.output_path``.
    learner
        The learner (:func:`learner_from_config`).
    data_field
        ``chain.data_field``: the class column of the samples file.
    samples_format
        ``arg_train.samples_format``: ``"sqlite"`` or ``"parquet"``.
    """
    layout = OutputLayout(output_path)
    field = data_field.lower()
    path = layout.samples(region, run, samples_format)
    table, feature_names = read_samples(path, field)
    labels = table[field].to_numpy(np.int64)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise InputDataError(f"model of region {region}, run {run}: only class(es) {classes.tolist()} in {path}; a "
                             "classifier needs at least two classes: add ground truth of other classes in this region")
    features = table[feature_names].to_numpy(np.float32)
    estimator = build_estimator(learner, run, region)
    grid = learner["cross_validation_parameters"]
    report = {}
    if grid:
        from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

        if learner["cross_validation_grouped"]:
            folds = GroupKFold(n_splits=learner["cross_validation_folds"])
        else:
            folds = StratifiedKFold(n_splits=learner["cross_validation_folds"], shuffle=True,
                                    random_state=learning_seed(learner["random_seed"], run, region))
        prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
        search = GridSearchCV(estimator, {prefix + k: v for k, v in grid.items()}, cv=folds, refit=True)
        search.fit(features, labels, groups=table["originfid"].to_numpy() if learner["cross_validation_grouped"]
                   else None)
        estimator = search.best_estimator_
        report = {"best_params": {k[len(prefix):]: v for k, v in search.best_params_.items()},
                  "best_score": float(search.best_score_),
                  "mean_test_score": [float(v) for v in search.cv_results_["mean_test_score"]],
                  "params": [{k[len(prefix):]: v for k, v in p.items()} for p in search.cv_results_["params"]]}
        _write_text(layout.cross_validation(region, run), json.dumps(report, indent=2, default=str))
    else:
        estimator.fit(features, labels)
    save_model(layout.model(region, run),
               {"estimator": estimator, "feature_names": feature_names, "classes": classes.tolist(), "region": region,
                "run": run},
               {"learner": type(estimator).__name__, "classes": classes.tolist(), "n_samples": int(len(labels)),
                "n_features": len(feature_names), "samples_per_class": pd.Series(labels).value_counts().sort_index()
                .to_dict(), **report})
    LOGGER.info("region %s run %d: %s fitted on %d samples x %d features", region, run, type(estimator).__name__,
                len(labels), len(feature_names))


def save_model(target: Path, model: dict, summary: dict | None = None) -> None:
    """Write ``model`` (estimator, feature names, classes, region, run) with skops to ``target``, for a tree
    ensemble its node arrays to :func:`forest_path`, and last the :func:`summary_path` JSON: ``summary``, the
    feature names, classes, region, run and ``files``, the sha256 of each file written."""
    target = Path(target)
    files = _save_files(target, model)
    _write_text(summary_path(target), json.dumps(
        {**(summary or {}), "feature_names": list(model["feature_names"]), "classes": list(model["classes"]),
         "region": model.get("region"), "run": model.get("run"), "files": files}, indent=2, default=str))


def _save_files(target: Path, model: dict) -> dict[str, str]:
    import skops.io

    forest = CompiledForest.from_estimator(model["estimator"], need_kernel=False)
    files = {}
    with atomic_output(target) as tmp:
        skops.io.dump(model, tmp)
        files[target.name] = _digest(tmp)
    npz = forest_path(target)
    arrays = forest.arrays() if forest is not None else None
    if arrays is None:
        npz.unlink(missing_ok=True)
        return files
    with atomic_output(npz) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        files[npz.name] = _digest(tmp)
    return files


class LoadedModel(dict):
    """A model as the classification uses it: ``feature_names``, ``classes``, ``region``, ``run``, ``forest`` (a
    :class:`CompiledForest` or None) and ``estimator``, read from the skops file only when first asked for (a
    tree ensemble is applied from its node arrays)."""

    def __init__(self, path: Path, summary: dict, forest: CompiledForest | None):
        super().__init__(feature_names=list(summary["feature_names"]), classes=list(summary["classes"]),
                         region=summary.get("region"), run=summary.get("run"), forest=forest)
        self.path = path
        self.digests = summary["files"]

    def __missing__(self, key):
        if key != "estimator":
            raise KeyError(key)
        self["estimator"] = _load_estimator(self.path, self.digests)
        return self["estimator"]


def _refuse(path: Path, why: str) -> InputDataError:
    return InputDataError(f"model {path} {why}; run the 'learning' group again (chain.first_step: learning) to "
                          "rewrite it")


def _check_digest(path: Path, digests: dict, summary: Path) -> None:
    if not path.exists():
        raise _refuse(path, "is missing")
    if digests.get(path.name) != _digest(path):
        raise _refuse(path, f"was modified after training (its digest differs from the one recorded in {summary})")


def _load_estimator(path: Path, digests: dict):
    import skops.io

    _check_digest(path, digests, summary_path(path))
    try:
        found = skops.io.get_untrusted_types(file=path)
        untrusted = sorted(set(found) - trusted_types())
        if untrusted:
            raise _refuse(path, f"holds types no installed learner declares ({', '.join(untrusted)}); it was not "
                                "loaded")
        model = skops.io.load(path, trusted=found)
    except InputDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - not a skops file, or from an incompatible version
        raise _refuse(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, dict) or "estimator" not in model:
        raise _refuse(path, "is not an iota2 model")
    return model["estimator"]


def load_model(path: Path) -> LoadedModel:
    """Load a model; kept in memory per process (keyed by the files' paths, sizes and modification times) so the
    chunks a worker classifies do not each read the same forest.

    Nothing in the files is executed: the skops file is read with the types of :func:`trusted_types` only, the
    forest's arrays without pickle, and both must have the digests recorded at training in the ``.json`` summary.

    Raises
    ------
    InputDataError
        A file is missing, modified after training, unreadable or holds untrusted types; the message names it and
        says to run the learning step again.
    """
    path = Path(path)
    keys = []
    for file in (path, summary_path(path), forest_path(path)):
        try:
            stat = file.stat()
            keys.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            keys.append(None)
    return _load_model(str(path), tuple(keys))


@functools.lru_cache(maxsize=8)
def _load_model(path: str, keys: tuple) -> LoadedModel:
    path = Path(path)
    if keys[0] is None:
        raise _refuse(path, "does not exist")
    try:
        summary = json.loads(summary_path(path).read_text(encoding="utf-8"))
        digests = summary["files"]
        summary["feature_names"], summary["classes"]  # noqa: B018 - required keys
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _refuse(path, f"has no readable summary with its digests ({summary_path(path)}: "
                            f"{type(exc).__name__}: {exc})") from exc
    if path.name not in digests:
        raise _refuse(path, f"is not listed in {summary_path(path)}")
    forest = None
    npz = forest_path(path)
    if npz.name in digests:
        _check_digest(npz, digests, summary_path(path))
        try:
            forest = CompiledForest.load(npz)
        except (OSError, ValueError, KeyError) as exc:
            raise _refuse(npz, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    model = LoadedModel(path, summary, forest)
    if forest is None:
        model["estimator"]  # noqa: B018 - read now: every pixel needs it
    return model


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
