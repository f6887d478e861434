"""Run a task graph: in process (``debug``), on a dask ``localCluster``, or on ``Slurm``/``PBS`` through
dask-jobqueue.

The driver (this process) keeps the graph: it submits a task as soon as all its dependencies have
succeeded, records each finished task in the status file (so ``-restart`` skips it), skips the
dependents of a failed task while independent tasks go on, and reports every failure with the path
of the task's log. Big arrays never travel through the scheduler: tasks read and write files.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from iota2.core.errors import ConfigError, OutputWriteError, TaskFailedError
from iota2.core.fingerprint import RecordingConfig, task_fingerprint
from iota2.core.graph import Graph, Task, TaskStatus
from iota2.core.layout import OutputLayout
from iota2.core.learner import dask_resources, task_threads_of
from iota2.core.raster import DISK_ERRNOS

LOGGER = logging.getLogger(__name__)
SCHEDULER_TYPES = ("debug", "localCluster", "Slurm", "PBS")
THREADS_ENV = "IOTA2_TASK_THREADS"
WARM_LEARNER_ENV = "IOTA2_WARM_LEARNER"
"""Environment of local dask workers: "0" when no builder of the run learns (their start skips the learner)."""
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} tasks [{elapsed}]{postfix}"
"""The progress bar: tasks done, elapsed time and the steps running now, no time estimate (tasks differ too much in
length for one from the mean rate: a learning task can take a minute, a chunk a second)."""


def task_log_path(output_path: str | Path, task: Task) -> Path:
    """``logs/<step>/<task>.log`` under the output root (:meth:`iota2.core.layout.OutputLayout.task_log`)."""
    return OutputLayout(output_path).task_log(task.step, task.name)


def task_threads() -> int:
    """Threads a task may use (set by the scheduler from the cores and the number of parallel tasks)."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def run_task(function: str, kwargs: dict, log_path: str, log_level: str = "INFO",
             threads: int | None = None) -> list[str]:
    """Run one task with its log file; re-raise its error after logging the traceback.

    Returns the configuration keys the task read (see :mod:`iota2.core.fingerprint`). Python warnings raised
    by the task (a library's ``FutureWarning``) go to its log, not to the console.
    """
    if threads:
        os.environ[THREADS_ENV] = str(threads)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(getattr(logging, log_level, logging.INFO))
    task_logger = logging.getLogger("iota2.task")
    config = kwargs.get("config")
    if isinstance(config, dict):
        config = RecordingConfig(config)
        kwargs = {**kwargs, "config": config}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                shown = {key: value for key, value in kwargs.items() if key != "config"}
                task_logger.info("start %s(%s), %d thread(s), process %d", function, shown, task_threads(),
                                 os.getpid())
                start = time.perf_counter()
                Task("t", "s", function).resolve()(**kwargs)
                task_logger.info("done in %.2f s", time.perf_counter() - start)
            finally:
                for warning in caught:
                    handler.handle(task_logger.makeRecord(
                        "py.warnings", logging.WARNING, warning.filename, warning.lineno, "%s: %s (%s:%d)",
                        (warning.category.__name__, warning.message, warning.filename, warning.lineno), None))
    except BaseException:
        # the traceback goes to the task's log only: the console gets one line per failed task from execute()
        record = task_logger.makeRecord("iota2.task", logging.ERROR, __file__, 0, "failed:\n%s",
                                        (traceback.format_exc(),), None)
        handler.handle(record)
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        with contextlib.suppress(OSError):  # a full disk: the task's own error says so
            handler.close()
    return config.recorded() if isinstance(config, RecordingConfig) else []


class _DebugExecutor:
    """Runs tasks one after the other in this process."""

    def __init__(self, allowed_retry: int):
        self.allowed_retry = allowed_retry
        self.finished: list = []

    def submit(self, name, args, resources=None, in_driver=True):  # noqa: ARG002 - one process: nothing to place
        error, reads = None, []
        for _attempt in range(self.allowed_retry + 1):
            try:
                reads = run_task(*args)
                error = None
                break
            except Exception as exc:  # noqa: BLE001 - reported by the driver
                error = exc
        self.finished.append((name, error, reads))

    def wait_any(self):
        finished, self.finished = self.finished, []
        return finished

    def close(self):
        pass


class _DaskExecutor:
    """Submits tasks to a dask distributed cluster."""

    def __init__(self, cluster, allowed_retry: int):
        from distributed import Client, as_completed

        self.cluster = cluster
        self.client = Client(cluster)
        self.allowed_retry = allowed_retry
        self.as_completed = as_completed([], with_results=False)
        self.names = {}

    def submit(self, name, args, resources=None, in_driver=True):  # noqa: ARG002 - every task goes to the cluster
        future = self.client.submit(run_task, *args, key=name, retries=self.allowed_retry, pure=False,
                                    resources=resources or None)
        self.names[future.key] = name
        self.as_completed.add(future)

    def wait_any(self):
        future = next(self.as_completed)
        return self._collect([future] + list(self.as_completed.next_batch(block=False)))

    def poll(self):
        """The tasks finished so far (none: an empty list), without waiting."""
        return self._collect(list(self.as_completed.next_batch(block=False))) if self.names else []

    def _collect(self, batch):
        finished = []
        for item in batch:
            error, reads = None, []
            if item.status != "finished":
                try:
                    error = item.exception() or RuntimeError(f"task ended with status {item.status}")
                except Exception as exc:  # noqa: BLE001 - cancelled / lost worker
                    error = exc
            else:
                try:
                    reads = item.result()
                except Exception as exc:  # noqa: BLE001 - the result could not be fetched (worker lost)
                    error = exc
            finished.append((self.names.pop(item.key), error, reads))
            item.release()
        return finished

    def close(self):
        self.client.close()
        self.cluster.close()


class _WhileStartingExecutor:
    """Runs tasks in this process, one at a time, until the dask cluster being started is ready, then
    submits them to it (tasks that wait for the local slot go to the cluster as soon as it is ready).

    Starting the workers of a ``localCluster`` takes seconds of imports; the first tasks of a run (tile
    preparation, ground truth, sample selection) are short and mostly one after the other, so they run in
    the driver meanwhile instead of waiting. Tasks submitted with ``in_driver=False`` (a step ``per_chunk``) and
    tasks asking for resources wait for the workers: a chunk in the driver paid for loading the compiled kernels
    and took a core from the starting workers (a 1000 px features map on 2 workers: 2.2 s of first-chunk costs
    over three processes instead of two)."""

    def __init__(self, starting, allowed_retry: int):
        self.starting = starting
        self.allowed_retry = allowed_retry
        self.local = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="iota2-task")
        self.running: dict = {}  # local future -> (name, args, attempt)
        self.waiting: collections.deque = collections.deque()
        self.dask: _DaskExecutor | None = None

    def _ready(self) -> bool:
        if self.dask is None and self.starting.done():
            self.dask = _DaskExecutor(self.starting.result(), self.allowed_retry)
            while self.waiting:
                name, args, resources, _in_driver = self.waiting.popleft()
                self.dask.submit(name, args, resources)
        return self.dask is not None

    def _run_here(self, name, args, attempt: int = 0) -> None:
        self.running[self.local.submit(run_task, *args)] = (name, args, attempt)

    def submit(self, name, args, resources=None, in_driver=True):
        if self._ready():
            self.dask.submit(name, args, resources)
        elif not self.running and in_driver and not resources:
            self._run_here(name, args)
        else:
            self.waiting.append((name, args, resources, in_driver))

    def _run_a_waiting_task_here(self) -> None:
        """Run the first waiting task that may run in the driver, if any."""
        for index, (name, args, resources, in_driver) in enumerate(self.waiting):
            if in_driver and not resources:
                del self.waiting[index]
                self._run_here(name, args)
                return

    def wait_any(self):
        while True:
            finished = []
            for future in [future for future in self.running if future.done()]:
                name, args, attempt = self.running.pop(future)
                error = future.exception()
                if error is not None and attempt < self.allowed_retry:
                    self._run_here(name, args, attempt + 1)
                else:
                    finished.append((name, error, [] if error is not None else future.result()))
            if not self._ready() and not self.running and self.waiting:
                self._run_a_waiting_task_here()
            if self.dask is not None:
                if not self.running:
                    return finished + (self.dask.poll() if finished else self.dask.wait_any())
                finished += self.dask.poll()
            if finished:
                return finished
            # wake up when a local task ends or the cluster is ready; cluster tasks are polled meanwhile
            concurrent.futures.wait([*self.running] + ([] if self.dask is not None else [self.starting]),
                                    timeout=0.02, return_when=concurrent.futures.FIRST_COMPLETED)

    def close(self):
        self.local.shutdown(wait=True)
        if self.dask is not None:
            self.dask.close()
        elif self.starting.exception() is None:
            self.starting.result().close()


class _BarTicker:
    """Keeps the progress bar alive during long tasks: the running steps in its postfix, the elapsed time
    redrawn every second."""

    def __init__(self, bar):
        self.bar = bar
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._tick, name="iota2-progress", daemon=True)
        self.thread.start()

    def show(self, running: set, graph: Graph) -> None:
        steps = collections.Counter(graph.tasks[name].step for name in running)
        text = ", ".join(f"{step} x{count}" if count > 1 else step for step, count in sorted(steps.items()))
        self.bar.set_postfix_str(f"running: {text}" if text else "", refresh=True)

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            self.bar.refresh()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)


def start_worker_server() -> str:
    """Start the server local dask workers are forked from, with Ctrl-C ignored; return the multiprocessing
    method of the workers (``"forkserver"``, or ``"spawn"`` where the platform has no fork server).

    A Ctrl-C in a terminal reaches every process of the group: the driver stops the run and closes the workers
    itself. Started from the main thread (the command line calls this before it starts the cluster in a
    thread), the server and every worker forked from it ignore SIGINT from their first instruction, so none of
    them prints a traceback, even while it is still importing its libraries. Elsewhere the server is started
    by dask and the workers ignore SIGINT from their preload on.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    if threading.current_thread() is threading.main_thread():
        from multiprocessing import forkserver

        # the modules distributed preloads in its fork server (distributed.utils.get_mp_context)
        multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", "numpy", "pandas"])
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the server and its children
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, previous)
    return "forkserver"


def _local_worker_resources(config) -> dict | None:
    """``{"GPU": 1}`` for the workers of a local cluster when the run's learner would use a GPU and one is there."""
    if config is None:
        return None
    try:
        from iota2.core.learner import local_worker_resources, select_learner

        learner = select_learner(config)
        return local_worker_resources(learner, learner.settings_from_config(config))
    except Exception:  # noqa: BLE001 - a configuration without learner (a features map): plain workers
        return None


def make_cluster(scheduler_type: str, nb_parallel_tasks: int, config=None, dry_run: bool = False,
                 warm_learner: bool = True):
    """Create the dask cluster of a scheduler type (``None`` for ``debug``).

    For ``Slurm``/``PBS`` the job parameters come from the ``slurm`` section; one job runs one
    worker of one task at a time, and ``nb_parallel_tasks`` jobs are requested. ``warm_learner``: whether the
    local workers warm the default learner up at start (:attr:`iota2.core.builder.Builder.learns`).
    """
    if scheduler_type == "debug":
        return None
    if scheduler_type == "localCluster":
        import dask
        from distributed import LocalCluster

        # workers forked from one server process that has imported distributed, numpy and pandas once start
        # faster than interpreters spawned from scratch (0.6 s of the benchmark's 2 cores) and share those pages
        method = start_worker_server()
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            worker_resources = _local_worker_resources(config)
            cluster = LocalCluster(n_workers=nb_parallel_tasks, threads_per_worker=1, processes=True,
                                   memory_limit=0, dashboard_address=":0", preload=["iota2.core.worker_preload"],
                                   env={THREADS_ENV: str(max(1, (os.cpu_count() or 1) // nb_parallel_tasks)),
                                        WARM_LEARNER_ENV: "1" if warm_learner else "0"},
                                   resources=worker_resources)
            cluster.iota2_worker_resources = worker_resources  # what tasks may ask for (a GPU)
            return cluster
    if scheduler_type in ("Slurm", "PBS"):
        import dask_jobqueue

        options = dict(config["slurm"]) if config is not None else {}
        kwargs = {"cores": options.get("cores") or 1, "processes": 1, "memory": options.get("memory") or "4GB",
                  "walltime": options.get("walltime") or "01:00:00",
                  "job_extra_directives": list(options.get("job_extra_directives") or []),
                  "worker_extra_args": ["--preload", "iota2.core.worker_preload"],
                  # a free port for the dashboard: two runs on one login node do not warn about port 8787
                  "scheduler_options": {"dashboard_address": ":0"},
                  "python": sys.executable}
        if options.get("queue"):
            kwargs["queue"] = options["queue"]
        if options.get("account"):
            kwargs["account"] = options["account"]
        if options.get("local_directory"):
            kwargs["local_directory"] = options["local_directory"]
        cluster_class = dask_jobqueue.SLURMCluster if scheduler_type == "Slurm" else dask_jobqueue.PBSCluster
        cluster = cluster_class(**kwargs)
        if not dry_run:
            # a job cancelled, preempted or past its walltime is replaced: the run never waits on no worker
            cluster.adapt(minimum_jobs=nb_parallel_tasks, maximum_jobs=nb_parallel_tasks)
        return cluster
    raise ConfigError(f"-scheduler_type {scheduler_type!r} is unknown; use one of {', '.join(SCHEDULER_TYPES)}")


def describe_error(error: BaseException) -> str:
    """One line for a failed task: a disk error (full disk, quota) says which folder and what to do."""
    code = getattr(error, "errno", None)
    if isinstance(error, OSError) and not isinstance(error, OutputWriteError) and code in DISK_ERRNOS:
        where = f" ({error.filename})" if error.filename else ""
        return f"{type(error).__name__}: {DISK_ERRNOS[code]}{where}; free space and run again with -restart"
    return f"{type(error).__name__}: {error}"


def record(status: TaskStatus, name: str, state: str, fingerprint: str | None = None,
           reads: list[str] | None = None) -> None:
    """Record a task's state in the journal; a journal that cannot be written stops the run with the reason."""
    try:
        status.set(name, state, fingerprint, reads)
    except OSError as exc:
        reason = DISK_ERRNOS.get(exc.errno, exc.strerror or str(exc))
        raise OutputWriteError(exc.errno, f"cannot record the state of task '{name}' in {status.path}: {reason}; "
                                          "free space and run again with -restart") from None


def execute(graph: Graph, output_path: str | Path, scheduler_type: str = "debug", nb_parallel_tasks: int = 1,
            restart: bool = False, allowed_retry: int = 0, log_level: str = "INFO", config=None,
            progress: bool = True, cluster=None) -> dict[str, str]:
    """Run every task of ``graph`` and return ``{task: "done" | "failed" | "skipped"}``.

    ``cluster`` is a dask cluster started beforehand (see :func:`make_cluster`; the CLI starts it while it
    checks the inputs), or a :class:`concurrent.futures.Future` of one still starting, in which case the
    first tasks run in this process until it is ready; it is closed at the end. Without it, one is made
    from ``scheduler_type``.

    Raises
    ------
    TaskFailedError
        If any task failed after its retries; the message names the task and its log file.
    """
    output_path = Path(output_path)
    output_path.mkdir(parents=True, exist_ok=True)
    status = TaskStatus(output_path / graph.status_file)
    fingerprints = graph.full.up_to_date(status)  # tasks whose outputs are still those of the current settings
    if restart:  # a task whose settings or inputs changed runs again, and so does every task after it
        states = {name: "done" for name in graph.tasks if name in fingerprints}
    else:
        states = {}
        status.invalidate(list(graph.tasks))
        for name in graph.tasks:
            fingerprints.pop(name, None)
    to_run = [name for name in graph.tasks if name not in states]
    if nb_parallel_tasks < 1:
        raise ConfigError("-nb_parallel_tasks must be >= 1")
    cores = os.cpu_count() or 1
    local = scheduler_type in ("debug", "localCluster")
    if cluster is None:
        cluster = make_cluster(scheduler_type, nb_parallel_tasks, config)
    if cluster is None:
        executor = _DebugExecutor(allowed_retry)
    elif isinstance(cluster, concurrent.futures.Future):  # still starting: first tasks run here meanwhile
        executor = _WhileStartingExecutor(cluster, allowed_retry)
    else:
        executor = _DaskExecutor(cluster, allowed_retry)
    worker_resources = None
    if cluster is not None:  # what the workers declare (a GPU), to send tasks that ask for one there
        worker_resources = getattr(cluster, "iota2_worker_resources", None)
        if worker_resources is None and scheduler_type == "localCluster":
            worker_resources = _local_worker_resources(config)
    bar = None
    if progress and to_run:
        from tqdm import tqdm

        bar = tqdm(total=len(to_run), desc="iota2", unit="task", file=sys.stderr, dynamic_ncols=True,
                   bar_format=BAR_FORMAT)
        bar_ticker = _BarTicker(bar)
    failures: list[str] = []
    running: set[str] = set()
    # unmet dependencies per task and the reverse index: each completion costs its number of dependents
    unmet = {name: sum(1 for dep in graph.tasks[name].dependencies if states.get(dep) != "done") for name in to_run}
    dependents: dict[str, list[str]] = {}
    for name in to_run:
        for dep in graph.tasks[name].dependencies:
            dependents.setdefault(dep, []).append(name)
    ready = collections.deque(name for name in to_run if unmet[name] == 0)

    def skip_dependents_of(name: str) -> None:
        stack = list(dependents.get(name, ()))
        while stack:
            child = stack.pop()
            if child in states:
                continue
            states[child] = "skipped"
            if bar is not None:
                bar.update(1)
            stack.extend(dependents.get(child, ()))

    try:
        while ready or running:
            # submit no more tasks than can run: dask then places each on an idle worker at once, and
            # tasks start in graph order (its own queues let a busy worker hold tasks an idle one could run)
            while ready and len(running) < nb_parallel_tasks:
                name = ready.popleft()
                if name in states:  # skipped meanwhile
                    continue
                task = graph.tasks[name]
                function = task.function_name
                running.add(name)
                if bar is not None:
                    bar_ticker.show(running, graph)
                # on this machine, the cores are shared by the tasks about to run: a task that runs alone
                # (learning a single model, a serial step) gets them all; cluster jobs keep their own setting
                in_flight = 1 if cluster is None else min(nb_parallel_tasks, len(running) + len(ready))
                threads = task_threads_of(task.resources, max(1, cores // in_flight) if local else None)
                executor.submit(name, (function, task.kwargs, str(task_log_path(output_path, task)), log_level,
                                       threads), dask_resources(task.resources, worker_resources),
                                in_driver=not graph.steps[task.step].per_chunk)
            if not running:
                break
            for name, error, reads in executor.wait_any():
                running.discard(name)
                if error is None:
                    states[name] = "done"
                    task = graph.tasks[name]
                    dependencies = task.all_dependencies
                    if all(dep in fingerprints for dep in dependencies):
                        fingerprints[name] = task_fingerprint(task.function_name, task.kwargs, reads,
                                                              [fingerprints[dep] for dep in dependencies],
                                                              output_folder=status.path.parent)
                        record(status, name, "done", fingerprints[name], reads)
                    else:  # an earlier output of unknown origin: the task is rerun by the next -restart
                        record(status, name, "done")
                    for child in dependents.get(name, ()):
                        unmet[child] -= 1
                        if unmet[child] == 0 and child not in states:
                            ready.append(child)
                else:
                    states[name] = "failed"
                    record(status, name, "failed")
                    log = task_log_path(output_path, graph.tasks[name])
                    failures.append(f"task '{name}' failed ({describe_error(error)}); log: {log}")
                    LOGGER.error(failures[-1])
                    skip_dependents_of(name)
                if bar is not None:
                    bar.update(1)
                    bar_ticker.show(running, graph)
        for name in to_run:  # dependencies that can never be met (not with a valid graph)
            states.setdefault(name, "skipped")
    finally:
        if bar is not None:
            bar_ticker.stop()
            bar.close()
        executor.close()
    if failures:
        skipped = sum(1 for state in states.values() if state == "skipped")
        message = "; ".join(failures[:3]) + (f" (and {len(failures) - 3} more)" if len(failures) > 3 else "")
        if skipped:
            message += f"; {skipped} dependent task(s) skipped. Fix the cause and run again with -restart"
        raise TaskFailedError(message)
    return states
