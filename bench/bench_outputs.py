#!/usr/bin/env python
"""Benchmark: cost of the final maps' extras (Cloud Optimized GeoTIFFs, legend, styles, quicklooks, the HTML
report) against the classification of a map of the same size.

For each map size (``--sizes``, default 2500, 5000 and 10000 px a side; ``--quick``: 500, 1000 and 2000):

1. generate one tile's run outputs under ``bench/_work/outputs/<size>px/`` (reused while present): a synthetic class
   map of fields (8 classes, blocks of 40 px with 2 % noise), a confidence map and a validity map, written by
   stripes as the chain's tile maps (``classif/``, ``features/T/nbView.tif``);
2. in a fresh child process each (so that imports count and the peak is the task's own):
   * ``plain``: the chain's task functions ``mosaic_run`` and ``pixels_validity`` with COG, legend files and
     quicklooks switched off (plain tiled GeoTIFFs: what the mosaic step wrote before);
   * ``full``: the chain's task functions ``mosaic_run`` and ``pixels_validity`` (COGs with overviews, categories,
     QGIS styles, quicklooks), with the time of the quicklooks alone measured afterwards on the COGs;
   each reports wall time and peak RSS (``VmHWM``);
3. the HTML report (``write_html_report``) in a fresh child process, on the outputs of a real two-run chain on the
   generated demo data (60 px, run once under ``bench/_work/outputs/report_run/``): the report reads the run's tables
   and its quicklooks (at most 1024 px a side), so its cost does not grow with the map; it is measured once and
   added at every size;
4. print the added cost (``full - plain + report``) and the whole ``full`` cost as a share of the time to classify
   the same
   pixels, from the per-pixel cost measured by ``bench_chain.py`` (``--classification-us-per-pixel``, default
   3.4 µs: 13.6 task-seconds for the 4 M pixels of its 2000 px tile at 4 dates, bench/README.md, the cheapest
   classification measured; more dates cost more); target < 5 %; and the peak memory of ``full`` at each size
   against the smallest (flat: within 1.25x for 16x the pixels).

Usage::

    python bench/bench_outputs.py                 # 2500, 5000, 10000 px (about 4 min here, generation included)
    python bench/bench_outputs.py --quick         # 500, 1000, 2000 px (smoke run)
    python bench/bench_outputs.py --sizes 10000 --json result.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import DEFAULT_WORK, log, peak_rss_kb, verdict, write_json  # noqa: E402

TILE = "T1"
LABELS = [1, 2, 3, 4, 5, 6, 7, 8]
CLASSIFICATION_US_PER_PIXEL = 3.4
SHARE_TARGET = 0.05
FLAT = 1.25
STRIPE = 512


def generate(folder: Path, size: int, seed: int = 0) -> Path:
    """The tile maps of one run of a ``size`` x ``size`` tile (written once)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from iota2.core.layout import OutputLayout

    layout = OutputLayout(folder)
    done = folder / "generated.ok"
    if done.exists():
        return folder
    rng = np.random.default_rng(seed)
    fields = rng.integers(1, len(LABELS) + 1, (size // 40 + 1, size // 40 + 1)).astype(np.uint8)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "crs": "EPSG:32631",
               "transform": from_origin(300000, 4900000, 10, 10), "tiled": True, "blockxsize": 256,
               "blockysize": 256, "compress": "zstd", "nodata": 0}
    paths = {"label": layout.tile_map(TILE, 0), "confidence": layout.tile_map(TILE, 0, "confidence"),
             "validity": layout.validity(TILE)}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(paths["label"], "w", dtype="uint8", **profile) as labels, \
            rasterio.open(paths["confidence"], "w", dtype="uint8", **profile) as confidence, \
            rasterio.open(paths["validity"], "w", dtype="uint16", **profile) as validity:
        for top in range(0, size, STRIPE):
            rows = min(STRIPE, size - top)
            block = np.repeat(np.repeat(fields[top // 40:(top + rows - 1) // 40 + 1], 40, axis=0), 40, axis=1)
            block = block[top % 40:top % 40 + rows, :size]
            noise = rng.random(block.shape) < 0.02
            block = np.where(noise, rng.integers(1, len(LABELS) + 1, block.shape), block).astype(np.uint8)
            window = rasterio.windows.Window(0, top, size, rows)
            labels.write(block, 1, window=window)
            confidence.write(rng.integers(30, 101, block.shape).astype(np.uint8), 1, window=window)
            validity.write(rng.integers(5, 40, block.shape).astype(np.uint16), 1, window=window)
    done.write_text("ok")
    return folder


def child(mode: str, folder: str) -> None:
    """Run one measured mode in this (fresh) process and print its figures as JSON."""
    start = time.perf_counter()
    from iota2.builders.mosaic import mosaic_run, pixels_validity
    from iota2.core.layout import OutputLayout
    from iota2.core.legend import class_legend
    from iota2.core.mosaic import mosaic_files
    from iota2.core.quicklook import class_quicklook, quicklook_path, ramp_quicklook

    layout = OutputLayout(folder)
    imported = time.perf_counter()
    figures = {"mode": mode, "imports_s": imported - start}
    if mode == "plain":  # the same task functions with the extras switched off: the mosaic step as it was
        import functools

        import iota2.builders.mosaic as step

        step.mosaic_files = functools.partial(mosaic_files, cog=False)
        step.to_cog = lambda source, target, *args: Path(source).replace(target)
        for name in ("write_categories", "write_qml", "class_quicklook", "ramp_quicklook"):
            setattr(step, name, lambda *args, **kwargs: 1)
        step._mosaic_run([TILE], 0, LABELS, folder, "ZSTD", None, False, None)  # GDAL's default cache
        step._pixels_validity([TILE], folder, "ZSTD")
    else:
        mosaic_run([TILE], 0, LABELS, folder, "ZSTD")
        pixels_validity([TILE], folder, "ZSTD")
        figures["task_s"] = time.perf_counter() - imported
        legend = class_legend(LABELS)
        again = time.perf_counter()
        final = layout.final_classification(0)
        class_quicklook(final, quicklook_path(layout, final), legend)
        ramp_quicklook(layout.final_confidence(0), quicklook_path(layout, layout.final_confidence(0)), 0, 100)
        ramp_quicklook(layout.pixels_validity, quicklook_path(layout, layout.pixels_validity), 0, None)
        figures["quicklooks_s"] = time.perf_counter() - again
    figures["wall_s"] = time.perf_counter() - start
    figures.setdefault("task_s", figures["wall_s"] - figures["imports_s"])
    figures["peak_rss_mib"] = peak_rss_kb() / 1024
    print("RESULT " + json.dumps(figures), flush=True)


def report_child(folder: str) -> None:
    """Write the HTML report of the run in ``folder`` in this (fresh) process; print its figures as JSON."""
    start = time.perf_counter()
    from iota2.builders.report_task import write_html_report

    spec = json.loads((Path(folder) / "run.json").read_text())
    write_html_report(spec["output_path"], spec["runs"], spec["nomenclature"], spec["color_table"])
    print("RESULT " + json.dumps({"mode": "report", "wall_s": time.perf_counter() - start,
                                  "peak_rss_mib": peak_rss_kb() / 1024}), flush=True)


def report_run(work: Path) -> Path:
    """A real two-run chain on the generated demo data (run once), whose outputs the report reads."""
    folder = work / "report_run"
    if not (folder / "run.json").exists():
        from iota2.cli import main as iota2_main
        from iota2.datagen.sentinel2 import generate_demo

        demo = generate_demo(folder, size=60, runs=2)
        if iota2_main(["-config", str(demo["config"]), "-scheduler_type", "debug", "-no_progress"]):
            raise SystemExit(f"the demo chain for the report failed in {folder}")
        (folder / "run.json").write_text(json.dumps({"output_path": str(folder / "output"), "runs": 2,
                                                     "nomenclature": demo["nomenclature"],
                                                     "color_table": demo["color_table"]}))
    return folder


def measure_report(folder: Path) -> dict:
    run = subprocess.run([sys.executable, __file__, "--report-child", str(folder)], capture_output=True, text=True,
                         env=os.environ | {"OMP_NUM_THREADS": "1"})
    if run.returncode:
        raise SystemExit(f"report on {folder} failed:\n{run.stderr[-3000:]}")
    line = [text for text in run.stdout.splitlines() if text.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def measure(mode: str, folder: Path) -> dict:
    for path in (folder / "final").glob("**/*"):
        if path.is_file():
            path.unlink()
    run = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)], capture_output=True, text=True,
                         env=os.environ | {"OMP_NUM_THREADS": "1"})
    if run.returncode:
        raise SystemExit(f"{mode} run on {folder} failed:\n{run.stderr[-3000:]}")
    line = [text for text in run.stdout.splitlines() if text.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500, 1000 and 2000 px")
    parser.add_argument("--sizes", help="map sides in pixels, comma-separated (default 2500,5000,10000)")
    parser.add_argument("--classification-us-per-pixel", type=float, default=CLASSIFICATION_US_PER_PIXEL)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "outputs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--report-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.report_child:
        report_child(args.report_child)
        return
    log("running the demo chain whose outputs the report reads (once)")
    report = measure_report(report_run(args.work))
    log(f"report written in {report['wall_s']:.2f} s")
    sizes = [int(s) for s in (args.sizes or ("500,1000,2000" if args.quick else "2500,5000,10000")).split(",")]
    rows = []
    for size in sizes:
        folder = args.work / f"{size}px"
        log(f"generating {size} x {size} px maps in {folder}")
        generate(folder, size)
        plain, full = measure("plain", folder), measure("full", folder)
        pixels = size * size
        classification = pixels * args.classification_us_per_pixel / 1e6
        rows.append({"size": size, "pixels": pixels, "plain": plain, "full": full, "classification_s": classification,
                     "report_s": report["wall_s"], "added_s": full["task_s"] - plain["task_s"] + report["wall_s"]})
        log(f"{size} px done")
    print()
    print(f"=== final maps' extras (COG, legend, styles, quicklooks, report) against classification, "
          f"{args.classification_us_per_pixel:g} µs/px, {os.cpu_count()} cores ===")
    print(f"{'size':>12} {'pixels':>11} {'plain (s)':>10} {'full (s)':>9} {'quicklooks (s)':>15} {'report (s)':>11} "
          f"{'added (s)':>10} "
          f"{'classif. (s)':>13} {'added %':>8} {'full %':>7} {'peak plain':>11} {'peak full':>10}")
    for row in rows:
        print(f"{row['size']:>6}x{row['size']:<5} {row['pixels']:>11} {row['plain']['task_s']:>10.2f} "
              f"{row['full']['task_s']:>9.2f} {row['full']['quicklooks_s']:>15.2f} {row['report_s']:>11.2f} "
              f"{row['added_s']:>10.2f} "
              f"{row['classification_s']:>13.1f} {100 * row['added_s'] / row['classification_s']:>7.2f}% "
              f"{100 * row['full']['task_s'] / row['classification_s']:>6.2f}% "
              f"{row['plain']['peak_rss_mib']:>7.0f} MiB {row['full']['peak_rss_mib']:>6.0f} MiB")
    largest = rows[-1]
    share = largest["added_s"] / largest["classification_s"]
    whole = (largest["full"]["task_s"] + largest["report_s"]) / largest["classification_s"]
    print(f"SHARE OF CLASSIFICATION at {largest['size']} px: added {100 * share:.2f} % (report included), whole "
          f"mosaic step + report {100 * whole:.2f} %"
          f"   target < 5 %: "
          f"{verdict(share < SHARE_TARGET)}")
    ratio = largest["full"]["peak_rss_mib"] / rows[0]["full"]["peak_rss_mib"]
    print(f"PEAK MEMORY {rows[0]['size']} -> {largest['size']} px: {ratio:.2f}x for "
          f"{largest['pixels'] / rows[0]['pixels']:.0f}x the pixels   target flat (<= {FLAT}x): "
          f"{verdict(ratio <= FLAT)}")
    if args.json:
        write_json(args.json, {"rows": rows, "share": share, "memory_ratio": ratio,
                               "classification_us_per_pixel": args.classification_us_per_pixel})


if __name__ == "__main__":
    main()
