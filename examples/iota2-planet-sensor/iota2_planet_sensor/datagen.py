"""Small PlanetScope-like scenes written from a synthetic THEIA data set (``iota2.datagen.sentinel2``).

The landscape, phenology and clouds are those of the Sentinel-2 products, up-sampled to ``resolution``
with a little noise, so that a classification of the Planet scenes can be checked against the
generator's class map and ground truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from iota2_planet_sensor.sensor import BANDS, NODATA

#: Sentinel-2 band used for each Planet band
S2_BANDS = {"blue": "B2", "green": "B3", "red": "B4", "nir": "B8"}


def write_planet_like(s2_path: str | Path, out_dir: str | Path, resolution: float = 5.0, seed: int = 0) -> Path:
    """Write ``<out_dir>/<tile>/<date>_101500_1001_3B_AnalyticMS_SR.tif`` and ``..._3B_udm.tif`` files.

    Parameters
    ----------
    s2_path
        ``s2_path`` of :func:`iota2.datagen.sentinel2.generate_dataset` (one sub-folder per tile).
    out_dir
        Output root (the ``chain.planet_path`` of a configuration).
    resolution
        Pixel size of the scenes in metres: 3 or 5 (any divisor of 10 works).
    seed
        Seed of the noise.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    for tile_folder in sorted(path for path in Path(s2_path).iterdir() if path.is_dir()):
        for product in sorted(path for path in tile_folder.iterdir() if path.is_dir()):
            date = product.name.split("_")[1].split("-")[0]
            bands = []
            for band in BANDS:
                with rasterio.open(product / f"{product.name}_FRE_{S2_BANDS[band]}.tif") as src:
                    scale = src.res[0] / resolution
                    shape = (int(round(src.height * scale)), int(round(src.width * scale)))
                    bands.append(src.read(1, out_shape=shape, resampling=Resampling.nearest))
                    transform = src.transform @ src.transform.scale(1 / scale)
                    crs = src.crs
            data = np.stack(bands).astype(np.float32)
            outside = np.any(data == -10000, axis=0)
            data = np.clip(data + rng.normal(0.0, 15.0, data.shape), 1, 15000).astype(np.uint16)
            data[:, outside] = NODATA
            udm = np.zeros(shape, dtype=np.uint8)
            for mask in ("CLM", "SAT", "EDG"):
                with rasterio.open(product / "MASKS" / f"{product.name}_{mask}_R1.tif") as src:
                    udm |= (src.read(1, out_shape=shape, resampling=Resampling.nearest) != 0).astype(np.uint8)
            folder = out_dir / tile_folder.name
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{date}_101500_1001_3B"
            profile = {"driver": "GTiff", "width": shape[1], "height": shape[0], "crs": crs, "transform": transform}
            with rasterio.open(folder / f"{stem}_AnalyticMS_SR.tif", "w", count=len(BANDS), dtype="uint16",
                               nodata=NODATA, **profile) as dst:
                dst.write(data)
            with rasterio.open(folder / f"{stem}_udm.tif", "w", count=1, dtype="uint8", **profile) as dst:
                dst.write(udm, 1)
    return out_dir
