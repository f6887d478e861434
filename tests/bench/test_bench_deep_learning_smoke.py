"""Smoke run of the deep-learning benchmark (``bench/bench_deep_learning.py --quick``): it must finish and report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_deep_learning.py"
LEARNERS = ("RF", "MLPClassifier", "ANN", "LTAEClassifier", "SimpleSelfAttentionClassifier")
NUMBER = r"\d+(?:\.\d+)?"


@pytest.mark.slow
def test_bench_deep_learning_quick(tmp_path):
    report = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    out = result.stdout

    # throughput: one line per learner, epochs, fit s, epoch s, training samples/s, inference px/s per thread count
    for name in LEARNERS:
        match = re.search(rf"^{name} +(\d+) +({NUMBER}) +(-|{NUMBER}) +(\d+)((?: +\d+)+)$", out, re.MULTILINE)
        assert match, f"no throughput line for {name}\n{out}"
        assert int(match.group(1)) == (1 if name == "RF" else 2)  # --quick: 2 epochs, no early stop
        assert float(match.group(2)) > 0 and int(match.group(4)) > 0
        assert all(int(v) > 0 for v in match.group(5).split())
    # peak memory: 1x, 4x, 10x streamed, then the 10x file held in memory
    rows = re.findall(rf"^ +(\d+) +{NUMBER} +(True|False) +{NUMBER} +\d+ +{NUMBER} MiB +({NUMBER}) MiB", out,
                      re.MULTILINE)
    assert [streamed for _, streamed, _ in rows] == ["True", "True", "True", "False"], out
    assert int(rows[0][0]) < int(rows[1][0]) < int(rows[2][0]) == int(rows[3][0])
    assert all(100 < float(peak) < 4096 for _, _, peak in rows)
    assert re.search(r"^MEMORY VERDICT: peak RSS \d+ / \d+ rows = \d\.\d{3}: (flat \+-10 %: PASS|not flat: MISS)$",
                     out, re.MULTILINE), out
    # accuracy of the three chains, two runs each: OA and kappa with their interval
    for tag in ("RF", "MLP", "LTAE"):
        match = re.search(rf"^{tag} +(0\.\d{{4}}|1\.0000) \+- (\d\.\d{{4}}) +(-?\d\.\d{{4}}) \+- (\d\.\d{{4}}) +"
                          r"(\d\.\d{4}) (\d\.\d{4}) ", out, re.MULTILINE)
        assert match, f"no accuracy line for {tag}\n{out}"
        oa_mean, runs = float(match.group(1)), [float(match.group(5)), float(match.group(6))]
        assert oa_mean == pytest.approx(sum(runs) / 2, abs=1.5e-4)
        assert -1 <= float(match.group(3)) <= 1
    verdict = re.search(rf"^INFERENCE VERDICT: .* LTAE ({NUMBER}) s / RF ({NUMBER}) s = ({NUMBER}) .* -> target <= 1: "
                        r"(PASS|MISS)$", out, re.MULTILINE)
    assert verdict, out
    # the seconds are printed to 0.1 s: the printed ratio lies between the ratios of their rounding bounds
    ltae, rf, printed = (float(value) for value in verdict.group(1, 2, 3))
    low, high = (ltae - 0.05) / (rf + 0.05), (ltae + 0.05) / max(rf - 0.05, 1e-9)
    assert low * 0.99 - 0.01 <= printed <= high * 1.01 + 0.01, (ltae, rf, printed)
    assert verdict.group(4) == ("PASS" if float(verdict.group(3)) <= 1 else "MISS")

    data = json.loads(report.read_text())
    assert [entry["learner"] for entry in data["throughput"]["learners"]] == list(LEARNERS)
    assert all(entry["proba_sums_to_1"] for entry in data["throughput"]["learners"])
    for chain in data["chains"].values():
        assert len(chain["oa"]) == 2 and all(0 <= v <= 1 for v in chain["oa"])
        assert chain["classification_sum_s"] > 0 and chain["classification_tasks"] >= 1
    assert [entry["streamed"] for entry in data["memory"]] == [True, True, True]
    assert data["memory_in_memory"]["streamed"] is False
    assert not list((tmp_path / "work" / "dl_memory").glob("*.parquet"))  # files removed once measured
