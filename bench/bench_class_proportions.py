#!/usr/bin/env python
"""Benchmark: class proportions (``1:rate``) of a class map over parcels, :mod:`iota2.simplification.zonal_stats`
next to exactextract and rasterstats, side by side in one run.

One run does, in order:

1. generate (once, kept under ``bench/_work/proportions/``) a ``--size`` x ``--size`` uint8 class map of
   ``--classes`` classes, spatially coherent (blocks of 50 px whose borders wave, 5 % of pixels of another class,
   1 % nodata 0; nodata=0 declared) and ``--parcels`` parcels (irregular valid polygons of 8 to 12 vertices on a
   grid of cells, not aligned on pixels, some crossing the map's border), as a GeoPackage;
2. ours, pixel centres and exact coverage, with 1 thread and with every core (the numba kernel is compiled or
   loaded from numba's cache in a warm-up call on a small map first; that time is printed apart); each call reads
   the map and the parcels' file itself;
3. exactextract (the parcels read with geopandas, then ``exact_extract(map, parcels, ["unique", "frac"])``: the
   share of covered area of each value, nodata left out), single threaded;
4. rasterstats (``zonal_stats(parcels, map, categorical=True, nodata=0)``: pixel counts per class, pixel centres)
   on the first ``--rasterstats-parcels`` parcels (all with ``--rasterstats-parcels 0``); its time for every
   parcel is extrapolated from that subset, and the output says so;
5. the largest difference of proportions: ours (centres) against rasterstats on its parcels, ours (exact) against
   exactextract on every parcel.

Targets: ours (1 thread) at least as fast as the fastest peer in each mode, and the same proportions to 1e-6.
exactextract and rasterstats are bench-only dependencies (``pip install exactextract rasterstats``); without one,
its lines say "not installed".

Usage::

    python bench/bench_class_proportions.py               # 4000 px, 10 classes, 10^4 parcels
    python bench/bench_class_proportions.py --quick       # 400 px, 100 parcels: a few seconds (smoke test)
    python bench/bench_class_proportions.py --json result.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from bench_chain import verdict, write_json  # noqa: E402

DEFAULT_WORK = BENCH_DIR / "_work" / "proportions"
EPSG = 32631
ORIGIN = (500_000.0, 4_900_000.0)
PIXEL = 10.0
TOLERANCE = 1e-6


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ data
def make_map(path: Path, size: int, classes: int, seed: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    block = 50
    coarse = rng.integers(1, classes + 1, (size // block + 2, size // block + 2), dtype=np.uint8)
    rows = np.arange(size)[:, None] + 12 * np.sin(np.arange(size)[None, :] / 37.0)
    cols = np.arange(size)[None, :] + 12 * np.sin(np.arange(size)[:, None] / 29.0)
    grid = coarse[np.clip((rows // block).astype(int), 0, coarse.shape[0] - 1),
                  np.clip((cols // block).astype(int), 0, coarse.shape[1] - 1)]
    other = rng.random((size, size)) < 0.05
    grid[other] = rng.integers(1, classes + 1, int(other.sum()), dtype=np.uint8)
    grid[rng.random((size, size)) < 0.01] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=0,
                       crs=f"EPSG:{EPSG}", transform=from_origin(*ORIGIN, PIXEL, PIXEL), tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(grid, 1)
    os.replace(tmp, path)


def make_parcels(path: Path, size: int, parcels: int, seed: int) -> None:
    import geopandas as gpd
    from shapely.geometry import Polygon

    rng = np.random.default_rng(seed + 1)
    per_side = int(np.ceil(np.sqrt(parcels)))
    cell = size * PIXEL / per_side * 1.02  # slightly more than the map: the last row and column cross its border
    polygons = []
    for index in range(parcels):
        row, col = divmod(index, per_side)
        cx = ORIGIN[0] + (col + 0.5) * cell + rng.uniform(-0.1, 0.1) * cell
        cy = ORIGIN[1] - (row + 0.5) * cell + rng.uniform(-0.1, 0.1) * cell
        vertices = int(rng.integers(8, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
        radii = rng.uniform(0.25, 0.5, vertices) * cell
        polygon = Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))
        polygons.append(polygon if polygon.is_valid else polygon.convex_hull)  # an angular gap over 180 degrees
    frame = gpd.GeoDataFrame({"parcel": np.arange(parcels)}, geometry=polygons, crs=f"EPSG:{EPSG}")
    tmp = path.with_suffix(".tmp.gpkg")
    frame.to_file(tmp, driver="GPKG", layer="parcels")
    os.replace(tmp, path)


def data(work: Path, size: int, classes: int, parcels: int, seed: int) -> tuple[Path, Path]:
    folder = work / f"map_{size}px_{classes}cl_seed{seed}"
    raster = folder / "classes.tif"
    vector = folder / f"parcels_{parcels}.gpkg"
    if not raster.exists():
        log(f"writing {raster}")
        make_map(raster, size, classes, seed)
    if not vector.exists():
        log(f"writing {vector}")
        make_parcels(vector, size, parcels, seed)
    return raster, vector


# ------------------------------------------------------------------------------------------------ runs
def shares_table(rows: list[dict], classes: int) -> np.ndarray:
    """(parcels, classes) proportions from {code: amount} per parcel, nodata (0) and absent codes left out."""
    table = np.full((len(rows), classes), np.nan)
    for index, amounts in enumerate(rows):
        amounts = {int(code): float(value) for code, value in amounts.items() if code is not None and int(code) != 0}
        total = sum(amounts.values())
        if total > 0:
            table[index] = [amounts.get(code, 0.0) / total for code in range(1, classes + 1)]
    return table


def run_ours(raster: Path, vector: Path, coverage: str, threads: int | None, classes: int) -> dict:
    from iota2.simplification import zonal_stats as zs

    start = time.perf_counter()
    frame = zs.zonal_statistics(str(raster), str(vector), ["1:rate"], coverage=coverage, threads=threads)
    seconds = time.perf_counter() - start
    table = np.column_stack([frame[str(code)].to_numpy(float) if str(code) in frame.columns
                             else np.zeros(len(frame)) for code in range(1, classes + 1)])
    return {"seconds": seconds, "table": table}


def run_exactextract(raster: Path, vector: Path, classes: int) -> dict | None:
    try:
        from exactextract import exact_extract
    except ImportError:
        return None
    import geopandas as gpd

    start = time.perf_counter()
    parcels = gpd.read_file(vector, engine="pyogrio")  # counted, as ours reads the file (no GDAL Python bindings)
    frame = exact_extract(str(raster), parcels, ["unique", "frac"], output="pandas")
    seconds = time.perf_counter() - start
    rows = [dict(zip(np.asarray(unique).tolist(), np.asarray(frac).tolist()))
            for unique, frac in zip(frame["unique"], frame["frac"])]
    return {"seconds": seconds, "table": shares_table(rows, classes)}


def run_rasterstats(raster: Path, vector: Path, classes: int, subset: int) -> dict | None:
    try:
        import warnings

        import geopandas as gpd
        from rasterstats import zonal_stats
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterstats multiplies affines with * (PendingDeprecationWarning)
        start = time.perf_counter()
        parcels = gpd.read_file(vector, engine="pyogrio")
        count = len(parcels) if subset <= 0 else min(subset, len(parcels))
        rows = zonal_stats(parcels.geometry.iloc[:count], str(raster), categorical=True, nodata=0)
        seconds = time.perf_counter() - start
    return {"seconds_measured": seconds, "parcels_measured": count,
            "seconds": seconds * len(parcels) / count, "extrapolated": count < len(parcels),
            "table": shares_table(rows, classes)}


def max_difference(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, int]:
    """Largest absolute difference, and the number of parcels where one side has proportions and not the other."""
    rows = min(len(ours), len(theirs))
    ours, theirs = ours[:rows], theirs[:rows]
    both = ~np.isnan(ours).any(axis=1) & ~np.isnan(theirs).any(axis=1)
    mismatched = int((np.isnan(ours).any(axis=1) != np.isnan(theirs).any(axis=1)).sum())
    return (float(np.abs(ours[both] - theirs[both]).max()) if both.any() else 0.0), mismatched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--parcels", type=int, default=10_000)
    parser.add_argument("--rasterstats-parcels", type=int, default=1000,
                        help="parcels given to rasterstats (its time is extrapolated to all); 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="400 px, 100 parcels (smoke test)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.parcels, args.rasterstats_parcels = 400, 100, 0
    raster, vector = data(args.work, args.size, args.classes, args.parcels, args.seed)

    import numba

    from iota2.simplification import zonal_stats as zs

    cores = numba.get_num_threads()
    start = time.perf_counter()
    small, small_vector = data(args.work, 64, 3, 4, 99)
    for coverage in ("centre", "exact"):
        zs.zonal_statistics(str(small), str(small_vector), ["1:rate"], coverage=coverage)
    warmup = time.perf_counter() - start
    log("ours")
    ours = {}
    for coverage in ("centre", "exact"):
        ours[coverage] = run_ours(raster, vector, coverage, 1, args.classes)
        ours[coverage + "_all"] = run_ours(raster, vector, coverage, cores, args.classes)
    numba.set_num_threads(cores)
    log("exactextract")
    exact = run_exactextract(raster, vector, args.classes)
    log("rasterstats")
    stats = run_rasterstats(raster, vector, args.classes, args.rasterstats_parcels)

    print()
    print(f"=== class proportions (1:rate): {args.size} x {args.size} px, {args.classes} classes, {args.parcels} "
          f"parcels, {os.cpu_count()} cores ===")
    print(f"kernel warm-up (compile or load from numba's cache, not counted below): {warmup:.2f} s")
    print(f"{'run':<44} {'seconds':>9}")
    print(f"{'ours, pixel centres, 1 thread':<44} {ours['centre']['seconds']:>9.3f}")
    print(f"{f'ours, pixel centres, {cores} threads':<44} {ours['centre_all']['seconds']:>9.3f}")
    print(f"{'ours, exact coverage, 1 thread':<44} {ours['exact']['seconds']:>9.3f}")
    print(f"{f'ours, exact coverage, {cores} threads':<44} {ours['exact_all']['seconds']:>9.3f}")
    if exact:
        print(f"{'exactextract unique+frac (exact coverage)':<44} {exact['seconds']:>9.3f}")
    else:
        print("exactextract not installed")
    if stats:
        note = (f"   (extrapolated from {stats['seconds_measured']:.3f} s on {stats['parcels_measured']} parcels)"
                if stats["extrapolated"] else "")
        print(f"{'rasterstats categorical (pixel centres)':<44} {stats['seconds']:>9.3f}{note}")
    else:
        print("rasterstats not installed")
    peers = [run["seconds"] for run in (exact, stats) if run]
    result = {"size": args.size, "classes": args.classes, "parcels": args.parcels, "cores": cores,
              "warmup_seconds": warmup, "ours": {key: run["seconds"] for key, run in ours.items()},
              "exactextract": exact and {"seconds": exact["seconds"]},
              "rasterstats": stats and {key: stats[key] for key in ("seconds", "seconds_measured",
                                                                    "parcels_measured", "extrapolated")}}
    if peers:
        fastest = min(peers)
        for coverage in ("centre", "exact"):
            ratio = fastest / ours[coverage]["seconds"]
            line = ", ".join(f"{name}/ours {run['seconds'] / ours[coverage]['seconds']:.1f}x"
                             for name, run in (("exactextract", exact), ("rasterstats", stats)) if run)
            print(f"SPEED ours {coverage} (1 thread): {line}   target >= 1x the fastest: {verdict(ratio >= 1)}")
            result[f"speed_{coverage}"] = ratio
    else:
        print("SPEED: no peer installed, not measured")
    if stats:
        diff, mismatched = max_difference(ours["centre"]["table"], stats["table"])
        ok = diff <= TOLERANCE and mismatched == 0
        print(f"VALUES ours centre vs rasterstats ({stats['parcels_measured']} parcels): max difference {diff:.2e}, "
              f"{mismatched} parcel(s) empty on one side only   target <= 1e-6: {verdict(ok)}")
        result["diff_rasterstats"] = {"max": diff, "mismatched": mismatched}
    if exact:
        diff, mismatched = max_difference(ours["exact"]["table"], exact["table"])
        ok = diff <= TOLERANCE and mismatched == 0
        print(f"VALUES ours exact vs exactextract ({args.parcels} parcels): max difference {diff:.2e}, "
              f"{mismatched} parcel(s) empty on one side only   target <= 1e-6: {verdict(ok)}")
        result["diff_exactextract"] = {"max": diff, "mismatched": mismatched}
    same = np.allclose(ours["centre"]["table"], ours["centre_all"]["table"], equal_nan=True, atol=1e-12) and \
        np.allclose(ours["exact"]["table"], ours["exact_all"]["table"], equal_nan=True, atol=1e-12)
    print(f"THREADS 1 vs {cores}: same proportions: {verdict(same)}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
