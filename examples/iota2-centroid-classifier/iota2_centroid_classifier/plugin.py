"""Registers :class:`SoftCentroidClassifier` as an iota2 classifier."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

try:
    from iota2.core.hookspecs import hookimpl
except ImportError:  # iota2 not installed: the module still imports
    def hookimpl(function):
        return function


class SoftCentroidClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class centroid on standardised features, probabilities from a softmax of distances.

    Parameters
    ----------
    temperature
        Softmax temperature applied to the distances divided by their per-row minimum.
    """

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature

    def fit(self, features, labels):
        features = np.asarray(features, dtype=np.float64)
        self.classes_ = np.unique(labels)
        self.mean_ = features.mean(axis=0)
        self.scale_ = features.std(axis=0) + 1e-9
        scaled = (features - self.mean_) / self.scale_
        self.centroids_ = np.stack([scaled[labels == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, features):
        scaled = (np.asarray(features, dtype=np.float64) - self.mean_) / self.scale_
        distances = ((scaled[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2) ** 0.5
        logits = -distances / (self.temperature * (distances.min(axis=1, keepdims=True) + 1e-9))
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, features):
        return self.classes_[self.predict_proba(features).argmax(axis=1)]


@hookimpl
def iota2_register_classifiers():
    return {"SoftCentroidClassifier": SoftCentroidClassifier}
