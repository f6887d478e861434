"""The features-map builder (i2_features_map) run through the command line on generated data: chunks in
customF/, tile maps, the final map; first_step writing; its own journal; sensors and user features in the map."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.windows import Window

from iota2.cli import main
from iota2.core.config import load_config
from iota2.core.errors import ConfigError
from iota2.core.features import read_features
from iota2.core.layout import FEATURES_MAP_STATUS_FILE, STATUS_FILE, OutputLayout
from iota2.core.tiles import prepare_tiles

TILES = ("T31TCJ", "T31TDJ")
DATES = ["20180105", "20180306", "20180510", "20180704"]
NODATA = -10000.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two small THEIA-like tiles (40 x 40 pixels, 4 dates) with ground truth."""
    from iota2.datagen.sentinel2 import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("fmdata"), tiles=TILES, size=40, dates=DATES, seed=3)


LAPLACE_MODULE = """
from scipy.ndimage import laplace
import numpy as np

def laplace_ndvi(self):
    \"\"\"laplacian filter over date-averaged ndvi\"\"\"
    # gets ndvi of the chunk for all dates (x,y,t)
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    # average over dates
    mean_ndvi = np.mean(ndvi, axis=2)
    # apply laplace filter
    filtered = laplace(mean_ndvi, mode="constant")
    return (filtered, ["laplace_ndvi"])


def fails_on_small_chunks(self):
    ndvi = self.get_interpolated_Sentinel2_NDVI()
    if self.shape[0] < 40:
        raise ValueError("this chunk is too small")
    return ndvi, ["copy_" + str(index) for index in range(ndvi.shape[2])]
"""
"""The labwork's section 5.3 filter, as printed, and a function that fails on chunks (not on a whole tile)."""


def features_map_config(path: Path, dataset: dict, output: Path, **sections) -> Path:
    """The labwork's section 5.1 configuration (no ground truth), with ``sections`` merged in."""
    config = {"chain": {"output_path": str(output), "list_tile": " ".join(dataset["tiles"]),
                        "s2_path": str(dataset["s2_path"])},
              "builders": {"builders_class_name": ["i2_features_map"]},
              "external_features": {"functions": "get_soi"},
              "python_data_managing": {"chunk_size_mode": "split_number", "number_of_chunks": 4}}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(config: Path, *extra: str) -> int:
    return main(["-config", str(config), "-scheduler_type", "debug", "-no_progress", *extra])


def starts(out: Path, step: str, task: str) -> int:
    """How many times a task started (its log is appended at each run)."""
    log = out / "logs" / step / f"{task}.log"
    return log.read_text().count(" start ") if log.exists() else 0


def read_map(path: Path) -> tuple[np.ndarray, list[str], dict]:
    with rasterio.open(path) as src:
        return src.read(), list(src.descriptions), src.profile


def whole_tile_features(config_path: Path, tile: str) -> tuple[np.ndarray, list[str]]:
    """The features of a whole tile computed in one window, NODATA outside the footprint (bands, rows, cols)."""
    config = load_config(config_path)
    tiles = prepare_tiles(config)
    grid = tiles.grids[tile]
    block = read_features(config, tile, grid, Window(0, 0, grid.width, grid.height), tiles.dates_by_sensor)
    features = block.features.copy()
    features[~block.footprint] = NODATA
    return features.transpose(2, 0, 1), block.labels


# ------------------------------------------------------------------ paths, configuration, imports
def test_layout_names_the_features_map_files(tmp_path):
    layout = OutputLayout(tmp_path)
    assert layout.features_map_chunk("T31TCJ", 2) == tmp_path / "customF" / "T31TCJ_chunk_2.tif"
    assert layout.features_map_tile("T31TCJ") == tmp_path / "customF" / "T31TCJ_features.vrt"
    assert layout.final_features_map() == tmp_path / "final" / "features_map.tif"
    assert layout.final_features_map("soil") == layout.final_features_map("soil.tif") == tmp_path / "final" / "soil.tif"
    assert layout.features_map_status_file == tmp_path / FEATURES_MAP_STATUS_FILE != layout.status_file
    assert [p.relative_to(tmp_path).as_posix() for p in layout.directories(["T1"], "i2_features_map")] == \
        ["customF", "final", "features", "logs", "features/T1/tmp"]
    with pytest.raises(ValueError, match="i2_features_map"):
        layout.directories(["T1"], "i2_vectorization")


def test_builder_and_steps_import_nothing_of_the_classification_builder():
    classification = ["i2_classification", "classification", "samples", "sampling", "learning", "validation",
                      "mosaic", "ground_truth", "learner_settings", "tile_preparation"]
    code = ("import sys, iota2.builders.i2_features_map, iota2.builders.features_map, iota2.core.tile_steps; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('iota2.builders.'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "iota2.builders.features_map" in loaded
    assert [name for name in loaded if name.rsplit(".", 1)[-1] in classification] == []


@pytest.mark.parametrize("sections, message", [
    ({"external_features": {"output_name": "maps/soil.tif"}}, "external_features.output_name"),
    ({"external_features": {"output_name": "Classif_Seed_0"}}, "name of a classification product"),
    ({"external_features": {"output_name": "PixelsValidity.tif"}}, "name of a classification product"),
    ({"external_features": {"concat_mode": False, "functions": None}}, "external_features.concat_mode is False"),
    ({"chain": {"first_step": "sampling"}}, "chain.first_step = 'sampling' is not a group"),
    ({"chain": {"first_step": "writing"}}, "needs the outputs of group 'init'"),
    ({"external_features": {"functions": "get_sio"}}, "unknown function 'get_sio'"),
])
def test_bad_settings_fail_at_start_on_one_line(tmp_path, dataset, capsys, sections, message):
    config = features_map_config(tmp_path / "c.yaml", dataset, tmp_path / "out", **sections)
    assert run(config) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and str(config) in error[0]
    assert not (tmp_path / "out" / "customF").exists()


def test_a_configuration_without_sensor_gets_the_clear_error(tmp_path, dataset, capsys):
    config = features_map_config(tmp_path / "c.yaml", dataset, tmp_path / "out")
    raw = yaml.safe_load(config.read_text())
    del raw["chain"]["s2_path"]
    config.write_text(yaml.safe_dump(raw))
    assert run(config) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no sensor is enabled: set one of" in error[0] and "chain.s2_path" in error[0]


def test_a_classification_needs_its_ground_truth_the_features_map_does_not(tmp_path, dataset):
    from iota2.builders.i2_classification import I2Classification
    from iota2.builders.i2_features_map import I2FeaturesMap

    config = load_config(features_map_config(tmp_path / "c.yaml", dataset, tmp_path / "out"))
    I2FeaturesMap(config).check_config()
    assert I2FeaturesMap.mandatory_keys == []
    with pytest.raises(ConfigError, match="chain.ground_truth"):
        I2Classification(config).check_config()


def test_chunks_run_beside_the_validity_and_the_final_map_waits_for_both(tmp_path, dataset):
    from iota2.builders.i2_features_map import I2FeaturesMap

    config = load_config(features_map_config(tmp_path / "c.yaml", dataset, tmp_path / "out"))
    graph = I2FeaturesMap(config, 2).build_graph()
    chunks = graph.tasks_of_step("features_chunk")
    validities = [task.name for task in graph.tasks_of_step("features_map_validity")]
    assert len(chunks) > 1 and validities
    assert all(task.all_dependencies == ["features_map_directories"] for task in chunks)
    final = graph.tasks_of_step("features_map")[0]
    assert set(validities) <= set(final.all_dependencies)
    assert {task.name for task in graph.tasks_of_step("features_tile")} <= set(final.all_dependencies)


# ------------------------------------------------------------------ runs
@pytest.mark.slow
def test_labwork_feature_map_chunks_tiles_and_final_map(tmp_path, dataset, capsys):
    """Labwork 5.1: 4 chunks per tile in customF/, tile maps, final/features_map.tif; first/last step
    'writing' reruns only the writing group, with the new settings."""
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", dataset, out)
    assert run(config, "-only_summary") == 0
    summary = capsys.readouterr().out
    assert "Group init:" in summary and "Group writing:" in summary and "(8 tasks)" in summary
    assert run(config) == 0
    layout = OutputLayout(out)
    assert (out / FEATURES_MAP_STATUS_FILE).exists() and not (out / STATUS_FILE).exists()
    assert not (out / "model").exists() and not (out / "classif").exists()
    tile_maps = []
    for tile in TILES:
        expected, labels = whole_tile_features(config, tile)
        chunks = [read_map(layout.features_map_chunk(tile, index)) for index in range(4)]
        assert [chunk[0].shape[1] for chunk in chunks] == [10, 10, 10, 10]  # floor(linspace(0, 40, 5))
        assert all(chunk[1] == labels for chunk in chunks)
        values, descriptions, profile = read_map(layout.features_map_tile(tile))  # a VRT of the chunks
        assert descriptions == labels and profile["dtype"] == "float32" and profile["nodata"] == NODATA
        assert profile["driver"] == "VRT" and all(chunk[2]["compress"] == "zstd" for chunk in chunks)
        np.testing.assert_array_equal(values, expected)  # the chunks in their places
        assert np.array_equal(np.concatenate([chunk[0] for chunk in chunks], axis=1), values)
        tile_maps.append(values)
    final, descriptions, profile = read_map(layout.final_features_map())
    assert descriptions == labels and labels[0] == "sentinel2_b2_20180105" and "sentinel2_ndvi_20180105" in labels
    soi = [label for label in labels if label.startswith("soi_")]
    assert soi and labels[-len(soi):] == soi  # the function's features after iota2's (concat_mode True)
    assert final.shape == (len(labels), 40, 80) and profile["nodata"] == NODATA
    np.testing.assert_array_equal(final, np.concatenate(tile_maps, axis=2))  # tiles side by side, west to east

    # labwork 5.1: another function, without the spectral bands; only the writing group runs, reusing init
    raw = yaml.safe_load(config.read_text())
    raw["chain"].update(first_step="writing", last_step="writing")
    raw["external_features"].update(functions="get_ndvi", concat_mode=False)
    config.write_text(yaml.safe_dump(raw))
    assert run(config) == 0
    assert starts(out, "features_map_validity", "features_map_validity_T31TCJ") == 1
    assert starts(out, "features_chunk", "features_T31TCJ_chunk_3") == 2
    assert starts(out, "features_map", "features_map") == 2
    rerun, descriptions, _ = read_map(layout.final_features_map())
    assert descriptions == [label.replace("soi_", "ndvi_") for label in soi]
    assert rerun.shape == (len(soi), 40, 80) and not np.array_equal(rerun, final[-len(soi):])
    np.testing.assert_array_equal(rerun[:, :, :40], whole_tile_features(config, "T31TCJ")[0])

    # the indices without the reflectances: iota2's own features, rerun with -restart
    raw["external_features"] = {"functions": None}
    raw["iota2_feature_extraction"] = {"copy_input": False}
    config.write_text(yaml.safe_dump(raw))
    assert run(config, "-restart") == 0
    assert starts(out, "features_chunk", "features_T31TCJ_chunk_3") == 3
    rerun, descriptions, _ = read_map(layout.final_features_map())
    assert not [label for label in descriptions if re.match(r"sentinel2_b\d", label)] and "soi_20180105" not in \
        descriptions
    assert "sentinel2_brightness_20180105" in descriptions
    np.testing.assert_array_equal(rerun, final[[labels.index(label) for label in descriptions]])


@pytest.mark.slow
def test_sentinel1_and_user_features_are_bands_of_the_map(tmp_path, dataset):
    """Labwork 3.3 and 4: Sentinel-1 and precomputed user rasters (another CRS and resolution) in the map."""
    from iota2.datagen.sentinel1 import generate_s1
    from iota2.datagen.user_features import generate_user_features

    s1_data = generate_s1(tmp_path / "s1", dataset, seed=5)
    user = generate_user_features(tmp_path / "dem", dataset)
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", dataset, out, chain={"s1_path": s1_data["s1_config"],
                                                                        "user_feat_path": user["user_feat_path"]},
                                 userFeat={"arbo": "/*", "patterns": user["patterns"],
                                           "categorical_patterns": user["categorical_patterns"]},
                                 external_features={"output_name": "all_sensors.tif"})
    assert run(config) == 0
    values, labels, _ = read_map(out / "final" / "all_sensors.tif")
    s1 = [index for index, label in enumerate(labels) if label.startswith("sentinel1_")]
    s2 = [index for index, label in enumerate(labels) if label.startswith("sentinel2_")]
    user_bands = [index for index, label in enumerate(labels) if label.startswith("userfeatures_")]
    assert labels[s1[0]] == "sentinel1_des_vv_20180105" and "sentinel1_asc_vh_20180105" in labels
    assert [labels[index] for index in user_bands] == ["userfeatures_mnt", "userfeatures_pente",
                                                       "userfeatures_aspect", "userfeatures_landform"]
    assert max(s1) < min(s2) and max(s2) < min(user_bands)  # iota2's order: Sentinel-1, Sentinel-2, user rasters
    inside = values[0] != NODATA
    assert inside.mean() > 0.8
    assert (values[s1][:, inside] > 0).all()
    assert (values[labels.index("userfeatures_mnt")][inside] >= 150).all()
    np.testing.assert_array_equal(values[:, :, :40], whole_tile_features(config, "T31TCJ")[0])


@pytest.mark.slow
def test_a_features_map_leaves_a_classification_restart_alone(tmp_path, dataset):
    """Both builders in one output folder: each keeps its journal; -restart of the classification runs nothing."""
    from conftest import write_config

    out = tmp_path / "out"
    classification = write_config(tmp_path / "classification.yaml", dataset, out,
                                  arg_train={"sample_selection": {"sampler": "random", "strategy": "constant",
                                                                  "strategy.constant.nb": 20}})
    assert run(classification) == 0
    journal = (out / STATUS_FILE).read_bytes()
    features = features_map_config(tmp_path / "features.yaml", dataset, out)
    assert run(features) == 0
    assert (out / STATUS_FILE).read_bytes() == journal
    assert OutputLayout(out).final_features_map().exists()
    assert OutputLayout(out).final_classification(0).exists()  # not set aside by the features map's run
    assert not (out / "final_previous").exists()
    assert run(classification, "-restart") == 0
    for step, task in (("create_directories", "create_directories"), ("validity", "validity_T31TCJ"),
                       ("learning", "learning_region_1_seed_0"), ("classification", "classification_T31TDJ_chunk_1"),
                       ("report", "report")):
        assert starts(out, step, task) == 1, task
    assert run(features, "-restart") == 0
    assert starts(out, "features_chunk", "features_T31TDJ_chunk_0") == 1


@pytest.mark.slow
def test_both_builders_in_one_configuration_keep_each_others_products(tmp_path, dataset):
    """A classification and a feature map from one configuration; rerun from scratch, each builder's earlier
    products are set aside once, and remove_output_path deletes neither builder's new products."""
    from conftest import write_config

    out = tmp_path / "out"
    config = write_config(tmp_path / "both.yaml", dataset, out,
                          builders={"builders_class_name": ["i2_classification", "i2_features_map"]},
                          external_features={"functions": "get_ndvi", "concat_mode": False},
                          arg_train={"sample_selection": {"sampler": "random", "strategy": "constant",
                                                          "strategy.constant.nb": 20}})
    assert run(config) == 0
    layout = OutputLayout(out)
    assert layout.final_classification(0).exists() and layout.final_features_map().exists()
    assert not (out / "final_previous").exists()
    raw = yaml.safe_load(config.read_text())
    raw["chain"]["remove_output_path"] = True
    config.write_text(yaml.safe_dump(raw))
    assert run(config) == 0
    assert layout.final_classification(0).exists() and layout.final_features_map().exists()
    assert (out / STATUS_FILE).exists() and (out / "IOTA2_tasks_status_i2_features_map.txt").exists()
    _, labels, _ = read_map(layout.final_features_map())
    assert labels and all(label.startswith("ndvi_") for label in labels)
    # the classification samples learned the function's features only (concat_mode: False applies to both)
    assert starts(out, "learning", "learning_region_1_seed_0") == 1


@pytest.mark.slow
def test_remove_output_path_deletes_only_what_the_features_map_writes(tmp_path, dataset):
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", dataset, out, python_data_managing={"number_of_chunks": 1})
    assert run(config) == 0
    (out / "customF" / "stale_chunk.tif").write_bytes(b"x")
    (out / "notes").mkdir()  # not an iota2 output: kept
    (out / "model").mkdir()  # a classification's: the features map does not write it, so it stays
    raw = yaml.safe_load(config.read_text())
    raw["chain"]["remove_output_path"] = True
    config.write_text(yaml.safe_dump(raw))
    assert run(config) == 0
    assert (out / "notes").is_dir() and (out / "model").is_dir()
    assert not (out / "customF" / "stale_chunk.tif").exists()
    assert OutputLayout(out).final_features_map().exists()
    assert starts(out, "features_chunk", "features_T31TCJ_chunk_0") == 1  # the logs were deleted too


@pytest.mark.slow
def test_remove_tmp_files_deletes_chunks_and_tile_vrts_once_the_map_is_written(tmp_path, dataset):
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", dataset, out, chain={"remove_tmp_files": True},
                                 external_features={"functions": "get_ndvi", "concat_mode": False})
    assert run(config) == 0
    final, labels, profile = read_map(OutputLayout(out).final_features_map())
    assert final.shape == (len(labels), 40, 80) and profile["nodata"] == NODATA
    assert not list((out / "customF").iterdir())  # the map was encoded from the chunks, then they went
    np.testing.assert_array_equal(final[:, :, :40], whole_tile_features(config, "T31TCJ")[0])


CRASHING_MODULE = """
import ctypes

def crash_in_native_code(self):
    return ctypes.string_at(0), ["never"]  # reads address 0: a segmentation fault
"""


def one_chunk_config(tmp_path: Path, dataset: dict, source: str, function: str) -> tuple[Path, Path]:
    """``(output folder, configuration)`` of a one-chunk map of T31TCJ by ``function`` of the module ``source``."""
    module = tmp_path / "my_features.py"
    module.write_text(source)
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", dataset, out, chain={"list_tile": "T31TCJ"},
                                 external_features={"module": str(module), "functions": function},
                                 python_data_managing={"number_of_chunks": 1})
    return out, config


def test_a_native_crash_prints_where_each_thread_was(tmp_path, dataset):
    out, config = one_chunk_config(tmp_path, dataset, CRASHING_MODULE, "crash_in_native_code")
    result = subprocess.run([sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "debug",
                             "-no_progress"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Fatal Python error: Segmentation fault" in result.stderr, result.stderr[-2000:]
    assert "crash_in_native_code" in result.stderr and "write_chunk" in result.stderr, result.stderr[-2000:]
    assert not OutputLayout(out).final_features_map().exists()


@pytest.mark.slow
def test_a_failing_function_names_function_and_chunk_and_leaves_no_map(tmp_path, dataset, capsys):
    out, config = one_chunk_config(tmp_path, dataset, LAPLACE_MODULE, "fails_on_small_chunks")
    assert run(config) == 0  # one chunk of 40 rows: the function works
    assert OutputLayout(out).final_features_map().exists()
    raw = yaml.safe_load(config.read_text())
    raw["chain"].update(first_step="writing", last_step="writing")
    raw["python_data_managing"]["number_of_chunks"] = 4
    config.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    assert run(config) == 1
    error = capsys.readouterr().err
    line = next(line for line in error.splitlines() if line.startswith("iota2: error:"))
    assert "task 'features_T31TCJ_chunk_0' failed" in line and "'fails_on_small_chunks'" in line
    assert "this chunk is too small" in line and "rows 0-10" in line
    assert not OutputLayout(out).final_features_map().exists()  # neither the earlier map nor a partial one
    assert not OutputLayout(out).features_map_tile("T31TCJ").exists()
    assert not list((out / "final").glob(".*tmp*"))
    log = (out / "logs" / "features_chunk" / "features_T31TCJ_chunk_2.log").read_text()
    assert "Traceback" in log and "ValueError: this chunk is too small" in log


@pytest.mark.slow
def test_padding_removes_the_chunk_borders_of_a_spatial_filter(tmp_path, dataset):
    """Labwork 5.3: 4 chunks without padding differ from 1 chunk along the chunk borders only; padding_size 1
    (the Laplacian's reach) gives the 1-chunk map exactly."""
    module = tmp_path / "my_features.py"
    module.write_text(LAPLACE_MODULE)
    maps = {}
    for name, chunks, padding in (("whole", 1, 0), ("chunks", 4, 0), ("padded", 4, 1)):
        config = features_map_config(tmp_path / f"{name}.yaml", dataset, tmp_path / name,
                                     chain={"list_tile": "T31TCJ"},
                                     external_features={"module": str(module), "functions": "laplace_ndvi",
                                                        "concat_mode": False},
                                     python_data_managing={"number_of_chunks": chunks, "padding_size": padding})
        assert run(config) == 0
        maps[name], labels, _ = read_map(OutputLayout(tmp_path / name).final_features_map())
        assert labels == ["laplace_ndvi"]
    whole = maps["whole"][0]
    assert np.count_nonzero(whole) > 0.5 * whole.size
    borders = [9, 10, 19, 20, 29, 30]  # last and first rows of the chunks of 10 rows
    differ = np.flatnonzero((maps["chunks"][0] != whole).any(axis=1))
    assert set(differ) == set(borders)
    np.testing.assert_array_equal(maps["padded"], maps["whole"])


@pytest.mark.slow
def test_a_tile_larger_than_a_block_gets_its_overviews_from_its_chunks(tmp_path):
    """520 px: the final map has overviews at 2 and 4, which the chunks make (their rows start on multiples of 4);
    they equal GDAL's average overviews of the whole map, bit for bit."""
    from rasterio.enums import Resampling

    from iota2.datagen.sentinel2 import generate_dataset

    data = generate_dataset(tmp_path / "data", tiles=("T31TCJ",), size=520, dates=DATES[:3], seed=4)
    out = tmp_path / "out"
    config = features_map_config(tmp_path / "c.yaml", data, out, python_data_managing={"number_of_chunks": 3},
                                 external_features={"functions": "get_ndvi", "concat_mode": False})
    assert run(config) == 0
    layout = OutputLayout(out)
    heights = []
    for index in range(3):
        with rasterio.open(layout.features_map_chunk("T31TCJ", index)) as src:
            heights.append(src.height)
        for factor in (2, 4):
            with rasterio.open(layout.features_map_chunk_level("T31TCJ", index, factor)) as src:
                assert src.height * factor == heights[-1]
    assert sum(heights) == 520 and all(height % 4 == 0 for height in heights)  # 173, 173, 174 moved to 172, 176, 172
    with rasterio.open(layout.features_map_tile("T31TCJ")) as src:
        assert src.overviews(1) == [2, 4]
    final = layout.final_features_map()
    with rasterio.open(final) as src:
        values, profile = src.read(), src.profile
        assert src.overviews(1) == [2, 4] and profile["interleave"] == "band"
    reference = tmp_path / "reference.tif"
    with rasterio.open(reference, "w", **{**profile, "driver": "GTiff"}) as dst:
        dst.write(values)
    with rasterio.open(reference, "r+") as dst:
        dst.build_overviews([2, 4], Resampling.average)
    for level in (0, 1):
        with rasterio.open(final, overview_level=level) as ours, rasterio.open(reference, overview_level=level) as gdal:
            assert np.array_equal(ours.read(), gdal.read()), level
    np.testing.assert_array_equal(values, whole_tile_features(config, "T31TCJ")[0])
    raw = yaml.safe_load(config.read_text())
    raw["chain"].update(remove_tmp_files=True, first_step="writing", last_step="writing")
    config.write_text(yaml.safe_dump(raw))
    (out / "customF" / "T31TCJ_chunk_notes.txt").write_text("mine")  # not the run's: it stays
    assert run(config) == 0
    # chunks, their overviews and the VRTs, once the map is written; nothing else
    assert [path.name for path in (out / "customF").iterdir()] == ["T31TCJ_chunk_notes.txt"]
    with rasterio.open(final) as src:
        assert np.array_equal(src.read(), values) and src.overviews(1) == [2, 4]
