"""Slope and aspect (Horn, gdaldem conventions) and the ``iota2 terrain`` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from iota2.cli import main
from iota2.sensors.terrain import FLAT_ASPECT, slope_aspect


def plane(a, b, rows=12, cols=15, res=10.0):
    """z = a * x + b * y with x eastwards and y northwards (metres), on a north-up grid."""
    x = (np.arange(cols) + 0.5) * res
    y = -(np.arange(rows) + 0.5) * res
    return a * x[np.newaxis, :] + b * y[:, np.newaxis] + 300.0


@pytest.mark.parametrize("a, b, aspect", [
    (0.0, -0.1, 0.0),      # lower to the north: faces north
    (-0.2, 0.0, 90.0),     # lower to the east: faces east
    (0.0, 0.3, 180.0),     # faces south
    (0.25, 0.0, 270.0),    # faces west
    (0.1, 0.05, math.degrees(math.atan2(-0.1, -0.05)) % 360.0),  # rises to the north-east: faces south-west
])
def test_planes(a, b, aspect):
    slope, aspects = slope_aspect(plane(a, b), 10.0, 10.0)
    np.testing.assert_allclose(slope, math.degrees(math.atan(math.hypot(a, b))), atol=1e-4)
    np.testing.assert_allclose(aspects, aspect, atol=1e-3)


def test_flat_and_nodata():
    dem = np.full((6, 7), 12.0)
    slope, aspect = slope_aspect(dem, 10.0, 10.0)
    assert np.all(slope == 0.0) and np.all(aspect == FLAT_ASPECT)
    dem[3, 3] = np.nan
    slope, aspect = slope_aspect(dem, 10.0, 10.0)
    assert np.isnan(slope[2:5, 2:5]).all() and np.isnan(aspect[2:5, 2:5]).all()
    assert np.isfinite(slope[0]).all()


def test_pixel_size_in_metres_matters():
    dem = plane(-0.2, 0.0, res=20.0)
    slope, _ = slope_aspect(dem, 20.0, 20.0)
    np.testing.assert_allclose(slope, math.degrees(math.atan(0.2)), atol=1e-4)


def write(path, array, affine, crs, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype.name, crs=crs, transform=affine, nodata=nodata) as dst:
        dst.write(array, 1)
    return path


def test_cli_writes_the_three_rasters_on_the_reference_grid(tmp_path):
    utm = CRS.from_epsg(32631)
    x0, y0 = 300000.0, 4900020.0
    reference = write(tmp_path / "ref.tif", np.zeros((30, 40), np.int16), Affine(10.0, 0, x0, 0, -10.0, y0), utm)
    # DEM: 30 m pixels, shifted, larger than the tile: z = 500 - 0.1 (x - x0) (faces east, slope atan(0.1))
    left, top = x0 - 97.0, y0 + 113.0
    cols, rows = np.meshgrid(np.arange(25) + 0.5, np.arange(20) + 0.5)
    dem = (500.0 - 0.1 * (left + 30.0 * cols - x0)).astype(np.float32)
    write(tmp_path / "dem.tif", dem, Affine(30.0, 0, left, 0, -30.0, top), utm, -9999.0)
    out = tmp_path / "features"
    assert main(["terrain", str(tmp_path / "dem.tif"), "--like", str(reference), "--out", str(out),
                 "--tile", "T31TCJ"]) == 0
    with rasterio.open(reference) as ref:
        grid = (ref.crs, ref.transform, ref.shape)
    values = {}
    for name in ("mnt", "pente", "aspect"):
        with rasterio.open(out / "T31TCJ" / f"{name}.tif") as src:
            assert (src.crs, src.transform, src.shape) == grid
            values[name] = src.read(1)
    assert values["mnt"][4, 7] == pytest.approx(500.0 - 0.1 * 75.0, abs=1e-3)  # pixel centre x = x0 + 75
    np.testing.assert_allclose(values["pente"], math.degrees(math.atan(0.1)), atol=1e-3)
    np.testing.assert_allclose(values["aspect"], 90.0, atol=1e-2)


def test_cli_refuses_geographic_reference(tmp_path, capsys):
    reference = write(tmp_path / "ref.tif", np.zeros((10, 10), np.int16), Affine(0.001, 0, 1.0, 0, -0.001, 44.0),
                      CRS.from_epsg(4326))
    dem = write(tmp_path / "dem.tif", np.ones((10, 10), np.float32), Affine(0.001, 0, 1.0, 0, -0.001, 44.0),
                CRS.from_epsg(4326))
    assert main(["terrain", str(dem), "--like", str(reference), "--out", str(tmp_path / "o")]) == 2
    assert "geographic" in capsys.readouterr().err


def test_terrain_registers_its_command_and_needs_no_other_sensor(tmp_path):
    """``iota2 terrain`` comes from the terrain module's own plugin entry, and terrain runs without importing the
    user-features sensor (which imports nothing of terrain)."""
    import subprocess
    import sys

    from iota2.core import plugins
    from iota2.sensors import terrain

    assert plugins.commands()["terrain"] is terrain.main
    providers = {row["module"]: row["provides"] for row in plugins.describe_plugins()}
    assert "command:terrain" in providers["iota2.sensors.terrain"]
    assert "command:terrain" not in providers["iota2.sensors.user_features"]
    affine = Affine(30.0, 0, 500000.0, 0, -30.0, 4800000.0)
    dem = write(tmp_path / "dem.tif", plane(0.1, 0.0, res=30.0).astype(np.float32), affine, CRS.from_epsg(32631))
    code = ("import sys, iota2.sensors.terrain as t; "
            f"t.terrain({str(dem)!r}, {str(dem)!r}, {str(tmp_path / 'out')!r}); "
            "sys.exit(3 if 'iota2.sensors.user_features' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert (tmp_path / "out" / "pente.tif").exists()
    code = "import sys, iota2.sensors.user_features; sys.exit(3 if 'iota2.sensors.terrain' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
