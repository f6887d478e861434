"""The task graph as a picture: ``iota2 -config c.yaml -execution_graph_files graph.svg``.

The graph the scheduler runs is drawn with its groups and steps as nested boxes (clusters), one node per task
(a tile, a region and run, a chunk ...) and one arrow per dependency. A real run has hundreds of tasks, so a
picture stays readable by collapsing:

* the chunk tasks of one tile in one step (tasks with a ``chunk`` argument, named ``..._chunk_<i>``) become one
  node ``T31TCJ: 26 chunks`` when there are more than :data:`MAX_CHUNK_NODES` of them;
* a step that still has more than :data:`MAX_STEP_NODES` nodes becomes one node ``<n> tasks``.

Arrows between collapsed nodes stand for every dependency between their tasks (drawn once).

Formats, by file extension: ``.dot`` (Graphviz text, written without Graphviz), ``.svg``, ``.png`` and ``.pdf``
(laid out by Graphviz ``dot`` when it is installed, e.g. Debian's ``graphviz`` package; otherwise by matplotlib
with a layered layout of its own: one column per step, in the order of the groups, and the tasks of a step
stacked in it). Files are written atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from iota2.core.errors import ConfigError
from iota2.core.graph import Graph
from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)

FORMATS = (".svg", ".png", ".pdf", ".dot")
"""File extensions of ``-execution_graph_files``."""

MAX_CHUNK_NODES = 8
"""Chunk tasks of one tile in one step drawn one by one; above this number they are one node with their count."""

MAX_STEP_NODES = 24
"""Nodes of one step drawn one by one (after the chunks are collapsed); above this number the step is one node."""

DOT_TIMEOUT_S = 120
"""Seconds Graphviz ``dot`` may take to lay out a picture before matplotlib draws it instead."""

GROUP_COLOURS = ("#e8f1fb", "#eaf6e6", "#fdf0e1", "#f3e9f7", "#fbe9ea", "#e6f5f4", "#f5f3e1", "#ececec")
"""Background of the group boxes, in group order (cycled)."""

NODE_COLOURS = ("#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#e15759", "#76b7b2", "#bab0ac", "#9c755f")
"""Outline of the task nodes, in group order (cycled)."""

_CHUNK = re.compile(r"_chunk_\d+")


@dataclasses.dataclass
class Node:
    """One box of the picture: a task, or tasks drawn together.

    Attributes
    ----------
    id
        Identifier in the picture (``n0``, ``n1`` ...).
    label
        Text of the box: the task's name without its step (``T31TCJ chunk 3``), ``T31TCJ: 26 chunks`` or
        ``120 tasks``.
    tasks
        Names of the tasks it stands for.
    """

    id: str
    label: str
    tasks: list[str]


@dataclasses.dataclass
class StepBox:
    """A step of the picture: its name, group, description and nodes."""

    name: str
    group: str
    description: str
    nodes: list[Node]


@dataclasses.dataclass
class GraphPicture:
    """What is drawn: the steps (in the order of the groups) with their nodes, and the arrows between nodes.

    Attributes
    ----------
    title
        Title of the picture (the builders' names).
    groups
        Group names in order, each with its builder's name when several builders are drawn.
    steps
        Steps with at least one task, in the order of their groups, then of the builder's declaration.
    edges
        ``(from node id, to node id)`` pairs, each once.
    tasks
        Number of tasks drawn.
    """

    title: str
    groups: list[str]
    steps: list[StepBox]
    edges: list[tuple[str, str]]
    tasks: int

    @property
    def nodes(self) -> list[Node]:
        return [node for step in self.steps for node in step.nodes]


def _short_label(task_name: str, step: str) -> str:
    """The task's name without its step's name, underscores as spaces (``T31TCJ chunk 3``)."""
    label = task_name[len(step) + 1:] if task_name.startswith(step + "_") else task_name
    return label.replace("_", " ") or step


def picture_of(graphs: list[tuple[str, Graph]], max_chunk_nodes: int = MAX_CHUNK_NODES,
               max_step_nodes: int = MAX_STEP_NODES) -> GraphPicture:
    """The nodes and arrows that draw ``graphs``.

    Parameters
    ----------
    graphs
        ``(builder name, graph)`` pairs: the graphs the scheduler runs (sub-graphs of the selected groups).
    max_chunk_nodes, max_step_nodes
        Collapsing thresholds (see the module's documentation).
    """
    several = len(graphs) > 1
    groups, steps, edges, total = [], [], [], 0
    counter = iter(range(10**9))
    for builder, graph in graphs:
        node_of: dict[str, str] = {}
        for group in graph.groups:
            shown = f"{builder}: {group}" if several else group
            group_steps = [step for step in graph.steps.values() if step.group == group]
            if any(graph.tasks_of_step(step.name) for step in group_steps):
                groups.append(shown)
            for step in group_steps:
                tasks = graph.tasks_of_step(step.name)
                if not tasks:
                    continue
                total += len(tasks)
                batches: dict[str, list] = {}
                for task in tasks:  # chunk tasks of one tile (and iteration ...) together, in graph order
                    key = _CHUNK.sub("", task.name) if "chunk" in task.kwargs else task.name
                    batches.setdefault(key, []).append(task)
                nodes = []
                for key, batch in batches.items():
                    if len(batch) > max_chunk_nodes:
                        where = _short_label(key, step.name)
                        label = f"{where}: {len(batch)} chunks" if where != step.name else f"{len(batch)} chunks"
                        nodes.append(Node(f"n{next(counter)}", label, [task.name for task in batch]))
                    else:
                        nodes.extend(Node(f"n{next(counter)}", _short_label(task.name, step.name), [task.name])
                                     for task in batch)
                if len(nodes) > max_step_nodes:
                    nodes = [Node(f"n{next(counter)}", f"{len(tasks)} tasks", [task.name for task in tasks])]
                for node in nodes:
                    for name in node.tasks:
                        node_of[name] = node.id
                steps.append(StepBox(step.name, shown, step.description, nodes))
        seen = set()
        for task in graph.tasks.values():
            for dep in task.dependencies:
                if dep not in node_of:
                    continue
                edge = (node_of[dep], node_of[task.name])
                if edge[0] != edge[1] and edge not in seen:
                    seen.add(edge)
                    edges.append(edge)
    title = "iota2 execution graph: " + ", ".join(builder for builder, _ in graphs)
    return GraphPicture(title, groups, steps, edges, total)


# ---------------------------------------------------------------------------------------------------- paths

def picture_paths(values: list[str] | None) -> list[Path]:
    """The files of ``-execution_graph_files``, checked before anything runs.

    Parameters
    ----------
    values
        The option's words; each may hold several paths separated by commas (``a.svg,b.png``).

    Raises
    ------
    ConfigError
        An unknown extension, a folder that does not exist or cannot be written, a path that is a folder.
    """
    paths = []
    for value in values or []:
        for word in re.split(r"[,\s]+", value):
            if not word:
                continue
            path = Path(word).expanduser()
            if path.suffix.lower() not in FORMATS:
                found = f"the extension '{path.suffix}'" if path.suffix else "no extension"
                raise ConfigError(f"-execution_graph_files: '{word}' has {found}; name the picture with one of "
                                  f"{', '.join(FORMATS)} (e.g. graph.svg)")
            folder = path.parent
            if not folder.is_dir():
                raise ConfigError(f"-execution_graph_files: the folder '{folder}' of '{word}' does not exist; create "
                                  "it or give a path in an existing folder")
            if path.is_dir():
                raise ConfigError(f"-execution_graph_files: '{word}' is a folder; give a file name such as "
                                  f"'{path / 'graph.svg'}'")
            if not os.access(folder, os.W_OK):
                raise ConfigError(f"-execution_graph_files: the folder '{folder}' of '{word}' is not writable; "
                                  "give a path in a folder you may write to")
            paths.append(path)
    if values is not None and not paths:
        raise ConfigError("-execution_graph_files: no file given; name one or more pictures, e.g. "
                          "-execution_graph_files graph.svg graph.dot")
    return paths


def write_pictures(paths: list[Path], graphs: list[tuple[str, Graph]], engine: str = "auto") -> list[Path]:
    """Draw ``graphs`` into every file of ``paths`` (format from the extension), atomically.

    Parameters
    ----------
    paths
        Files checked by :func:`picture_paths`.
    graphs
        ``(builder name, graph)`` pairs, see :func:`picture_of`.
    engine
        ``"auto"``: Graphviz ``dot`` when it is on the ``PATH``, else matplotlib; ``"dot"`` or ``"matplotlib"``
        to choose (``"dot"`` without Graphviz raises a :class:`ConfigError`).

    Returns
    -------
    list of Path
        The files written.
    """
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"engine {engine!r}: use 'auto', 'dot' or 'matplotlib'")
    dot = shutil.which("dot") if engine != "matplotlib" else None
    if engine == "dot" and dot is None:
        raise ConfigError("Graphviz 'dot' is not installed (Debian: apt-get install graphviz); the pictures can be "
                          "drawn by matplotlib instead")
    picture = picture_of(graphs)
    text = dot_text(picture)
    for path in paths:
        suffix = path.suffix.lower()
        with atomic_output(path) as tmp:
            if suffix == ".dot":
                tmp.write_text(text, encoding="utf-8")
            elif dot is None or not _render_with_dot(dot, text, suffix[1:], tmp):
                draw_matplotlib(picture, tmp, suffix[1:])
    return list(paths)


# ---------------------------------------------------------------------------------------------------- Graphviz

def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_text(picture: GraphPicture) -> str:
    """The picture in Graphviz's DOT language: a cluster per group holding a cluster per step."""
    lines = ["digraph iota2 {", f"  label={_dot_string(picture.title)}; labelloc=t; fontname=Helvetica;",
             "  rankdir=LR; newrank=true; ranksep=0.6; nodesep=0.15;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=10];',
             "  edge [color=\"#00000066\", arrowsize=0.6];"]
    for index, group in enumerate(picture.groups):
        colour = GROUP_COLOURS[index % len(GROUP_COLOURS)]
        outline = NODE_COLOURS[index % len(NODE_COLOURS)]
        lines.append(f"  subgraph cluster_group_{index} {{")
        lines.append(f"    label={_dot_string(group)}; style=filled; fillcolor={_dot_string(colour)}; "
                     "color=\"#999999\"; fontsize=14;")
        for number, step in enumerate(box for box in picture.steps if box.group == group):
            lines.append(f"    subgraph cluster_group_{index}_step_{number} {{")
            lines.append(f"      label={_dot_string(step.name)}; tooltip={_dot_string(step.description)}; "
                         "style=\"rounded,filled\"; fillcolor=white; color=\"#bbbbbb\"; fontsize=11;")
            for node in step.nodes:
                lines.append(f"      {node.id} [label={_dot_string(node.label)}, color={_dot_string(outline)}];")
            lines.append("    }")
        lines.append("  }")
    lines.extend(f"  {source} -> {target};" for source, target in picture.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _render_with_dot(dot: str, text: str, fmt: str, output: Path) -> bool:
    """Lay out and render with Graphviz; False (with a warning) when it fails, so that matplotlib draws."""
    try:
        subprocess.run([dot, f"-T{fmt}", "-o", str(output)], input=text.encode("utf-8"), check=True,
                       capture_output=True, timeout=DOT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = exc.stderr.decode(errors="replace").strip() if getattr(exc, "stderr", None) else str(exc)
        LOGGER.warning("Graphviz dot could not draw %s (%s); drawn by matplotlib instead", output.name,
                       detail.splitlines()[-1] if detail else type(exc).__name__)
        output.unlink(missing_ok=True)
        return False
    return output.exists() and output.stat().st_size > 0


# ---------------------------------------------------------------------------------------------------- matplotlib

def _plain(text: str) -> str:
    """``text`` shown as is by matplotlib (a ``$`` would start mathematical text)."""
    return text.replace("$", r"\$")


def draw_matplotlib(picture: GraphPicture, output: Path, fmt: str) -> None:
    """Draw the picture with matplotlib: a column per step, groups as coloured bands, arrows left to right.

    Text stays text in SVG (``svg.fonttype: none``), so a browser can search the step and task names.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, Rectangle

    columns = picture.steps
    tallest = max((len(step.nodes) for step in columns), default=1)
    width_in = max(6.0, 1.9 * len(columns) + 0.6)
    height_in = max(3.5, 0.42 * tallest + 2.2)
    position: dict[str, tuple[float, float]] = {}
    box_w, box_h = 0.82, 0.7
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        figure = Figure(figsize=(width_in, height_in))
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0.005, 0.005, 0.99, 0.93))
        axes.set_xlim(-0.55, max(len(columns), 1) - 0.45)
        axes.set_ylim(-tallest - 0.3, 2.3)
        axes.axis("off")
        figure.suptitle(_plain(picture.title), fontsize=12)
        group_index = {group: index for index, group in enumerate(picture.groups)}
        for group, index in group_index.items():  # coloured band behind the steps of each group
            where = [x for x, step in enumerate(columns) if step.group == group]
            if not where:
                continue
            axes.add_patch(Rectangle((min(where) - 0.48, -tallest - 0.2), max(where) - min(where) + 0.96,
                                     tallest + 2.4, facecolor=GROUP_COLOURS[index % len(GROUP_COLOURS)],
                                     edgecolor="#999999", linewidth=0.8, zorder=0))
            axes.text((min(where) + max(where)) / 2, 1.95, _plain(group), ha="center", va="center", fontsize=11,
                      fontweight="bold", zorder=3)
        for x, step in enumerate(columns):
            axes.text(x, 1.05, _plain(step.name), ha="center", va="center", fontsize=7 if len(step.name) > 16 else 8,
                      style="italic", zorder=3)
            outline = NODE_COLOURS[group_index[step.group] % len(NODE_COLOURS)]
            offset = (tallest - len(step.nodes)) / 2  # nodes centred in their column
            for row, node in enumerate(step.nodes):
                y = -(row + offset) - 0.5
                position[node.id] = (x, y)
                axes.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                              boxstyle="round,pad=0,rounding_size=0.08", facecolor="white",
                                              edgecolor=outline, linewidth=1.0, zorder=2))
                label = node.label if len(node.label) <= 22 else node.label[:21] + "…"
                axes.text(x, y, _plain(label), ha="center", va="center", fontsize=6.5, zorder=3)
        segments, heads = [], []
        for source, target in picture.edges:
            (x0, y0), (x1, y1) = position[source], position[target]
            start = (x0 + box_w / 2, y0) if x1 > x0 else (x0, y0 - box_h / 2)
            end = (x1 - box_w / 2, y1) if x1 > x0 else (x1, y1 + box_h / 2)
            segments.append((start, end))
            heads.append(end)
        if segments:
            axes.add_collection(LineCollection(segments, colors="#00000055", linewidths=0.6, zorder=1))
            axes.scatter([h[0] for h in heads], [h[1] for h in heads], marker=">", s=9, c="#00000088", zorder=1,
                         linewidths=0)
        axes.text(-0.5, -tallest - 0.25, f"{picture.tasks} tasks, {len(picture.nodes)} boxes, "
                  f"{len(picture.edges)} dependencies drawn", fontsize=7, va="bottom", color="#555555", zorder=3)
        figure.savefig(output, format=fmt, dpi=110)
