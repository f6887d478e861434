"""Precomputed user features: pattern matching, errors, on-the-fly alignment, labels, windows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform, transform_bounds
from rasterio.windows import Window

from iota2.core.config import validate
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import Grid
from iota2.sensors.user_features import NODATA, UserFeatures

UTM = CRS.from_epsg(32631)
L93 = CRS.from_epsg(2154)
X0, Y0 = 300000.0, 4900020.0
#: the tile grid: 60 x 50 pixels of 10 m in UTM 31N
GRID = Grid(UTM, Affine(10.0, 0.0, X0, 0.0, -10.0, Y0), 60, 50)
FULL = Window(0, 0, GRID.width, GRID.height)


def write(path, array, affine, crs, nodata=None):
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype=array.dtype.name, crs=crs, transform=affine, nodata=nodata) as dst:
        dst.write(array)
    return path


def aligned(path, value=1.0):
    """A raster exactly on the tile grid, constant ``value``."""
    return write(path, np.full((GRID.height, GRID.width), value, np.float32), GRID.transform, UTM)


def sensor(root, tile="T31TCJ", **user_feat):
    config = validate({"chain": {"output_path": str(root / "out"), "list_tile": tile, "user_feat_path": str(root)},
                       "userFeat": user_feat})
    return UserFeatures(config, tile)


def test_labwork_patterns_match_case_insensitive_and_keep_order(tmp_path):
    folder = tmp_path / "T31TCJ"
    aligned(folder / "T31TCJ_MNT_10m.tif", 100.0)
    aligned(folder / "pente.tif", 5.0)
    aligned(folder / "Aspect.TIF", 270.0)
    (folder / "pente.tif.aux.xml").write_text("<PAMDataset/>")  # sidecars are not rasters
    user = sensor(tmp_path, patterns="mnt pente aspect")
    user.check_inputs(GRID)
    data = user.read(GRID, FULL, [])
    assert data.labels == ["userfeatures_mnt", "userfeatures_pente", "userfeatures_aspect"]
    assert data.features.shape == (GRID.height, GRID.width, 3)
    assert np.all(data.features[..., 0] == 100.0) and np.all(data.features[..., 2] == 270.0)
    assert data.input_dates == [] and data.interpolation_dates == []
    assert data.raw.shape[0] == 0 and data.masks.shape[0] == 0 and data.interpolated.shape[0] == 0
    assert not data.validity.any() and data.footprint.all()
    assert user.interpolation_dates(user.config, {"T31TCJ": []}) == []


def test_comma_patterns_arbo_and_tile_folder_containing_the_tile_name(tmp_path):
    folder = tmp_path / "features_T31TCJ_v2"
    aligned(folder / "sub" / "alt.tif", 1.0)
    aligned(folder / "sub" / "slp.tif", 2.0)
    aligned(folder / "asp.tif", 3.0)  # not under the arbo glob
    user = sensor(tmp_path, patterns="ALT, SLP", arbo="/*/*")
    assert [path.name for path in user.files.values()] == ["alt.tif", "slp.tif"]
    assert user.read(GRID, FULL, []).labels == ["userfeatures_alt", "userfeatures_slp"]


def test_default_patterns():
    config = validate({"chain": {"output_path": "/tmp/x", "list_tile": "T31TCJ"}})
    assert UserFeatures(config, "T31TCJ").patterns == ["ALT", "ASP", "SLP"]
    assert not UserFeatures.enabled(config)


def test_pattern_without_file_names_pattern_folder_and_files(tmp_path):
    folder = tmp_path / "T31TCJ"
    aligned(folder / "mnt.tif")
    aligned(folder / "pente.tif")
    with pytest.raises(InputDataError) as error:
        sensor(tmp_path, patterns="mnt pente aspect").check_inputs(GRID)
    message = str(error.value)
    assert "'aspect'" in message and str(folder) in message and "mnt.tif" in message and "pente.tif" in message


def test_pattern_matching_two_files(tmp_path):
    folder = tmp_path / "T31TCJ"
    aligned(folder / "mnt.tif")
    aligned(folder / "mnt_old.tif")
    with pytest.raises(InputDataError, match=r"2 rasters .*mnt\.tif.*mnt_old\.tif.*'mnt'"):
        sensor(tmp_path, patterns="mnt").check_inputs(GRID)


def test_missing_tile_folder(tmp_path):
    aligned(tmp_path / "T31TDJ" / "mnt.tif")
    with pytest.raises(InputDataError, match="T31TCJ"):
        sensor(tmp_path, patterns="mnt").check_inputs(GRID)


def test_categorical_pattern_must_be_a_pattern(tmp_path):
    aligned(tmp_path / "T31TCJ" / "mnt.tif")
    with pytest.raises(ConfigError, match="geol"):
        sensor(tmp_path, patterns="mnt", categorical_patterns="geol").check_inputs(GRID)


def plane_l93(x, y):
    """A plane in Lambert-93 coordinates (metres)."""
    return 150.0 + 0.01 * (x - 500000.0) + 0.02 * (y - 6350000.0)


def write_l93_plane(path, margin=200.0):
    """The plane in Lambert-93 at 30 m, covering the tile with ``margin``."""
    left, bottom, right, top = transform_bounds(UTM, L93, *GRID.bounds, densify_pts=21)
    left, top = np.floor((left - margin) / 30.0) * 30.0 + 7.0, np.ceil((top + margin) / 30.0) * 30.0 - 4.0
    width, height = int((right + margin - left) / 30.0) + 1, int((top - bottom + margin) / 30.0) + 1
    affine = Affine(30.0, 0.0, left, 0.0, -30.0, top)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = affine @ (cols, rows)
    return write(path, plane_l93(x, y).astype(np.float32), affine, L93, -9999.0)


def test_raster_in_another_crs_and_resolution_is_aligned(tmp_path):
    write_l93_plane(tmp_path / "T31TCJ" / "mnt.tif")
    user = sensor(tmp_path, patterns="mnt")
    user.check_inputs(GRID)
    values = user.read(GRID, FULL, []).features[..., 0]
    # hand check at pixel (row 10, col 20): centre (300205, 4899915) in UTM 31N, projected to Lambert-93
    (x,), (y,) = transform(UTM, L93, [X0 + 20 * 10 + 5], [Y0 - 10 * 10 - 5])
    assert values[10, 20] == pytest.approx(plane_l93(x, y), abs=2e-3)
    # and everywhere: bilinear interpolation of a plane is exact
    cols, rows = np.meshgrid(np.arange(GRID.width) + 0.5, np.arange(GRID.height) + 0.5)
    xs, ys = transform(UTM, L93, *(GRID.transform @ (cols.ravel(), rows.ravel())))
    np.testing.assert_allclose(values.ravel(), plane_l93(np.array(xs), np.array(ys)), atol=2e-3)


def test_shifted_30m_raster_same_crs_hand_value(tmp_path):
    # 30 m pixels, origin shifted by (-37, +23) m: z = x_offset / 10 (one unit per 10 m eastwards)
    left, top = X0 - 37.0, Y0 + 23.0
    centres = left + 30.0 * (np.arange(25) + 0.5)
    array = np.tile((centres - X0) / 10.0, (20, 1)).astype(np.float32)
    write(tmp_path / "T31TCJ" / "east.tif", array, Affine(30.0, 0.0, left, 0.0, -30.0, top), UTM)
    values = sensor(tmp_path, patterns="east").read(GRID, FULL, []).features[..., 0]
    # pixel (0, 3): centre x = X0 + 35 -> 3.5
    assert values[0, 3] == pytest.approx(3.5, abs=1e-4)
    assert values[7, 12] == pytest.approx(12.5, abs=1e-4)


def test_categorical_rasters_use_nearest(tmp_path):
    left, top = X0 - 37.0, Y0 + 23.0
    classes = (np.add.outer(np.arange(20), np.arange(25)) % 3 + 1).astype(np.uint8)
    write(tmp_path / "T31TCJ" / "geol.tif", classes, Affine(30.0, 0.0, left, 0.0, -30.0, top), UTM, nodata=0)
    nearest = sensor(tmp_path, patterns="geol", categorical_patterns="geol").read(GRID, FULL, []).features[..., 0]
    assert set(np.unique(nearest)) <= {1.0, 2.0, 3.0}
    # tile pixel (row 4, col 6): centre (X0 + 65, Y0 - 45) lies in source pixel (row (23+45)//30, col (37+65)//30)
    assert nearest[4, 6] == classes[(23 + 45) // 30, (37 + 65) // 30]
    bilinear = sensor(tmp_path, patterns="geol").read(GRID, FULL, []).features[..., 0]
    assert not np.all(np.isin(bilinear, [1.0, 2.0, 3.0]))


def test_multiband_labels(tmp_path):
    array = np.stack([np.full((GRID.height, GRID.width), k, np.float32) for k in (1, 2)])
    write(tmp_path / "T31TCJ" / "clim.tif", array, GRID.transform, UTM)
    aligned(tmp_path / "T31TCJ" / "mnt.tif", 7.0)
    user = sensor(tmp_path, patterns="CLIM,mnt")
    data = user.read(GRID, FULL, [])
    assert data.labels == ["userfeatures_clim_b1", "userfeatures_clim_b2", "userfeatures_mnt"]
    assert data.features[0, 0].tolist() == [1.0, 2.0, 7.0]


def test_window_and_pixels_equal_the_full_read(tmp_path):
    write_l93_plane(tmp_path / "T31TCJ" / "mnt.tif")
    user = sensor(tmp_path, patterns="mnt")
    full = user.read(GRID, FULL, []).features
    window = Window(13, 7, 21, 25)
    part = user.read(GRID, window, []).features
    np.testing.assert_allclose(part, full[7:32, 13:34], rtol=0, atol=1e-4)
    rows, cols = np.array([0, 3, 24]), np.array([0, 20, 5])
    picked = user.read(GRID, window, [], pixels=(rows, cols))
    assert picked.features.shape == (1, 3, 1)
    np.testing.assert_allclose(picked.features[0, :, 0], part[rows, cols, 0], atol=0)


def test_partial_coverage_warns_and_gives_nodata(tmp_path, caplog):
    half = np.full((GRID.height, GRID.width // 2), 5.0, np.float32)
    write(tmp_path / "T31TCJ" / "mnt.tif", half, GRID.transform, UTM)
    user = sensor(tmp_path, patterns="mnt")
    with caplog.at_level(logging.WARNING):
        user.check_inputs(GRID)
    assert "does not fully cover" in caplog.text
    data = user.read(GRID, FULL, [])
    assert data.footprint[:, :30].all() and not data.footprint[:, 30:].any()
    assert np.all(data.features[:, 30:, 0] == NODATA)
    validity, footprint = user.read_masks(GRID, FULL)
    assert not validity.any() and np.array_equal(footprint, data.footprint)


def test_conformance_check_passes_for_a_sensor_without_dates(tmp_path):
    from iota2.core.sensor_checks import check_sensor

    aligned(tmp_path / "T31TCJ" / "T31TCJ_mnt.tif", 120.0)
    aligned(tmp_path / "T31TCJ" / "T31TCJ_pente.tif", 3.0)
    config = validate({"chain": {"output_path": str(tmp_path / "out"), "list_tile": "T31TCJ",
                                 "user_feat_path": str(tmp_path)}, "userFeat": {"patterns": "mnt pente"}})
    check_sensor(UserFeatures, config, "T31TCJ", grid=GRID)
