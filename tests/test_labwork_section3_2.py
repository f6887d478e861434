"""Labwork section 3.2.1 (object-based classification) on the generated demo data, with the labwork's snippets as
printed: SLIC superpixels (no segmentation given), then a user vector segmentation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml

from iota2.cli import main

# labwork 3.2.1, as printed (the obia keys in their section 'obia')
BUILDER = """
builders:
    builders_class_name: ["i2_obia"]
"""
SLIC_SNIPPET = """
obia:
    stats_used: ['mean', 'std']
"""
SEGMENTATION_SNIPPET = """
obia:
    obia_segmentation_path: "/XXX/segmentation.shp"
    stats_used: ['mean', 'std']
"""


def labwork_config(make_config, name: str, *snippets: str, **replace) -> str:
    """The demo configuration with the labwork's snippets added (``/XXX/`` replaced by ``replace['XXX']``)."""
    path = make_config(name)
    config = yaml.safe_load(path.read_text())
    for snippet in snippets:
        if "XXX" in replace:
            snippet = snippet.replace("/XXX", replace["XXX"])
        config.update(yaml.safe_load(snippet))
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def assert_obia_products(out, runs: int = 1) -> str:
    for run in range(runs):
        for name in (f"Classif_Seed_{run}.tif", f"Confidence_Seed_{run}.tif", f"Classif_Seed_{run}_ColorIndexed.tif",
                     f"Classif_Seed_{run}_objects.gpkg"):
            assert (out / "final" / name).stat().st_size > 0, name
    results = (out / "final" / "RESULTS.txt").read_text()
    assert "Pixel-based validation" in results and "Object-based validation" in results
    return results


@pytest.mark.slow
def test_labwork_3_2_1_slic(tmp_path, make_config, capsys):
    """No segmentation: SLIC superpixels; objects described by the mean and std of every feature."""
    config = labwork_config(make_config, "slic.yaml", BUILDER, SLIC_SNIPPET)
    assert main(["-config", config, "-scheduler_type", "debug", "-no_progress"]) == 0
    assert "I2Obia finished" in capsys.readouterr().err
    out = tmp_path / "out"
    results = assert_obia_products(out)
    oa = [float(line.split(":")[1]) for line in results.splitlines() if line.startswith("OA : ")]
    print(f"labwork 3.2.1 SLIC: pixel-based OA {oa[0]:.3f}, object-based OA {oa[1]:.3f}")
    assert len(oa) == 2 and min(oa) > 0.8
    objects = gpd.read_file(out / "final" / "Classif_Seed_0_objects.gpkg")
    assert len(objects) > 100 and objects["confidence"].between(0, 100).all()
    samples = gpd.read_file(out / "learningSamples" / "Samples_region_1_seed0_learn.sqlite")
    statistics = [column for column in samples.columns if column.startswith("sentinel2_")]
    assert statistics[:2] == [statistics[0].replace("_std", "_mean"), statistics[0].replace("_mean", "_std")]
    assert len(statistics) % 2 == 0 and statistics[0].endswith("_mean")


@pytest.mark.slow
def test_labwork_3_2_1_user_segmentation(tmp_path, make_config, s2_dataset):
    """A shapefile segmentation (the labwork's obia_segmentation_path): the generator's parcels cut in two."""
    with rasterio.open(s2_dataset["class_map"]) as src:
        classes, transform, crs = src.read(1), src.transform, src.crs
    from rasterio import features as rio_features
    from shapely.geometry import shape

    # every connected area of one class, cut in 20 x 20 pixel blocks: segments that follow the fields
    blocks = (np.arange(classes.shape[0])[:, None] // 20) * 100 + np.arange(classes.shape[1])[None, :] // 20
    ids = (classes.astype(np.int64) * 10_000 + blocks).astype(np.int32)
    polygons = [shape(geometry) for geometry, _ in rio_features.shapes(ids, transform=transform)]
    (tmp_path / "seg").mkdir()
    gpd.GeoDataFrame({"id": np.arange(len(polygons))}, geometry=polygons, crs=crs).to_file(
        tmp_path / "seg" / "segmentation.shp")
    config = labwork_config(make_config, "segmentation.yaml", BUILDER, SEGMENTATION_SNIPPET,
                            XXX=str(tmp_path / "seg"))
    assert main(["-config", config, "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    results = assert_obia_products(out)
    oa = [float(line.split(":")[1]) for line in results.splitlines() if line.startswith("OA : ")]
    print(f"labwork 3.2.1 user segmentation: pixel-based OA {oa[0]:.3f}, object-based OA {oa[1]:.3f}")
    assert min(oa) > 0.8
    assert (out / "segmentation" / "T31TCJ_segments.tif").exists()
    assert not (out / "features" / "T31TCJ" / "tmp" / "SLIC_T31TCJ.tif").exists()
