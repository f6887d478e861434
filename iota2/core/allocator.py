"""Memory allocator settings of the processes that run tasks.

A chunk allocates the same large arrays (bands, gap-filled series, features, probabilities) task after
task. By default glibc maps every block above 32 MB from the operating system and unmaps it when it is
freed, so each chunk pays again for the page faults of fresh memory: on the benchmark's virtual machine
``read_features`` of a 500 000-pixel chunk took 0.43 s with warm memory and 0.9-1.1 s with fresh memory,
and a whole classification 16.1 CPU-seconds instead of 13.4 (bench/README.md). :func:`reuse_freed_memory`
makes glibc serve large blocks from its heap and keep what is freed for the next chunk. A process's
memory then stays at its peak, which the chunk size already bounds.

A dask worker runs its tasks in a thread of its own, and glibc gives each thread an arena of heaps of at most
64 MiB, unmapped as soon as they are empty: the arrays of a chunk that fit in one (a band, a mask, an index
of a few dates) were fresh memory again at every chunk. Every thread therefore allocates from the process's main
heap (one arena): a warm features-map chunk of 240 000 px x 36 dates took 1.2-1.4 s in a worker instead of
1.0-1.1 s in a process's main thread, and 1.1-1.2 s with one arena (bench/README.md). Threads that work
together inside one task (a learner's, GDAL's compression threads) then share that arena's lock; they allocate
little for their work (a random forest learnt on 2 threads took the same time, see bench/README.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOGGER = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (no ``mmap`` for large blocks, trimming above 1 GiB free, one
    arena for every thread). Call it before the threads that run tasks are started (a worker's preload).

    Returns
    -------
    bool
        True if the settings were applied; False where the C library has no ``mallopt`` (macOS, musl),
        which changes nothing but the speed.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = all(mallopt(option, value) == 1 for option, value in
                  ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20), (_M_ARENA_MAX, 1)))
    if not applied:
        LOGGER.debug("mallopt refused a setting; the allocator keeps its defaults in part")
    return applied
