"""Fingerprints of finished tasks: the configuration keys a task reads are recorded, and a change of one of
them, of a file it names, of the task's arguments or of an earlier task changes the fingerprint."""

import copy
import os
import pickle

from iota2.core.config import Config
from iota2.core.fingerprint import RecordingConfig, task_fingerprint
from iota2.core.graph import Graph, TaskStatus

CONFIG = {"chain": {"output_path": "/out", "data_field": "code", "ground_truth": None},
          "arg_train": {"ratio": 0.5, "runs": 1, "sample_selection": {"sampler": "random", "strategy": "all"}},
          "scikit_models_parameters": {"model_type": None, "n_estimators": 100}}


def test_reads_are_recorded_by_key_and_whole_sections_when_iterated():
    config = RecordingConfig(CONFIG)
    wrapped = Config(config)  # tasks wrap the mapping as the builders do
    assert wrapped["arg_train"]["ratio"] == 0.5
    assert wrapped["chain"].get("data_field") == "code"
    assert "region_path" not in wrapped["chain"]
    assert config.recorded() == ["arg_train.ratio", "chain.data_field", "chain.region_path"]
    dict(wrapped["scikit_models_parameters"])  # copies iterate the section: all of it counts
    assert "scikit_models_parameters.*" in config.recorded()
    copy.deepcopy(config)
    assert config.recorded() == ["*.*"]


def test_a_task_changing_its_configuration_changes_nothing_outside():
    original = copy.deepcopy(CONFIG)
    config = RecordingConfig(CONFIG)
    config["arg_train"]["sample_selection"]["strategy"] = "constant"
    config["chain"]["data_field"] = "other"
    assert CONFIG == original
    assert pickle.loads(pickle.dumps(config)) == config  # travels to a worker as a plain mapping


def test_fingerprint_follows_read_values_arguments_files_and_dependencies(tmp_path):
    truth = tmp_path / "truth.gpkg"
    truth.write_text("polygons")
    config = copy.deepcopy(CONFIG)
    config["chain"]["ground_truth"] = str(truth)
    reads = ["arg_train.ratio", "chain.ground_truth"]
    base = task_fingerprint("m:f", {"config": config, "tile": "T1"}, reads, ["abc"])
    assert base == task_fingerprint("m:f", {"config": copy.deepcopy(config), "tile": "T1"}, reads, ["abc"])
    unread = copy.deepcopy(config)
    unread["scikit_models_parameters"]["n_estimators"] = 5  # not read by this task
    assert task_fingerprint("m:f", {"config": unread, "tile": "T1"}, reads, ["abc"]) == base
    changed = copy.deepcopy(config)
    changed["arg_train"]["ratio"] = 0.6
    assert task_fingerprint("m:f", {"config": changed, "tile": "T1"}, reads, ["abc"]) != base
    assert task_fingerprint("m:f", {"config": config, "tile": "T2"}, reads, ["abc"]) != base
    assert task_fingerprint("m:g", {"config": config, "tile": "T1"}, reads, ["abc"]) != base
    assert task_fingerprint("m:f", {"config": config, "tile": "T1"}, reads, ["abd"]) != base
    truth.write_text("polygons, edited in place")
    os.utime(truth, ns=(1, 1))
    assert task_fingerprint("m:f", {"config": config, "tile": "T1"}, reads, ["abc"]) != base


def test_up_to_date_follows_dependencies(tmp_path):
    graph = Graph(["a", "b"])
    graph.add_step("s1", "a", "first")
    graph.add_step("s2", "b", "second")
    config = copy.deepcopy(CONFIG)
    first = graph.add_task("first", "s1", "m:f", {"config": config})
    graph.add_task("second", "s2", "m:g", {"config": config, "n": 1}, [first.name])
    status = TaskStatus(tmp_path / "status.txt")
    fp_first = task_fingerprint("m:f", {"config": config}, ["arg_train.ratio"], [])
    status.set("first", "done", fp_first, ["arg_train.ratio"])
    fp_second = task_fingerprint("m:g", {"config": config, "n": 1}, [], [fp_first])
    status.set("second", "done", fp_second, [])
    again = TaskStatus(tmp_path / "status.txt")
    assert set(graph.up_to_date(again)) == {"first", "second"}
    assert graph.subgraph(["b"]).full.up_to_date(again) == graph.up_to_date(again)
    config["arg_train"]["ratio"] = 0.9  # read by the first task only: both must run again
    assert graph.up_to_date(again) == {}
    config["arg_train"]["ratio"] = 0.5
    again.set("first", "done")  # recorded without a fingerprint (an earlier version): not up to date
    assert graph.up_to_date(TaskStatus(tmp_path / "status.txt")) == {}


def test_an_argument_naming_a_file_edited_in_place_changes_the_fingerprint(tmp_path):
    truth = tmp_path / "truth.gpkg"
    truth.write_text("polygons")
    base = task_fingerprint("m:f", {"ground_truth": str(truth), "output_path": str(tmp_path)}, [], [])
    (tmp_path / "written_by_a_task.tif").write_text("x")  # the output folder changes: not a file argument
    assert task_fingerprint("m:f", {"ground_truth": str(truth), "output_path": str(tmp_path)}, [], []) == base
    os.utime(truth, ns=(1, 1))
    assert task_fingerprint("m:f", {"ground_truth": str(truth), "output_path": str(tmp_path)}, [], []) != base
    # a file inside the output folder is a product of the run: its changes are not an input's
    product = tmp_path / "out" / "trace.txt"
    product.parent.mkdir()
    product.write_text("a")
    before = task_fingerprint("m:f", {"path": str(product)}, [], [], output_folder=tmp_path / "out")
    product.write_text("ab")
    assert task_fingerprint("m:f", {"path": str(product)}, [], [], output_folder=tmp_path / "out") == before
    assert task_fingerprint("m:f", {"path": str(product)}, [], []) != before
