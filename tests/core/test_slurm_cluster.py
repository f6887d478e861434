"""``-scheduler_type Slurm`` on a real one-node Slurm cluster (``bash .ci/slurm/start.sh`` starts one; CI does):
the demo chain through the real ``sbatch``, and a worker job cancelled mid-run with ``scancel`` then the run
resumed with ``-restart``. Skipped where no Slurm controller answers (tests/test_cli.py keeps a stand-in test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

FINAL_PRODUCTS = ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif",
                  "PixelsValidity.tif", "RESULTS.txt", "Classif_Seed_1.tif")


def _slurm_state() -> str | None:
    """States of the cluster's nodes as ``sinfo`` reports them (``None``: no sinfo, or no answer)."""
    if shutil.which("sinfo") is None:
        return None
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return answer.stdout.strip() if answer.returncode == 0 and answer.stdout.strip() else None


SLURM_STATE = _slurm_state()
SLURM_UP = SLURM_STATE is not None and any(state.startswith(("idle", "mixed")) for state in SLURM_STATE.split())
NOT_UP = (f"real Slurm not running (sinfo: {SLURM_STATE or 'absent or no answer'}); start a one-node cluster "
          "with `bash .ci/slurm/start.sh` (root, Debian)")
REQUIRED = os.environ.get("IOTA2_REQUIRE_SLURM") == "1"  # set by .ci/run: a cluster that stopped fails CI
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not SLURM_UP and not REQUIRED, reason=NOT_UP)]


@pytest.fixture(scope="module", autouse=True)
def _slurm_required():
    """Under ``IOTA2_REQUIRE_SLURM=1`` (CI), a cluster that does not answer fails the tests instead of skipping."""
    if not SLURM_UP:
        pytest.fail(f"IOTA2_REQUIRE_SLURM=1 but {NOT_UP}")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo data set (120 px tiles) and its configuration, generated once for the module."""
    from iota2.datagen.sentinel2 import generate_demo

    return generate_demo(tmp_path_factory.mktemp("slurm_demo"), size=120)


def _config(demo_data: dict, work: Path) -> Path:
    """The demo configuration with its outputs in ``work/output`` and small jobs that end by themselves."""
    config = yaml.safe_load(Path(demo_data["config"]).read_text())
    config["chain"]["output_path"] = str(work / "output")
    config["slurm"] = {"cores": 1, "memory": "2GB", "walltime": "00:10:00"}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "Slurm",
            "-nb_parallel_tasks", "2", "-no_progress", *extra]


def _jobs_of(work: Path) -> dict[str, str]:
    """``{job id: state}`` of the Slurm jobs submitted from ``work`` (their working directory)."""
    answer = subprocess.run(["squeue", "-h", "-o", "%i %T %Z"], capture_output=True, text=True, timeout=30)
    jobs = {}
    for line in answer.stdout.splitlines():
        job, state, workdir = line.split(maxsplit=2)
        if Path(workdir) == work:
            jobs[job] = state
    return jobs


def _cancel_jobs_of(work: Path) -> None:
    jobs = _jobs_of(work)
    if jobs:
        subprocess.run(["scancel", *jobs], timeout=30, check=False)


def _done_tasks(output: Path) -> list[str]:
    """Tasks recorded ``done`` in the status journal (a line cut by a kill is ignored)."""
    status = output / "IOTA2_tasks_status.txt"
    if not status.exists():
        return []
    lines = status.read_text().split("\n")[:-1]  # the last piece has no newline yet: not a finished record
    return [line.split()[1] for line in lines if line.startswith("done ") and len(line.split()) > 1]


def _starts(output: Path, task: str) -> int:
    """How many times a task started, from its log ``logs/<step>/<task>.log``."""
    logs = list((output / "logs").glob(f"*/{task}.log"))
    assert len(logs) == 1, f"no single log for task {task}: {logs}"
    return sum(" iota2.task: start " in line for line in logs[0].read_text().splitlines())


def _running_tasks(output: Path) -> list[str]:
    """Tasks started and not ended yet, from their logs (a ``start`` line without ``done in`` / ``failed``)."""
    running = []
    for log in (output / "logs").glob("*/*.log"):
        lines = log.read_text().splitlines()
        ends = sum(" iota2.task: done in " in line or " iota2.task: failed:" in line for line in lines)
        if sum(" iota2.task: start " in line for line in lines) > ends:
            running.append(log.stem)
    return running


def _worker_outputs(work: Path) -> dict[str, str]:
    """``{job id: text}`` of the jobs' output files (``slurm-<id>.out``, in the submission folder)."""
    return {path.stem.split("-", 1)[1]: path.read_text() for path in work.glob("slurm-*.out")}


def test_demo_chain_through_real_sbatch(demo_data, tmp_path):
    work = tmp_path
    config = _config(demo_data, work)
    start = time.perf_counter()
    try:
        result = subprocess.run(_command(config), cwd=work, capture_output=True, text=True, timeout=300)
    finally:
        _cancel_jobs_of(work)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    final = work / "output" / "final"
    for name in FINAL_PRODUCTS:
        assert (final / name).stat().st_size > 0, name
    # the workers were Slurm jobs: sbatch wrote their output files, each a dask worker that joined the run
    workers = _worker_outputs(work)
    assert len(workers) == 2, sorted(workers)
    for job, text in workers.items():
        assert "Registered to:" in text and "SLURMCluster" in text, f"job {job}:\n{text[-2000:]}"
    # every task ran once, on those workers
    done = _done_tasks(work / "output")
    assert len(done) == len(set(done)) > 20
    assert all(_starts(work / "output", task) == 1 for task in done)
    print(f"demo chain on Slurm: {len(done)} tasks, jobs {sorted(workers)}, {elapsed:.1f} s")


def test_worker_cancelled_mid_run_then_restart(demo_data, tmp_path):
    work = tmp_path
    config = _config(demo_data, work)
    output = work / "output"
    start = time.perf_counter()
    first_log = work / "first_run.log"
    with first_log.open("w") as log:
        driver = subprocess.Popen(_command(config), cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        # mid-run: some tasks done and both worker jobs busy with a task each, so the cancelled one loses a task
        deadline = time.monotonic() + 200
        while True:
            assert driver.poll() is None, f"the run ended before the cancel:\n{first_log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no progress to cancel in:\n{first_log.read_text()[-3000:]}"
            jobs = [job for job, state in _jobs_of(work).items() if state == "RUNNING"]
            if len(jobs) == 2 and len(_done_tasks(output)) >= 8 and len(_running_tasks(output)) == 2:
                break
            time.sleep(0.1)
        done_before, running_at_cancel = _done_tasks(output), sorted(_running_tasks(output))
        cancelled = jobs[0]
        subprocess.run(["scancel", cancelled], timeout=30, check=True)
        time.sleep(1)  # a task the cancelled worker took in the instant before the signal shows as running too
        lost = set(running_at_cancel) | set(_running_tasks(output))
        try:
            first_code = driver.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run hung after worker job {cancelled} was cancelled:\n{first_log.read_text()[-3000:]}")
        assert "CANCELLED" in _worker_outputs(work).get(cancelled, ""), f"job {cancelled} was not cancelled"
        done_after = _done_tasks(output)
        restart = subprocess.run(_command(config, "-restart"), cwd=work, capture_output=True, text=True, timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        _cancel_jobs_of(work)
    elapsed = time.perf_counter() - start
    assert restart.returncode == 0, restart.stderr[-3000:]
    for name in FINAL_PRODUCTS:
        assert (output / "final" / name).stat().st_size > 0, name
    # the tasks finished before the cancel ran once: neither the lost worker nor the restart ran them again
    assert done_before and all(_starts(output, task) == 1 for task in done_before)
    assert set(_done_tasks(output)) >= set(done_after) | set(done_before)
    # only a task of the lost worker ran twice (dask gave it to the other worker, or the restart ran it)
    rerun = sorted(task for task in _done_tasks(output) if _starts(output, task) > 1)
    assert set(rerun) <= lost, (rerun, lost)
    outcome = "finished" if first_code == 0 else f"failed (exit {first_code})"
    print(f"worker job {cancelled} cancelled with {len(done_before)} tasks done and {running_at_cancel} running; "
          f"the run then {outcome} with {len(done_after)} tasks done; -restart ran "
          f"{len(set(_done_tasks(output)) - set(done_after))} task(s); started twice: {rerun}; {elapsed:.1f} s")
