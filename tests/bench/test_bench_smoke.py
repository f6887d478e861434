"""Smoke run of the benchmark script (``bench/bench_chain.py --quick``): it must finish and report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_chain.py"


@pytest.mark.slow
def test_bench_quick(tmp_path):
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work")]
    with_otb = shutil.which("otbcli_ImageClassifier") is not None
    if not with_otb:
        command.append("--skip-otb")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"^OA ours: 0\.\d{4}", result.stdout, re.MULTILINE), output[-4000:]
    assert "PEAK RSS RATIO" in result.stdout, output[-4000:]
    if with_otb:
        assert re.search(r"^RATIO OTB/ours: \d+\.\d+x", result.stdout, re.MULTILINE), output[-4000:]
        assert re.search(r"^OA OTB:  0\.\d{4}", result.stdout, re.MULTILINE), output[-4000:]
        assert re.search(r"^OA difference ours - OTB: [+-]\d+\.\d+ points", result.stdout, re.MULTILINE)
    else:
        assert "OTB not found" in result.stdout
        assert "RATIO OTB/ours: not measured" in result.stdout
        assert "OA OTB: not measured" in result.stdout
