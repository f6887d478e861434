#!/usr/bin/env python
"""Benchmark: the classification chain at two tile sizes, projected to a full Sentinel-2 tile (10980 x 10980 px).

A full tile of 30-40 dates is what users run. This benchmark runs the chain of ``bench_chain.py`` (generated
THEIA tile, ``localCluster`` x2, random forest of 100 trees, automatic chunking) at 36 dates for each size of
``--sizes`` (default 1000 and 2000 px; ``--large`` adds 4000), and from the task logs prints, per step, the task
seconds per pixel at each size and whether they are flat (within +-10 %) from the smallest to the largest size.
It projects the largest run to 10980 x 10980 px (steps scaled by the pixel count, except what does not grow with
the tile, kept as it is: the learning, whose samples are the same, each worker's first task of a step beyond the
step's median task, and the startup),
prints the pixels per second per core and the peak memory of the whole run (driver and workers, sampled every
0.2 s), and checks the targets: projection < 15 min on these cores, peak < 4 GB.

Then, in a child process, it profiles one chunk of the largest tile with ``cProfile``: the chain's task function
(``classify_chunk``: features of the chunk and the forest) on the second chunk, after a first chunk that opened
the input files, and prints the number of ``rasterio.open`` calls and the top functions by own time.

Usage::

    python bench/bench_tile_projection.py                 # 1000 and 2000 px, 36 dates (a few minutes here)
    python bench/bench_tile_projection.py --large         # and 4000 px
    python bench/bench_tile_projection.py --quick         # 150 and 300 px, 6 dates, 10 trees (smoke run)
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import (DEFAULT_WORK, TILE, chunk_task_setup, ensure_dataset, log,  # noqa: E402
                         parse_task_logs, span_of, verdict, write_config, write_json)

from iota2.core.layout import OutputLayout  # noqa: E402

FULL_TILE = 10980
FLAT = 0.10
TARGET_MINUTES = 15.0
TARGET_PEAK_GB = 4.0
FIRST_DATE = datetime.date(2018, 1, 5)


def dates_every(count: int, step: int) -> list[str]:
    return [(FIRST_DATE + datetime.timedelta(days=step * index)).strftime("%Y%m%d") for index in range(count)]


# ------------------------------------------------------------------------------------------------ run
class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                tree = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.processes = max(self.processes, len(tree))
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_chain(config_path: Path, output: Path, args) -> dict:
    """Our chain through the command line (a fresh process), with the peak RSS of its process tree."""
    if output.exists():
        shutil.rmtree(output)
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config_path), "-scheduler_type", "localCluster",
               "-nb_parallel_tasks", str(args.nb_parallel_tasks), "-no_progress"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = TreeMemory(process.pid)
    text, _ = process.communicate()
    wall = time.perf_counter() - start
    peak = memory.stop()
    if process.returncode != 0:
        sys.stderr.write(text)
        raise SystemExit(f"the chain failed (exit {process.returncode}); logs under {OutputLayout(output).logs}")
    steps = parse_task_logs(output)
    return {"wall_s": wall, "steps": steps, "tasks_span_s": span_of(steps, list(steps)), "peak_bytes": peak,
            "processes": memory.processes}


# ------------------------------------------------------------------------------------------------ profile
def child_profile(spec: dict) -> dict:
    """Profile ``classify_chunk`` on the second chunk of the tile (the first one opens the inputs)."""
    from iota2.builders import classification
    from iota2.core.allocator import reuse_freed_memory

    reuse_freed_memory()  # as the chain's workers do
    builder, windows, grid, output = chunk_task_setup(spec)
    cfg = builder.config.as_dict()

    def classify(index: int) -> None:
        window = windows[index]
        classification.classify_chunk(cfg, TILE, grid.to_dict(), [int(window.col_off), int(window.row_off),
                                      int(window.width), int(window.height)], index, builder.dates_by_sensor,
                                      builder.regions, 1, builder.labels, str(output))

    start = time.perf_counter()
    classify(0)
    first = time.perf_counter() - start
    index = 1 if len(windows) > 1 else 0
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    classify(index)
    profiler.disable()
    seconds = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    opens = {"calls": 0, "seconds": 0.0}
    rows = []
    for (filename, line, name), (primitive, calls, own, cumulative, _) in stats.stats.items():
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})" if line else name
        if name == "open" and filename.replace("\\", "/").endswith("rasterio/__init__.py"):
            opens = {"calls": int(calls), "seconds": float(cumulative)}
        rows.append({"where": where, "calls": int(calls), "own_s": float(own), "cumulative_s": float(cumulative)})
    rows.sort(key=lambda row: -row["own_s"])
    window = windows[index]
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
    Path(spec["report"]).write_text(stream.getvalue())
    return {"chunks": len(windows), "chunk": index + 1, "chunk_rows": int(window.height),
            "chunk_cols": int(window.width), "first_chunk_s": first, "chunk_s": seconds, "rasterio_open": opens,
            "top": rows[:spec["top"]], "report": spec["report"]}


def run_child(spec: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"profile child failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report
def step_table(runs: list[dict]) -> list[dict]:
    """Per step: task seconds per megapixel at each size, net of each process's first-task excess
    (:func:`first_task_excess`, a fixed cost), and the change from the smallest to the largest size."""
    excess = [first_task_excess(run["steps"]) for run in runs]
    names = []
    for run in runs:
        names += [name for name in run["steps"] if name not in names]
    big = runs[-1]
    total = sum(entry["sum_s"] for entry in big["steps"].values())
    table = []
    for name in names:
        per_mpx = [(run["steps"][name]["sum_s"] - excess[index].get(name, {}).get("sum_s", 0.0))
                   / (run["size"] ** 2 / 1e6) if name in run["steps"] else None for index, run in enumerate(runs)]
        change = None
        if per_mpx[0] and per_mpx[-1] is not None:
            change = per_mpx[-1] / per_mpx[0] - 1
        share = big["steps"].get(name, {"sum_s": 0.0})["sum_s"] / total if total else 0.0
        table.append({"step": name, "per_mpx": per_mpx, "change": change, "share": share,
                      "tasks": [run["steps"].get(name, {"tasks": 0})["tasks"] for run in runs]})
    return sorted(table, key=lambda row: -row["share"])


FIXED_STEPS = ("learning",)
"""Steps whose work does not grow with the tile: the forest is fitted on the same samples at every size (the
``constant`` strategy's 500 per class; the step table shows its task seconds unchanged from one size to the
other), so the projection keeps their time as it is instead of scaling it with the pixel count."""


def first_task_excess(steps: dict) -> dict[str, dict]:
    """Per step of several tasks (chunks): what each process's first task of the step took beyond the step's median
    task (opening the inputs, loading the model, first use of the chunk's memory), paid once per process whatever
    the tile's size. ``sum_s``: over the processes; ``span_s``: the largest (the processes pay it side by side)."""
    excess = {}
    for name, entry in steps.items():
        runs = [run for run in entry.get("runs", []) if run[0] is not None and run[2] is not None]
        if len(runs) < 4:
            continue
        median = float(np.median([seconds for _, seconds, _ in runs]))
        firsts: dict[int, tuple] = {}
        for start, seconds, process in runs:
            if process not in firsts or start < firsts[process][0]:
                firsts[process] = (start, seconds)
        extra = [max(0.0, seconds - median) for _, seconds in firsts.values()]
        excess[name] = {"processes": len(firsts), "median_s": median, "sum_s": sum(extra), "span_s": max(extra)}
    return excess


def projection(run: dict, cores: int) -> dict:
    """The largest run scaled to a full tile: task spans by the pixel count, except what does not grow with the
    tile, kept as it is: :data:`FIXED_STEPS`, each process's first-task excess (:func:`first_task_excess`) and the
    startup. ``all_scaled_s`` scales everything but the startup (the rule before)."""
    scale = FULL_TILE ** 2 / run["size"] ** 2
    fixed = run["wall_s"] - run["tasks_span_s"]
    steps = run["steps"]
    task_seconds = sum(entry["sum_s"] for entry in steps.values())
    fixed_names = [name for name in FIXED_STEPS if name in steps]
    fixed_span = span_of(steps, fixed_names) if fixed_names else 0.0
    fixed_task_seconds = sum(steps[name]["sum_s"] for name in fixed_names)
    excess = first_task_excess({name: entry for name, entry in steps.items() if name not in fixed_names})
    excess_span = sum(entry["span_s"] for entry in excess.values())
    excess_task_seconds = sum(entry["sum_s"] for entry in excess.values())
    kept_span = fixed_span + excess_span
    kept_task_seconds = fixed_task_seconds + excess_task_seconds
    return {"scale": scale, "fixed_s": fixed,
            "wall_s": fixed + (run["tasks_span_s"] - kept_span) * scale + kept_span,
            "all_scaled_s": fixed + run["tasks_span_s"] * scale,
            "from_task_seconds_s": fixed + (task_seconds - kept_task_seconds) * scale / cores
            + fixed_task_seconds + excess_task_seconds / cores,
            "fixed_steps_s": fixed_span, "first_task_excess": excess, "first_task_excess_s": excess_span,
            "px_per_s_per_core": run["size"] ** 2 / task_seconds if task_seconds else float("inf")}


def print_report(args, runs: list[dict], profile: dict | None, load: tuple[float, float]) -> None:
    cores = args.nb_parallel_tasks
    print()
    print(f"=== chain per pixel: 1 tile, {args.dates} dates, RF {args.trees} trees, localCluster x{cores}, "
          f"{os.cpu_count()} cores; load average {load[0]:.2f} at start, {load[1]:.2f} at the end ===")
    sizes = "".join(f"{str(run['size']) + ' px':>14}" for run in runs)
    print(f"{'step':<20}{sizes}   {'change':>8} {'share':>6}   flat (+-{FLAT:.0%})")
    flat_ok = growth_ok = True
    for row in step_table(runs):
        cells = "".join(f"{v:11.3f} s " if v is not None else f"{'-':>13} " for v in row["per_mpx"])
        change = f"{row['change']:+8.1%}" if row["change"] is not None else f"{'-':>8}"
        weighs = row["share"] >= 0.05 and row["step"] not in FIXED_STEPS
        ok = row["change"] is not None and abs(row["change"]) <= FLAT
        if weighs:
            flat_ok &= ok
            growth_ok &= row["change"] is not None and row["change"] <= FLAT
        mark = verdict(ok) if weighs else ("(fixed: same samples)" if row["step"] in FIXED_STEPS
                                           else "(< 5 % of the time)")
        print(f"{row['step']:<20}{cells}  {change} {row['share']:6.1%}   {mark}")
    print("(task seconds per megapixel: the summed 'done in X s' of the step's tasks, less each process's first task "
          "beyond the step's median, / tile pixels x 1e-6)")
    for run in runs:
        print(f"{run['size']:>5} px: chain {run['wall_s']:.1f} s (tasks {run['tasks_span_s']:.1f} s, startup and "
              f"scheduler {run['wall_s'] - run['tasks_span_s']:.1f} s), classification "
              f"{run['steps'].get('classification', {}).get('wall_s', 0):.1f} s, extraction "
              f"{run['steps'].get('extraction', {}).get('wall_s', 0):.1f} s, peak RSS of the run "
              f"{run['peak_bytes'] / 2**30:.2f} GiB ({run['processes']} processes)")
    print(f"PER-PIXEL TIME FLAT from {runs[0]['size']} to {runs[-1]['size']} px (steps >= 5 % of the time, "
          f"+-{FLAT:.0%}): {verdict(flat_ok)}")
    print(f"PER-PIXEL TIME NOT GROWING (no step >= 5 % of the time above +{FLAT:.0%}; a time per pixel that falls "
          f"with the size makes the projection from the largest size an upper bound): {verdict(growth_ok)}")
    big = runs[-1]
    projected = projection(big, cores)
    minutes = projected["wall_s"] / 60
    peak_gb = max(run["peak_bytes"] for run in runs) / 1e9
    print(f"PROJECTION {FULL_TILE}x{FULL_TILE} px, {args.dates} dates, from {big['size']} px "
          f"(x{projected['scale']:.1f}): "
          f"{minutes:.1f} min ({projected['from_task_seconds_s'] / 60:.1f} min from task seconds / {cores} cores; "
          f"kept as they are: {', '.join(FIXED_STEPS)} {projected['fixed_steps_s']:.1f} s, first task of each "
          f"process beyond the median {projected['first_task_excess_s']:.1f} s; "
          f"{projected['all_scaled_s'] / 60:.1f} min if scaled too)   "
          f"target < {TARGET_MINUTES:.0f} min: {verdict(minutes < TARGET_MINUTES)}")
    print(f"THROUGHPUT {projected['px_per_s_per_core']:.0f} px/s per core (tile pixels / summed task seconds)")
    print(f"PEAK RSS {peak_gb:.2f} GB (largest of the runs; driver + workers)   target < {TARGET_PEAK_GB:.0f} GB: "
          f"{verdict(peak_gb < TARGET_PEAK_GB)}")
    if profile:
        opens = profile["rasterio_open"]
        print()
        print(f"one chunk profiled ({profile['chunk_rows']}x{profile['chunk_cols']} px, chunk {profile['chunk']} of "
              f"{profile['chunks']}, classify_chunk): {profile['chunk_s']:.2f} s under cProfile (first chunk "
              f"{profile['first_chunk_s']:.2f} s); rasterio.open calls: {opens['calls']} ({opens['seconds']:.3f} s)")
        forest = [row for row in profile["top"] if row["where"].endswith("(forest_proba)")]
        if forest:
            pixels = profile["chunk_rows"] * profile["chunk_cols"]
            print(f"  forest kernel: {forest[0]['own_s']:.3f} s for {pixels} px of the chunk, "
                  f"{forest[0]['own_s'] / pixels * 1e6:.1f} us per pixel (bench_forest_kernel.py times it alone)")
        print(f"  {'own s':>7} {'cum s':>7} {'calls':>8}  function")
        for row in profile["top"]:
            print(f"  {row['own_s']:7.3f} {row['cumulative_s']:7.3f} {row['calls']:>8}  {row['where']}")
        print(f"  (cumulative view: {profile['report']})")


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2000", help="comma-separated tile sizes in pixels (even)")
    parser.add_argument("--large", action="store_true", help="add 4000 px to the sizes")
    parser.add_argument("--dates", type=int, default=36, help="acquisition dates, every --step days")
    parser.add_argument("--step", type=int, default=10, help="days between dates (also the gap-filling step)")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--samples-per-class", type=int, default=500)
    parser.add_argument("--nb-parallel-tasks", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=12, help="functions listed from the chunk's profile")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the chain per size; the one with the shortest task span is reported (3; 1 quick)")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="150 and 300 px, 6 dates, 10 trees (smoke run)")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (data, outputs)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        if args.sizes == parser.get_default("sizes"):
            args.sizes = "150,300"
        if args.dates == parser.get_default("dates"):
            args.dates = 6
        if args.trees == parser.get_default("trees"):
            args.trees = 10
        if args.repeat == parser.get_default("repeat"):
            args.repeat = 1
    args.size_list = sorted({int(v) for v in args.sizes.split(",") if v.strip()} | ({4000} if args.large else set()))
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    if len(args.size_list) < 2 or any(s % 2 or s < 16 for s in args.size_list):
        parser.error("--sizes: at least two even tile sizes >= 16")
    if args.dates < 2:
        parser.error("--dates must be >= 2")
    # the names bench_chain.write_config reads
    args.date_list = dates_every(args.dates, args.step)
    args.samples_format = "parquet"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_profile(json.loads(args.child))))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bench_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    runs = []
    config_path = output = None
    for size in args.size_list:
        dataset, generated = ensure_dataset(work, size, args.date_list, args.seed)
        log(f"tile {size}x{size}, {args.dates} dates: "
            + (f"generated in {generated:.1f} s" if generated is not None else "reused"))
        tag = f"projection_{size}px_{args.dates}dates_{args.trees}trees"
        output = work / f"run_{tag}"
        config_path = write_config(work / f"config_{tag}.yaml", dataset, output, args)
        tries = []
        for attempt in range(args.repeat):
            run = run_chain(config_path, output, args)
            run["size"] = size
            tries.append(run)
            log(f"{size} px, run {attempt + 1} of {args.repeat}: chain {run['wall_s']:.1f} s (tasks "
                f"{run['tasks_span_s']:.1f} s), peak {run['peak_bytes'] / 2**30:.2f} GiB, load average "
                f"{os.getloadavg()[0]:.2f}")
        run = min(tries, key=lambda entry: entry["tasks_span_s"])  # the least disturbed by other processes
        run["peak_bytes"] = max(entry["peak_bytes"] for entry in tries)
        run["repeats"] = [entry["tasks_span_s"] for entry in tries]
        runs.append(run)
    profile = None
    if not args.skip_profile:
        models = [str(p) for p in sorted(OutputLayout(output).models.glob("model_*_seed_*.*"))]
        scratch = work / f"profile_{args.size_list[-1]}px"
        if scratch.exists():
            shutil.rmtree(scratch)
        profile = run_child({"config": str(config_path), "output": str(scratch), "models": models, "top": args.top,
                             "report": str(work / f"profile_{args.size_list[-1]}px.txt")})
    print_report(args, runs, profile, (load_start, os.getloadavg()[0]))
    print(f"\nbenchmark wall time: {time.perf_counter() - bench_start:.1f} s; date {datetime.date.today().isoformat()}")
    if args.json:
        write_json(args.json, {"args": {k: v for k, v in vars(args).items() if k != "child"},
                               "runs": runs, "steps": step_table(runs),
                               "projection": projection(runs[-1], args.nb_parallel_tasks),
                               "profile": profile})
    return 0


if __name__ == "__main__":
    sys.exit(main())
