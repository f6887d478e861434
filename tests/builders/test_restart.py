"""Faults: a run killed with SIGKILL during classification and restarted gives the products of an
uninterrupted run and does not redo finished tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from iota2.cli import main
from iota2.core.graph import STATUS_FILE, TaskStatus

pytestmark = pytest.mark.slow


def command(config, *extra):
    return [sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "localCluster",
            "-nb_parallel_tasks", "2", "-no_progress", *extra]


def test_sigkill_during_classification_then_restart(tmp_path, make_config):
    chunks = {"python_data_managing": {"chunk_size_mode": "split_number", "number_of_chunks": 24}}
    reference_config = make_config("reference.yaml", output=tmp_path / "reference", **chunks)
    assert main(["-config", str(reference_config), "-scheduler_type", "debug", "-no_progress"]) == 0

    config = make_config("killed.yaml", output=tmp_path / "killed", **chunks)
    out = tmp_path / "killed"
    process = subprocess.Popen(command(config), start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    chunk_folder = out / "classif" / "chunks"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if chunk_folder.exists() and len(list(chunk_folder.glob("T31TCJ_seed_0_chunk_*.tif"))) >= 3:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    done_before = {name for name, state in TaskStatus(out / STATUS_FILE).states.items() if state == "done"}
    assert "learning_region_1_seed_0" in done_before
    assert not (out / "final" / "Classif_Seed_0.tif").exists()
    learning_log = out / "logs" / "learning" / "learning_region_1_seed_0.log"
    learning_log_before = learning_log.read_text()
    model_mtime = (out / "model" / "model_1_seed_0.skops").stat().st_mtime_ns

    result = subprocess.run(command(config, "-restart"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "PixelsValidity.tif"):
        with rasterio.open(out / "final" / name) as a, rasterio.open(tmp_path / "reference" / "final" / name) as b:
            assert np.array_equal(a.read(), b.read()), name
    assert (out / "final" / "RESULTS.txt").read_text() == \
        (tmp_path / "reference" / "final" / "RESULTS.txt").read_text()
    # finished tasks were not run again
    assert learning_log.read_text() == learning_log_before
    assert (out / "model" / "model_1_seed_0.skops").stat().st_mtime_ns == model_mtime
    for name in done_before:
        assert name.startswith(("create", "validity", "ground", "truth", "selection", "class", "extraction",
                                "merge_samples", "learning", "classification"))
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"
