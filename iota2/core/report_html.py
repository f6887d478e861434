"""The run report: ``final/report.html``, one self-contained HTML file that shows what a run made and how well.

Sections, each left out when the run has nothing for it (a learner without learning curves, a run stopped before
validation):

* **Maps**: the quicklooks of ``final/quicklooks/`` (class map with its legend, confidence, validity) and the
  legend as a table (label, name, colour).
* **Metrics over runs**: OA, kappa and mean F-score of each run; per-class precision, recall and F-score with
  their 95 % intervals over the runs (:func:`iota2.core.metrics.multi_run_summary`, cut to [0, 1] and marked as in
  ``RESULTS.txt``), as tables and a plot.
* **Confusion matrices**: each run's figure (``final/Confusion_Matrix_Classif_Seed_S.png``) and its counts
  (``final/TMP/Classif_Seed_S.csv``); object-based ones too after an OBIA run.
* **Area-adjusted accuracy** (``final/TMP/area_accuracy_seed_S.csv``, Olofsson et al. 2014).
* **Sampling**: the selected samples per class and region (``learningSamples/class_statistics_seed<S>_learn.csv``).
* **Learning curves** of the trained networks (``model/*_learning_curves.csv`` and their figures).
* **Time per step**, from the task logs (``logs/<step>/<task>.log``: the last attempt of each task).
* **Configuration**: ``config_resolved.yaml``.

The file needs nothing else to render: pictures are embedded as ``data:`` URIs (PNG, or SVG drawn by
matplotlib), the style sheet is inline, there is no JavaScript, and a Content-Security-Policy forbids the
browser to fetch anything. Every text read from a file (class names, configuration values, task names) is
HTML-escaped. Its size is bounded: pictures wider or taller than :data:`MAX_IMAGE_SIDE` are downsampled, and only
the first :data:`MAX_RUNS_PICTURED` runs and :data:`MAX_MODELS_PICTURED` models get pictures (the others get
their tables). It is written atomically (:func:`iota2.core.raster.atomic_output`).
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime
import html
import io
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.legend import class_legend
from iota2.core.metrics import coefficients, multi_run_summary, read_confusion_csv
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.core.quicklook import quicklook_path
from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)


MAX_IMAGE_SIDE = 1400
"""Largest side, in pixels, of an embedded picture (larger ones are downsampled; the quicklooks fit)."""

MAX_RUNS_PICTURED = 10
"""Runs whose quicklooks and confusion figures are embedded; the others get their tables only."""

MAX_MODELS_PICTURED = 12
"""Models whose learning curves are embedded; the others are named."""

MAX_CONFIG_CHARS = 200_000
"""Characters of ``config_resolved.yaml`` shown (a longer file is cut, and the report says so)."""

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""The report's policy: no script, no request; pictures from ``data:`` URIs and the inline style sheet only."""

_STYLE = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 0 auto; max-width: 1360px;
       padding: 0 24px 40px; color: #1d2733; background: #ffffff; }
header { border-bottom: 3px solid #2f6f4f; margin-bottom: 12px; }
h1 { color: #2f6f4f; margin: 18px 0 4px; }
h2 { color: #ffffff; background: #2f6f4f; padding: 6px 10px; margin-top: 32px; border-radius: 3px; }
h3 { color: #2f6f4f; margin: 18px 0 6px; }
nav ul { list-style: none; padding: 0; margin: 8px 0 12px; }
nav li { display: inline-block; margin: 0 14px 4px 0; }
nav a { color: #2f6f4f; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border: 1px solid #c5ccd3; padding: 3px 8px; text-align: right; }
th { background: #e8eef0; }
td.name, th.name { text-align: left; }
tr.total td { font-weight: bold; background: #f3f5f7; }
figure { display: inline-block; margin: 6px 12px 12px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #d6dbe0; }
figcaption { font-size: 12px; color: #4a5663; }
pre { background: #f5f7f8; border: 1px solid #d6dbe0; padding: 10px; font-size: 12px; overflow-x: auto; }
.swatch { display: inline-block; width: 28px; height: 14px; border: 1px solid #333; vertical-align: middle; }
.note { color: #4a5663; font-size: 13px; }
footer { margin-top: 36px; color: #6a7682; font-size: 12px; }
"""


def report_path(output_path: str | Path) -> Path:
    """``final/report.html`` under ``chain.output_path`` (:attr:`iota2.core.layout.OutputLayout.report_html`)."""
    return OutputLayout(output_path).report_html


@dataclasses.dataclass
class Section:
    """One part of the report: an anchor, a heading (``<h2>``) and its HTML body."""

    anchor: str
    title: str
    body: str


# ---------------------------------------------------------------------------------------------------------------------
# small HTML helpers
# ---------------------------------------------------------------------------------------------------------------------
def escape(value) -> str:
    """``value`` as HTML text (``& < > " '`` escaped)."""
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], names: int = 1,
           total_rows: Sequence[int] = ()) -> str:
    """An HTML table of already escaped cells; the first ``names`` columns are left-aligned text."""
    head = "".join(f'<th class="name">{cell}</th>' if index < names else f"<th>{cell}</th>"
                   for index, cell in enumerate(headers))
    body = []
    for number, row in enumerate(rows):
        cells = "".join(f'<td class="name">{cell}</td>' if index < names else f"<td>{cell}</td>"
                        for index, cell in enumerate(row))
        css = ' class="total"' if number in total_rows else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(data: bytes, mime: str, alt: str, caption: str = "") -> str:
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    figcaption = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{source}" alt="{escape(alt)}">{figcaption}</figure>'


def png_bytes(path: str | Path, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    """The bytes of a PNG picture, downsampled (Lanczos) when a side is longer than ``max_side`` pixels."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as picture:
            if max(picture.size) <= max_side and picture.format == "PNG":
                return path.read_bytes()
            picture = picture.convert("RGBA") if picture.mode not in ("RGB", "RGBA") else picture
            picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", optimize=True)
            return buffer.getvalue()
    except (OSError, ValueError) as exc:
        raise InputDataError(f"picture '{path}' cannot be read ({exc}); remove it or write it again by running its "
                             "step again") from exc


def _png(path: Path, alt: str, caption: str = "") -> str:
    return _image(png_bytes(path), "image/png", alt, caption)


def _svg(figure, alt: str, caption: str = "") -> str:
    """A matplotlib figure as an embedded SVG picture."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buffer = io.BytesIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return _image(buffer.getvalue(), "image/svg+xml", alt, caption)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _plain(text: str) -> str:
    """``text`` shown as is by matplotlib (a ``$`` would start mathematical text)."""
    return str(text).replace("$", r"\$")


def _number(value, digits: int = 3) -> str:
    value = float(value)
    return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"


def interval_text(estimate, half_width=None, low=None, high=None, digits: int = 3) -> str:
    """``estimate``, ``estimate ± h``, or ``estimate +up/−down`` when the interval ``estimate ± h`` was cut at a
    bound of its quantity (``low``/``high``: the cut interval), as in ``RESULTS.txt``; ``nan`` when undefined."""
    text = _number(estimate, digits)
    if half_width is None:
        return text
    estimate, half_width = float(estimate), float(half_width)
    if not (np.isfinite(estimate) and np.isfinite(half_width)):
        return f"{text} ± nan"
    low = estimate - half_width if low is None or not np.isfinite(float(low)) else float(low)
    high = estimate + half_width if high is None or not np.isfinite(float(high)) else float(high)
    up, down = high - estimate, estimate - low
    tolerance = 0.5 * 10.0 ** -(digits + 3) * max(1.0, abs(estimate))
    if abs(up - half_width) <= tolerance and abs(down - half_width) <= tolerance:
        return f"{text} ± {half_width:.{digits}f}"
    return f"{text} +{up:.{digits}f}/−{down:.{digits}f}"


# ---------------------------------------------------------------------------------------------------------------------
# reading the run's files
# ---------------------------------------------------------------------------------------------------------------------
def _read_csv(path: Path, what: str, columns: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV written by a step, with its ``columns``; a damaged file is an :class:`InputDataError`."""
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.DictReader(stream)
            rows = list(reader)
            fields = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"{what} '{path}' cannot be read ({exc}); run the step that writes it again") from exc
    missing = [column for column in columns if column not in fields]
    if missing:
        raise InputDataError(f"{what} '{path}' has no column {', '.join(missing)}: the file is damaged or was not "
                             "written by iota2; run the step that writes it again")
    return rows


def _float(row: dict, key: str, path: Path) -> float:
    text = row.get(key)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InputDataError(f"'{path}': column {key} holds {text!r}, not a number; the file is damaged, run the "
                             "step that writes it again") from None


def _confusions(paths: Sequence[Path]) -> tuple[list[np.ndarray], list[int]] | None:
    """The confusion matrices of the runs that have one, over the same labels (None when none has)."""
    found = [read_confusion_csv(path) for path in paths if path.is_file()]
    if not found:
        return None
    labels = sorted({label for _, run_labels in found for label in run_labels})
    matrices = []
    for matrix, run_labels in found:
        full = np.zeros((len(labels), len(labels)), dtype=np.float64)
        index = [labels.index(label) for label in run_labels]
        full[np.ix_(index, index)] = matrix
        matrices.append(full)
    return matrices, labels


@dataclasses.dataclass
class StepTime:
    """Time of the tasks of one step, from the last attempt recorded in each task's log."""

    step: str
    tasks: int = 0
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    longest: float = 0.0
    longest_task: str = ""
    first_start: datetime.datetime | None = None
    last_end: datetime.datetime | None = None

    @property
    def span(self) -> float | None:
        """Seconds from the first start to the last end of the step's tasks (None when unknown)."""
        if self.first_start is None or self.last_end is None:
            return None
        return max(0.0, (self.last_end - self.first_start).total_seconds())


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ iota2\.task: (start |done in ([0-9.]+) s|failed:)")


def _stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def step_times(logs: str | Path) -> list[StepTime]:
    """Time per step from the task logs (``logs/<step>/<task>.log``, see :func:`iota2.core.scheduler.run_task`).

    A log is appended to by every attempt and every run; the last attempt counts: its ``done in X s`` line gives the
    task's time, a ``failed:`` line counts it as failed, neither (a task under way) as neither. Steps are returned
    in the order they started.
    """
    steps = []
    for folder in sorted(path for path in Path(logs).glob("*") if path.is_dir()):
        timing = StepTime(folder.name)
        for log in sorted(folder.glob("*.log")):
            start = end = None
            seconds, state = None, "running"
            try:
                lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                match = _LOG_LINE.match(line)
                if not match:
                    continue
                if match.group(2) == "start ":
                    start, end, seconds, state = _stamp(match.group(1)), None, None, "running"
                elif match.group(3) is not None:
                    end, seconds, state = _stamp(match.group(1)), float(match.group(3)), "done"
                else:
                    end, state = _stamp(match.group(1)), "failed"
            if start is None:
                continue
            timing.tasks += 1
            timing.done += state == "done"
            timing.failed += state == "failed"
            if seconds is not None:
                timing.seconds += seconds
                if seconds >= timing.longest:
                    timing.longest, timing.longest_task = seconds, log.stem
            timing.first_start = start if timing.first_start is None else min(timing.first_start, start)
            if end is not None:
                timing.last_end = end if timing.last_end is None else max(timing.last_end, end)
        if timing.tasks:
            steps.append(timing)
    return sorted(steps, key=lambda timing: (timing.first_start, timing.step))


# ---------------------------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Run:
    """What every section needs: the layout, the runs, the class names and colours, the configuration."""

    layout: OutputLayout
    runs: int
    names: dict[int, str]
    colors: dict[int, tuple[int, int, int]]
    color_table: str | None
    config: dict
    confusion: tuple[list[np.ndarray], list[int]] | None

    def name(self, label: int) -> str:
        return self.names.get(int(label), str(label))

    @property
    def pictured(self) -> range:
        return range(min(self.runs, MAX_RUNS_PICTURED))

    def more_runs_note(self, what: str) -> str:
        if self.runs <= MAX_RUNS_PICTURED:
            return ""
        return (f'<p class="note">{escape(what)} of runs {MAX_RUNS_PICTURED} to {self.runs - 1} are in '
                f"{escape(self.layout.final.as_posix())}/ (left out to keep this file small).</p>")


def _maps(run: _Run) -> Section | None:
    layout = run.layout
    parts = []
    for index in run.pictured:
        pictures = [(quicklook_path(layout, layout.final_classification(index)), f"Classification, run {index}"),
                    (quicklook_path(layout, layout.final_confidence(index)), f"Confidence, run {index}")]
        found = [_png(path, caption, f"{caption} ({path.name})") for path, caption in pictures if path.is_file()]
        if found:
            parts.append(f"<h3>Run {index}</h3>" + "".join(found))
    validity = quicklook_path(layout, layout.pixels_validity)
    if validity.is_file():
        parts.append("<h3>Pixel validity</h3>" + _png(validity, "Pixel validity",
                                                      f"Clear observations per pixel ({validity.name})"))
    if not parts:
        return None
    labels = sorted(set(run.names) | set(run.confusion[1] if run.confusion else []))
    if labels:
        legend = class_legend(labels, run.names, run.colors, run.color_table)
        rows = [[escape(entry.name), str(entry.label), f'<span class="swatch" style="background:{entry.hex}"></span>']
                for entry in legend.entries]
        parts.insert(0, "<h3>Legend</h3>" + _table(["Class", "Label", "Colour"], rows))
    return Section("maps", "Maps", "".join(parts) + run.more_runs_note("Quicklooks"))


def _metrics_plot(summary: dict, names: list[str]) -> str:
    figure = _figure(min(16.0, 4.5 + 0.55 * len(names)), 4.2)
    grid = figure.add_gridspec(1, 2, width_ratios=[1.0, max(2.0, 0.45 * len(names))])
    runs = summary["runs"]
    axes = figure.add_subplot(grid[0, 0])
    for position, key, label in ((0, "oa", "OA"), (1, "kappa", "kappa")):
        values = [per_run[key] for per_run in summary["per_run"]]
        axes.plot([position] * runs, values, "o", color="#9aa5b1", markersize=4)
        mean = summary[key]["mean"]
        if summary[key]["half_width"] is not None and np.isfinite(summary[key]["half_width"]):
            axes.errorbar([position], [mean], yerr=[[mean - summary[key]["low"]], [summary[key]["high"] - mean]],
                          fmt="s", color="#2f6f4f", capsize=6, label=label)
        else:
            axes.plot([position], [mean], "s", color="#2f6f4f")
    axes.set_xticks([0, 1], ["OA", "kappa"])
    axes.set_xlim(-0.6, 1.6)
    kappas = [per_run["kappa"] for per_run in summary["per_run"] if np.isfinite(per_run["kappa"])]
    axes.set_ylim(min([0.0, *kappas]) - 0.02, 1.02)
    axes.set_title("Overall (runs: grey dots)")
    axes.grid(axis="y", alpha=0.3)
    axes = figure.add_subplot(grid[0, 1])
    fscore = summary["fscore"]
    positions = np.arange(len(names))
    means = np.nan_to_num(np.asarray(fscore["mean"], dtype=np.float64))
    axes.bar(positions, means, color="#6fa287", width=0.6)
    if fscore["half_width"] is not None:
        low = np.asarray(fscore["low"], dtype=np.float64)
        high = np.asarray(fscore["high"], dtype=np.float64)
        known = np.isfinite(low) & np.isfinite(high)
        axes.errorbar(positions[known], means[known], yerr=[means[known] - low[known], high[known] - means[known]],
                      fmt="none", ecolor="#1d2733", capsize=4)
    for per_run in summary["per_run"]:
        axes.plot(positions, per_run["fscore"], "o", color="#9aa5b1", markersize=3)
    axes.set_xticks(positions, [_plain(name) for name in names], rotation=45 if len(names) > 4 else 0, ha="right"
                    if len(names) > 4 else "center", fontsize=9)
    axes.set_ylim(0, 1.02)
    axes.set_title("F-score per class" + (" (mean, 95 % interval over runs)" if runs > 1 else ""))
    axes.grid(axis="y", alpha=0.3)
    return _svg(figure, "Metrics over runs", "OA, kappa and per-class F-score; grey dots: the runs")


def _summary_value(summary: dict, key: str, index: int | None = None) -> str:
    values = summary[key]
    pick = (lambda value: value) if index is None else (lambda value: None if value is None else value[index])
    return interval_text(pick(values["mean"]), pick(values["half_width"]), pick(values["low"]), pick(values["high"]))


def _metrics(run: _Run) -> Section | None:
    if run.confusion is None:
        return None
    matrices, labels = run.confusion
    summary = multi_run_summary(matrices)
    names = [run.name(label) for label in labels]
    rows = []
    for index, per_run in enumerate(summary["per_run"]):
        rows.append([f"run {index}", _number(per_run["oa"]), _number(per_run["kappa"]),
                     _number(np.nanmean(per_run["fscore"]) if np.isfinite(per_run["fscore"]).any() else np.nan),
                     str(int(matrices[index].sum()))])
    interval = " (95 % interval)" if summary["runs"] > 1 else ""
    rows.append([f"mean{interval}", _summary_value(summary, "oa"), _summary_value(summary, "kappa"), "", ""])
    overall = _table(["Run", "OA", "Kappa", "Mean F-score", "Validation pixels"], rows,
                     total_rows=[len(rows) - 1])
    class_rows = [[escape(name), str(label), _summary_value(summary, "precision", index),
                   _summary_value(summary, "recall", index), _summary_value(summary, "fscore", index)]
                  for index, (label, name) in enumerate(zip(labels, names))]
    per_class = _table(["Class", "Label", "Precision", "Recall", "F-score"], class_rows, names=1)
    note = ""
    if summary["runs"] > 1:
        note = ('<p class="note">Values over runs: mean ± half-width of the 95 % Student-t interval of the mean '
                "(runs − 1 degrees of freedom); an interval that would leave [0, 1] (kappa: [−1, 1]) is cut at the "
                "bound and written +up/−down. nan: undefined (a class never produced or absent from the "
                "validation pixels).</p>")
    body = (f"<h3>Overall</h3>{overall}<h3>Per class</h3>{per_class}{note}{_metrics_plot(summary, names)}")
    return Section("metrics", "Metrics over runs", body)


def _matrix_table(matrix: np.ndarray, names: list[str]) -> str:
    rows = matrix.sum(axis=1)
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    body = []
    for index, name in enumerate(names):
        cells = []
        for value in matrix[index]:
            share = float(value / rows[index]) if rows[index] else 0.0
            cells.append(f'<td style="background:rgba(47,111,79,{0.85 * share:.3f});'
                         f'color:{"#ffffff" if share > 0.55 else "#1d2733"}">{int(round(value))}</td>')
        body.append(f'<tr><th class="name">{escape(name)}</th>{"".join(cells)}<td>{int(rows[index])}</td></tr>')
    return ('<table><thead><tr><th class="name">Reference \\ Produced</th>' + head + "<th>Total</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _confusion(run: _Run) -> Section | None:
    layout = run.layout
    parts = []
    for kind, csv_of, figure_of in (("pixels", layout.run_confusion, layout.confusion_figure),
                                    ("objects", layout.object_confusion, layout.object_confusion_figure)):
        for index in range(run.runs):
            path = csv_of(index)
            if not path.is_file():
                continue
            matrix, labels = read_confusion_csv(path)
            scores = coefficients(matrix)
            title = f"Run {index}" + (", object-based" if kind == "objects" else "")
            parts.append(f"<h3>{escape(title)}</h3><p>OA {_number(scores['oa'])}, kappa {_number(scores['kappa'])}, "
                         f"{int(matrix.sum())} validation {'objects' if kind == 'objects' else 'pixels'}.</p>")
            figure = figure_of(index)
            if index in run.pictured and figure.is_file():
                parts.append(_png(figure, f"Confusion matrix, {title}", figure.name))
            table = _matrix_table(np.asarray(matrix, dtype=np.float64), [run.name(label) for label in labels])
            parts.append(f"<details{' open' if not figure.is_file() else ''}><summary>Counts "
                         f"({escape(path.name)}: rows = reference, columns = produced)</summary>{table}</details>")
    if not parts:
        return None
    return Section("confusion", "Confusion matrices", "".join(parts) + run.more_runs_note("Confusion figures"))


_AREA_COLUMNS = ("label", "class", "map_pixels", "map_area_ha", "validation_pixels")
_AREA_ESTIMATES = (("area_ha", "Adjusted area (ha)", 1), ("area_proportion", "Adjusted area (proportion)", 3),
                   ("user_accuracy", "User's accuracy", 3), ("producer_accuracy", "Producer's accuracy", 3))


def _estimate(row: dict, key: str, path: Path, digits: int) -> str:
    values = [_float(row, f"{key}{suffix}", path) for suffix in ("", "_ci95", "_low", "_high")]
    return interval_text(*values, digits=digits)


def _area(run: _Run) -> Section | None:
    parts = []
    columns = _AREA_COLUMNS + tuple(f"{key}{suffix}" for key, _, _ in _AREA_ESTIMATES + (("overall_accuracy", "", 3),)
                                    for suffix in ("", "_ci95", "_low", "_high"))
    for index in range(run.runs):
        path = run.layout.area_accuracy(index)
        if not path.is_file():
            continue
        rows = _read_csv(path, "area-adjusted accuracy", columns)
        if not rows:
            continue
        table = []
        for row in rows:
            label = int(_float(row, "label", path))
            table.append([escape(run.names.get(label, row["class"])), str(label),
                          str(int(_float(row, "map_pixels", path))), _number(_float(row, "map_area_ha", path), 1),
                          str(int(_float(row, "validation_pixels", path)))]
                         + [_estimate(row, key, path, digits) for key, _, digits in _AREA_ESTIMATES])
        overall = _estimate(rows[0], "overall_accuracy", path, 3)
        total = sum(_float(row, "map_area_ha", path) for row in rows)
        parts.append(f"<h3>Run {index}</h3><p>{_number(total, 1)} ha classified; overall accuracy (area-adjusted): "
                     f"<b>{escape(overall)}</b></p>"
                     + _table(["Class", "Label", "Map pixels", "Mapped area (ha)", "Validation pixels"]
                              + [title for _, title, _ in _AREA_ESTIMATES], table))
    if not parts:
        return None
    note = ('<p class="note">Stratified estimators of Olofsson et al. (2014), the map classes as strata, with 95 % '
            "intervals (1.96 standard errors) cut at 0, 1 or the total area and then written +up/−down. They assume "
            "the validation pixels are a stratified random sample of the map, which the validation polygons are not: "
            "treat these figures as indicative (docs/validation.md).</p>")
    return Section("area", "Area-adjusted accuracy", note + "".join(parts))


def _sampling(run: _Run) -> Section | None:
    tables = []
    for index in range(run.runs):
        path = run.layout.class_statistics(index)
        if not path.is_file():
            continue
        try:
            with open(path, encoding="utf-8", newline="") as stream:
                rows = list(csv.reader(stream))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputDataError(f"class statistics '{path}' cannot be read ({exc}); run the class_statistics "
                                 "step again") from exc
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        total = [number for number, row in enumerate(body) if row and row[0] == "Total"]
        tables.append((index, header, body, total))
    if not tables:
        return None
    parts = []
    same = len(tables) > 1 and all((header, body) == (tables[0][1], tables[0][2]) for _, header, body, _ in tables)
    for position, (index, header, body, total) in enumerate(tables[:1] if same else tables):
        table = _table([escape(cell) for cell in header], [[escape(cell) for cell in row] for row in body],
                       total_rows=total)
        title = "Every run (the same samples per class)" if same else f"Run {index}"
        parts.append(f"<details{' open' if position == 0 else ''}><summary>{escape(title)}</summary>{table}"
                     "</details>")
    note = ('<p class="note">Learning samples selected per class and region '
            "(class_statistics_seed&lt;S&gt;_learn.csv).</p>")
    return Section("sampling", "Sampling", note + "".join(parts))


def _curves_from_csv(path: Path, stem: str) -> str:
    rows = _read_csv(path, "learning curves", ("epoch",))
    epochs = [_float(row, "epoch", path) for row in rows]
    figure = _figure(9.0, 3.6)
    for position, (title, keys) in enumerate((("Losses", ("train_loss", "validation_loss")),
                                              ("Validation", ("validation_oa", "validation_kappa",
                                                              "validation_fscore")))):
        axes = figure.add_subplot(1, 2, position + 1)
        for key in keys:
            if rows and key in rows[0]:
                axes.plot(epochs, [_float(row, key, path) for row in rows], marker=".", label=key.replace("_", " "))
        axes.set_xlabel("epoch")
        axes.set_title(_plain(f"{stem}: {title}"), fontsize=10)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _svg(figure, f"Learning curves of {stem}", path.name)


def _curves(run: _Run) -> Section | None:
    models = run.layout.models
    if not models.is_dir():
        return None
    found = sorted(models.rglob("*_learning_curves.csv"))
    if not found:
        return None
    parts = []
    for path in found[:MAX_MODELS_PICTURED]:
        stem = path.name[:-len("_learning_curves.csv")]
        pictures = [path.with_name(f"{stem}_{suffix}.png") for suffix in ("loss", "metrics")]
        if all(picture.is_file() for picture in pictures):
            body = "".join(_png(picture, f"{stem} {picture.stem.rsplit('_', 1)[-1]}", picture.name)
                           for picture in pictures)
        else:
            body = _curves_from_csv(path, stem)
        parts.append(f"<h3>{escape(path.relative_to(models).with_name(stem).as_posix())}</h3>{body}")
    if len(found) > MAX_MODELS_PICTURED:
        rest = ", ".join(escape(path.name) for path in found[MAX_MODELS_PICTURED:])
        parts.append(f'<p class="note">Not shown (see {escape(models.as_posix())}/): {rest}</p>')
    return Section("curves", "Learning curves", "".join(parts))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min"


def _timing(run: _Run) -> Section | None:
    if not run.layout.logs.is_dir():
        return None
    times = step_times(run.layout.logs)
    if not times:
        return None
    rows = [[escape(timing.step), str(timing.tasks), str(timing.done), str(timing.failed), _duration(timing.seconds),
             _duration(timing.span), f"{escape(timing.longest_task)} ({_duration(timing.longest)})"
             if timing.longest_task else ""] for timing in times]
    rows.append(["all steps", str(sum(t.tasks for t in times)), str(sum(t.done for t in times)),
                 str(sum(t.failed for t in times)), _duration(sum(t.seconds for t in times)), "", ""])
    table = _table(["Step", "Tasks", "Done", "Failed", "Task time (sum)", "From first start to last end",
                    "Longest task"], rows, total_rows=[len(rows) - 1])
    figure = _figure(9.0, 0.8 + 0.28 * len(times))
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(times))[::-1]
    axes.barh(positions, [timing.seconds for timing in times], color="#6fa287")
    axes.set_yticks(positions, [_plain(timing.step) for timing in times], fontsize=9)
    axes.set_xlabel("task time, summed over the step's tasks (s)")
    axes.grid(axis="x", alpha=0.3)
    note = ('<p class="note">From the task logs (logs/&lt;step&gt;/&lt;task&gt;.log), the last attempt of each task; '
            "tasks run in parallel, so a step's summed task time can exceed its span.</p>")
    return Section("timing", "Time per step", note + table + _svg(figure, "Time per step", "Task time per step"))


def _configuration(run: _Run) -> Section | None:
    path = run.layout.resolved_config
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    cut = ""
    if len(text) > MAX_CONFIG_CHARS:
        text = text[:MAX_CONFIG_CHARS]
        cut = f'<p class="note">Cut at {MAX_CONFIG_CHARS} characters: see {escape(path.as_posix())}.</p>'
    return Section("configuration", "Configuration", f"<details><summary>{escape(path.name)}: every key with its "
                   f"value, defaults filled in</summary><pre>{escape(text)}</pre>{cut}</details>")


SECTIONS: tuple[Callable[[_Run], Section | None], ...] = (_maps, _metrics, _confusion, _area, _sampling, _curves,
                                                         _timing, _configuration)
"""The sections, in the order of the report."""


# ---------------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------------
def _read_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _facts(run: _Run) -> list[tuple[str, str]]:
    config = run.config
    chain = config.get("chain") or {}
    facts = [("Output folder", str(run.layout.root)), ("Runs", str(run.runs))]
    builders = (config.get("builders") or {}).get("builders_class_name")
    if builders:
        facts.append(("Builder", ", ".join(map(str, builders if isinstance(builders, list) else [builders]))))
    tiles = chain.get("list_tile")
    if tiles:
        facts.append(("Tiles", " ".join(map(str, tiles)) if isinstance(tiles, list) else str(tiles)))
    train = config.get("arg_train") or {}
    deep = train.get("deep_learning_parameters")
    if isinstance(deep, dict) and deep.get("dl_name"):
        facts.append(("Learner", f"deep learning: {deep['dl_name']}"))
    elif isinstance(config.get("scikit_models_parameters"), dict):
        facts.append(("Learner", str(config["scikit_models_parameters"].get("model_type", ""))))
    if run.confusion is not None:
        facts.append(("Classes", str(len(run.confusion[1]))))
    return facts


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iota2")
    except PackageNotFoundError:
        return "unknown version"


def build_report(output_path: str | Path, runs: int, nomenclature_path: str | None = None,
                 color_table: str | None = None, title: str = "iota2 run report") -> str:
    """The HTML text of a run's report (see the module's documentation for its sections).

    Parameters
    ----------
    output_path
        ``chain.output_path`` of the run.
    runs
        ``arg_train.runs``.
    nomenclature_path
        ``chain.nomenclature_path`` (class names); None: labels as numbers.
    color_table
        ``chain.color_table`` (colours of the legend); None: matplotlib tab20 colours.
    title
        Title of the page.

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    InputDataError
        A file of the run is damaged (the message names it).
    """
    if int(runs) < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    layout = OutputLayout(output_path)
    run = _Run(layout=layout, runs=int(runs), names=read_nomenclature(nomenclature_path),
               colors=read_color_table(color_table), color_table=color_table,
               config=_read_config(layout.resolved_config),
               confusion=_confusions([layout.run_confusion(index) for index in range(int(runs))]))
    sections = [section for section in (make(run) for make in SECTIONS) if section is not None]
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    facts = _table(["", ""], [[escape(key), escape(value)] for key, value in _facts(run)], names=2)
    facts = facts.replace("<thead><tr><th class=\"name\"></th><th class=\"name\"></th></tr></thead>", "")
    contents = "".join(f'<li><a href="#{section.anchor}">{escape(section.title)}</a></li>' for section in sections)
    body = "".join(f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>{section.body}</section>'
                   for section in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<header><h1>{escape(title)}</h1>{facts}<nav><ul>{contents}</ul></nav></header>\n{body}\n"
            f"<footer>Written by iota2 {escape(_version())} on {escape(written)}.</footer>\n</body>\n</html>\n")


def write_report(output_path: str | Path, runs: int, nomenclature_path: str | None = None,
                 color_table: str | None = None, target: str | Path | None = None) -> Path:
    """Write the report of a run (:func:`build_report`) atomically.

    Parameters
    ----------
    output_path, runs, nomenclature_path, color_table
        As :func:`build_report`.
    target
        The HTML file; default ``final/report.html`` (:func:`report_path`).

    Returns
    -------
    Path
        The file written.
    """
    target = Path(target) if target is not None else report_path(output_path)
    text = build_report(output_path, runs, nomenclature_path, color_table)
    with atomic_output(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    LOGGER.info("report %s written (%.1f kB)", target, target.stat().st_size / 1024)
    return target
