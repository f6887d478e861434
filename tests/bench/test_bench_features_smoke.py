"""Smoke run of the feature benchmark (``bench/bench_features.py --quick``): it must finish and report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_features.py"


@pytest.mark.slow
def test_bench_features_quick(tmp_path):
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for config in ("A S2 ", "B S2 + S1 + user features "):
        rows = [line for line in result.stdout.splitlines() if line.startswith(config)]
        assert len(rows) == 2, output[-4000:]  # one row per tile size (120 and 240 px)
        assert all(re.search(r"\d+x\d+\s+\d+\s+\d+ x \d+\s+\d+\s+\d+\s+\d+\.\d{3}", row) for row in rows), rows
    for config in ("A", "B"):
        assert re.search(rf"^PEAK RSS RATIO {config} \(.*\) 240 px / 120 px: \d+\.\d\d for 4x the pixels .*"
                         r"flat \(<= 1\.25\): (PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
