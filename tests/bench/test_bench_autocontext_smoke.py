"""Smoke run of the autocontext benchmark (``bench/bench_autocontext.py --quick``): it must finish and report sane
figures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_autocontext.py"


@pytest.mark.slow
def test_bench_autocontext_quick(tmp_path):
    result_file = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--slic-size", "200", "--size", "100", "--chunks", "2",
               "--iterations", "2", "--work", str(tmp_path / "work"), "--json", str(result_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    stdout = result.stdout
    slic = re.search(r"^time (\d+\.\d\d) s   superpixels (\d+) ", stdout, re.MULTILINE)
    assert slic and float(slic.group(1)) > 0 and 200 <= int(slic.group(2)) <= 800, output[-4000:]
    rows = re.findall(r"^autocontext iteration (\d)\s+(\d+\.\d\d)s\s+(\d+\.\d\d)s\s+(\d+\.\d\d)s\s+(\d+\.\d\d)x$",
                      stdout, re.MULTILINE)
    assert [int(row[0]) for row in rows] == [1, 2], output[-4000:]
    assert all(float(row[1]) > 0 and float(row[2]) > 0 and float(row[4]) > 0 for row in rows), rows
    assert re.search(r"^pixel classification\s+\d+\.\d\ds\s+\d+\.\d\ds\s+\d+\.\d\ds\s+1\.00x$", stdout, re.MULTILINE)
    accuracy = re.search(r"^ACCURACY pixel map OA (\d\.\d+) kappa -?\d\.\d+; autocontext map OA (\d\.\d+) ", stdout,
                         re.MULTILINE)
    assert accuracy and float(accuracy.group(2)) > float(accuracy.group(1)), output[-4000:]

    saved = json.loads(result_file.read_text())
    assert saved["slic"]["size"] == 200 and saved["slic"]["seconds"] > 0
    assert [entry["iteration"] for entry in saved["chains"]["autocontext"]["iterations"]] == [1, 2]
    assert saved["chains"]["pixel"]["classification_s"] > 0
