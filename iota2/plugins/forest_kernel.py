"""The numba kernel of :mod:`iota2.plugins.tree_ensemble` (a module of its own so that importing numba and
loading the compiled code happen only where a forest is applied).

Why this shape: the simple fixed-depth loop below is what LLVM turns into the fastest code here; with
siblings side by side, a step is one gather of the child less than with left and right arrays (-10 %).
Variants measured slower on the benchmark forest (bench/README.md): stopping a block once all its
pixels reach leaves, compacting the unfinished pixels after a few levels, per-pixel traversal of all
trees, two trees at a time, float32 sums (traversal is ~90 % of the time); the same speed: blocks of 32
to 256 pixels, nodes packed in one 64-bit word (LLVM gathers with 64-bit indices, 8 lanes at a time,
whatever the layout).
"""

import numba
import numpy as np
from numba import njit, prange

BLOCK = 64
"""Pixels taken through a tree together."""


@njit(parallel=True, nogil=True, cache=True)
def forest_proba(features, roots, depths, feature, threshold, child, leaf_row, leaf_fractions, out):
    """Sum over trees of the class fractions of the leaf each pixel reaches, divided by the tree count.

    Parameters
    ----------
    features : float32 array (n, n_features), C-contiguous
    roots, depths : int32 arrays (n_trees,)
        First node and maximum depth of each tree.
    feature, threshold, child : arrays (n_nodes,)
        Split of each node: the left child is ``child``, the right one ``child + 1`` (siblings are stored
        side by side), taken when ``x > threshold``. Leaves point to themselves with an infinite threshold,
        so a pixel that reached its leaf stays there for the remaining levels.
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
                    nodes[k] = child[node] + np.int32(features[start + k, feature[node]] > threshold[node])
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
