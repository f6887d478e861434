#!/usr/bin/env python
"""Benchmark: feature computation per chunk (``iota2.core.features.read_features``) at two tile sizes.

For each tile size (default 500 and 1000 px; ``--quick``: 120 and 240) and each configuration

* ``A``: Sentinel-2 alone (12 dates, the generator's default),
* ``B``: Sentinel-2 + Sentinel-1 (synthetic GRD, read and gap-filled on the fly) + user features
  (DEM, slope, aspect, landform in another CRS and resolution),

a fresh child process builds the classification builder of the configuration (automatic chunking with
``python_data_managing: {chunk_size_mode: auto, memory_per_task_mb: 256}``) and computes the features
of every chunk of the tile with ``read_features``. It reports the chunk size, the number of features,
the mean time per chunk, the throughput (pixels x features per second) and its own peak RSS
(``VmHWM``). The peak-RSS ratio between the two sizes tells whether memory stays flat with the tile
size (<= 1.25 for 4x the pixels).

Data are generated under ``bench/_work/`` (``--work``) and reused while their parameters are unchanged.

Usage::

    python bench/bench_features.py                  # 500 and 1000 px
    python bench/bench_features.py --quick          # 120 and 240 px (smoke run)
    python bench/bench_features.py --sizes 1000,2000 --memory-mb 512
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import (DEFAULT_WORK, TILE, builder_of, current_rss_kb, ensure_dataset,  # noqa: E402
                         interpolation_step, log, peak_rss_kb, verdict)

CONFIGURATIONS = {"A": "S2", "B": "S2 + S1 + user features"}
FLAT = 1.25


# ------------------------------------------------------------------------------------------------ data
def ensure_extra_data(work: Path, size: int, dataset: dict, seed: int) -> tuple[dict, float | None]:
    """Sentinel-1 images and user features over ``dataset``, regenerated only when their inputs change."""
    from iota2.datagen import sentinel1, user_features

    folder = work / f"extra_{size}px_{len(dataset['dates'][TILE])}dates_seed{seed}"
    stamp = folder / "bench_params.json"
    sources = b"".join(Path(module.__file__).read_bytes() for module in (sentinel1, user_features))
    params = {"dataset": dataset, "seed": seed, "generators": hashlib.sha1(sources).hexdigest()[:12]}
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            return saved["extra"], None
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    s1 = sentinel1.generate_s1(folder / "s1", dataset, seed=seed)
    user = user_features.generate_user_features(folder / "dem", dataset)
    elapsed = time.perf_counter() - start
    extra = {"s1_config": s1["s1_config"], "user_feat_path": user["user_feat_path"], "patterns": user["patterns"],
             "categorical_patterns": user["categorical_patterns"]}
    stamp.write_text(json.dumps({"params": params, "extra": extra}, indent=1))
    return extra, elapsed


def write_config(path: Path, dataset: dict, extra: dict | None, output: Path, memory_mb: int) -> Path:
    import yaml

    dates = dataset["dates"][TILE]
    config = {
        "chain": {"output_path": str(output), "list_tile": TILE, "s2_path": dataset["s2_path"],
                  "ground_truth": dataset["ground_truth"], "data_field": "code",
                  "nomenclature_path": dataset["nomenclature"], "color_table": dataset["color_table"]},
        "arg_train": {"runs": 1, "ratio": 0.5, "random_seed": 0},
        "Sentinel_2": {"temporal_resolution": interpolation_step(sorted(dates))},
        "python_data_managing": {"chunk_size_mode": "auto", "memory_per_task_mb": memory_mb},
    }
    if extra:
        config["chain"]["s1_path"] = extra["s1_config"]
        config["chain"]["user_feat_path"] = extra["user_feat_path"]
        config["userFeat"] = {"arbo": "/*", "patterns": extra["patterns"],
                              "categorical_patterns": extra["categorical_patterns"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ child
def child_features(spec: dict) -> dict:
    """Compute the features of every chunk of the tile; report times, sizes and this process's peak RSS."""
    from iota2.core.allocator import reuse_freed_memory
    from iota2.core.features import read_features

    reuse_freed_memory()  # as the chain's workers do

    builder = builder_of(Path(spec["config"]))
    grid = builder.grids[TILE]
    windows = builder.windows(TILE)
    baseline = current_rss_kb()
    times, n_features, pixels = [], None, 0
    for window in windows:
        start = time.perf_counter()
        block = read_features(builder.config, TILE, grid, window, builder.dates_by_sensor, builder.sensor_classes)
        times.append(time.perf_counter() - start)
        n_features = block.features.shape[2]
        pixels += int(window.width * window.height)
        del block
    total = sum(times)
    first = windows[0]
    return {"chunks": len(windows), "chunk_rows": int(first.height), "chunk_cols": int(first.width),
            "chunk_pixels": int(first.height * first.width), "features": int(n_features),
            "sensors": [cls.config_section for cls in builder.sensor_classes],
            "mean_chunk_s": total / len(windows), "total_s": total, "pixels": pixels,
            "throughput": pixels * n_features / total if total > 0 else float("inf"),
            "baseline_kb": baseline, "peak_kb": peak_rss_kb()}


def run_child(spec: dict, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["IOTA2_TASK_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"child failed (exit {result.returncode}) for {spec['config']}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report
def print_report(args, results: list[dict]) -> None:
    print()
    print(f"=== features per chunk: 1 tile, {len(args.date_list)} S2 dates, chunk_size_mode auto, "
          f"memory_per_task_mb {args.memory_mb}, {os.cpu_count()} cores ===")
    header = (f"{'config':<28} {'tile px':>9} {'chunks':>6} {'chunk (rows x cols)':>20} {'chunk px':>9} "
              f"{'features':>8} {'s/chunk':>8} {'px*feat/s':>11} {'RSS before':>10} {'peak RSS':>9}")
    print(header)
    print("-" * len(header))
    for entry in results:
        name = f"{entry['config']} {CONFIGURATIONS[entry['config']]}"
        print(f"{name:<28} {entry['size']:>4}x{entry['size']:<4} {entry['chunks']:>6} "
              f"{entry['chunk_rows']:>10} x {entry['chunk_cols']:<7} {entry['chunk_pixels']:>9} "
              f"{entry['features']:>8} {entry['mean_chunk_s']:>8.3f} {entry['throughput']:>11.3g} "
              f"{entry['baseline_kb'] / 1024:>6.0f} MiB {entry['peak_kb'] / 1024:>5.0f} MiB")
    print("(RSS before: the child's RSS after imports and the builder, before the first chunk; "
          "peak RSS: its VmHWM after the last chunk)")
    print()
    for config in CONFIGURATIONS:
        entries = sorted((e for e in results if e["config"] == config), key=lambda e: e["size"])
        if len(entries) < 2:
            continue
        small, big = entries[0], entries[-1]
        ratio = big["peak_kb"] / small["peak_kb"]
        pixels = (big["size"] / small["size"]) ** 2
        print(f"PEAK RSS RATIO {config} ({CONFIGURATIONS[config]}) {big['size']} px / {small['size']} px: "
              f"{ratio:.2f} for {pixels:.0f}x the pixels ({big['peak_kb'] / 1024:.0f} / "
              f"{small['peak_kb'] / 1024:.0f} MiB)   flat (<= {FLAT}): {verdict(ratio <= FLAT)}")


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    from iota2.datagen.sentinel2 import DEFAULT_DATES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,1000", help="comma-separated tile sizes in pixels (even)")
    parser.add_argument("--dates", default=",".join(DEFAULT_DATES), help="Sentinel-2 dates YYYYMMDD (default: 12)")
    parser.add_argument("--memory-mb", type=int, default=256, help="python_data_managing.memory_per_task_mb")
    parser.add_argument("--configs", default="A,B", help="configurations to run: A (S2), B (S2 + S1 + user features)")
    parser.add_argument("--threads", type=int, default=None, help="IOTA2_TASK_THREADS of the children (default: unset)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--quick", action="store_true", help="sizes 120 and 240 (smoke run)")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (data, configs)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.sizes == parser.get_default("sizes"):
        args.sizes = "120,240"
    args.size_list = [int(v) for v in args.sizes.split(",") if v.strip()]
    args.date_list = sorted(d.strip() for d in args.dates.split(",") if d.strip())
    args.config_list = [c.strip().upper() for c in args.configs.split(",") if c.strip()]
    if any(s % 2 or s < 16 for s in args.size_list):
        parser.error("tile sizes must be even and >= 16")
    if not set(args.config_list) <= set(CONFIGURATIONS):
        parser.error(f"--configs: choose among {', '.join(CONFIGURATIONS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_features(json.loads(args.child))))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bench_start = time.perf_counter()
    results = []
    for size in args.size_list:
        dataset, generated = ensure_dataset(work, size, args.date_list, args.seed)
        log(f"S2 tile {size}x{size}, {len(args.date_list)} dates: "
            + (f"generated in {generated:.1f} s" if generated is not None else "reused"))
        extra = None
        if "B" in args.config_list:
            extra, generated = ensure_extra_data(work, size, dataset, args.seed)
            log(f"S1 + user features {size}x{size}: "
                + (f"generated in {generated:.1f} s" if generated is not None else "reused"))
        for config in args.config_list:
            tag = f"features_{config}_{size}px"
            path = write_config(work / f"config_{tag}.yaml", dataset, extra if config == "B" else None,
                                work / f"run_{tag}", args.memory_mb)
            entry = run_child({"config": str(path)}, args.threads)
            entry.update({"config": config, "size": size})
            results.append(entry)
            log(f"{config} {size}px: {entry['chunks']} chunks of {entry['chunk_rows']}x{entry['chunk_cols']} px, "
                f"{entry['features']} features, {entry['mean_chunk_s']:.3f} s/chunk, "
                f"peak {entry['peak_kb'] / 1024:.0f} MiB")
    print_report(args, results)
    print(f"\nbenchmark wall time: {time.perf_counter() - bench_start:.1f} s; date {datetime.date.today().isoformat()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "child"},
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
