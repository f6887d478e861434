"""The HTML run report (final/report.html) of a small classification run through the command line: its sections,
values read from the run's files, escaping of class names, no network needed, rendering in headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from iota2.builders.report_task import write_html_report
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.metrics import coefficients, read_confusion_csv
from iota2.core.report_html import MAX_IMAGE_SIDE, interval_text, report_path, step_times

HOSTILE = '<script>alert("x")</script> & "quotes"'
"""A class name that breaks HTML unless escaped."""

SECTIONS = ["Maps", "Metrics over runs", "Confusion matrices", "Area-adjusted accuracy", "Sampling", "Time per step",
            "Configuration"]


class _Page(html.parser.HTMLParser):
    """Headings, tags, attributes and text of an HTML page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.section_ids: list[str] = []
        self.text: list[str] = []
        self._heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        if tag in self.headings:
            self._heading = tag
            self.headings[tag].append("")
        if tag == "section":
            self.section_ids.append(dict(attrs).get("id", ""))

    def handle_endtag(self, tag):
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self.headings[self._heading][-1] += data

    def images(self) -> list[tuple[str, bytes]]:
        """``(mime type, bytes)`` of every ``<img>``."""
        found = []
        for tag, name, value in self.attributes:
            if tag == "img" and name == "src":
                header, _, data = value.partition(",")
                found.append((header[len("data:"):].split(";")[0], base64.b64decode(data)))
        return found


@pytest.fixture(scope="module")
def classified(tmp_path_factory, s2_dataset):
    """A two-run classification of the generated tiles whose class 1 has a name that breaks HTML; then its
    report."""
    from conftest import write_config
    from iota2.cli import main

    root = tmp_path_factory.mktemp("report_run")
    nomenclature = root / "nomenclature.txt"
    lines = Path(s2_dataset["nomenclature"]).read_text().splitlines()
    nomenclature.write_text("\n".join([f"{HOSTILE}:1"] + [line for line in lines if not line.endswith(":1")]) + "\n")
    config = write_config(root / "config.yaml", s2_dataset, root / "out", arg_train={"runs": 2},
                          chain={"nomenclature_path": str(nomenclature)})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = root / "out"
    written = write_html_report(str(out), 2, str(nomenclature), str(s2_dataset["color_table"]))
    return {"out": out, "report": Path(written), "nomenclature": nomenclature,
            "colors": str(s2_dataset["color_table"])}


def _copy_run(source: Path, target: Path) -> Path:
    """The files of a run that the report reads, copied to ``target``."""
    for folder in ("final", "logs", "model"):
        shutil.copytree(source / folder, target / folder)
    (target / "learningSamples").mkdir(parents=True)
    for path in (source / "learningSamples").glob("class_statistics_*.csv"):
        shutil.copy(path, target / "learningSamples" / path.name)
    shutil.copy(source / "config_resolved.yaml", target / "config_resolved.yaml")
    return target


def test_the_report_shows_every_section_of_the_run_with_its_values(classified):
    out, report = classified["out"], classified["report"]
    assert report == out / "final" / "report.html" == report_path(out)
    text = report.read_text(encoding="utf-8")
    page = _Page(text)
    assert page.headings["h2"] == SECTIONS  # no learning curves: a random forest was trained
    assert page.section_ids == ["maps", "metrics", "confusion", "area", "sampling", "timing", "configuration"]
    links = [value for tag, name, value in page.attributes if tag == "a" and name == "href"]
    assert links == [f"#{anchor}" for anchor in page.section_ids]
    # quicklooks of both runs and of the validity, two confusion figures, the metrics and time plots
    mimes = [mime for mime, _ in page.images()]
    assert mimes.count("image/png") == 2 * 2 + 1 + 2 and mimes.count("image/svg+xml") == 2
    assert {"Run 0", "Run 1", "Pixel validity", "Legend"} <= set(page.headings["h3"])
    words = "".join(page.text)
    for run in (0, 1):
        matrix, _ = read_confusion_csv(OutputLayout(out).run_confusion(run))
        scores = coefficients(matrix)
        assert f"OA {scores['oa']:.3f}, kappa {scores['kappa']:.3f}, {int(matrix.sum())} validation pixels" in words
    # the area-adjusted OA of run 0, with its interval, as in its CSV
    import csv

    row = next(csv.DictReader(open(OutputLayout(out).area_accuracy(0), encoding="utf-8")))
    overall = interval_text(*(float(row[f"overall_accuracy{suffix}"]) for suffix in ("", "_ci95", "_low", "_high")))
    assert f"overall accuracy (area-adjusted): {overall}" in words
    # the sampling table: 150 samples of each class in every run
    assert "Every run (the same samples per class)" in words and "1200" in words
    # the configuration and the steps of the run
    assert "strategy.constant.nb: 150" in words
    timing = {t.step: t for t in step_times(out / "logs")}
    assert timing["learning"].tasks == timing["learning"].done == 2 and timing["extraction"].tasks == 4
    for step in ("validity", "learning", "classification", "mosaic", "confusion"):
        assert step in words


def test_the_report_needs_nothing_but_itself(classified):
    out, report = classified["out"], classified["report"]
    text = report.read_text(encoding="utf-8")
    page = _Page(text)
    for tag, name, value in page.attributes:
        if name == "src":
            assert value.startswith("data:image/"), (tag, value[:60])
        if name == "href":
            assert value.startswith("#"), value
        assert "http://" not in value and "https://" not in value, (tag, name, value[:80])
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(page.tags)
    policy = [value for tag, name, value in page.attributes if tag == "meta" and name == "content"
              and "default-src" in value]
    assert policy == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    assert [path.name for path in (out / "final").glob(".report*")] == []  # written atomically, nothing left
    assert report.stat().st_size < 3_000_000


def test_class_names_and_configuration_values_are_escaped(classified, tmp_path):
    text = classified["report"].read_text(encoding="utf-8")
    assert HOSTILE not in text and "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text
    page = _Page(text)
    assert HOSTILE in page.text  # shown as text, in the legend and the tables
    assert "script" not in page.tags
    # a configuration value (a path, a band name) with markup in it
    out = _copy_run(classified["out"], tmp_path / "out")
    config = out / "config_resolved.yaml"
    config.write_text(config.read_text() + 'extra:\n  note: "</pre><img src=x onerror=alert(1)> & more"\n')
    written = write_html_report(str(out), 2, str(classified["nomenclature"]))
    page = _Page(Path(written).read_text(encoding="utf-8"))
    assert not [value for tag, name, value in page.attributes if tag == "img" and not value.startswith("data:")
                and name == "src"]
    assert not [name for tag, name, _ in page.attributes if name == "onerror"]
    assert any('"</pre><img src=x onerror=alert(1)> & more"' in data for data in page.text)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("IOTA2_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is not installed: apt-get install -y chromium")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return found


def _run_chromium(arguments: list[str], profile: Path) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_headless_chromium_renders_the_report_with_its_sections(classified, tmp_path):
    from PIL import Image

    url = classified["report"].resolve().as_uri()
    shot = tmp_path / "report.png"
    done = _run_chromium([f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", url],
                         tmp_path / "profile")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    picture = np.asarray(Image.open(shot).convert("RGB"))
    assert picture.shape == (4000, 1280, 3)
    assert picture.std() > 30  # not a blank page
    packed = picture.astype(np.int32) // 8
    colours = np.unique((packed[..., 0] << 10) | (packed[..., 1] << 5) | packed[..., 2])
    assert len(colours) > 200, len(colours)
    # the class map's colours are on screen: the legend and the quicklook of run 0 are near the top
    assert np.all(picture[:2500] == (220, 30, 200), axis=-1).any()  # class 1 in the generated colour table
    # the page as Chromium built it: the sections' headings, and no element made from a class name
    dom = _run_chromium(["--dump-dom", url], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Page(dom.stdout)
    assert page.headings["h2"] == SECTIONS
    assert "script" not in page.tags and HOSTILE in page.text


def test_learning_curves_of_trained_networks_are_shown(classified, tmp_path):
    from iota2.plugins.dl_learner import CURVE_COLUMNS, write_learning_curves

    out = _copy_run(classified["out"], tmp_path / "out")
    history = [{"epoch": epoch, "train_loss": 1.0 / epoch, "validation_loss": 1.2 / epoch,
                "validation_oa": 0.5 + epoch / 10, "validation_kappa": 0.4 + epoch / 10,
                "validation_fscore": 0.45 + epoch / 10} for epoch in range(1, 5)]
    write_learning_curves(out / "model", "model_1_seed_0", history, best_epoch=3)
    write_learning_curves(out / "model", "model_1_seed_1", history, best_epoch=4)
    for suffix in ("loss", "metrics"):  # only the CSV: the report draws it
        (out / "model" / f"model_1_seed_1_{suffix}.png").unlink()
    assert CURVE_COLUMNS[0] == "epoch"
    page = _Page(Path(write_html_report(str(out), 2, str(classified["nomenclature"]))).read_text(encoding="utf-8"))
    assert page.headings["h2"] == SECTIONS[:5] + ["Learning curves"] + SECTIONS[5:]
    assert {"model_1_seed_0", "model_1_seed_1"} <= set(page.headings["h3"])
    alts = [value for tag, name, value in page.attributes if tag == "img" and name == "alt"]
    assert {"model_1_seed_0 loss", "model_1_seed_0 metrics", "Learning curves of model_1_seed_1"} <= set(alts)


def test_missing_parts_are_left_out_and_large_pictures_downsampled(classified, tmp_path):
    from PIL import Image

    out = _copy_run(classified["out"], tmp_path / "out")
    shutil.rmtree(out / "logs")
    for path in (out / "final" / "TMP").glob("area_accuracy_seed_*.csv"):
        path.unlink()
    big = np.random.default_rng(0).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
    Image.fromarray(big).save(out / "final" / "quicklooks" / "Classif_Seed_0.png")
    report = Path(write_html_report(str(out), 2, str(classified["nomenclature"]), classified["colors"]))
    page = _Page(report.read_text(encoding="utf-8"))
    assert page.headings["h2"] == ["Maps", "Metrics over runs", "Confusion matrices", "Sampling", "Configuration"]
    sizes = [Image.open(io.BytesIO(data)).size for mime, data in page.images() if mime == "image/png"]
    assert (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE * 2 // 3) in sizes  # the 3000 x 2000 picture
    assert max(max(size) for size in sizes) <= MAX_IMAGE_SIDE
    # a folder with no product at all: the configuration only
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(out / "config_resolved.yaml", empty / "config_resolved.yaml")
    page = _Page(Path(write_html_report(str(empty), 1)).read_text(encoding="utf-8"))
    assert page.headings["h2"] == ["Configuration"]


def test_a_damaged_file_is_one_error_naming_it_and_leaves_no_report(classified, tmp_path):
    out = _copy_run(classified["out"], tmp_path / "out")
    report_path(out).unlink()
    damaged = OutputLayout(out).area_accuracy(1)
    damaged.write_text("label,class\n1,urban\n")
    with pytest.raises(InputDataError, match="area_accuracy_seed_1.csv.*has no column map_pixels"):
        write_html_report(str(out), 2, str(classified["nomenclature"]))
    assert not report_path(out).exists()
    assert [path.name for path in (out / "final").glob(".report*")] == []


def test_intervals_are_written_as_in_results_txt():
    assert interval_text(0.5, 0.1, 0.4, 0.6) == "0.500 ± 0.100"
    assert interval_text(0.970, 0.284, 0.716, 1.0) == "0.970 +0.030/−0.254"
    assert interval_text(0.9) == "0.900"
    assert interval_text(float("nan"), 0.1) == "nan ± nan"
    assert interval_text(21158.0, 6158.0, 15000.0, 27316.0, digits=1) == "21158.0 ± 6158.0"


def test_time_per_step_counts_the_last_attempt_of_each_task(tmp_path):
    logs = tmp_path / "logs"
    (logs / "learning").mkdir(parents=True)
    (logs / "mosaic").mkdir()
    (logs / "learning" / "learning_region_1_seed_0.log").write_text(
        "2026-01-01 10:00:00,000 INFO iota2.task: start f({}), 2 thread(s)\n"
        "2026-01-01 10:00:05,000 ERROR iota2.task: failed:\nTraceback ...\n"
        "2026-01-01 10:01:00,000 INFO iota2.task: start f({}), 2 thread(s)\n"
        "2026-01-01 10:01:02,500 INFO iota2.task: done in 2.50 s\n")
    (logs / "learning" / "learning_region_1_seed_1.log").write_text(
        "2026-01-01 10:01:00,000 INFO iota2.task: start f({}), 2 thread(s)\n"
        "2026-01-01 10:01:04,000 INFO iota2.task: done in 4.00 s\n")
    (logs / "mosaic" / "mosaic_seed_0.log").write_text(
        "2026-01-01 10:02:00,000 INFO iota2.task: start f({}), 2 thread(s)\n"
        "2026-01-01 10:02:01,000 INFO iota2.task: done in 1.00 s\n"
        "2026-01-01 11:00:00,000 INFO iota2.task: start f({}), 2 thread(s)\n")
    learning, mosaic = step_times(logs)
    assert (learning.step, learning.tasks, learning.done, learning.failed) == ("learning", 2, 2, 0)
    assert learning.seconds == pytest.approx(6.5) and learning.longest_task == "learning_region_1_seed_1"
    assert learning.span == pytest.approx(4.0)
    assert (mosaic.tasks, mosaic.done, mosaic.seconds, mosaic.span) == (1, 0, 0.0, None)  # under way
