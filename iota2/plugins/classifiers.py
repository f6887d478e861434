"""Built-in classical learners: scikit-learn estimators, registered under their class names.

``scikit_models_parameters.model_type`` selects one; any other key of that section (except the
framework's own keys) is passed to the estimator's constructor. Random forests and extra trees
default to 100 trees and use every core the task is given.
"""

from __future__ import annotations

import functools

from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, ExtraTreesClassifier,
                              GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from iota2.core.hookspecs import hookimpl


def _with_defaults(estimator_class, **defaults):
    @functools.wraps(estimator_class)
    def factory(**params):
        return estimator_class(**{**defaults, **params})

    factory.estimator_class = estimator_class
    return factory


@hookimpl
def iota2_register_classifiers():
    return {
        "RandomForestClassifier": _with_defaults(RandomForestClassifier, n_estimators=100),
        "ExtraTreesClassifier": _with_defaults(ExtraTreesClassifier, n_estimators=100),
        "SVC": _with_defaults(SVC, probability=True),
        "AdaBoostClassifier": _with_defaults(AdaBoostClassifier),
        "BaggingClassifier": _with_defaults(BaggingClassifier),
        "GradientBoostingClassifier": _with_defaults(GradientBoostingClassifier),
        "HistGradientBoostingClassifier": _with_defaults(HistGradientBoostingClassifier),
        "LogisticRegression": _with_defaults(LogisticRegression, max_iter=1000),
        "KNeighborsClassifier": _with_defaults(KNeighborsClassifier),
        "MLPClassifier": _with_defaults(MLPClassifier, max_iter=500),
    }
