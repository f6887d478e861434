"""Bad input: one clear message naming the file or key, exit code 2 (1 for a failed task), nothing written."""

from __future__ import annotations

import shutil

import geopandas as gpd
import pytest
from shapely.geometry import box

from iota2.cli import main


def run(config, capsys) -> tuple[int, str]:
    code = main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"])
    return code, capsys.readouterr().err


def truth(s2_dataset) -> gpd.GeoDataFrame:
    return gpd.read_file(s2_dataset["ground_truth"])


def write_truth(frame, path):
    frame.to_file(path)
    return str(path)


@pytest.mark.parametrize("sections, message", [
    ({"builders": {"builders_class_name": ["i2_clasification"]}}, "did you mean 'i2_classification'"),
    ({"builders": {"builders_class_name": ["i2_vectorization"]}},
     "'i2_vectorization' (the vectorization builder) is not available"),
    ({"scikit_models_parameters": {"model_type": "RandomForest"}}, "not a registered classifier"),
    ({"scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_trees": 3}}, "n_trees not accepted"),
    ({"scikit_models_parameters": {"model_type": "SVC", "cross_validation_parameters": {"c": [1, 10]}}},
     "cross_validation_parameters: c not accepted by SVC"),
    ({"arg_train": {"classifier": "sharkrf"}}, "model_type: RandomForestClassifier"),
    ({"arg_train": {"classifier": "forest"}}, "neither one of OTB's classifiers"),
    ({"arg_train": {"sample_selection": {"strategy": "constant"}}}, "strategy.constant.nb"),
    ({"chain": {"data_field": "CODE"}}, "no field 'CODE'"),
    ({"chain": {"s2_path": "/nonexistent/s2"}}, "/nonexistent/s2"),
    ({"chain": {"first_step": "writing"}}, "chain.first_step = 'writing'"),
    ({"sensors_data_interpolation": {"write_outputs": True}}, "write_outputs: not available"),
    ({"arg_train": {"deep_learning_parameters": {"dl_name": "MLPClassifer", "epochs": 200,
                                                 "model_selection_criterion": "fscore"}}}, "LTAEClassifier"),
    ({"arg_train": {"deep_learning_parameters": {"dl_name": "MLPClassifier", "epochs": 0}}}, "epochs"),
    ({"arg_train": {"deep_learning_parameters": {"dl_name": "MLPClassifier",
                                                 "model_selection_criterion": "f1"}}}, "fscore"),
])
def test_config_errors(tmp_path, make_config, capsys, sections, message):
    config = make_config(**sections)
    code, err = run(config, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_keys_checked_by_the_builder_name_the_configuration_file(make_config, capsys):
    config = make_config(arg_train={"sample_selection": {"stratgy": "constant"}})
    code, err = run(config, capsys)
    assert code == 2 and f"{config}: unknown key arg_train.sample_selection.stratgy" in err
    assert "did you mean 'strategy'" in err and "per_models" not in err


def test_ground_truth_not_polygons(tmp_path, make_config, s2_dataset, capsys):
    frame = truth(s2_dataset)
    points = gpd.GeoDataFrame({"code": frame["code"]}, geometry=frame.geometry.centroid, crs=frame.crs)
    code, err = run(make_config(chain={"ground_truth": write_truth(points, tmp_path / "pts.shp")}), capsys)
    assert code == 2 and "must contain polygons, found Point" in err and "pts.shp" in err


@pytest.mark.parametrize("values, message", [
    (lambda f: f["code"].where(f.index != 0, 0), "label 0 or negative"),
    (lambda f: f["code"].astype(float) + 0.5, "non-integer labels"),
    (lambda f: f["code"].astype(str) + "x", "must hold integer class labels"),
])
def test_bad_labels(tmp_path, make_config, s2_dataset, capsys, values, message):
    frame = truth(s2_dataset)
    frame["code"] = values(frame)
    code, err = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "gt.shp")}), capsys)
    assert code == 2 and message in err and "gt.shp" in err


def test_overlapping_polygons_of_different_classes(tmp_path, make_config, s2_dataset, capsys):
    frame = truth(s2_dataset)
    first = frame.iloc[[0]].copy()
    first["code"] = frame["code"].iloc[0] % 8 + 1
    frame = gpd.GeoDataFrame(gpd.pd.concat([frame, first], ignore_index=True), crs=frame.crs)
    code, err = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "gt.shp")}), capsys)
    assert code == 2 and "polygons of different classes overlap" in err


def test_ground_truth_outside_tiles(tmp_path, make_config, s2_dataset, capsys):
    frame = truth(s2_dataset)
    frame["geometry"] = frame.geometry.translate(xoff=1e6)
    code, err = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "far.shp")}), capsys)
    assert code == 2 and "intersects the tiles" in err


def test_crs_mismatch_is_reprojected(tmp_path, make_config, s2_dataset, capsys, caplog):
    frame = truth(s2_dataset).to_crs("EPSG:4326")
    code, _ = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "wgs84.gpkg")}), capsys)
    assert code == 0
    assert any("wgs84.gpkg" in r.getMessage() and "reprojected" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "out" / "final" / "RESULTS.txt").exists()


def test_tile_folder_without_products(tmp_path, make_config, s2_dataset, capsys):
    s2 = tmp_path / "s2"
    shutil.copytree(s2_dataset["s2_path"], s2)
    for product in (s2 / "T31TDJ").iterdir():
        shutil.rmtree(product)
    code, err = run(make_config(chain={"s2_path": str(s2)}), capsys)
    assert code == 2 and "T31TDJ" in err and "no Sentinel-2" in err


def test_corrupt_geotiff(tmp_path, make_config, s2_dataset, capsys):
    s2 = tmp_path / "s2"
    shutil.copytree(s2_dataset["s2_path"], s2)
    band = sorted((s2 / "T31TCJ").glob("*/*_FRE_B4.tif"))[3]
    data = band.read_bytes()
    band.write_bytes(data[: len(data) // 2])
    code, err = run(make_config(chain={"s2_path": str(s2)}), capsys)
    assert code in (1, 2)
    assert band.name in err and ("corrupt" in err or "cannot be read" in err)
    assert not list((tmp_path / "out").rglob("*.tmp*")) if (tmp_path / "out").exists() else True
    assert not (tmp_path / "out" / "final" / "Classif_Seed_0.tif").exists()


def test_empty_class_after_selection(tmp_path, make_config, s2_dataset, capsys):
    frame = truth(s2_dataset)
    x0, y0 = frame.total_bounds[0] + 1000, frame.total_bounds[1] + 1000
    tiny = gpd.GeoDataFrame({"code": [9, 9]}, geometry=[box(x0 + 1, y0 + 1, x0 + 3, y0 + 3),
                                                        box(x0 + 201, y0 + 1, x0 + 203, y0 + 3)], crs=frame.crs)
    frame = frame[~frame.intersects(box(x0 - 50, y0 - 50, x0 + 260, y0 + 60))]
    frame = gpd.GeoDataFrame(gpd.pd.concat([frame, tiny], ignore_index=True), crs=frame.crs)
    code, err = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "gt.shp")}), capsys)
    assert code == 1
    assert "class(es) [9] have learning polygons but no pixel centre inside them" in err
    assert "selection_region_1_seed_0.log" in err


@pytest.mark.parametrize("key, content, message", [
    ("nomenclature_path", None, "chain.nomenclature_path"),
    ("nomenclature_path", "1:urban\n", "must be 'name:label'"),
    ("color_table", None, "chain.color_table"),
    ("color_table", "1 255 0\n", "must be 'label R G B'"),
    ("color_table", "1 300 0 0\n", "between 0 and 255"),
])
def test_class_files_are_checked_at_start(tmp_path, make_config, capsys, key, content, message):
    """A wrong nomenclature or colour table stops the run before any task, not at the reports."""
    path = tmp_path / "classes.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, err = run(make_config(chain={key: str(path)}), capsys)
    assert code == 2 and message in err and str(path) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_labels_missing_from_class_files_are_warned(tmp_path, make_config, s2_dataset, caplog):
    from iota2.builders.i2_classification import I2Classification
    from iota2.core.config import load_config

    lines = [line for line in open(s2_dataset["nomenclature"], encoding="utf-8") if not line.strip().endswith(":3")]
    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text("".join(lines), encoding="utf-8")
    builder = I2Classification(load_config(make_config(chain={"nomenclature_path": str(nomenclature)})), 1)
    builder.check_inputs()
    assert any("no line for label(s) 3 of the ground truth" in r.getMessage() and "nomenclature_path" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("make_path", [
    lambda tmp: tmp / "a_file.txt",
    lambda tmp: tmp / "a_file.txt" / "out",
])
def test_output_path_that_is_not_a_folder(tmp_path, make_config, capsys, make_path):
    (tmp_path / "a_file.txt").write_text("not a folder")
    code, err = run(make_config(chain={"output_path": str(make_path(tmp_path))}), capsys)
    assert code == 2 and "chain.output_path" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "a_file.txt").read_text() == "not a folder"


def test_truncated_shapefile_is_refused_at_start(tmp_path, make_config, s2_dataset, capsys):
    """A .shp cut in half reads without a GDAL error (half the polygons lose their geometry): refused."""
    path = tmp_path / "gt.shp"
    truth(s2_dataset).to_file(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, err = run(make_config(chain={"ground_truth": str(path)}), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(path) in err and "damaged" in err and "chain.ground_truth" in err
    assert not (tmp_path / "out").exists()


def test_label_above_the_map_range_is_refused_at_start(tmp_path, make_config, s2_dataset, capsys):
    frame = truth(s2_dataset)
    frame.loc[frame["code"] == 3, "code"] = 70000
    code, err = run(make_config(chain={"ground_truth": write_truth(frame, tmp_path / "gt.shp")}), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "70000" in err and "chain.data_field" in err and "chain.ground_truth" in err and "gt.shp" in err
    assert not (tmp_path / "out").exists()


def test_polygons_without_geometry_are_warned_once(tmp_path, make_config, s2_dataset, capsys, caplog):
    frame = truth(s2_dataset)
    frame.loc[[0, 5], "geometry"] = None
    config = make_config(chain={"ground_truth": write_truth(frame, tmp_path / "gt.shp"), "last_step": "sampling"})
    code, _ = run(config, capsys)
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if "no geometry" in r.getMessage()]
    assert len(warnings) == 1 and "gt.shp" in warnings[0] and f"2 of {len(frame)} features" in warnings[0]


def mask_dates(s2_dataset, tmp_path, tile, dates=None):
    """A copy of the Sentinel-2 products where every pixel of ``dates`` (all by default) of ``tile`` is cloudy."""
    import numpy as np
    import rasterio

    s2 = tmp_path / "s2"
    shutil.copytree(s2_dataset["s2_path"], s2)
    for clm in sorted((s2 / tile).glob("*/MASKS/*_CLM_R1.tif")):
        if dates is not None and not any(f"_{date}-" in clm.name for date in dates):
            continue
        with rasterio.open(clm, "r+") as dst:
            dst.write(np.ones((dst.height, dst.width), dst.dtypes[0]), 1)
    return str(s2)


def test_tile_with_every_observation_masked_is_refused(tmp_path, make_config, s2_dataset, capsys):
    """Gap-filling a tile without any clear observation gives zeros, hence a one-class map: the validity task
    refuses it, naming the tile, and no validity raster is written."""
    s2 = mask_dates(s2_dataset, tmp_path, "T31TDJ")
    code, err = run(make_config(chain={"s2_path": s2, "last_step": "init"}), capsys)
    assert code == 1
    assert "tile T31TDJ: every Sentinel-2" in err and "chain.list_tile" in err and "validity_T31TDJ" in err
    assert not (tmp_path / "out" / "features" / "T31TDJ" / "nbView.tif").exists()
    assert (tmp_path / "out" / "features" / "T31TCJ" / "nbView.tif").exists()


def test_date_without_clear_pixel_is_warned(tmp_path, make_config, s2_dataset, capsys, caplog):
    dates = s2_dataset["dates"]["T31TCJ"][3:5]
    s2 = mask_dates(s2_dataset, tmp_path, "T31TCJ", dates)
    code, _ = run(make_config(chain={"s2_path": s2, "last_step": "init"}), capsys)
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if "no clear pixel" in r.getMessage()]
    assert len(warnings) == 1
    assert "tile T31TCJ: 2 of 12 Sentinel-2 THEIA date(s)" in warnings[0] and ", ".join(dates) in warnings[0]
