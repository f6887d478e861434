#!/usr/bin/env python
"""Deep-learning bench: the built-in networks against the random forest on one tile, on CPU.

One run does, in order:

1. generate (or reuse) one synthetic THEIA Sentinel-2 tile (``bench_chain.ensure_dataset``; default 500 px and 6
   dates 10 days apart, gap-filled on the same grid: 78 features);
2. run the chain through the command line three times with ``arg_train.runs`` (3): the random forest of
   ``bench_chain.py`` (compiled forest), ``MLPClassifier`` and ``LTAEClassifier``; per chain the task times of each
   step (``bench_chain.parse_task_logs``) and the OA and kappa of every run (``final/TMP/Classif_Seed_<S>.csv``,
   ``iota2.core.metrics.multi_run_summary``: mean +- half-width of the 95 % Student-t interval);
3. in a fresh process, each learner (MLPClassifier, ANN, LTAEClassifier, SimpleSelfAttentionClassifier through
   :class:`iota2.plugins.dl_learner.DeepLearningLearner`, the forest through the scikit-learn learner) is fitted on
   the RF chain's samples file of run 0 (``--throughput-epochs``), then ``predict_proba`` is timed on the pixels of
   the tile's first chunk (``iota2.core.features.read_features``): training samples/s (training rows / mean time of
   an epoch after the first, its validation pass included) and inference pixels/s on 1 and all cores;
4. peak memory of training: samples files of 1x, 4x and 10x ``--memory-rows`` rows (the chain's samples repeated,
   each copy with its own polygon ids, Parquet in row groups of ``PARQUET_ROW_GROUP_ROWS``); each is fitted in a
   fresh process with the learner's in-memory threshold (``dl_learner.IN_MEMORY_MAX_BYTES``) set to 0, so the
   training set is streamed from the file at every epoch, as it is above 1 GiB; ``VmHWM`` of the child; then the
   10x file once more with the default threshold (held in memory), as a control;
5. print a table and the verdicts: training peak memory flat (10x / 1x within 10 %), and the LTAE's
   classification step no slower than the RF's (task seconds of the ``classification`` step of the two chains).

Usage::

    python bench/bench_deep_learning.py            # 500 px, 6 dates, 3 runs, 30 epochs
    python bench/bench_deep_learning.py --quick    # 150 px, 2 runs, 2 epochs: a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from bench_chain import (TILE, builder_of, ensure_dataset, interpolation_step, parse_task_logs,  # noqa: E402
                         peak_rss_kb, current_rss_kb, span_of, write_json)

from iota2.core.layout import OutputLayout  # noqa: E402

DEFAULT_WORK = BENCH_DIR / "_work"
FIRST_DATE = datetime.date(2018, 1, 5)
NETWORKS = ("MLPClassifier", "ANN", "LTAEClassifier", "SimpleSelfAttentionClassifier")
#: the chains run: (tag, dl_name or None for the random forest)
CHAINS = (("RF", None), ("MLP", "MLPClassifier"), ("LTAE", "LTAEClassifier"))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def dates_every(count: int, step: int) -> list[str]:
    """``count`` dates ``step`` days apart from 2018-01-05."""
    return [(FIRST_DATE + datetime.timedelta(days=step * index)).strftime("%Y%m%d") for index in range(count)]


def dl_settings(args, dl_name: str) -> dict:
    """``deep_learning_parameters`` of the bench (also the settings of the throughput and memory fits)."""
    return {"dl_name": dl_name, "epochs": args.epochs, "batch_size": args.batch_size,
            "model_selection_criterion": "loss", "device": "cpu"}


def write_config(path: Path, dataset: dict, output: Path, args, dl_name: str | None) -> Path:
    """The chain's configuration: the random forest of bench_chain.py, or a network of ``dl_name``."""
    import yaml

    config = {
        "chain": {"output_path": str(output), "list_tile": TILE, "s2_path": dataset["s2_path"],
                  "ground_truth": dataset["ground_truth"], "data_field": "code",
                  "nomenclature_path": dataset["nomenclature"], "color_table": dataset["color_table"]},
        "arg_train": {"runs": args.runs, "ratio": 0.5, "random_seed": 0, "samples_format": "parquet",
                      "sample_selection": {"sampler": "periodic", "strategy": "constant",
                                           "strategy.constant.nb": args.samples_per_class}},
        "Sentinel_2": {"temporal_resolution": interpolation_step(args.date_list)},
        "python_data_managing": {"chunk_size_mode": "auto"},
    }
    if dl_name:
        config["arg_train"]["deep_learning_parameters"] = dl_settings(args, dl_name)
    else:
        config["scikit_models_parameters"] = {"model_type": "RandomForestClassifier", "n_estimators": args.trees,
                                              "max_depth": 25, "min_samples_leaf": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_chain(config_path: Path, output: Path, args) -> dict:
    """Run the chain through the CLI; task times per step and the OA / kappa of every run."""
    from iota2.core.metrics import multi_run_summary, read_confusion_csv

    if output.exists():
        shutil.rmtree(output)
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config_path), "-scheduler_type", "localCluster",
               "-nb_parallel_tasks", str(args.nb_parallel_tasks), "-no_progress"]
    load = load_average()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"chain {config_path.name} failed (exit {result.returncode}); logs under "
                         f"{OutputLayout(output).logs}")
    matrices = [read_confusion_csv(OutputLayout(output).run_confusion(run))[0] for run in range(args.runs)]
    summary = multi_run_summary(matrices)
    steps = parse_task_logs(output)
    return {"wall_s": wall, "load_before": load, "load_after": load_average(), "steps": steps,
            "oa": [float(r["oa"]) for r in summary["per_run"]],
            "kappa": [float(r["kappa"]) for r in summary["per_run"]],
            "oa_mean": summary["oa"]["mean"], "oa_half_width": summary["oa"]["half_width"],
            "kappa_mean": summary["kappa"]["mean"], "kappa_half_width": summary["kappa"]["half_width"],
            "validation_pixels": int(matrices[0].sum()),
            "classification_sum_s": steps.get("classification", {}).get("sum_s", 0.0),
            "classification_tasks": steps.get("classification", {}).get("tasks", 0),
            "classification_wall_s": span_of(steps, ["classification"]),
            "learning_sum_s": steps.get("learning", {}).get("sum_s", 0.0)}


# ------------------------------------------------------------------------------------------------ children
class EpochTimes(logging.Handler):
    """Collects the time of each ``epoch N: ...`` record of the deep-learning learner (one per finished epoch)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("epoch "):
            self.times.append(time.perf_counter())


def child_throughput(spec: dict) -> dict:
    """Fit every learner on the samples file, then time ``predict_proba`` on the pixels of the first chunk."""
    import numpy as np

    from iota2.builders.learning import learner_from_config, samples_feature_names
    from iota2.core.features import read_features
    from iota2.core.learner import LearningSamples
    from iota2.plugins.dl_learner import DeepLearningLearner, check_settings
    from iota2.plugins.sklearn_learner import SklearnLearner

    builder = builder_of(Path(spec["rf_config"]))
    window = builder.windows(TILE)[0]
    block = read_features(builder.config, TILE, builder.grids[TILE], window, builder.dates_by_sensor,
                          builder.sensor_classes)
    pixels = np.ascontiguousarray(block.features[block.footprint][:spec["predict_pixels"]], dtype=np.float32)
    path = Path(spec["samples"])
    names = samples_feature_names(path, "code")
    index = [block.labels.index(name) for name in names]
    pixels = np.ascontiguousarray(pixels[:, index])
    finite = bool(np.isfinite(pixels).all())  # False: the forest falls back to scikit-learn's predict_proba
    report_folder = Path(spec["folder"])
    report_folder.mkdir(parents=True, exist_ok=True)
    samples = LearningSamples(path=path, samples_format="parquet", label_field="code", feature_names=names,
                              region=builder.regions[0], run=0, seed=0, report_folder=report_folder)
    _, rf_settings = learner_from_config(builder.config)
    learners = [("RF", SklearnLearner, rf_settings)] + \
               [(name, DeepLearningLearner, check_settings(spec["dl"][name])) for name in spec["networks"]]
    SklearnLearner.warm_up()  # imports and kernels, as a worker does before its first task
    DeepLearningLearner.warm_up()
    epochs_log = EpochTimes()
    logging.getLogger("iota2.plugins.dl_learner").addHandler(epochs_log)
    logging.getLogger("iota2.plugins.dl_learner").setLevel(logging.INFO)
    results = []
    for name, cls, settings in learners:
        learner = cls(settings)
        epochs_log.times.clear()
        start = time.perf_counter()
        report = learner.fit(samples)
        fit_s = time.perf_counter() - start
        rows = report.get("n_samples", 0)
        epochs = report.get("epochs_run", 1)
        learner.predict_proba(pixels[:256], threads=spec["threads"][0])  # first call: kernels, allocations
        entry = {"learner": name, "fit_s": fit_s, "train_rows": rows, "epochs": epochs,
                 "train_samples_per_s": rows * epochs / max(fit_s, 1e-9), "pixels": int(len(pixels)),
                 "features": int(pixels.shape[1])}
        if len(epochs_log.times) >= 2:  # steady state: from the end of epoch 1 to the end of the last one
            span = epochs_log.times[-1] - epochs_log.times[0]
            entry["epoch_s"] = span / (len(epochs_log.times) - 1)
            entry["train_samples_per_s"] = rows / max(entry["epoch_s"], 1e-9)
        for threads in spec["threads"]:
            start = time.perf_counter()
            proba = learner.predict_proba(pixels, threads=threads)
            seconds = time.perf_counter() - start
            entry[f"predict_s_{threads}t"] = seconds
            entry[f"pixels_per_s_{threads}t"] = len(pixels) / max(seconds, 1e-9)
        entry["proba_sums_to_1"] = bool(np.allclose(proba.sum(axis=1), 1.0, atol=1e-3))
        results.append(entry)
    return {"learners": results, "chunk_rows": int(window.height), "chunk_cols": int(window.width),
            "all_finite": finite}


def child_memory(spec: dict) -> dict:
    """Fit one network on one samples file, streamed; peak RSS of this process."""
    import iota2.plugins.dl_learner as dl_learner
    import iota2.plugins.dl_networks  # noqa: F401 - torch and the networks, in the baseline
    from iota2.builders.learning import samples_feature_names
    from iota2.core.learner import LearningSamples

    if spec["force_stream"]:
        dl_learner.IN_MEMORY_MAX_BYTES = 0
    path = Path(spec["samples"])
    names = samples_feature_names(path, "code")
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    samples = LearningSamples(path=path, samples_format="parquet", label_field="code", feature_names=names,
                              region="1", run=0, seed=0, report_folder=folder)
    learner = dl_learner.DeepLearningLearner(dl_learner.check_settings(spec["settings"]))
    baseline = current_rss_kb()
    start = time.perf_counter()
    report = learner.fit(samples)
    seconds = time.perf_counter() - start
    return {"rows": report["n_samples"], "streamed": report["streamed"], "fit_s": seconds, "baseline_kb": baseline,
            "peak_kb": peak_rss_kb(), "epochs": report["epochs_run"],
            "samples_per_s": report["n_samples"] * report["epochs_run"] / max(seconds, 1e-9)}


def run_child(mode: str, spec: dict, threads: int) -> dict:
    env = dict(os.environ, IOTA2_TASK_THREADS=str(threads))
    result = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(spec)], capture_output=True,
                            text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"child {mode} failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_repeated_samples(source: Path, target: Path, rows: int) -> int:
    """``rows`` rows of ``source`` repeated (each copy's polygon ids shifted), Parquet in the chain's row groups."""
    import numpy as np
    import pandas as pd

    from iota2.plugins.dl_samples import PARQUET_ROW_GROUP_ROWS

    table = pd.read_parquet(source)
    copies = -(-rows // len(table))
    step = int(table["originfid"].max()) + 1
    parts = []
    for copy in range(copies):
        part = table.copy()
        part["originfid"] = part["originfid"].to_numpy(np.int64) + copy * step
        parts.append(part)
    repeated = pd.concat(parts, ignore_index=True).iloc[:rows]
    target.parent.mkdir(parents=True, exist_ok=True)
    repeated.to_parquet(target, index=False, row_group_size=PARQUET_ROW_GROUP_ROWS)
    return len(repeated)


# ------------------------------------------------------------------------------------------------ report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def interval(mean: float, half_width: float | None) -> str:
    return f"{mean:.4f} +- {half_width:.4f}" if half_width is not None else f"{mean:.4f}"


def print_report(args, chains: dict, throughput: dict, memory: list[dict], control: dict | None) -> dict:
    print(f"\ntile {args.size} x {args.size} px, {len(args.date_list)} dates, {throughput['learners'][0]['features']} "
          f"features; {os.cpu_count()} cores; load average {load_average()} (1, 5, 15 min; cores shared)")
    print(f"\nTHROUGHPUT through the learners (fit on {throughput['learners'][0]['train_rows']}-row samples file of "
          f"run 0 less held-out polygons; predict_proba on {throughput['learners'][0]['pixels']} px of the first "
          f"chunk, {throughput['chunk_rows']} x {throughput['chunk_cols']} px)")
    header = f"{'learner':31} {'epochs':>6} {'fit s':>7} {'epoch s':>8} {'train samples/s':>16}"
    for threads in args.thread_list:
        header += f" {f'infer px/s {threads}t':>16}"
    print(header)
    for entry in throughput["learners"]:
        epoch = f"{entry['epoch_s']:.3f}" if "epoch_s" in entry else "-"
        line = (f"{entry['learner']:31} {entry['epochs']:>6} {entry['fit_s']:>7.2f} {epoch:>8} "
                f"{entry['train_samples_per_s']:>16.0f}")
        for threads in args.thread_list:
            line += f" {entry[f'pixels_per_s_{threads}t']:>16.0f}"
        print(line)
    print("(RF: training rows / fit time, scikit-learn; inference with the compiled forest kernel. Networks: training "
          "rows / mean epoch time after the first epoch, the epoch's validation pass included; fit s includes the "
          "statistics pass, epoch 1 and the learning-curve files)")

    if not throughput.get("all_finite", True):
        print("(the chunk's features hold NaN: the forest ran scikit-learn's predict_proba, not the compiled kernel)")
    print(f"\nPEAK MEMORY of training {args.memory_network} ({args.memory_epochs} epoch(s), batch {args.batch_size}, "
          f"streamed from the file: IN_MEMORY_MAX_BYTES set to 0 in the child)")
    print(f"{'rows':>9} {'file MiB':>9} {'streamed':>8} {'fit s':>7} {'samples/s':>10} {'baseline':>10} "
          f"{'peak RSS':>10}")
    for entry in memory:
        print(f"{entry['rows']:>9} {entry['file_mib']:>9.1f} {str(entry['streamed']):>8} {entry['fit_s']:>7.1f} "
              f"{entry['samples_per_s']:>10.0f} {entry['baseline_kb'] / 1024:>6.1f} MiB "
              f"{entry['peak_kb'] / 1024:>6.1f} MiB")
    if control:
        print(f"{control['rows']:>9} {control['file_mib']:>9.1f} {str(control['streamed']):>8} "
              f"{control['fit_s']:>7.1f} "
              f"{control['samples_per_s']:>10.0f} {control['baseline_kb'] / 1024:>6.1f} MiB "
              f"{control['peak_kb'] / 1024:>6.1f} MiB  (control: the same file held in memory, the learner's default "
              "below IN_MEMORY_MAX_BYTES)")
    ratio = memory[-1]["peak_kb"] / memory[0]["peak_kb"]
    flat = abs(ratio - 1) <= 0.10
    print(f"MEMORY VERDICT: peak RSS {memory[-1]['rows']} / {memory[0]['rows']} rows = {ratio:.3f}: "
          f"{'flat +-10 %: PASS' if flat else 'not flat: MISS'}")

    print(f"\nACCURACY over {args.runs} runs of the chain (mean +- half-width of the 95 % Student-t interval; "
          f"{chains['RF']['validation_pixels']} validation pixels in run 0)")
    print(f"{'chain':6} {'OA':>18} {'kappa':>18} {'per-run OA':>26} {'CLI wall s':>10} {'learning s':>10} "
          f"{'classif s':>10} {'load':>15}")
    for tag, chain in chains.items():
        print(f"{tag:6} {interval(chain['oa_mean'], chain['oa_half_width']):>18} "
              f"{interval(chain['kappa_mean'], chain['kappa_half_width']):>18} "
              f"{' '.join(f'{v:.4f}' for v in chain['oa']):>26} {chain['wall_s']:>10.1f} "
              f"{chain['learning_sum_s']:>10.1f} {chain['classification_sum_s']:>10.1f} "
              f"{chain['load_before'].split()[0] + '->' + chain['load_after'].split()[0]:>15}")
    rf, ltae = chains["RF"], chains["LTAE"]
    time_ratio = ltae["classification_sum_s"] / max(rf["classification_sum_s"], 1e-9)
    fast = time_ratio <= 1.0
    print(f"\nINFERENCE VERDICT: classification step (features + model, {ltae['classification_tasks']} tasks, task "
          f"seconds summed) LTAE {ltae['classification_sum_s']:.1f} s / RF {rf['classification_sum_s']:.1f} s = "
          f"{time_ratio:.2f} (wall spans {ltae['classification_wall_s']:.1f} s / {rf['classification_wall_s']:.1f} s)"
          f" -> target <= 1: {verdict(fast)}")
    return {"memory_ratio": ratio, "memory_flat": flat, "classification_ratio": time_ratio, "ltae_not_slower": fast}


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="150 px, 2 epochs, small files: a smoke run")
    parser.add_argument("--size", type=int, help="tile width and height in pixels (default 500; 150 quick)")
    parser.add_argument("--dates", type=int, default=6, help="dates, 10 days apart from 2018-01-05 (default 6)")
    parser.add_argument("--runs", type=int, help="arg_train.runs of the chains (default 3; 2 quick)")
    parser.add_argument("--epochs", type=int, help="epochs of the networks (default 30; 2 quick)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch_size of the networks (default 256)")
    parser.add_argument("--trees", type=int, help="random-forest trees (default 100; 10 quick)")
    parser.add_argument("--samples-per-class", type=int, help="periodic/constant selection (default 500; 100 quick)")
    parser.add_argument("--nb-parallel-tasks", type=int, default=2)
    parser.add_argument("--predict-pixels", type=int, help="pixels of the first chunk predicted (default 200000)")
    parser.add_argument("--threads", default=None, help="threads of the inference timings (default 1,<cores>)")
    parser.add_argument("--throughput-epochs", type=int, help="epochs of the throughput fits (default 5; 2 quick)")
    parser.add_argument("--memory-rows", type=int, help="rows of the 1x memory file (default 20000; 2000 quick)")
    parser.add_argument("--memory-factors", default="1,4,10", help="memory file sizes, multiples of --memory-rows")
    parser.add_argument("--memory-network", default="MLPClassifier", choices=NETWORKS)
    parser.add_argument("--memory-epochs", type=int, default=1, help="epochs of the memory fits (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (data, outputs)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.size = args.size or (150 if quick else 500)
    args.runs = args.runs or (2 if quick else 3)
    args.epochs = args.epochs or (2 if quick else 30)
    args.throughput_epochs = args.throughput_epochs or (2 if quick else 5)
    args.trees = args.trees or (10 if quick else 100)
    args.samples_per_class = args.samples_per_class or (100 if quick else 500)
    args.predict_pixels = args.predict_pixels or (20_000 if quick else 200_000)
    args.memory_rows = args.memory_rows or (2000 if quick else 20_000)
    cores = os.cpu_count() or 1
    args.thread_list = [int(v) for v in args.threads.split(",")] if args.threads else sorted({1, cores})
    args.factor_list = [int(v) for v in args.memory_factors.split(",")]
    args.date_list = dates_every(args.dates, 10)
    if args.size % 2 or args.size < 16:
        parser.error("--size must be even and >= 16")
    if args.runs < 2:
        parser.error("--runs must be >= 2 (an interval needs two runs)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, spec = args.child
        print(json.dumps({"throughput": child_throughput, "memory": child_memory}[mode](json.loads(spec))))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bench_start = time.perf_counter()
    log(f"load average at the start: {load_average()}")
    dataset, generated = ensure_dataset(work, args.size, args.date_list, args.seed)
    log(f"tile {args.size}x{args.size}, {len(args.date_list)} dates: "
        + (f"generated in {generated:.1f} s" if generated is not None else "reused") + f" ({dataset['s2_path']})")

    chains, configs = {}, {}
    for tag, dl_name in CHAINS:
        name = f"dl_{tag.lower()}_{args.size}px_{len(args.date_list)}dates_{args.runs}runs"
        configs[tag] = write_config(work / f"config_{name}.yaml", dataset, work / f"run_{name}", args, dl_name)
        chains[tag] = run_chain(configs[tag], work / f"run_{name}", args)
        chain = chains[tag]
        log(f"chain {tag}: {chain['wall_s']:.1f} s, OA {interval(chain['oa_mean'], chain['oa_half_width'])}, "
            f"classification {chains[tag]['classification_sum_s']:.1f} task s")

    rf_output = OutputLayout(work / f"run_dl_rf_{args.size}px_{len(args.date_list)}dates_{args.runs}runs")
    samples = next(rf_output.root.glob("learningSamples/Samples_region_*_seed0_learn.parquet"))
    cores = os.cpu_count() or 1
    throughput = run_child("throughput", {
        "rf_config": str(configs["RF"]), "samples": str(samples), "folder": str(work / "dl_throughput"),
        "predict_pixels": args.predict_pixels, "threads": args.thread_list, "networks": list(NETWORKS),
        "dl": {name: {**dl_settings(args, name), "epochs": args.throughput_epochs} for name in NETWORKS}},
        threads=cores)
    for entry in throughput["learners"]:
        log(f"{entry['learner']}: fit {entry['fit_s']:.1f} s, {entry['train_samples_per_s']:.0f} samples/s, "
            f"inference {entry[f'pixels_per_s_{args.thread_list[-1]}t']:.0f} px/s")

    memory, control = [], None
    folder = work / "dl_memory"
    for factor in args.factor_list:
        path = folder / f"samples_{factor}x.parquet"
        rows = write_repeated_samples(samples, path, args.memory_rows * factor)
        settings = {**dl_settings(args, args.memory_network), "epochs": args.memory_epochs}
        entry = run_child("memory", {"samples": str(path), "folder": str(folder), "force_stream": True,
                                     "settings": settings}, threads=cores)
        entry.update({"factor": factor, "file_rows": rows, "file_mib": path.stat().st_size / 2 ** 20})
        memory.append(entry)
        log(f"memory {rows} rows: peak {entry['peak_kb'] / 1024:.0f} MiB, streamed {entry['streamed']}")
        if factor == args.factor_list[-1]:  # the same file held in memory, as below the learner's threshold
            control = run_child("memory", {"samples": str(path), "folder": str(folder), "force_stream": False,
                                           "settings": settings}, threads=cores)
            control.update({"factor": factor, "file_rows": rows, "file_mib": path.stat().st_size / 2 ** 20})
            log(f"memory {rows} rows in memory: peak {control['peak_kb'] / 1024:.0f} MiB")
        path.unlink()

    verdicts = print_report(args, chains, throughput, memory, control)
    print(f"\nbenchmark wall time {time.perf_counter() - bench_start:.1f} s; date {datetime.date.today().isoformat()}")
    if args.json:
        write_json(args.json, {"args": vars(args), "chains": chains, "throughput": throughput, "memory": memory,
                               "memory_in_memory": control, "verdicts": verdicts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
