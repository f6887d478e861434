"""Smoke run of the class-proportions benchmark (``bench/bench_class_proportions.py --quick``): it must finish,
print its timing table and verdict lines, and write its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_class_proportions.py"


@pytest.mark.slow
def test_bench_class_proportions_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for label in ("ours, pixel centres, 1 thread", "ours, exact coverage, 1 thread"):
        assert re.search(rf"^{label}\s+\d+\.\d{{3}}$", result.stdout, re.MULTILINE), output[-4000:]
    assert re.search(r"^THREADS 1 vs \d+: same proportions: PASS$", result.stdout, re.MULTILINE), output[-4000:]
    data = json.loads(report.read_text())
    assert data["size"] == 400 and data["parcels"] == 100
    assert all(seconds > 0 for seconds in data["ours"].values())
    if data["exactextract"] is None:
        assert "exactextract not installed" in result.stdout
    else:
        assert data["diff_exactextract"]["max"] <= 1e-6 and data["diff_exactextract"]["mismatched"] == 0
        assert re.search(r"^VALUES ours exact vs exactextract \(100 parcels\): .* target <= 1e-6: PASS$",
                         result.stdout, re.MULTILINE), output[-4000:]
    if data["rasterstats"] is None:
        assert "rasterstats not installed" in result.stdout
    else:
        assert not data["rasterstats"]["extrapolated"]  # --quick gives rasterstats every parcel
        assert data["diff_rasterstats"]["max"] <= 1e-6 and data["diff_rasterstats"]["mismatched"] == 0
    if data["exactextract"] or data["rasterstats"]:
        assert re.search(r"^SPEED ours centre \(1 thread\): .* target >= 1x the fastest: (PASS|MISS)$",
                         result.stdout, re.MULTILINE), output[-4000:]
