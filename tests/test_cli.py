"""Command line: demo, plugins listing, configuration reference, exit codes."""

import subprocess
import sys

import pytest

from iota2.cli import main


def test_demo_runs_the_whole_chain(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "100", "-scheduler_type", "debug",
                 "-no_progress"]) == 0
    final = tmp_path / "demo" / "output" / "final"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif",
                 "PixelsValidity.tif", "RESULTS.txt", "Confusion_Matrix_Classif_Seed_0.png", "Classif_Seed_1.tif"):
        assert (final / name).stat().st_size > 0
    oa = [line for line in (final / "RESULTS.txt").read_text().splitlines() if line.startswith("OA :")]
    assert oa and 0.7 < float(oa[0].split()[2]) <= 1.0


def test_config_reference_command(tmp_path):
    target = tmp_path / "ref.md"
    assert main(["config-reference", "-o", str(target)]) == 0
    assert "## `arg_train`" in target.read_text()


def test_runs_where_stderr_has_no_file_descriptor(tmp_path, monkeypatch):
    """A notebook's stderr has no file descriptor: the crash dump is left off, the command runs."""
    import faulthandler
    import io

    was_enabled = faulthandler.is_enabled()
    faulthandler.disable()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    try:
        assert main(["config-reference", "-o", str(tmp_path / "ref.md")]) == 0
        assert not faulthandler.is_enabled()
    finally:
        monkeypatch.undo()
        if was_enabled:
            faulthandler.enable()


def test_console_script_exit_code_and_single_line_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("chain:\n  output_path: /tmp/x\n  list_tile: T1\n  s2_path: /nonexistent\narg_train:\n"
                      "  ratoi: 0.3\n")
    result = subprocess.run([sys.executable, "-m", "iota2.cli", "-config", str(config)], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f"iota2: error: {config}: unknown key 'arg_train.ratoi'; did you mean 'ratio'?")
    assert len(result.stderr.strip().splitlines()) == 1


SBATCH = """#!/bin/bash
# stand-in for Slurm's sbatch: runs the job script here, in its own process group, and prints its id
copy=$(mktemp "{jobs}/job.XXXXXX.sh")
cp "$1" "$copy"
setsid nohup bash "$copy" > "$copy.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
SCANCEL = """#!/bin/bash
kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
exit 0
"""


def _real_slurm_answers() -> bool:
    """Whether a Slurm controller answers on this machine (``bash .ci/slurm/start.sh`` starts one)."""
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_slurm_run_through_the_command_line(tmp_path, make_config):
    """``-scheduler_type Slurm`` from the command line, with stand-ins for sbatch and scancel that run the job
    scripts on this machine: the workers of the generated scripts connect and run the whole chain. The real
    cluster is tested in tests/core/test_slurm_cluster.py: this test runs where no Slurm answers, and says so."""
    import os
    import warnings

    if _real_slurm_answers():
        pytest.skip("a real Slurm cluster answers here: tests/core/test_slurm_cluster.py runs the chain through it")
    warnings.warn("real Slurm not running: using stand-in sbatch/scancel (`bash .ci/slurm/start.sh` starts a "
                  "one-node cluster for tests/core/test_slurm_cluster.py)", stacklevel=1)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for name, text in (("sbatch", SBATCH.format(jobs=jobs)), ("scancel", SCANCEL)):
        (jobs / name).write_text(text)
        (jobs / name).chmod(0o755)
    config = make_config(slurm={"cores": 1, "memory": "2GB", "walltime": "00:10:00"})
    env = dict(os.environ, PATH=f"{jobs}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "Slurm",
                             "-nb_parallel_tasks", "2", "-no_progress"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "final" / "RESULTS.txt").exists()
    scripts = sorted(jobs.glob("job.*.sh"))
    assert len(scripts) == 2 and "#SBATCH" in scripts[0].read_text()
    assert "--preload iota2.core.worker_preload" in scripts[0].read_text()


def test_only_summary_prints_the_job_script(make_config, capsys):
    config = make_config(slurm={"account": "proj42", "cores": 2, "memory": "3GB"})
    assert main(["-config", str(config), "-scheduler_type", "PBS", "-nb_parallel_tasks", "4", "-only_summary"]) == 0
    out = capsys.readouterr().out
    assert "Job script (4 job(s), one worker each)" in out and "#PBS" in out and "proj42" in out
    assert "--preload iota2.core.worker_preload" in out
