"""The numba kernel of :mod:`iota2.core.tree_ensemble` (a module of its own so that importing numba and
loading the compiled code happen only where a forest is applied).

Why this shape: the simple fixed-depth loop below is what LLVM turns into the fastest code here.
Variants measured slower on the benchmark forest (bench/README.md): stopping a block once all its
pixels reach leaves, compacting the unfinished pixels after a few levels, per-pixel traversal of all
trees, and float32 sums (traversal is ~90 % of the time).
"""

import numba
import numpy as np
from numba import njit, prange

BLOCK = 64
"""Pixels taken through a tree together."""


@njit(parallel=True, nogil=True, cache=True)
def forest_proba(features, roots, depths, feature, threshold, left, right, leaf_row, leaf_fractions, out):
    """Sum over trees of the class fractions of the leaf each pixel reaches, divided by the tree count.

    Parameters
    ----------
    features : float32 array (n, n_features), C-contiguous
    roots, depths : int32 arrays (n_trees,)
        First node and maximum depth of each tree.
    feature, threshold, left, right : arrays (n_nodes,)
        Split of each node (go right when ``x > threshold``); leaves point to themselves with an
        infinite threshold, so a pixel that reached its leaf stays there for the remaining levels.
    leaf_row : int32 array (n_nodes,)
        Row of each leaf in ``leaf_fractions`` (internal nodes: unused).
    leaf_fractions : float64 array (n_leaves, n_classes)
    out : float64 array (n, n_classes), written
    """
    n = features.shape[0]
    n_trees = roots.shape[0]
    n_classes = leaf_fractions.shape[1]
    n_blocks = (n + BLOCK - 1) // BLOCK
    for block in prange(n_blocks):
        start = block * BLOCK
        size = min(n, start + BLOCK) - start
        sums = np.zeros((BLOCK, n_classes), np.float64)
        nodes = np.zeros(BLOCK, np.int32)
        for tree in range(n_trees):
            for k in range(size):
                nodes[k] = roots[tree]
            for _ in range(depths[tree]):
                for k in range(size):
                    node = nodes[k]
                    if features[start + k, feature[node]] > threshold[node]:
                        nodes[k] = right[node]
                    else:
                        nodes[k] = left[node]
            for k in range(size):
                row = leaf_row[nodes[k]]
                for c in range(n_classes):
                    sums[k, c] += leaf_fractions[row, c]
        for k in range(size):
            for c in range(n_classes):
                out[start + k, c] = sums[k, c] / n_trees


def set_threads(threads: int) -> None:
    """Threads of the next kernel call (at most numba's pool size)."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
