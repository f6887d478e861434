#!/usr/bin/env python
"""Benchmark: iota2's linear gap-filling against eo-learn's ``LinearInterpolationTask`` on the same cube.

One cube, generated deterministically with numpy (default 1000 x 1000 px, 73 dates every 5 days of 2018,
10 bands of reflectance in [0, 1], 30 % of the observations cloudy, clouds as spatially coherent blobs):

* **ours**: :func:`iota2.core.timeseries.gapfill_linear` (what ``series_on_dates`` calls for every optical
  sensor) onto the acquisition dates, in a fresh child process of this interpreter (one thread);
* **eo-learn**: ``eolearn.features.extra.interpolation.LinearInterpolationTask`` (eo-learn 1.5.7, numba) on an
  ``EOPatch`` holding the same cube and the validity mask, ``resample_range=None`` (every invalid observation
  replaced), in a fresh child process of the eo-learn interpreter (``--eolearn-python``; a separate virtual
  environment, see ``bench/README.md``), with its default ``parallel=False`` (one thread; ``--eolearn-parallel``
  for numba threads on every core). Without that interpreter the eo-learn side is skipped.

Each child builds the cube, resets its peak RSS (``/proc/self/clear_refs``), takes its RSS as the baseline,
runs the gap-filling once on a 32 x 32 crop (numba compilation of both sides, not timed), then once on the
whole cube (timed), and reports ``VmHWM - baseline`` as its extra memory. A strided subset of rows of each
result is saved and compared here: the maximum absolute difference over the values both sides define
(eo-learn leaves NaN before a pixel's first and after its last valid observation; ours holds the nearest
valid value there, and gives 0 to a pixel never seen).

Targets: ours >= 10x faster than eo-learn at <= 1/4 of its extra memory, values within 1e-4.

Usage::

    python bench/bench_gapfilling.py                 # 1000 x 1000 px, 73 dates, 10 bands
    python bench/bench_gapfilling.py --quick         # 200 x 200 px, 20 dates (smoke run)
    python bench/bench_gapfilling.py --eolearn-python /path/to/venv/bin/python --json result.json

The module imports only the standard library and numpy at the top: the eo-learn child runs it in an
interpreter where iota2 is not installed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "_work"
DEFAULT_EOLEARN_PYTHON = DEFAULT_WORK / "venv_eolearn" / "bin" / "python"
FIRST_DAY = datetime.date(2018, 1, 1)
SPEED_TARGET = 10.0
MEMORY_TARGET = 0.25
VALUE_TARGET = 1e-4
WARMUP_PX = 32


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ------------------------------------------------------------------------------------------------ cube
def cube_dates(n_dates: int) -> list[str]:
    """``n_dates`` dates of 2018 (and after, for long series) evenly spaced: every 5 days for 73 dates."""
    step = max(1, 365 // n_dates)
    return [(FIRST_DAY + datetime.timedelta(days=step * index)).strftime("%Y%m%d") for index in range(n_dates)]


def _smooth_field(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """A (size, size) float32 field in [0, 1): uniform noise on a coarse grid of ``cell`` px, bilinearly upsampled
    (two small matrix products: pure numpy, so both interpreters build the same cube)."""
    coarse = size // cell + 2
    low = rng.random((coarse, coarse))
    position = (np.arange(size) + 0.5) / cell
    left = np.floor(position).astype(int)
    frac = position - left
    weights = np.zeros((size, coarse))
    weights[np.arange(size), left] = 1 - frac
    weights[np.arange(size), left + 1] = frac
    return (weights @ low @ weights.T).astype(np.float32)


def make_cube(size: int, n_dates: int, n_bands: int, cloud: float, seed: int, layout: str = "TBHW"):
    """The benchmark cube, filled date by date (no whole-cube temporary).

    Parameters
    ----------
    size, n_dates, n_bands
        Pixels per side, dates, bands.
    cloud
        Fraction of cloudy observations of every date (blobs of about 40 px: a smooth random field
        thresholded at its ``1 - cloud`` quantile).
    seed
        Seed of every random draw: the same arguments give the same cube in any interpreter.
    layout
        ``"TBHW"`` (iota2's (dates, bands, rows, cols)) or ``"THWB"`` (an EOPatch's (time, height, width, bands)).

    Returns
    -------
    tuple
        ``(values, invalid)``: float32 reflectances in [0, 1] (cloudy observations bright, about 0.9), and a
        (dates, rows, cols) bool array, True where the observation is cloudy.
    """
    rng = np.random.default_rng(seed)
    base = np.stack([0.05 + 0.3 * _smooth_field(rng, size, 25) for _ in range(n_bands)])
    amplitude = np.stack([0.15 * _smooth_field(rng, size, 25) for _ in range(n_bands)])
    phase = (2 * np.pi * _smooth_field(rng, size, 50)).astype(np.float32)
    shape = (n_dates, n_bands, size, size) if layout == "TBHW" else (n_dates, size, size, n_bands)
    values = np.empty(shape, dtype=np.float32)
    invalid = np.empty((n_dates, size, size), dtype=bool)
    days = [(datetime.date(int(d[:4]), int(d[4:6]), int(d[6:])) - FIRST_DAY).days for d in cube_dates(n_dates)]
    for index, day in enumerate(days):
        date_rng = np.random.default_rng([seed, index])
        clouds = _smooth_field(date_rng, size, 40)
        invalid[index] = clouds >= np.quantile(clouds, 1 - cloud)
        season = np.sin(np.float32(2 * np.pi * day / 365) + phase)
        noise = date_rng.standard_normal((n_bands, size, size), dtype=np.float32)
        layer = base + amplitude * season + np.float32(0.005) * noise
        layer[:, invalid[index]] = 0.9 + 0.05 * clouds[invalid[index]]
        values[index] = layer if layout == "TBHW" else layer.transpose(1, 2, 0)
    return values, invalid


# ------------------------------------------------------------------------------------------------ memory
def proc_status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def reset_peak() -> int:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; return that RSS (kB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return proc_status_kb("VmRSS")


# ------------------------------------------------------------------------------------------------ children
def child_ours(spec: dict) -> dict:
    from iota2.core.timeseries import gapfill_linear

    dates = cube_dates(spec["dates"])
    values, invalid = make_cube(spec["size"], spec["dates"], spec["bands"], spec["cloud"], spec["seed"], "TBHW")
    crop = np.ascontiguousarray(values[:, :, :WARMUP_PX, :WARMUP_PX]), invalid[:, :WARMUP_PX, :WARMUP_PX].copy()
    start = time.perf_counter()
    gapfill_linear(crop[0], crop[1], dates, dates)
    warmup = time.perf_counter() - start
    del crop
    baseline = reset_peak()
    start = time.perf_counter()
    result = gapfill_linear(values, invalid, dates, dates)
    seconds = time.perf_counter() - start
    peak = proc_status_kb("VmHWM")
    sample = np.ascontiguousarray(result[:, :, ::spec["stride"], :])  # (dates, bands, rows, cols)
    np.save(spec["sample"], sample)
    return {"seconds": seconds, "warmup_s": warmup, "baseline_kb": baseline, "peak_kb": peak,
            "extra_kb": peak - baseline, "result_bytes": int(result.nbytes), "result_dtype": str(result.dtype),
            "input_bytes": int(values.nbytes)}


def child_eolearn(spec: dict) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import eolearn
    from eolearn.core import EOPatch, FeatureType
    from eolearn.features.extra.interpolation import LinearInterpolationTask
    from sentinelhub import CRS, BBox

    dates = cube_dates(spec["dates"])
    stamps = [datetime.datetime.strptime(d, "%Y%m%d") for d in dates]
    size = spec["size"]
    bbox = BBox((300000, 4890000, 300000 + 10 * size, 4890000 + 10 * size), CRS.UTM_31N)

    def patch(values, invalid):
        return EOPatch(bbox=bbox, timestamps=stamps, data={"BANDS": values}, mask={"VALID": ~invalid[..., None]})

    def task():
        return LinearInterpolationTask((FeatureType.DATA, "BANDS"), mask_feature=(FeatureType.MASK, "VALID"),
                                       parallel=spec["parallel"])

    values, invalid = make_cube(size, spec["dates"], spec["bands"], spec["cloud"], spec["seed"], "THWB")
    crop = patch(np.ascontiguousarray(values[:, :WARMUP_PX, :WARMUP_PX]), invalid[:, :WARMUP_PX, :WARMUP_PX])
    start = time.perf_counter()
    task().execute(crop)
    warmup = time.perf_counter() - start
    del crop
    eopatch = patch(values, invalid)
    del values, invalid  # the EOPatch holds the cube (its mask feature is the negation, made above)
    baseline = reset_peak()
    start = time.perf_counter()
    eopatch = task().execute(eopatch)
    seconds = time.perf_counter() - start
    peak = proc_status_kb("VmHWM")
    result = eopatch.data["BANDS"]  # (time, height, width, bands)
    sample = np.ascontiguousarray(result[:, ::spec["stride"], :, :].transpose(0, 3, 1, 2))
    np.save(spec["sample"], sample)
    return {"seconds": seconds, "warmup_s": warmup, "baseline_kb": baseline, "peak_kb": peak,
            "extra_kb": peak - baseline, "result_bytes": int(result.nbytes), "result_dtype": str(result.dtype),
            "version": eolearn.__version__, "numba_threads": _numba_threads()}


def _numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return int(numba.config.NUMBA_NUM_THREADS)


def run_child(python: str, mode: str, spec: dict) -> dict:
    result = subprocess.run([python, __file__, "--child", mode, json.dumps(spec)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"child {mode} failed (exit {result.returncode}) with {python}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def eolearn_available(python: str) -> str | None:
    """Why the eo-learn side cannot run with ``python`` (None when it can)."""
    if not Path(python).exists():
        return f"no eo-learn interpreter at {python}"
    probe = subprocess.run([python, "-c", "import eolearn.features.extra.interpolation, numba, sentinelhub"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{python} cannot import eo-learn's interpolation ({probe.stderr.strip().splitlines()[-1]})"
    return None


# ------------------------------------------------------------------------------------------------ compare
def compare(ours_path: Path, theirs_path: Path) -> dict:
    """Differences between the two saved samples, over the values both define."""
    ours = np.load(ours_path).astype(np.float64)
    theirs = np.load(theirs_path).astype(np.float64)
    if ours.shape != theirs.shape:
        raise SystemExit(f"samples differ in shape: ours {ours.shape}, eo-learn {theirs.shape}")
    defined = np.isfinite(theirs)
    diff = np.abs(ours - theirs)[defined]
    return {"values": int(ours.size), "compared": int(defined.sum()), "undefined_eolearn": int((~defined).sum()),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0}


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="cube width and height in pixels")
    parser.add_argument("--dates", type=int, default=73, help="number of dates (evenly spaced over 2018)")
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--cloud", type=float, default=0.30, help="fraction of cloudy observations per date")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stride", type=int, default=None, help="rows kept for the value check: every STRIDE-th "
                                                                  "(default: about 50 rows)")
    parser.add_argument("--eolearn-python", default=os.environ.get("IOTA2_BENCH_EOLEARN_PYTHON",
                                                                   str(DEFAULT_EOLEARN_PYTHON)),
                        help="interpreter with eo-learn 1.5.7 installed (default: bench/_work/venv_eolearn)")
    parser.add_argument("--eolearn-parallel", action="store_true",
                        help="eo-learn with parallel=True (numba threads on every core; default: its default, "
                             "parallel=False, one core like ours)")
    parser.add_argument("--skip-eolearn", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200 x 200 px, 20 dates (smoke run)")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="work folder (result samples)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        if args.size == parser.get_default("size"):
            args.size = 200
        if args.dates == parser.get_default("dates"):
            args.dates = 20
    if args.size < WARMUP_PX or args.dates < 2 or args.bands < 1 or not 0 <= args.cloud < 1:
        parser.error(f"--size must be >= {WARMUP_PX}, --dates >= 2, --bands >= 1 and 0 <= --cloud < 1")
    if args.stride is None:
        args.stride = max(1, args.size // 50)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, spec = args.child
        print(json.dumps({"ours": child_ours, "eolearn": child_eolearn}[mode](json.loads(spec))))
        return 0
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bench_start = time.perf_counter()
    tag = f"gapfill_{args.size}px_{args.dates}d_{args.bands}b_seed{args.seed}"
    spec = {"size": args.size, "dates": args.dates, "bands": args.bands, "cloud": args.cloud, "seed": args.seed,
            "stride": args.stride, "parallel": args.eolearn_parallel}
    load = os.getloadavg()[0]
    log(f"cube {args.size}x{args.size} px, {args.dates} dates, {args.bands} bands, {args.cloud:.0%} clouds; "
        f"load average {load:.2f}")
    ours = run_child(sys.executable, "ours", dict(spec, sample=str(work / f"{tag}_ours.npy")))
    log(f"ours: {ours['seconds']:.2f} s, extra {ours['extra_kb'] / 2**20:.2f} GiB")
    theirs = values = None
    skipped = "--skip-eolearn" if args.skip_eolearn else eolearn_available(args.eolearn_python)
    if skipped:
        log(f"eo-learn skipped: {skipped}")
    else:
        theirs = run_child(args.eolearn_python, "eolearn", dict(spec, sample=str(work / f"{tag}_eolearn.npy")))
        log(f"eo-learn: {theirs['seconds']:.2f} s, extra {theirs['extra_kb'] / 2**20:.2f} GiB")
        values = compare(work / f"{tag}_ours.npy", work / f"{tag}_eolearn.npy")
    print_report(args, ours, theirs, values, skipped, load)
    print(f"\nbenchmark wall time: {time.perf_counter() - bench_start:.1f} s; load average now "
          f"{os.getloadavg()[0]:.2f}; date {datetime.date.today().isoformat()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "child"},
                                               "ours": ours, "eolearn": theirs, "values": values,
                                               "eolearn_skipped": skipped}, indent=1))
    return 0


def print_report(args, ours: dict, theirs: dict | None, values: dict | None, skipped: str | None,
                 load: float) -> None:
    gib = 2**20
    print()
    print(f"=== gap-filling: {args.size}x{args.size} px, {args.dates} dates, {args.bands} bands, {args.cloud:.0%} "
          f"clouds (blobs), {os.cpu_count()} cores, load average {load:.2f} at start ===")
    print(f"{'side':<44} {'time':>8} {'extra memory':>13} {'result':>16}")
    print(f"{'ours (iota2.core.timeseries.gapfill_linear)':<44} {ours['seconds']:7.2f}s "
          f"{ours['extra_kb'] / gib:9.2f} GiB {ours['result_bytes'] / 2**30:6.2f} GiB {ours['result_dtype']}")
    if theirs:
        name = f"eo-learn {theirs['version']} LinearInterpolationTask" + (" (parallel)" if args.eolearn_parallel
                                                                         else "")
        print(f"{name:<44} {theirs['seconds']:7.2f}s {theirs['extra_kb'] / gib:9.2f} GiB "
              f"{theirs['result_bytes'] / 2**30:6.2f} GiB {theirs['result_dtype']}")
    print(f"(extra memory: VmHWM - RSS after building the cube, in a fresh child each; numba compiled on a "
          f"{WARMUP_PX}x{WARMUP_PX} crop first, not timed: ours {ours['warmup_s']:.2f} s"
          + (f", eo-learn {theirs['warmup_s']:.2f} s)" if theirs else ")"))
    print()
    if not theirs:
        print(f"SPEED RATIO eo-learn/ours: not measured ({skipped})")
        print(f"MEMORY RATIO ours/eo-learn: not measured ({skipped})")
        print(f"VALUES max |ours - eo-learn|: not measured ({skipped})")
        return
    speed = theirs["seconds"] / ours["seconds"]
    memory = ours["extra_kb"] / theirs["extra_kb"] if theirs["extra_kb"] > 0 else float("inf")
    print(f"SPEED RATIO eo-learn/ours: {speed:.1f}x   target >= {SPEED_TARGET:.0f}x: {verdict(speed >= SPEED_TARGET)}")
    print(f"MEMORY RATIO ours/eo-learn (extra): {memory:.3f}   target <= {MEMORY_TARGET}: "
          f"{verdict(memory <= MEMORY_TARGET)}")
    print(f"VALUES max |ours - eo-learn|: {values['max_abs_diff']:.3g} (mean {values['mean_abs_diff']:.3g}) over "
          f"{values['compared']} values both define, every {args.stride}th row   target <= {VALUE_TARGET:g}: "
          f"{verdict(values['max_abs_diff'] <= VALUE_TARGET)}")
    print(f"  not compared: {values['undefined_eolearn']} values eo-learn leaves NaN (before a pixel's first or "
          f"after its last valid observation; ours holds the nearest valid value there)")
    both = speed >= SPEED_TARGET and memory <= MEMORY_TARGET and values["max_abs_diff"] <= VALUE_TARGET
    print(f"VERDICT gap-filling (>= {SPEED_TARGET:.0f}x faster, <= 1/4 of the extra memory, values within "
          f"{VALUE_TARGET:g}): {verdict(both)}")


if __name__ == "__main__":
    sys.exit(main())
