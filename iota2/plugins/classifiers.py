"""Built-in classical learners: scikit-learn estimators, registered under their class names.

``scikit_models_parameters.model_type`` selects one; any other key of that section (except the
framework's own keys) is passed to the estimator's constructor. Random forests and extra trees
default to 100 trees and use every core the task is given.
"""

from __future__ import annotations

import importlib

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

    def __repr__(self) -> str:
        return f"{self.module}.{self.__name__}"


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
