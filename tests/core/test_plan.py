"""The plan with costs printed by ``-only_summary``: its columns and sums against the graph it describes."""

from __future__ import annotations

import re

import pytest

from conftest import write_config
from iota2.cli import main, prepare_run, select_builders
from iota2.core.config import load_config
from iota2.core.features import bytes_per_pixel
from iota2.core.graph import Graph
from iota2.core.plan import PLAN_HEADER, STEP_COSTS, StepCost, format_plan, plan_steps


def _plan_table(text: str) -> tuple[list[list[str]], list[str]]:
    """Rows of the printed plan (split on runs of 2+ spaces) and its total line."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:3] == ["group", "step", "tasks"])
    rows = []
    for line in lines[start + 1:]:
        if set(line.replace(" ", "")) == {"-"}:
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    total = re.split(r"\s{2,}", lines[start + len(rows) + 2].strip())
    return rows, total


def _built(config_path):
    config = load_config(config_path)
    builders = select_builders(config, 2)
    for builder in builders:
        builder.check_config()
    return prepare_run(builders, config)[0]


def test_only_summary_prints_a_plan_matching_the_graph(tmp_path, s2_dataset, capsys):
    output = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", s2_dataset, output, arg_train={"runs": 2},
                          python_data_managing={"number_of_chunks": 3})
    assert main(["-config", str(config), "-only_summary", "-nb_parallel_tasks", "2"]) == 0
    text = capsys.readouterr().out
    assert not output.exists()  # nothing ran
    assert "an estimate for that class of machine" in text and "bench/README.md" in text
    header = next(line for line in text.splitlines() if line.startswith("group"))
    assert re.split(r"\s{2,}", header.strip()) == list(PLAN_HEADER)
    rows, total = _plan_table(text)
    builder, graph, groups = _built(config)
    by_step = {row[1]: row for row in rows}
    assert list(by_step) == [step for step in graph.steps if graph.tasks_of_step(step)]
    for step, row in by_step.items():
        assert int(row[2]) == len(graph.tasks_of_step(step)), step
    assert total[0] == "total" and int(total[1]) == len(graph.tasks)
    tile_pixels = 2 * 120 * 120
    pixels = {step: int(row[3].replace(",", "")) if row[3] != "-" else 0 for step, row in by_step.items()}
    assert pixels["classification"] == pixels["extraction"] == pixels["validity"] == tile_pixels  # windows, tiles
    assert pixels["create_directories"] == pixels["learning"] == 0
    assert pixels["merge_chunks"] == 2 * tile_pixels  # a task per tile and run
    assert int(total[2].replace(",", "")) == sum(pixels.values())
    tile_set = builder.tile_set
    windows = [window for tile in tile_set.tiles for window in tile_set.window_lists()[tile]]
    assert len(windows) == 6
    largest = max(w * h * bytes_per_pixel(tile_set.config, tile, tile_set.dates_by_sensor, tile_set.sensor_classes)
                  for tile in tile_set.tiles for _c, _r, w, h in tile_set.window_lists()[tile])
    assert by_step["classification"][4] == f"{largest / 2**20:.0f} MiB"
    budget = load_config(config)["python_data_managing"]["memory_per_task_mb"]
    assert by_step["validity"][4] == f"<= {budget} MiB"
    assert by_step["report"][4] == "-" and by_step["report"][5] == "-"  # no measured cost: not estimated
    features = int(re.search(r"Features per pixel: (\d+)", text).group(1))
    assert features > 13
    expected = STEP_COSTS["classification"].seconds(tile_pixels, features, runs=2)
    assert by_step["classification"][5] == f"{expected:.1f} s"
    seconds = re.search(r"Estimated time: ([\d.]+) s of tasks on one core, about ([\d.]+) s with 2 task", text)
    assert float(seconds.group(2)) == pytest.approx(float(seconds.group(1)) / 2, abs=0.06)
    assert "Steps without a measured cost (not in the estimate): create_directories" in text


def test_plan_of_the_selected_groups_only(tmp_path, s2_dataset, capsys):
    config = write_config(tmp_path / "c.yaml", s2_dataset, tmp_path / "out", chain={"first_step": "classification",
                                                                                  "last_step": "mosaic"})
    assert main(["-config", str(config), "-only_summary"]) == 0
    rows, total = _plan_table(capsys.readouterr().out)
    assert [row[1] for row in rows] == ["classification", "merge_chunks", "mosaic", "pixels_validity"]
    assert int(total[1]) == 4 + 2 + 1 + 1


def test_costs_and_table_without_images():
    cost = StepCost(per_task=1.0, per_pixel=1e-6, per_pixel_feature=1e-8, per_pixel_run=1e-7)
    assert cost.seconds(1_000_000, 50, runs=3) == pytest.approx(1.0 + 1.0 + 0.5 + 0.3)
    assert cost.seconds(1_000_000, None) is None  # needs the features
    assert StepCost(per_pixel=1e-6).seconds(10, None) == pytest.approx(1e-5)
    graph = Graph(["learning"])
    graph.add_step("learning", "learning", "learn")
    graph.add_step("other", "learning", "no figure")
    for run in range(3):
        graph.add_task(f"learning_seed_{run}", "learning", "os:getcwd", {"run": run})
    graph.add_task("other", "other", "os:getcwd", {"tile": "T1", "grid": {"width": 10, "height": 20}})
    rows = plan_steps(graph)
    assert [(row.step, row.tasks, row.pixels, row.memory_mb) for row in rows] == [("learning", 3, 0, None),
                                                                                   ("other", 1, 200, None)]
    assert rows[0].seconds == pytest.approx(3 * STEP_COSTS["learning"].per_task) and rows[1].seconds is None
    text = format_plan(rows, parallel_tasks=3, features=None)
    assert "Features per pixel: unknown" in text and "(not in the estimate): other." in text
    table, total = _plan_table(text)
    assert table[0] == ["learning", "learning", "3", "-", "-", "1.6 s"]
    assert total == ["total", "4", "200", "1.6 s"]
    assert "about 0.5 s with 3 task(s) at once" in text
