"""The scikit-learn learner (``sklearn``), the default learner: one estimator of ``scikit_models_parameters``.

``model_type`` names a registered scikit-learn model type (hook ``iota2_register_classifiers``,
:mod:`iota2.plugins.classifiers`), the section's other keys are its keywords; ``standardization`` puts a
``StandardScaler`` before it and ``cross_validation_parameters`` runs a grid search (``GridSearchCV``, folds
stratified or grouped by polygon) whose best estimator is kept.

Files of a model ``model/model_<R>_seed_<S>``: ``.skops`` (the estimator, read with an explicit list of trusted
types: loading it runs no code), for random forests, extra trees and decision trees ``_forest.npz`` (the node
arrays of the compiled kernel, :mod:`iota2.plugins.tree_ensemble`, what the classification applies), and the
grid-search results ``_cross_val_param.cv``. scikit-learn and skops are imported only when a model is fitted or
read: listing the learners and checking a configuration do not pay for them.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import logging
import os
from pathlib import Path

import numpy as np

from iota2.core.errors import InputDataError
from iota2.core.learner import Learner, LearningSamples, Resources, check_file, file_digest, refuse_model, write_text
from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)

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
built-in model types hold."""

PREDICT_BATCH = 65_536
"""Rows per call of an estimator's own ``predict_proba`` (small enough to stay cache-friendly for tree ensembles)."""


def trusted_types() -> frozenset[str]:
    """Types a model file may hold: :data:`BUILTIN_TRUSTED_TYPES`, every registered model-type class, and the types a
    model-type plugin lists in a ``trusted_types`` attribute of what it registers."""
    from iota2.core.plugins import classifiers

    names = set(BUILTIN_TRUSTED_TYPES)
    for factory in classifiers().values():
        names.update(getattr(factory, "trusted_types", ()) or ())
        if inspect.isclass(factory):
            names.add(f"{factory.__module__}.{factory.__qualname__}")
    return frozenset(names)


def build_estimator(settings: dict, seed: int | None = None, threads: int = 1):
    """An unfitted estimator (a pipeline with a scaler when ``standardization`` is set) of the settings of
    :meth:`SklearnLearner.settings_from_config`; ``random_state`` defaults to ``seed`` and ``n_jobs`` to
    ``threads`` where the estimator accepts them."""
    from iota2.builders.learner_settings import accepted_keywords
    from iota2.core.plugins import classifiers

    factory = classifiers()[settings["model_type"]]
    params = dict(settings.get("keywords") or {})
    accepted = accepted_keywords(factory)
    if accepted is not None:
        if "random_state" in accepted and "random_state" not in params:
            params["random_state"] = seed
        if "n_jobs" in accepted and "n_jobs" not in params:
            params["n_jobs"] = threads
    estimator = factory(**params)
    if settings.get("standardization"):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = make_pipeline(StandardScaler(), estimator)
    return estimator


def _single_threaded(estimator) -> None:
    target = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(target, "n_jobs"):
        target.n_jobs = 1


class SklearnLearner(Learner):
    """A scikit-learn estimator (``scikit_models_parameters``), the default learner.

    Parameters
    ----------
    settings
        :meth:`settings_from_config`: ``model_type``, ``keywords``, ``standardization``,
        ``cross_validation_parameters`` (``{}``: no grid search), ``cross_validation_folds``,
        ``cross_validation_grouped``.

    Attributes
    ----------
    estimator_
        The fitted estimator; after :meth:`load`, read from the ``.skops`` file only when first needed (a tree
        ensemble is applied from its node arrays).
    forest_
        The compiled forest (:class:`iota2.plugins.tree_ensemble.CompiledForest`) or None.
    """

    name = "sklearn"
    default = True

    def __init__(self, settings: dict):
        super().__init__(settings)
        self._estimator = None
        self._estimator_file: Path | None = None
        self._summary: dict = {}
        self.forest_ = None

    # ------------------------------------------------------------------ configuration
    @classmethod
    def settings_from_config(cls, config) -> dict:
        """The settings of ``scikit_models_parameters``, checked (model type, keywords, grid) without importing
        scikit-learn."""
        from iota2.builders.learner_settings import check_estimator_settings

        section = config["scikit_models_parameters"]
        name, keywords, _ = check_estimator_settings(config)
        return {"model_type": name, "keywords": keywords, "standardization": bool(section["standardization"]),
                "cross_validation_parameters": dict(section.get("cross_validation_parameters") or {}),
                "cross_validation_folds": section["cross_validation_folds"],
                "cross_validation_grouped": bool(section["cross_validation_grouped"])}

    @classmethod
    def warm_up(cls) -> None:
        """Import scikit-learn's ensembles and compile (or load from numba's cache) the forest kernel."""
        import sklearn.ensemble  # noqa: F401

        from iota2.plugins.tree_ensemble import warm_up

        warm_up()

    def resources(self) -> Resources:
        """Every core the task is given when the estimator takes ``n_jobs`` (forests), else one thread."""
        from iota2.builders.learner_settings import accepted_keywords
        from iota2.core.plugins import classifiers

        factory = classifiers().get(self.settings.get("model_type"))
        accepted = accepted_keywords(factory) if factory is not None else None
        jobs = (self.settings.get("keywords") or {}).get("n_jobs")
        if accepted is not None and "n_jobs" in accepted:
            threads = jobs if isinstance(jobs, int) and jobs > 0 else os.cpu_count() or 1
        else:
            threads = 1
        return Resources(threads=threads)

    @classmethod
    def from_estimator(cls, estimator, feature_names: list[str], settings: dict | None = None) -> SklearnLearner:
        """A learner around an estimator fitted elsewhere (tests, notebooks): its ``classes_`` must be integers."""
        learner = cls(settings or {"model_type": type(estimator).__name__})
        learner._set_fitted(estimator, feature_names)
        return learner

    def _set_fitted(self, estimator, feature_names: list[str]) -> None:
        self._estimator = estimator
        self.feature_names = list(feature_names)
        self.classes_ = np.asarray(estimator.classes_).astype(np.int64)
        self.forest_ = None  # compiled when first applied (a learning task does not need the kernel)

    @property
    def estimator_(self):
        if self._estimator is None and self._estimator_file is not None:
            self._estimator = _load_estimator(self._estimator_file, self._summary)
        return self._estimator

    # ------------------------------------------------------------------ fit
    def fit(self, samples: LearningSamples) -> dict:
        """Fit (with the grid search when ``cross_validation_parameters`` is set) on every row of the samples file.

        Raises
        ------
        InputDataError
            The file holds fewer than two classes, or lacks feature columns.
        """
        import pandas as pd

        from iota2.builders.samples import read_learning_samples
        from iota2.core.scheduler import task_threads

        table, labels = read_learning_samples(samples)
        features = table[samples.feature_names].to_numpy(np.float32)
        estimator = build_estimator(self.settings, samples.seed, task_threads())
        grid = self.settings.get("cross_validation_parameters") or {}
        report: dict = {}
        if grid:
            from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

            grouped = bool(self.settings.get("cross_validation_grouped"))
            folds_count = self.settings.get("cross_validation_folds") or 5
            folds = GroupKFold(n_splits=folds_count) if grouped else \
                StratifiedKFold(n_splits=folds_count, shuffle=True, random_state=samples.seed)
            prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
            search = GridSearchCV(estimator, {prefix + k: v for k, v in grid.items()}, cv=folds, refit=True)
            search.fit(features, labels, groups=table["originfid"].to_numpy() if grouped else None)
            estimator = search.best_estimator_
            report = {"best_params": {k[len(prefix):]: v for k, v in search.best_params_.items()},
                      "best_score": float(search.best_score_),
                      "mean_test_score": [float(v) for v in search.cv_results_["mean_test_score"]],
                      "params": [{k[len(prefix):]: v for k, v in p.items()} for p in search.cv_results_["params"]]}
            write_text(Path(samples.report_folder) / f"model_{samples.region}_seed_{samples.run}_cross_val_param.cv",
                       json.dumps(report, indent=2, default=str))
        else:
            estimator.fit(features, labels)
        self._set_fitted(estimator, samples.feature_names)
        LOGGER.info("region %s run %d: %s fitted on %d samples x %d features", samples.region, samples.run,
                    type(estimator).__name__, len(labels), len(samples.feature_names))
        return {"estimator": type(estimator).__name__, "n_samples": int(len(labels)),
                "n_features": len(samples.feature_names),
                "samples_per_class": {int(k): int(v) for k, v in pd.Series(labels).value_counts().sort_index()
                                      .items()}, **report}

    # ------------------------------------------------------------------ predict
    def predict_proba(self, features: np.ndarray, threads: int = 1, compiled: bool = True,
                      batch: int = PREDICT_BATCH) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))`` float64.

        Random forests, extra trees and decision trees go through the compiled kernel (scikit-learn's
        probabilities, faster; from the ``_forest.npz`` node arrays of a loaded model); other estimators, and
        blocks with NaN or infinite features, through the estimator's ``predict_proba`` in batches of ``batch``
        rows spread over ``threads`` threads. ``compiled=False`` forces the latter (the benchmark times both).
        """
        if self.forest_ is None and self._estimator is None and self._estimator_file is None:
            raise ValueError("predict_proba of a learner that was neither fitted nor loaded")
        if compiled and np.isfinite(features).all():
            from iota2.plugins.tree_ensemble import compiled_forest

            forest = self.forest_ or compiled_forest(self.estimator_)
            if forest is not None:
                return forest.predict_proba(features, threads)
        estimator = self.estimator_  # a loaded model reads it from its file only now
        _single_threaded(estimator)
        n = len(features)
        out = np.empty((n, len(self.classes_)), np.float64)

        def run(start: int) -> None:
            stop = min(n, start + batch)
            out[start:stop] = estimator.predict_proba(features[start:stop])

        starts = range(0, n, batch)
        if threads > 1 and n > batch:
            with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run, starts))
        else:
            for start in starts:
                run(start)
        return out

    # ------------------------------------------------------------------ files
    def save(self, folder: Path, stem: str) -> dict[str, str]:
        """Write ``<stem>.skops`` and, for a tree ensemble, ``<stem>_forest.npz`` (a stale one is removed)."""
        import skops.io

        from iota2.plugins.tree_ensemble import CompiledForest

        folder = Path(folder)
        target = folder / f"{stem}.skops"
        estimator = self.estimator_
        files = {}
        with atomic_output(target) as tmp:
            skops.io.dump({"estimator": estimator, "feature_names": list(self.feature_names),
                           "classes": [int(c) for c in self.classes_]}, tmp)
            files[target.name] = file_digest(tmp)
        npz = folder / f"{stem}_forest.npz"
        forest = CompiledForest.from_estimator(estimator, need_kernel=False)
        arrays = forest.arrays() if forest is not None else None
        if arrays is None:
            npz.unlink(missing_ok=True)
            return files
        with atomic_output(npz) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
            files[npz.name] = file_digest(tmp)
        return files

    @classmethod
    def load(cls, folder: Path, stem: str, summary: dict) -> SklearnLearner:
        """Read the forest's node arrays when the model has them (the ``.skops`` file then only when pixels need
        the estimator), else the estimator now; both checked against the summary's digests.

        Raises
        ------
        InputDataError
            A file is missing, modified after training, unreadable or holds untrusted types.
        """
        from iota2.plugins.tree_ensemble import CompiledForest

        folder = Path(folder)
        path = folder / f"{stem}.skops"
        digests = summary["files"]
        if path.name not in digests:
            raise refuse_model(path, f"is not listed in {folder / (stem + '.json')}")
        learner = cls(summary.get("settings") or {})
        learner.feature_names = list(summary["feature_names"])
        learner.classes_ = np.asarray(summary["classes"], np.int64)
        learner._estimator_file = path
        learner._summary = summary
        npz = folder / f"{stem}_forest.npz"
        if npz.name in digests:
            check_file(npz, summary)
            try:
                learner.forest_ = CompiledForest.load(npz)
            except (OSError, ValueError, KeyError) as exc:
                raise refuse_model(npz, f"cannot be read ({type(exc).__name__}: {exc})") from exc
        if learner.forest_ is None:
            learner.estimator_  # noqa: B018 - read now: every pixel needs it
        return learner


def _load_estimator(path: Path, summary: dict):
    import skops.io

    check_file(path, summary)
    try:
        found = skops.io.get_untrusted_types(file=path)
        untrusted = sorted(set(found) - trusted_types())
        if untrusted:
            raise refuse_model(path, f"holds types no installed learner declares ({', '.join(untrusted)}); it was not "
                                     "loaded")
        model = skops.io.load(path, trusted=found)
    except InputDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - not a skops file, or from an incompatible version
        raise refuse_model(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, dict) or "estimator" not in model:
        raise refuse_model(path, "is not an iota2 model")
    return model["estimator"]
