"""Compiled inference of scikit-learn tree ensembles (random forests, extra trees, decision trees).

Classifying a tile means running every pixel down every tree. scikit-learn does it tree by tree over
all pixels and builds a ``(pixels, classes)`` float64 array per tree before summing them, so on a
forest of 100 trees most of the time goes to memory traffic. :class:`CompiledForest` copies the
fitted trees into flat node arrays (breadth first, siblings side by side) and runs a numba kernel
that takes 64 pixels at a time through one tree, level by level, with no branch on the pixel data (leaves point to themselves, so every pixel of
the block takes the same number of steps); the 64 independent paths keep the processor busy while it
waits for memory, and the per-pixel class sums stay in cache.

The result is scikit-learn's ``predict_proba``: same split rule (``x <= threshold`` on float32
features, thresholds rounded down to float32 so the comparison is exact), same per-tree class
fractions, summed in float64 in tree order and divided by the number of trees. On the benchmark forest
(100 trees, 52 features) it is 1.7x faster than scikit-learn on one thread and 2.2–2.6x on a 300-feature
forest (``bench/README.md``). Anything else (other learners, multi-output trees, NaN features) goes
through scikit-learn unchanged.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref

import numpy as np

LOGGER = logging.getLogger(__name__)

_KERNEL_LOCK = threading.Lock()
"""numba's default threading layer must not be entered from two threads at once."""

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def _kernel():
    """The numba kernel module, compiled (or loaded from numba's cache) on first use, or None when numba cannot
    provide it (not installed, no writable cache folder, no compiler backend): tree ensembles then go through
    scikit-learn, with one warning, rather than failing the run."""
    try:
        from iota2.core import forest_kernel

        with _KERNEL_LOCK:
            forest_kernel.forest_proba(np.zeros((1, 1), np.float32), np.zeros(1, np.int32), np.zeros(1, np.int32),
                                       np.zeros(1, np.int32), np.full(1, np.inf, np.float32), np.zeros(1, np.int32),
                                       np.zeros(1, np.int32), np.ones((1, 1), np.float64), np.empty((1, 1)))
    except Exception as exc:  # noqa: BLE001 - any numba failure means the scikit-learn path
        LOGGER.warning("the compiled forest kernel is not available (%s: %s); tree ensembles are applied with "
                       "scikit-learn, about 1.7x slower", type(exc).__name__, exc)
        return None
    return forest_kernel


def _float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Largest float32 <= each float64 threshold: for a float32 x, ``x <= t64`` iff ``x <= t32``."""
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _breadth_first_order(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """Node ids of one tree in breadth-first order, the two children of a node always side by side (left
    first), so the kernel finds the right child next to the left one."""
    levels = [np.zeros(1, np.intp)]
    while True:
        parents = levels[-1][children_left[levels[-1]] != -1]
        if not len(parents):
            return np.concatenate(levels)
        levels.append(np.stack([children_left[parents], children_right[parents]], axis=1).ravel())


def _fitted_trees(estimator):
    """The fitted ``DecisionTreeClassifier`` list of a supported single-output estimator, else None."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if type(estimator) in (RandomForestClassifier, ExtraTreesClassifier):
        trees = list(estimator.estimators_)
    elif type(estimator) in (DecisionTreeClassifier, ExtraTreeClassifier):
        trees = [estimator]
    else:
        return None
    if getattr(estimator, "n_outputs_", 1) != 1 or not trees:
        return None
    return trees


class CompiledForest:
    """Flat node arrays of a fitted tree ensemble and the kernel that applies them.

    Build it with :meth:`from_estimator`, which returns None for what it does not cover.
    """

    def __init__(self, trees, n_classes: int, preprocess=None):
        counts = [tree.tree_.node_count for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(offsets[-1])
        if total >= np.iinfo(np.int32).max:
            raise ValueError("forest too large for 32-bit node indices")
        self.n_classes = n_classes
        self.preprocess = preprocess
        self.roots = offsets[:-1].astype(np.int32)
        self.depths = np.array([tree.tree_.max_depth for tree in trees], np.int32)
        self.feature = np.zeros(total, np.int32)
        self.threshold = np.zeros(total, np.float32)
        self.child = np.zeros(total, np.int32)
        self.leaf_row = np.zeros(total, np.int32)
        fractions = []
        leaves_so_far = 0
        for tree, start in zip(trees, offsets[:-1]):
            structure = tree.tree_
            stop = start + structure.node_count
            order = _breadth_first_order(structure.children_left, structure.children_right)
            position = np.empty_like(order)
            position[order] = np.arange(len(order))  # node id -> slot in the tree's block
            left = structure.children_left[order]
            leaf = left == -1
            self.feature[start:stop] = np.where(leaf, 0, structure.feature[order])
            self.threshold[start:stop] = np.where(leaf, np.inf, _float32_thresholds(structure.threshold[order]))
            self.child[start:stop] = np.where(leaf, np.arange(len(order)), position[np.where(leaf, 0, left)]) + start
            values = structure.value[order[leaf], 0, :n_classes]  # class fractions of the leaves only
            totals = values.sum(axis=1, keepdims=True)
            totals[totals == 0.0] = 1.0
            fractions.append(values / totals)  # what DecisionTreeClassifier.predict_proba does
            self.leaf_row[start:stop][leaf] = np.arange(leaves_so_far, leaves_so_far + len(values))
            leaves_so_far += len(values)
        self.leaf_fractions = np.concatenate(fractions)

    @classmethod
    def from_estimator(cls, estimator) -> CompiledForest | None:
        """A compiled copy of ``estimator`` (or of the last step of a pipeline), or None when the kernel does
        not cover it (numba missing, another learner, multi-output)."""
        if _kernel() is None:
            return None
        preprocess = None
        final = estimator
        if hasattr(estimator, "steps"):
            final = estimator.steps[-1][1]
            preprocess = estimator[:-1] if len(estimator.steps) > 1 else None
        trees = _fitted_trees(final)
        if trees is None:
            return None
        return cls(trees, len(final.classes_), preprocess)

    def predict_proba(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` float64, in the estimator's ``classes_`` order."""
        if self.preprocess is not None:
            features = self.preprocess.transform(features)
        features = np.ascontiguousarray(features, dtype=np.float32)
        out = np.empty((len(features), self.n_classes), np.float64)
        kernel = _kernel()
        with _KERNEL_LOCK:
            kernel.set_threads(threads)
            kernel.forest_proba(features, self.roots, self.depths, self.feature, self.threshold, self.child,
                                self.leaf_row, self.leaf_fractions, out)
        return out


def compiled_forest(estimator) -> CompiledForest | None:
    """:meth:`CompiledForest.from_estimator`, built once per estimator object (models are cached per worker)."""
    try:
        return _COMPILED[estimator]
    except KeyError:
        compiled = _COMPILED[estimator] = CompiledForest.from_estimator(estimator)
        return compiled
    except TypeError:  # not weak-referenceable
        return CompiledForest.from_estimator(estimator)


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel, so the first classification task does not wait."""
    _kernel()
