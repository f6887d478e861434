"""Task graph: steps grouped as in iota2, tasks with explicit dependencies, a status file for restarts.

A *task* is one call of a module-level function with concrete keyword arguments (one tile, one
region, one run, one chunk ...). A *step* groups tasks of the same kind and belongs to a *group*
(``init``, ``sampling``, ``learning``, ``classification``, ``mosaic``, ``validation`` for the
classification builder); ``chain.first_step`` / ``chain.last_step`` select an interval of groups.
Tasks name the tasks they depend on, so different tiles progress independently.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from pathlib import Path
from typing import Any, Callable

from iota2.core.errors import ConfigError
from iota2.core.raster import atomic_output

STATUS_FILE = "IOTA2_tasks_status.txt"


@dataclasses.dataclass
class Step:
    """A kind of task: a name, its group and a one-line description for the summary."""

    name: str
    group: str
    description: str


@dataclasses.dataclass
class Task:
    """One unit of work.

    Attributes
    ----------
    name
        Unique name, e.g. ``"classification_T31TCJ_region_1_seed_0_chunk_3"``.
    step
        Name of the :class:`Step` it belongs to.
    function
        ``"package.module:function"`` (importable on any worker) or a module-level callable.
    kwargs
        Keyword arguments of the function: small, picklable values (paths, names, numbers).
    dependencies
        Names of the tasks that must have succeeded before this one starts.
    """

    name: str
    step: str
    function: str | Callable
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    dependencies: list[str] = dataclasses.field(default_factory=list)

    def resolve(self) -> Callable:
        """Return the callable this task runs."""
        if callable(self.function):
            return self.function
        module_name, _, attribute = self.function.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


class Graph:
    """An ordered set of steps and tasks."""

    def __init__(self, groups: list[str]):
        self.groups = list(groups)
        self.steps: dict[str, Step] = {}
        self.tasks: dict[str, Task] = {}

    def add_step(self, name: str, group: str, description: str) -> Step:
        if group not in self.groups:
            raise ValueError(f"unknown group {group!r}")
        step = Step(name, group, description)
        self.steps[name] = step
        return step

    def add_task(self, name: str, step: str, function, kwargs: dict | None = None,
                 dependencies: list[str] | None = None) -> Task:
        name = re.sub(r"[^A-Za-z0-9_.]+", "_", name)
        if name in self.tasks:
            raise ValueError(f"duplicate task name {name!r}")
        if step not in self.steps:
            raise ValueError(f"task {name!r} uses unknown step {step!r}")
        deps = [dep for dep in (dependencies or []) if dep is not None]
        for dep in deps:
            if dep not in self.tasks:
                raise ValueError(f"task {name!r} depends on unknown task {dep!r}")
        task = Task(name, step, function, dict(kwargs or {}), deps)
        self.tasks[name] = task
        return task

    def tasks_of_step(self, step: str) -> list[Task]:
        return [task for task in self.tasks.values() if task.step == step]

    def select_groups(self, first: str | None, last: str | None) -> list[str]:
        """Groups from ``first`` to ``last`` inclusive; names are checked against this graph's groups."""
        names = self.groups
        for key, value in (("first_step", first), ("last_step", last)):
            if value is not None and value not in names:
                raise ConfigError(f"chain.{key} = {value!r} is not a group of this workflow; use one of "
                                  f"{', '.join(names)}")
        start = names.index(first) if first else 0
        stop = names.index(last) if last else len(names) - 1
        if start > stop:
            raise ConfigError(f"chain.first_step ({first}) comes after chain.last_step ({last}); groups run in the "
                              f"order {', '.join(names)}")
        return names[start:stop + 1]

    def subgraph(self, groups: list[str]) -> "Graph":
        """The tasks of the given groups; dependencies on tasks outside them are dropped (their outputs
        are expected on disk from an earlier run)."""
        selected = Graph(self.groups)
        for step in self.steps.values():
            if step.group in groups:
                selected.steps[step.name] = step
        for task in self.tasks.values():
            if task.step in selected.steps:
                kept = [dep for dep in task.dependencies if self.tasks[dep].step in selected.steps]
                selected.tasks[task.name] = Task(task.name, task.step, task.function, task.kwargs, kept)
        return selected

    def summary(self, selected_groups: list[str] | None = None) -> str:
        """The iota2-style summary: every step with ``[x]`` when it will run, and its number of tasks."""
        lines = ["Full processing include the following steps (checked steps will be run):"]
        index = 0
        for group in self.groups:
            steps = [step for step in self.steps.values() if step.group == group]
            if not steps:
                continue
            lines.append(f"Group {group}:")
            for step in steps:
                index += 1
                mark = "x" if selected_groups is None or group in selected_groups else " "
                count = len(self.tasks_of_step(step.name))
                lines.append(f"\t [{mark}] Step {index}: {step.description} ({count} task{'s' * (count != 1)})")
        return "\n".join(lines)


class TaskStatus:
    """Persistent state of tasks (``IOTA2_tasks_status.txt`` in the output root), for ``-restart``.

    The file is a journal: one ``<state> <task name>`` line appended (and flushed to disk) per change, the
    last line of a task wins. Appending keeps the cost per task constant on runs of many thousands of
    tasks, and a run killed mid-write leaves at most one incomplete last line, which is ignored and removed
    before the next record (completed by a newline, ``done classification_T1_chunk_1`` cut from ``..._chunk_12``
    would read as another task's record).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.states: dict[str, str] = {}
        self._cut_bytes = 0
        if self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            lines = text.split("\n")
            for line in lines[:-1]:  # the last piece is empty, or a line cut by a kill: ignored
                state, _, name = line.partition(" ")
                if state in ("done", "failed") and name:
                    self.states[name] = state
            self._cut_bytes = len(lines[-1].encode("utf-8"))  # removed before the next record is appended

    def is_done(self, name: str) -> bool:
        return self.states.get(name) == "done"

    def set(self, name: str, state: str) -> None:
        self.states[name] = state
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._cut_bytes:  # completed, the cut line could read as another task's record ("..._chunk_1")
            os.truncate(self.path, self.path.stat().st_size - self._cut_bytes)
            self._cut_bytes = 0
        with open(self.path, "a", encoding="utf-8") as journal:
            journal.write(f"{state} {name}\n")
            journal.flush()
            os.fsync(journal.fileno())

    def reset(self) -> None:
        """Forget every state (a run without ``-restart``)."""
        self.states = {}
        self._cut_bytes = 0
        with atomic_output(self.path) as tmp:
            tmp.write_text("", encoding="utf-8")
