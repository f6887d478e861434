"""Synthetic Sentinel-2 THEIA L2A time series with a known land cover, for demos and tests.

The landscape is a grid of rectangular parcels spanning all tiles, each with a class. Every class has
a vegetation phenology (double-logistic vegetation-fraction curves with class-specific green-up and
senescence dates) and spectral end-members, so classes differ both spectrally and in time:

=================  ==========================================================
class              behaviour
=================  ==========================================================
urban              bright and flat all year, a little vegetation in summer
deciduous_forest   dense vegetation from April to October, bare branches in winter
coniferous_forest  dense dark vegetation all year
winter_crop        bare soil in winter, green from March to June, bare in summer
maize              bare soil until late June, green from July to September
sunflower          like maize but earlier and shorter (a deliberately close pair)
grassland          partly green all year, greener from spring to autumn
water              dark, very low near- and short-wave infrared
=================  ==========================================================

A pixel's reflectance is its class profile modified per parcel (shifted green-up and senescence
dates, amplitude, brightness), per pixel (a fixed texture) and per date (noise). Clouds are smooth
random blobs that brighten all bands, with their shadows darkening the ground next to them; both are
flagged in the ``CLM`` mask, so gap-filling matters. One date has a no-data strip (``EDG`` mask and
-10000 reflectances) and a few pixels are saturated (``SAT`` mask).

Files are written in the THEIA layout read by :mod:`iota2.sensors.sentinel_2`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage
from shapely.geometry import box

from iota2.core.timeseries import parse_date

__all__ = ["CLASSES", "DEFAULT_DATES", "generate_dataset", "generate_demo", "product_name"]

#: band order of the products
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
BANDS_10M = ("B2", "B3", "B4", "B8")
NODATA = -10000

#: (label, name, RGB colour) of the simulated classes
CLASSES = (
    (1, "urban", (220, 30, 200)),
    (2, "deciduous_forest", (20, 120, 30)),
    (3, "coniferous_forest", (10, 70, 40)),
    (4, "winter_crop", (250, 210, 40)),
    (5, "maize", (240, 120, 20)),
    (6, "sunflower", (255, 170, 90)),
    (7, "grassland", (150, 230, 110)),
    (8, "water", (30, 60, 230)),
)

#: acquisition dates used when none are given: about one a month through 2018, irregular like real revisits
DEFAULT_DATES = ("20180105", "20180209", "20180306", "20180410", "20180510", "20180614", "20180704", "20180803",
                 "20180907", "20181007", "20181106", "20181211")

# spectral end-members, reflectance x 10000, in BANDS order
_VEGETATION = np.array([250, 550, 300, 900, 2600, 3300, 3600, 3700, 1800, 900], dtype=np.float32)
_FOREST = np.array([200, 420, 220, 700, 2200, 2800, 3100, 3200, 1400, 650], dtype=np.float32)
_SOIL = np.array([900, 1200, 1500, 1750, 1950, 2100, 2300, 2400, 3100, 2700], dtype=np.float32)
_URBAN = np.array([1300, 1400, 1500, 1650, 1750, 1850, 1950, 2000, 2400, 2200], dtype=np.float32)
_WATER = np.array([700, 600, 400, 300, 220, 180, 150, 140, 60, 40], dtype=np.float32)
_CLOUD = np.array([5600, 5500, 5400, 5400, 5300, 5200, 5300, 5200, 4100, 3100], dtype=np.float32)

# per class: vegetation end-member, background end-member, base fraction, amplitude,
# green-up day, senescence day, green-up and senescence slopes (days)
_PHENOLOGY = {
    "urban": (_VEGETATION, _URBAN, 0.08, 0.12, 110, 270, 15.0, 15.0),
    "deciduous_forest": (_FOREST, _SOIL, 0.45, 0.50, 110, 290, 8.0, 10.0),
    "coniferous_forest": (_FOREST, _SOIL, 0.72, 0.18, 100, 300, 12.0, 12.0),
    "winter_crop": (_VEGETATION, _SOIL, 0.05, 0.90, 70, 175, 9.0, 8.0),
    "maize": (_VEGETATION, _SOIL, 0.03, 0.92, 170, 262, 7.0, 9.0),
    "sunflower": (_VEGETATION, _SOIL, 0.03, 0.80, 155, 232, 7.0, 8.0),
    "grassland": (_VEGETATION, _SOIL, 0.38, 0.42, 80, 290, 14.0, 14.0),
    "water": (_WATER, _WATER, 0.0, 0.0, 100, 250, 10.0, 10.0),
}

_PIXEL = 10.0
_CLM_CLOUD = 1 | 2 | 4  # THEIA CLM bits: any cloud or shadow, cloud, mono-temporal cloud
_CLM_SHADOW = 1 | 32  # any cloud or shadow, shadow of a detected cloud


def product_name(tile: str, date: str, platform: str = "SENTINEL2A") -> str:
    """THEIA product name of a tile and date, e.g. ``SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7``."""
    return f"{platform}_{date}-105804-037_L2A_{tile}_D_V1-7"


def _logistic(value: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-value))


def _parcels(rng: np.random.Generator, height: int, width: int, size: int) -> list[tuple[int, int, int, int]]:
    """Rectangular parcels (row0, row1, col0, col1) tiling a height x width grid: strips cut into fields.

    Fields are 12 to 40 pixels (120 to 400 m) long, smaller on small tiles so that every class
    still has several parcels per tile.
    """
    shortest = min(12, max(5, size // 8))
    longest = min(40, max(10, size // 4))
    parcels = []
    row = 0
    while row < height:
        strip = int(rng.integers(shortest, min(longest, 30) + 1))
        row_end = height if height - (row + strip) < shortest else row + strip
        col = 0
        while col < width:
            field = int(rng.integers(shortest, longest + 1))
            col_end = width if width - (col + field) < shortest else col + field
            parcels.append((row, row_end, col, col_end))
            col = col_end
        row = row_end
    return parcels


def _vegetation_fraction(day: np.ndarray, base, amplitude, green_up, senescence, slope_up, slope_down):
    """Double-logistic vegetation fraction; arguments broadcast (parcels x dates)."""
    curve = _logistic((day - green_up) / slope_up) - _logistic((day - senescence) / slope_down)
    return np.clip(base + amplitude * curve, 0.0, 1.0)


def _cloud_field(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random field (zero mean, unit variance) whose upper tail forms cloud-like blobs."""
    cell = 8
    low = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    low = ndimage.gaussian_filter(low, 1.2)
    field = np.repeat(np.repeat(low, cell, axis=0), cell, axis=1)[:height, :width]
    field = ndimage.gaussian_filter(field, cell / 2)
    return (field - field.mean()) / (field.std() + 1e-6)


def _write(path: Path, array: np.ndarray, transform: Affine, crs: CRS, nodata=None) -> None:
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


@dataclasses.dataclass
class Scene:
    """A simulated area: the landscape and, per date, the 10 m top-of-canopy reflectances and masks.

    Attributes
    ----------
    tiles
        Tile names; tile k is ``step`` pixels east of tile k-1.
    size
        Tile width and height in 10 m pixels.
    step
        Columns between the first pixels of two neighbouring tiles.
    crs
        CRS of the area.
    transform
        10 m transform of the whole area.
    dates_by_tile
        Acquisition dates of each tile.
    ground
        Per date: (bands, rows, cols) float32 reflectance x10000 in :data:`BANDS` order, clouds,
        shadows and saturated pixels included.
    clm
        Per date: THEIA cloud mask bits (uint8), 0 where clear.
    saturated
        Per date: bool, saturated pixels (the first three bands are at 15000).
    edge
        Per date: bool, pixels outside the acquisition (no data), or ``None`` when the date has none.
    edge_date
        The date with a no-data strip, or ``None``.
    class_map
        (rows, cols) uint8 true class of every pixel.
    truth_codes, truth_geometries
        The ground-truth polygons and their class labels.
    dates
        Every acquisition date of the area, chronological (:attr:`all_dates`), also when the dates were handed to
        ``simulate``'s ``on_date`` and not kept.
    """

    tiles: list
    size: int
    step: int
    crs: CRS
    transform: Affine
    dates_by_tile: dict
    ground: dict
    clm: dict
    saturated: dict
    edge: dict
    edge_date: str | None
    class_map: np.ndarray
    truth_codes: list
    truth_geometries: list
    dates: list

    @property
    def all_dates(self) -> list[str]:
        return list(self.dates)

    def tile_transform(self, tile_index: int, factor: int = 1) -> Affine:
        """Transform of tile ``tile_index`` with pixels ``factor`` times coarser than 10 m."""
        return self.transform @ Affine.translation(tile_index * self.step, 0) @ Affine.scale(float(factor))

    def tile_columns(self, tile_index: int) -> slice:
        """10 m columns of the area covered by tile ``tile_index``."""
        col0 = tile_index * self.step
        return slice(col0, col0 + self.size)


def _check_size(size: int, overlap: int, factor: int = 2) -> None:
    if size % factor or size < 16:
        raise ValueError(f"size must be a multiple of {factor} and >= 16, got {size}")
    if overlap % factor or not 0 <= overlap < size // 2:
        raise ValueError(f"overlap must be a multiple of {factor} and smaller than size / 2, got {overlap}")


def simulate(tiles=("T31TCJ", "T31TDJ"), size: int = 200, dates: list[str] | dict[str, list[str]] | None = None,
             seed: int = 0, cloud_fraction: float = 0.15, crs: str = "EPSG:32631",
             origin: tuple[float, float] = (300000.0, 4900020.0), overlap: int = 0,
             on_date: Callable | None = None) -> Scene:
    """Simulate the landscape, the 10 m reflectances and masks of every date and the ground truth.

    The parameters are those of :func:`generate_dataset`; nothing is written. With ``on_date``, each date is
    handed to ``on_date(scene, date, ground, clm, saturated, edge)`` as soon as it is simulated and not kept: the
    returned scene's ``ground``, ``clm``, ``saturated`` and ``edge`` are then empty (the same draws, so the same
    values, in a memory of one date instead of every date).

    Returns
    -------
    Scene
    """
    tiles = list(tiles)
    if dates is None:
        dates = list(DEFAULT_DATES)
    dates_by_tile = {tile: sorted(dates[tile]) for tile in tiles} if isinstance(dates, dict) else \
        {tile: sorted(str(date) for date in dates) for tile in tiles}
    all_dates = sorted({date for tile_dates in dates_by_tile.values() for date in tile_dates})
    crs = CRS.from_user_input(crs)
    rng = np.random.default_rng(seed)

    step = size - overlap
    height, width = size, step * (len(tiles) - 1) + size
    x0, y0 = origin
    area_transform = Affine(_PIXEL, 0.0, x0, 0.0, -_PIXEL, y0)

    # landscape: parcels, balanced random classes, per-parcel variations
    parcels = _parcels(rng, height, width, size)
    n_classes = len(CLASSES)
    # balanced classes in each tile: parcels are grouped by the tile holding their centre
    parcel_tile = np.array([min((c0 + c1) // 2 // step, len(tiles) - 1) for _, _, c0, c1 in parcels])
    parcel_class = np.empty(len(parcels), dtype=np.int64)
    for tile_index in range(len(tiles)):
        members = np.flatnonzero(parcel_tile == tile_index)
        first = int(rng.integers(n_classes))
        parcel_class[members] = rng.permutation((np.arange(members.size) + first) % n_classes)
    parcel_id = np.empty((height, width), dtype=np.int32)
    for index, (r0, r1, c0, c1) in enumerate(parcels):
        parcel_id[r0:r1, c0:c1] = index
    class_map = (parcel_class[parcel_id] + 1).astype(np.uint8)
    n_parcels = len(parcels)
    shift_up = rng.normal(0.0, 12.0, n_parcels)
    shift_down = rng.normal(0.0, 12.0, n_parcels)
    amplitude_factor = rng.uniform(0.7, 1.05, n_parcels)
    brightness = rng.uniform(0.85, 1.15, n_parcels).astype(np.float32)

    days = np.array([parse_date(date).timetuple().tm_yday for date in all_dates], dtype=np.float64)
    parcel_spectra = np.empty((n_parcels, len(all_dates), len(BANDS)), dtype=np.float32)
    for class_index, (_, name, _) in enumerate(CLASSES):
        members = np.flatnonzero(parcel_class == class_index)
        vegetation, background, base, amplitude, green_up, senescence, slope_up, slope_down = _PHENOLOGY[name]
        fraction = _vegetation_fraction(days[np.newaxis, :], base, amplitude * amplitude_factor[members, None],
                                        green_up + shift_up[members, None], senescence + shift_down[members, None],
                                        slope_up, slope_down).astype(np.float32)
        if name == "winter_crop":  # autumn sowing: emergence at the end of the year
            fraction = np.clip(fraction + 0.2 * _logistic((days - 310.0) / 10.0)[np.newaxis, :], 0.0, 1.0)
        spectra = fraction[:, :, None] * vegetation + (1.0 - fraction[:, :, None]) * background
        parcel_spectra[members] = spectra * brightness[members, None, None]

    texture = ndimage.gaussian_filter(rng.standard_normal((height, width)).astype(np.float32), 1.0)
    texture = 1.0 + 0.08 * texture / (texture.std() + 1e-6)

    # per date: ground reflectance, clouds and shadows, saturation, edge strip
    n_dates = len(all_dates)
    edge_date = all_dates[min(2, n_dates - 1)] if n_dates > 1 else None
    cols20 = np.arange(width // 2)[np.newaxis, :]
    rows20 = np.arange(height // 2)[:, np.newaxis]
    edge20 = (cols20 + 0.4 * rows20) < 0.12 * (width // 2)
    edge10 = np.repeat(np.repeat(edge20, 2, axis=0), 2, axis=1)
    grounds, clms, saturations, edges = {}, {}, {}, {}
    scene = Scene(tiles=tiles, size=size, step=step, crs=crs, transform=area_transform, dates_by_tile=dates_by_tile,
                  ground=grounds, clm=clms, saturated=saturations, edge=edges, edge_date=edge_date,
                  class_map=class_map, truth_codes=[], truth_geometries=[], dates=all_dates)
    for date_index, date in enumerate(all_dates):
        ground = parcel_spectra[parcel_id, date_index].transpose(2, 0, 1) * texture  # (bands, rows, cols)
        ground += rng.normal(0.0, 1.0, ground.shape).astype(np.float32) * (20.0 + 0.02 * ground)
        field = _cloud_field(rng, height, width)
        share = float(np.clip(cloud_fraction * rng.uniform(0.0, 2.0), 0.0, 0.9))
        clm = np.zeros((height, width), dtype=np.uint8)
        if share > 0.002:
            threshold = np.quantile(field, 1.0 - share * 0.75)
            cloud = field > threshold
            shadow = np.roll(cloud, (6, -6), axis=(0, 1)) & ~cloud
            shadow[:6, :] = False
            shadow[:, -6:] = False
            opacity = np.clip(0.65 + (field - threshold), 0.65, 1.0).astype(np.float32)[cloud]
            ground[:, cloud] = ground[:, cloud] * (1.0 - opacity) + _CLOUD[:, None] * opacity
            ground[:, shadow] *= 0.45
            clm[shadow] = _CLM_SHADOW
            clm[cloud] = _CLM_CLOUD
        saturated = rng.random((height, width)) < 2e-4
        ground[:3, saturated] = 15000.0
        edge = None
        if date == edge_date:
            edge = edge10
            clm[edge10] = 0
        if on_date is not None:
            on_date(scene, date, ground, clm, saturated, edge)
        else:
            grounds[date], clms[date], saturations[date], edges[date] = ground, clm, saturated, edge
        del ground, clm, saturated

    # ground truth: about 60 % of the parcels of each class, shrunk by one pixel
    records, geometries = [], []
    for class_index, (label, _, _) in enumerate(CLASSES):
        members = np.flatnonzero(parcel_class == class_index)
        members = [m for m in members if parcels[m][1] - parcels[m][0] >= 4 and parcels[m][3] - parcels[m][2] >= 4]
        chosen = rng.permutation(members)[:max(1, int(round(0.6 * len(members))))] if members else []
        for index in sorted(int(m) for m in chosen):
            r0, r1, c0, c1 = parcels[index]
            geometries.append(box(x0 + (c0 + 1) * _PIXEL, y0 - (r1 - 1) * _PIXEL,
                                  x0 + (c1 - 1) * _PIXEL, y0 - (r0 + 1) * _PIXEL))
            records.append(label)
    scene.truth_codes, scene.truth_geometries = records, geometries
    return scene


def write_reference(out_dir: str | Path, scene: Scene) -> dict:
    """Write the ground truth, nomenclature, colour table and true class map of ``scene``.

    Returns
    -------
    dict
        ``ground_truth``, ``nomenclature``, ``color_table``, ``tiles``, ``class_map``, ``dates`` and
        ``classes`` as described in :func:`generate_dataset`.
    """
    out_dir = Path(out_dir)
    ground_truth = out_dir / "ground_truth.shp"
    gpd.GeoDataFrame({"code": np.array(scene.truth_codes, dtype=np.int32)}, geometry=scene.truth_geometries,
                     crs=scene.crs.to_wkt()).to_file(ground_truth)
    nomenclature = out_dir / "nomenclature.txt"
    nomenclature.write_text("".join(f"{name}:{label}\n" for label, name, _ in CLASSES), encoding="utf-8")
    color_table = out_dir / "colors.txt"
    color_table.write_text("".join(f"{label} {r} {g} {b}\n" for label, _, (r, g, b) in CLASSES), encoding="utf-8")
    class_map_path = out_dir / "class_map.tif"
    _write(class_map_path, scene.class_map, scene.transform, scene.crs, 0)
    return {"ground_truth": str(ground_truth.resolve()), "nomenclature": str(nomenclature.resolve()),
            "color_table": str(color_table.resolve()), "tiles": scene.tiles, "class_map": str(class_map_path.resolve()),
            "dates": scene.dates_by_tile, "classes": {name: label for label, name, _ in CLASSES}}


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks over the last two axes (whose sizes are multiples of ``factor``)."""
    *lead, rows, cols = array.shape
    return array.reshape(*lead, rows // factor, factor, cols // factor, factor).mean(axis=(-3, -1))


def generate_dataset(out_dir: str | Path, tiles=("T31TCJ", "T31TDJ"), size: int = 200,
                     dates: list[str] | dict[str, list[str]] | None = None, seed: int = 0,
                     cloud_fraction: float = 0.15, crs: str = "EPSG:32631",
                     origin: tuple[float, float] = (300000.0, 4900020.0), overlap: int = 0) -> dict:
    """Write a synthetic THEIA Sentinel-2 dataset with its ground truth.

    Parameters
    ----------
    out_dir
        Output folder; created if needed.
    tiles
        Tile names; tile k is placed east of tile k-1 (same CRS, same rows).
    size
        Tile width and height in 10 m pixels (even: 20 m bands are ``size / 2`` pixels).
    dates
        ``YYYYMMDD`` acquisition dates shared by all tiles, or ``{tile: dates}``; default
        :data:`DEFAULT_DATES`.
    seed
        Seed of every random draw; the same seed writes the same files.
    cloud_fraction
        Average share of pixels flagged as cloud or shadow per date.
    crs
        CRS of every file.
    origin
        (x, y) of the upper-left corner of the first tile.
    overlap
        Pixels shared by two neighbouring tiles (even).

    Returns
    -------
    dict
        ``s2_path`` (product root), ``ground_truth`` (shapefile with integer field ``code``),
        ``nomenclature`` (``name:label`` lines), ``color_table`` (``label R G B`` lines), ``tiles``,
        ``class_map`` (GeoTIFF of the true class of every pixel of the whole area), ``dates``
        (per tile) and ``classes`` (``{name: label}``).
    """
    if size % 2 or size < 16:
        raise ValueError(f"size must be an even number >= 16, got {size}")
    if overlap % 2 or not 0 <= overlap < size // 2:
        raise ValueError(f"overlap must be even and smaller than size / 2, got {overlap}")
    out_dir = Path(out_dir)
    s2_root = out_dir / "s2"
    s2_root.mkdir(parents=True, exist_ok=True)
    # each date is written as soon as it is simulated: the memory of one date, whatever the number of dates
    scene = simulate(tiles, size, dates, seed, cloud_fraction, crs, origin, overlap,
                     on_date=functools.partial(_write_date, s2_root))
    return {"s2_path": str(s2_root.resolve()), **write_reference(out_dir, scene)}


def _write_date(s2_root: Path, scene: Scene, date: str, ground: np.ndarray, clm: np.ndarray, saturated: np.ndarray,
                edge10: np.ndarray | None) -> None:
    """Write the products of ``date`` of every tile that has it (THEIA layout, 20 m bands averaged from 10 m)."""
    height, width = ground.shape[1:]
    size = scene.size
    reflectance = np.clip(np.rint(ground), 1, 15000).astype(np.int16)
    coarse = np.clip(np.rint(ground.reshape(len(BANDS), height // 2, 2, width // 2, 2).mean(axis=(2, 4))),
                     1, 15000).astype(np.int16)
    edg = np.zeros((height, width), dtype=np.uint8)
    if edge10 is not None:
        edg[edge10] = 1
        reflectance[:, edge10] = NODATA
        coarse[:, edge10[::2, ::2]] = NODATA
    sat = saturated.astype(np.uint8)
    for tile_index, tile in enumerate(scene.tiles):
        if date not in scene.dates_by_tile[tile]:
            continue
        col0 = tile_index * scene.step
        tile_transform = scene.tile_transform(tile_index)
        transform20 = scene.tile_transform(tile_index, 2)
        tile_folder = s2_root / tile
        name = product_name(tile, date)
        folder = tile_folder / name
        (folder / "MASKS").mkdir(parents=True, exist_ok=True)
        for band_index, band in enumerate(BANDS):
            if band in BANDS_10M:
                data, transform = reflectance[band_index, :, col0:col0 + size], tile_transform
            else:
                data, transform = coarse[band_index, :, col0 // 2:(col0 + size) // 2], transform20
            _write(folder / f"{name}_FRE_{band}.tif", np.ascontiguousarray(data), transform, scene.crs, NODATA)
        for mask_name, mask in (("CLM", clm), ("SAT", sat), ("EDG", edg)):
            _write(folder / "MASKS" / f"{name}_{mask_name}_R1.tif",
                   np.ascontiguousarray(mask[:, col0:col0 + size]), tile_transform, scene.crs)


def generate_demo(out_dir: str | Path, size: int = 300, runs: int = 2) -> dict:
    """Generate the default dataset in ``out_dir`` and a complete ``config.yaml`` classifying it.

    Parameters
    ----------
    out_dir
        Folder of the data, the configuration and the outputs (``output/``).
    size
        Tile size in 10 m pixels.
    runs
        Number of learn/validation splits of the configuration.

    Returns
    -------
    dict
        The :func:`generate_dataset` result plus ``config`` (path of the configuration file).
    """
    out_dir = Path(out_dir).resolve()
    dataset = generate_dataset(out_dir, size=size)
    config = {
        "chain": {
            "output_path": str(out_dir / "output"),
            "list_tile": " ".join(dataset["tiles"]),
            "s2_path": dataset["s2_path"],
            "ground_truth": dataset["ground_truth"],
            "data_field": "code",
            "nomenclature_path": dataset["nomenclature"],
            "color_table": dataset["color_table"],
            "proj": "EPSG:32631",
        },
        "arg_train": {"runs": runs, "ratio": 0.75, "random_seed": 0,
                      "sample_selection": {"sampler": "random", "strategy": "constant",
                                           "strategy.constant.nb": 500}},
        "Sentinel_2": {"temporal_resolution": 10},
        "python_data_managing": {"chunk_size_mode": "auto"},
    }
    config_path = out_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return {**dataset, "config": str(config_path)}
