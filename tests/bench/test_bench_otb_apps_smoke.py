"""Smoke run of the native-vs-OTB applications benchmark (``bench/bench_otb_apps.py --quick``): it must finish,
print its table and, where OTB is installed, one verdict line per application with the same outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_otb_apps.py"
APPS = ("BandMath", "ExtractROI", "SampleSelection+SampleExtraction")


@pytest.mark.slow
def test_bench_otb_apps_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    data = json.loads(report.read_text())
    assert data["size"] == 300 and data["bands"] == 10
    for name in APPS:
        assert data["steps"][name]["ours_s"] > 0
        assert re.search(rf"^{re.escape(name)} +\d+\.\d\ds", result.stdout, re.MULTILINE), output[-4000:]
    if shutil.which("otbcli_BandMath") is None:
        assert "OTB not installed" in result.stdout and not data["otb"]
        return
    for name in APPS:
        assert data["same_outputs"][name] is True, name
        assert re.search(rf"^SPEED {re.escape(name)}: OTB/ours \d+\.\d\dx   target >= 1x \(native no slower\): "
                         r"(PASS|MISS)   same outputs: yes$", result.stdout, re.MULTILINE), output[-4000:]
    counts = data["steps"]["samples_per_class"]
    assert counts["ours"] == {"1": 20, "2": 20, "3": 20, "4": 20}
    assert all(abs(counts["otb"][label] - 20) <= 1 for label in counts["ours"])
    assert data["steps"]["same_statistics_xml"] is True
