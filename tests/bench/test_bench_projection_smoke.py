"""Smoke run of the full-tile projection benchmark (``bench/bench_tile_projection.py --quick``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_tile_projection.py"


@pytest.mark.slow
def test_bench_tile_projection_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for pattern in (r"^classification\s+\d+\.\d{3} s\s+\d+\.\d{3} s\s+[+-]\d+\.\d%",
                    r"^PER-PIXEL TIME FLAT from 150 to 300 px .*: (PASS|MISS)$",
                    r"^PROJECTION 10980x10980 px, 6 dates, from 300 px \(x1339\.6\): \d+\.\d min .* (PASS|MISS)$",
                    r"^THROUGHPUT \d+ px/s per core",
                    r"^PEAK RSS \d+\.\d\d GB .*target < 4 GB: (PASS|MISS)$",
                    r"rasterio\.open calls: \d+ \(\d+\.\d{3} s\)$"):
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, output[-4000:])
    data = json.loads(report.read_text())
    runs = data["runs"]
    assert [run["size"] for run in runs] == [150, 300]
    for run in runs:
        assert 0 < run["tasks_span_s"] < run["wall_s"] < 300
        assert 100 * 2**20 < run["peak_bytes"] < 8 * 2**30  # a driver and two workers
        assert run["steps"]["classification"]["tasks"] >= 1
    assert data["projection"]["wall_s"] > runs[-1]["wall_s"]
    profile = data["profile"]
    # the input handles opened by the first chunk are reused: the profiled chunk opens almost none
    assert profile["rasterio_open"]["calls"] < 6 * 13
    assert profile["top"] and all(row["own_s"] >= 0 for row in profile["top"])
