#!/usr/bin/env python
"""Benchmark: the native applications of ``iota2.common.otb_app_bank`` against OTB's, side by side in one run.

One run does, in order:

1. generate (once, kept under ``bench/_work/otb_apps/``) an int16 GeoTIFF of ``--bands`` bands on a ``--size`` x
   ``--size`` grid (uncompressed, as OTB writes) and ground-truth polygons (``--polygons`` boxes of 4 classes,
   SQLite);
2. BandMath ``(im1b8 - im1b4) / (im1b8 + im1b4 + 1)`` written as float32;
3. ExtractROI ``mode fit`` on a vector covering the central quarter of the image, all bands, float32;
4. the samples chain: PolygonClassStatistics, SampleSelection (``constant`` ``--samples`` per class, periodic)
   and SampleExtraction (``outfield prefix``) of every band at the selected points.

Ours: the factories with ``IOTA2_OTB_APPS=native``, in this process (imports done before timing). OTB: the
``otbcli_*`` applications as subprocesses (each start costs about 0.1 s, counted: that is how a script runs them
without a Python binding). Each is run ``--repeat`` times and the best time kept. The outputs are compared
(BandMath and ExtractROI values; the statistics XML; samples per class, to one sample: OTB's periodic sampler runs
per streamed region and may keep one more); a mismatch is printed.

Usage::

    python bench/bench_otb_apps.py                 # 2000 x 2000 x 10, 400 polygons, 500 samples per class
    python bench/bench_otb_apps.py --quick         # 300 px: a few seconds (smoke test)
    python bench/bench_otb_apps.py --json result.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "_work" / "otb_apps"
EPSG = 32631
ORIGIN = (500_000.0, 4_900_000.0)
EXPRESSION = "(im1b8 - im1b4) / (im1b8 + im1b4 + 1)"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def make_data(work: Path, size: int, bands: int, polygons: int) -> dict:
    """The image and the vectors (made once per size, bands and polygons)."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import box

    folder = work / f"data_{size}px_{bands}b_{polygons}p"
    image, vector, fit = folder / "image.tif", folder / "ground_truth.sqlite", folder / "fit.sqlite"
    if image.exists() and vector.exists() and fit.exists():
        return {"image": str(image), "vector": str(vector), "fit": str(fit)}
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    with rasterio.open(image, "w", driver="GTiff", width=size, height=size, count=bands, dtype="int16",
                       crs=f"EPSG:{EPSG}", transform=transform) as target:
        for row in range(0, size, 256):
            rows = min(256, size - row)
            target.write(rng.integers(0, 10000, (bands, rows, size)).astype("int16"),
                         window=rasterio.windows.Window(0, row, size, rows))
    side = size * 10.0
    per_side = int(np.ceil(np.sqrt(polygons)))
    cell = side / per_side
    shapes, labels = [], []
    for index in range(polygons):
        i, j = divmod(index, per_side)
        x0 = ORIGIN[0] + j * cell + rng.uniform(0.05, 0.2) * cell
        y1 = ORIGIN[1] - i * cell - rng.uniform(0.05, 0.2) * cell
        width, height = rng.uniform(0.4, 0.75) * cell, rng.uniform(0.4, 0.75) * cell
        shapes.append(box(x0, y1 - height, x0 + width, y1))
        labels.append(int(index % 4) + 1)
    frame = gpd.GeoDataFrame({"code": labels}, geometry=shapes, crs=f"EPSG:{EPSG}")
    frame.to_file(vector, driver="SQLite", engine="pyogrio")
    quarter = box(ORIGIN[0] + side / 4 + 3, ORIGIN[1] - 3 * side / 4 + 3, ORIGIN[0] + 3 * side / 4 - 3,
                  ORIGIN[1] - side / 4 - 3)
    gpd.GeoDataFrame({"id": [1]}, geometry=[quarter], crs=f"EPSG:{EPSG}").to_file(fit, driver="SQLite",
                                                                               engine="pyogrio")
    return {"image": str(image), "vector": str(vector), "fit": str(fit)}


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def otbcli(name: str, *args) -> None:
    result = subprocess.run([f"otbcli_{name}", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"otbcli_{name} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")


def run(args) -> dict:
    import geopandas as gpd
    import rasterio

    from iota2.common import otb_app_bank as otb

    otb.set_backend("native")
    work = Path(args.work)
    data = make_data(work, args.size, args.bands, args.polygons)
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    have_otb = shutil.which("otbcli_BandMath") is not None and not args.skip_otb
    ram = str(args.ram)
    results = {}

    def ours_band_math():
        otb.CreateBandMathApplication({"il": [data["image"]], "exp": EXPRESSION, "out": str(out / "bm_ours.tif"),
                                       "ram": ram}).ExecuteAndWriteOutput()

    def otb_band_math():
        otbcli("BandMath", "-il", data["image"], "-exp", EXPRESSION, "-out", out / "bm_otb.tif", "-ram", ram)

    def ours_roi():
        otb.CreateExtractROIApplication({"in": data["image"], "mode": "fit", "mode.fit.vect": data["fit"],
                                         "out": str(out / "roi_ours.tif"), "ram": ram}).ExecuteAndWriteOutput()

    def otb_roi():
        otbcli("ExtractROI", "-in", data["image"], "-mode", "fit", "-mode.fit.vect", data["fit"], "-out",
               out / "roi_otb.tif", "-ram", ram)

    def ours_samples():
        otb.CreatePolygonClassStatisticsApplication({"in": data["image"], "vec": data["vector"], "field": "code",
                                                     "out": str(out / "stats_ours.xml")}).ExecuteAndWriteOutput()
        otb.CreateSampleSelectionApplication({"in": data["image"], "vec": data["vector"], "field": "code",
                                              "instats": str(out / "stats_ours.xml"), "strategy": "constant",
                                              "strategy.constant.nb": args.samples, "sampler": "periodic",
                                              "out": str(out / "sel_ours.sqlite")}).ExecuteAndWriteOutput()
        otb.CreateSampleExtractionApplication({"in": data["image"], "vec": str(out / "sel_ours.sqlite"),
                                               "field": "code", "out": str(out / "ext_ours.sqlite"),
                                               "ram": ram}).ExecuteAndWriteOutput()

    def otb_samples():
        otbcli("PolygonClassStatistics", "-in", data["image"], "-vec", data["vector"], "-field", "code", "-out",
               out / "stats_otb.xml")
        otbcli("SampleSelection", "-in", data["image"], "-vec", data["vector"], "-field", "code", "-instats",
               out / "stats_otb.xml", "-strategy", "constant", "-strategy.constant.nb", args.samples, "-sampler",
               "periodic", "-out", out / "sel_otb.sqlite")
        otbcli("SampleExtraction", "-in", data["image"], "-vec", out / "sel_otb.sqlite", "-field", "code", "-out",
               out / "ext_otb.sqlite", "-ram", ram)

    steps = [("BandMath", ours_band_math, otb_band_math),
             ("ExtractROI", ours_roi, otb_roi),
             ("SampleSelection+SampleExtraction", ours_samples, otb_samples)]
    for name, ours, theirs in steps:
        log(f"{name}: ours")
        entry = {"ours_s": best_of(args.repeat, ours)}
        if have_otb:
            log(f"{name}: OTB")
            entry["otb_s"] = best_of(args.repeat, theirs)
            entry["ratio_otb_over_ours"] = entry["otb_s"] / entry["ours_s"]
        results[name] = entry

    checks = {}
    if have_otb:
        for name, stem in (("BandMath", "bm"), ("ExtractROI", "roi")):
            with rasterio.open(out / f"{stem}_ours.tif") as a, rasterio.open(out / f"{stem}_otb.tif") as b:
                same = a.transform == b.transform and a.shape == b.shape and a.count == b.count
                same = same and bool(np.allclose(a.read(), b.read(), rtol=1e-6, equal_nan=True))
            checks[name] = same
        counts = [gpd.read_file(out / f"ext_{who}.sqlite")["code"].value_counts().sort_index().to_dict()
                  for who in ("ours", "otb")]
        # the same statistics file; the same count per class, but OTB's periodic sampler, run per streamed region,
        # may keep one sample more in a class
        same_xml = (out / "stats_ours.xml").read_text() == (out / "stats_otb.xml").read_text()
        close = set(counts[0]) == set(counts[1]) and all(abs(counts[0][k] - counts[1][k]) <= 1 for k in counts[0])
        checks["SampleSelection+SampleExtraction"] = same_xml and close
        results["samples_per_class"] = {"ours": counts[0], "otb": counts[1]}
        results["same_statistics_xml"] = same_xml
    return {"size": args.size, "bands": args.bands, "polygons": args.polygons, "samples": args.samples,
            "repeat": args.repeat, "otb": have_otb, "steps": results, "same_outputs": checks}


def report(result: dict) -> None:
    print()
    print(f"native vs OTB applications, {result['size']} x {result['size']} x {result['bands']} int16, "
          f"{result['polygons']} polygons, {result['samples']} samples per class, best of {result['repeat']}")
    print(f"{'application':36s}{'ours':>10s}{'OTB':>10s}{'OTB/ours':>10s}")
    for name in ("BandMath", "ExtractROI", "SampleSelection+SampleExtraction"):
        entry = result["steps"][name]
        if "otb_s" in entry:
            print(f"{name:36s}{entry['ours_s']:9.2f}s{entry['otb_s']:9.2f}s{entry['ratio_otb_over_ours']:9.2f}x")
        else:
            print(f"{name:36s}{entry['ours_s']:9.2f}s{'-':>10s}{'-':>10s}")
    print()
    if not result["otb"]:
        print("OTB not installed (otbcli_BandMath not on PATH): ours only, no verdict")
        return
    for name in ("BandMath", "ExtractROI", "SampleSelection+SampleExtraction"):
        entry = result["steps"][name]
        same = result["same_outputs"][name]
        print(f"SPEED {name}: OTB/ours {entry['ratio_otb_over_ours']:.2f}x   target >= 1x (native no slower): "
              f"{verdict(entry['ratio_otb_over_ours'] >= 1.0)}   same outputs: {'yes' if same else 'NO'}")
    counts = result["steps"]["samples_per_class"]
    print(f"samples per class: ours {counts['ours']}, OTB {counts['otb']} (OTB's periodic sampler may keep one more); "
          f"statistics XML identical: {'yes' if result['steps']['same_statistics_xml'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--polygons", type=int, default=400)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--ram", type=int, default=256, help="the applications' ram (MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 px, 40 polygons, 20 samples, 1 repeat")
    parser.add_argument("--skip-otb", action="store_true")
    parser.add_argument("--work", default=str(DEFAULT_WORK))
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.polygons, args.samples, args.repeat = 300, 40, 20, 1
    os.environ.setdefault("OTB_LOGGER_LEVEL", "WARNING")
    result = run(args)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
