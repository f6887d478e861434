"""Task functions used by the scheduler tests (importable by dask workers)."""

import time
from pathlib import Path


def append(path: str, text: str, delay: float = 0.0) -> None:
    """Append ``text`` and a newline to ``path`` (after ``delay`` seconds)."""
    time.sleep(delay)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text + "\n")


def fail(message: str) -> None:
    raise RuntimeError(message)


def fail_once(marker: str, path: str, text: str) -> None:
    """Fail the first time (no marker yet), succeed afterwards."""
    if not Path(marker).exists():
        Path(marker).write_text("x")
        raise RuntimeError("first attempt fails")
    append(path, text)


def record_threads(path: str, text: str, delay: float = 0.0) -> None:
    """Append ``text`` and the thread count the scheduler gave this task."""
    from iota2.core.scheduler import task_threads

    append(path, f"{text}={task_threads()}", delay)


def record_pid(path: str, text: str, delay: float = 0.0) -> None:
    """Append ``text`` and the id of the process that ran the task."""
    import os

    append(path, f"{text}@{os.getpid()}", delay)


def warn_like_a_library(path: str) -> None:
    """Raise a library-style ``FutureWarning`` and finish."""
    import warnings

    warnings.warn("parameter 'x' will change its default in 2.0", FutureWarning, stacklevel=1)
    append(path, "warned")


def wait_for(marker: str, timeout: float = 300.0) -> None:
    """Return once ``marker`` exists (or after ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while not Path(marker).exists() and time.time() < deadline:
        time.sleep(0.05)
