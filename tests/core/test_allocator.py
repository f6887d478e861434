"""Allocator settings of task processes."""

import subprocess
import sys

import numpy as np
import pytest

from iota2.core.allocator import reuse_freed_memory

CHILD = """
import resource, sys, threading
import numpy as np
from iota2.core.allocator import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "reuse" else False
faults = []

def allocate():
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        arrays = [np.ones((rows, 1 << 20), np.float32) for rows in (64, 12, 12)]  # 256 + 2 x 48 MiB, freed next
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        del arrays

if sys.argv[2] == "thread":  # as in a dask worker, whose tasks run in a thread started after its preload
    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
else:
    allocate()
print(applied, *faults)
"""


def _page_faults(mode: str, where: str = "main") -> tuple[bool, list[int]]:
    result = subprocess.run([sys.executable, "-c", CHILD, mode, where], capture_output=True, text=True,
                            check=True)
    applied, *faults = result.stdout.split()
    return applied == "True", [int(value) for value in faults]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_arrays_are_reused_without_new_page_faults():
    """By default every large array is fresh memory (page faults each time); with the setting, the second
    and later arrays reuse the first one's pages."""
    applied, reused = _page_faults("reuse")
    _, default = _page_faults("default")
    assert applied
    # fresh memory every time by default (page faults on 4 KiB or, with numpy's huge-page advice, 2 MiB pages)
    assert min(default) > 50
    assert reused[0] > 50 and max(reused[1:]) < min(default) // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_arrays_are_reused_in_a_task_thread():
    """A thread's own malloc arena gives arrays smaller than its 64 MiB heaps fresh memory each time (the empty
    heap is unmapped); with the setting every thread allocates from the process's main heap and reuses it."""
    _, default = _page_faults("default", "thread")
    applied, reused = _page_faults("reuse", "thread")
    assert applied
    assert min(default) > 50
    # measured: 1200 faults each time by default, 0 after the first with the setting, 129 without its arena part
    assert reused[0] > 50 and max(reused[1:]) < min(default) // 50


def test_settings_do_not_change_results():
    reuse_freed_memory()
    values = np.arange(10_000_000, dtype=np.float32)
    assert float(values.sum(dtype=np.float64)) == 49999995000000.0
