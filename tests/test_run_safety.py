"""Runs that never lie: -restart sees configuration changes, first_step needs the earlier outputs, a failed
rerun never passes the previous products off as current, Ctrl-C stops cleanly, library warnings stay in the
task logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio
import yaml

from iota2.cli import main
from iota2.core.graph import STATUS_FILE
from iota2.core.output_folder import INCOMPLETE_NOTE, LOCK, PREVIOUS_FINAL


def _run(config: Path, *extra: str) -> int:
    return main(["-config", str(config), "-scheduler_type", "debug", "-no_progress", *extra])


def _starts(out: Path, step: str, task: str) -> int:
    """How many times a task started (its log is appended at each run)."""
    log = out / "logs" / step / f"{task}.log"
    return log.read_text().count(" start ") if log.exists() else 0


def _edit(config: Path, section: str, **values) -> None:
    raw = yaml.safe_load(config.read_text())
    raw.setdefault(section, {}).update(values)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.mark.slow
def test_restart_reruns_what_a_change_affects_and_a_failed_rerun_sets_products_aside(make_config, tmp_path,
                                                                                     capsys):
    config = make_config()
    out = tmp_path / "out"
    assert _run(config) == 0
    assert not (out / "final" / INCOMPLETE_NOTE).exists() and not (out / LOCK).exists()
    assert _run(config, "-restart") == 0  # nothing changed: nothing runs
    assert _starts(out, "learning", "learning_region_1_seed_0") == 1

    _edit(config, "scikit_models_parameters", n_estimators=10)  # read by learning only
    assert _run(config, "-restart") == 0
    assert _starts(out, "selection", "selection_region_1_seed_0") == 1
    assert _starts(out, "learning", "learning_region_1_seed_0") == 2
    assert _starts(out, "classification", "classification_T31TCJ_chunk_0") == 2
    assert _starts(out, "report", "report") == 2
    assert "n_estimators: 10" in (out / "config_resolved.yaml").read_text()

    _edit(config, "arg_train", sample_selection={"sampler": "periodic", "strategy": "constant",
                                                 "strategy.constant.nb": 100})
    assert _run(config, "-restart") == 0
    assert _starts(out, "ground_truth", "ground_truth") == 1
    assert _starts(out, "selection", "selection_region_1_seed_0") == 2
    assert _starts(out, "learning", "learning_region_1_seed_0") == 3

    _edit(config, "arg_train", ratio=0.7)  # the polygon split: everything from the split on
    assert _run(config, "-restart") == 0
    assert _starts(out, "validity", "validity_T31TCJ") == 1
    assert _starts(out, "ground_truth", "ground_truth") == 2
    assert _starts(out, "confusion", "confusion_seed_0") == 4

    # a rerun from scratch that fails: the previous products are moved aside, and the message says so
    _edit(config, "scikit_models_parameters", n_estimators=-1)
    capsys.readouterr()
    assert _run(config) == 1
    error = capsys.readouterr().err
    assert f"moved to {PREVIOUS_FINAL}/" in error
    assert not (out / "final" / "Classif_Seed_0.tif").exists()
    assert (out / PREVIOUS_FINAL / "Classif_Seed_0.tif").exists()
    assert (out / "final" / INCOMPLETE_NOTE).exists()
    assert not (out / LOCK).exists()


def test_first_step_on_missing_outputs_names_the_group_to_run(make_config, tmp_path, capsys):
    config = make_config(chain={"first_step": "classification"})
    assert _run(config) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "needs the outputs of group 'init'" in error[0]
    assert "chain.first_step: init" in error[0]
    assert not (tmp_path / "out" / "logs").exists()


def _processes_of_group(group: int, wait: float) -> list[str]:
    """Command lines of the processes still in a process group after up to ``wait`` seconds."""
    deadline = time.time() + wait
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == group:
                        left.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
                except (ProcessLookupError, FileNotFoundError, PermissionError):
                    continue
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_then_restart_finishes(make_config, tmp_path):
    config = make_config(python_data_managing={"chunk_size_mode": "split_number", "number_of_chunks": 12})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "localCluster",
               "-nb_parallel_tasks", "2", "-no_progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 180
    status = out / STATUS_FILE
    while time.time() < deadline and process.poll() is None:
        if status.exists() and "done extraction" in status.read_text():
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the driver and its workers get it
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "iota2: interrupted; resume with -restart" in stderr
    assert "Traceback" not in stderr, stderr
    left = _processes_of_group(process.pid, wait=15.0)
    assert not left, f"processes left behind: {left}"
    assert not (out / LOCK).exists()
    result = subprocess.run(command + ["-restart"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (out / "final" / "Classif_Seed_0.tif").exists()
    assert not (out / "final" / INCOMPLETE_NOTE).exists()


def test_demo_size_is_checked_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--size", "51", "--generate-only"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "use an even number from 40" in error and "Traceback" not in error


@pytest.mark.slow
def test_a_full_disk_fails_the_task_and_restart_recovers_once_space_is_freed(make_config, tmp_path, capsys):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        out = disk / "out"
        config = make_config(output=out, chain={"last_step": "learning"})
        assert _run(config) == 0
        _edit(config, "chain", last_step="validation")
        filler = disk / "filler.bin"
        stat = os.statvfs(disk)
        with open(filler, "wb") as handle:  # every free byte but 16 KiB: the journal fits, the maps do not
            handle.write(b"\0" * (stat.f_bavail * stat.f_frsize - 16 * 1024))
        capsys.readouterr()
        assert _run(config, "-restart") == 1
        error = capsys.readouterr().err
        assert "no space left on device" in error and "-restart" in error
        assert not (out / "final" / "Classif_Seed_0.tif").exists()
        assert not list(out.rglob(".*.tmp*")), "temporary files left behind"
        filler.unlink()
        assert _run(config, "-restart") == 0
        assert _starts(out, "learning", "learning_region_1_seed_0") == 1  # finished before: not run again
        with rasterio.open(out / "final" / "Classif_Seed_0.tif") as written:
            assert written.read(1).any()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


CHECK_ONLY = """
import sys
from iota2.cli import main
code = main(sys.argv[1:])
heavy = sorted(name for name in ("pandas", "geopandas", "sklearn", "distributed", "numba") if name in sys.modules)
print(code, ",".join(heavy))
"""


@pytest.mark.parametrize("section, values, message", [
    ("chain", {"proj": "EPSG:99999"}, "chain.proj"),
    ("scikit_models_parameters", {"model_type": "RandomForestClasifier"}, "model_type"),
    ("arg_train", {"sample_selection": {"sampler": "randm"}}, "sampler"),
])
def test_configuration_errors_come_before_anything_heavy_starts(section, values, message, make_config):
    """A configuration error is reported before the learning libraries are imported or a cluster starts
    (so it comes in under a second whatever the scheduler)."""
    config = make_config(**{section: values})
    result = subprocess.run([sys.executable, "-c", CHECK_ONLY, "-config", str(config), "-scheduler_type",
                             "localCluster", "-nb_parallel_tasks", "2"], capture_output=True, text=True, timeout=120)
    code, heavy = result.stdout.strip().split(" ", 1) if " " in result.stdout.strip() else (result.stdout.strip(), "")
    assert code == "2", result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert heavy == "", f"imported before the error: {heavy}"
