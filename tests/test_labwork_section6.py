"""Labwork section 6 (iota2's Python API) on the demo data, with the labwork's code as printed (paths changed),
on the native applications and, where OTB and iota2's binding are installed, on OTB's."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import rowcol

from iota2.common import otb_app_bank
from iota2.datagen.sentinel2 import generate_demo

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BACKENDS = ["native", "otb"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("labwork6")
    return generate_demo(root / "demo", size=60, runs=1)


@pytest.fixture(params=BACKENDS)
def applications(request):
    """The factories of otb_app_bank on one backend (OTB's: skipped when OTB or its binding is not installed,
    and a failure where IOTA2_REQUIRE_OTB=1)."""
    otb_app_bank.set_backend(request.param)
    try:
        otb_app_bank.backend()
    except otb_app_bank.OtbAppsUnavailableError as exc:
        otb_app_bank.set_backend(None)
        if os.environ.get("IOTA2_REQUIRE_OTB") == "1":
            pytest.fail(f"IOTA2_REQUIRE_OTB=1 and {exc}")
        pytest.skip(str(exc))
    yield request.param
    otb_app_bank.set_backend(None)


def test_6_1_band_math_then_extract_roi(demo, tmp_path, applications):
    from iota2.common import otb_app_bank as otb

    tile = demo["tiles"][0]
    raster_path = str(sorted(Path(demo["s2_path"]).glob(f"{tile}/*/*_FRE_B4.tif"))[0])
    constant = 3
    shape_file = str(tmp_path / "area.shp")
    truth = gpd.read_file(demo["ground_truth"])
    with rasterio.open(raster_path) as src:
        band, transform, bounds = src.read(1), src.transform, src.bounds
        crs = src.crs
    inside = truth.to_crs(crs).cx[bounds.left:bounds.right, bounds.bottom:bounds.top]
    inside.iloc[:3].to_file(shape_file)
    for mode in ("Execute", "ExecuteAndWriteOutput"):
        out_roi = str(tmp_path / f"roi_{mode}.tif")
        band_math = otb.CreateBandMathApplication({
            "il": [raster_path],
            "exp": "im1b1 + %s" % (constant)
        })
        if mode == "ExecuteAndWriteOutput":
            band_math.SetParameterString("out", str(tmp_path / "band_math.tif"))
            band_math.ExecuteAndWriteOutput()
        else:
            band_math.Execute()
        roi = otb.CreateExtractROIApplication({
            "in": band_math,
            "out": out_roi,
            "mode": "fit",
            "mode.fit.vect": shape_file
        })
        roi.ExecuteAndWriteOutput()
        with rasterio.open(out_roi) as result:
            values = result.read(1)
            row, col = rowcol(transform, result.transform.c + 1, result.transform.f - 1)
            expected = band[row:row + result.height, col:col + result.width].astype("float64") + constant
            np.testing.assert_allclose(values, expected)
            left, bottom, right, top = inside.iloc[:3].total_bounds
            assert result.bounds.left <= left + 10 and result.bounds.right >= right - 10
            assert result.width < band.shape[1] or result.height < band.shape[0]


def test_6_2_zonal_statistics(demo, tmp_path):
    with rasterio.open(demo["class_map"]) as src:  # the map a classification of the course would give
        classes = src.read(1)
        profile = src.profile
    classif = tmp_path / "classif.tif"
    with rasterio.open(classif, "w", **profile) as dst:
        dst.write(classes, 1)
    zones = tmp_path / "rpg_2018.shp"
    truth = gpd.read_file(demo["ground_truth"]).to_crs(profile["crs"])
    truth.iloc[:12].to_file(zones)

    from iota2.simplification import zonal_stats as zs

    tmppath = str(tmp_path / "tmp")
    list_rasters = [str(classif)]
    params = ["1:rate"]
    out = str(tmp_path / "stats_classif.shp")
    zs.compute_zonal_stats(tmppath, list_rasters, str(zones), params, out)

    stats = gpd.read_file(out)
    assert len(stats) == 12
    rates = [c for c in stats.columns if c not in ("geometry", "classmaj") and c not in truth.columns]
    assert rates and np.allclose(stats[rates].sum(axis=1), 1, atol=0.02)  # shares (rounded to 2 decimals)
    with rasterio.open(classif) as src:  # a parcel's majority class, counted here by pixel centres
        from rasterio.features import geometry_mask

        for _, zone in stats.iloc[:4].iterrows():
            inside = geometry_mask([zone.geometry], src.shape, src.transform, invert=True)
            values = classes[inside & (classes > 0)]
            if values.size:
                assert int(zone["classmaj"]) == int(np.bincount(values).argmax())
    # "via bash"
    bash_out = tmp_path / "stats_bash.gpkg"
    done = subprocess.run([sys.executable, "-m", "iota2.cli", "zonal-stats", "-zones", str(zones), "-rasters",
                           str(classif), "-params", "1:rate", "-out", str(bash_out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(gpd.read_file(bash_out)) == 12


def test_6_3_ndvi_profiles_of_sampled_pixels(demo, tmp_path, applications):
    output_path = tmp_path / "output"
    output_path.mkdir()
    config_text = open(demo["config"], encoding="utf-8").read().replace(
        str(os.path.join(os.path.dirname(demo["config"]), "output")), str(output_path))
    path_cfg = tmp_path / "config.yaml"
    path_cfg.write_text(config_text, encoding="utf-8")

    # --- the labwork's code, as printed (<<path_cfg>> and <<path_to_db>> filled in) ---
    from iota2.common.otb_app_bank import CreateExtractROIApplication  # noqa: F401 - the labwork imports it
    from iota2.configuration_files import read_config_file as rcf
    from iota2.sensors.Sentinel_2 import sentinel_2

    configuration_file = str(path_cfg)
    config_i2_object = rcf.read_config_file(configuration_file)

    tiles_to_compute = config_i2_object.getParam("chain", "list_tile")
    i2_parameters = rcf.iota2_parameters(configuration_file)
    first_tile = tiles_to_compute.split(" ")[0]

    i2_sensors_parameters = i2_parameters.get_sensors_parameters(first_tile)
    available_sensors_keys = list(i2_sensors_parameters.keys())
    s2_instance = sentinel_2(**i2_sensors_parameters[available_sensors_keys[0]])

    (full_feat_stack, _), features_names = s2_instance.get_features(ram=1024)
    print(f"feature's name are : {features_names}")

    database = config_i2_object.getParam("chain", "ground_truth")
    labels_field = config_i2_object.getParam("chain", "data_field")

    statistics_file = os.path.join(
        config_i2_object.getParam("chain", "output_path"), "stats.xml"
    )
    samples_selection_file = os.path.join(
        config_i2_object.getParam("chain", "output_path"), "samples_selection.sqlite"
    )
    db_with_features_file = os.path.join(
        config_i2_object.getParam("chain", "output_path"), "samples_with_features.sqlite"
    )

    from iota2.common.otb_app_bank import (
        CreatePolygonClassStatisticsApplication,
        CreateSampleExtractionApplication,
        CreateSampleSelectionApplication,
    )

    # some statistics are needed to perfom sampling strategy
    stats_app = CreatePolygonClassStatisticsApplication(
        {
            "in": full_feat_stack,
            "vec": database,
            "out": statistics_file,
            "field": labels_field,
        }
    )
    sampling_app = CreateSampleSelectionApplication(
        {
            "in": full_feat_stack,
            "out": samples_selection_file,
            "vec": database,
            "instats": statistics_file,
            "strategy": "constant",
            "strategy.constant.nb": 10,
            "field": labels_field,
        }
    )
    features_extraction_app = CreateSampleExtractionApplication(
        {
            "in": full_feat_stack,
            "vec": samples_selection_file,
            "field": labels_field,
            "out": db_with_features_file,
            "outfield": "list",
            "outfield.list.names": features_names,
            "ram": 4096,
        }
    )
    # the next line could be quite long
    stats_app.ExecuteAndWriteOutput()
    sampling_app.ExecuteAndWriteOutput()
    features_extraction_app.ExecuteAndWriteOutput()

    # Load the sqlite into a geodataframe
    conn = sqlite3.connect(db_with_features_file)
    gdf = gpd.read_postgis("SELECT * from output", conn, geom_col="GEOMETRY")

    # We get the NDVI features
    ndvi_columns = [col_ for col_ in gdf.columns if "ndvi" in col_]
    dates = [
        # pandas 3 removed infer_datetime_format (docs/python_api.md): the labwork's line with format= instead
        pd.to_datetime(date_.split("_")[2], format="%Y%m%d")
        for date_ in ndvi_columns
    ]
    label_converter = {label: f"class {label}" for label in range(1, 25)}
    pictures = []
    for label in label_converter.keys():
        gdf_ = gdf[gdf["code"] == label][ndvi_columns]
        if gdf_.size > 0:
            fig, ax = plt.subplots(figsize=(10, 5))
            ax.plot(dates, gdf_.values.T / 1000)
            ax.set_title(f"Class {label_converter[label]}")
            ax.set_ylim([-0.5, 1])
            fig.savefig(tmp_path / f"ndvi_class_{label}.png")
            plt.close(fig)
            pictures.append(label)
    # --- end of the labwork's code ---

    counts = gdf["code"].value_counts()
    truth = gpd.read_file(database)
    assert set(counts.index) <= set(truth["code"]) and len(counts) >= 3
    assert (counts <= 10).all() and (counts == 10).sum() >= 3  # 10 pixels per class where a class has 10
    assert ndvi_columns and len(dates) == len(ndvi_columns) and len(set(dates)) == len(dates)
    assert [c for c in features_names if c in gdf.columns] == features_names
    assert sorted(pictures) == sorted(int(c) for c in counts.index)
    assert all((tmp_path / f"ndvi_class_{label}.png").stat().st_size > 5000 for label in pictures)
    # every extracted value is the feature stack's value at the sample's pixel
    points = gdf.set_crs(full_feat_stack.crs, allow_override=True)
    stack = full_feat_stack.read()
    for _, sample in points.iloc[:15].iterrows():
        row, col = rowcol(full_feat_stack.transform, sample.GEOMETRY.x, sample.GEOMETRY.y)
        np.testing.assert_allclose(sample[features_names].to_numpy(float), stack[:, row, col], rtol=1e-6)
    ndvi = gdf[ndvi_columns].to_numpy(float) / 1000
    assert np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1 and np.nanstd(ndvi) > 0.05
