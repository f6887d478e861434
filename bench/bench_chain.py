#!/usr/bin/env python
"""Benchmark: iota2's classification chain against the OTB command-line chain on the same tile and features.

One run does, in order:

1. generate one synthetic THEIA Sentinel-2 tile (``--size`` pixels, ``--dates``) under ``bench/_work/``
   (kept between runs: regenerated only when its parameters change);
2. run our chain through the command line (``python -m iota2.cli -config ...``) with a random forest,
   periodic/constant sample selection and automatic chunking; time it end to end and per step
   (from the ``done in X s`` lines of the task logs); read the overall accuracy (OA) from
   ``final/TMP/Classif_Seed_0.csv``;
3. write the same feature stack (our gap-filled bands + NDVI/NDWI/Brightness) as one GeoTIFF (not
   counted in OTB's time) and run the OTB chain (PolygonClassStatistics, SampleSelection,
   SampleExtraction, ComputeImagesStatistics, TrainVectorClassifier, ImageClassifier,
   ComputeConfusionMatrix) on it with our run's learning/validation polygons; time each application;
4. time the two halves of classifying one chunk: feature computation, and the forest's probabilities with
   the chain's compiled kernel and with scikit-learn's ``predict_proba``;
5. measure the peak RSS of classifying every chunk of a tile, in a fresh child process, at two tile
   sizes with the same ``python_data_managing.memory_per_task_mb``;
6. print a table and the PASS/MISS verdict of the targets (ours >= 5x faster end to end, OA within
   0.5 point of OTB's, peak memory flat with the tile size).

``--quick`` (300 px, 20 trees) runs everything in well under a minute (CI smoke run).
``--skip-otb`` runs only ours (automatic when ``otbcli_ImageClassifier`` is not on PATH).

Usage::

    python bench/bench_chain.py                 # 2000 x 2000 px, 4 dates, RF 100 trees
    python bench/bench_chain.py --quick
    python bench/bench_chain.py --samples-format sqlite --scheduler debug
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from iota2.core.layout import OutputLayout

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "_work"
TILE = "T31TCJ"
DEFAULT_DATES = "20180310,20180510,20180710,20180909"
OTB_PROBE = "otbcli_ImageClassifier"

#: step -> group of the i2_classification builder (used if the graph cannot be rebuilt)
STEP_GROUPS = {"create_directories": "init", "validity": "init", "ground_truth": "sampling",
               "truth_pixels": "sampling", "selection": "sampling", "class_statistics": "sampling",
               "extraction": "sampling", "merge_samples": "sampling", "learning": "learning",
               "classification": "classification", "merge_chunks": "classification", "mosaic": "mosaic",
               "pixels_validity": "mosaic", "confusion": "validation", "report": "validation"}

#: rows of the comparison table: (label, our steps, OTB applications)
PHASES = [
    ("tile preparation (validity, masks)", ["create_directories", "validity"], []),
    ("polygon stats + sample selection", ["ground_truth", "truth_pixels", "selection", "class_statistics"],
     ["PolygonClassStatistics", "SampleSelection"]),
    ("sample extraction", ["extraction", "merge_samples"], ["SampleExtraction"]),
    ("learning", ["learning"], ["ComputeImagesStatistics", "TrainVectorClassifier"]),
    ("classification (ours: + features)", ["classification", "merge_chunks"], ["ImageClassifier"]),
    ("mosaic", ["mosaic", "pixels_validity"], []),
    ("validation", ["confusion", "report"], ["ComputeConfusionMatrix"]),
]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------ data
def parse_dates(text: str) -> list[str]:
    return sorted(d.strip() for d in text.split(",") if d.strip())


def interpolation_step(dates: list[str]) -> int:
    """A gap-filling step (days) whose grid from the first to the last date has as many dates as ``dates``.

    With evenly spaced acquisitions (the default ones are 61 days apart) the grid is the acquisition
    dates themselves, so the stack holds 13 features per date (10 gap-filled bands + 3 indices).
    """
    from iota2.core.timeseries import days_between

    if len(dates) < 2:
        return 10
    return max(1, days_between(dates[0], dates[-1]) // (len(dates) - 1))


def ensure_dataset(work: Path, size: int, dates: list[str], seed: int) -> tuple[dict, float | None]:
    """Generate one tile under ``work`` unless the same parameters were generated before."""
    import hashlib

    from iota2.datagen import sentinel2

    folder = work / f"data_{size}px_{len(dates)}dates_seed{seed}"
    stamp = folder / "bench_params.json"
    generator = hashlib.sha1(Path(sentinel2.__file__).read_bytes()).hexdigest()[:12]  # regenerate if it changes
    params = {"tiles": [TILE], "size": size, "dates": dates, "seed": seed, "generator": generator}
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            return saved["dataset"], None
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    dataset = sentinel2.generate_dataset(folder, tiles=(TILE,), size=size, dates=dates, seed=seed)
    elapsed = time.perf_counter() - start
    stamp.write_text(json.dumps({"params": params, "dataset": dataset}, indent=1))
    return dataset, elapsed


def write_config(path: Path, dataset: dict, output: Path, args, memory_mb: int | None = None) -> Path:
    import yaml

    config = {
        "chain": {"output_path": str(output), "list_tile": TILE, "s2_path": dataset["s2_path"],
                  "ground_truth": dataset["ground_truth"], "data_field": "code",
                  "nomenclature_path": dataset["nomenclature"], "color_table": dataset["color_table"]},
        "arg_train": {"runs": 1, "ratio": 0.5, "random_seed": 0, "samples_format": args.samples_format,
                      "sample_selection": {"sampler": "periodic", "strategy": "constant",
                                           "strategy.constant.nb": args.samples_per_class}},
        "Sentinel_2": {"temporal_resolution": interpolation_step(args.date_list)},
        "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": args.trees,
                                     "max_depth": 25, "min_samples_leaf": 5},
        "python_data_managing": {"chunk_size_mode": "auto"},
    }
    if memory_mb:
        config["python_data_managing"]["memory_per_task_mb"] = memory_mb
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def builder_of(config_path: Path):
    """The classification builder of a config with its inputs checked (grid, dates, regions, windows)."""
    from iota2.builders.i2_classification import I2Classification
    from iota2.core.config import load_config

    builder = I2Classification(load_config(str(config_path)))
    builder.check_inputs()
    return builder


# ------------------------------------------------------------------------------------------------ ours
def parse_task_logs(output: Path) -> dict[str, dict]:
    """Per step: task count, summed task time ("done in X s"), wall span (first start -> last end) and each task's
    ``(start, seconds, process id)`` under ``"runs"`` (process None in logs that do not name it)."""
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
    steps: dict[str, dict] = {}
    for path in sorted(OutputLayout(output).logs.glob("*/*.log")):
        start = end = None
        seconds = process = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = stamp.match(line)
            if not match:
                continue
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if "iota2.task: start " in line:
                start = when
                named = re.search(r", process (\d+)$", line)
                process = int(named.group(1)) if named else None
            done = re.search(r"iota2\.task: done in ([0-9.]+) s", line)
            if done:
                seconds, end = float(done.group(1)), when
        if seconds is None:
            continue
        entry = steps.setdefault(path.parent.name, {"tasks": 0, "sum_s": 0.0, "first": None, "last": None,
                                                    "runs": []})
        entry["tasks"] += 1
        entry["sum_s"] += seconds
        entry["runs"].append((start, seconds, process))
        if start is not None:
            entry["first"] = start if entry["first"] is None else min(entry["first"], start)
        entry["last"] = end if entry["last"] is None else max(entry["last"], end)
    for entry in steps.values():
        entry["wall_s"] = (entry["last"] - entry["first"]).total_seconds() if entry["first"] else entry["sum_s"]
    return steps


def span_of(steps: dict, names: list[str]) -> float:
    """Wall time covered by a set of steps (first start to last end), 0 when none ran."""
    firsts = [steps[n]["first"] for n in names if n in steps and steps[n]["first"] is not None]
    lasts = [steps[n]["last"] for n in names if n in steps and steps[n]["last"] is not None]
    if not firsts or not lasts:
        return sum(steps[n]["sum_s"] for n in names if n in steps)
    return (max(lasts) - min(firsts)).total_seconds()


def run_ours(config_path: Path, output: Path, args) -> dict:
    from iota2.core.metrics import coefficients, read_confusion_csv

    if output.exists():
        shutil.rmtree(output)
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config_path), "-scheduler_type", args.scheduler,
               "-nb_parallel_tasks", str(args.nb_parallel_tasks), "-no_progress"]
    log("ours: " + " ".join(command[1:]))
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"our chain failed (exit {result.returncode}); logs under {OutputLayout(output).logs}")
    matrix, labels = read_confusion_csv(OutputLayout(output).run_confusion(0))
    scores = coefficients(matrix)
    return {"wall_s": wall, "steps": parse_task_logs(output), "oa": float(scores["oa"]),
            "kappa": float(scores["kappa"]), "validation_pixels": int(matrix.sum()), "labels": labels}


# ------------------------------------------------------------------------------------------------ OTB
def write_feature_stack(config_path: Path, target: Path, dtype: str, rows_per_block: int) -> dict:
    """Our feature stack of the tile as one band-interleaved GeoTIFF, read chunk by chunk."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from iota2.core.features import read_features

    builder = builder_of(config_path)
    grid = builder.grids[TILE]
    stamp = target.with_suffix(".json")
    key = {"config": config_path.read_text(), "dtype": dtype, "grid": grid.to_dict()}
    if target.exists() and stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        info = json.loads(stamp.read_text())
        info["cached"] = True
        return info
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    labels = None
    profile = None
    tmp = target.with_name(target.stem + ".tmp.tif")
    dst = None
    try:
        for row0 in range(0, grid.height, rows_per_block):
            window = Window(0, row0, grid.width, min(rows_per_block, grid.height - row0))
            block = read_features(builder.config, TILE, grid, window, builder.dates_by_sensor, builder.sensor_classes)
            if dst is None:
                labels = block.labels
                profile = {"driver": "GTiff", "crs": grid.crs, "transform": grid.transform, "width": grid.width,
                           "height": grid.height, "count": len(labels), "dtype": dtype, "interleave": "pixel",
                           "tiled": False, "blockysize": 1, "BIGTIFF": "IF_SAFER"}
                dst = rasterio.open(tmp, "w", **profile)
            data = block.features
            if dtype == "int16":
                data = np.clip(np.rint(data), -32768, 32767)
            dst.write(data.transpose(2, 0, 1).astype(dtype, copy=False), window=window)
    finally:
        if dst is not None:
            dst.close()
    os.replace(tmp, target)
    info = {"key": key, "labels": labels, "seconds": time.perf_counter() - start, "bytes": target.stat().st_size}
    stamp.write_text(json.dumps(info))
    info["cached"] = False
    return info


def run_minimal_script(dataset: dict, output: Path, folder: Path, args) -> dict:
    """Run ``bench/minimal_script.py`` (a fresh interpreter) on the same tile and polygons."""
    command = [sys.executable, str(Path(__file__).with_name("minimal_script.py")),
               str(Path(dataset["s2_path"]) / TILE), str(OutputLayout(output).split_polygons(TILE, 0, "learn")),
               str(OutputLayout(output).split_polygons(TILE, 0, "val")), str(folder), "--trees", str(args.trees),
               "--per-class", str(args.samples_per_class)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["wall_s"] = time.perf_counter() - start
    return report


def otb_available() -> bool:
    return shutil.which(OTB_PROBE) is not None


def otb_vector(source: Path, folder: Path) -> Path:
    """A copy of our polygons for OTB: SQLite, layer ``output``, only the ``code`` field.

    Our split files also carry ``originfid``, which SampleSelection refuses to overwrite ("Field name
    originfid already exists with a different type"); the copy drops every other field.
    """
    import pyogrio

    target = folder / source.name
    frame = pyogrio.read_dataframe(source, layer="output", columns=["code"])
    if target.exists():
        target.unlink()
    pyogrio.write_dataframe(frame, target, driver="SQLite", layer="output")
    return target


def run_otb_app(name: str, arguments: list[str], folder: Path, timings: dict) -> str:
    command = [f"otbcli_{name}"] + arguments
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    timings[name] = time.perf_counter() - start
    (folder / f"{name}.log").write_text(" ".join(command) + "\n" + result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {result.returncode}); log: {folder / (name + '.log')}\n"
                           + (result.stdout + result.stderr)[-3000:])
    return result.stdout + result.stderr


def run_otb(image: Path, n_features: int, learn: Path, valid: Path, folder: Path, args) -> dict:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    timings: dict[str, float] = {}
    ram = str(args.otb_ram)
    learn_vec, valid = otb_vector(learn, folder), otb_vector(valid, folder)  # not timed (a file copy)
    run_otb_app("PolygonClassStatistics", ["-in", str(image), "-vec", str(learn_vec), "-field", "code",
                                           "-out", "stats.xml", "-ram", ram], folder, timings)
    run_otb_app("SampleSelection", ["-in", str(image), "-vec", str(learn_vec), "-instats", "stats.xml",
                                    "-field", "code", "-strategy", "constant", "-strategy.constant.nb",
                                    str(args.samples_per_class), "-sampler", "periodic", "-rand", "42",
                                    "-outrates", "rates.csv", "-out", "samples.sqlite", "-ram", ram], folder, timings)
    run_otb_app("SampleExtraction", ["-in", str(image), "-vec", "samples.sqlite", "-field", "code",
                                     "-outfield", "prefix", "-outfield.prefix.name", "value_",
                                     "-out", "learn_samples.sqlite", "-ram", ram], folder, timings)
    run_otb_app("ComputeImagesStatistics", ["-il", str(image), "-out.xml", "imstats.xml", "-ram", ram],
                folder, timings)
    run_otb_app("TrainVectorClassifier", ["-io.vd", "learn_samples.sqlite", "-io.stats", "imstats.xml",
                                          "-cfield", "code", "-feat"] + [f"value_{i}" for i in range(n_features)]
                + ["-classifier", "rf", "-classifier.rf.nbtrees", str(args.trees), "-classifier.rf.max", "25",
                   "-classifier.rf.min", "5", "-classifier.rf.acc", "0", "-rand", "42", "-io.out", "model.txt"],
                folder, timings)
    run_otb_app("ImageClassifier", ["-in", str(image), "-model", "model.txt", "-imstat", "imstats.xml",
                                    "-out", "classif.tif", "uint8", "-confmap", "confidence.tif", "float",
                                    "-ram", ram], folder, timings)
    text = run_otb_app("ComputeConfusionMatrix", ["-in", "classif.tif", "-out", "confmat.csv", "-format",
                                                  "confusionmatrix", "-ref", "vector", "-ref.vector.in", str(valid),
                                                  "-ref.vector.field", "code", "-ref.vector.nodata", "0",
                                                  "-nodatalabel", "0", "-ram", ram], folder, timings)
    oa = re.search(r"Overall accuracy index:\s*([0-9.eE+-]+)", text)
    kappa = re.search(r"Kappa index:\s*([0-9.eE+-]+)", text)
    if not oa:
        raise RuntimeError(f"no 'Overall accuracy index' in the ComputeConfusionMatrix log ({folder})")
    return {"apps": timings, "total_s": sum(timings.values()), "oa": float(oa.group(1)),
            "kappa": float(kappa.group(1)) if kappa else float("nan"), "classif": folder / "classif.tif"}


def oa_on_our_pixels(output: Path, otb_map: Path) -> tuple[float, int]:
    """OA of OTB's map on exactly our validation pixels (pixel centres in validation polygons, in the mask)."""
    import numpy as np
    import rasterio

    from iota2.builders.samples import labelled_pixels

    pixels = labelled_pixels(output, [TILE], 0, ("validation", "both"))
    with rasterio.open(otb_map) as src:
        produced = src.read(1)[pixels["row"].to_numpy(), pixels["col"].to_numpy()]
    return float(np.mean(produced == pixels["label"].to_numpy())), len(pixels)


# ------------------------------------------------------------------------------------------------ children
def child_profile(spec: dict) -> dict:
    """Time feature computation and random-forest inference of the first chunk of the tile, separately."""
    from iota2.builders.classification import predict
    from iota2.builders.learning import load_model
    from iota2.core.features import read_features

    builder = builder_of(Path(spec["config"]))
    windows = builder.windows(TILE)
    window = windows[0]
    start = time.perf_counter()
    block = read_features(builder.config, TILE, builder.grids[TILE], window, builder.dates_by_sensor,
                          builder.sensor_classes)
    features_s = time.perf_counter() - start
    inside = block.footprint
    pixels = block.features[inside]
    model = load_model(OutputLayout(spec["output"]).model(builder.regions[0], 0))
    result = {"chunks": len(windows), "chunk_rows": int(window.height), "chunk_cols": int(window.width),
              "pixels": int(inside.sum()), "features": int(pixels.shape[1]), "features_s": features_s}
    predict(model, pixels[:100], builder.labels, 1)  # kernel loaded from numba's cache, as a worker does at start
    for engine, compiled in (("compiled", True), ("sklearn", False)):
        for threads in spec["threads"]:
            start = time.perf_counter()
            predict(model, pixels, builder.labels, threads, compiled=compiled)
            result[f"predict_{engine}_s_{threads}t"] = time.perf_counter() - start
    return result


def chunk_task_setup(spec: dict):
    """The builder of ``spec["config"]``, the tile's chunk windows and grid, and the output folder holding a copy
    of the models ``spec["models"]``: what a child needs to run the classification task on chunks."""
    builder = builder_of(Path(spec["config"]))
    output = Path(spec["output"])
    for path in spec["models"]:
        target = OutputLayout(output).models / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return builder, builder.windows(TILE), builder.grids[TILE], output


def child_memory(spec: dict) -> dict:
    """Classify every chunk of a tile with the real task function; report this process's peak RSS."""
    from iota2.builders import classification
    from iota2.core.allocator import reuse_freed_memory
    from iota2.core.tile_steps import sensor_config

    reuse_freed_memory()  # as the chain's workers do

    builder, windows, grid, output = chunk_task_setup(spec)
    baseline = current_rss_kb()
    cfg = sensor_config(builder.config)
    chain = builder.config["chain"]
    start = time.perf_counter()
    for index, window in enumerate(windows):
        classification.classify_chunk(cfg, TILE, grid.to_dict(), [int(window.col_off), int(window.row_off),
                                      int(window.width), int(window.height)], index, builder.dates_by_sensor,
                                      builder.regions, 1, builder.labels, str(output),
                                      by_region=bool(chain.get("region_path")),
                                      probability_map=builder.config["arg_classification"]["enable_probability_map"],
                                      compression=chain["compression_algorithm"])
    return {"chunks": len(windows), "max_chunk_pixels": max(int(w.width * w.height) for w in windows),
            "seconds": time.perf_counter() - start, "baseline_kb": baseline,
            "peak_kb": peak_rss_kb()}


def proc_status_kb(key: str) -> int | None:
    """A ``/proc/self/status`` memory line in kB (``VmRSS`` now, ``VmHWM`` peak), None without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss_kb() -> int:
    return proc_status_kb("VmRSS") or 0


def peak_rss_kb() -> int:
    """Peak RSS of this process image (kB).

    ``VmHWM`` belongs to the process's own address space. ``getrusage().ru_maxrss`` is not used where
    /proc exists: Linux carries it over ``execve``, so a child started by a large parent reports the
    parent's size at fork time (measured here: 1253 MiB for a child whose own peak was 420 MiB).
    """
    peak = proc_status_kb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(mode: str, spec: dict, threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads:
        env["IOTA2_TASK_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(spec)], capture_output=True,
                            text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"child {mode} failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report
def write_json(path: str | Path, payload: dict) -> None:
    """Write the measurements of a run as JSON (dates and paths as strings)."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, (datetime.datetime, Path)):
            return str(value)
        return value

    Path(path).write_text(json.dumps(plain(payload), indent=1))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(args, ours: dict, otb: dict | None, stack: dict | None, profile: dict | None,
                 memory: list[dict] | None, otb_on_ours: tuple[float, int] | None) -> None:
    steps = ours["steps"]
    width = 36
    print()
    print(f"=== iota2 chain vs OTB: 1 tile {args.size}x{args.size} px, {len(args.date_list)} dates, "
          f"RF {args.trees} trees, {os.cpu_count()} cores, {args.scheduler} x{args.nb_parallel_tasks}, "
          f"samples {args.samples_format} ===")
    print(f"{'phase':<{width}} {'ours wall':>10} {'ours sum':>9} {'OTB':>8} {'OTB/ours':>9}   OTB apps")
    for label, our_steps, apps in PHASES:
        ours_wall = span_of(steps, our_steps)
        ours_sum = sum(steps[s]["sum_s"] for s in our_steps if s in steps)
        otb_s = sum(otb["apps"].get(a, 0.0) for a in apps) if otb and apps else None
        ratio = f"{otb_s / ours_wall:8.2f}x" if otb_s is not None and ours_wall > 0 else f"{'-':>9}"
        otb_txt = f"{otb_s:7.2f}s" if otb_s is not None else f"{'-':>8}"
        print(f"{label:<{width}} {ours_wall:9.2f}s {ours_sum:8.2f}s {otb_txt} {ratio}   {' + '.join(apps)}")
    tasks_wall = span_of(steps, list(steps))
    print(f"{'ours: all tasks (first start-last end)':<{width}} {tasks_wall:9.2f}s")
    print(f"{'ours: startup/scheduler overhead':<{width}} {ours['wall_s'] - tasks_wall:9.2f}s")
    print()
    print("per step (ours):  " + ", ".join(f"{name} {entry['wall_s']:.2f}s/{entry['tasks']}t"
                                          for name, entry in steps.items()))
    if otb:
        print("per app (OTB):    " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in otb["apps"].items()))
    if stack:
        how = "cached from an earlier run" if stack["cached"] else "written now"
        print(f"OTB input feature stack: {len(stack['labels'])} bands {args.otb_dtype}, "
              f"{stack['bytes'] / 2**20:.0f} MiB, {stack['seconds']:.1f} s to write ({how}); NOT counted in OTB's time")
    print()
    print(f"TOTAL ours (end to end, CLI process wall): {ours['wall_s']:.2f} s")
    if otb:
        ratio = otb["total_s"] / ours["wall_s"]
        print(f"TOTAL OTB  (7 applications):              {otb['total_s']:.2f} s")
        print(f"RATIO OTB/ours: {ratio:.2f}x   target >= 5x: {verdict(ratio >= 5.0)}")
    print(f"OA ours: {ours['oa']:.4f} (kappa {ours['kappa']:.4f}, {ours['validation_pixels']} validation pixels)")
    if otb:
        diff = (ours["oa"] - otb["oa"]) * 100
        print(f"OA OTB:  {otb['oa']:.4f} (kappa {otb['kappa']:.4f}, ComputeConfusionMatrix on the validation polygons)")
        if otb_on_ours:
            print(f"OA OTB on our {otb_on_ours[1]} validation pixels: {otb_on_ours[0]:.4f}")
        print(f"OA difference ours - OTB: {diff:+.2f} points   target |diff| <= 0.5: {verdict(abs(diff) <= 0.5)}"
              + ("  (ours is the better one)" if diff > 0.5 else ""))
    else:
        print("OA OTB: not measured (OTB skipped)")
        print("RATIO OTB/ours: not measured (OTB skipped)")
    if profile:
        print()
        print(f"one chunk ({profile['chunk_rows']}x{profile['chunk_cols']} px, {profile['pixels']} px in mask, "
              f"{profile['features']} features; {profile['chunks']} chunks in the tile): "
              f"feature computation {profile['features_s']:.2f} s")
        for engine, label in (("compiled", "RF probabilities, compiled kernel (the chain's)"),
                              ("sklearn", "RF probabilities, scikit-learn predict_proba")):
            timings = {int(k.rsplit("_", 1)[1][:-1]): v for k, v in profile.items()
                       if k.startswith(f"predict_{engine}_s_")}
            print(f"  {label}: " + ", ".join(f"{t} thread{'s' if t > 1 else ''} {v:.2f} s"
                                             for t, v in sorted(timings.items())))
    if memory:
        print()
        for entry in memory:
            print(f"peak RSS classifying a {entry['size']}x{entry['size']} tile (memory_per_task_mb "
                  f"{entry['memory_mb']}, {entry['chunks']} chunks of <= {entry['max_chunk_pixels']} px): "
                  f"{entry['peak_kb'] / 1024:.0f} MiB (RSS before the first chunk: {entry['baseline_kb'] / 1024:.0f} MiB; "
                  f"{entry['seconds']:.1f} s)")
        if len(memory) == 2:
            big, small = sorted(memory, key=lambda e: -e["size"])
            ratio = big["peak_kb"] / small["peak_kb"]
            pixels = (big["size"] / small["size"]) ** 2
            print(f"PEAK RSS RATIO {big['size']} px / {small['size']} px: {ratio:.2f} for {pixels:.0f}x the pixels   "
                  f"flat (<= 1.25): {verdict(ratio <= 1.25)}")


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="tile width and height in pixels (even)")
    parser.add_argument("--dates", default=DEFAULT_DATES, help="comma-separated YYYYMMDD acquisition dates")
    parser.add_argument("--trees", type=int, default=100, help="random-forest trees (ours and OTB)")
    parser.add_argument("--samples-per-class", type=int, default=500)
    parser.add_argument("--samples-format", choices=("parquet", "sqlite"), default="parquet")
    parser.add_argument("--scheduler", choices=("localCluster", "debug"), default="localCluster")
    parser.add_argument("--nb-parallel-tasks", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--quick", action="store_true", help="300 px, 20 trees, small chunks: a CI smoke run")
    parser.add_argument("--skip-otb", action="store_true", help="do not run OTB")
    parser.add_argument("--otb-dtype", choices=("float32", "int16"), default="float32",
                        help="data type of the feature stack given to OTB")
    parser.add_argument("--otb-ram", type=int, default=2000, help="-ram of the OTB applications (MB)")
    parser.add_argument("--memory-mb", type=int, default=None,
                        help="python_data_managing.memory_per_task_mb of the memory runs (default 256; 16 quick)")
    parser.add_argument("--memory-sizes", default=None,
                        help="two tile sizes for the memory runs (default: SIZE,SIZE/2)")
    parser.add_argument("--skip-memory", action="store_true", help="no peak-memory measurement")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (data, outputs)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        if args.size == parser.get_default("size"):
            args.size = 300
        if args.trees == parser.get_default("trees"):
            args.trees = 20
    if args.memory_mb is None:
        args.memory_mb = 16 if args.quick else 256
    half = max(16, (args.size // 2) // 2 * 2)
    args.memory_size_list = [int(v) for v in args.memory_sizes.split(",")] if args.memory_sizes else \
        [args.size, half]
    args.date_list = parse_dates(args.dates)
    if args.size % 2 or args.size < 16 or any(s % 2 or s < 16 for s in args.memory_size_list):
        parser.error("tile sizes must be even and >= 16")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, spec = args.child
        result = {"profile": child_profile, "memory": child_memory}[mode](json.loads(spec))
        print(json.dumps(result))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    use_otb = not args.skip_otb
    if not otb_available():
        print(f"OTB not found ({OTB_PROBE} is not on PATH): running ours only", flush=True)
        use_otb = False
    elif not use_otb:
        print("OTB skipped (--skip-otb): running ours only", flush=True)
    bench_start = time.perf_counter()

    dataset, generated = ensure_dataset(work, args.size, args.date_list, args.seed)
    log(f"tile {args.size}x{args.size}, dates {','.join(args.date_list)}: "
        + (f"generated in {generated:.1f} s" if generated is not None else "reused") + f" ({dataset['s2_path']})")
    tag = f"{args.size}px_{args.trees}trees_{args.samples_format}"
    output = work / f"run_{tag}"
    config_path = write_config(work / f"config_{tag}.yaml", dataset, output, args)
    ours = run_ours(config_path, output, args)
    log(f"ours: {ours['wall_s']:.1f} s, OA {ours['oa']:.4f}")

    script = run_minimal_script(dataset, output, work / f"script_{tag}", args)
    log(f"minimal script: {script['wall_s']:.1f} s, OA {script['oa']:.4f}")

    otb = stack = otb_on_ours = None
    if use_otb:
        image = work / f"features_{args.size}px_{len(args.date_list)}dates_seed{args.seed}_{args.otb_dtype}.tif"
        stack = write_feature_stack(config_path, image, args.otb_dtype, rows_per_block=256)
        log(f"feature stack {image.name}: {len(stack['labels'])} bands"
            + (" (cached)" if stack["cached"] else f", written in {stack['seconds']:.1f} s (not counted)"))
        learn = OutputLayout(output).split_polygons(TILE, 0, "learn")
        valid = OutputLayout(output).split_polygons(TILE, 0, "val")
        otb = run_otb(image, len(stack["labels"]), learn, valid, work / f"otb_{tag}", args)
        otb_on_ours = oa_on_our_pixels(output, otb["classif"])
        log(f"OTB: {otb['total_s']:.1f} s, OA {otb['oa']:.4f}")

    profile = run_child("profile", {"config": str(config_path), "output": str(output),
                                    "threads": sorted({1, os.cpu_count() or 1})})
    log(f"one chunk: features {profile['features_s']:.2f} s, predict {profile.get('predict_compiled_s_1t', 0):.2f} s "
        f"(compiled, 1 thread), {profile.get('predict_sklearn_s_1t', 0):.2f} s (scikit-learn, 1 thread)")

    memory = []
    if not args.skip_memory:
        models = [str(p) for p in sorted(OutputLayout(output).models.glob("model_*_seed_*.*"))]
        for size in args.memory_size_list:
            data, _ = ensure_dataset(work, size, args.date_list, args.seed)
            mem_output = work / f"memory_{size}px"
            if mem_output.exists():
                shutil.rmtree(mem_output)
            mem_config = write_config(work / f"config_memory_{size}px.yaml", data, mem_output, args,
                                      memory_mb=args.memory_mb)
            entry = run_child("memory", {"config": str(mem_config), "output": str(mem_output), "models": models},
                              threads=max(1, (os.cpu_count() or 1) // args.nb_parallel_tasks))
            entry.update({"size": size, "memory_mb": args.memory_mb})
            memory.append(entry)
            log(f"memory {size}px: peak {entry['peak_kb'] / 1024:.0f} MiB over {entry['chunks']} chunks")

    print_report(args, ours, otb, stack, profile, memory, otb_on_ours)
    overhead = ours["wall_s"] / script["wall_s"] - 1
    print(f"\nminimal numpy + scikit-learn script (read, features, sample, fit, predict, write, score; no gap-filling,"
          f" no chunks; process wall): {script['wall_s']:.2f} s, OA {script['oa']:.4f}")
    print(f"FRAMEWORK OVERHEAD ours / script - 1: {overhead * 100:+.0f} %   target <= 20 %: {verdict(overhead <= 0.2)}")
    print(f"\nbenchmark wall time (everything, including data generation and the stack): "
          f"{time.perf_counter() - bench_start:.1f} s; date {datetime.date.today().isoformat()}")
    if args.json:
        write_json(args.json, {"args": vars(args), "ours": ours, "otb": otb,
                               "profile": profile, "memory": memory,
                               "otb_oa_on_our_pixels": otb_on_ours})
    return 0


if __name__ == "__main__":
    sys.exit(main())
