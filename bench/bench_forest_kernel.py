#!/usr/bin/env python
"""Benchmark: the compiled random-forest kernel at few and many features, one thread.

The unit users run is a Sentinel-2 tile of 30-40 dates: 13 features per date, so 468 features at 36 dates
against 52 at 4. This benchmark takes the generated THEIA tile of ``bench_tile_projection.py`` (36 dates every
10 days, 1000 x 1000 px by default; generated under ``--work`` if missing), computes the chain's features
(``iota2.core.features.read_features``) on two stripes of rows, trains a random forest as the chain does
(``n_estimators`` 100, ``max_depth`` 25, ``min_samples_leaf`` 5; ``--samples-per-class`` pixels per class of
the generator's class map in the first stripe) on all 468 features and on the 52 features of 4 dates (the
first, two in between, the last), and classifies the pixels of the other stripe with:

* ``kernel``: the kernel the chain uses (``iota2.plugins.forest_kernel.forest_proba``);
* ``fixed-64``: the former kernel, kept here for comparison: 64 pixels through a tree for as many levels as the
  tree is deep, which LLVM vectorises with 8-lane gathers;
* ``sklearn``: scikit-learn's ``predict_proba`` in batches of 65 536 pixels.

Times are ``time.process_time`` of one thread, the minimum of ``--repeats`` runs interleaved (the cores are
shared), printed in microseconds per pixel with the load average; the probabilities of the two kernels are
checked identical to each other and equal to scikit-learn's (1e-12). It also prints the shape of the trees:
mean maximum depth, mean depth of the leaf a pixel reaches, the levels a block of 16 pixels walks when it stops
once all its pixels are at leaves, and how many of the features the forest splits on.

Usage::

    python bench/bench_forest_kernel.py                # 1000 px tile, 36 dates, 100 000 pixels classified
    python bench/bench_forest_kernel.py --quick        # 150 px tile, 6 dates, 10 trees (smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import DEFAULT_WORK, TILE, builder_of, ensure_dataset, log, write_config  # noqa: E402
from bench_tile_projection import dates_every  # noqa: E402

BATCH = 65536


def fixed_depth_kernel():
    """The former kernel (64 pixels, fixed number of levels, vectorised), compiled here for the comparison."""
    from numba import njit, prange

    block_size = 64

    @njit(parallel=True, nogil=True)
    def forest_proba(features, roots, depths, feature, threshold, child, leaf_row, leaf_fractions, out):
        n = features.shape[0]
        n_trees = roots.shape[0]
        n_classes = leaf_fractions.shape[1]
        n_blocks = (n + block_size - 1) // block_size
        for block in prange(n_blocks):
            start = block * block_size
            size = min(n, start + block_size) - start
            sums = np.zeros((block_size, n_classes), np.float64)
            nodes = np.zeros(block_size, np.int32)
            for tree in range(n_trees):
                for k in range(size):
                    nodes[k] = roots[tree]
                for _ in range(depths[tree]):
                    for k in range(size):
                        node = nodes[k]
                        nodes[k] = child[node] + np.int32(features[start + k, feature[node]] > threshold[node])
                for k in range(size):
                    row = leaf_row[nodes[k]]
                    for c in range(n_classes):
                        sums[k, c] += leaf_fractions[row, c]
            for k in range(size):
                for c in range(n_classes):
                    out[start + k, c] = sums[k, c] / n_trees

    return forest_proba


def stripe_features(builder, row0: int, rows: int) -> tuple[np.ndarray, list[str]]:
    """Features ``(rows, width, n_features)`` of a stripe of the tile, and their names."""
    from rasterio.windows import Window

    from iota2.core.features import read_features

    grid = builder.grids[TILE]
    rows = min(rows, grid.height - row0)
    block = read_features(builder.config, TILE, grid, Window(0, row0, grid.width, rows), builder.dates_by_sensor,
                          builder.sensor_classes)
    return np.ascontiguousarray(block.features, np.float32), list(block.labels)


def tree_shape(forest, pixels: np.ndarray, block: int = 16) -> dict:
    """Mean maximum depth, mean depth of the leaves the pixels reach, levels walked per block that stops at its
    deepest pixel's leaf, nodes per tree, features split on."""
    leaf_depth, max_depth, walked, nodes, used = [], [], [], [], set()
    whole = len(pixels) // block * block
    for tree in forest.estimators_:
        structure = tree.tree_
        depth = np.zeros(structure.node_count, np.int64)
        for node in range(structure.node_count):  # parents come before their children in scikit-learn's ids
            for child in (structure.children_left[node], structure.children_right[node]):
                if child != -1:
                    depth[child] = depth[node] + 1
        reached = depth[tree.apply(pixels)]
        leaf_depth.append(reached.mean())
        max_depth.append(structure.max_depth)
        walked.append(np.minimum(reached[:whole].reshape(-1, block).max(axis=1) + 1, structure.max_depth).mean())
        nodes.append(structure.node_count)
        used.update(int(f) for f in structure.feature[structure.children_left != -1])
    return {"max_depth": float(np.mean(max_depth)), "leaf_depth": float(np.mean(leaf_depth)),
            "levels_walked_16": float(np.mean(walked)), "nodes_per_tree": float(np.mean(nodes)),
            "features_used": len(used)}


def measure(args) -> dict:
    import rasterio
    from sklearn.ensemble import RandomForestClassifier

    from iota2.plugins import forest_kernel
    from iota2.plugins.tree_ensemble import CompiledForest

    work = Path(args.work).resolve()
    dates = dates_every(args.dates, args.step)
    dataset, generated = ensure_dataset(work, args.size, dates, args.seed)
    log(f"tile {args.size}x{args.size}, {args.dates} dates: "
        + (f"generated in {generated:.1f} s" if generated is not None else "reused"))
    args.date_list = dates
    args.samples_format = "parquet"
    config = write_config(work / f"config_kernel_{args.size}px_{args.dates}dates.yaml", dataset,
                          work / f"run_kernel_{args.size}px_{args.dates}dates", args)
    builder = builder_of(config)
    height = builder.grids[TILE].height
    rows = max(1, min(height // 2, -(-args.pixels // builder.grids[TILE].width)))
    start = time.perf_counter()
    test, names = stripe_features(builder, 0, rows)
    train, _ = stripe_features(builder, height - rows, rows)
    log(f"features of 2 x {rows} rows ({len(names)} features) in {time.perf_counter() - start:.1f} s")
    with rasterio.open(dataset["class_map"]) as source:
        truth = source.read(1)[height - rows:height]
    rng = np.random.default_rng(args.seed)
    picked = np.concatenate([rng.permutation(np.flatnonzero(truth.ravel() == code))[:args.samples_per_class]
                             for code in np.unique(truth)])
    samples = train.reshape(-1, len(names))[picked]
    labels = truth.ravel()[picked]
    pixels = test.reshape(-1, len(names))[:args.pixels]

    stamps = sorted({name.rsplit("_", 1)[-1] for name in names})
    four = {stamps[i] for i in np.linspace(0, len(stamps) - 1, 4).round().astype(int)}
    few = np.array([i for i, name in enumerate(names) if name.rsplit("_", 1)[-1] in four])
    subsets = {len(few): few, len(names): np.arange(len(names))}
    former = fixed_depth_kernel()
    forest_kernel.set_threads(1)
    cases = {}
    for count, columns in subsets.items():
        forest = RandomForestClassifier(n_estimators=args.trees, max_depth=25, min_samples_leaf=5,
                                        random_state=args.seed, n_jobs=2).fit(samples[:, columns], labels)
        forest.n_jobs = 1
        compiled = CompiledForest.from_estimator(forest)
        data = np.ascontiguousarray(pixels[:, columns])
        cases[count] = {"forest": forest, "compiled": compiled, "pixels": data, "shape": tree_shape(forest, data)}

    def run(engine: str, case: dict) -> np.ndarray:
        compiled, data = case["compiled"], case["pixels"]
        out = np.empty((len(data), compiled.n_classes))
        arrays = (compiled.roots, compiled.depths, compiled.feature, compiled.threshold, compiled.child,
                  compiled.leaf_row, compiled.leaf_fractions)
        if engine == "kernel":
            forest_kernel.forest_proba(data, *arrays, out)
        elif engine == "fixed-64":
            former(data, *arrays, out)
        else:
            for begin in range(0, len(data), BATCH):
                out[begin:begin + BATCH] = case["forest"].predict_proba(data[begin:begin + BATCH])
        return out

    engines = ("kernel", "fixed-64", "sklearn")
    best = {(count, engine): float("inf") for count in cases for engine in engines}
    load = [os.getloadavg()[0]]
    for count, case in cases.items():  # compile / load, and check the results
        results = {engine: run(engine, case) for engine in engines}
        case["identical"] = bool(np.array_equal(results["kernel"], results["fixed-64"]))
        case["max_diff_sklearn"] = float(np.abs(results["kernel"] - results["sklearn"]).max())
    for _ in range(args.repeats):
        for count, case in cases.items():
            for engine in engines:
                start = time.process_time()
                run(engine, case)
                best[count, engine] = min(best[count, engine], time.process_time() - start)
        load.append(os.getloadavg()[0])
    return {"pixels": len(pixels), "trees": args.trees, "samples": len(samples), "load": [min(load), max(load)],
            "cases": {count: {"us_per_px": {engine: best[count, engine] / len(pixels) * 1e6 for engine in engines},
                              "shape": case["shape"], "identical": case["identical"],
                              "max_diff_sklearn": case["max_diff_sklearn"]} for count, case in cases.items()}}


def print_report(result: dict, args) -> None:
    print()
    print(f"=== forest kernel: {result['pixels']} pixels of the {args.size} px tile, RF {result['trees']} trees "
          f"({result['samples']} samples), 1 thread, min of {args.repeats} interleaved runs; load average "
          f"{result['load'][0]:.2f}-{result['load'][1]:.2f} on {os.cpu_count()} cores ===")
    print(f"{'features':>8} {'kernel':>9} {'fixed-64':>9} {'sklearn':>9}  {'vs fixed-64':>11} {'vs sklearn':>10}   "
          f"{'max depth':>9} {'leaf depth':>10} {'walked/16':>9} {'nodes':>6} {'used':>5}  identical")
    for count, case in result["cases"].items():
        us, shape = case["us_per_px"], case["shape"]
        print(f"{count:>8} {us['kernel']:9.2f} {us['fixed-64']:9.2f} {us['sklearn']:9.2f}  "
              f"{us['fixed-64'] / us['kernel']:10.2f}x {us['sklearn'] / us['kernel']:9.2f}x   "
              f"{shape['max_depth']:9.1f} {shape['leaf_depth']:10.1f} {shape['levels_walked_16']:9.1f} "
              f"{shape['nodes_per_tree']:6.0f} {shape['features_used']:5d}  "
              f"{'yes' if case['identical'] else 'NO'} (sklearn {case['max_diff_sklearn']:.1e})")
    print("(microseconds per pixel; walked/16: levels per tree a block of 16 pixels walks when it stops once its "
          "pixels are at leaves; used: features the forest splits on)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="tile size in pixels (generated if missing)")
    parser.add_argument("--dates", type=int, default=36)
    parser.add_argument("--step", type=int, default=10, help="days between dates")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--samples-per-class", type=int, default=500)
    parser.add_argument("--pixels", type=int, default=100_000, help="pixels classified")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="150 px, 6 dates, 10 trees, 2 repeats (smoke run)")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (generated tiles)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in (("size", 150), ("dates", 6), ("trees", 10), ("repeats", 2), ("pixels", 5000)):
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    if args.dates < 4:
        parser.error("--dates must be >= 4 (the small case takes 4 dates)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    result = measure(args)
    print_report(result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
