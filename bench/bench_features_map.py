#!/usr/bin/env python
"""Benchmark: the features-map builder (``i2_features_map``) with the labwork's feature functions.

One run does, in order:

1. generate synthetic THEIA Sentinel-2 tiles (``iota2.datagen.sentinel2.generate_dataset``, one date every
   ``--step`` days from 2018-01-05, gap-filled on the same grid) under ``bench/_work/``, reused while their
   parameters are unchanged;
2. **throughput**: run the builder through the command line (``python -m iota2.cli -config ...
   -scheduler_type localCluster -nb_parallel_tasks N``, a fresh process each time) on one ``--size`` tile with
   ``external_features: {module: <the labwork's laplace_ndvi>, functions: "get_ndvi laplace_ndvi",
   concat_mode: False}`` and ``chunk_size_mode: split_number``, for 1, 4 and 16 chunks and 1 and 2 workers.
   From the task logs (``done in X s`` lines): the span of all the builder's tasks (``init`` and ``writing``:
   the chunks run beside the tile's validity), of the ``writing`` group (chunks, tile map, final map), of
   ``init``, and the time before the first task (interpreter, configuration, cluster start); throughput in
   pixels x dates per second of the tasks' span; its speed-up from 1 to 2 workers (target >= 1.8x), printed beside the
   host's own ceiling measured before and after the runs: how much faster two CPU-bound processes (a numpy sort,
   one thread each) finish together than one after the other (virtual cores shared with other machines give
   less than 2x), and the **chunk ceiling**: two fresh processes run half of the chunk tasks each, without dask,
   first one after the other, then together; how much faster they finish together is the most a second worker
   can give the chunks here (they compete for memory bandwidth as a numpy sort does not);
3. **memory**: for each tile size (``--memory-sizes``, default 1000 and 2000; ``--large`` adds 4000) with
   ``chunk_size_mode: auto`` and a fixed ``memory_per_task_mb``, a fresh child process runs the task function
   :func:`iota2.builders.features_map.write_chunk` on the first chunk of the tile and reports its peak RSS
   (``VmHWM`` of ``/proc/self/status``, see ``bench_chain.peak_rss_kb``); target: flat within +-10 % of the
   smallest tile's;
4. print a table and one verdict line per target. ``--profile`` adds a cProfile of one chunk task of the
   throughput tile (in a child, after one chunk to warm imports and caches).

Usage::

    python bench/bench_features_map.py                  # 1000 px, 36 dates; memory at 1000 and 2000 px
    python bench/bench_features_map.py --quick          # 200 px, 6 dates; memory at 200 and 400 px (smoke run)
    python bench/bench_features_map.py --large          # memory also at 4000 px (36 dates: 7 GB of data)
    python bench/bench_features_map.py --profile --json result.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import (DEFAULT_WORK, TILE, current_rss_kb, ensure_dataset, log, parse_task_logs,  # noqa: E402
                         peak_rss_kb, span_of, verdict, write_json)

from iota2.core.layout import OutputLayout  # noqa: E402

FIRST_DATE = datetime.date(2018, 1, 5)
CHUNK_COUNTS = (1, 4, 16)
WORKERS = (1, 2)
SPEEDUP_TARGET = 1.8
FLAT = 0.10
FUNCTIONS = "get_ndvi laplace_ndvi"
INIT_STEPS = ["features_map_directories", "features_map_validity"]
WRITING_STEPS = ["features_chunk", "features_tile", "features_map"]
HOST_WORK = """\
import time
import numpy as np
values = np.random.default_rng(0).random((2000, 2000))
start = time.perf_counter()
for _ in range({repeats}):
    np.sort(values, axis=1)
print(time.perf_counter() - start)
"""
"""CPU-bound reference work of :func:`host_ceiling` (about 2 s on one core here at 40 repeats)."""
GENERATOR_BYTES_PER_PIXEL = 400
"""Peak memory of ``generate_dataset`` per pixel of the tile (measured: 370 bytes at 1000 px with 4 or 12 dates; it
writes each date as soon as it is simulated, so the number of dates does not change it)."""

#: the labwork's spatial filter (section 5.3), as printed there
LAPLACE_MODULE = '''\
from scipy.ndimage import laplace
import numpy as np

def laplace_ndvi(self):
    """laplacian filter over date-averaged ndvi"""
    # gets ndvi of the chunk for all dates (x,y,t)
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    # average over dates
    mean_ndvi = np.mean(ndvi, axis=2)
    # apply laplace filter
    filtered = laplace(mean_ndvi, mode="constant")
    return (filtered, ["laplace_ndvi"])
'''


# ------------------------------------------------------------------------------------------------ data
def dates_every(count: int, step: int) -> list[str]:
    """``count`` dates ``step`` days apart from 2018-01-05 (gap-filled on the same grid: one date each)."""
    return [(FIRST_DATE + datetime.timedelta(days=step * index)).strftime("%Y%m%d") for index in range(count)]


def write_config(path: Path, dataset: dict, output: Path, module: Path, step: int, managing: dict) -> Path:
    """A features-map configuration: the labwork's functions only (``concat_mode: False``)."""
    import yaml

    config = {
        "chain": {"output_path": str(output), "list_tile": TILE, "s2_path": dataset["s2_path"]},
        "builders": {"builders_class_name": ["i2_features_map"]},
        "external_features": {"module": str(module), "functions": FUNCTIONS, "concat_mode": False},
        "Sentinel_2": {"temporal_resolution": step},
        "python_data_managing": managing,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def memory_available_kb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------------------------ throughput
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def driver_events(output: Path) -> dict:
    """From the driver's log (``iota2.log``): when each dask worker registered, and when the chunk tasks that
    the driver logged started."""
    workers, chunks = [], []
    path = OutputLayout(output).driver_log
    if not path.exists():
        return {"workers": workers, "chunks": chunks}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = STAMP.match(line)
        if not match:
            continue
        when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if "distributed.scheduler: Register worker" in line:
            workers.append(when)
        elif "iota2.task: start iota2.builders.features_map:write_chunk" in line:
            chunks.append(when)
    return {"workers": workers, "chunks": chunks}


def concurrency(steps: dict) -> float:
    """Summed chunk-task time / span of the chunk tasks: how many chunks ran at once on average."""
    chunk = steps.get("features_chunk")
    if not chunk or not chunk.get("wall_s"):
        return 0.0
    return chunk["sum_s"] / chunk["wall_s"]


def run_cli(config_path: Path, output: Path, workers: int) -> dict:
    """Run the builder through the command line (fresh process); times from the process and the task logs.

    While the ``localCluster`` workers start, the driver runs the ready tasks itself, one at a time
    (``iota2.core.scheduler``); the driver's log tells when the workers registered, hence which chunk tasks
    started before any worker was there (``chunks_in_driver``).
    """
    if output.exists():
        shutil.rmtree(output)
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config_path), "-scheduler_type", "localCluster",
               "-nb_parallel_tasks", str(workers), "-no_progress"]
    launched = datetime.datetime.now()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"features map failed (exit {result.returncode}); logs under {OutputLayout(output).logs}")
    final = OutputLayout(output).final_features_map(None)
    if not final.exists():
        raise SystemExit(f"features map run ended without {final}")
    steps = parse_task_logs(output)
    firsts = [entry["first"] for entry in steps.values() if entry["first"] is not None]
    lasts = [entry["last"] for entry in steps.values() if entry["last"] is not None]
    chunk = steps.get("features_chunk", {"tasks": 0, "sum_s": 0.0})
    events = driver_events(output)
    ready = min(events["workers"]) if events["workers"] else None
    all_ready = max(events["workers"]) if len(events["workers"]) >= workers else None
    return {"wall_s": wall, "steps": steps,
            "writing_s": span_of(steps, WRITING_STEPS), "init_s": span_of(steps, INIT_STEPS),
            "tasks_s": span_of(steps, list(steps)),
            "to_first_task_s": (min(firsts) - launched).total_seconds() if firsts else None,
            "after_last_task_s": wall - (max(lasts) - launched).total_seconds() if lasts else None,
            "first_worker_s": (ready - launched).total_seconds() if ready else None,
            "workers_ready_s": (all_ready - launched).total_seconds() if all_ready else None,
            "chunks_in_driver": sum(1 for when in events["chunks"] if ready is None or when < ready),
            "chunk_tasks": chunk["tasks"], "chunk_sum_s": chunk["sum_s"],
            "chunks_s": span_of(steps, ["features_chunk"]), "concurrency": concurrency(steps),
            "assembly_s": span_of(steps, ["features_tile", "features_map"]), **warm_chunks(chunk.get("runs", []))}


WARMING_CHUNKS = 2
"""Chunk tasks of a process counted as warming it up: the first opens the inputs and loads the user's module, the
second still pays part of the first use of the chunk's memory (measured: 0.70, 0.26, then 0.18 s a chunk)."""


def warm_chunks(runs: list[tuple]) -> dict:
    """Median time of a chunk task once its process is warm (after its :data:`WARMING_CHUNKS` first chunks) and what
    the warming chunks took beyond it, from the ``(start, seconds, process)`` of each chunk task."""
    by_process: dict = {}
    for start, seconds, process in sorted(run for run in runs if run[0] is not None):
        by_process.setdefault(process, []).append(seconds)
    warm = [seconds for times in by_process.values() for seconds in times[WARMING_CHUNKS:]]
    if not warm:
        return {"warm_chunk_s": None, "warming_excess_s": None, "chunk_processes": len(by_process)}
    median = float(np.median(warm))
    excess = sum(max(0.0, seconds - median) for times in by_process.values() for seconds in times[:WARMING_CHUNKS])
    return {"warm_chunk_s": median, "warming_excess_s": excess, "chunk_processes": len(by_process)}


def host_ceiling(repeats: int) -> float:
    """Speed-up of two CPU-bound processes run together over the same two run one after the other.

    Each child times its own work (:data:`HOST_WORK`, one thread), so interpreter start-up is left out: the
    ceiling is ``2 x alone / max(together)``. On two idle physical cores it is close to 2.
    """
    code = HOST_WORK.format(repeats=repeats)
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def start():
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)

    alone = float(start().communicate()[0])
    pair = [start(), start()]
    together = max(float(child.communicate()[0]) for child in pair)
    return 2 * alone / together


def throughput(args, work: Path, module: Path) -> tuple[dict, list[dict]]:
    dataset, generated = ensure_dataset(work, args.size, args.date_list, args.seed)
    log(f"tile {args.size}x{args.size}, {len(args.date_list)} dates: "
        + (f"generated in {generated:.1f} s" if generated is not None else "reused") + f" ({dataset['s2_path']})")
    repeats = 10 if args.quick else 40
    ceilings = [host_ceiling(repeats)]
    log(f"host ceiling (two CPU-bound processes together / one after the other): {ceilings[0]:.2f}x")
    runs = []
    for chunks in args.chunk_list:
        for workers in WORKERS:
            tag = f"fmap_{args.size}px_{len(args.date_list)}dates_{chunks}chunks_{workers}w"
            config = write_config(work / f"config_{tag}.yaml", dataset, work / f"run_{tag}", module, args.step,
                                  {"chunk_size_mode": "split_number", "number_of_chunks": chunks})
            entry = run_cli(config, work / f"run_{tag}", workers)
            entry.update({"chunks": chunks, "workers": workers,
                          "pixel_dates": args.size * args.size * len(args.date_list)})
            entry["throughput"] = entry["pixel_dates"] / entry["tasks_s"] if entry["tasks_s"] > 0 else float("inf")
            runs.append(entry)
            log(f"{chunks} chunk(s), {workers} worker(s): tasks {entry['tasks_s']:.2f} s, writing {entry['writing_s']:.2f} s, "
                f"run {entry['wall_s']:.2f} s")
            if not args.keep_outputs:
                shutil.rmtree(work / f"run_{tag}", ignore_errors=True)
    ceilings.append(host_ceiling(repeats))
    log(f"host ceiling after the runs: {ceilings[1]:.2f}x")
    return {"generated_s": generated, "host_ceiling": ceilings}, runs


# ------------------------------------------------------------------------------------------------ children
def _builder_graph(config_path: str):
    """The builder of ``config_path`` with its inputs checked, and its task graph (tasks as the CLI runs them)."""
    from iota2.builders.i2_features_map import I2FeaturesMap
    from iota2.core.config import load_config

    builder = I2FeaturesMap(load_config(config_path), 1)
    builder.check_inputs()
    return builder, builder.build_graph()


def _run_task(task) -> float:
    start = time.perf_counter()
    task.resolve()(**task.kwargs)
    return time.perf_counter() - start


def child_init(spec: dict) -> dict:
    """Run the ``init`` group (folders, validity) so that a chunk task finds what it would in a run."""
    builder, graph = _builder_graph(spec["config"])
    seconds = {}
    for step in ("features_map_directories", "features_map_validity"):
        for task in graph.tasks_of_step(step):
            seconds[task.name] = _run_task(task)
    return {"seconds": seconds}


def _chunk_setup(spec: dict):
    """Chunk tasks of the tile (from the builder's graph) and their windows; imports warmed as in a worker."""
    from iota2.core.allocator import reuse_freed_memory
    from iota2.core.feature_functions import FeatureFunctions

    reuse_freed_memory()  # as the chain's workers do
    builder, graph = _builder_graph(spec["config"])
    FeatureFunctions.from_config(builder.config)  # the user module (and scipy.ndimage), as a worker has them
    tasks = graph.tasks_of_step("features_chunk")
    tasks[0].resolve()  # imports the step's module
    windows = [task.kwargs["window"] for task in tasks]  # as the builder gave them (rows aligned for overviews)
    return builder, tasks, windows


def child_memory(spec: dict) -> dict:
    """Peak RSS of this fresh process running the first chunk task of the tile (``write_chunk``)."""
    builder, tasks, windows = _chunk_setup(spec)
    baseline = current_rss_kb()
    seconds = _run_task(tasks[0])
    width, height = windows[0][2], windows[0][3]
    return {"chunks": len(windows), "chunk_rows": height, "chunk_cols": width, "chunk_pixels": width * height,
            "dates": len(builder.tile_set.dates_by_sensor["Sentinel_2"]), "seconds": seconds,
            "baseline_kb": baseline, "peak_kb": peak_rss_kb()}


def child_profile(spec: dict) -> dict:
    """cProfile of the chunk task of chunk 1, after chunk 0 (imports, caches, allocator warm)."""
    import cProfile
    import io
    import pstats

    builder, tasks, windows = _chunk_setup(spec)
    warm = _run_task(tasks[0])
    profiler = cProfile.Profile()
    profiler.enable()
    seconds = _run_task(tasks[1])
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(spec.get("top", 15))
    stats.sort_stats("cumulative").print_stats(spec.get("top", 15))
    return {"warm_s": warm, "seconds": seconds, "chunk": windows[1], "stats": text.getvalue()}


def child_chunks(spec: dict) -> dict:
    """Seconds of each chunk task of ``spec["indices"]``, run one after the other in this fresh process (as one
    worker of the chain runs them: one thread, dask's worker environment)."""
    _builder, tasks, _windows = _chunk_setup(spec)
    return {"seconds": [_run_task(tasks[index]) for index in spec["indices"]]}


#: the environment dask's nanny gives the chain's worker processes (``distributed.nanny.pre-spawn-environ``) and
#: the one thread per task of a run with two parallel tasks on two cores
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MALLOC_TRIM_THRESHOLD_": "65536", "IOTA2_TASK_THREADS": "1"}


def start_child(mode: str, spec: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", mode, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ | WORKER_ENV)


def finish_child(child: subprocess.Popen, mode: str, spec: dict) -> dict:
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        sys.stderr.write(stdout[-4000:] + stderr[-4000:])
        raise SystemExit(f"child {mode} failed (exit {child.returncode}) for {spec['config']}")
    return json.loads(stdout.strip().splitlines()[-1])


def chunk_ceiling(args, work: Path, module: Path) -> dict:
    """How much faster two processes run the tile's chunk tasks together than one after the other, with no dask,
    no assembly and no start-up: the most the chunks can gain from a second worker on this host.

    The chunk tasks of the run with the most chunks are cut in two halves, A and B; each half runs in a fresh
    process (:func:`child_chunks`), first A then B, then A and B at once. Each process times its own chunks, and
    the first :data:`WARMING_CHUNKS` of each (first use of inputs and memory) are reported apart.
    """
    chunks = max(args.chunk_list)
    half = chunks // 2
    if half < 1:
        return {}
    dataset, _ = ensure_dataset(work, args.size, args.date_list, args.seed)
    output = work / f"run_fmap_ceiling_{args.size}px"
    shutil.rmtree(output, ignore_errors=True)
    config = write_config(work / f"config_fmap_ceiling_{args.size}px.yaml", dataset, output, module, args.step,
                          {"chunk_size_mode": "split_number", "number_of_chunks": chunks})
    run_child("init", {"config": str(config)})
    halves = [{"config": str(config), "indices": list(range(half))},
              {"config": str(config), "indices": list(range(half, 2 * half))}]
    alone = [finish_child(start_child("chunks", spec), "chunks", spec)["seconds"] for spec in halves]
    pair = [start_child("chunks", spec) for spec in halves]
    together = [finish_child(child, "chunks", spec)["seconds"] for child, spec in zip(pair, halves)]
    shutil.rmtree(output, ignore_errors=True)
    warm = WARMING_CHUNKS if half > WARMING_CHUNKS else 0

    def ratio(skip: int) -> float:
        return sum(sum(times[skip:]) for times in alone) / max(sum(times[skip:]) for times in together)

    result = {"chunks": chunks, "per_process": half, "alone_s": alone, "together_s": together,
              "all": ratio(0), "warm": ratio(warm) if warm else None, "warming_left_out": warm}
    log(f"chunk ceiling ({half} chunks per process): {result['all']:.2f}x"
        + (f", warm chunks {result['warm']:.2f}x" if warm else ""))
    return result


def run_child(mode: str, spec: dict) -> dict:
    """Run one child (a fresh process in a worker's environment) and return what it printed."""
    return finish_child(start_child(mode, spec), mode, spec)


def memory(args, work: Path, module: Path) -> list[dict]:
    results = []
    for size in args.memory_size_list:
        need_kb = size * size * GENERATOR_BYTES_PER_PIXEL / 1024
        available = memory_available_kb()
        stamp_ok = (work / f"data_{size}px_{len(args.memory_date_list)}dates_seed{args.seed}" /
                    "bench_params.json").exists()
        if not stamp_ok and available is not None and need_kb > available:
            raise SystemExit(f"generating a {size}x{size} tile of {len(args.memory_date_list)} dates needs about "
                             f"{need_kb / 2**20:.1f} GiB and {available / 2**20:.1f} GiB are available: pass "
                             "--memory-sizes with smaller tiles")
        dataset, generated = ensure_dataset(work, size, args.memory_date_list, args.seed)
        log(f"memory tile {size}x{size}, {len(args.memory_date_list)} dates: "
            + (f"generated in {generated:.1f} s" if generated is not None else "reused"))
        tag = f"fmap_memory_{size}px_{len(args.memory_date_list)}dates"
        output = work / f"run_{tag}"
        if output.exists():
            shutil.rmtree(output)
        config = write_config(work / f"config_{tag}.yaml", dataset, output, module, args.step,
                              {"chunk_size_mode": "auto", "memory_per_task_mb": args.memory_mb})
        run_child("init", {"config": str(config)})
        entry = run_child("memory", {"config": str(config)})
        entry.update({"size": size, "generated_s": generated, "memory_mb": args.memory_mb})
        results.append(entry)
        log(f"memory {size}px: {entry['chunks']} chunks, first {entry['chunk_rows']}x{entry['chunk_cols']} px, "
            f"peak {entry['peak_kb'] / 1024:.0f} MiB")
        if not args.keep_outputs:
            shutil.rmtree(output, ignore_errors=True)
    return results


# ------------------------------------------------------------------------------------------------ report
def speedups(runs: list[dict]) -> dict[int, dict]:
    """Per chunk count: ratios of 1 worker's time to 2 workers' for all the builder's tasks, the writing group and
    the whole run."""
    by = {(r["chunks"], r["workers"]): r for r in runs}
    out = {}
    for chunks in sorted({r["chunks"] for r in runs}):
        one, two = by.get((chunks, 1)), by.get((chunks, 2))
        if one and two and two["writing_s"] > 0 and two["wall_s"] > 0 and two["tasks_s"] > 0:
            out[chunks] = {"tasks": one["tasks_s"] / two["tasks_s"], "writing": one["writing_s"] / two["writing_s"],
                           "run": one["wall_s"] / two["wall_s"]}
    return out


def print_throughput(args, runs: list[dict], verdicts: dict, ceilings: list[float], chunk_ceiling: dict) -> None:
    dates = len(args.date_list)
    print()
    print(f"=== features map ({FUNCTIONS}, concat_mode False): 1 tile {args.size}x{args.size} px, {dates} dates "
          f"(gap-filled every {args.step} days: {dates} interpolation dates), split_number, localCluster, "
          f"{os.cpu_count()} cores ===")
    header = (f"{'chunks':>6} {'workers':>7} {'run wall':>9} {'1st task':>8} {'workers up':>10} {'init':>6} "
              f"{'tasks':>7} {'writing':>8} {'chunks':>7} {'assembly':>8} {'chunk sum':>9} {'s/chunk':>8} {'at once':>7} "
              f"{'in driver':>9} {'tail':>6} {'px*dates/s':>11}")
    print(header)
    print("-" * len(header))
    for r in runs:
        up = f"{r['workers_ready_s']:>9.2f}s" if r["workers_ready_s"] is not None else f"{'never':>10}"
        print(f"{r['chunks']:>6} {r['workers']:>7} {r['wall_s']:>8.2f}s {r['to_first_task_s']:>7.2f}s {up} "
              f"{r['init_s']:>5.2f}s {r['tasks_s']:>6.2f}s {r['writing_s']:>7.2f}s {r['chunks_s']:>6.2f}s {r['assembly_s']:>7.2f}s "
              f"{r['chunk_sum_s']:>8.2f}s {r['chunk_sum_s'] / max(r['chunk_tasks'], 1):>7.2f}s "
              f"{r['concurrency']:>7.2f} {r['chunks_in_driver']:>4}/{r['chunk_tasks']:<4} "
              f"{r['after_last_task_s']:>5.2f}s {r['throughput']:>11.2e}")
    print("(run wall: the CLI process; 1st task / workers up: seconds from the process start to the first task's "
          "start / to the last worker's registration (interpreter, configuration, graph, dask cluster); tasks: first "
          "task start to last task end (init and writing: what the builder does); writing: first chunk start to "
          "final map end (the chunks run beside the validity of init); chunks: span of the chunk tasks; assembly: tile map + final map; "
          "chunk sum: summed chunk task times; at once: chunk sum / chunks span; in driver: chunk tasks started "
          "before any worker registered (run by the driver while the cluster starts); tail: last task end to "
          "process exit (cluster stop); px*dates/s: tile pixels x dates / tasks)")
    fixed = [r["wall_s"] - r["tasks_s"] for r in runs]
    ups = [r["workers_ready_s"] for r in runs if r["workers_ready_s"] is not None]
    tails = [r["after_last_task_s"] for r in runs]
    firsts = [r["to_first_task_s"] for r in runs]
    print(f"fixed cost per run (run wall - span of all tasks): {min(fixed):.2f}-{max(fixed):.2f} s: "
          f"{min(firsts):.2f}-{max(firsts):.2f} s before the first task, {min(tails):.2f}-{max(tails):.2f} s after "
          f"the last one; workers registered {min(ups, default=0):.2f}-{max(ups, default=0):.2f} s after the "
          "process start")
    ratios = speedups(runs)
    print()
    for chunks, ratio in ratios.items():
        note = "  (one task: nothing to share)" if chunks == 1 else ""
        print(f"speed-up 1 -> 2 workers, {chunks:>2} chunk(s): all tasks {ratio['tasks']:.2f}x, writing "
              f"{ratio['writing']:.2f}x, whole run {ratio['run']:.2f}x{note}")
    top = max((c for c in ratios if c > 1), default=None)
    if top is not None:
        ok = ratios[top]["tasks"] >= SPEEDUP_TARGET
        verdicts["speedup"] = ok
        print(f"SPEEDUP 1 -> 2 workers ({top} chunks, all tasks): {ratios[top]['tasks']:.2f}x   "
              f"target >= {SPEEDUP_TARGET}x: {verdict(ok)}")
    if top is not None:
        pair = {r["workers"]: r for r in runs if r["chunks"] == top}
        if pair.get(1, {}).get("warm_chunk_s") and pair.get(2, {}).get("warm_chunk_s"):
            one, two = pair[1], pair[2]
            print(f"STEADY STATE ({top} chunks, each process's first {WARMING_CHUNKS} chunks left out): a warm chunk "
                  f"takes {one['warm_chunk_s']:.3f} s with 1 worker, {two['warm_chunk_s']:.3f} s with 2: warm chunks "
                  f"run {2 * one['warm_chunk_s'] / two['warm_chunk_s']:.2f}x faster on 2 workers; not shared: the "
                  f"warming chunks' excess ({one['warming_excess_s']:.2f} s over {one['chunk_processes']} processes "
                  f"/ {two['warming_excess_s']:.2f} s over {two['chunk_processes']}) and the assembly "
                  f"({one['assembly_s']:.2f} s / {two['assembly_s']:.2f} s)")
    if ceilings:
        print(f"HOST CEILING: two CPU-bound processes (numpy sort, one thread each) finish "
              f"{' / '.join(f'{c:.2f}x' for c in ceilings)} faster together than one after the other (before / "
              f"after the runs)" + ("; the target is above this host's ceiling" if max(ceilings) < SPEEDUP_TARGET
                                     else ""))
    if chunk_ceiling:
        best = max(chunk_ceiling["all"], chunk_ceiling["warm"] or 0.0)  # more chunks per process: towards "warm"
        warm = (f", {chunk_ceiling['warm']:.2f}x for their warm chunks (each process's first "
                f"{chunk_ceiling['warming_left_out']} left out)") if chunk_ceiling["warm"] else ""
        print(f"CHUNK CEILING: two processes running {chunk_ceiling['per_process']} chunk tasks each of the "
              f"{chunk_ceiling['chunks']}-chunk tile (no dask, no assembly) finish them {chunk_ceiling['all']:.2f}x "
              f"faster together than one after the other{warm}"
              + ("; the builder's tasks cannot reach the target on this host" if best < SPEEDUP_TARGET else ""))


def print_report(args, runs: list[dict], mem: list[dict], load: tuple[str, str],
                 ceilings: list[float] | None = None, chunk_ceiling: dict | None = None) -> dict:
    verdicts = {}
    if runs:
        print_throughput(args, runs, verdicts, ceilings or [], chunk_ceiling or {})
    if mem:
        print()
        print(f"=== peak memory of one chunk task (write_chunk in a fresh process), chunk_size_mode auto, "
              f"memory_per_task_mb {args.memory_mb}, {len(args.memory_date_list)} dates ===")
        header = (f"{'tile px':>11} {'chunks':>6} {'chunk (rows x cols)':>20} {'chunk px':>9} {'s':>6} "
                  f"{'RSS before':>10} {'peak RSS':>9} {'peak-before':>11} {'generated':>9}")
        print(header)
        print("-" * len(header))
        for e in mem:
            generated = f"{e['generated_s']:.0f}s" if e["generated_s"] is not None else "cached"
            print(f"{e['size']:>5}x{e['size']:<5} {e['chunks']:>6} {e['chunk_rows']:>10} x {e['chunk_cols']:<7} "
                  f"{e['chunk_pixels']:>9} {e['seconds']:>6.2f} {e['baseline_kb'] / 1024:>6.0f} MiB "
                  f"{e['peak_kb'] / 1024:>5.0f} MiB {(e['peak_kb'] - e['baseline_kb']) / 1024:>7.0f} MiB "
                  f"{generated:>9}")
        print("(RSS before: after imports, configuration and tiles, before the chunk; peak RSS: VmHWM after it)")
        if len(mem) >= 2:
            small = min(mem, key=lambda e: e["size"])
            worst = 0.0
            for e in sorted(mem, key=lambda e: e["size"]):
                if e is small:
                    continue
                ratio = e["peak_kb"] / small["peak_kb"]
                worst = max(worst, abs(ratio - 1))
                print(f"peak RSS {e['size']} px / {small['size']} px: {ratio:.3f} "
                      f"({(e['size'] / small['size']) ** 2:.0f}x the tile pixels)")
            ok = worst <= FLAT
            verdicts["memory"] = ok
            big = max(mem, key=lambda e: e["size"])
            print(f"PEAK MEMORY PER CHUNK TASK {small['size']}-{big['size']} px: largest deviation "
                  f"{worst * 100:.1f} %   target flat (+-{FLAT * 100:.0f} %): {verdict(ok)}")
    print(f"\nload average before / after: {load[0]} / {load[1]}")
    return verdicts


# ------------------------------------------------------------------------------------------------ main
def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="tile size of the throughput runs (even)")
    parser.add_argument("--dates", type=int, default=36, help="acquisition dates of the throughput tile")
    parser.add_argument("--step", type=int, default=10, help="days between dates (also the gap-filling step)")
    parser.add_argument("--chunks", default=",".join(map(str, CHUNK_COUNTS)), help="number_of_chunks values")
    parser.add_argument("--memory-sizes", default=None, help="tile sizes of the memory runs (default 1000,2000)")
    parser.add_argument("--memory-dates", type=int, default=None,
                        help="dates of the memory tiles (default: --dates)")
    parser.add_argument("--memory-mb", type=int, default=None,
                        help="python_data_managing.memory_per_task_mb of the memory runs (default 1024; 32 quick)")
    parser.add_argument("--large", action="store_true", help="memory runs also at 4000 px")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile one chunk task of the throughput tile")
    parser.add_argument("--keep-outputs", action="store_true", help="keep the runs' output folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--quick", action="store_true", help="200 px, 6 dates, memory at 200 and 400 px (smoke run)")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (data, configs, outputs)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        if args.size == parser.get_default("size"):
            args.size = 200
        if args.dates == parser.get_default("dates"):
            args.dates = 6
    if args.memory_mb is None:
        args.memory_mb = 32 if args.quick else 1024
    if args.memory_sizes:
        args.memory_size_list = [int(v) for v in args.memory_sizes.split(",") if v.strip()]
    else:
        args.memory_size_list = [200, 400] if args.quick else [1000, 2000] + ([4000] if args.large else [])
    if args.memory_dates is None:
        args.memory_dates = args.dates
    args.chunk_list = [int(v) for v in args.chunks.split(",") if v.strip()]
    if args.size % 2 or args.size < 16 or any(s % 2 or s < 16 for s in args.memory_size_list):
        parser.error("tile sizes must be even and >= 16")
    if args.dates < 2 or args.memory_dates < 2:
        parser.error("--dates and --memory-dates must be >= 2")
    if any(c < 1 for c in args.chunk_list):
        parser.error("--chunks: numbers of chunks >= 1")
    args.date_list = dates_every(args.dates, args.step)
    args.memory_date_list = dates_every(args.memory_dates, args.step)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, spec = args.child
        children = {"init": child_init, "memory": child_memory, "profile": child_profile, "chunks": child_chunks}
        print(json.dumps(children[mode](json.loads(spec))))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    module = work / "labwork_laplace_ndvi.py"
    module.write_text(LAPLACE_MODULE)
    bench_start = time.perf_counter()
    load_before = load_average()
    log(f"load average {load_before}; throughput tile {args.size} px, {args.dates} dates; memory tiles "
        f"{','.join(map(str, args.memory_size_list))} px, {args.memory_dates} dates")
    runs, mem, profile, data = [], [], None, {}
    if not args.skip_throughput:
        data, runs = throughput(args, work, module)
        data["chunk_ceiling"] = chunk_ceiling(args, work, module)
    if not args.skip_memory:
        mem = memory(args, work, module)
    if args.profile:
        dataset, _ = ensure_dataset(work, args.size, args.date_list, args.seed)
        output = work / f"run_fmap_profile_{args.size}px"
        shutil.rmtree(output, ignore_errors=True)
        config = write_config(work / f"config_fmap_profile_{args.size}px.yaml", dataset, output, module, args.step,
                              {"chunk_size_mode": "split_number", "number_of_chunks": max(args.chunk_list + [2])})
        run_child("init", {"config": str(config)})
        profile = run_child("profile", {"config": str(config)})
        shutil.rmtree(output, ignore_errors=True)
    verdicts = print_report(args, runs, mem, (load_before, load_average()), data.get("host_ceiling"),
                            data.get("chunk_ceiling"))
    if profile:
        col, row, width, height = profile["chunk"]
        print(f"\n=== cProfile of write_chunk on one chunk ({height}x{width} px, {args.dates} dates): "
              f"{profile['seconds']:.2f} s profiled ({profile['warm_s']:.2f} s for the warm-up chunk) ===")
        print(profile["stats"])
    print(f"benchmark wall time: {time.perf_counter() - bench_start:.1f} s; date {datetime.date.today().isoformat()}")
    if args.json:
        write_json(args.json, {"args": {k: v for k, v in vars(args).items() if k != "child"},
                               "data": data, "throughput": runs, "memory": mem,
                               "profile": profile, "verdicts": verdicts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
