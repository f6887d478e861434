"""Ground truth that must never turn into a wrong map: damaged shapefiles, missing geometries, labels a map
cannot hold. Every file is a real vector file written by geopandas and then damaged on disk."""

from __future__ import annotations

import logging
import shutil

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from shapely.geometry import box

from iota2.builders.ground_truth import check_labels, check_shapefile, read_polygons
from iota2.core.errors import InputDataError

N = 100


def polygons(count: int = N, offset: int = 0) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": (np.arange(count) % 5 + 1).astype(np.int64)},
                            geometry=[box(10 * (i + offset), 0, 10 * (i + offset) + 5, 5) for i in range(count)],
                            crs="EPSG:32631")


@pytest.fixture
def shapefile(tmp_path):
    path = tmp_path / "truth" / "gt.shp"
    path.parent.mkdir()
    polygons().to_file(path)
    return path


def cut(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def read(path):
    return read_polygons(str(path), "ground truth", "chain.ground_truth")


def test_intact_shapefile_is_read_whole(shapefile):
    check_shapefile(shapefile, "ground truth", "chain.ground_truth")
    assert len(read(shapefile)) == N


def test_truncated_shp_is_refused(shapefile):
    """GDAL reads a .shp cut in half without an error: 51 of the 100 features come without geometry."""
    cut(shapefile)
    frame = pyogrio.read_dataframe(shapefile)
    assert len(frame) == N and frame.geometry.isna().sum() > 0  # what a plain read gives
    with pytest.raises(InputDataError) as error:
        read(shapefile)
    message = str(error.value)
    assert str(shapefile) in message and "gt.shp is" in message and "chain.ground_truth" in message


def test_shp_cut_at_a_record_boundary_with_a_rewritten_header_is_refused(shapefile):
    """A .shp whose header length was made to match the cut: the .shx still lists the lost shapes."""
    data = bytearray(shapefile.read_bytes())
    index = np.frombuffer(shapefile.with_suffix(".shx").read_bytes(), ">i4", offset=100).reshape(-1, 2)
    end = int(index[60, 0]) * 2  # start of record 61
    data = data[:end]
    data[24:28] = (end // 2).to_bytes(4, "big")
    shapefile.write_bytes(bytes(data))
    with pytest.raises(InputDataError, match="lacks 40 of the 100 shapes listed in gt.shx"):
        read(shapefile)


@pytest.mark.parametrize("suffix, message", [(".shx", "gt.shx is"), (".dbf", "too short for the 100 records")])
def test_truncated_shx_or_dbf_is_refused(shapefile, suffix, message):
    cut(shapefile.with_suffix(suffix))
    with pytest.raises(InputDataError) as error:
        read(shapefile)
    assert message in str(error.value) and str(shapefile) in str(error.value)


@pytest.mark.parametrize("other_count", [50, 150])
def test_dbf_of_another_export_is_refused(shapefile, tmp_path, other_count):
    """A .dbf with fewer records silently gives 50 features instead of 100; the record counts disagree."""
    other = tmp_path / "other" / "gt.shp"
    other.parent.mkdir()
    polygons(other_count).to_file(other)
    shutil.copy(other.with_suffix(".dbf"), shapefile.with_suffix(".dbf"))
    with pytest.raises(InputDataError, match=f"gt.dbf has {other_count} records but gt.shx lists {N} shapes"):
        read(shapefile)


def test_other_formats_are_not_checked_as_shapefiles(tmp_path):
    path = tmp_path / "gt.gpkg"
    polygons().to_file(path)
    check_shapefile(path, "ground truth", "chain.ground_truth")
    assert len(read(path)) == N


@pytest.mark.parametrize("name", ["gt.shp", "gt.gpkg"])
def test_features_without_geometry_are_dropped_with_one_warning(tmp_path, caplog, name):
    frame = polygons(10)
    frame.loc[[2, 7], "geometry"] = None
    frame.loc[4, "geometry"] = box(0, 0, 1, 1).buffer(-5)  # empty
    path = tmp_path / name
    frame.to_file(path)
    with caplog.at_level(logging.WARNING):
        kept = read(path)
        read(path)
    assert len(kept) == 7
    warnings = [r.getMessage() for r in caplog.records if "no geometry" in r.getMessage()]
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "3 of 10 features" in warnings[0] and "rows 2, 4, 7)" in warnings[0]


def test_file_without_any_geometry_is_refused(tmp_path):
    frame = polygons(3)
    frame["geometry"] = None
    path = tmp_path / "nothing.gpkg"
    frame.to_file(path)
    with pytest.raises(InputDataError, match="none of its 3 features has a geometry"):
        read(path)


def test_labels_above_the_map_range_are_refused():
    """A class 70000 would appear as 4464 in a uint16 map."""
    frame = polygons(6)
    frame.loc[[1, 4], "code"] = [70000, 65536]
    with pytest.raises(InputDataError) as error:
        check_labels(frame, "code", "gt.shp")
    message = str(error.value)
    for part in ("gt.shp", "chain.ground_truth", "'code' (chain.data_field)", "65536, 70000", "65535"):
        assert part in message
    frame.loc[[1, 4], "code"] = [65535, 1]
    assert check_labels(frame, "code", "gt.shp").max() == 65535
