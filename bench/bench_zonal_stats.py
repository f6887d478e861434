#!/usr/bin/env python
"""Benchmark: per-object statistics (:mod:`iota2.core.zonal_stats`) against exactextract on the same segments.

One run does, in order:

1. generate (once, kept under ``bench/_work/zonal/``) a float32 feature GeoTIFF of ``--bands`` bands on a
   ``--size`` x ``--size`` tile (uncompressed, GDAL's default pixel interleave) and, for each count of
   ``--segments``, a uint32 raster of segment ids (irregular blocks: a block grid whose borders wave);
2. ours, in a fresh child process: the chunk task's work for every chunk of the tile (read the chunk's features
   and ids, :func:`partial_statistics` for mean and std), then :func:`combine` and :func:`statistics_table`; time
   (reading and computing apart) and peak RSS;
3. the polygons of the segments for exactextract (:func:`iota2.core.user_segmentation.segment_polygons`, written
   as a GeoPackage), in a child, timed apart: exactextract needs polygons, ours does not;
4. exactextract (``exact_extract(features.tif, polygons.gpkg, ["mean", "stdev"])``, its default
   feature-sequential strategy) in a child: time and peak RSS; its values are compared with ours on a sample of
   segments (1e-4 relative: the polygons follow pixel edges, so its coverage fractions are 0 or 1);
5. memory against the tile size: for each of ``--memory-sizes``, a child runs the chunk task (read, partials,
   write the partials file) on every chunk of that tile with the same segment size and chunk pixels; its peak
   RSS must not grow with the tile (ratio <= 1.25 for 4x the pixels).

Peak RSS is ``VmHWM`` of the child (``bench_chain.peak_rss_kb``). exactextract is a bench-only dependency
(``pip install exactextract``); without it the bench prints "exactextract not installed" and measures ours only.

Usage::

    python bench/bench_zonal_stats.py                       # 4000 px, 50 bands, 10^4 and 10^5 segments
    python bench/bench_zonal_stats.py --quick               # 300 px, 6 bands: a few seconds (smoke test)
    python bench/bench_zonal_stats.py --json result.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from bench_chain import current_rss_kb, peak_rss_kb, verdict, write_json  # noqa: E402

DEFAULT_WORK = BENCH_DIR / "_work" / "zonal"
TILE = "T31TCJ"
STATS = ["mean", "std"]
EPSG = 32631
ORIGIN = (500_000.0, 4_900_000.0)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ data
def grid_of(size: int):
    from affine import Affine
    from rasterio.crs import CRS

    from iota2.core.raster import Grid

    return Grid(CRS.from_epsg(EPSG), Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), size, size)


def stripes(size: int, rows: int):
    from rasterio.windows import Window

    return [Window(0, row, size, min(rows, size - row)) for row in range(0, size, rows)]


def segment_block(size: int, segments: int, row0: int, rows: int, seed: int) -> np.ndarray:
    """Ids of rows ``row0`` .. ``row0 + rows`` of a tile cut into about ``segments`` irregular blocks."""
    per_side = max(1, round(math.sqrt(segments)))
    side = size / per_side
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 4)
    r = np.arange(row0, row0 + rows, dtype=np.float64)[:, None]
    c = np.arange(size, dtype=np.float64)[None, :]
    amplitude = 0.3 * side
    rr = r + amplitude * np.sin(2 * np.pi * c / (2.7 * side) + phases[0]) * np.sin(2 * np.pi * r / (5.1 * side)
                                                                                     + phases[1])
    cc = c + amplitude * np.sin(2 * np.pi * r / (3.3 * side) + phases[2]) * np.sin(2 * np.pi * c / (4.7 * side)
                                                                                     + phases[3])
    block_r = np.clip((rr / side).astype(np.int64), 0, per_side - 1)
    block_c = np.clip((cc / side).astype(np.int64), 0, per_side - 1)
    return (block_r * per_side + block_c + 1).astype(np.uint32)


def ensure_data(work: Path, size: int, bands: int, segment_counts: list[int], seed: int = 0) -> dict:
    """Feature and segment rasters of a tile (written by stripes; reused when present)."""
    import rasterio

    folder = work / f"tile_{size}px_{bands}bands_seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    grid = grid_of(size)
    rows = max(1, (1 << 22) // size)
    features = folder / "features.tif"
    if not features.exists():
        log(f"writing {features} ({size}x{size} x {bands} float32)")
        tmp = features.with_suffix(".tmp.tif")
        profile = grid.profile(count=bands, dtype="float32", compress="NONE")
        with rasterio.open(tmp, "w", **profile) as dst:
            for window in stripes(size, rows):
                rng = np.random.default_rng([seed, int(window.row_off)])
                level = segment_block(size, max(1, size * size // 400), int(window.row_off), int(window.height),
                                      seed + 1).astype(np.float32)
                cube = np.empty((bands, int(window.height), size), np.float32)
                for band in range(bands):
                    cube[band] = (level * (37 + band) % 5000 + 500 + rng.normal(0, 150, level.shape)).astype(
                        np.float32)
                dst.write(cube, window=window)
        os.replace(tmp, features)
    segments = {}
    for count in segment_counts:
        path = folder / f"segments_{count}.tif"
        if not path.exists():
            tmp = path.with_suffix(".tmp.tif")
            with rasterio.open(tmp, "w", **grid.profile(dtype="uint32", nodata=0)) as dst:
                for window in stripes(size, rows):
                    dst.write(segment_block(size, count, int(window.row_off), int(window.height), seed + 2), 1,
                              window=window)
            os.replace(tmp, path)
        segments[count] = str(path)
    return {"folder": str(folder), "size": size, "bands": bands, "features": str(features), "segments": segments,
            "grid": grid.to_dict()}


def chunk_windows(size: int, chunk_pixels: int):
    return stripes(size, max(1, chunk_pixels // size))


# ------------------------------------------------------------------------------------------------ children
def read_chunk(features_src, ids_src, window):
    start = time.perf_counter()
    cube = features_src.read(window=window)  # (bands, rows, cols)
    features = np.ascontiguousarray(np.moveaxis(cube, 0, -1))
    del cube
    ids = ids_src.read(1, window=window)
    return features, ids, time.perf_counter() - start


def child_ours(spec: dict) -> dict:
    """The chunk task on every chunk, then combine and the table; sample of values saved for the comparison."""
    import rasterio

    from iota2.core import zonal_stats

    zonal_stats._kernel()  # compiled or loaded from numba's cache, as a worker does once
    baseline = current_rss_kb()
    read_s = compute_s = 0.0
    parts = []
    start = time.perf_counter()
    with rasterio.open(spec["features"]) as features_src, rasterio.open(spec["segments"]) as ids_src:
        for window in chunk_windows(spec["size"], spec["chunk_pixels"]):
            features, ids, seconds = read_chunk(features_src, ids_src, window)
            read_s += seconds
            tic = time.perf_counter()
            parts.append(zonal_stats.partial_statistics(ids, features, STATS, batch_pixels=spec.get("batch_pixels")))
            compute_s += time.perf_counter() - tic
            del features, ids
    tic = time.perf_counter()
    labels = [f"band_{index + 1}" for index in range(spec["bands"])]
    segments, values, names = zonal_stats.statistics_table(zonal_stats.combine(parts), labels, STATS)
    combine_s = time.perf_counter() - tic
    total = time.perf_counter() - start
    np.savez(spec["table"], segments=segments, values=values, names=np.array(names))
    return {"seconds": total, "read_s": read_s, "compute_s": compute_s, "combine_s": combine_s,
            "segments": int(segments.size), "chunks": len(parts), "baseline_kb": baseline, "peak_kb": peak_rss_kb()}


def child_polygons(spec: dict) -> dict:
    """Polygons of the segment raster (the step exactextract needs), written as a GeoPackage."""
    from iota2.core.layout import OutputLayout
    from iota2.core.user_segmentation import segment_polygons

    output = Path(spec["output"])
    target = OutputLayout(output).segments(TILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    os.symlink(spec["segments"], target)
    start = time.perf_counter()
    frame = segment_polygons(TILE, spec["grid"], str(output), spec["segments"])
    polygonise_s = time.perf_counter() - start
    tic = time.perf_counter()
    frame.to_file(spec["polygons"], driver="GPKG", engine="pyogrio")
    return {"polygonise_s": polygonise_s, "write_s": time.perf_counter() - tic, "polygons": len(frame),
            "peak_kb": peak_rss_kb()}


def child_exactextract(spec: dict) -> dict:
    import geopandas as gpd
    from exactextract import exact_extract

    tic = time.perf_counter()
    polygons = gpd.read_file(spec["polygons"], engine="pyogrio")  # without GDAL's Python bindings
    read_s = time.perf_counter() - tic
    baseline = current_rss_kb()
    start = time.perf_counter()
    frame = exact_extract(spec["features"], polygons, ["mean", "stdev"], include_cols=["segment"],
                          output="pandas", strategy=spec.get("strategy", "feature-sequential"))
    seconds = time.perf_counter() - start
    columns = [column for column in frame.columns if column != "segment"]
    np.savez(spec["table"], segments=frame["segment"].to_numpy(np.uint32),
             values=frame[columns].to_numpy(np.float64), names=np.array(columns))
    return {"seconds": seconds, "read_polygons_s": read_s, "segments": len(frame), "baseline_kb": baseline,
            "peak_kb": peak_rss_kb()}


def child_memory(spec: dict) -> dict:
    """The chunk task (read, partials, write the partials file) on every chunk of a tile."""
    import rasterio

    from iota2.core import zonal_stats

    zonal_stats._kernel()
    baseline = current_rss_kb()
    start = time.perf_counter()
    windows = chunk_windows(spec["size"], spec["chunk_pixels"])
    with rasterio.open(spec["features"]) as features_src, rasterio.open(spec["segments"]) as ids_src:
        for index, window in enumerate(windows):
            features, ids, _ = read_chunk(features_src, ids_src, window)
            partials = zonal_stats.partial_statistics(ids, features, STATS, batch_pixels=spec.get("batch_pixels"))
            zonal_stats.write_partials(Path(spec["output"]) / f"chunk_{index}.npz", partials)
            del features, ids, partials
    return {"seconds": time.perf_counter() - start, "chunks": len(windows),
            "chunk_pixels": max(int(w.width * w.height) for w in windows), "baseline_kb": baseline,
            "peak_kb": peak_rss_kb()}


CHILDREN = {"ours": child_ours, "polygons": child_polygons, "exactextract": child_exactextract,
            "memory": child_memory}


OUR_GDAL_CACHE_MB = 64
"""GDAL block cache of our children, as the chain's workers (``iota2.core.raster.GDAL_CACHE_MB``); exactextract's
child keeps GDAL's default (5 % of the memory), which its per-feature reads need."""


def run_child(mode: str, spec: dict) -> dict:
    env = dict(os.environ)
    if mode in ("ours", "memory"):
        env["GDAL_CACHEMAX"] = str(OUR_GDAL_CACHE_MB)
    result = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(spec)], capture_output=True,
                            text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"child {mode} failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def exactextract_version() -> str | None:
    try:
        import exactextract
    except ImportError:
        return None
    return getattr(exactextract, "__version__", "unknown")


# ------------------------------------------------------------------------------------------------ comparison
def compare(ours_table: str, peer_table: str, bands: int, sample: int = 1000, seed: int = 0) -> dict:
    """Largest relative difference of mean and std between the two tables on a sample of segments."""
    ours = np.load(ours_table)
    peer = np.load(peer_table)
    common, ours_rows, peer_rows = np.intersect1d(ours["segments"], peer["segments"], return_indices=True)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(common.size, min(sample, common.size), replace=False) if common.size else np.zeros(0, int)
    peer_names = list(peer["names"])
    worst = 0.0
    for band in range(1, bands + 1):
        for stat, peer_stat in (("mean", "mean"), ("std", "stdev")):
            mine = ours["values"][ours_rows[chosen], list(ours["names"]).index(f"band_{band}_{stat}")]
            name = f"band_{band}_{peer_stat}" if f"band_{band}_{peer_stat}" in peer_names else peer_stat
            theirs = peer["values"][peer_rows[chosen], peer_names.index(name)]
            scale = np.maximum(np.abs(theirs), 1.0)
            worst = max(worst, float(np.max(np.abs(mine - theirs) / scale, initial=0.0)))
    return {"segments_ours": int(ours["segments"].size), "segments_peer": int(peer["segments"].size),
            "common": int(common.size), "compared": int(chosen.size), "max_rel_diff": worst,
            "agree": bool(worst <= 1e-4 and common.size == ours["segments"].size == peer["segments"].size)}


# ------------------------------------------------------------------------------------------------ main
def mib(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f} MiB"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=4000, help="tile side (pixels) of the comparison")
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--segments", default="10000,100000", help="segment counts, comma-separated")
    parser.add_argument("--memory-sizes", default="2000,4000", help="tile sides of the memory runs")
    parser.add_argument("--memory-segment-pixels", type=int, default=160,
                        help="average pixels per segment in the memory runs")
    parser.add_argument("--chunk-pixels", type=int, default=1 << 20, help="pixels of a chunk task")
    parser.add_argument("--batch-pixels", type=int, default=None, help="obia.buffer_size of the partials")
    parser.add_argument("--strategy", default="feature-sequential", help="exactextract strategy")
    parser.add_argument("--skip-exactextract", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--quick", action="store_true", help="300 px, 6 bands, 100 and 1000 segments")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.bands, args.segments, args.memory_sizes = 300, 6, "100,1000", "150,300"
        args.chunk_pixels = 150 * 40
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return 0
    counts = [int(value) for value in args.segments.split(",") if value]
    version = None if args.skip_exactextract else exactextract_version()
    data = ensure_data(args.work, args.size, args.bands, counts)
    results = {"size": args.size, "bands": args.bands, "stats": STATS, "chunk_pixels": args.chunk_pixels,
               "exactextract": version, "runs": [], "memory": None}
    print(f"per-object statistics {'+'.join(STATS)} over {args.bands} bands, tile {args.size} x {args.size} px, "
          f"chunks of {args.chunk_pixels} px")
    if version is None:
        print("exactextract not installed (pip install exactextract): its side is skipped"
              if not args.skip_exactextract else "exactextract skipped (--skip-exactextract)")
    else:
        print(f"exactextract {version} ({args.strategy}) on the polygons of the same segments")
    header = f"{'segments':>9} {'ours s':>8} {'(read':>7} {'compute':>8} {'combine)':>9} {'ours peak':>10} " \
             f"{'polygonise s':>13} {'exactextract s':>15} {'exx peak':>9} {'exx/ours':>9} {'max rel diff':>13}"
    print(header)
    for count in counts:
        folder = Path(data["folder"])
        spec = {"features": data["features"], "segments": data["segments"][count], "size": args.size,
                "bands": args.bands, "chunk_pixels": args.chunk_pixels, "batch_pixels": args.batch_pixels,
                "table": str(folder / f"ours_{count}.npz")}
        log(f"ours, {count} segments")
        ours = run_child("ours", spec)
        run = {"segments_asked": count, "ours": ours, "polygons": None, "exactextract": None, "values": None}
        if version is not None:
            log(f"polygons, {count} segments")
            polygons = str(folder / f"polygons_{count}.gpkg")
            run["polygons"] = run_child("polygons", {"segments": data["segments"][count], "grid": data["grid"],
                                                     "output": str(folder / f"out_{count}"), "polygons": polygons})
            log(f"exactextract, {count} segments")
            run["exactextract"] = run_child("exactextract", {"features": data["features"], "polygons": polygons,
                                                             "strategy": args.strategy,
                                                             "table": str(folder / f"exx_{count}.npz")})
            run["values"] = compare(spec["table"], str(folder / f"exx_{count}.npz"), args.bands)
        peer = run["exactextract"]
        ratio = None if peer is None else peer["seconds"] / ours["seconds"]
        run["ratio"] = ratio
        print(f"{ours['segments']:>9} {ours['seconds']:>8.2f} {ours['read_s']:>7.2f} {ours['compute_s']:>8.2f} "
              f"{ours['combine_s']:>9.2f} {mib(ours['peak_kb']):>10} "
              f"{'-' if peer is None else format(run['polygons']['polygonise_s'], '.2f'):>13} "
              f"{'-' if peer is None else format(peer['seconds'], '.2f'):>15} "
              f"{'-' if peer is None else mib(peer['peak_kb']):>9} "
              f"{'-' if ratio is None else format(ratio, '.1f') + 'x':>9} "
              f"{'-' if peer is None else format(run['values']['max_rel_diff'], '.1e'):>13}")
        results["runs"].append(run)
    for run in results["runs"]:
        count = run["ours"]["segments"]
        if run["exactextract"] is None:
            print(f"SPEED RATIO exactextract/ours {count} segments: not measured (exactextract not installed or skipped)")
            continue
        values = run["values"]
        print(f"SPEED RATIO exactextract/ours {count} segments: {run['ratio']:.1f}x (polygonisation for "
              f"exactextract not counted: {run['polygons']['polygonise_s']:.2f} s)   target >= 1x: "
              f"{verdict(run['ratio'] >= 1)}")
        print(f"VALUES {count} segments: max relative difference {values['max_rel_diff']:.1e} on "
              f"{values['compared']} segments x {args.bands} bands (mean, std), same segments: "
              f"{values['common'] == values['segments_ours'] == values['segments_peer']}   target <= 1e-4: "
              f"{verdict(values['agree'])}")
    if not args.skip_memory:
        sizes = [int(value) for value in args.memory_sizes.split(",") if value]
        rows = []
        for size in sizes:
            count = max(1, size * size // args.memory_segment_pixels)
            tile = ensure_data(args.work, size, args.bands, [count])
            output = Path(tile["folder"]) / f"partials_{count}"
            log(f"memory, {size} px")
            rows.append({"size": size, "segments": count, **run_child(
                "memory", {"features": tile["features"], "segments": tile["segments"][count], "size": size,
                           "chunk_pixels": args.chunk_pixels, "batch_pixels": args.batch_pixels,
                           "output": str(output)})})
        results["memory"] = rows
        for row in rows:
            print(f"MEMORY chunk task {row['size']} px ({row['segments']} segments, {row['chunks']} chunks of "
                  f"{row['chunk_pixels']} px): peak {mib(row['peak_kb'])} (baseline {mib(row['baseline_kb'])}), "
                  f"{row['seconds']:.2f} s")
        if len(rows) >= 2:
            small, large = rows[0], rows[-1]
            ratio = large["peak_kb"] / small["peak_kb"]
            factor = (large["size"] / small["size"]) ** 2
            results["memory_ratio"] = ratio
            print(f"PEAK RSS RATIO {large['size']} px / {small['size']} px: {ratio:.2f} for {factor:.0g}x the "
                  f"pixels   flat (<= 1.25): {verdict(ratio <= 1.25)}")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
