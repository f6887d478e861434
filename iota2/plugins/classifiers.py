"""Built-in scikit-learn model types, registered under their class names, and the scikit-learn learner that uses
them (:class:`iota2.plugins.sklearn_learner.SklearnLearner`, registered as ``sklearn``).

``scikit_models_parameters.model_type`` selects one; any other key of that section (except the
framework's own keys) is passed to the estimator's constructor. Random forests and extra trees
default to 100 trees and use every core the task is given.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import json
import os
from pathlib import Path

from iota2.core.hookspecs import hookimpl


class EstimatorFactory:
    """Builds a scikit-learn estimator with the framework's defaults; scikit-learn is imported on first use,
    so listing the learners (config checks, ``iota2 plugins``) does not pay for it."""

    def __init__(self, module: str, name: str, **defaults):
        self.module = module
        self.__name__ = name
        self.defaults = defaults

    @property
    def estimator_class(self):
        return getattr(importlib.import_module(self.module), self.__name__)

    def __call__(self, **params):
        return self.estimator_class(**{**self.defaults, **params})

    def parameter_names(self) -> frozenset[str]:
        """The keywords the estimator accepts, without importing its library when they are known: the run
        checks them at start, and importing scikit-learn takes about a second of the cores the workers are
        starting on. Kept in ``<user cache>/iota2/estimator_parameters.json`` per installed version."""
        return _parameter_names(self.module, self.__name__, _version_of(self.module.partition(".")[0]))

    def __repr__(self) -> str:
        return f"{self.module}.{self.__name__}"


_DISTRIBUTIONS = {"sklearn": "scikit-learn"}
"""Distribution names that differ from the package's."""


def _cache_file() -> Path | None:
    """``<user cache>/iota2/estimator_parameters.json``, or None where the user has no home folder."""
    try:
        root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except (RuntimeError, KeyError):
        return None
    return Path(root) / "iota2" / "estimator_parameters.json"


@functools.lru_cache(maxsize=None)
def _version_of(package: str) -> str:
    """Version of the distribution that provides the top-level ``package`` ('' when unknown)."""
    for distribution in (_DISTRIBUTIONS.get(package, package),):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            pass
    for distribution in importlib.metadata.packages_distributions().get(package, []):  # 60 ms: the last resort
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


@functools.lru_cache(maxsize=None)
def _parameter_names(module: str, name: str, version: str) -> frozenset[str]:
    key = f"{module}.{name}=={version}"
    path = _cache_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (AttributeError, OSError, ValueError):  # no cache folder, no file, damaged file
        known = {}
    if not isinstance(known, dict):
        known = {}
    if version and isinstance(known.get(key), list):
        return frozenset(known[key])
    names = sorted(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    if version and path is not None:
        from iota2.core.raster import atomic_output

        try:
            with atomic_output(path) as tmp:
                tmp.write_text(json.dumps({**known, key: names}, indent=1, sort_keys=True), encoding="utf-8")
        except OSError:
            pass  # read-only home: the library is imported at each run instead
    return frozenset(names)


@hookimpl
def iota2_register_classifiers():
    return {
        "RandomForestClassifier": EstimatorFactory("sklearn.ensemble", "RandomForestClassifier", n_estimators=100),
        "ExtraTreesClassifier": EstimatorFactory("sklearn.ensemble", "ExtraTreesClassifier", n_estimators=100),
        "SVC": EstimatorFactory("sklearn.svm", "SVC", probability=True),
        "AdaBoostClassifier": EstimatorFactory("sklearn.ensemble", "AdaBoostClassifier"),
        "BaggingClassifier": EstimatorFactory("sklearn.ensemble", "BaggingClassifier"),
        "GradientBoostingClassifier": EstimatorFactory("sklearn.ensemble", "GradientBoostingClassifier"),
        "HistGradientBoostingClassifier": EstimatorFactory("sklearn.ensemble", "HistGradientBoostingClassifier"),
        "LogisticRegression": EstimatorFactory("sklearn.linear_model", "LogisticRegression", max_iter=1000),
        "KNeighborsClassifier": EstimatorFactory("sklearn.neighbors", "KNeighborsClassifier"),
        "MLPClassifier": EstimatorFactory("sklearn.neural_network", "MLPClassifier", max_iter=500),
    }


@hookimpl
def iota2_register_learners():
    from iota2.plugins.sklearn_learner import SklearnLearner

    return {SklearnLearner.name: SklearnLearner}
