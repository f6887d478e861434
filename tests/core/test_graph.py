"""Task graph: groups, first/last step selection, dependencies, summary, status file."""

import pytest

from iota2.core.errors import ConfigError
from iota2.core.graph import Graph, TaskStatus

GROUPS = ["init", "sampling", "learning"]


def small_graph() -> Graph:
    graph = Graph(GROUPS)
    graph.add_step("a", "init", "first step")
    graph.add_step("b", "sampling", "second step")
    graph.add_step("c", "learning", "third step")
    graph.add_task("a_T1", "a", "scheduler_tasks:append", {"path": "x", "text": "a"})
    graph.add_task("b_T1", "b", "scheduler_tasks:append", {"path": "x", "text": "b"}, ["a_T1"])
    graph.add_task("c", "c", "scheduler_tasks:append", {"path": "x", "text": "c"}, ["b_T1", "a_T1"])
    return graph


def test_select_groups_and_subgraph():
    graph = small_graph()
    assert graph.select_groups(None, None) == GROUPS
    assert graph.select_groups("sampling", "sampling") == ["sampling"]
    sub = graph.subgraph(["sampling", "learning"])
    assert set(sub.tasks) == {"b_T1", "c"}
    assert sub.tasks["b_T1"].dependencies == []
    assert sub.tasks["c"].dependencies == ["b_T1"]


@pytest.mark.parametrize("first, last, message", [
    ("sampeling", None, "chain.first_step = 'sampeling'"),
    (None, "writing", "chain.last_step = 'writing'"),
    ("learning", "init", "comes after"),
])
def test_bad_group_names(first, last, message):
    with pytest.raises(ConfigError, match=message):
        small_graph().select_groups(first, last)


def test_unknown_dependency_and_duplicate_rejected():
    graph = small_graph()
    with pytest.raises(ValueError, match="unknown task"):
        graph.add_task("d", "c", "m:f", {}, ["nope"])
    with pytest.raises(ValueError, match="duplicate"):
        graph.add_task("c", "c", "m:f")


def test_summary_marks_selected_groups():
    text = small_graph().summary(["learning"])
    assert "[ ] Step 1: first step (1 task)" in text
    assert "[x] Step 3: third step (1 task)" in text


def test_status_file_round_trip(tmp_path):
    status = TaskStatus(tmp_path / "status.txt")
    status.set("a", "done")
    status.set("b", "failed")
    again = TaskStatus(tmp_path / "status.txt")
    assert again.is_done("a") and not again.is_done("b")
    assert not list(tmp_path.glob(".*tmp*"))


def test_status_journal_ignores_a_line_cut_by_a_kill(tmp_path):
    path = tmp_path / "status.txt"
    status = TaskStatus(path)
    status.reset()
    status.set("classification_T1_chunk_12", "failed")
    status.set("classification_T1_chunk_12", "done")
    with open(path, "a") as journal:
        journal.write("done classification_T1_chunk_1")  # killed before the end of the line
    again = TaskStatus(path)
    assert again.is_done("classification_T1_chunk_12")
    assert not again.is_done("classification_T1_chunk_1")
    # the restarted run's first record starts on a line of its own, so it is not lost with the cut one
    again.set("report", "done")
    assert TaskStatus(path).is_done("report") and not TaskStatus(path).is_done("classification_T1_chunk_1")
    status.reset()
    assert TaskStatus(path).states == {}


def test_dependencies_are_tasks_or_names_whatever_their_characters():
    graph = Graph(GROUPS)
    graph.add_step("a", "init", "first step")
    graph.add_step("b", "sampling", "second step")
    north_east = graph.add_task("selection_region_north-east_seed_0", "a", "m:f")
    assert north_east.name == "selection_region_north_east_seed_0"
    by_task = graph.add_task("after_task", "b", "m:f", dependencies=[north_east, None])
    by_name = graph.add_task("after_name", "b", "m:f", dependencies=["selection_region_north-east_seed_0"])
    assert by_task.dependencies == by_name.dependencies == [north_east.name]
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        graph.add_task("x", "b", "m:f", dependencies=["nope"])


def test_task_resources_survive_a_subgraph():
    from iota2.core.learner import Resources

    graph = Graph(["a", "b"])
    graph.add_step("first", "a", "")
    graph.add_step("second", "b", "")
    first = graph.add_task("t1", "first", "m:f")
    graph.add_task("t2", "second", "m:g", dependencies=[first], resources=Resources(threads=3, gpu=True))
    selected = graph.subgraph(["b"])
    assert selected.tasks["t2"].resources == Resources(threads=3, gpu=True)
    assert selected.tasks["t2"].upstream == ["t1"]
