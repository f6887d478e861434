"""Tests of the synthetic Sentinel-2 THEIA dataset generator."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml

from iota2.core.config import all_sections, validate
from iota2.datagen.sentinel2 import CLASSES, DEFAULT_DATES, generate_dataset, generate_demo, product_name
from iota2.sensors import sentinel_2

BANDS_10M = ("B2", "B3", "B4", "B8")
BANDS_20M = ("B5", "B6", "B7", "B8A", "B11", "B12")
SIZE = 48


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("gen"), size=SIZE, seed=5)


def test_layout_names_sizes_and_types(dataset):
    root = Path(dataset["s2_path"])
    assert dataset["tiles"] == ["T31TCJ", "T31TDJ"]
    assert sorted(path.name for path in root.iterdir()) == ["T31TCJ", "T31TDJ"]
    for tile_index, tile in enumerate(dataset["tiles"]):
        products = sorted(path.name for path in (root / tile).iterdir())
        assert products == [product_name(tile, date) for date in DEFAULT_DATES]
        assert products[0] == f"SENTINEL2A_20180105-105804-037_L2A_{tile}_D_V1-7"
        product = root / tile / products[0]
        for band in BANDS_10M + BANDS_20M:
            with rasterio.open(product / f"{products[0]}_FRE_{band}.tif") as src:
                expected = SIZE if band in BANDS_10M else SIZE // 2
                assert (src.width, src.height, src.dtypes[0], src.nodata) == (expected, expected, "int16", -10000)
                assert src.crs.to_epsg() == 32631
                assert src.transform.c == 300000.0 + tile_index * SIZE * 10.0
                assert src.transform.a == 10.0 * SIZE / expected
        for mask in ("CLM", "SAT", "EDG"):
            with rasterio.open(product / "MASKS" / f"{products[0]}_{mask}_R1.tif") as src:
                assert (src.width, src.height, src.dtypes[0]) == (SIZE, SIZE, "uint8")
    with rasterio.open(dataset["class_map"]) as src:
        assert (src.width, src.height) == (2 * SIZE, SIZE)
        classes = src.read(1)
    assert set(np.unique(classes)) == {label for label, _, _ in CLASSES}


def test_ground_truth_nomenclature_and_colors(dataset):
    truth = gpd.read_file(dataset["ground_truth"])
    assert truth.crs.to_epsg() == 32631
    assert truth["code"].dtype.kind == "i"
    labels = {label for label, _, _ in CLASSES}
    assert set(truth["code"]) == labels and 0 not in set(truth["code"])
    union_area = truth.geometry.union_all().area
    assert union_area == pytest.approx(truth.geometry.area.sum())  # no overlaps
    # polygons lie inside parcels of their class (checked at polygon centres on the true class map)
    with rasterio.open(dataset["class_map"]) as src:
        centres = [(point.x, point.y) for point in truth.geometry.centroid]
        sampled = [value[0] for value in src.sample(centres)]
    assert sampled == truth["code"].tolist()
    # several polygons per class, on both tiles
    middle = 300000.0 + SIZE * 10.0
    for label in labels:
        of_class = truth[truth["code"] == label]
        assert len(of_class) >= 2
    assert (truth.geometry.bounds["maxx"] <= middle).sum() >= 4
    assert (truth.geometry.bounds["minx"] >= middle).sum() >= 4
    nomenclature = Path(dataset["nomenclature"]).read_text().splitlines()
    assert nomenclature == [f"{name}:{label}" for label, name, _ in CLASSES]
    colors = [line.split() for line in Path(dataset["color_table"]).read_text().splitlines()]
    assert [int(row[0]) for row in colors] == sorted(labels)
    assert all(len(row) == 4 and all(0 <= int(value) <= 255 for value in row[1:]) for row in colors)


def _arrays(result):
    root = Path(result["s2_path"])
    return {path.relative_to(root).as_posix(): rasterio.open(path).read()
            for path in sorted(root.rglob("*.tif"))}


def test_deterministic_for_a_seed(tmp_path):
    dates = list(DEFAULT_DATES[:3])
    first = generate_dataset(tmp_path / "a", size=32, dates=dates, seed=7)
    second = generate_dataset(tmp_path / "b", size=32, dates=dates, seed=7)
    other = generate_dataset(tmp_path / "c", size=32, dates=dates, seed=8)
    arrays_first, arrays_second, arrays_other = _arrays(first), _arrays(second), _arrays(other)
    assert arrays_first.keys() == arrays_second.keys() == arrays_other.keys()
    assert all(np.array_equal(arrays_first[key], arrays_second[key]) for key in arrays_first)
    assert not all(np.array_equal(arrays_first[key], arrays_other[key]) for key in arrays_first)
    truth_first = gpd.read_file(first["ground_truth"])
    truth_second = gpd.read_file(second["ground_truth"])
    assert truth_first["code"].tolist() == truth_second["code"].tolist()
    assert truth_first.geometry.geom_equals(truth_second.geometry).all()


MEMORY_CHILD = """
import sys
from iota2.datagen.sentinel2 import DEFAULT_DATES, generate_dataset, simulate
dates = [f"2018{month:02d}{day:02d}" for month in range(1, 13) for day in (5, 15, 25)][:int(sys.argv[2])]
generate_dataset(sys.argv[1], tiles=("T31TCJ",), size=600, dates=dates, seed=1)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM of /proc")
def test_memory_does_not_grow_with_the_dates(tmp_path):
    """Each date is written as soon as it is simulated: 24 dates need the memory of 6 (a 600 px tile's date is
    about 30 MB of reflectances and masks; holding them all took 110 bytes per pixel and date)."""
    import subprocess
    import sys

    peaks = {}
    for count in (6, 24):
        result = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path / str(count)), str(count)],
                                capture_output=True, text=True, check=True)
        peaks[count] = int(result.stdout.split()[-1])  # kB
    assert peaks[24] - peaks[6] < 18 * 600 * 600 * 10 * 4 / 1024 / 4, peaks  # a quarter of 18 more dates' bands


def test_streamed_dates_are_the_simulated_ones(tmp_path):
    from iota2.datagen.sentinel2 import simulate

    dates = list(DEFAULT_DATES[:3])
    scene = simulate(tiles=("T31TCJ",), size=32, dates=dates, seed=4)
    dataset = generate_dataset(tmp_path, tiles=("T31TCJ",), size=32, dates=dates, seed=4)
    name = product_name("T31TCJ", dates[1])
    with rasterio.open(Path(dataset["s2_path"]) / "T31TCJ" / name / f"{name}_FRE_B4.tif") as src:
        written = src.read(1)
    expected = np.clip(np.rint(scene.ground[dates[1]][2]), 1, 15000).astype(np.int16)
    assert scene.all_dates == dates and np.array_equal(written, expected)


def _tile_series(dataset, tile, band):
    root = Path(dataset["s2_path"]) / tile
    values, cloudy = [], []
    for date in DEFAULT_DATES:
        name = product_name(tile, date)
        with rasterio.open(root / name / f"{name}_FRE_{band}.tif") as src:
            values.append(src.read(1).astype(np.float64))
        masks = [rasterio.open(root / name / "MASKS" / f"{name}_{mask}_R1.tif").read(1)
                 for mask in ("CLM", "SAT", "EDG")]
        cloudy.append(np.any(np.stack(masks) != 0, axis=0))
    return np.stack(values), np.stack(cloudy)


def test_classes_have_distinct_phenology_and_clouds_are_flagged(dataset):
    red, invalid = _tile_series(dataset, "T31TCJ", "B4")
    nir, _ = _tile_series(dataset, "T31TCJ", "B8")
    blue, _ = _tile_series(dataset, "T31TCJ", "B2")
    with rasterio.open(dataset["class_map"]) as src:
        classes = src.read(1)[:, :SIZE]
    ndvi = (nir - red) / (nir + red) * 1000
    profiles = {}
    for label, name, _ in CLASSES:
        clear = ~invalid & (classes == label)[None]
        profiles[name] = np.array([ndvi[date][clear[date]].mean() for date in range(len(DEFAULT_DATES))])
    names = list(profiles)
    for index, first in enumerate(names):
        for second in names[index + 1:]:
            assert np.abs(profiles[first] - profiles[second]).max() > 100, (first, second)
    winter, summer = profiles["winter_crop"], profiles["maize"]
    assert np.argmax(winter) < np.argmax(summer)  # spring peak before summer peak
    assert np.argmax(profiles["sunflower"]) <= np.argmax(summer)  # sunflower earlier than maize
    assert profiles["water"].max() < 0 < profiles["coniferous_forest"].min() - 500
    # deciduous trees lose their leaves in winter, conifers do not
    assert profiles["coniferous_forest"][0] - profiles["deciduous_forest"][0] > 100
    # clouds cover about the requested share and brighten the visible bands
    clm = invalid.mean()
    assert 0.03 < clm < 0.4
    cloud_maps = []
    for date in DEFAULT_DATES:
        name = product_name("T31TCJ", date)
        cloud_maps.append(rasterio.open(Path(dataset["s2_path"]) / "T31TCJ" / name / "MASKS"
                                        / f"{name}_CLM_R1.tif").read(1))
    clouds = np.stack(cloud_maps) == 7
    assert blue[clouds].mean() > 3 * blue[~invalid].mean()


def test_generate_demo_writes_a_valid_config(tmp_path):
    result = generate_demo(tmp_path, size=100, runs=3)
    raw = yaml.safe_load(Path(result["config"]).read_text())
    config = validate(raw, all_sections(sentinel_2.iota2_config_sections()))
    chain = config["chain"]
    assert chain["list_tile"] == ["T31TCJ", "T31TDJ"]
    assert chain["output_path"] == str(tmp_path.resolve() / "output")
    for key in ("s2_path", "ground_truth", "nomenclature_path", "color_table"):
        assert Path(chain[key]).is_absolute() and Path(chain[key]).exists()
    assert chain["data_field"] == "code" and chain["proj"] == "EPSG:32631"
    assert config["arg_train"]["sample_selection"]["strategy.constant.nb"] == 500
    assert config["Sentinel_2"]["temporal_resolution"] == 10
    with rasterio.open(next(Path(chain["s2_path"]).rglob("*_FRE_B2.tif"))) as src:
        assert (src.width, src.height) == (100, 100)
    assert config["arg_train"]["runs"] == 3
