"""The OBIA builder (i2_obia): end-to-end runs on generated THEIA-like tiles, its rules on small tables, and bad
input refused at start through the command line."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio import features as rio_features
from rasterio.windows import Window
from shapely.geometry import box

from iota2.builders.i2_obia import region_order
from iota2.builders.obia import majority_labels, object_keys, owned_mask, region_of_objects
from iota2.cli import main
from iota2.core.raster import Grid

FINAL = ["Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif", "PixelsValidity.tif",
         "RESULTS.txt", "Confusion_Matrix_Classif_Seed_0.png", "Classif_Seed_0_objects.gpkg",
         "Confusion_Matrix_Classif_Seed_0_objects.png"]
PIXEL_PART = "Pixel-based validation"
OBJECT_PART = "Object-based validation"


def square_segmentation(dataset, path, crs: str, step: int = 10, offset: int = 5) -> gpd.GeoDataFrame:
    """Squares of ``step`` x ``step`` pixels over both tiles, shifted by ``offset`` pixels so that rows of them
    cross the chunk border (row 60) and the tile border; written to ``path`` in ``crs``. Returns them in the tiles'
    CRS."""
    with rasterio.open(dataset["class_map"]) as src:
        transform, crs_tiles, height, width = src.transform, src.crs, src.height, src.width
    size = transform.a
    squares = []
    for row in range(offset - step, height, step):
        for col in range(offset - step, width, step):
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + step, height), min(col + step, width)
            west, north = transform.c + c0 * size, transform.f - r0 * size
            squares.append(box(west, north - (r1 - r0) * size, west + (c1 - c0) * size, north))
    frame = gpd.GeoDataFrame({"id": np.arange(len(squares))}, geometry=squares, crs=crs_tiles)
    frame.to_crs(crs).to_file(path)
    return frame


def assert_constant_in_objects(classif_path, polygons: gpd.GeoDataFrame) -> int:
    """Every polygon's classified pixels hold one label; returns the number of polygons seen."""
    with rasterio.open(classif_path) as src:
        labels = src.read(1)
        burnt = rio_features.rasterize(zip(polygons.to_crs(src.crs).geometry, range(1, len(polygons) + 1)),
                                       out_shape=labels.shape, transform=src.transform, fill=0, dtype="int32")
    table = pd.DataFrame({"segment": burnt.ravel(), "label": labels.ravel()})
    table = table[(table["segment"] > 0) & (table["label"] > 0)]
    distinct = table.groupby("segment")["label"].nunique()
    assert (distinct == 1).all(), distinct[distinct > 1]
    return len(distinct)


def agreement_with_truth(classif_path, class_map_path) -> float:
    with rasterio.open(classif_path) as src:
        produced, bounds = src.read(1), src.bounds
    with rasterio.open(class_map_path) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        truth = src.read(1, window=window.round_offsets().round_lengths())
    valid = produced > 0
    return float((produced[valid] == truth[valid]).mean())


# ------------------------------------------------------------------ rules on small tables
def test_an_object_takes_the_class_covering_enough_of_it():
    truth = pd.DataFrame({"object": [1, 1, 2, 2, 3], "piece": [0, 1, 2, 3, 4], "pixels": [6, 3, 2, 2, 4],
                          "label": [5, 7, 5, 7, 9], "originfid": [10, 11, 12, 13, 14]})
    pixels = pd.Series({1: 10, 2: 4, 3: 10})
    labelled = majority_labels(truth, pixels, 0.5).set_index("object")
    assert labelled.loc[1, "label"] == 5 and labelled.loc[1, "originfid"] == 10
    assert labelled.loc[1, "coverage"] == pytest.approx(0.6)
    assert labelled.loc[2, "label"] == 5  # a tie goes to the smaller label, 2 of 4 pixels = 0.5
    assert 3 not in labelled.index  # 4 of 10 pixels: below 0.5
    assert 3 in majority_labels(truth, pixels, 0.4)["object"].tolist()
    assert majority_labels(truth.iloc[:0], pixels, 0.5).empty


def test_object_keys_regions_and_owned_pixels():
    ids = np.array([[0, 1], [2, 3]], np.uint32)
    assert object_keys(ids, 3, True).tolist() == [[0, 1], [2, 3]]
    keys = object_keys(ids, 1, False)
    assert keys[0, 0] == 0 and keys[0, 1] == (2 << 32) | 1 and len(set(keys.ravel().tolist())) == 4
    pairs = pd.DataFrame({"segment": [1, 1, 2, 3], "region": ["2", "10", "10", "north"]})
    assert region_order(["10", "2", "north"], None) == ["2", "10", "north"]
    assert region_of_objects(np.array([1, 2, 3, 4]), pairs, region_order(["10", "2", "north"], None)).tolist() == \
        ["2", "10", "north", ""]
    assert region_of_objects(np.array([1]), pairs, region_order(["10", "2", "north"], ["10"])).tolist() == ["10"]
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    first = Grid(CRS.from_epsg(32631), from_origin(0, 100, 10, 10), 10, 10)
    second = Grid(CRS.from_epsg(32631), from_origin(80, 100, 10, 10), 10, 10)  # overlaps the first by 2 columns
    owned = owned_mask(Window(0, 0, 10, 10), second, [first])
    assert not owned[:, :2].any() and owned[:, 2:].all()
    assert owned_mask(Window(0, 0, 10, 10), first, []).all()


# ------------------------------------------------------------------ whole chain
@pytest.mark.slow
def test_user_vector_segmentation_in_another_crs_with_another_learner(tmp_path, make_config, s2_dataset, caplog):
    """A user segmentation in EPSG:4326 (reprojected), squares crossing the chunk and tile borders: each object is
    classified once and its pixels hold one class; SVC learns the objects; probabilities and both reports."""
    squares = square_segmentation(s2_dataset, tmp_path / "squares.gpkg", "EPSG:4326")
    config = make_config(builders={"builders_class_name": ["i2_obia"]},
                         obia={"obia_segmentation_path": str(tmp_path / "squares.gpkg"),
                               "stats_used": ["mean", "min", "count"]},
                         scikit_models_parameters={"model_type": "SVC", "standardization": True},
                         arg_train={"sample_selection": {"sampler": "random", "strategy": "all"},
                                    "samples_format": "parquet"},
                         arg_classification={"enable_probability_map": True, "generate_final_probability_map": True})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    assert "reprojected" in caplog.text
    out = tmp_path / "out"
    for name in FINAL + ["ProbabilityMap_seed_0.tif"]:
        assert (out / "final" / name).stat().st_size > 0, name
    results = (out / "final" / "RESULTS.txt").read_text()
    assert results.index(PIXEL_PART) < results.index(OBJECT_PART) and results.count("OA : ") == 2
    assert assert_constant_in_objects(out / "final" / "Classif_Seed_0.tif", squares) > 200
    objects = gpd.read_file(out / "final" / "Classif_Seed_0_objects.gpkg")
    assert objects["segment"].is_unique and {"class", "confidence", "proba_1", "proba_8"} <= set(objects.columns)
    # squares on the tile border (column 120 of 240) are one object each, held by one tile
    border = squares[(squares.bounds["minx"] < squares.total_bounds[0] + 1200)
                     & (squares.bounds["maxx"] > squares.total_bounds[0] + 1200)]
    crossing = objects[objects["segment"].isin(border["id"] + 1)]
    assert len(crossing) >= 10 and crossing["segment"].is_unique
    # an object crossing the chunk border (row 60) has one class on both sides
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        labels = src.read(1)
    assert labels[55:65, 5:15].min() == labels[55:65, 5:15].max() > 0
    with rasterio.open(out / "final" / "ProbabilityMap_seed_0.tif") as src:
        proba = src.read()
    inside = labels > 0
    assert np.array_equal(proba[:, inside].argmax(axis=0) + 1, labels[inside])
    summary = (out / "model" / "model_1_seed_0.json").read_text()
    assert "SVC" in summary and "sentinel2_b2_20" in summary and "_min" in summary
    # squares mix parcels of several classes: far from the pixel chain's 0.9, far above chance (1/8)
    assert agreement_with_truth(out / "final" / "Classif_Seed_0.tif", s2_dataset["class_map"]) > 0.5


@pytest.mark.slow
def test_slic_objects_with_two_runs_regions_and_priority(tmp_path, make_config, s2_dataset):
    """SLIC superpixels, two regions (the east one claims the objects on the border) and two runs: the learning
    samples are objects, every map is constant inside each superpixel, both reports average the runs."""
    truth = gpd.read_file(s2_dataset["ground_truth"])
    with rasterio.open(s2_dataset["class_map"]) as src:
        west, south, east, north = src.bounds
    middle = west + 600  # between columns 59 and 60 of the first tile
    gpd.GeoDataFrame({"region": ["west", "east"]},
                     geometry=[box(west - 1e4, south - 1e4, middle, north + 1e4),
                               box(middle, south - 1e4, east + 1e4, north + 1e4)], crs=truth.crs).to_file(
        tmp_path / "regions.gpkg")
    config = make_config(builders={"builders_class_name": ["i2_obia"]}, obia={"region_priority": ["east"]},
                         chain={"region_path": str(tmp_path / "regions.gpkg")}, arg_train={"runs": 2},
                         python_data_managing={"chunk_size_mode": "split_number", "number_of_chunks": 1})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    for name in FINAL + ["Classif_Seed_1_objects.gpkg"]:
        assert (out / "final" / name).exists(), name
    results = (out / "final" / "RESULTS.txt").read_text()
    assert results.count("+-") >= 4 and OBJECT_PART in results
    samples = gpd.read_file(out / "learningSamples" / "Samples_region_east_seed0_learn.sqlite")
    assert set(samples["region"]) == {"east"} and samples["geometry"].geom_type.eq("Point").all()
    assert len(samples) < 300 and any(column.endswith("_mean") for column in samples.columns)
    objects = pd.read_parquet(out / "obia" / "objects" / "T31TCJ_objects.parquet")
    with rasterio.open(out / "features" / "T31TCJ" / "tmp" / "SLIC_T31TCJ.tif") as src:
        slic = src.read(1)
    with rasterio.open(out / "classif" / "Classif_T31TCJ_seed_1.tif") as src:
        labels = src.read(1)
    table = pd.DataFrame({"segment": slic.ravel(), "label": labels.ravel()})
    assert (table[table["segment"] > 0].groupby("segment")["label"].nunique() == 1).all()
    # superpixels touching both regions belong to the east one (region_priority)
    crossing = (set(np.unique(slic[:, 59])) & set(np.unique(slic[:, 60]))) - {0}
    border = objects[objects["segment"].isin(crossing)]
    assert len(border) and set(border["region"]) == {"east"}


# ------------------------------------------------------------------ bad input
def _empty_vector(path, crs):
    gpd.GeoDataFrame({"id": np.array([], np.int64)}, geometry=gpd.GeoSeries([], crs=crs), crs=crs).to_file(path)
    return path


def _far_away(path, crs):
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 100, 100)], crs=crs).to_file(path)
    return path


@pytest.mark.parametrize("case, message", [
    ("stats", "obia.stats_used: 'median' is not a statistic"),
    ("empty", "obia.obia_segmentation_path"),
    ("far", "covers none of the tiles"),
    ("missing", "does not exist"),
    ("autocontext", "autocontext is a pixel classification and does not combine with the OBIA builder"),
    ("priority", "obia.region_priority names ['north'] that are no region"),
])
def test_bad_input_stops_at_start_with_one_line(case, message, tmp_path, make_config, s2_dataset, capsys):
    crs = gpd.read_file(s2_dataset["ground_truth"]).crs
    obia = {"stats": {"stats_used": ["mean", "median"]},
            "empty": {"obia_segmentation_path": str(_empty_vector(tmp_path / "empty.gpkg", crs))},
            "far": {"obia_segmentation_path": str(_far_away(tmp_path / "far.gpkg", crs))},
            "missing": {"obia_segmentation_path": str(tmp_path / "nowhere.shp")},
            "autocontext": {}, "priority": {"region_priority": ["north"]}}[case]
    config = make_config(builders={"builders_class_name": ["i2_obia"]}, obia=obia,
                         arg_train={"enable_autocontext": case == "autocontext"})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("iota2: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_temporal_network_classifies_the_objects(tmp_path, make_config):
    """The LTAE reads the objects' statistics as time series (``<band>_<date>_<statistic>``: one channel per band
    and statistic at each date)."""
    pytest.importorskip("torch")
    config = make_config(builders={"builders_class_name": ["i2_obia"]}, obia={"stats_used": ["mean", "std"]},
                         arg_train={"deep_learning_parameters": {"dl_name": "LTAEClassifier", "epochs": 3},
                                    "samples_format": "parquet",
                                    "sample_selection": {"sampler": "random", "strategy": "all"}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    description = (out / "model" / "model_1_seed_0_dl.json").read_text()
    assert "LTAEClassifier" in description and "sentinel2_b2_20" in description and "_std" in description
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as src:
        assert len(np.unique(src.read(1))) > 2  # more than nodata and one class
    assert (out / "final" / "RESULTS.txt").read_text().count("OA : ") == 2
