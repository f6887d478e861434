"""Synthetic Sentinel-1 GRD backscatter over a dataset of :func:`iota2.datagen.sentinel2.generate_dataset`.

Images are written in another CRS than the Sentinel-2 tiles (EPSG:32630, 20 m pixels), in linear
backscatter (float32, no-data 0), following the naming rule of :mod:`iota2.sensors.sentinel_1`:

* descending orbit (``DES``) on every given date, one two-band file per acquisition (band descriptions
  ``VV`` and ``VH``); the first date is split into two overlapping slices (mosaicked by the sensor);
* ascending orbit (``ASC``) two days after every given date, as two single-polarisation files
  (``..._vv_...tif`` and ``..._vh_...tif``); on its second date a no-data strip covers the west of the area.

Every image has a no-data frame (0) with a thin rim of very low values (below the border threshold,
like GRD border noise) outside the Sentinel-2 area. Backscatter depends on the true class
(``class_map``): water very low (about -18 dB in VV, -23 dB in VH), urban high and flat, forests high in VV and VH, crops and grassland
rising with their vegetation fraction (the phenology of the Sentinel-2 generator), with a fixed
texture and gamma-distributed speckle (5 looks).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage

from iota2.core.timeseries import format_date, parse_date
from iota2.datagen.sentinel2 import _PHENOLOGY, CLASSES, _vegetation_fraction

__all__ = ["generate_s1", "S1_CRS", "S1_PIXEL"]

S1_CRS = "EPSG:32630"
S1_PIXEL = 20.0
LOOKS = 5.0
#: (VV dB without vegetation, VV dB gain at full vegetation, VH dB without vegetation, VH dB gain)
_BACKSCATTER = {
    "urban": (-5.0, 0.0, -11.0, 0.0),
    "deciduous_forest": (-10.0, 3.0, -17.0, 4.0),
    "coniferous_forest": (-8.0, 0.5, -13.0, 0.5),
    "winter_crop": (-13.0, 5.0, -22.0, 8.0),
    "maize": (-13.5, 6.0, -22.5, 9.0),
    "sunflower": (-12.5, 4.0, -21.5, 6.0),
    "grassland": (-12.0, 3.0, -19.0, 4.0),
    "water": (-18.0, 0.0, -23.0, 0.0),
}
_MARGIN = 12  # pixels of the S1 image outside the S2 area on each side
_FRAME = 4  # no-data frame width in pixels
_RIM = 2  # pixels of border noise (below the threshold) inside the frame


def _write(path: Path, bands: list[np.ndarray], descriptions: list[str], transform: Affine) -> None:
    profile = {"driver": "GTiff", "width": bands[0].shape[1], "height": bands[0].shape[0], "count": len(bands),
               "dtype": "float32", "crs": CRS.from_user_input(S1_CRS), "transform": transform, "nodata": 0.0}
    with rasterio.open(path, "w", **profile) as dst:
        for index, (band, description) in enumerate(zip(bands, descriptions), start=1):
            dst.write(band.astype(np.float32), index)
            dst.set_band_description(index, description)


def generate_s1(out_dir: str | Path, s2_dataset: dict, dates=None, seed: int = 0) -> dict:
    """Write Sentinel-1-like GRD GeoTIFFs covering the area of ``s2_dataset`` and their configuration file.

    Parameters
    ----------
    out_dir
        Output folder; ``s1_images/`` and ``s1.cfg`` are written in it.
    s2_dataset
        What :func:`iota2.datagen.sentinel2.generate_dataset` returned (``class_map``, ``tiles``, ``s2_path``).
    dates
        Descending-orbit dates ``YYYYMMDD`` (ascending ones are two days later); default: the dates of
        the first tile of ``s2_dataset``.
    seed
        Seed of every random draw.

    Returns
    -------
    dict
        ``s1_config`` (the INI file for ``chain.s1_path``), ``s1_images`` (folder), ``output`` (folder of
        ``iota2 s1-preprocess``), ``dates`` (``{"DES": [...], "ASC": [...]}``), ``crs``.
    """
    out_dir = Path(out_dir).resolve()  # s1.cfg holds absolute paths: it works from any folder
    images = out_dir / "s1_images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if dates is None:
        dates = s2_dataset["dates"][s2_dataset["tiles"][0]]
    des_dates = sorted(str(date) for date in dates)
    asc_dates = [format_date(parse_date(date) + datetime.timedelta(days=2)) for date in des_dates]

    with rasterio.open(s2_dataset["class_map"]) as src:
        class_map, s2_crs, s2_transform = src.read(1), src.crs, src.transform
        left, bottom, right, top = transform_bounds(src.crs, S1_CRS, *src.bounds, densify_pts=21)
    left = np.floor(left / S1_PIXEL) * S1_PIXEL - _MARGIN * S1_PIXEL
    top = np.ceil(top / S1_PIXEL) * S1_PIXEL + _MARGIN * S1_PIXEL
    width = int(np.ceil((right - left) / S1_PIXEL)) + _MARGIN
    height = int(np.ceil((top - bottom) / S1_PIXEL)) + _MARGIN
    transform = Affine(S1_PIXEL, 0.0, float(left), 0.0, -S1_PIXEL, float(top))
    classes = np.zeros((height, width), dtype=np.uint8)
    reproject(class_map, classes, src_transform=s2_transform, src_crs=s2_crs, dst_transform=transform,
              dst_crs=S1_CRS, resampling=Resampling.mode, src_nodata=0, dst_nodata=0)

    texture = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.0)
    texture = 1.0 * texture / (texture.std() + 1e-6)  # dB
    frame = np.zeros((height, width), dtype=bool)
    frame[:_FRAME], frame[-_FRAME:], frame[:, :_FRAME], frame[:, -_FRAME:] = True, True, True, True
    rim = ~frame & ndimage.binary_dilation(frame, iterations=_RIM)

    def simulate(date: str) -> tuple[np.ndarray, np.ndarray]:
        day = parse_date(date).timetuple().tm_yday
        vv_db = np.full((height, width), -15.0)
        vh_db = np.full((height, width), -22.0)
        for label, name, _ in CLASSES:
            _, _, base, amplitude, green_up, senescence, slope_up, slope_down = _PHENOLOGY[name]
            fraction = float(_vegetation_fraction(np.array([day], dtype=float), base, amplitude, green_up,
                                                  senescence, slope_up, slope_down)[0])
            vv0, vv_gain, vh0, vh_gain = _BACKSCATTER[name]
            where = classes == label
            vv_db[where] = vv0 + vv_gain * fraction
            vh_db[where] = vh0 + vh_gain * fraction
        values = []
        for decibels in (vv_db, vh_db):
            linear = 10.0 ** ((decibels + texture) / 10.0)
            linear *= rng.gamma(LOOKS, 1.0 / LOOKS, linear.shape)
            linear[rim] = rng.uniform(1e-5, 5e-4, int(rim.sum()))
            linear[frame] = 0.0
            values.append(linear.astype(np.float32))
        return values[0], values[1]

    for index, date in enumerate(des_dates):
        vv, vh = simulate(date)
        stem = f"s1a_iw_grd_{date}T060512_DES"
        if index == 0:  # two slices of one acquisition, overlapping by 10 rows
            split = height // 2
            for part, rows in (("a", slice(0, split + 5)), ("b", slice(split - 5, height))):
                mask = np.zeros((height, width), dtype=bool)
                mask[rows] = True
                _write(images / f"{stem}_slice{part}.tif", [np.where(mask, vv, 0.0), np.where(mask, vh, 0.0)],
                       ["VV", "VH"], transform)
        else:
            _write(images / f"{stem}.tif", [vv, vh], ["VV", "VH"], transform)
    columns = np.arange(width)[np.newaxis, :]
    rows_index = np.arange(height)[:, np.newaxis]
    for index, date in enumerate(asc_dates):
        vv, vh = simulate(date)
        if index == 1:  # a swath edge crossing the west of the area
            strip = columns < 0.3 * width + 0.1 * rows_index
            vv[strip], vh[strip] = 0.0, 0.0
        for pol, values in (("vv", vv), ("vh", vh)):
            _write(images / f"s1b_iw_grd_{date}T174011_ASC_{pol}.tif", [values], [pol.upper()], transform)

    output = out_dir / "s1_preprocess"
    config = out_dir / "s1.cfg"
    tiles = ",".join(tile[1:] if tile.startswith("T") else tile for tile in s2_dataset["tiles"])
    config.write_text(
        "[Paths]\n"
        f"Output = {output}\n"
        f"S1Images = {images}\n"
        f"SRTM = {out_dir / 'SRTM'}\n"
        f"GeoidFile = {out_dir / 'egm96.grd'}\n\n"
        "[Processing]\n"
        f"Tiles = {tiles}\n"
        f"TilesShapefile = {out_dir / 'Features.shp'}\n"
        f"ReferencesFolder = {s2_dataset['s2_path']}\n"
        f"SRTMShapefile = {out_dir / 'srtm.shp'}\n"
        "RasterPattern = FRE_B2.tif\n"
        "gapFilling_interpolation = linear\n"
        "TemporalResolution = 10\n"
        "BorderThreshold = 1e-3\n"
        "RAMPerProcess = 5000\n\n"
        "[Filtering]\n"
        "Window_radius = 2\n", encoding="utf-8")
    return {"s1_config": str(config.resolve()), "s1_images": str(images.resolve()), "output": str(output.resolve()),
            "dates": {"DES": des_dates, "ASC": asc_dates}, "crs": S1_CRS}
