"""The output folder: refused when its use or cleaning could destroy data the run did not make; the marker
that lets remove_output_path clean only iota2's entries; the lock that lets one run at a time use it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from iota2.cli import main
from iota2.core.config import load_config
from iota2.core.errors import ConfigError
from iota2.core.output_folder import (LOCK, MARKER, STALE_AFTER_S, RunLock, check_output_folder,
                                      mark_output_folder, remove_outputs,
                                      set_aside_previous_products)


def _config_with_output(make_config, tmp_path, output) -> Path:
    path = make_config()
    raw = yaml.safe_load(path.read_text())
    raw["chain"]["output_path"] = str(output)
    path.write_text(yaml.safe_dump(raw))
    return path


def _snapshot(folder: Path) -> dict:
    return {str(p): p.stat().st_size for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("where, message", [
    ("", "chain.output_path is empty"),
    ("/", "root of the file system"),
    ("~", "home folder"),
    (".", "current folder"),
    ("<s2_path>", "holds the input chain.s2_path"),
    ("<s2_path>/T31TCJ/out", "lies inside the input folder chain.s2_path"),
    ("<data>", "holds the input"),
])
def test_dangerous_output_folders_are_refused_and_nothing_is_touched(where, message, make_config, tmp_path,
                                                                     s2_dataset, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    s2_path = str(s2_dataset["s2_path"])
    output = where.replace("<s2_path>", s2_path).replace("<data>", str(Path(s2_path).parent))
    config = _config_with_output(make_config, tmp_path, output)
    raw = yaml.safe_load(config.read_text())
    raw["chain"]["remove_output_path"] = True
    config.write_text(yaml.safe_dump(raw))
    before = _snapshot(Path(s2_path).parent)
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error
    assert _snapshot(Path(s2_path).parent) == before
    assert not (Path(s2_path) / "T31TCJ" / "out").exists()


def test_remove_output_path_refuses_a_folder_iota2_did_not_write(make_config, tmp_path, capsys):
    output = tmp_path / "thesis"
    output.mkdir()
    (output / "chapter1.tex").write_text("years of work")
    config = make_config(output=output, chain={"remove_output_path": True})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    error = capsys.readouterr().err
    assert "not written by iota2" in error and "remove_output_path" in error
    assert (output / "chapter1.tex").read_text() == "years of work"
    assert sorted(p.name for p in output.iterdir()) == ["chapter1.tex"]  # no lock, no marker left


def test_a_folder_holding_what_a_run_would_write_is_refused_unless_iota2_wrote_it(make_config, tmp_path, capsys):
    output = tmp_path / "shared"
    (output / "final").mkdir(parents=True)
    (output / "final" / "Classif_Seed_0.tif").write_text("someone's map")
    (output / "notes.txt").write_text("mine")
    config = make_config(output=output)
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress", "-restart"]) == 2
    error = capsys.readouterr().err
    assert "holds final, which no iota2 run wrote there" in error
    assert (output / "final" / "Classif_Seed_0.tif").read_text() == "someone's map"
    assert sorted(p.name for p in output.iterdir()) == ["final", "notes.txt"]
    mark_output_folder(output)  # written by an iota2 run: accepted
    assert check_output_folder(load_config(config)) == output.resolve()


def test_remove_outputs_deletes_only_iota2_entries(tmp_path):
    output = tmp_path / "out"
    mark_output_folder(output)
    for name in ("final", "model", "logs"):
        (output / name).mkdir()
        (output / name / "x.tif").write_text("x")
    (output / "IOTA2_tasks_status.txt").write_text("done a\n")
    (output / "notes.txt").write_text("mine")
    (output / "my_analysis").mkdir()
    kept = remove_outputs(output, ("final", "model", "logs", "IOTA2_tasks_status.txt"))
    assert kept == ["my_analysis", "notes.txt"]
    assert sorted(p.name for p in output.iterdir()) == [MARKER, "my_analysis", "notes.txt"]
    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    (unmarked / "final").mkdir()
    with pytest.raises(ConfigError, match="does not delete folders it did not write"):
        remove_outputs(unmarked, ("final",))
    assert (unmarked / "final").exists()


def test_final_is_shared_only_the_given_products_are_removed_or_set_aside(tmp_path):
    output = tmp_path / "out"
    mark_output_folder(output)
    final = output / "final"
    (final / "TMP").mkdir(parents=True)
    for name in ("Classif_Seed_0.tif", "RESULTS.txt", "features_map.tif", "INCOMPLETE_RUN.txt"):
        (final / name).write_text(name)
    (output / "IOTA2_tasks_status_i2_features_map.txt").write_text("done a\n")
    (output / "IOTA2_tasks_status.txt").write_text("done b\n")
    moved = set_aside_previous_products(output, ("Classif_Seed_*", "RESULTS.txt", "TMP"))
    assert sorted(moved) == ["Classif_Seed_0.tif", "RESULTS.txt", "TMP"]
    assert sorted(p.name for p in final.iterdir()) == ["INCOMPLETE_RUN.txt", "features_map.tif"]
    assert (output / "final_previous" / "Classif_Seed_0.tif").read_text() == "Classif_Seed_0.tif"
    (final / "Classif_Seed_0.tif").write_text("second run")
    set_aside_previous_products(output, ("Classif_Seed_*",))  # replaces the older one of the same name
    assert (output / "final_previous" / "Classif_Seed_0.tif").read_text() == "second run"
    assert (output / "final_previous" / "RESULTS.txt").exists()
    remove_outputs(output, ("final", "IOTA2_tasks_status_i2_features_map.txt"), ("features_map.tif",))
    assert sorted(p.name for p in final.iterdir()) == ["INCOMPLETE_RUN.txt"]
    assert (output / "IOTA2_tasks_status.txt").exists()  # the classification's journal is not the map's
    assert not (output / "IOTA2_tasks_status_i2_features_map.txt").exists()


def test_each_builder_sets_aside_its_own_styles_quicklooks_report_and_stac_only(make_config, tmp_path):
    """The sidecar files of the final maps (styles, GDAL categories, quicklooks, report, STAC) move with their
    builder's products; the other builder's products and a file of the user's stay in final/."""
    from iota2.builders.i2_classification import I2Classification
    from iota2.builders.i2_features_map import I2FeaturesMap

    config = load_config(make_config(external_features={"output_name": "soil"}))
    output = Path(config["chain"]["output_path"])
    mark_output_folder(output)
    final = output / "final"
    classification = ["Classif_Seed_0.tif", "Classif_Seed_0.qml", "Classif_Seed_0.tif.aux.xml", "PixelsValidity.qml",
                      "PixelsValidity.tif", "report.html", "quicklooks", "stac"]
    features_map = ["soil.tif", "soil.tif.aux.xml", "soil_stac"]
    for name in classification + features_map + ["my_notes.txt"]:
        path = final / name
        if "." in name:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(name)
        else:
            (path / "item.json").parent.mkdir(parents=True)
            (path / "item.json").write_text(name)
    moved = set_aside_previous_products(output, I2FeaturesMap(config).final_products())
    assert sorted(moved) == sorted(features_map)
    moved = set_aside_previous_products(output, I2Classification(config).final_products())
    assert sorted(moved) == sorted(classification)
    assert sorted(p.name for p in final.iterdir()) == ["my_notes.txt"]
    assert (output / "final_previous" / "stac" / "item.json").read_text() == "stac"


def test_an_output_folder_inside_nothing_is_accepted(make_config, tmp_path):
    config = load_config(make_config())
    assert check_output_folder(config) == (tmp_path / "out").resolve()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from iota2.core.output_folder import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def test_the_lock_is_exclusive_between_processes_and_a_dead_holder_is_taken_over(tmp_path, caplog):
    output = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(output), "60"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        content = json.loads((output / LOCK).read_text())
        assert content["pid"] == holder.pid and content["host"] == socket.gethostname()
        with pytest.raises(ConfigError, match=f"in use by another iota2 run \\(pid {holder.pid} on "):
            RunLock(output).acquire()
    finally:
        holder.kill()  # killed: it cannot remove its lock
        holder.wait()
    assert (output / LOCK).exists()
    lock = RunLock(output)
    lock.acquire()  # the holder's process is gone: taken over
    assert "took over the lock" in caplog.text
    assert json.loads((output / LOCK).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (output / LOCK).exists()


def test_a_lock_of_another_host_is_stale_only_when_no_longer_refreshed(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    lock_file = output / LOCK
    lock_file.write_text(json.dumps({"pid": 1, "host": "node-17", "started": "2026-01-01T00:00:00",
                                     "command": "iota2 -config x.yaml", "token": "t"}))
    with pytest.raises(ConfigError, match="node-17"):
        RunLock(output).acquire()
    old = time.time() - STALE_AFTER_S - 5
    os.utime(lock_file, (old, old))
    lock = RunLock(output)
    lock.acquire()
    lock.release()
    assert not lock_file.exists()


def test_two_runs_on_one_output_folder(make_config, tmp_path):
    """Two real runs started on the same output_path: the second is refused naming the first, which ends well."""
    config = make_config()
    command = [sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "debug", "-no_progress"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "out" / LOCK).exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"in use by another iota2 run (pid {first.pid}" in second.stderr
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    assert (tmp_path / "out" / "final" / "Classif_Seed_0.tif").exists()
    assert not (tmp_path / "out" / LOCK).exists()
