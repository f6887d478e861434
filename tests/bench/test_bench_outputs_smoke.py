"""Smoke run of the outputs benchmark (``bench/bench_outputs.py --quick``): it must finish and report sane figures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_outputs.py"


@pytest.mark.slow
def test_bench_outputs_quick(tmp_path):
    result_file = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--sizes", "300,600", "--work", str(tmp_path / "work"),
               "--json", str(result_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    rows = re.findall(r"^\s+(300|600)x\1\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+"
                      r"(-?\d+\.\d\d)\s+(\d+\.\d)\s+(-?\d+\.\d\d)%\s+(\d+\.\d\d)%\s+(\d+) MiB\s+(\d+) MiB$",
                      result.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["300", "600"], output[-4000:]
    for size, pixels, plain, full, quicklooks, report, added, classification, _, _, peak_plain, peak_full in rows:
        assert int(pixels) == int(size) ** 2 and 0 < float(quicklooks) < float(full), rows
        assert 0 < float(report) < 120 and float(added) > float(full) - float(plain), rows
        assert 0 < float(plain) and float(classification) > 0 and 30 < int(peak_plain) <= 4096, rows
        assert 30 < int(peak_full) <= 4096, rows
    assert re.search(r"^SHARE OF CLASSIFICATION at 600 px: added -?\d+\.\d\d % \(report included\), whole mosaic step "
                     r"\+ report \d+\.\d\d %   "
                     r"target < 5 %: (PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
    assert re.search(r"^PEAK MEMORY 300 -> 600 px: \d\.\d\dx for 4x the pixels   target flat \(<= 1\.25x\): "
                     r"(PASS|MISS)$", result.stdout, re.MULTILINE), output[-4000:]
    saved = json.loads(result_file.read_text())
    assert [row["size"] for row in saved["rows"]] == [300, 600] and saved["share"] is not None
    final = tmp_path / "work" / "600px" / "final"
    assert (final / "quicklooks" / "Classif_Seed_0.png").stat().st_size > 0
    assert (final / "Classif_Seed_0.qml").exists()
    assert (tmp_path / "work" / "report_run" / "output" / "final" / "report.html").stat().st_size > 10000
