"""Terrain variables from a DEM: elevation, slope and aspect on a reference grid (``iota2 terrain``).

The command replaces iota2's manual preparation of topographic user features (``otbcli_Superimpose``
then ``gdaldem slope`` / ``gdaldem aspect``)::

    iota2 terrain DEM.tif --like SENTINEL2A_..._FRE_B2.tif --out user_features [--tile T31TCJ]

It resamples the DEM onto the grid of the reference raster (bilinear) and writes ``mnt.tif``
(elevation), ``pente.tif`` (slope, degrees) and ``aspect.tif`` (aspect, degrees clockwise from north),
whose names hold the patterns of the labwork's ``userFeat.patterns: "mnt pente aspect"``.

Slope and aspect follow ``gdaldem`` (Horn's 3x3 method). Border pixels are computed by linear
extrapolation of the DEM one pixel outwards (exact on planes; ``gdaldem`` writes nodata there unless
``-compute_edges``). Pixels whose 3x3 neighbourhood touches DEM nodata get nodata.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import rasterio

from iota2.core.errors import ConfigError
from iota2.core.hookspecs import hookimpl
from iota2.core.raster import Grid, atomic_output, read_onto_grid

LOGGER = logging.getLogger(__name__)

#: nodata of the written rasters, and aspect of flat pixels (gdaldem's convention)
NODATA = -9999.0
FLAT_ASPECT = -9999.0


def _horn_gradients(dem: np.ndarray, x_res: float, y_res: float) -> tuple[np.ndarray, np.ndarray]:
    """Horn's ``dz/dx`` (towards east) and ``dz/dy`` (towards south, i.e. down the rows), per pixel.

    NaN in ``dem`` gives NaN gradients in the 3x3 neighbourhood.
    """
    z = np.asarray(dem, dtype=np.float64)
    padded = np.empty((z.shape[0] + 2, z.shape[1] + 2), dtype=np.float64)
    padded[1:-1, 1:-1] = z
    # linear extrapolation one pixel outwards: planes stay planes at the borders
    if z.shape[1] > 1:
        padded[1:-1, 0] = 2 * z[:, 0] - z[:, 1]
        padded[1:-1, -1] = 2 * z[:, -1] - z[:, -2]
    else:
        padded[1:-1, 0] = padded[1:-1, -1] = z[:, 0]
    if z.shape[0] > 1:
        padded[0] = 2 * padded[1] - padded[2]
        padded[-1] = 2 * padded[-2] - padded[-3]
    else:
        padded[0] = padded[-1] = padded[1]
    a, b, c = padded[:-2, :-2], padded[:-2, 1:-1], padded[:-2, 2:]
    d, f = padded[1:-1, :-2], padded[1:-1, 2:]
    g, h, i = padded[2:, :-2], padded[2:, 1:-1], padded[2:, 2:]
    dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * x_res)
    dy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * y_res)
    return dx, dy


def slope_aspect(dem: np.ndarray, x_res: float, y_res: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect of a north-up DEM with Horn's method, as ``gdaldem slope`` / ``gdaldem aspect``.

    Parameters
    ----------
    dem
        (rows, cols) elevations in metres; NaN marks nodata.
    x_res, y_res
        Pixel width and height in metres (positive).

    Returns
    -------
    slope : numpy.ndarray
        float32 degrees in [0, 90); NaN on and next to nodata.
    aspect : numpy.ndarray
        float32 degrees clockwise from north in [0, 360) giving the direction the slope faces
        (downhill): 0 north, 90 east, 180 south, 270 west; :data:`FLAT_ASPECT` where the surface is
        flat; NaN on and next to nodata.
    """
    dx, dy = _horn_gradients(dem, float(x_res), float(y_res))
    slope = np.degrees(np.arctan(np.hypot(dx, dy)))
    slope[np.isnan(np.asarray(dem, dtype=np.float64))] = np.nan  # gdaldem: nodata centre, nodata result
    # gdaldem: aspect = atan2(dy, -dx), then 90 - a (or 450 - a above 90) for degrees from north
    angle = np.degrees(np.arctan2(dy, -dx))
    aspect = np.where(angle > 90.0, 450.0 - angle, 90.0 - angle)
    aspect = np.where(aspect >= 360.0, aspect - 360.0, aspect)
    flat = (np.abs(dx) < 1e-12) & (np.abs(dy) < 1e-12)
    aspect = np.where(flat, FLAT_ASPECT, aspect)
    aspect = np.where(np.isnan(slope), np.nan, aspect)
    return slope.astype(np.float32), aspect.astype(np.float32)


def dem_onto_grid(dem_path: str | Path, grid: Grid) -> np.ndarray:
    """Band 1 of ``dem_path`` resampled (bilinear) onto ``grid`` as float32, NaN outside or on nodata.

    Read as user features read their rasters (interpolated in float32 with an exact transformer, see
    :func:`iota2.core.raster.read_onto_grid`), so that ``mnt.tif`` holds what user features would read from the
    DEM itself."""
    values, valid = read_onto_grid(dem_path, grid, rasterio.enums.Resampling.bilinear, np.nan, bands=1,
                                   resampled_direct=False, dtype="float32", tolerance=0.0, with_valid=True)
    return np.where(valid, values, np.nan).astype(np.float32)


def _write(path: Path, grid: Grid, array: np.ndarray) -> None:
    data = np.where(np.isnan(array), NODATA, array).astype(np.float32)
    with atomic_output(path) as tmp:
        with rasterio.open(tmp, "w", **grid.profile(1, "float32", nodata=NODATA, compress="DEFLATE")) as dst:
            dst.write(data, 1)


def terrain(dem_path: str | Path, like: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write ``mnt.tif``, ``pente.tif`` and ``aspect.tif`` of a DEM on the grid of the raster ``like``.

    Parameters
    ----------
    dem_path
        DEM in any CRS and resolution (metres of elevation; its nodata is honoured).
    like
        Reference raster (e.g. a Sentinel-2 band of the tile) whose grid the outputs share; its CRS
        must be projected (pixel size in metres).
    out_dir
        Output folder, created if needed.

    Returns
    -------
    dict
        ``{"mnt": path, "pente": path, "aspect": path}``.

    Raises
    ------
    ConfigError
        If the reference grid is in a geographic CRS or is not north-up.
    """
    grid = Grid.from_file(like)
    if grid.crs is None:
        raise ConfigError(f"reference raster '{like}' has no CRS; pass a georeferenced raster to --like")
    if grid.crs.is_geographic:
        raise ConfigError(f"reference raster '{like}' is in a geographic CRS ({grid.crs.to_string()}): slopes need "
                          "pixel sizes in metres; pass a raster in a projected CRS (e.g. UTM) to --like")
    if grid.transform.b or grid.transform.d or grid.transform.e >= 0:
        raise ConfigError(f"reference raster '{like}' is not north-up; pass a north-up raster to --like")
    x_res, y_res = grid.resolution
    try:
        factor = float(grid.crs.linear_units_factor[1])
    except Exception:  # noqa: BLE001 - CRS without declared units: assume metres
        factor = 1.0
    dem = dem_onto_grid(dem_path, grid)
    if np.isnan(dem).all():
        raise ConfigError(f"DEM '{dem_path}' does not overlap the reference raster '{like}'")
    slope, aspect = slope_aspect(dem, x_res * factor, y_res * factor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"mnt": out_dir / "mnt.tif", "pente": out_dir / "pente.tif", "aspect": out_dir / "aspect.tif"}
    for key, array in (("mnt", dem), ("pente", slope), ("aspect", aspect)):
        _write(paths[key], grid, array)
    return paths


def main(argv: list[str]) -> int:
    """``iota2 terrain DEM --like REF --out DIR [--tile NAME]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="iota2 terrain",
        description="Resample a DEM onto a reference grid (bilinear) and write mnt.tif (elevation), pente.tif "
                    "(slope, degrees, Horn) and aspect.tif (degrees clockwise from north, flat = -9999), ready for "
                    "userFeat.patterns: 'mnt pente aspect'.")
    parser.add_argument("dem", help="DEM raster, any CRS and resolution")
    parser.add_argument("--like", required=True, help="reference raster whose grid the outputs share "
                        "(e.g. a Sentinel-2 band of the tile)")
    parser.add_argument("--out", required=True, help="output folder (the user_feat_path root with --tile)")
    parser.add_argument("--tile", default=None, help="tile name: write into OUT/<tile>/, the layout read by "
                        "chain.user_feat_path")
    args = parser.parse_args(argv)
    out_dir = Path(args.out) / args.tile if args.tile else Path(args.out)
    paths = terrain(args.dem, args.like, out_dir)
    print(f"wrote {', '.join(str(path) for path in paths.values())}")
    return 0


@hookimpl
def iota2_register_commands():
    """Register ``iota2 terrain`` (DEM -> mnt, pente, aspect on a reference grid)."""
    return {"terrain": main}
