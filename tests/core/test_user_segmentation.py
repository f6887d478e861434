"""A user's segmentation: checks at start, ids burnt on tile grids (vector and raster, any CRS, by stripes), the
polygons of a tile's segments, and bad input."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, box

from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid
from iota2.core.user_segmentation import (check_segmentation, rasterise_segmentation, segment_polygons,
                                          segmentation_kind)

UTM = CRS.from_epsg(32631)
X0, Y0 = 500_000.0, 4_800_000.0


def tile_grids() -> dict[str, Grid]:
    """Two 10 m tiles side by side: T1 60 x 40 px, T2 to its east."""
    return {"T1": Grid(UTM, Affine(10, 0, X0, 0, -10, Y0), 60, 40),
            "T2": Grid(UTM, Affine(10, 0, X0 + 600, 0, -10, Y0), 60, 40)}


def polygons() -> gpd.GeoDataFrame:
    """Segments: a field in T1, one across both tiles, one overlapping the first (later wins), a sliver smaller
    than a pixel in a free area, and one outside every tile."""
    shapes = [box(X0 + 20, Y0 - 200, X0 + 200, Y0 - 20),        # id 1
              box(X0 + 500, Y0 - 300, X0 + 800, Y0 - 100),      # id 2: crosses T1 / T2
              box(X0 + 150, Y0 - 150, X0 + 250, Y0 - 50),       # id 3: overlaps id 1
              box(X0 + 402, Y0 - 358, X0 + 404, Y0 - 352),      # id 4: 2 m x 6 m, no pixel centre
              box(X0 + 5000, Y0 - 5000, X0 + 5100, Y0 - 4900)]  # id 5: outside
    return gpd.GeoDataFrame({"name": list("abcde")}, geometry=shapes, crs=UTM)


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def test_vector_ids_are_positions_in_the_file(tmp_path):
    path = tmp_path / "segments.gpkg"
    polygons().to_file(path)
    grids = tile_grids()
    assert check_segmentation(path, grids) == "vector"
    out = tmp_path / "out"
    for tile, grid in grids.items():
        rasterise_segmentation(str(path), tile, grid.to_dict(), str(out))
    t1, profile = read(OutputLayout(out).segments("T1"))
    t2, _ = read(OutputLayout(out).segments("T2"))
    assert profile["dtype"] == "uint32" and profile["nodata"] == 0
    assert t1[5, 5] == 1 and t1[18, 3] == 1          # inside id 1 only
    assert t1[12, 18] == 3                           # in both 1 and 3: the later feature
    assert set(np.unique(t1)) == {0, 1, 2, 3, 4}
    assert np.count_nonzero(t1 == 4) == 1 and t1[35, 40] == 4  # the sliver: the one pixel it touches
    assert set(np.unique(t2)) == {0, 2}              # id 2 keeps its id in both tiles
    assert np.count_nonzero(t1 == 2) + np.count_nonzero(t2 == 2) == 30 * 20
    assert np.count_nonzero(t1 == 1) == 18 * 18 - np.count_nonzero((t1 == 3)[2:20, 2:20])
    assert not list((out / "segmentation").glob(".*"))  # no temporary left


def test_vector_in_another_crs_is_reprojected(tmp_path, caplog):
    polygons().to_file(tmp_path / "utm.shp")
    polygons().to_crs(4326).to_file(tmp_path / "wgs84.shp")
    grids = tile_grids()
    with caplog.at_level(logging.WARNING):
        assert check_segmentation(tmp_path / "wgs84.shp", grids) == "vector"
    assert "EPSG:4326" in caplog.text and "EPSG:32631" in caplog.text
    for name in ("utm", "wgs84"):
        rasterise_segmentation(str(tmp_path / f"{name}.shp"), "T1", grids["T1"].to_dict(), str(tmp_path / name))
    same, _ = read(OutputLayout(tmp_path / "utm").segments("T1"))
    warped, _ = read(OutputLayout(tmp_path / "wgs84").segments("T1"))
    assert np.mean(same == warped) > 0.98


def test_stripes_give_the_whole_tile(tmp_path):
    path = tmp_path / "segments.gpkg"
    polygons().to_file(path)
    grid = tile_grids()["T1"].to_dict()
    rasterise_segmentation(str(path), "T1", grid, str(tmp_path / "whole"))
    rasterise_segmentation(str(path), "T1", grid, str(tmp_path / "striped"), stripe_pixels=60 * 3)
    whole, _ = read(OutputLayout(tmp_path / "whole").segments("T1"))
    striped, _ = read(OutputLayout(tmp_path / "striped").segments("T1"))
    np.testing.assert_array_equal(striped, whole)


def test_a_segment_without_free_pixel_is_counted(tmp_path, caplog):
    frame = polygons()
    frame.loc[len(frame)] = ["f", box(X0 + 52, Y0 - 52, X0 + 54, Y0 - 54)]  # inside id 1's pixels
    path = tmp_path / "segments.gpkg"
    frame.to_file(path)
    with caplog.at_level(logging.WARNING):
        rasterise_segmentation(str(path), "T1", tile_grids()["T1"].to_dict(), str(tmp_path / "out"))
    assert "1 segment(s)" in caplog.text and "get no pixel" in caplog.text
    ids, _ = read(OutputLayout(tmp_path / "out").segments("T1"))
    assert 6 not in ids and 4 in ids


def write_ids(path, ids, transform, crs=UTM, nodata=None, dtype=None):
    profile = {"driver": "GTiff", "width": ids.shape[1], "height": ids.shape[0], "count": 1,
               "dtype": dtype or ids.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ids.astype(profile["dtype"]), 1)
    return path


def test_raster_is_resampled_with_ids_kept(tmp_path):
    ids = np.arange(1, 61 * 21 + 1, dtype=np.uint32).reshape(21, 61) + 3_000_000_000  # 20 m, beyond int32
    ids[0, :] = 0
    ids[1, :] = 77  # the file's nodata
    path = write_ids(tmp_path / "segments.tif", ids, Affine(20, 0, X0, 0, -20, Y0), nodata=77)
    grids = tile_grids()
    assert check_segmentation(path, grids) == "raster"
    rasterise_segmentation(str(path), "T1", grids["T1"].to_dict(), str(tmp_path / "out"), stripe_pixels=60 * 5)
    result, _ = read(OutputLayout(tmp_path / "out").segments("T1"))
    assert result.dtype == np.uint32
    assert np.all(result[:4] == 0)  # 0 and nodata rows of the 20 m file
    np.testing.assert_array_equal(result[4:, :], np.repeat(np.repeat(ids[2:20, :30], 2, 0), 2, 1))


def test_polygons_of_a_raster_dissolved_across_stripes(tmp_path):
    ids = np.zeros((40, 60), np.uint32)
    ids[3:30, 5:20] = 4_000_000_000
    ids[10:12, 30:50] = 7
    ids[35:38, 30:33] = 7  # a second part of segment 7
    path = write_ids(tmp_path / "segments.tif", ids, tile_grids()["T1"].transform)
    grid = tile_grids()["T1"].to_dict()
    rasterise_segmentation(str(path), "T1", grid, str(tmp_path))
    frame = segment_polygons("T1", grid, str(tmp_path), str(path), stripe_pixels=60 * 4)
    assert frame["segment"].tolist() == [7, 4_000_000_000] and frame["segment"].dtype == np.uint32
    assert frame.crs == UTM
    areas = dict(zip(frame["segment"].tolist(), frame.area.round().tolist()))
    assert areas == {7: (40 + 9) * 100, 4_000_000_000: 27 * 15 * 100}
    assert frame.geometry.iloc[1].geom_type == "Polygon" and frame.geometry.iloc[0].geom_type == "MultiPolygon"


def test_polygons_of_slic_superpixels(tmp_path):
    ids = np.repeat(np.repeat(np.arange(1, 13, dtype=np.uint32).reshape(3, 4), 10, 0), 15, 1)[:, :]
    ids = np.vstack([ids, np.zeros((10, 60), np.uint32)])
    target = OutputLayout(tmp_path).slic("T1")
    target.parent.mkdir(parents=True)
    write_ids(target, ids, tile_grids()["T1"].transform)
    frame = segment_polygons("T1", tile_grids()["T1"].to_dict(), str(tmp_path), None, stripe_pixels=60 * 7)
    assert frame["segment"].tolist() == list(range(1, 13))
    assert np.allclose(frame.area, 150 * 100)


def test_polygons_of_a_vector_are_its_geometries(tmp_path):
    path = tmp_path / "segments.gpkg"
    polygons().to_file(path)
    grid = tile_grids()["T2"].to_dict()
    rasterise_segmentation(str(path), "T2", grid, str(tmp_path))
    frame = segment_polygons("T2", grid, str(tmp_path), str(path))
    assert frame["segment"].tolist() == [2]
    assert frame.geometry.iloc[0].equals(polygons().geometry.iloc[1])  # the whole input polygon


@pytest.mark.parametrize("case", ["missing", "no feature", "lines", "no crs", "zeros", "negative", "fraction",
                                  "elsewhere", "not a file"])
def test_bad_segmentations(tmp_path, case):
    grids = tile_grids()
    path = tmp_path / "segments.gpkg"
    if case == "no feature":
        polygons().iloc[:0].to_file(path)
    elif case == "lines":
        gpd.GeoDataFrame({"a": [1]}, geometry=[LineString([(X0, Y0 - 10), (X0 + 100, Y0 - 50)])],
                         crs=UTM).to_file(path)
    elif case == "no crs":
        path = write_ids(tmp_path / "segments.tif", np.ones((5, 5), np.uint16), Affine(10, 0, X0, 0, -10, Y0),
                         crs=None)
    elif case == "zeros":
        path = write_ids(tmp_path / "segments.tif", np.zeros((5, 5), np.uint32), Affine(10, 0, X0, 0, -10, Y0))
    elif case == "negative":
        path = write_ids(tmp_path / "segments.tif", np.full((5, 5), -3, np.int16), Affine(10, 0, X0, 0, -10, Y0))
    elif case == "fraction":
        path = write_ids(tmp_path / "segments.tif", np.full((5, 5), 2.5, np.float32), Affine(10, 0, X0, 0, -10, Y0))
    elif case == "elsewhere":
        polygons().iloc[4:].to_file(path)
    elif case == "not a file":
        path = tmp_path / "segments.bin"
        path.write_bytes(b"\x00garbage")
    expected = {"missing": "does not exist", "no feature": "no segment", "lines": "must contain polygons",
                "no crs": "has no CRS", "zeros": "holds no segment", "negative": "holds the value -3",
                "fraction": "fractional", "elsewhere": "covers none of the tiles T1, T2",
                "not a file": "neither a raster nor a vector"}[case]
    with pytest.raises(InputDataError, match=expected) as error:
        check_segmentation(path, grids)
    assert "obia.obia_segmentation_path" in str(error.value) and str(path) in str(error.value)
    if case == "elsewhere":
        assert "EPSG:32631" in str(error.value) and "505000.0" in str(error.value)


def test_uncovered_tiles_are_named(tmp_path, caplog):
    path = tmp_path / "segments.gpkg"
    polygons().iloc[:1].to_file(path)
    with caplog.at_level(logging.WARNING):
        assert check_segmentation(path, tile_grids()) == "vector"
    assert "does not cover tile(s) T2" in caplog.text
    with caplog.at_level(logging.WARNING):
        rasterise_segmentation(str(path), "T2", tile_grids()["T2"].to_dict(), str(tmp_path))
    assert "no segment on the tile" in caplog.text
    assert not read(OutputLayout(tmp_path).segments("T2"))[0].any()


def test_bad_ids_in_a_tile_leave_no_file(tmp_path):
    ids = np.full((40, 60), 5, np.int64)
    ids[20, 20] = 2**33
    path = write_ids(tmp_path / "segments.tif", ids, tile_grids()["T1"].transform)
    with pytest.raises(InputDataError, match="8589934592"):
        rasterise_segmentation(str(path), "T1", tile_grids()["T1"].to_dict(), str(tmp_path / "out"))
    assert not list((tmp_path / "out").rglob("*.tif*"))
    assert segmentation_kind(path) == "raster"
