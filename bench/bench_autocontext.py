#!/usr/bin/env python
"""Benchmark: SLIC superpixels of a tile, and the cost of an autocontext iteration against one pixel classification.

One run does, in order:

1. **SLIC**: :func:`iota2.core.segmentation.slic_superpixels` on a ``--slic-size`` x ``--slic-size`` tile (default
   2000) of ``--slic-features`` float32 features (fields of 20 x 20 px with noise, every pixel in the footprint),
   in one call, as a chunk of that size would be: time, superpixels, and the memory SLIC adds to the process (peak
   RSS after the call minus the RSS before it, ``VmHWM`` / ``VmRSS`` of ``/proc/self/status``);
2. **autocontext cost**: on a generated tile of noisy fields (:mod:`iota2.datagen.noisy_fields`, ``--size`` px,
   4 bands x 4 dates) the classification chain runs twice through the command line's ``main`` (debug scheduler,
   ``--chunks`` chunks): once as a pixel classification, once with ``enable_autocontext`` and ``--iterations``
   iterations (after a first pixel run whose times are dropped: imports and compiled kernels are paid once per
   process). From the task logs (``done in X s``): the pixel chain's learning and classification time, and per
   autocontext iteration its learning plus its chunk classification (features are recomputed at each iteration:
   a chunk task reads and computes them again), with the SLIC steps apart; each is given as a ratio to the pixel
   chain's learning + classification. Overall accuracy and kappa of both maps on the validation polygons.

Usage::

    python bench/bench_autocontext.py                 # SLIC on 2000 x 2000 px; chain on 1000 x 1000 px, 3 iterations
    python bench/bench_autocontext.py --quick         # SLIC on 300 px, chain on 200 px (smoke run)
    python bench/bench_autocontext.py --json result.json
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import DEFAULT_WORK, current_rss_kb, log, peak_rss_kb, write_json  # noqa: E402

from iota2.core.layout import OutputLayout  # noqa: E402


def bench_slic(size: int, features: int, seed: int = 0) -> dict:
    """Time and added memory of SLIC on a ``size`` x ``size`` block of ``features`` features."""
    from iota2.core.segmentation import slic_superpixels

    rng = np.random.default_rng(seed)
    fields = rng.uniform(0.0, 1.0, (size // 20 + 1, size // 20 + 1, features)).astype(np.float32)
    block = np.repeat(np.repeat(fields, 20, axis=0), 20, axis=1)[:size, :size]
    block += rng.normal(0.0, 0.3, block.shape).astype(np.float32)
    footprint = np.ones((size, size), bool)
    slic_superpixels(block[:64, :64], footprint[:64, :64])  # imports scikit-image outside the timing
    before = current_rss_kb()
    start = time.perf_counter()
    ids = slic_superpixels(block, footprint, spatial_width=10)
    seconds = time.perf_counter() - start
    peak = peak_rss_kb()
    count = int(len(np.unique(ids)))
    return {"size": size, "features": features, "seconds": seconds, "superpixels": count,
            "pixels_per_s": size * size / seconds, "block_mib": block.nbytes / 2**20,
            "added_peak_mib": max(0, peak - before) / 1024}


def task_times(output: Path) -> dict[str, float]:
    """``{task: seconds}`` from the ``done in X s`` lines of the task logs (the last attempt's)."""
    times = {}
    for path in sorted(OutputLayout(output).logs.glob("*/*.log")):
        found = re.findall(r"iota2\.task: done in ([0-9.]+) s", path.read_text(encoding="utf-8", errors="replace"))
        if found:
            times[path.stem] = float(found[-1])
    return times


def total(times: dict, pattern: str) -> float:
    return sum(seconds for name, seconds in times.items() if re.fullmatch(pattern, name))


def run_chain(work: Path, name: str, dataset: dict, args, **train) -> tuple[Path, float]:
    from iota2.cli import main
    from iota2.datagen.noisy_fields import stack_section

    output = work / name
    if output.exists():
        shutil.rmtree(output)
    config = {"chain": {"output_path": str(output), "list_tile": " ".join(dataset["tiles"]),
                        "stack_path": dataset["stack_path"], "ground_truth": dataset["ground_truth"],
                        "data_field": "code", "nomenclature_path": dataset["nomenclature"],
                        "color_table": dataset["color_table"]},
              "arg_train": {"runs": 1, "ratio": 0.5, "random_seed": 0,
                            "sample_selection": {"sampler": "random", "strategy": "constant",
                                                 "strategy.constant.nb": args.samples}, **train},
              "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": args.trees},
              "python_data_managing": {"chunk_size_mode": "split_number", "number_of_chunks": args.chunks},
              "timeseries_stack": stack_section(dataset)}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    if main(["-config", str(path), "-scheduler_type", "debug", "-no_progress"]) != 0:
        raise SystemExit(f"the {name} chain failed; see {output}/logs")
    return output, time.perf_counter() - start


def scores(output: Path) -> dict:
    from iota2.core.metrics import coefficients, read_confusion_csv

    found = coefficients(read_confusion_csv(OutputLayout(output).run_confusion(0))[0])
    return {"oa": float(found["oa"]), "kappa": float(found["kappa"])}


def bench_chains(work: Path, args) -> dict:
    from iota2.datagen.noisy_fields import generate_noisy_fields

    data = work / f"noisy_{args.size}px"
    if data.exists():
        shutil.rmtree(data)
    dataset = generate_noisy_fields(data, tiles=("T31TCJ",), size=args.size, parcel=20)
    run_chain(work, "warm_up", dataset, args)  # first imports, compiled kernels: paid once per process, by neither
    pixel_out, pixel_wall = run_chain(work, "pixel", dataset, args)
    auto_out, auto_wall = run_chain(work, "autocontext", dataset, args, enable_autocontext=True,
                                    autocontext_iterations=args.iterations)
    pixel, auto = task_times(pixel_out), task_times(auto_out)
    pixel_learning = total(pixel, r"learning_region_.*")
    pixel_classification = total(pixel, r"classification_.*_chunk_\d+")
    reference = pixel_learning + pixel_classification
    iterations = []
    for iteration in range(1, args.iterations + 1):
        learning = total(auto, rf"learning_region_.*_it_{iteration}")
        pattern = r"classification_.*_chunk_\d+" if iteration == args.iterations else rf"context_.*_it_{iteration}"
        classification = total(auto, pattern)
        iterations.append({"iteration": iteration, "learning_s": learning, "classification_s": classification,
                           "ratio": (learning + classification) / reference if reference else None})
    return {"size": args.size, "chunks": args.chunks, "trees": args.trees, "samples_per_class": args.samples,
            "pixel": {"learning_s": pixel_learning, "classification_s": pixel_classification, "wall_s": pixel_wall,
                      **scores(pixel_out)},
            "autocontext": {"superpixels_s": total(auto, r"superpixels_.*"), "iterations": iterations,
                            "wall_s": auto_wall, **scores(auto_out)}}


def print_report(slic: dict, chains: dict) -> None:
    print()
    print(f"=== SLIC: {slic['size']} x {slic['size']} px, {slic['features']} features, {os.cpu_count()} cores ===")
    print(f"time {slic['seconds']:.2f} s   superpixels {slic['superpixels']}   "
          f"{slic['pixels_per_s'] / 1e6:.2f} Mpx/s   features block {slic['block_mib']:.0f} MiB   "
          f"memory added by SLIC {slic['added_peak_mib']:.0f} MiB")
    pixel, auto = chains["pixel"], chains["autocontext"]
    print()
    print(f"=== autocontext vs pixel classification: 1 tile {chains['size']} x {chains['size']} px, "
          f"{chains['chunks']} chunks, RF {chains['trees']} trees ===")
    print(f"{'':28}{'learning':>10}{'classif.':>10}{'total':>10}{'ratio':>8}")
    reference = pixel["learning_s"] + pixel["classification_s"]
    print(f"{'pixel classification':28}{pixel['learning_s']:9.2f}s{pixel['classification_s']:9.2f}s"
          f"{reference:9.2f}s{1.0:7.2f}x")
    print(f"{'autocontext superpixels':28}{'':10}{'':10}{auto['superpixels_s']:9.2f}s"
          f"{auto['superpixels_s'] / reference if reference else 0:7.2f}x")
    for entry in auto["iterations"]:
        spent = entry["learning_s"] + entry["classification_s"]
        print(f"{'autocontext iteration ' + str(entry['iteration']):28}{entry['learning_s']:9.2f}s"
              f"{entry['classification_s']:9.2f}s{spent:9.2f}s{entry['ratio'] or 0:7.2f}x")
    print(f"wall: pixel chain {pixel['wall_s']:.1f} s, autocontext chain {auto['wall_s']:.1f} s "
          f"({auto['wall_s'] / pixel['wall_s']:.2f}x)")
    print(f"ACCURACY pixel map OA {pixel['oa']:.4f} kappa {pixel['kappa']:.4f}; autocontext map OA {auto['oa']:.4f} "
          f"kappa {auto['kappa']:.4f}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--slic-size", type=int, default=None, help="SLIC tile side in pixels (default 2000)")
    parser.add_argument("--slic-features", type=int, default=24, help="features of the SLIC tile")
    parser.add_argument("--size", type=int, default=None, help="chain tile side in pixels (default 1000)")
    parser.add_argument("--chunks", type=int, default=4, help="chunks of the chain's tile")
    parser.add_argument("--iterations", type=int, default=3, help="autocontext iterations")
    parser.add_argument("--trees", type=int, default=50, help="trees of the random forests")
    parser.add_argument("--samples", type=int, default=1000, help="learning samples per class")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "autocontext", help="working folder")
    parser.add_argument("--json", type=Path, default=None, help="write the measurements to this file")
    args = parser.parse_args(argv)
    args.slic_size = args.slic_size or (300 if args.quick else 2000)
    args.size = args.size or (200 if args.quick else 1000)
    if args.quick:
        args.trees, args.samples = min(args.trees, 20), min(args.samples, 200)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    log(f"SLIC on {args.slic_size} x {args.slic_size} px, {args.slic_features} features")
    slic = bench_slic(args.slic_size, args.slic_features)
    log(f"pixel and autocontext chains on {args.size} x {args.size} px")
    chains = bench_chains(args.work, args)
    print_report(slic, chains)
    if args.json:
        write_json(args.json, {"slic": slic, "chains": chains, "cores": os.cpu_count()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
