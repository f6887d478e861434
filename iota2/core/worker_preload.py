"""Imported by each dask worker at start (dask ``preload``): loads the plugins and the heavy libraries
once, loads the compiled gap-filling kernel (:func:`iota2.core.timeseries.warm_up`) and warms the default learner up
(:meth:`iota2.core.learner.Learner.warm_up`: the scikit-learn learner imports scikit-learn and compiles its forest
kernel or loads it from numba's cache; skipped when no builder of the run learns), while the driver is still
checking inputs, so the first task of a worker does not pay for them (measured: the first feature chunk of a worker
took 2.8 s instead of 0.45 s, 1.0 s of it loading the gap-filling kernel); keeps freed memory for the next chunk
(:mod:`iota2.core.allocator`); keeps dask's failed-task tracebacks off the console (they are in the task's
log); leaves Ctrl-C to the driver."""

import contextlib
import logging
import os
import signal

import geopandas  # noqa: F401
import pyogrio  # noqa: F401
import rasterio  # noqa: F401

from iota2.core.allocator import reuse_freed_memory
from iota2.core.plugins import get_plugin_manager, learners
from iota2.core.scheduler import WARM_LEARNER_ENV
from iota2.core.timeseries import warm_up as warm_up_gapfilling


def _not_a_task_failure(record) -> bool:
    """dask logs each failed task with its traceback; iota2 writes it to the task's log and prints one line."""
    return not record.getMessage().startswith("Compute Failed")


logging.getLogger("distributed.worker").addFilter(_not_a_task_failure)
with contextlib.suppress(ValueError):  # not the main thread: nothing to do
    # Ctrl-C in a terminal reaches every process of the group: the driver stops the run and closes the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
reuse_freed_memory()
get_plugin_manager()
warm_up_gapfilling()
if os.environ.get(WARM_LEARNER_ENV, "1") != "0":  # a run that learns (not a features map)
    for _learner in learners().values():
        if _learner.default:
            _learner.warm_up()
