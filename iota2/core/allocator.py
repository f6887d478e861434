"""Memory allocator settings of the processes that run tasks.

A chunk allocates the same large arrays (bands, gap-filled series, features, probabilities) task after
task. By default glibc maps every block above 32 MB from the operating system and unmaps it when it is
freed, so each chunk pays again for the page faults of fresh memory: on the benchmark's virtual machine
``read_features`` of a 500 000-pixel chunk took 0.43 s with warm memory and 0.9-1.1 s with fresh memory,
and a whole classification 16.1 CPU-seconds instead of 13.4 (bench/README.md). :func:`reuse_freed_memory`
makes glibc serve large blocks from its heap and keep what is freed for the next chunk. A process's
memory then stays at its peak, which the chunk size already bounds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOGGER = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (no ``mmap`` for large blocks, trimming above 1 GiB free).

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
                  ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20)))
    if not applied:
        LOGGER.debug("mallopt refused a setting; the allocator keeps its defaults in part")
    return applied
