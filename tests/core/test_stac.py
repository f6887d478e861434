"""STAC items of the final maps and model cards: validated offline against the vendored schemas, relative links,
the nomenclature's classes and colours."""

from __future__ import annotations

import copy
import json
import shutil
import socket

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from iota2.builders.stac_items import (collection_path, date_range, map_item_path, model_item_path,
                                       write_features_map_item, write_run_items)
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.legend import class_legend
from iota2.core.metrics import coefficients, read_confusion_csv
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.core.stac import (CLASSIFICATION, COG, GEOTIFF, MLM, SCHEMA_FILES, SCHEMA_FOLDER, check_links, map_item,
                             validate, validate_file, validation_errors, write_stac)

ODD_NAME = 'crops "wheat" & <maize> \\ été'
DATES = {"sentinel_2": ["20180105", "20180614", "20181211"], "sentinel_1": ["20180110", "20181220"]}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test of this file runs without network: a connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("STAC code tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _write_map(path, data, cog: bool, nodata=0, crs="EPSG:32631", descriptions=None):
    profile = {"driver": "COG" if cog else "GTiff", "width": data.shape[-1], "height": data.shape[-2],
               "count": 1 if data.ndim == 2 else data.shape[0], "dtype": data.dtype.name, "nodata": nodata,
               "crs": crs, "transform": from_origin(300000, 4900020, 10, 10)}
    if not cog:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data if data.ndim == 3 else data[np.newaxis])
        if descriptions:
            dst.descriptions = descriptions
    return path


@pytest.fixture
def run_folder(tmp_path):
    """An output folder with the final maps of one run (real GeoTIFFs: the class map a COG, confidence a plain
    GeoTIFF), and a nomenclature whose third name holds JSON/XML-breaking characters."""
    out = tmp_path / "out"
    layout = OutputLayout(out)
    labels = np.random.default_rng(0).integers(0, 4, (300, 300)).astype("uint8")
    _write_map(layout.final_classification(0), labels, cog=True)
    _write_map(layout.final_confidence(0), (labels * 25).astype("uint8"), cog=False)
    _write_map(layout.pixels_validity, np.full((300, 300), 12, "uint8"), cog=True)
    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text(f"urban:1\nforest:2\n{ODD_NAME}:3\n", encoding="utf-8")
    colors = tmp_path / "colors.txt"
    colors.write_text("1 220 30 200\n2 20 120 30\n3 250 210 40\n", encoding="utf-8")
    return out, nomenclature, colors


def _legend(nomenclature, colors, labels=(1, 2, 3)):
    return class_legend(list(labels), read_nomenclature(nomenclature), read_color_table(colors), colors)


def test_vendored_schemas_cover_every_reference_but_projjson():
    """Every schema a written item uses is in the package, with its licence."""
    for name in SCHEMA_FILES.values():
        assert (SCHEMA_FOLDER / name).is_file(), name
    assert (SCHEMA_FOLDER / "LICENSE-Apache-2.0.txt").is_file()
    assert (SCHEMA_FOLDER / "README.md").is_file()
    text = "".join((SCHEMA_FOLDER / name).read_text(encoding="utf-8") for name in SCHEMA_FILES.values())
    remote = {ref.split("#")[0] for ref in __import__("re").findall(r'"\$ref":\s*"(https?://[^"]+)"', text)}
    missing = remote - set(SCHEMA_FILES) - {"http://json-schema.org/draft-07/schema"}
    assert missing == {"https://proj.org/schemas/v0.7/projjson.schema.json"}  # proj:projjson, never written


def test_class_map_item_validates_with_the_nomenclature_classes(run_folder):
    out, nomenclature, colors = run_folder
    layout = OutputLayout(out)
    raster = layout.final_classification(0)
    target = map_item_path(out, raster)
    item = map_item(raster, target, "20180105", "20181211", "classes", legend=_legend(nomenclature, colors))
    stac = item.to_dict(include_self_link=False, transform_hrefs=False)
    assert validation_errors(stac) == []
    assert CLASSIFICATION in stac["stac_extensions"]
    data = stac["assets"]["data"]
    assert data["href"] == "../Classif_Seed_0.tif"
    assert data["type"] == COG
    classes = data["classification:classes"]
    assert [c["value"] for c in classes] == [1, 2, 3]
    assert [c["name"] for c in classes] == ["urban", "forest", ODD_NAME]
    assert [c["color_hint"] for c in classes] == ["DC1EC8", "14781E", "FAD228"]
    props = stac["properties"]
    assert props["start_datetime"] == "2018-01-05T00:00:00Z" and props["end_datetime"] == "2018-12-11T00:00:00Z"
    assert props["datetime"] is None
    assert props["proj:code"] == "EPSG:32631" and props["proj:shape"] == [300, 300]
    assert props["proj:transform"] == [10.0, 0.0, 300000.0, 0.0, -10.0, 4900020.0]
    assert data["raster:bands"] == [{"data_type": "uint8", "spatial_resolution": 10.0, "sampling": "area",
                                     "nodata": 0}]
    to_wgs84 = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    corners = [to_wgs84.transform(x, y) for x in (300000, 303000) for y in (4897020, 4900020)]
    west, south, east, north = stac["bbox"]
    assert west == pytest.approx(min(c[0] for c in corners), abs=1e-6)
    assert north == pytest.approx(max(c[1] for c in corners), abs=1e-6)
    assert south < north and west < east
    ring = stac["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) > 5
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    assert area > 0  # counterclockwise (RFC 7946)


def test_plain_geotiff_is_not_called_cloud_optimized(run_folder):
    out, _, _ = run_folder
    raster = OutputLayout(out).final_confidence(0)
    item = map_item(raster, map_item_path(out, raster), "20180105", "20181211", "confidence")
    assert item.assets["data"].media_type == GEOTIFF
    assert "classification:classes" not in item.assets["data"].extra_fields


def test_a_band_interleaved_cog_is_recognised_by_its_layout_a_tiled_geotiff_is_not(tmp_path):
    from iota2.core.mosaic import mosaic_files
    from iota2.core.stac import is_cog

    values = np.random.default_rng(3).normal(size=(3, 600, 520)).astype("float32")
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=520, height=600, count=3, dtype="float32", crs="EPSG:32631",
                       transform=from_origin(0, 0, 10, 10), tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(values)
    cog = tmp_path / "cog.tif"
    mosaic_files([plain], cog, "float32", "ZSTD", nodata=-10000)
    with rasterio.open(cog) as src:
        assert is_cog(src) and src.profile["interleave"] == "band" and src.overviews(1) == [2, 4]
        assert "LAYOUT" not in src.tags(ns="IMAGE_STRUCTURE")  # no GDAL mark: the layout decides
        assert np.array_equal(src.read(), values)
    with rasterio.open(plain) as src:
        assert not is_cog(src)  # tiled, but no overviews and its directory after the blocks
    with rasterio.open(plain, "r+") as dst:
        dst.build_overviews([2, 4])
    with rasterio.open(plain) as src:
        assert src.overviews(1) == [2, 4] and not is_cog(src)  # overviews appended after the image's blocks


def test_odd_class_names_survive_json(run_folder, tmp_path):
    out, nomenclature, colors = run_folder
    raster = OutputLayout(out).final_classification(0)
    target = map_item_path(out, raster)
    item = map_item(raster, target, "20180105", "20181211", "classes", legend=_legend(nomenclature, colors))
    write_stac(target, item.to_dict(include_self_link=False, transform_hrefs=False))
    read = validate_file(target)
    assert read["assets"]["data"]["classification:classes"][2]["name"] == ODD_NAME
    assert ODD_NAME in target.read_text(encoding="utf-8").replace('\\"', '"').replace("\\\\", "\\")


@pytest.mark.parametrize("breakage, expected", [
    (lambda s: s["properties"].pop("datetime"), "datetime"),
    (lambda s: s.pop("bbox"), "bbox"),
    (lambda s: s["assets"]["data"].pop("href"), "href"),
    (lambda s: s["assets"]["data"]["classification:classes"][0].pop("value"), "value"),
    (lambda s: s["assets"]["data"]["classification:classes"][1].update(color_hint="#14781E"), "color_hint"),
    (lambda s: s["properties"].update({"proj:shape": [300]}), "proj:shape"),
    (lambda s: s["assets"]["data"]["raster:bands"][0].update(data_type="uint7"), "data_type"),
])
def test_a_broken_item_fails_validation(run_folder, breakage, expected):
    out, nomenclature, colors = run_folder
    raster = OutputLayout(out).final_classification(0)
    target = map_item_path(out, raster)
    stac = map_item(raster, target, "20180105", "20181211", "classes",
                    legend=_legend(nomenclature, colors)).to_dict(include_self_link=False, transform_hrefs=False)
    validate(stac, "valid")
    broken = copy.deepcopy(stac)
    breakage(broken)
    errors = validation_errors(broken)
    assert errors and any(expected in error for error in errors), errors
    with pytest.raises(InputDataError, match="Classif_Seed_0.json"):
        write_stac(target, broken)
    assert not target.exists() and not list(target.parent.glob(".*tmp*"))  # nothing half-written


def test_an_extension_without_vendored_schema_is_refused(run_folder):
    out, _, _ = run_folder
    raster = OutputLayout(out).final_confidence(0)
    stac = map_item(raster, map_item_path(out, raster), "20180105", "20181211",
                    "confidence").to_dict(include_self_link=False, transform_hrefs=False)
    stac["stac_extensions"].append("https://stac-extensions.github.io/eo/v1.1.0/schema.json")
    errors = validation_errors(stac)
    assert len(errors) == 1 and "eo/v1.1.0" in errors[0] and "offline" in errors[0]


def test_check_links_refuses_absolute_and_dangling_hrefs(run_folder):
    out, _, _ = run_folder
    raster = OutputLayout(out).final_confidence(0)
    target = map_item_path(out, raster)
    stac = map_item(raster, target, "20180105", "20181211",
                    "confidence").to_dict(include_self_link=False, transform_hrefs=False)
    write_stac(target, stac)
    assert check_links(target) == [raster.resolve()]
    stac["assets"]["data"]["href"] = str(raster.resolve())
    target.write_text(json.dumps(stac), encoding="utf-8")
    with pytest.raises(InputDataError, match="relative"):
        check_links(target)
    stac["assets"]["data"]["href"] = "../missing.tif"
    target.write_text(json.dumps(stac), encoding="utf-8")
    with pytest.raises(InputDataError, match="does not exist"):
        check_links(target)


def test_date_range_spans_every_sensor():
    assert date_range(DATES) == ("20180105", "20181220")
    assert date_range({}) == (None, None)


def test_features_map_item_names_its_bands(tmp_path):
    out = tmp_path / "out"
    raster = OutputLayout(out).final_features_map("my_features")
    _write_map(raster, np.zeros((3, 40, 50), "float32"), cog=True, nodata=-10000,
               descriptions=("sentinel2_ndvi_20180105", "sentinel2_ndvi_20180115", "dem"))
    written = write_features_map_item(str(out), "my_features.tif", DATES)
    for path in written:
        validate_file(path)
        check_links(path)
    item = json.loads(written[0].read_text(encoding="utf-8"))
    bands = item["assets"]["data"]["raster:bands"]
    assert [band["description"] for band in bands] == ["sentinel2_ndvi_20180105", "sentinel2_ndvi_20180115", "dem"]
    assert {band["nodata"] for band in bands} == {-10000} and {band["data_type"] for band in bands} == {"float32"}
    with pytest.raises(InputDataError, match="features map"):
        write_features_map_item(str(out), "other", DATES)


def test_missing_models_or_maps_give_one_clear_error(run_folder):
    out, nomenclature, colors = run_folder
    with pytest.raises(InputDataError, match="region 1 and run 0.*learning step"):
        write_run_items(str(out), 1, ["1"], [1, 2, 3], DATES, str(nomenclature), str(colors))
    with pytest.raises(InputDataError, match="dates"):
        write_run_items(str(out), 1, [], [1, 2, 3], {}, str(nomenclature), str(colors))


# ---------------------------------------------------------------------------- a real run

@pytest.mark.slow
def test_items_of_a_real_run_validate_offline_and_move_with_the_folder(make_config, s2_dataset, tmp_path):
    from iota2.cli import main

    config = make_config(output=tmp_path / "run" / "out")
    assert main(["-config", str(config), "-scheduler_type", "debug"]) == 0
    out = tmp_path / "run" / "out"
    labels = sorted(s2_dataset["classes"].values())
    written = write_run_items(str(out), 1, ["1"], labels, DATES, s2_dataset["nomenclature"],
                              s2_dataset["color_table"])
    layout = OutputLayout(out)
    assert collection_path(out) in written and model_item_path(out, "1", 0) in written
    assert map_item_path(out, layout.final_classification(0)) in written

    # moved elsewhere, every file still validates and every link resolves
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    for path in written:
        path = moved / path.relative_to(out)
        validate_file(path)
        check_links(path)
    collection = json.loads(collection_path(moved).read_text(encoding="utf-8"))
    items = sorted(link["href"] for link in collection["links"] if link["rel"] == "item")
    assert items == ["./Classif_Seed_0.json", "./Classif_Seed_0_ColorIndexed.json", "./Confidence_Seed_0.json",
                     "./PixelsValidity.json"]

    # the class map: the nomenclature's classes and the colour table's colours
    names = read_nomenclature(s2_dataset["nomenclature"])
    colours = read_color_table(s2_dataset["color_table"])
    classif = json.loads(map_item_path(moved, "Classif_Seed_0.tif").read_text(encoding="utf-8"))
    classes = classif["assets"]["data"]["classification:classes"]
    assert [(c["value"], c["name"]) for c in classes] == sorted(names.items())
    assert [c["color_hint"] for c in classes] == ["{:02X}{:02X}{:02X}".format(*colours[c["value"]]) for c in classes]
    assert classif["assets"]["data"]["type"] == COG  # the mosaic writes COGs
    assert any(link["rel"] == "derived_from" and link["href"] == "../../model/stac/model_1_seed_0.json"
               for link in classif["links"])

    # the model card
    card = json.loads(model_item_path(moved, "1", 0).read_text(encoding="utf-8"))
    summary = json.loads(OutputLayout(moved).model_summary("1", 0).read_text(encoding="utf-8"))
    props = card["properties"]
    assert MLM in card["stac_extensions"]
    assert props["mlm:framework"] == "scikit-learn" and props["mlm:architecture"] == "RandomForestClassifier"
    assert props["mlm:tasks"] == ["classification"] and props["mlm:hyperparameters"] == {"n_estimators": 30}
    assert props["mlm:input"][0]["bands"] == summary["feature_names"]
    assert props["mlm:input"][0]["input"]["shape"] == [-1, len(summary["feature_names"])]
    output_classes = props["mlm:output"][0]["classification:classes"]
    assert [(c["value"], c["name"]) for c in output_classes] == sorted(names.items())
    assert {c["value"]: c["count"] for c in props["iota2:training_samples_per_class"]} == \
        {int(k): v for k, v in summary["samples_per_class"].items()}
    matrix, _ = read_confusion_csv(OutputLayout(moved).run_confusion(0))
    expected = coefficients(matrix)
    assert props["iota2:validation"]["overall_accuracy"] == pytest.approx(expected["oa"], abs=1e-6)
    assert props["iota2:validation"]["kappa"] == pytest.approx(expected["kappa"], abs=1e-6)
    model_asset = card["assets"]["model"]
    assert model_asset["href"] == "../model_1_seed_0.skops" and "mlm:model" in model_asset["roles"]

    # a model card without a required mlm field fails
    for field in ("mlm:name", "mlm:input"):
        broken = copy.deepcopy(card)
        broken["properties"].pop(field)
        assert any(field in error for error in validation_errors(broken)), field
    broken = copy.deepcopy(card)
    broken["assets"]["model"].pop("mlm:artifact_type")
    assert validation_errors(broken)


def test_add_stac_tasks_adds_one_step_and_task_after_its_dependencies():
    from iota2.builders.stac_items import add_stac_tasks
    from iota2.core.graph import Graph

    graph = Graph(["init", "validation"])
    graph.add_step("report", "validation", "report")
    report = graph.add_task("report", "report", "iota2.builders.validation:report", {"runs": 1})
    task = add_stac_tasks(graph, "validation", {"output_path": "out", "runs": 1}, [report])
    assert graph.steps["stac"].group == "validation" and list(graph.steps)[-1] == "stac"
    assert task.dependencies == ["report"]
    assert task.resolve().__name__ == "write_run_items"
    features = Graph(["init", "writing"])
    assert add_stac_tasks(features, "writing", {}, [], features_map=True).resolve().__name__ == \
        "write_features_map_item"
