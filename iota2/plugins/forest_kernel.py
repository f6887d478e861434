"""The numba kernel of :mod:`iota2.plugins.tree_ensemble` (a module of its own so that importing numba and
loading the compiled code happen only where a forest is applied).

Why this shape: blocks of 16 pixels go through one tree together, level by level, in scalar code with no
branch on the pixel data (leaves point to themselves), and a block stops at the first level where none of its
pixels moved. On this machine's processor (Skylake-AVX512 under a hypervisor) an 8-lane vector gather costs
about 7 cycles per element against 4 for scalar loads, so the per-tree loop is a function of its own
(``_tree_pass``), which LLVM does not vectorise, called from the parallel loop.

Measured by ``bench/bench_forest_kernel.py`` (forests as the chain trains them: 100 trees, ``max_depth`` 25,
``min_samples_leaf`` 5, 8 classes, on the generated 36-date tile; 100 000 pixels, one thread, min of 7
interleaved runs, load average 3.0-3.2 on the 2 cores), microseconds per pixel at 52 / 468 features: this
kernel 7.5 / 8.1; the former one (64 pixels, always as many levels as the tree is deep, vectorised with
gathers) 16.9 / 15.7, i.e. 2.3x / 1.9x slower; scikit-learn 9.4 / 15.7. The stop walks 9.9 / 8.4 levels per
tree instead of 14.4 / 12.1 (mean depth of the leaf a pixel reaches 7.0 / 5.9).

Variants measured on the way (same forests, load 3-5, so +-20 %), 52 / 468 features: blocks of 32 pixels
8.6 / 7.3, of 64 10.9 / 8.2, of 8 10.9 / 10.0 (16: 7.9 / 5.7 in that run); the same speed, not kept: the node
fields packed in one 16-byte record per node (6.9 / 7.2); slower: scalar code without the stop (12.8 / 12.5),
a per-pixel ``while`` to the leaf (9.8-10.8), a list of the block's unfinished pixels (8.0-10.5). With 468
features the trees are not deeper (mean maximum depth 12.1 against 14.4 at 52) and split on 465 of the 468
features, so copying only the used features would gain nothing; a block of 16 pixels of 468 float32 features
(30 KB) fits the 32 KB L1 cache. On the earlier host of this machine, where gathers were cheap, the former
kernel was 1.6x faster than the same loop in scalar code (``bench/README.md``, "The inference kernel").
"""

import numba
import numpy as np
from numba import njit, prange

BLOCK = 16
"""Pixels taken through a tree together."""


@njit(nogil=True, cache=True, inline="never")
def _tree_pass(features, start, size, root, depth, feature, threshold, child, nodes):
    """Take pixels ``start .. start + size`` from ``root`` to their leaves, writing the leaf of each in ``nodes``;
    stops at the first level where no pixel moved (all at leaves) or after ``depth`` levels."""
    for k in range(size):
        nodes[k] = root
    for _ in range(depth):
        moved = np.int32(0)
        for k in range(size):
            node = nodes[k]
            step = child[node] + np.int32(features[start + k, feature[node]] > threshold[node])
            moved |= step ^ node
            nodes[k] = step
        if moved == 0:
            break


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
            _tree_pass(features, start, size, roots[tree], depths[tree], feature, threshold, child, nodes)
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
