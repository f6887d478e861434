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
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

from iota2.core.errors import ConfigError
from iota2.core.fingerprint import task_fingerprint
from iota2.core.layout import STATUS_FILE
from iota2.core.raster import atomic_output



@dataclasses.dataclass
class Step:
    """A kind of task: a name, its group and a one-line description for the summary.

    ``per_chunk``: one task per chunk of pixels (features, samples, classification of a chunk). Such a task is
    heavy and needs the compiled kernels a dask worker loads at start, so while a local cluster starts the driver
    leaves it to the workers and runs only the other tasks (:mod:`iota2.core.scheduler`).
    """

    name: str
    group: str
    description: str
    per_chunk: bool = False


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
    upstream
        Dependencies in the full graph that a sub-graph left out (their outputs come from an earlier run);
        they count in the task's fingerprint.
    resources
        What the task needs beyond one slot (:class:`iota2.core.learner.Resources`: threads, memory, GPU), or
        None; the scheduler caps its threads and sends a GPU request to workers that declare one.
    """

    name: str
    step: str
    function: str | Callable
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    dependencies: list[str] = dataclasses.field(default_factory=list)
    upstream: list[str] = dataclasses.field(default_factory=list)
    resources: Any = None

    @property
    def function_name(self) -> str:
        """``"package.module:function"`` of the callable."""
        if isinstance(self.function, str):
            return self.function
        return f"{self.function.__module__}:{self.function.__name__}"

    @property
    def all_dependencies(self) -> list[str]:
        """Dependencies in the full graph, sorted by name (the order of their fingerprints)."""
        return sorted(set(self.upstream) | set(self.dependencies))

    def resolve(self) -> Callable:
        """Return the callable this task runs."""
        if callable(self.function):
            return self.function
        module_name, _, attribute = self.function.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


class Graph:
    """An ordered set of steps and tasks."""

    def __init__(self, groups: list[str], status_file: str = STATUS_FILE):
        self.groups = list(groups)
        #: name of the journal of this graph's tasks in the output folder: builders run into one folder keep
        #: their own, so one's run does not touch another's restart state
        self.status_file = status_file
        self.steps: dict[str, Step] = {}
        self.tasks: dict[str, Task] = {}
        #: the graph this one was selected from (itself for a full graph)
        self.full: Graph = self

    def add_step(self, name: str, group: str, description: str, per_chunk: bool = False) -> Step:
        if group not in self.groups:
            raise ValueError(f"unknown group {group!r}")
        step = Step(name, group, description, per_chunk)
        self.steps[name] = step
        return step

    @staticmethod
    def task_name(name: str) -> str:
        """The name a task is stored under: characters other than letters, digits, ``_`` and ``.`` become ``_``
        (task names are file names of logs), so a region called ``north-east`` gives ``..._north_east``."""
        return re.sub(r"[^A-Za-z0-9_.]+", "_", name)

    def add_task(self, name: str, step: str, function, kwargs: dict | None = None,
                 dependencies: list["Task | str | None"] | None = None, resources=None) -> Task:
        """Add a task and return it.

        Parameters
        ----------
        name
            Unique name (normalised by :meth:`task_name`).
        step
            Name of a step added before.
        function
            ``"package.module:function"`` or a module-level callable.
        kwargs
            Its keyword arguments: small, picklable values.
        dependencies
            Tasks (as returned by this method) or their names, that must succeed before it starts; ``None``
            entries are ignored.
        resources
            What the task needs (:class:`iota2.core.learner.Resources`), or None.
        """
        name = self.task_name(name)
        if name in self.tasks:
            raise ValueError(f"duplicate task name {name!r}")
        if step not in self.steps:
            raise ValueError(f"task {name!r} uses unknown step {step!r}")
        deps = []
        for dep in dependencies or []:
            if dep is None:
                continue
            dep_name = dep.name if isinstance(dep, Task) else self.task_name(dep)
            if dep_name not in self.tasks:
                raise ValueError(f"task {name!r} depends on unknown task {dep_name!r}")
            if dep_name not in deps:
                deps.append(dep_name)
        task = Task(name, step, function, dict(kwargs or {}), deps, resources=resources)
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
        selected = Graph(self.groups, self.status_file)
        for step in self.steps.values():
            if step.group in groups:
                selected.steps[step.name] = step
        for task in self.tasks.values():
            if task.step in selected.steps:
                kept = [dep for dep in task.dependencies if self.tasks[dep].step in selected.steps]
                dropped = [dep for dep in task.all_dependencies if dep not in kept]
                selected.tasks[task.name] = Task(task.name, task.step, task.function, task.kwargs, kept, dropped,
                                                   task.resources)
        selected.full = self.full
        return selected

    def up_to_date(self, status: "TaskStatus") -> dict[str, str]:
        """``{task: fingerprint}`` of the tasks recorded as done whose fingerprint is still the same with the
        current arguments and configuration, and whose dependencies are all up to date."""
        current: dict[str, str] = {}
        for name, task in self.tasks.items():  # dependencies are added before their dependents
            record = status.records.get(name)
            if record is None or status.states.get(name) != "done":
                continue
            dependencies = task.all_dependencies
            if any(dep not in current for dep in dependencies):
                continue
            fingerprint = task_fingerprint(task.function_name, task.kwargs, record.reads,
                                           [current[dep] for dep in dependencies], output_folder=status.path.parent)
            if fingerprint == record.fingerprint:
                current[name] = fingerprint
        return current

    def missing_prerequisites(self, groups: list[str], status: "TaskStatus") -> list[Task]:
        """Tasks of the groups before ``groups`` whose outputs the selected tasks need and that are not up to
        date (never run, failed, or made with other configuration values or inputs)."""
        current = self.up_to_date(status)
        selected = {name for name, task in self.tasks.items() if self.steps[task.step].group in groups}
        needed = {dep for name in selected for dep in self.tasks[name].all_dependencies if dep not in selected}
        return [self.tasks[name] for name in self.tasks if name in needed and name not in current]

    def check_prerequisites(self, groups: list[str], status: "TaskStatus") -> None:
        """Raise a :class:`ConfigError` naming the group to run first when the selected groups need outputs of
        earlier groups that are missing or out of date."""
        missing = self.missing_prerequisites(groups, status)
        if not missing:
            return
        first = min((self.groups.index(self.steps[task.step].group) for task in missing))
        group = self.groups[first]
        names = ", ".join(task.name for task in missing[:3]) + (f" and {len(missing) - 3} more"
                                                                 if len(missing) > 3 else "")
        raise ConfigError(f"chain.first_step = {groups[0]!r} needs the outputs of group '{group}', which are "
                          f"missing or were made with other settings or inputs (tasks {names}); run from "
                          f"chain.first_step: {group}")

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


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """What a finished task was made from: its fingerprint and the configuration keys it read."""

    fingerprint: str
    reads: tuple[str, ...]


class TaskStatus:
    """Persistent state of tasks (``IOTA2_tasks_status.txt`` in the output root), for ``-restart``.

    The file is a journal: one ``<state> <task name>`` line appended (and flushed to disk) per change, the
    last line of a task wins; a ``done`` line also holds the task's fingerprint and the configuration keys it
    read (``done <task> <fingerprint> <JSON list>``, see :mod:`iota2.core.fingerprint`); ``pending`` marks a
    task that a run without ``-restart`` is about to run again. Appending keeps the cost per task constant on runs of many thousands of
    tasks, and a run killed mid-write leaves at most one incomplete last line, which is ignored and removed
    before the next record (completed by a newline, ``done classification_T1_chunk_1`` cut from ``..._chunk_12``
    would read as another task's record).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.states: dict[str, str] = {}
        self.records: dict[str, TaskRecord] = {}
        self._cut_bytes = 0
        if self.path.exists():
            text = self.path.read_text(encoding="utf-8", errors="replace")
            lines = text.split("\n")
            for line in lines[:-1]:  # the last piece is empty, or a line cut by a kill: ignored
                state, _, rest = line.partition(" ")
                name, _, record = rest.partition(" ")
                if state not in ("done", "failed", "pending") or not name:
                    continue
                self.states[name] = state
                self.records.pop(name, None)
                fingerprint, _, reads = record.partition(" ")
                if state == "done" and fingerprint:
                    try:
                        self.records[name] = TaskRecord(fingerprint, tuple(json.loads(reads)))
                    except ValueError:
                        pass  # an unreadable record: the task counts as not up to date
            self._cut_bytes = len(lines[-1].encode("utf-8"))  # removed before the next record is appended

    def is_done(self, name: str) -> bool:
        return self.states.get(name) == "done"

    def set(self, name: str, state: str, fingerprint: str | None = None, reads: list[str] | None = None) -> None:
        """Record the state of a task (with, for ``done``, its fingerprint and the keys it read)."""
        line = f"{state} {name}"
        self.records.pop(name, None)
        if state == "done" and fingerprint:
            reads = list(reads or [])
            self.records[name] = TaskRecord(fingerprint, tuple(reads))
            line += f" {fingerprint} {json.dumps(reads, separators=(',', ':'))}"
        self.states[name] = state
        self._append([line])

    def invalidate(self, names: list[str]) -> None:
        """Mark tasks as to be run again (one write for all of them)."""
        names = [name for name in names if name in self.states]
        for name in names:
            self.states[name] = "pending"
            self.records.pop(name, None)
        if names:
            self._append([f"pending {name}" for name in names])

    def _append(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._cut_bytes:  # completed, the cut line could read as another task's record ("..._chunk_1")
            os.truncate(self.path, self.path.stat().st_size - self._cut_bytes)
            self._cut_bytes = 0
        with open(self.path, "a", encoding="utf-8") as journal:
            journal.write("".join(line + "\n" for line in lines))
            journal.flush()
            os.fsync(journal.fileno())

    def reset(self) -> None:
        """Forget every state."""
        self.states = {}
        self.records = {}
        self._cut_bytes = 0
        with atomic_output(self.path) as tmp:
            tmp.write_text("", encoding="utf-8")
