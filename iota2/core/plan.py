"""A plan with costs for ``-only_summary``: per step, its tasks, the pixels they process, the memory a task is
expected to use and an estimated time, computed from the graph without running it.

* **Pixels** come from the tasks' arguments: a ``window`` (``[col, row, width, height]``, the chunk windows of
  :meth:`iota2.core.tiles.TileSet.window_lists`) counts its pixels, a ``tile`` the tile's grid, a list of
  ``tiles`` the sum of their grids.
* **Memory per task**: a chunk task holds its window's features and their classification,
  ``pixels x bytes_per_pixel`` (:func:`iota2.core.features.bytes_per_pixel`, the estimate that sizes the chunks
  against ``python_data_managing.memory_per_task_mb``); a tile task that reads by blocks (``memory_mb`` argument)
  stays within that budget. The worker process itself adds its libraries (about 290 MiB measured in
  ``bench/README.md``, "Features per chunk").
* **Time**: measured costs per pixel (or per pixel and feature, or per task) of the main steps, taken from the
  figures of ``bench/README.md`` (:data:`STEP_COSTS`, each entry citing its figure). They were measured on the
  benchmarks' machine (2 shared vCPU, Intel Xeon), one core per task: the estimate is for that class of machine,
  and steps with no figure are left out of it.
"""

from __future__ import annotations

import dataclasses
import logging

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StepCost:
    """The measured cost of one task of a step: ``per_task + pixels x (per_pixel + features x per_pixel_feature
    + runs x per_pixel_run)`` seconds on one core.

    Attributes
    ----------
    source
        Where the figure comes from (``bench/README.md`` section and row).
    """

    per_task: float = 0.0
    per_pixel: float = 0.0
    per_pixel_feature: float = 0.0
    per_pixel_run: float = 0.0
    source: str = ""

    def seconds(self, pixels: int, features: int | None, runs: int = 1) -> float | None:
        """Seconds of one task; None when the cost needs the number of features and it is unknown."""
        if self.per_pixel_feature and features is None:
            return None
        return (self.per_task + pixels * (self.per_pixel + (features or 0) * self.per_pixel_feature
                                          + runs * self.per_pixel_run))


BENCH_PIXELS = 2000 * 2000
"""Pixels of ``bench_chain.py``'s tile (``bench/README.md``, "Measured here (2026-11-25)": 52 features, 8
classes, random forest of 100 trees, 2 workers)."""

STEP_COSTS: dict[str, StepCost] = {
    # bench/README.md, bench_chain "Measured here (2026-11-25)": "tile preparation (validity, masks)" 0.22 s for the
    # 2000 x 2000 px tile (one task)
    "validity": StepCost(per_pixel=0.22 / BENCH_PIXELS, source="bench_chain: tile preparation 0.22 s / 4 Mpx"),
    # the features-map builder's validity step runs the same task function
    "features_map_validity": StepCost(per_pixel=0.22 / BENCH_PIXELS,
                                      source="bench_chain: tile preparation 0.22 s / 4 Mpx"),
    # same run, change 11: truth_pixels 0.54 s at 2000 x 2000 px
    "truth_pixels": StepCost(per_pixel=0.54 / BENCH_PIXELS, source="bench_chain change 11: 0.54 s / 4 Mpx"),
    # same run: "polygon stats + sample selection" 1.08 s, of which truth_pixels 0.54 s; the rest is the selection
    # (which reads every tile's sample pixels)
    "selection": StepCost(per_pixel=(1.08 - 0.54) / BENCH_PIXELS,
                          source="bench_chain: (1.08 - 0.54) s / 4 Mpx"),
    # same run: "sample extraction" 1.67 s of wall time on 2 workers for 4 Mpx and 52 features
    "extraction": StepCost(per_pixel_feature=2 * 1.67 / (BENCH_PIXELS * 52),
                           source="bench_chain: 1.67 s x 2 workers / (4 Mpx x 52 features)"),
    # same run: "learning" 0.53 s for one model (4 000 samples, 52 features, 100 trees, both cores)
    "learning": StepCost(per_task=0.53, source="bench_chain: 0.53 s per model (4 000 samples, 100 trees)"),
    # same run, "Why 5x is out of reach here": the 8 classification tasks add up to 13.4-13.8 s for 4 Mpx at 52
    # features and one run; of it the forest (compiled kernel, one thread) 1.11-1.17 s per 570 000 px ("one
    # chunk"), i.e. 2.0e-6 s per pixel and run; the rest (features, writing) per pixel and feature
    "classification": StepCost(per_pixel_feature=(13.6 - 2.0e-6 * BENCH_PIXELS) / (BENCH_PIXELS * 52),
                               per_pixel_run=1.14 / 570_000,
                               source="bench_chain: 13.6 task-s / 4 Mpx, forest 1.14 s / 570 000 px"),
    # same run, change 12: a mosaic decoding and compressing the tiles took 0.22 s at 2000 x 2000 px
    "mosaic": StepCost(per_pixel=0.22 / BENCH_PIXELS, source="bench_chain change 12: 0.22 s / 4 Mpx"),
    # same run: "validation (confusion + figure, report)" 0.76 s for 4 Mpx (the report's share included here)
    "confusion": StepCost(per_pixel=0.76 / BENCH_PIXELS, source="bench_chain: validation 0.76 s / 4 Mpx"),
    # bench_features "Measured here (2026-11-25)": configuration A at 1000 x 1000 px, 5.91e7 pixel-features/s
    "features_chunk": StepCost(per_pixel_feature=1 / 5.91e7, source="bench_features A: 5.91e7 px-features/s"),
}
"""Measured seconds per task of the main steps, by step name, on the benchmarks' machine (see the module)."""

NO_IMAGE_STEPS = frozenset({"create_directories", "features_map_directories"})
"""Steps whose tasks name tiles but read no image: they count no pixels."""

MACHINE = "the benchmarks' machine (bench/README.md: 2 shared vCPU, Intel Xeon, one core per task)"


@dataclasses.dataclass
class StepPlan:
    """One row of the plan.

    Attributes
    ----------
    group, step
        Group and step names.
    tasks
        Number of tasks of the step.
    pixels
        Pixels the tasks process together (0 when they process no image).
    memory_mb
        Expected memory of its largest task (MiB, without the worker's libraries); None when not estimated.
    memory_is_budget
        True when ``memory_mb`` is the budget the task reads within (``memory_mb`` argument), not a per-pixel
        estimate.
    seconds
        Estimated task seconds of the step on one core; None without a measured cost.
    """

    group: str
    step: str
    tasks: int
    pixels: int
    memory_mb: float | None
    memory_is_budget: bool
    seconds: float | None


def _pixels_of(task, grids: dict) -> int:
    kwargs = task.kwargs
    window = kwargs.get("window")
    if isinstance(window, (list, tuple)) and len(window) == 4:
        return int(window[2]) * int(window[3])
    if isinstance(kwargs.get("tile"), str):
        grid = kwargs.get("grid") if isinstance(kwargs.get("grid"), dict) else grids.get(kwargs["tile"])
        return _grid_pixels(grid)
    tiles = kwargs.get("tiles")
    if isinstance(tiles, (list, tuple)):
        return sum(_grid_pixels(grids.get(tile)) for tile in tiles)
    return 0


def _grid_pixels(grid) -> int:
    if grid is None:
        return 0
    if isinstance(grid, dict):
        return int(grid["width"]) * int(grid["height"])
    return int(grid.width) * int(grid.height)


def feature_count(tile_set) -> int | None:
    """Number of features of a pixel: the features of a window of at most 16 x 16 px of the first tile, read as a
    chunk task reads them (every sensor, feature functions included). None when it cannot be read."""
    from rasterio.windows import Window

    from iota2.core.features import read_features

    tile = tile_set.tiles[0]
    grid = tile_set.grids[tile]
    window = Window(0, 0, min(16, grid.width), min(16, grid.height))
    try:
        block = read_features(tile_set.config, tile, grid, window, tile_set.dates_by_sensor, tile_set.sensor_classes)
    except Exception as exc:  # noqa: BLE001 - the plan says the estimate is incomplete; the run would report it
        LOGGER.warning("the plan's feature count could not be read from tile %s (%s: %s); times that depend on it "
                       "are left out", tile, type(exc).__name__, exc)
        return None
    return int(block.features.shape[-1])


def plan_steps(graph, groups: list[str] | None = None, tile_set=None, features: int | None = None,
               costs: dict[str, StepCost] | None = None) -> list[StepPlan]:
    """The plan of the steps of ``groups`` (every group when None), in the graph's order.

    Parameters
    ----------
    graph
        A builder's full graph (:class:`iota2.core.graph.Graph`).
    groups
        Selected groups (``chain.first_step`` / ``last_step``).
    tile_set
        The builder's :class:`iota2.core.tiles.TileSet` (grids, and the bytes per pixel of each tile); without it
        pixels come from the tasks' ``grid`` arguments only and the memory of chunks is not estimated.
    features
        Features per pixel (:func:`feature_count`).
    costs
        Measured costs by step name (default :data:`STEP_COSTS`).
    """
    from iota2.core.features import bytes_per_pixel

    costs = STEP_COSTS if costs is None else costs
    grids = dict(tile_set.grids) if tile_set is not None else {}
    per_pixel: dict[str, int] = {}

    def tile_bytes(tile: str) -> int | None:
        if tile_set is None or tile not in tile_set.grids:
            return None
        if tile not in per_pixel:
            per_pixel[tile] = bytes_per_pixel(tile_set.config, tile, tile_set.dates_by_sensor,
                                              tile_set.sensor_classes)
        return per_pixel[tile]

    rows = []
    for group in graph.groups:
        if groups is not None and group not in groups:
            continue
        for step in (step for step in graph.steps.values() if step.group == group):
            tasks = graph.tasks_of_step(step.name)
            if not tasks:
                continue
            cost = costs.get(step.name)
            pixels, seconds, memory, budget = 0, 0.0 if cost else None, None, False
            for task in tasks:
                task_pixels = 0 if step.name in NO_IMAGE_STEPS else _pixels_of(task, grids)
                pixels += task_pixels
                if seconds is not None:
                    runs = task.kwargs.get("runs") if isinstance(task.kwargs.get("runs"), int) else 1
                    spent = cost.seconds(task_pixels, features, runs)
                    seconds = None if spent is None else seconds + spent
                if "window" in task.kwargs and isinstance(task.kwargs.get("tile"), str):
                    size = tile_bytes(task.kwargs["tile"])
                    if size is not None:
                        memory = max(memory or 0.0, task_pixels * size / 2**20)
                elif isinstance(task.kwargs.get("memory_mb"), (int, float)):
                    memory, budget = max(memory or 0.0, float(task.kwargs["memory_mb"])), True
            rows.append(StepPlan(group, step.name, len(tasks), pixels, memory, budget, seconds))
    return rows


def _duration(seconds: float) -> str:
    if seconds < 0.05:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


PLAN_HEADER = ("group", "step", "tasks", "pixels", "memory/task", "est. time")
"""Columns of the plan table."""


def format_plan(rows: list[StepPlan], parallel_tasks: int = 1, features: int | None = None) -> str:
    """The plan as a table with a total line and notes: what ``-only_summary`` prints."""
    table = [PLAN_HEADER]
    for row in rows:
        memory = "-" if row.memory_mb is None else (f"<= {row.memory_mb:.0f} MiB" if row.memory_is_budget
                                                    else f"{row.memory_mb:.0f} MiB")
        table.append((row.group, row.step, str(row.tasks), f"{row.pixels:,}" if row.pixels else "-", memory,
                      "-" if row.seconds is None else _duration(row.seconds)))
    timed = [row for row in rows if row.seconds is not None]
    total_seconds = sum(row.seconds for row in timed)
    table.append(("total", "", str(sum(row.tasks for row in rows)), f"{sum(row.pixels for row in rows):,}", "",
                  _duration(total_seconds)))
    widths = [max(len(line[column]) for line in table) for column in range(len(PLAN_HEADER))]
    right = {2, 3, 4, 5}
    lines = ["Plan of the selected steps. est. time: estimated from the costs per pixel measured on " + MACHINE
             + "; an estimate for that class of machine, not a measurement of this one."]
    for index, line in enumerate(table):
        if index == len(table) - 1:
            lines.append("  ".join("-" * width for width in widths))
        lines.append("  ".join(cell.rjust(width) if column in right else cell.ljust(width)
                               for column, (cell, width) in enumerate(zip(line, widths))).rstrip())
    parallel = max(1, parallel_tasks)
    lines.append(f"Estimated time: {_duration(total_seconds)} of tasks on one core, about "
                 f"{_duration(total_seconds / parallel)} with {parallel} task(s) at once, plus the start of the "
                 "workers; a machine of another class, other learners or settings change it.")
    untimed = [row.step for row in rows if row.seconds is None]
    if untimed:
        lines.append(f"Steps without a measured cost (not in the estimate): {', '.join(untimed)}.")
    lines.append(f"Features per pixel: {features if features is not None else 'unknown'}; memory/task is the "
                 "task's data (chunk pixels x estimated bytes per pixel, or the budget a tile task reads within), "
                 "without the worker's libraries (about 300 MiB).")
    return "\n".join(lines)
