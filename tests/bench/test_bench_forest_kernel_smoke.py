"""Smoke run of the forest-kernel benchmark (``bench/bench_forest_kernel.py --quick``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_forest_kernel.py"


@pytest.mark.slow
def test_bench_forest_kernel_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for count in (52, 78):  # 4 dates and all 6 dates, 13 features each
        assert re.search(rf"^\s+{count}(\s+\d+\.\d\d){{3}}\s+\d+\.\d\dx\s+\d+\.\d\dx .* yes \(sklearn ",
                         result.stdout, re.MULTILINE), output[-4000:]
    data = json.loads(report.read_text())
    assert data["pixels"] == 5000 and data["trees"] == 10
    for case in data["cases"].values():
        assert case["identical"] and case["max_diff_sklearn"] < 1e-12
        assert all(0 < value < 1000 for value in case["us_per_px"].values())
        shape = case["shape"]
        assert 0 < shape["leaf_depth"] < shape["levels_walked_16"] <= shape["max_depth"]
