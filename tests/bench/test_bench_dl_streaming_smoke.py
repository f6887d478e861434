"""Smoke run of the streaming-samples benchmark (``bench/bench_dl_streaming.py --quick``): it must finish and report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_dl_streaming.py"


@pytest.mark.slow
def test_bench_dl_streaming_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert len(re.findall(r"^(sqlite|parquet) +\d+ (stream|whole) +\d+ +\d+\.\d MiB +-?\d+\.\d MiB$", result.stdout,
                          re.MULTILINE)) == 12, output
    for samples_format in ("sqlite", "parquet"):
        assert re.search(rf"^VERDICT {samples_format}: streaming peak RSS 10x/1x = \d\.\d{{3}} "
                         r"\(whole load \d\.\d{3}\): (flat \+-10 %: PASS|not flat: MISS)$",
                         result.stdout, re.MULTILINE), output
    data = json.loads(report.read_text())
    assert {(r["format"], r["factor"], r["mode"]) for r in data["results"]} == {
        (f, n, m) for f in ("sqlite", "parquet") for n in (1, 4, 10) for m in ("stream", "whole")}
    assert all(r["rows"] == 2000 * r["factor"] and r["rows_per_s"] > 0 for r in data["results"])
    assert not list((tmp_path / "work").glob("samples_*"))  # files removed once measured
