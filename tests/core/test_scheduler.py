"""Scheduler: debug and a real dask LocalCluster, retries, failures, restart, job scripts."""

import os
from pathlib import Path

import pytest

from iota2.core.errors import TaskFailedError
from iota2.core.graph import STATUS_FILE, Graph, TaskStatus
from iota2.core.scheduler import execute, make_cluster


def diamond(tmp_path: Path, delay: float = 0.0) -> Graph:
    out = str(tmp_path / "trace.txt")
    graph = Graph(["init", "work"])
    graph.add_step("start", "init", "start")
    graph.add_step("branch", "work", "branch")
    graph.add_step("join", "work", "join")
    graph.add_task("start", "start", "scheduler_tasks:append", {"path": out, "text": "start"})
    for name in ("left", "right"):
        graph.add_task(name, "branch", "scheduler_tasks:append", {"path": out, "text": name, "delay": delay},
                       ["start"])
    graph.add_task("join", "join", "scheduler_tasks:append", {"path": out, "text": "join"}, ["left", "right"])
    return graph


def trace(tmp_path: Path) -> list[str]:
    return (tmp_path / "trace.txt").read_text().split()


@pytest.mark.parametrize("scheduler, workers", [("debug", 1), ("localCluster", 2)])
def test_runs_in_dependency_order(tmp_path, scheduler, workers):
    states = execute(diamond(tmp_path), tmp_path / "out", scheduler, workers, progress=False)
    assert set(states.values()) == {"done"}
    order = trace(tmp_path)
    assert order[0] == "start" and order[-1] == "join" and sorted(order[1:3]) == ["left", "right"]
    assert (tmp_path / "out" / "logs" / "branch" / "left.log").exists()
    assert TaskStatus(tmp_path / "out" / STATUS_FILE).is_done("join")


def test_failure_skips_dependents_runs_the_rest_and_names_the_log(tmp_path):
    graph = diamond(tmp_path)
    graph.tasks["left"].function = "scheduler_tasks:fail"
    graph.tasks["left"].kwargs = {"message": "boom"}
    with pytest.raises(TaskFailedError) as error:
        execute(graph, tmp_path / "out", "debug", progress=False)
    message = str(error.value)
    assert "task 'left' failed" in message and "boom" in message
    log = tmp_path / "out" / "logs" / "branch" / "left.log"
    assert str(log) in message
    assert "RuntimeError: boom" in log.read_text()
    assert "1 dependent task(s) skipped" in message
    assert trace(tmp_path) == ["start", "right"]


@pytest.mark.parametrize("scheduler, workers", [("debug", 1), ("localCluster", 2)])
def test_a_failed_task_keeps_its_traceback_in_its_log(tmp_path, caplog, capfd, scheduler, workers):
    """The console gets one line per failed task; the traceback is in the task's log, not printed by iota2 or
    by dask's worker."""
    graph = diamond(tmp_path)
    graph.tasks["left"].function = "scheduler_tasks:fail"
    graph.tasks["left"].kwargs = {"message": "boom"}
    with pytest.raises(TaskFailedError):
        execute(graph, tmp_path / "out", scheduler, workers, progress=False)
    assert "Traceback" in (tmp_path / "out" / "logs" / "branch" / "left.log").read_text()
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out and "Compute Failed" not in printed.err


@pytest.mark.parametrize("scheduler", ["debug", "localCluster"])
def test_retries(tmp_path, scheduler):
    graph = Graph(["g"])
    graph.add_step("s", "g", "s")
    graph.add_task("flaky", "s", "scheduler_tasks:fail_once",
                   {"marker": str(tmp_path / "marker"), "path": str(tmp_path / "trace.txt"), "text": "ok"})
    with pytest.raises(TaskFailedError):
        execute(graph, tmp_path / "out0", scheduler, 1, allowed_retry=0, progress=False)
    (tmp_path / "marker").unlink()
    execute(graph, tmp_path / "out1", scheduler, 1, allowed_retry=1, progress=False)
    assert trace(tmp_path) == ["ok"]


def test_restart_skips_finished_tasks(tmp_path):
    out = tmp_path / "out"  # the tasks write their trace among the run's products
    out.mkdir()
    graph = diamond(out)
    graph.tasks["join"].function = "scheduler_tasks:fail"
    graph.tasks["join"].kwargs = {"message": "disk full"}
    with pytest.raises(TaskFailedError):
        execute(graph, out, "localCluster", 2, progress=False)
    graph = diamond(out)
    execute(graph, out, "localCluster", 2, restart=True, progress=False)
    assert sorted(trace(out)) == ["join", "left", "right", "start"]  # each ran once


def test_without_restart_everything_runs_again(tmp_path):
    execute(diamond(tmp_path), tmp_path / "out", "debug", progress=False)
    execute(diamond(tmp_path), tmp_path / "out", "debug", progress=False)
    assert len(trace(tmp_path)) == 8


@pytest.mark.parametrize("kind, directive", [("Slurm", "#SBATCH"), ("PBS", "#PBS")])
def test_cluster_job_script(kind, directive):
    from iota2.core.config import validate

    config = validate({"chain": {"output_path": "/o", "list_tile": "T1"},
                       "slurm": {"account": "proj42", "queue": "cpu", "walltime": "02:00:00", "memory": "8GB",
                                 "cores": 2, "job_extra_directives": ["--constraint=avx2" if kind == "Slurm"
                                                                      else "-l place=scatter"]}})
    cluster = make_cluster(kind, 3, config, dry_run=True)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert directive in script
    assert "proj42" in script and "cpu" in script and "02:00:00" in script
    assert "avx2" in script or "place=scatter" in script
    assert "distributed.cli.dask_worker" in script or "dask-worker" in script or "dask worker" in script
    assert "--preload iota2.core.worker_preload" in script  # plugins, kernel and allocator set up per job


def test_random_graph_runs_every_task_after_its_dependencies(tmp_path):
    import random

    rng = random.Random(3)
    out = str(tmp_path / "trace.txt")
    graph = Graph(["g"])
    graph.add_step("s", "g", "s")
    names = []
    for index in range(300):
        deps = rng.sample(names, min(len(names), rng.randint(0, 4)))
        function = "scheduler_tasks:fail" if index == 150 else "scheduler_tasks:append"
        kwargs = {"message": "boom"} if index == 150 else {"path": out, "text": f"t{index}"}
        graph.add_task(f"t{index}", "s", function, kwargs, deps)
        names.append(f"t{index}")
    with pytest.raises(TaskFailedError):
        execute(graph, tmp_path / "out", "debug", progress=False)
    order = {name: position for position, name in enumerate(trace(tmp_path))}
    downstream = {"t150"}
    for name in names:
        if set(graph.tasks[name].dependencies) & downstream:
            downstream.add(name)
    for name in names:
        if name in downstream:
            assert name not in order  # the failed task and everything after it did not run
        else:
            assert name in order
            assert all(order[dep] < order[name] for dep in graph.tasks[name].dependencies)


@pytest.mark.parametrize("scheduler", ["debug", "localCluster"])
def test_a_task_running_alone_gets_every_core(tmp_path, scheduler):
    """The single task of a serial step (learning one model, a report) may use all cores; tasks that run side by
    side share them."""
    out = str(tmp_path / "trace.txt")
    graph = Graph(["work"])
    graph.add_step("alone", "work", "alone")
    graph.add_step("pair", "work", "pair")
    graph.add_task("alone", "alone", "scheduler_tasks:record_threads", {"path": out, "text": "alone"})
    for name in ("a", "b"):
        graph.add_task(name, "pair", "scheduler_tasks:record_threads", {"path": out, "text": name, "delay": 0.2},
                       ["alone"])
    execute(graph, tmp_path / "out", scheduler, 2, progress=False)
    threads = dict(line.split("=") for line in trace(tmp_path))
    cores = os.cpu_count()
    assert int(threads["alone"]) == cores
    paired = cores if scheduler == "debug" else max(1, cores // 2)
    assert int(threads["a"]) == int(threads["b"]) == paired


def test_a_task_gets_no_more_threads_than_its_resources_ask(tmp_path):
    """A learner that uses one thread (declared in its task's resources) is not given every core."""
    from iota2.core.learner import Resources

    out = str(tmp_path / "trace.txt")
    graph = Graph(["work"])
    graph.add_step("fit", "work", "fit")
    graph.add_task("single", "fit", "scheduler_tasks:record_threads", {"path": out, "text": "single"},
                   resources=Resources(threads=1))
    graph.add_task("free", "fit", "scheduler_tasks:record_threads", {"path": out, "text": "free"}, ["single"])
    execute(graph, tmp_path / "out", "debug", 1, progress=False)
    threads = dict(line.split("=") for line in trace(tmp_path))
    assert int(threads["single"]) == 1 and int(threads["free"]) == os.cpu_count()


def _starting_cluster(workers: int, delay: float, ready_marker: Path | None = None):
    """A LocalCluster started in a thread after ``delay`` seconds, as the command line does; ``ready_marker`` is
    written once it is ready."""
    import concurrent.futures
    import time as _time

    def start():
        _time.sleep(delay)
        cluster = make_cluster("localCluster", workers)
        if ready_marker is not None:
            ready_marker.write_text("ready")
        return cluster

    return concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(start)


def test_first_tasks_run_here_while_the_cluster_starts(tmp_path):
    """With a cluster still starting, ready tasks run in this process one at a time; once it is ready, the rest
    (and the tasks that waited for the local slot) go to its workers. Dependencies and retries hold."""
    out = str(tmp_path / "trace.txt")
    ready = tmp_path / "cluster_ready"
    graph = Graph(["g"])
    graph.add_step("s", "g", "s")
    graph.add_task("first", "s", "scheduler_tasks:record_pid", {"path": out, "text": "first"})
    graph.add_task("flaky", "s", "scheduler_tasks:fail_once",
                   {"marker": str(tmp_path / "marker"), "path": out, "text": "flaky"}, ["first"])
    previous = "flaky"
    for index in range(10):
        name = f"t{index}"
        graph.add_task(name, "s", "scheduler_tasks:record_pid", {"path": out, "text": name, "delay": 0.2}, [previous])
        previous = name
        if index == 4:  # the chain goes on once the cluster is ready, however long it takes to start here
            graph.add_task("wait", "s", "scheduler_tasks:wait_for", {"marker": str(ready)}, [previous])
            previous = "wait"
    graph.add_task("side", "s", "scheduler_tasks:record_pid", {"path": out, "text": "side"}, ["first"])
    states = execute(graph, tmp_path / "out", "localCluster", 2, allowed_retry=1, progress=False,
                     cluster=_starting_cluster(2, delay=0.5, ready_marker=ready))
    assert set(states.values()) == {"done"}
    records = [line.split("@") for line in (tmp_path / "trace.txt").read_text().split()]
    order = [text for text, *_ in records]
    assert order[0] == "first" and order.index("flaky") < order.index("t0")
    assert [text for text in order if text.startswith("t")] == [f"t{i}" for i in range(10)]
    pids = {text: int(pid) for text, pid in (record for record in records if len(record) == 2)}
    assert pids["first"] == os.getpid()  # ran here while the workers started
    assert pids["t9"] != os.getpid()  # the cluster took over
    for text, pid in pids.items():  # each task's log names the process that ran it
        start = next(line for line in next((tmp_path / "out").rglob(f"{text}.log")).read_text().splitlines()
                     if "iota2.task: start " in line)
        assert start.endswith(f", process {pid}"), start


def test_tasks_per_chunk_wait_for_the_workers_while_the_cluster_starts(tmp_path):
    """The driver runs the light tasks while the workers start, never a task of a ``per_chunk`` step."""
    out = str(tmp_path / "trace.txt")
    graph = Graph(["g"])
    graph.add_step("light", "g", "light")
    graph.add_step("chunk", "g", "one task per chunk", per_chunk=True)
    graph.add_task("first", "light", "scheduler_tasks:record_pid", {"path": out, "text": "first"})
    graph.add_task("after", "light", "scheduler_tasks:record_pid", {"path": out, "text": "after"}, ["first"])
    for index in range(3):
        graph.add_task(f"c{index}", "chunk", "scheduler_tasks:record_pid", {"path": out, "text": f"c{index}"},
                       ["first"])
    states = execute(graph, tmp_path / "out", "localCluster", 2, progress=False,
                     cluster=_starting_cluster(2, delay=1.0))
    assert set(states.values()) == {"done"}
    pids = {text: int(pid) for text, pid in (line.split("@") for line in (tmp_path / "trace.txt").read_text().split())}
    assert pids["first"] == os.getpid() and pids["after"] == os.getpid()  # ran here while the workers started
    assert all(pids[f"c{index}"] != os.getpid() for index in range(3)), pids


def test_a_cluster_that_fails_to_start_is_reported(tmp_path):
    import concurrent.futures

    def broken():
        raise RuntimeError("no room for workers")

    graph = diamond(tmp_path, delay=0.5)
    starting = concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(broken)
    with pytest.raises(RuntimeError, match="no room for workers"):
        execute(graph, tmp_path / "out", "localCluster", 2, progress=False, cluster=starting)


def test_library_warnings_of_a_task_go_to_its_log(tmp_path, capsys):
    graph = Graph(["g"])
    graph.add_step("s", "g", "step")
    graph.add_task("warns", "s", "scheduler_tasks:warn_like_a_library", {"path": str(tmp_path / "trace.txt")})
    execute(graph, tmp_path / "out", "debug", progress=False)
    assert "FutureWarning" not in capsys.readouterr().err
    log = (tmp_path / "out" / "logs" / "s" / "warns.log").read_text()
    assert "FutureWarning: parameter 'x' will change its default in 2.0" in log


def test_progress_bar_names_the_running_steps_and_gives_no_time_estimate():
    import io

    from tqdm import tqdm

    from iota2.core.scheduler import BAR_FORMAT, _BarTicker

    graph = Graph(["g"])
    graph.add_step("learning", "g", "learn")
    graph.add_step("classification", "g", "classify")
    for name, step in (("l0", "learning"), ("c0", "classification"), ("c1", "classification")):
        graph.add_task(name, step, "scheduler_tasks:append", {"path": "x", "text": name})
    stream = io.StringIO()
    bar = tqdm(total=3, file=stream, bar_format=BAR_FORMAT, ncols=120)
    ticker = _BarTicker(bar)
    ticker.show({"l0", "c0", "c1"}, graph)
    ticker.stop()
    bar.close()
    shown = stream.getvalue()
    assert "running: classification x2, learning" in shown
    assert "0/3 tasks" in shown and "<" not in shown  # no remaining-time field


def test_graphs_with_their_own_journals_keep_their_restart_states(tmp_path):
    """Two builders' graphs run into one folder, with the same task names: each keeps its own journal."""
    (tmp_path / "out").mkdir()
    out = str(tmp_path / "out" / "trace.txt")  # a product of the run (not an input whose edits count)
    graphs = []
    for journal in ("IOTA2_tasks_status.txt", "IOTA2_tasks_status_other.txt"):
        graph = Graph(["g"], status_file=journal)
        graph.add_step("s", "g", "step")
        graph.add_task("create_directories", "s", "scheduler_tasks:append", {"path": out, "text": journal})
        graphs.append(graph)
    execute(graphs[0], tmp_path / "out", "debug", progress=False)
    execute(graphs[1], tmp_path / "out", "debug", progress=False)  # not -restart: reruns its own tasks only
    assert TaskStatus(tmp_path / "out" / "IOTA2_tasks_status.txt").is_done("create_directories")
    assert TaskStatus(tmp_path / "out" / "IOTA2_tasks_status_other.txt").is_done("create_directories")
    execute(graphs[0], tmp_path / "out", "debug", progress=False, restart=True)
    assert (tmp_path / "out" / "trace.txt").read_text().split() == ["IOTA2_tasks_status.txt",
                                                                   "IOTA2_tasks_status_other.txt"]


def test_a_local_cluster_does_not_warn_when_port_8787_is_taken():
    """Two runs on one machine (or a notebook's dask dashboard): no "Port 8787 is already in use" on the console."""
    import socket
    import warnings

    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # already taken by another process: the same situation
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_cluster("localCluster", 1).close()
    finally:
        holder.close()
    assert not [w for w in caught if "8787" in str(w.message)]


def _learner_state():
    import sys

    return os.environ.get("IOTA2_WARM_LEARNER"), "sklearn.ensemble" in sys.modules


def test_local_workers_of_a_run_that_does_not_learn_skip_the_learner():
    """A features map's workers start without importing scikit-learn (about 0.7 s of each worker's start)."""
    from distributed import Client

    cluster = make_cluster("localCluster", 1, warm_learner=False)
    try:
        with Client(cluster) as client:
            assert list(client.run(_learner_state).values()) == [("0", False)]
    finally:
        cluster.close()
