"""Zonal statistics of classification maps (:mod:`iota2.simplification.zonal_stats`): class proportions counted by
hand on a 6 x 6 map, statistics, exact coverage against shapely's areas, agreement with rasterstats and
exactextract, bad input and the ``iota2 zonal-stats`` command."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from shapely.geometry import MultiPoint, Point, Polygon, box

from iota2.core.errors import ConfigError, InputDataError
from iota2.simplification import zonal_stats as zs

CRS = "EPSG:32631"
TRANSFORM = from_origin(0, 60, 10, 10)  # pixel (row r, col c) covers x 10c..10c+10, y 50-10r..60-10r

CLASSES = np.array([[1, 1, 1, 2, 2, 2],
                    [1, 1, 1, 2, 2, 2],
                    [1, 1, 3, 3, 2, 2],
                    [3, 3, 3, 3, 0, 0],
                    [3, 3, 3, 3, 0, 0],
                    [1, 2, 3, 1, 2, 3]], np.uint8)
VALUES = (10 * np.arange(6)[:, None] + np.arange(6)[None, :] + 1).astype(np.float32)  # 1 .. 56, none is 0


def pixels(row0, row1, col0, col1):
    """The polygon of pixels rows [row0, row1) x cols [col0, col1)."""
    return box(10 * col0, 60 - 10 * row1, 10 * col1, 60 - 10 * row0)


def write(path, array, nodata=None, transform=TRANSFORM, crs=CRS):
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype=array.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(array)
    return str(path)


@pytest.fixture
def maps(tmp_path):
    classif = write(tmp_path / "classif.tif", CLASSES)
    values = write(tmp_path / "values.tif", VALUES)
    hole = Polygon(pixels(3, 6, 0, 4).exterior.coords, [pixels(4, 5, 1, 2).exterior.coords])
    zones = gpd.GeoDataFrame(
        {"name": ["A", "B", "C", "D", "E", "F"]},
        geometry=[pixels(0, 3, 0, 3),   # A: 8 x class 1, 1 x class 3
                  pixels(2, 5, 3, 6),   # B: 3 x 3, 2 x 2, 4 nodata
                  box(40, 40, 80, 60),  # C: half outside the raster (cols 4..7): 4 pixels of class 2 inside
                  hole,                 # D: 12 pixels minus a hole of 1
                  pixels(1, 3, 1, 4),   # E: overlaps A on 4 pixels
                  box(100, 0, 120, 20)],  # F: wholly outside
        crs=CRS)
    path = tmp_path / "zones.gpkg"
    zones.to_file(path)
    return classif, values, str(path)


def test_rate_hand_counted(maps, caplog):
    classif, _, zones = maps
    with caplog.at_level(logging.WARNING):
        frame = zs.zonal_statistics([classif], zones, ["1:rate"])
    frame = frame.set_index("name")
    expected = {"A": {1: 8 / 9, 3: 1 / 9}, "B": {2: 2 / 5, 3: 3 / 5}, "C": {2: 1.0},
                "D": {1: 2 / 11, 2: 1 / 11, 3: 8 / 11}, "E": {1: 3 / 6, 2: 1 / 6, 3: 2 / 6}}
    assert [column for column in frame.columns if column not in ("geometry",)] == ["1", "2", "3", "classmaj"]
    for zone, shares in expected.items():
        for code in (1, 2, 3):
            assert frame.loc[zone, str(code)] == pytest.approx(shares.get(code, 0.0), abs=1e-12), (zone, code)
    assert frame["classmaj"].to_dict() == pytest.approx({"A": 1, "B": 3, "C": 2, "D": 3, "E": 1, "F": np.nan},
                                                        nan_ok=True)
    assert frame.loc["F", ["1", "2", "3", "classmaj"]].isna().all()
    assert "1 of 6 zone(s)" in caplog.text and "no valid pixel" in caplog.text


def test_stats_statsmaj_stats_cl(maps):
    classif, values, zones = maps
    frame = zs.zonal_statistics([classif, values], zones, ["1:rate", "2:stats", "2:statsmaj", "2:stats_3"])
    frame = frame.set_index("name")
    a = VALUES[0:3, 0:3]
    ones = a[CLASSES[0:3, 0:3] == 1]
    assert frame.loc["A", ["meanb2", "stdb2", "maxb2", "minb2"]].tolist() == pytest.approx(
        [a.mean(), a.std(), 23, 1])
    assert frame.loc["A", ["meanmajb2", "stdmajb2", "maxmajb2", "minmajb2"]].tolist() == pytest.approx(
        [ones.mean(), ones.std(), 22, 1])
    assert frame.loc["A", ["meanb2c3", "stdb2c3", "maxb2c3", "minb2c3"]].tolist() == pytest.approx([23, 0, 23, 23])
    # B: majority 3 -> pixels (2,3) (3,3) (4,3): values 24, 34, 44; nodata pixels of the classes still count in
    # stats of band 2 (its own values are valid there)
    assert frame.loc["B", ["meanmajb2", "maxmajb2", "minmajb2"]].tolist() == pytest.approx([34, 44, 24])
    assert frame.loc["B", "meanb2"] == pytest.approx(VALUES[2:5, 3:6].mean())
    assert frame.loc["F"].drop("geometry").isna().all()


def test_band_nodata_left_out(tmp_path):
    values = VALUES.copy()
    values[0, 0] = -9999
    values[0, 1] = 0
    classif = write(tmp_path / "c.tif", CLASSES)
    stack = write(tmp_path / "v.tif", np.stack([values, values]), nodata=-9999)
    zones = gpd.GeoDataFrame(geometry=[pixels(0, 1, 0, 3)], crs=CRS)
    frame = zs.zonal_statistics([classif, stack], zones, {1: "rate", 3: "stats"})
    assert frame.loc[0, ["meanb3", "maxb3", "minb3"]].tolist() == [3, 3, 3]


def test_exact_coverage_against_shapely(tmp_path):
    rng = np.random.default_rng(4)
    classes = rng.integers(0, 4, (12, 12)).astype(np.uint8)
    path = write(tmp_path / "c.tif", classes, transform=from_origin(0, 120, 10, 10))
    polygons = [shapely.Polygon(rng.uniform(-20, 140, (7, 2))).buffer(0) for _ in range(8)]
    polygons.append(Polygon([(5, 5), (115, 15), (60, 110)], [[(40, 40), (70, 45), (55, 70)]]))  # a hole
    polygons = [shapely.geometry.shape(p) for p in polygons if not p.is_empty]
    zones = gpd.GeoDataFrame(geometry=polygons, crs=CRS)
    frame = zs.zonal_statistics(path, zones, ["1:rate"], coverage="exact")
    cells = [[box(10 * c, 110 - 10 * r, 10 * c + 10, 120 - 10 * r) for c in range(12)] for r in range(12)]
    for index, polygon in enumerate(polygons):
        area = np.array([[cells[r][c].intersection(polygon).area for c in range(12)] for r in range(12)])
        valid = area[classes > 0].sum()
        for code in (1, 2, 3):
            share = area[classes == code].sum() / valid
            assert frame.loc[index, str(code)] == pytest.approx(share, abs=1e-9), (index, code)


def test_touched_counts_every_pixel_with_covered_area(maps):
    classif, _, _ = maps
    zones = gpd.GeoDataFrame(geometry=[box(5, 45, 15, 55)], crs=CRS)  # the centre of pixel (1, 0) ... 4 pixels
    centre = zs.zonal_statistics(classif, zones, ["1:rate"])
    touched = zs.zonal_statistics(classif, zones, ["1:rate"], coverage="touched")
    assert centre.loc[0, ["1"]].tolist() == [1.0]  # one centre inside: pixel (1, 0)
    assert touched.loc[0, "1"] == pytest.approx(1.0) and "2" not in touched.columns  # pixels (0|1, 0|1): all 1


def test_reprojected_zones(maps, caplog):
    classif, _, zones = maps
    other = gpd.read_file(zones).to_crs("EPSG:4326")
    with caplog.at_level(logging.WARNING):
        frame = zs.zonal_statistics(classif, other, ["1:rate"])
    assert "EPSG:4326" in caplog.text and "EPSG:32631" in caplog.text
    assert frame.loc[0, "1"] == pytest.approx(8 / 9) and frame.loc[4, "2"] == pytest.approx(1 / 6)


def test_points_val_and_buffer(maps, tmp_path):
    classif, values, _ = maps
    points = gpd.GeoDataFrame(geometry=[Point(25, 35), MultiPoint([(55, 5), (0, 0)]), Point(-5, 5)], crs=CRS)
    frame = zs.zonal_statistics([classif, values], points, ["1:val", "2:val"])
    assert frame["valb1"].tolist()[:2] == [3, 3] and frame["valb2"].tolist()[:2] == [23, 56]
    assert np.isnan(frame.loc[2, "valb1"])
    # (25, 35) is the centre of pixel (2, 2); the centres within 11 m: it and its 4 neighbours, classes 3 1 3 1 3
    discs = zs.zonal_statistics(classif, points.iloc[:1], ["1:rate"], buffer=11)
    assert discs.loc[0, ["1", "3"]].tolist() == pytest.approx([2 / 5, 3 / 5]) and "2" not in discs.columns


@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".sqlite", ".geojson"])
def test_labwork_call_writes_rounded_values(maps, tmp_path, suffix):
    classif, _, zones = maps
    out = tmp_path / f"stats_classif{suffix}"
    zs.compute_zonal_stats(str(tmp_path), [classif], zones, ["1:rate"], str(out))
    written = gpd.read_file(out).set_index("name")
    assert written.loc["A", "1"] == 0.89 and written.loc["E", "3"] == 0.33 and written.loc["D", "classmaj"] == 3
    assert written.crs == CRS and len(written) == 6
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_shapefile_refuses_long_names_before_computing(maps, tmp_path):
    classif, values, zones = maps
    out = tmp_path / "stats.shp"
    with pytest.raises(ConfigError, match="10 characters.*meanb2c1000"):
        zs.compute_zonal_stats(None, [classif, values], zones, ["1:rate", "2:stats_1000"], out)
    assert not list(tmp_path.glob("stats.*"))


def test_bad_input(maps, tmp_path):
    classif, values, zones = maps
    with pytest.raises(ConfigError, match="band 3 .*beyond the rasters' 2 band"):
        zs.zonal_statistics([classif, values], zones, ["3:rate"])
    with pytest.raises(ConfigError, match="unknown method 'mean'"):
        zs.zonal_statistics(classif, zones, ["1:mean"])
    with pytest.raises(ConfigError, match="need the class of each pixel"):
        zs.zonal_statistics([classif, values], zones, ["2:statsmaj"])
    with pytest.raises(InputDataError, match="does not exist"):
        zs.zonal_statistics(str(tmp_path / "nope.tif"), zones, ["1:rate"])
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputDataError, match="cannot be read"):
        zs.zonal_statistics(str(tmp_path / "broken.tif"), zones, ["1:rate"])
    (tmp_path / "broken.gpkg").write_bytes(b"nothing")
    with pytest.raises(InputDataError, match="cannot be read as a vector"):
        zs.zonal_statistics(classif, str(tmp_path / "broken.gpkg"), ["1:rate"])
    shifted = write(tmp_path / "shifted.tif", VALUES, transform=from_origin(10, 60, 10, 10))
    with pytest.raises(InputDataError, match="not on the same grid"):
        zs.zonal_statistics([classif, shifted], zones, ["1:rate"])
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (10, 10)])], crs=CRS)
    with pytest.raises(InputDataError, match="must hold polygons"):
        zs.zonal_statistics(classif, lines, ["1:rate"])
    empty = gpd.GeoDataFrame({"a": []}, geometry=[], crs=CRS)
    with pytest.raises(InputDataError, match="holds no feature"):
        zs.zonal_statistics(classif, empty, ["1:rate"])
    no_crs = gpd.GeoDataFrame(geometry=[pixels(0, 1, 0, 1)])
    with pytest.raises(InputDataError, match="has no coordinate reference system"):
        zs.zonal_statistics(classif, no_crs, ["1:rate"])
    with pytest.raises(ConfigError, match="only 'val'"):
        zs.zonal_statistics(classif, gpd.GeoDataFrame(geometry=[Point(5, 5)], crs=CRS), ["1:rate"])
    with pytest.raises(ConfigError, match="must end with"):
        zs.compute_zonal_stats(None, classif, zones, ["1:rate"], tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_strips_give_the_same_result(maps):
    classif, values, zones = maps
    params = ["1:rate", "2:stats", "2:statsmaj"]
    whole = zs.zonal_statistics([classif, values], zones, params, coverage="exact")
    strips = zs.zonal_statistics([classif, values], zones, params, coverage="exact", strip_pixels=6)  # one row
    numeric = whole.drop(columns=["name", "geometry"])
    assert np.allclose(numeric.to_numpy(float), strips[numeric.columns].to_numpy(float), equal_nan=True, atol=1e-12)


def random_case(tmp_path, size=200, parcels=60, seed=1):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 7, (size // 8 + 1, size // 8 + 1))
    classes = np.kron(coarse, np.ones((8, 8), int))[:size, :size]
    noise = rng.random((size, size)) < 0.2
    classes[noise] = rng.integers(0, 7, noise.sum())
    transform = from_origin(1000, 3000, 10, 10)
    path = write(tmp_path / "random.tif", classes.astype(np.uint8), transform=transform)
    polygons = []
    for _ in range(parcels):
        cx, cy = rng.uniform(900, 1000 + 10 * size + 100, 2), rng.uniform(900, 3100, 1)[0]
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(20, 150, 9)
        polygons.append(Polygon(np.column_stack([cx[0] + radii * np.cos(angles), cy + radii * np.sin(angles)])))
    zones = gpd.GeoDataFrame({"id": range(parcels)}, geometry=polygons, crs=CRS)
    return path, zones


@pytest.mark.bench  # rasterstats is a bench-only dependency: run with the benchmarks' smoke runs (pytest -m bench)
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rasterstats multiplies affines with *
def test_agrees_with_rasterstats_at_pixel_centres(tmp_path):
    rasterstats = pytest.importorskip("rasterstats", reason="rasterstats not installed (bench-only dependency)")
    path, zones = random_case(tmp_path)
    ours = zs.zonal_statistics(path, zones, ["1:rate"])
    theirs = rasterstats.zonal_stats(zones, path, categorical=True, nodata=0)
    compared = 0
    for index, counts in enumerate(theirs):
        counts = {code: n for code, n in counts.items() if code != 0}
        total = sum(counts.values())
        for code in range(1, 7):
            expected = counts.get(code, 0) / total if total else np.nan
            got = ours.loc[index, str(code)] if str(code) in ours.columns else np.nan
            assert got == pytest.approx(expected, abs=1e-12, nan_ok=True), (index, code)
            compared += 1
    assert compared == 6 * len(zones)


@pytest.mark.bench  # exactextract is a bench-only dependency: run with the benchmarks' smoke runs (pytest -m bench)
def test_agrees_with_exactextract_coverage(tmp_path):
    exactextract = pytest.importorskip("exactextract", reason="exactextract not installed (bench-only dependency)")
    path, zones = random_case(tmp_path, seed=2)
    ours = zs.zonal_statistics(path, zones, ["1:rate"], coverage="exact")
    theirs = exactextract.exact_extract(path, zones, ["unique", "frac"], output="pandas")
    for index, row in theirs.iterrows():
        shares = dict(zip(np.asarray(row["unique"]).tolist(), np.asarray(row["frac"]).tolist()))
        shares.pop(0, None)
        total = sum(shares.values())
        for code in range(1, 7):
            expected = shares.get(code, 0) / total if total else np.nan
            assert ours.loc[index, str(code)] == pytest.approx(expected, abs=1e-6, nan_ok=True), (index, code)


def test_command_line(maps, tmp_path, capsys):
    from iota2.cli import main

    classif, values, zones = maps
    out = tmp_path / "o.gpkg"
    code = main(["zonal-stats", "-zones", zones, "-rasters", classif, values, "-params", "1:rate", "2:statsmaj",
                 "-out", str(out), "-coverage", "exact"])
    assert code == 0 and "6 zone(s)" in capsys.readouterr().out
    written = gpd.read_file(out).set_index("name")
    majority = VALUES[0:3, 0:3][CLASSES[0:3, 0:3] == 1].mean()  # 10.625
    assert written.loc["A", "1"] == 0.89 and written.loc["A", "meanmajb2"] == pytest.approx(10.62)
    assert majority == 10.625
    assert main(["zonal-stats", "-zones", zones, "-rasters", classif, "-params", "4:rate", "-out", str(out)]) == 2
    assert "beyond the rasters' 1 band" in capsys.readouterr().err
