"""Smoke run of the per-object statistics benchmark (``bench/bench_zonal_stats.py --quick``): it must finish,
report its table and verdict lines, and write its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_zonal_stats.py"


@pytest.mark.slow
def test_bench_zonal_stats_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"^\s+\d+\s+\d+\.\d\d\s", line)]
    assert len(rows) == 2, output[-4000:]  # one row per segment count
    assert re.search(r"^PEAK RSS RATIO 300 px / 150 px: \d+\.\d\d for 4x the pixels   flat \(<= 1\.25\): "
                     r"(PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
    data = json.loads(report.read_text())
    assert data["size"] == 300 and data["bands"] == 6 and data["stats"] == ["mean", "std"]
    for run in data["runs"]:
        assert run["ours"]["segments"] > 0.9 * run["segments_asked"]
        assert run["ours"]["seconds"] > 0 and run["ours"]["peak_kb"] > 0
    assert [row["size"] for row in data["memory"]] == [150, 300]
    if data["exactextract"] is None:
        assert "exactextract not installed" in result.stdout
        assert re.search(r"^SPEED RATIO exactextract/ours \d+ segments: not measured", result.stdout, re.MULTILINE)
        return
    for run in data["runs"]:
        # the same segments, and the same mean and std (the polygons follow pixel edges: coverage 0 or 1)
        assert run["values"]["common"] == run["ours"]["segments"] == run["exactextract"]["segments"]
        assert run["values"]["max_rel_diff"] <= 1e-4
        assert run["polygons"]["polygons"] == run["ours"]["segments"]
    assert re.search(r"^SPEED RATIO exactextract/ours \d+ segments: \d+\.\dx \(polygonisation .*\)   target >= 1x: "
                     r"(PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
    assert re.search(r"^VALUES \d+ segments: max relative difference .* target <= 1e-4: PASS$", result.stdout,
                     re.MULTILINE), output[-4000:]
