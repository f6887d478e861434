"""Synthetic Landsat 8 THEIA, Sentinel-2 Sen2Cor and Sentinel-2 L3A products with a known land cover.

The landscape, phenologies, clouds, shadows, saturated pixels and no-data strip are those of
:mod:`iota2.datagen.sentinel2` (same seed, same parcels and ground truth); only the products differ:

* :func:`generate_landsat8`: ``LANDSAT8-OLITIRS-XS_<date>-103411-123_L2A_<tile>_D_V1-9`` folders with
  ``FRE_B1`` ... ``FRE_B7`` at 30 m (int16, nodata -10000) and ``MASKS/*_CLM_XS``, ``_SAT_XS``,
  ``_EDG_XS`` (a 30 m pixel is flagged when any of its 10 m pixels is). Landsat bands are taken
  from the nearest Sentinel-2 bands (B1 coastal ~ 1.08 x B2, B5 NIR ~ B8A, B6 ~ B11, B7 ~ B12);
* :func:`generate_s2c`: Sen2Cor ``.SAFE`` folders with lossless JPEG 2000 bands (uint16, nodata 0)
  in ``GRANULE/<granule>/IMG_DATA/R10m`` and ``R20m`` and a 20 m scene classification ``SCL``
  (0 no data, 1 saturated, 3 cloud shadow, 8/9 cloud medium/high probability, 4 vegetation,
  5 not vegetated, 6 water);
* :func:`generate_l3a`: ``SENTINEL2X_<date>-000000-000_L3A_<tile>_D_V1-1`` monthly syntheses with
  ``FRC`` bands (10 and 20 m, int16, nodata -10000) and ``MASKS/*_FLG_R1.tif`` (0 no data,
  1 cloud or shadow, 3 water, 4 land); syntheses have few residual clouds.

Each returns the product root under the ``chain`` key of its sensor (``l8_path``, ``s2_s2c_path``,
``s2_l3a_path``) with the ground truth, nomenclature, colour table and class map of
:func:`iota2.datagen.sentinel2.generate_dataset`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import rasterio

from iota2.datagen.sentinel2 import (BANDS, BANDS_10M, CLASSES, DEFAULT_DATES, NODATA, Scene, _check_size, _write,
                                     block_mean, simulate, write_reference)

__all__ = ["L3A_DATES", "generate_l3a", "generate_landsat8", "generate_s2c", "l3a_product_name",
           "landsat8_product_name", "s2c_product_name"]

#: central dates of monthly syntheses used when none are given
L3A_DATES = tuple(f"2018{month:02d}15" for month in range(1, 13))
#: Landsat 8 band -> (Sentinel-2 band it is simulated from, factor)
L8_FROM_S2 = {"B1": ("B2", 1.08), "B2": ("B2", 1.0), "B3": ("B3", 1.0), "B4": ("B4", 1.0), "B5": ("B8A", 1.0),
              "B6": ("B11", 1.0), "B7": ("B12", 1.0)}
#: Sen2Cor file token of each band
S2C_TOKENS = {"B2": "B02", "B3": "B03", "B4": "B04", "B5": "B05", "B6": "B06", "B7": "B07", "B8": "B08",
              "B8A": "B8A", "B11": "B11", "B12": "B12"}
_WATER = next(label for label, name, _ in CLASSES if name == "water")


def landsat8_product_name(tile: str, date: str) -> str:
    """THEIA Landsat 8 product name, e.g. ``LANDSAT8-OLITIRS-XS_20180511-103411-123_L2A_T31TCJ_D_V1-9``."""
    return f"LANDSAT8-OLITIRS-XS_{date}-103411-123_L2A_{tile}_D_V1-9"


#: first acquisition date ESA processed with baseline 04.00 (reflectance offset of +1000 in the files)
BASELINE_04_START = "20220125"


def s2c_baseline(date: str, baseline: str | None = None) -> str:
    """Processing baseline token of a product: ``baseline`` if given, else ``N0400`` from 25 January 2022 on and
    ``N0206`` before (as ESA's archive)."""
    if baseline is not None:
        return baseline
    return "N0400" if date >= BASELINE_04_START else "N0206"


def s2c_product_name(tile: str, date: str, baseline: str | None = None) -> str:
    """Sen2Cor product name, e.g. ``S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE``."""
    return f"S2A_MSIL2A_{date}T105031_{s2c_baseline(date, baseline)}_R051_{tile}_{date}T140000.SAFE"


def _s2c_metadata(with_offset: bool) -> str:
    """A ``MTD_MSIL2A.xml`` reduced to the radiometric fields the sensor reads."""
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{band_id}">-1000</BOA_ADD_OFFSET>' for band_id in range(13))
    offset_list = f"<BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST>" if with_offset else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">'
            "<n1:General_Info><Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>"
            '<BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
            "</QUANTIFICATION_VALUES_LIST>" + offset_list +
            "</Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>\n")


def l3a_product_name(tile: str, date: str) -> str:
    """THEIA L3A product name, e.g. ``SENTINEL2X_20180515-000000-000_L3A_T31TCJ_D_V1-1``."""
    return f"SENTINEL2X_{date}-000000-000_L3A_{tile}_D_V1-1"


def _block_any(mask: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = mask.shape
    return mask.reshape(rows // factor, factor, cols // factor, factor).any(axis=(1, 3))


def _block_max(values: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = values.shape
    return values.reshape(rows // factor, factor, cols // factor, factor).max(axis=(1, 3))


def _reflectance(values: np.ndarray, dtype) -> np.ndarray:
    return np.clip(np.rint(values), 1, 15000).astype(dtype)


def _tile_views(scene: Scene, tile_index: int, date: str):
    """10 m ground reflectance, CLM, saturation and edge of one tile and date."""
    cols = scene.tile_columns(tile_index)
    edge = scene.edge[date]
    edge = np.zeros(scene.class_map.shape, dtype=bool) if edge is None else edge
    return (scene.ground[date][:, :, cols], scene.clm[date][:, cols], scene.saturated[date][:, cols], edge[:, cols],
            scene.class_map[:, cols])


def _write_landsat8(scene: Scene, root: Path) -> None:
    for tile_index, tile in enumerate(scene.tiles):
        transform = scene.tile_transform(tile_index, 3)
        for date in scene.dates_by_tile[tile]:
            ground, clm, saturated, edge, _ = _tile_views(scene, tile_index, date)
            name = landsat8_product_name(tile, date)
            folder = root / tile / name
            (folder / "MASKS").mkdir(parents=True, exist_ok=True)
            edge30 = _block_any(edge, 3)
            for band, (source, factor) in L8_FROM_S2.items():
                values = _reflectance(block_mean(ground[BANDS.index(source)], 3) * factor, np.int16)
                values[edge30] = NODATA
                _write(folder / f"{name}_FRE_{band}.tif", values, transform, scene.crs, NODATA)
            clm30 = _block_max(clm, 3)
            clm30[edge30] = 0
            for mask_name, mask in (("CLM", clm30), ("SAT", _block_any(saturated, 3)), ("EDG", edge30)):
                _write(folder / "MASKS" / f"{name}_{mask_name}_XS.tif", mask.astype(np.uint8), transform, scene.crs)


def _write_jp2(path: Path, array: np.ndarray, transform, crs) -> None:
    profile = {"driver": "JP2OpenJPEG", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "crs": crs, "transform": transform, "QUALITY": 100, "REVERSIBLE": "YES"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _scene_classification(ground20: np.ndarray, clm: np.ndarray, saturated: np.ndarray, edge: np.ndarray,
                          classes: np.ndarray) -> np.ndarray:
    """20 m Sen2Cor scene classification from the 10 m masks and the 20 m reflectances."""
    red, nir = ground20[BANDS.index("B4")], ground20[BANDS.index("B8A")]
    ndvi = (nir - red) / np.maximum(nir + red, 1.0)
    scl = np.where(ndvi > 0.3, 4, 5).astype(np.uint8)
    scl[_block_max(classes, 2) == _WATER] = 6
    cloud_share = block_mean((clm & 2).astype(np.float32) / 2.0, 2)
    shadow = _block_any((clm & 32) != 0, 2)
    scl[shadow] = 3
    scl[cloud_share > 0] = 8
    scl[cloud_share >= 0.5] = 9
    scl[_block_any(saturated, 2)] = 1
    scl[_block_any(edge, 2)] = 0
    return scl


@dataclasses.dataclass
class _S2Product:
    """One date of one tile of the scene, with its 20 m versions, for the Sentinel-2 layouts."""

    tile: str
    date: str
    ground: np.ndarray
    clm: np.ndarray
    saturated: np.ndarray
    edge: np.ndarray
    classes: np.ndarray
    transform10: object
    transform20: object

    def __post_init__(self):
        self.ground20 = block_mean(self.ground, 2)
        self.edge20 = _block_any(self.edge, 2)

    def band(self, band_index: int, band: str, dtype) -> tuple[np.ndarray, object, int, np.ndarray]:
        """Reflectances x10000 of a band at its native resolution: (values, transform, resolution in m, outside
        the swath)."""
        if band in BANDS_10M:
            return _reflectance(self.ground[band_index], dtype), self.transform10, 10, self.edge
        return _reflectance(self.ground20[band_index], dtype), self.transform20, 20, self.edge20


def _s2_products(scene: Scene):
    for tile_index, tile in enumerate(scene.tiles):
        transform10, transform20 = scene.tile_transform(tile_index), scene.tile_transform(tile_index, 2)
        for date in scene.dates_by_tile[tile]:
            yield _S2Product(tile, date, *_tile_views(scene, tile_index, date), transform10, transform20)


def _write_s2c(scene: Scene, root: Path, baseline: str | None = None) -> None:
    for item in _s2_products(scene):
        tile, date = item.tile, item.date
        granule = f"L2A_{tile}_A015000_{date}T105031"
        product = root / tile / s2c_product_name(tile, date, baseline)
        folder = product / "GRANULE" / granule / "IMG_DATA"
        prefix = f"{tile}_{date}T105031"
        for resolution in (10, 20):
            (folder / f"R{resolution}m").mkdir(parents=True, exist_ok=True)
        offset = int(s2c_baseline(date, baseline)[1:]) >= 400  # baseline 04.00: files hold reflectance + 1000
        (product / "MTD_MSIL2A.xml").write_text(_s2c_metadata(offset), encoding="utf-8")
        for band_index, band in enumerate(BANDS):
            values, transform, resolution, outside = item.band(band_index, band, np.uint16)
            if offset:
                values[values != 0] += 1000
            values[outside] = 0
            _write_jp2(folder / f"R{resolution}m" / f"{prefix}_{S2C_TOKENS[band]}_{resolution}m.jp2", values,
                       transform, scene.crs)
        scl = _scene_classification(item.ground20, item.clm, item.saturated, item.edge, item.classes)
        _write_jp2(folder / "R20m" / f"{prefix}_SCL_20m.jp2", scl, item.transform20, scene.crs)


def _write_l3a(scene: Scene, root: Path) -> None:
    for item in _s2_products(scene):
        name = l3a_product_name(item.tile, item.date)
        folder = root / item.tile / name
        (folder / "MASKS").mkdir(parents=True, exist_ok=True)
        for band_index, band in enumerate(BANDS):
            values, transform, _, outside = item.band(band_index, band, np.int16)
            values[outside] = NODATA
            _write(folder / f"{name}_FRC_{band}.tif", values, transform, scene.crs, NODATA)
        flg = np.where(item.classes == _WATER, 3, 4).astype(np.uint8)
        flg[(item.clm != 0) | item.saturated] = 1
        flg[item.edge] = 0
        _write(folder / "MASKS" / f"{name}_FLG_R1.tif", flg, item.transform10, scene.crs)


_LAYOUTS = {"l8_path": ("l8", 6, _write_landsat8), "s2_s2c_path": ("s2c", 2, _write_s2c),
            "s2_l3a_path": ("l3a", 2, _write_l3a)}


def _generate(key: str, out_dir, tiles, size, dates, seed, cloud_fraction, crs, origin, overlap,
              **writer_options) -> dict:
    folder_name, factor, writer = _LAYOUTS[key]
    _check_size(size, overlap, factor)
    out_dir = Path(out_dir)
    root = out_dir / folder_name
    root.mkdir(parents=True, exist_ok=True)
    scene = simulate(tiles, size, dates, seed, cloud_fraction, crs, origin, overlap)
    writer(scene, root, **writer_options)
    return {key: str(root.resolve()), **write_reference(out_dir, scene)}


_PARAMETERS = """
    Parameters
    ----------
    out_dir
        Output folder; created if needed.
    tiles
        Tile names; tile k is placed east of tile k-1 (same CRS, same rows).
    size
        Tile width and height in 10 m pixels of the simulated landscape ({size_rule}).
    dates
        ``YYYYMMDD`` dates shared by all tiles, or ``{{tile: dates}}``; default {default}.
    seed
        Seed of every random draw; the same seed writes the same files.
    cloud_fraction
        Average share of pixels flagged as cloud or shadow per date.
    crs
        CRS of every file.
    origin
        (x, y) of the upper-left corner of the first tile.
    overlap
        10 m pixels shared by two neighbouring tiles ({size_rule}).{extra}

    Returns
    -------
    dict
        ``{key}`` (product root) and the ``ground_truth``, ``nomenclature``, ``color_table``, ``tiles``,
        ``class_map``, ``dates`` and ``classes`` of :func:`iota2.datagen.sentinel2.generate_dataset`.
"""


def generate_landsat8(out_dir: str | Path, tiles=("T31TCJ", "T31TDJ"), size: int = 198,
                      dates: list[str] | dict[str, list[str]] | None = None, seed: int = 0,
                      cloud_fraction: float = 0.15, crs: str = "EPSG:32631",
                      origin: tuple[float, float] = (300000.0, 4900020.0), overlap: int = 0) -> dict:
    return _generate("l8_path", out_dir, tiles, size, dates if dates is not None else list(DEFAULT_DATES), seed,
                     cloud_fraction, crs, origin, overlap)


def generate_s2c(out_dir: str | Path, tiles=("T31TCJ", "T31TDJ"), size: int = 200,
                 dates: list[str] | dict[str, list[str]] | None = None, seed: int = 0,
                 cloud_fraction: float = 0.15, crs: str = "EPSG:32631",
                 origin: tuple[float, float] = (300000.0, 4900020.0), overlap: int = 0,
                 processing_baseline: str | None = None) -> dict:
    return _generate("s2_s2c_path", out_dir, tiles, size, dates if dates is not None else list(DEFAULT_DATES), seed,
                     cloud_fraction, crs, origin, overlap, baseline=processing_baseline)


def generate_l3a(out_dir: str | Path, tiles=("T31TCJ", "T31TDJ"), size: int = 200,
                 dates: list[str] | dict[str, list[str]] | None = None, seed: int = 0,
                 cloud_fraction: float = 0.03, crs: str = "EPSG:32631",
                 origin: tuple[float, float] = (300000.0, 4900020.0), overlap: int = 0) -> dict:
    return _generate("s2_l3a_path", out_dir, tiles, size, dates if dates is not None else list(L3A_DATES), seed,
                     cloud_fraction, crs, origin, overlap)


generate_landsat8.__doc__ = ("Write a synthetic Landsat 8 THEIA dataset (30 m products) with its ground truth.\n"
                             + _PARAMETERS.format(size_rule="a multiple of 6", default=":data:`DEFAULT_DATES`",
                                                  key="l8_path", extra=""))
generate_s2c.__doc__ = ("Write a synthetic Sen2Cor Sentinel-2 dataset (JPEG 2000 ``.SAFE`` products) with its "
                        "ground truth.\n" + _PARAMETERS.format(
                            size_rule="even", default=":data:`DEFAULT_DATES`", key="s2_s2c_path", extra=(
                                "\n    processing_baseline\n        Baseline token of every product (``N0206``, "
                                "``N0400``...); by default ``N0400`` from 25 January 2022 on, whose files hold "
                                "reflectance x10000 + 1000 and whose ``MTD_MSIL2A.xml`` declares the -1000 offset.")))
generate_l3a.__doc__ = ("Write a synthetic THEIA Sentinel-2 L3A dataset (monthly syntheses) with its ground truth.\n"
                        + _PARAMETERS.format(size_rule="even", default=":data:`L3A_DATES`", key="s2_l3a_path",
                                             extra=""))
