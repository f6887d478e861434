"""Streaming learning samples (iota2.plugins.dl_samples) against loading them whole with pandas.

For samples files of 1x, 4x and 10x a base number of rows (random values, the chain's columns; SQLite in the chain's
table layout, Parquet with row groups of ``PARQUET_ROW_GROUP_ROWS``), a fresh process reads every row either in
batches (``SamplesFile.iter_batches``) or whole as the learning step does (pyogrio / pandas, then a float32 array). It
prints the peak RSS (``VmHWM``), its increase over the process after imports, and rows read per second, then a
verdict: streaming is flat when its peak RSS at 10x is within 10 % of its peak at 1x.

    python bench/bench_dl_streaming.py             # 20 000 rows x 200 features base (about 2 min here)
    python bench/bench_dl_streaming.py --quick     # 2 000 rows x 50 features base: a few seconds (smoke run)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from iota2.plugins.dl_samples import write_random_samples  # noqa: E402

CHILD = """
import sys, time
import numpy as np, pandas as pd, pyarrow.parquet, pyogrio  # imported before the baseline
from iota2.plugins.dl_samples import SamplesFile

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])

path, mode, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
before = hwm()
start = time.perf_counter()
if mode == "stream":
    samples = SamplesFile(path, "code")
    rows = 0
    for batch in samples.iter_batches(None, batch_size=batch_size):
        rows += len(batch.rows)
else:
    table = pd.read_parquet(path) if path.endswith(".parquet") else pyogrio.read_dataframe(path, read_geometry=False)
    names = [c for c in table.columns if c.lower() not in ("code", "region", "originfid", "tile_o", "x", "y",
                                                           "geometry")]
    rows = len(table[names].to_numpy(np.float32))
seconds = time.perf_counter() - start
print(rows, seconds, before, hwm())
"""


def measure(path: Path, mode: str, batch_size: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(batch_size)], capture_output=True,
                            text=True, timeout=1800)
    if result.returncode:
        raise RuntimeError(f"{mode} {path}: {result.stderr[-2000:]}")
    rows, seconds, before, peak = result.stdout.split()
    return {"rows": int(rows), "seconds": float(seconds), "rss_before_kib": int(before), "peak_kib": int(peak),
            "extra_kib": int(peak) - int(before), "rows_per_s": int(rows) / max(float(seconds), 1e-9)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files: a smoke run")
    parser.add_argument("--rows", type=int, help="base rows (default 20000; 2000 with --quick)")
    parser.add_argument("--features", type=int, help="features (default 200; 50 with --quick)")
    parser.add_argument("--factors", default="1,4,10", help="file sizes as multiples of the base (default 1,4,10)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=ROOT / "_work" / "dl_streaming")
    parser.add_argument("--json", type=Path, help="write the measures to this file")
    args = parser.parse_args(argv)
    base = args.rows or (2000 if args.quick else 20_000)
    n_features = args.features or (50 if args.quick else 200)
    factors = [int(f) for f in args.factors.split(",")]
    results = []
    for factor in factors:
        paths = write_random_samples(args.work, base * factor, n_features)
        for samples_format, path in paths.items():
            for mode in ("stream", "whole"):
                results.append({"format": samples_format, "factor": factor, "mode": mode,
                                **measure(path, mode, args.batch_size)})
            path.unlink()
    print(f"samples files of {base} x {', '.join(map(str, factors))} rows, {n_features} features, batch "
          f"{args.batch_size}")
    print(f"{'format':8} {'rows':>9} {'mode':7} {'rows/s':>10} {'peak RSS':>10} {'increase':>10}")
    for r in results:
        print(f"{r['format']:8} {r['rows']:>9} {r['mode']:7} {r['rows_per_s']:>10.0f} {r['peak_kib'] / 1024:>7.1f} MiB "
              f"{r['extra_kib'] / 1024:>6.1f} MiB")
    verdicts = {}
    for samples_format in ("sqlite", "parquet"):
        peaks = {r["factor"]: r["peak_kib"] for r in results if r["format"] == samples_format and r["mode"] == "stream"}
        whole = {r["factor"]: r["peak_kib"] for r in results if r["format"] == samples_format and r["mode"] == "whole"}
        ratio = peaks[max(factors)] / peaks[min(factors)]
        flat = abs(ratio - 1) <= 0.10
        verdicts[samples_format] = {"stream_peak_ratio": ratio, "whole_peak_ratio": whole[max(factors)] /
                                    whole[min(factors)], "flat": flat}
        print(f"VERDICT {samples_format}: streaming peak RSS {max(factors)}x/{min(factors)}x = {ratio:.3f} "
              f"(whole load {verdicts[samples_format]['whole_peak_ratio']:.3f}): "
              f"{'flat +-10 %: PASS' if flat else 'not flat: MISS'}")
    if args.json:
        args.json.write_text(json.dumps({"base_rows": base, "features": n_features, "results": results,
                                         "verdicts": verdicts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
