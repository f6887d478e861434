"""Smoke run of the gap-filling benchmark (``bench/bench_gapfilling.py --quick``): it must finish and report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_gapfilling.py"


@pytest.mark.slow
def test_bench_gapfilling_quick(tmp_path):
    """Ours always runs; eo-learn runs when its interpreter is installed (bench/README.md), else a clear skip line."""
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"^ours \(iota2\.core\.timeseries\.gapfill_linear\)\s+\d+\.\d\ds\s+\d+\.\d\d GiB .* float32$",
                     result.stdout, re.MULTILINE), output[-4000:]
    data = json.loads(report.read_text())
    ours = data["ours"]
    assert 0 < ours["seconds"] < 60
    # the result is 20 dates x 10 bands x 200 x 200 float32; the extra memory holds it and little more
    assert ours["result_bytes"] == 20 * 10 * 200 * 200 * 4
    assert ours["result_bytes"] * 0.9 <= ours["extra_kb"] * 1024 <= ours["result_bytes"] * 2 + 64 * 2**20
    if data["eolearn"] is None:
        assert re.search(r"^SPEED RATIO eo-learn/ours: not measured \(.+\)$", result.stdout, re.MULTILINE), output
        assert "eo-learn skipped: " in result.stdout
        return
    assert re.search(r"^SPEED RATIO eo-learn/ours: \d+\.\dx   target >= 10x: (PASS|MISS)$", result.stdout,
                     re.MULTILINE), output[-4000:]
    assert re.search(r"^MEMORY RATIO ours/eo-learn \(extra\): \d\.\d{3}   target <= 0\.25: (PASS|MISS)$",
                     result.stdout, re.MULTILINE), output[-4000:]
    assert re.search(r"^VERDICT gap-filling .*: (PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
    values = data["values"]
    assert values["compared"] > 0.9 * values["values"]  # eo-learn leaves NaN only at the ends of the series
    assert values["max_abs_diff"] <= 1e-4  # same linear interpolation: float32 against float64 rounding
