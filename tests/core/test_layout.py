"""One output layout for every path a run writes: under the root, with the documented names, no builder needed."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iota2.core import graph, output_folder
from iota2.core.layout import OUTPUT_ENTRIES, OUTPUT_FOLDERS, OutputLayout

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"

SAMPLE_ARGUMENTS = {"tile": "T31TCJ", "region": "north-east", "run": 1, "chunk": 3, "step": "learning",
                    "task": "learning_region_1_seed_0", "subset": "learn", "samples_format": "sqlite",
                    "model_file": "model/model_1_seed_0.skops", "tiles": ["T31TCJ", "T31TDJ"],
                    "iteration": 2, "factor": 4}
SYMBOLIC_ARGUMENTS = {"tile": "T", "region": "R", "run": "S", "chunk": "i", "step": "<step>", "task": "<task>",
                      "iteration": "K", "factor": "f"}


def every_path(layout: OutputLayout, arguments: dict) -> dict[str, Path]:
    """Each public method / property of the layout called with ``arguments`` (by parameter name)."""
    found = {}
    for name, member in inspect.getmembers(type(layout)):
        if name.startswith("_") or name in ("root", "folders", "entries"):
            continue
        if isinstance(member, property):
            found[name] = getattr(layout, name)
            continue
        function = getattr(layout, name)
        parameters = inspect.signature(function).parameters
        if name in ("forest_of", "summary_of"):
            found[name] = function(layout.root / arguments["model_file"])
            continue
        value = function(**{p: arguments[p] for p in parameters if p in arguments})
        if isinstance(value, list):
            found.update({f"{name}[{index}]": path for index, path in enumerate(value)})
        else:
            found[name] = value
    return found


def documented_paths() -> set[str]:
    """The paths listed in docs/outputs.md (first column of its tree), with T, R, S and i as placeholders."""
    block = DOCS.read_text().split("```")[1]
    paths = set()
    for line in block.splitlines():
        if not line or line.startswith(" "):
            continue
        first, *rest = line.split()
        paths.add(first.rstrip(",").rstrip("/"))
        if first.endswith(","):  # "final/TMP/T_seed_S.csv, Classif_Seed_S.csv": the second in the same folder
            paths.add(str(Path(first).parent / rest[0]))
    return paths


def test_every_path_lies_under_the_root(tmp_path):
    layout = OutputLayout(str(tmp_path / "out"))
    paths = every_path(layout, SAMPLE_ARGUMENTS)
    assert len(paths) > 40
    for name, path in paths.items():
        assert isinstance(path, Path), name
        assert path.resolve().is_relative_to((tmp_path / "out").resolve()) and path != layout.root, name


def test_names_of_a_sample_tile_run_and_region(tmp_path):
    layout = OutputLayout(tmp_path)
    relative = {name: path.relative_to(tmp_path).as_posix() for name, path in every_path(layout, SAMPLE_ARGUMENTS)
                .items()}
    assert relative["final_classification"] == "final/Classif_Seed_1.tif"
    assert relative["final_color_indexed"] == "final/Classif_Seed_1_ColorIndexed.tif"
    assert relative["final_confidence"] == "final/Confidence_Seed_1.tif"
    assert relative["final_probability_map"] == "final/ProbabilityMap_seed_1.tif"
    assert relative["pixels_validity"] == "final/PixelsValidity.tif"
    assert relative["results"] == "final/RESULTS.txt"
    assert relative["confusion_figure"] == "final/Confusion_Matrix_Classif_Seed_1.png"
    assert relative["run_confusion"] == "final/TMP/Classif_Seed_1.csv"
    assert relative["tile_confusion"] == "final/TMP/T31TCJ_seed_1.csv"
    assert relative["model"] == "model/model_north-east_seed_1.skops"
    assert relative["model_forest"] == "model/model_north-east_seed_1_forest.npz"
    assert relative["model_summary"] == "model/model_north-east_seed_1.json"
    assert relative["samples"] == "learningSamples/Samples_region_north-east_seed1_learn.sqlite"
    assert relative["class_statistics"] == "learningSamples/class_statistics_seed1_learn.csv"
    assert relative["classif_chunk"] == "classif/chunks/T31TCJ_seed_1_chunk_3.tif"
    assert relative["tile_map"] == "classif/Classif_T31TCJ_seed_1.tif"
    assert relative["features_map_chunk_level"] == "customF/T31TCJ_chunk_3_x4.tif"
    assert relative["features_map_tile_level"] == "customF/T31TCJ_features_x4.vrt"
    assert relative["task_log"] == "logs/learning/learning_region_1_seed_0.log"
    assert relative["status_file"] == "IOTA2_tasks_status.txt"
    assert layout.samples("1", 0, "parquet").name == "Samples_region_1_seed0_learn.parquet"
    assert layout.classif_chunk("T31TCJ", 0, 2, proba=True).name == "PROBAMAP_T31TCJ_seed_0_chunk_2.tif"
    assert [layout.tile_map("T", 0, kind).name for kind in ("label", "confidence", "proba")] == \
        ["Classif_T_seed_0.tif", "T_confidence_seed_0.tif", "PROBAMAP_T_seed_0.tif"]
    assert OutputLayout.forest_of("/m/x.skops") == Path("/m/x_forest.npz")
    assert OutputLayout.summary_of("/m/x.skops") == Path("/m/x.json")


def test_every_documented_file_has_its_path_and_every_path_is_documented(tmp_path):
    layout = OutputLayout(tmp_path)
    symbolic = {path.relative_to(tmp_path).as_posix()
                for path in every_path(layout, {**SAMPLE_ARGUMENTS, **SYMBOLIC_ARGUMENTS, "tiles": ["T"]}).values()}
    symbolic |= {layout.samples("R", "S", "parquet").relative_to(tmp_path).as_posix(),
                 layout.classif_chunk("T", "S", "i", proba=True).relative_to(tmp_path).as_posix(),
                 layout.split_polygons("T", "S", "val").relative_to(tmp_path).as_posix()}
    symbolic |= {layout.tile_map("T", "S", kind).relative_to(tmp_path).as_posix() for kind in ("confidence", "proba")}
    documented = documented_paths()
    assert documented - symbolic == set()
    folders = {folder for folder in OUTPUT_FOLDERS} | {"features/T", "features/T/tmp", "logs/<step>", "classif/chunks"}
    helpers = {"model/model_1_seed_0_forest.npz", "model/model_1_seed_0.json",  # forest_of / summary_of a file
               "learningSamples/Samples_region_R_seedS_learn.parquet"}  # the doc describes the .parquet in words
    assert symbolic - documented - folders - helpers == set()


def test_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="confidence"):
        OutputLayout(tmp_path).tile_map("T31TCJ", 0, "probability")
    with pytest.raises(ValueError, match="'learn' or 'val'"):
        OutputLayout(tmp_path).split_polygons("T31TCJ", 0, "validation")


def test_folders_and_entries():
    assert OUTPUT_ENTRIES == ("classif", "dataAppVal", "features", "final", "formattingVectors", "learningSamples",
                              "logs", "model", "samplesSelection", "shapeRegion")
    assert OutputLayout.entries == OUTPUT_ENTRIES and OutputLayout.folders == OUTPUT_FOLDERS
    layout = OutputLayout("/out")
    assert layout.directories(["T1"])[-1] == Path("/out/features/T1/tmp")
    assert {p.relative_to("/out").parts[0] for p in layout.directories(["T1"])} == set(OUTPUT_ENTRIES)


def test_run_file_names_agree_with_the_core():
    layout = OutputLayout("/out")
    assert layout.status_file.name == graph.STATUS_FILE
    assert layout.marker.name == output_folder.MARKER and layout.lock.name == output_folder.LOCK
    assert layout.incomplete_note.name == output_folder.INCOMPLETE_NOTE
    assert layout.previous_final.name == output_folder.PREVIOUS_FINAL
    assert {layout.resolved_config.name, layout.driver_log.name, layout.marker.name,
            layout.previous_final.name} == set(output_folder.RUN_FILES)


def test_the_layout_needs_no_builder():
    imported = subprocess.run([sys.executable, "-c", "import sys, iota2.core.layout; "
                               "print(sorted(m for m in sys.modules if m.startswith('iota2.builders')))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]"



def test_no_builder_module_joins_an_output_folder_name():
    """The builders and the scheduler take their output paths from the layout."""
    names = "|".join(re.escape(folder.split("/")[-1]) for folder in OUTPUT_FOLDERS)
    pattern = re.compile(rf"""/ ["']({names})["']|["']({names})/""")
    package = Path(__file__).resolve().parents[2] / "iota2"
    offenders = [f"{path.relative_to(package)}:{number}" for path in sorted((package / "builders").glob("*.py"))
                 + [package / "core" / "scheduler.py"]
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
