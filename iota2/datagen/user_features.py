"""Synthetic DEM and per-tile precomputed user features for a dataset of :mod:`iota2.datagen.sentinel2`.

The DEM is deliberately *not* aligned with the Sentinel-2 tiles: it is written in another CRS
(Lambert-93, EPSG:2154, by default) at another resolution (25 m), so that it exercises the on-the-fly
resampling of :mod:`iota2.sensors.user_features`. Its surface is a tilted plane plus a few smooth
Gaussian hills (:func:`elevation`).

Per tile, ``<out_dir>/user_features/<tile>/`` holds crops of the DEM grid covering the tile
(``<tile>_mnt.tif``, ``<tile>_pente.tif``, ``<tile>_aspect.tif``: elevation, slope and aspect computed on
the DEM grid) and a categorical ``<tile>_landform.tif`` (1 valley, 2 mid-slope, 3 high ground) at 50 m.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from iota2.sensors.terrain import slope_aspect

__all__ = ["elevation", "generate_user_features"]

#: nodata of the written rasters
NODATA = -9999.0
#: (dx, dy, height, radius) of the hills relative to the area centre, metres
_HILLS = ((-400.0, 300.0, 60.0, 350.0), (500.0, -200.0, 40.0, 250.0), (100.0, -600.0, 25.0, 400.0))


def elevation(x: np.ndarray, y: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """Elevation (m) at DEM-CRS coordinates: 200 m + a plane rising 2 % eastwards and 1 % northwards + hills."""
    dx, dy = np.asarray(x, dtype=np.float64) - centre[0], np.asarray(y, dtype=np.float64) - centre[1]
    z = 200.0 + 0.02 * dx + 0.01 * dy
    for hx, hy, height, radius in _HILLS:
        z = z + height * np.exp(-((dx - hx) ** 2 + (dy - hy) ** 2) / (2.0 * radius ** 2))
    return z


def _write(path: Path, array: np.ndarray, transform: Affine, crs: CRS, nodata) -> None:
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _tile_bounds(s2_path: Path, tile: str):
    band = next((s2_path / tile).glob("SENTINEL2*_L2A_*/*_FRE_B2.tif"))
    with rasterio.open(band) as src:
        return src.crs, src.bounds


def generate_user_features(out_dir: str | Path, dataset: dict, crs: str = "EPSG:2154", resolution: float = 25.0,
                           margin: float = 300.0) -> dict:
    """Write a DEM covering the dataset's area and one user-feature folder per tile.

    Parameters
    ----------
    out_dir
        Output folder; created if needed.
    dataset
        Result of :func:`iota2.datagen.sentinel2.generate_dataset` (``s2_path`` and ``tiles`` are read).
    crs
        CRS of the DEM (projected, metres).
    resolution
        DEM pixel size in metres.
    margin
        Extra distance (m) the DEM extends beyond the Sentinel-2 area on every side.

    Returns
    -------
    dict
        ``dem`` (path), ``user_feat_path`` (root of the tile folders), ``patterns`` (``"mnt pente aspect
        landform"``), ``categorical_patterns`` (``["landform"]``), ``crs``, ``resolution`` and
        ``centre`` (the DEM-CRS point :func:`elevation` is relative to).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s2_path = Path(dataset["s2_path"])
    dem_crs = CRS.from_user_input(crs)
    boxes = []
    for tile in dataset["tiles"]:
        tile_crs, bounds = _tile_bounds(s2_path, tile)
        boxes.append(transform_bounds(tile_crs, dem_crs, *bounds, densify_pts=21))
    left = math.floor((min(b[0] for b in boxes) - margin) / resolution) * resolution
    bottom = math.floor((min(b[1] for b in boxes) - margin) / resolution) * resolution
    right = math.ceil((max(b[2] for b in boxes) + margin) / resolution) * resolution
    top = math.ceil((max(b[3] for b in boxes) + margin) / resolution) * resolution
    width, height = int(round((right - left) / resolution)), int(round((top - bottom) / resolution))
    transform = Affine(resolution, 0.0, left, 0.0, -resolution, top)
    centre = ((left + right) / 2.0, (bottom + top) / 2.0)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = transform @ (cols, rows)
    dem = elevation(x, y, centre).astype(np.float32)
    slope, aspect = slope_aspect(dem, resolution, resolution)
    dem_path = out_dir / "dem.tif"
    _write(dem_path, dem, transform, dem_crs, NODATA)

    # landform classes at twice the DEM pixel size (another resolution again), nearest-neighbour material
    coarse = dem[: height // 2 * 2, : width // 2 * 2].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    low, high = np.quantile(coarse, [1 / 3, 2 / 3])
    landform = (1 + (coarse > low) + (coarse > high)).astype(np.uint8)
    coarse_transform = transform @ Affine.scale(2.0)

    root = out_dir / "user_features"
    for tile, bounds in zip(dataset["tiles"], boxes):
        folder = root / tile
        folder.mkdir(parents=True, exist_ok=True)
        pad = 3 * resolution
        window = from_bounds(bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad, transform)
        row0, col0 = max(int(math.floor(window.row_off)), 0), max(int(math.floor(window.col_off)), 0)
        row1 = min(int(math.ceil(window.row_off + window.height)), height)
        col1 = min(int(math.ceil(window.col_off + window.width)), width)
        crop_transform = rasterio.windows.transform(Window(col0, row0, col1 - col0, row1 - row0), transform)
        for name, array in (("mnt", dem), ("pente", slope), ("aspect", aspect)):
            _write(folder / f"{tile}_{name}.tif", np.ascontiguousarray(array[row0:row1, col0:col1]),
                   crop_transform, dem_crs, NODATA)
        r0, c0 = row0 // 2, col0 // 2
        r1, c1 = min((row1 + 1) // 2, landform.shape[0]), min((col1 + 1) // 2, landform.shape[1])
        _write(folder / f"{tile}_landform.tif", np.ascontiguousarray(landform[r0:r1, c0:c1]),
               rasterio.windows.transform(Window(c0, r0, c1 - c0, r1 - r0), coarse_transform), dem_crs, 0)
    return {"dem": str(dem_path.resolve()), "user_feat_path": str(root.resolve()),
            "patterns": "mnt pente aspect landform", "categorical_patterns": ["landform"],
            "crs": dem_crs.to_string(), "resolution": resolution, "centre": centre}
