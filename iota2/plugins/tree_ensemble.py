"""Compiled inference of scikit-learn tree ensembles (random forests, extra trees, decision trees).

Classifying a tile means running every pixel down every tree. scikit-learn does it tree by tree over
all pixels and builds a ``(pixels, classes)`` float64 array per tree before summing them, so on a
forest of 100 trees most of the time goes to memory traffic. :class:`CompiledForest` copies the
fitted trees into flat node arrays (breadth first, siblings side by side) and runs a numba kernel
that takes 16 pixels at a time through one tree, level by level, with no branch on the pixel data (leaves
point to themselves), until none of the block's pixels moves; the 16 independent paths keep the processor busy
while it waits for memory, and the per-pixel class sums stay in cache.

The result is scikit-learn's ``predict_proba``: same split rule (``x <= threshold`` on float32
features, thresholds rounded down to float32 so the comparison is exact), same per-tree class
fractions, summed in float64 in tree order and divided by the number of trees. On forests as the chain
trains them (100 trees, 100 000 pixels, one thread) it is 1.25x faster than scikit-learn at 52 features and
1.9x at 468 (``bench/bench_forest_kernel.py``, ``bench/README.md``). Anything else (other learners,
multi-output trees, NaN features) goes through scikit-learn unchanged.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import weakref
from pathlib import Path

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
        from iota2.plugins import forest_kernel

        with _KERNEL_LOCK:
            forest_kernel.forest_proba(np.zeros((1, 1), np.float32), np.zeros(1, np.int32), np.zeros(1, np.int32),
                                       np.zeros(1, np.int32), np.full(1, np.inf, np.float32), np.zeros(1, np.int32),
                                       np.zeros(1, np.int32), np.ones((1, 1), np.float64), np.empty((1, 1)))
    except Exception as exc:  # noqa: BLE001 - any numba failure means the scikit-learn path
        LOGGER.warning("the compiled forest kernel is not available (%s: %s); tree ensembles are applied with "
                       "scikit-learn, 1.25-1.9x slower", type(exc).__name__, exc)
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

    ARRAYS = ("roots", "depths", "feature", "threshold", "child", "leaf_row", "leaf_fractions")
    """The node arrays that :meth:`save` writes."""

    @classmethod
    def from_estimator(cls, estimator, need_kernel: bool = True) -> CompiledForest | None:
        """A compiled copy of ``estimator`` (or of the last step of a pipeline), or None when the kernel does
        not cover it (numba missing unless ``need_kernel`` is false, another learner, multi-output)."""
        if need_kernel and _kernel() is None:
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

    def arrays(self) -> dict[str, np.ndarray] | None:
        """What :meth:`save` writes: the node arrays, a JSON ``header`` and the scaler's ``scaler_mean`` /
        ``scaler_scale``; None when a pipeline step before the trees is not a single ``StandardScaler`` (the only
        preprocessing stored as arrays)."""
        scaler = {}
        if self.preprocess is not None:
            steps = [step for _, step in self.preprocess.steps]
            if len(steps) != 1 or type(steps[0]).__name__ != "StandardScaler" \
                    or type(steps[0]).__module__.split(".")[0] != "sklearn":
                return None
            for name in ("mean_", "scale_"):
                if getattr(steps[0], name, None) is not None:
                    scaler[f"scaler_{name.rstrip('_')}"] = np.asarray(getattr(steps[0], name), np.float64)
        header = json.dumps({"format": "iota2-compiled-forest", "version": 1, "n_classes": self.n_classes,
                             "n_features": int(self.feature.max(initial=0)) + 1})
        return {"header": np.array(header), **{name: getattr(self, name) for name in self.ARRAYS}, **scaler}

    def save(self, path: str | Path) -> bool:
        """Write :meth:`arrays` to ``path`` (``.npz``: nothing is executed on load); False, writing nothing, when
        they are None."""
        arrays = self.arrays()
        if arrays is None:
            return False
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return True

    @classmethod
    def load(cls, path: str | Path) -> CompiledForest | None:
        """A forest written by :meth:`save` (no pickle: ``allow_pickle=False``), or None when the kernel is not
        available. Raises ``ValueError`` for a file that is not such a forest."""
        if _kernel() is None:
            return None
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != "iota2-compiled-forest" or header.get("version") != 1:
                raise ValueError(f"not a compiled forest of this version: {header}")
            forest = cls.__new__(cls)
            forest.n_classes = int(header["n_classes"])
            n_features = int(header["n_features"])
            for name in cls.ARRAYS:
                setattr(forest, name, np.ascontiguousarray(data[name]))
            forest.preprocess = None
            if "scaler_mean" in data or "scaler_scale" in data:
                forest.preprocess = _Standardize(data["scaler_mean"] if "scaler_mean" in data else None,
                                                 data["scaler_scale"] if "scaler_scale" in data else None)
        dtypes = {"roots": np.int32, "depths": np.int32, "feature": np.int32, "threshold": np.float32,
                  "child": np.int32, "leaf_row": np.int32, "leaf_fractions": np.float64}
        for name, dtype in dtypes.items():
            if getattr(forest, name).dtype != dtype:
                raise ValueError(f"array {name} is {getattr(forest, name).dtype}, not {np.dtype(dtype)}")
        nodes = len(forest.feature)
        if not (len(forest.threshold) == len(forest.child) == len(forest.leaf_row) == nodes) or \
                forest.leaf_fractions.ndim != 2 or forest.leaf_fractions.shape[1] != forest.n_classes or \
                (nodes and (forest.feature.min() < 0 or forest.feature.max() >= n_features or forest.child.min() < 0
                            or forest.child.max() >= nodes or forest.roots.max() >= nodes or len(forest.roots) !=
                            len(forest.depths) or forest.leaf_row.max() >= len(forest.leaf_fractions)
                            or forest.leaf_row.min() < 0)):
            raise ValueError("node arrays of inconsistent sizes or indices out of range")
        return forest

    def predict_proba(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` float64, in the estimator's ``classes_`` order."""
        if self.preprocess is not None:
            features = self.preprocess.transform(features)
        features = np.ascontiguousarray(features, dtype=np.float32)
        if len(self.feature) and features.shape[1] <= int(self.feature.max()):
            raise ValueError(f"{features.shape[1]} features for a forest that splits on feature "
                             f"{int(self.feature.max())}")
        out = np.empty((len(features), self.n_classes), np.float64)
        kernel = _kernel()
        with _KERNEL_LOCK:
            kernel.set_threads(threads)
            kernel.forest_proba(features, self.roots, self.depths, self.feature, self.threshold, self.child,
                                self.leaf_row, self.leaf_fractions, out)
        return out


class _Standardize:
    """``StandardScaler.transform`` from its ``mean_`` and ``scale_`` arrays, with the same float operations
    (in place on a float32 copy, each step computed in float64 and stored in float32)."""

    def __init__(self, mean: np.ndarray | None, scale: np.ndarray | None):
        self.mean = mean
        self.scale = scale

    def transform(self, features: np.ndarray) -> np.ndarray:
        features = np.array(features, dtype=np.float32 if features.dtype == np.float32 else np.float64)
        if self.mean is not None:
            features -= self.mean
        if self.scale is not None:
            features /= self.scale
        return features


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
