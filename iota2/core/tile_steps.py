"""Init steps of the tiles of a run, shared by the builders: output folders, pixel validity (``nbView.tif``)
and common mask of a tile.

Each function is a task function (module level, small picklable arguments) that any builder wires into its
graph as ``"iota2.core.tile_steps:<name>"``. Tasks take the few values they use as arguments; a task that reads
images through the sensors takes :func:`sensor_config`, the part of the configuration sensors and the feature
stage read.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import rasterio

from iota2.core.config import Config
from iota2.core.errors import InputDataError
from iota2.core.features import enabled_sensors
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output, chunk_windows

LOGGER = logging.getLogger(__name__)

SENSOR_SECTIONS = ("sensors_data_interpolation", "iota2_feature_extraction", "python_data_managing",
                   "external_features")
"""Core sections that sensors and the feature stage read (whole)."""

SENSOR_KEYS = {"arg_train": ("features",)}
"""Keys of other core sections that sensors read (the spectral indices)."""


def sensor_config(config) -> dict:
    """The part of a configuration that sensors and the feature stage read, for the tasks that read images.

    Holds the core sections :data:`SENSOR_SECTIONS`, the keys :data:`SENSOR_KEYS`, and what every registered
    sensor plugin declares through ``iota2_config_sections``: its own sections whole (``Sentinel_2``,
    ``userFeat`` ...) and, in the core sections (``chain`` ...), only the keys it declares (``chain.s2_path``,
    ``chain.s2_output_path`` ...). The ground truth, the learner, the output folder and the other settings are
    left out: a task receives the ones it uses as arguments.

    Parameters
    ----------
    config
        The validated configuration (a :class:`iota2.core.config.Config` or its ``as_dict()``).

    Returns
    -------
    dict
        A plain, deep-copied mapping of sections, which the task wraps in a
        :class:`iota2.core.config.Config`.
    """
    from iota2.core.config import CORE_SECTIONS
    from iota2.core.plugins import config_sections

    values = config.as_dict() if hasattr(config, "as_dict") else copy.deepcopy(dict(config))
    core = {section.name for section in CORE_SECTIONS}
    keys: dict[str, set[str]] = {name: set(wanted) for name, wanted in SENSOR_KEYS.items()}
    whole = set(SENSOR_SECTIONS)
    for section in config_sections():
        if section.name in core and section.name not in whole:
            keys.setdefault(section.name, set()).update(section.params)
        else:
            whole.add(section.name)
    reduced = {name: values[name] for name in values if name in whole}
    for name, wanted in keys.items():
        if isinstance(values.get(name), dict):
            reduced[name] = {key: value for key, value in values[name].items() if key in wanted}
    return reduced


def create_directories(output_path: str, tiles: list[str], builder: str = "i2_classification") -> None:
    """Create the output tree of a builder (existing content is kept, so a restart loses nothing).

    Parameters
    ----------
    output_path
        ``chain.output_path``.
    tiles
        Tile names: each gets its ``features/<T>/tmp`` folder.
    builder
        Whose tree: ``"i2_classification"`` or ``"i2_features_map"`` (see
        :meth:`iota2.core.layout.OutputLayout.directories`).
    """
    for folder in OutputLayout(output_path).directories(tiles, builder):
        folder.mkdir(parents=True, exist_ok=True)


def compute_validity(config: dict, tile: str, grid: dict, dates_by_sensor: dict, output_path: str, *,
                     compression: str, memory_mb: int) -> None:
    """Write ``features/<T>/nbView.tif`` (clear observations, all sensors) and the common mask.

    Sensors that give their clear observations date by date (``read_clear_by_date``, the optical ones) are
    checked: a date without any clear pixel on the tile is warned about (tile and dates named), and a tile
    where every observation of a sensor is masked is refused, since its map would be made of gap-filled
    zeros, a single class.

    Parameters
    ----------
    config
        :func:`sensor_config` of the configuration.
    tile
        Tile name.
    grid
        The tile's grid (:meth:`iota2.core.raster.Grid.to_dict`).
    dates_by_sensor
        Interpolation dates of each sensor.
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    memory_mb
        ``python_data_managing.memory_per_task_mb``: the tile is read in chunks of about this size.

    Raises
    ------
    InputDataError
        If every observation of a sensor on the tile is masked; nothing is written.
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    sensors = [cls(config, tile) for cls in enabled_sensors(config)]
    windows = chunk_windows(grid, "auto", bytes_per_pixel=64 * sum(len(d) for d in dates_by_sensor.values()) + 16,
                            memory_mb=memory_mb)
    clear_by_date = {index: None for index, sensor in enumerate(sensors) if hasattr(sensor, "read_clear_by_date")}
    layout = OutputLayout(output_path)
    with atomic_output(layout.validity(tile)) as tmp_validity, atomic_output(layout.common_mask(tile)) as tmp_mask:
        with rasterio.open(tmp_validity, "w", **grid.profile(1, "uint16", compress=compression)) as out_validity, \
                rasterio.open(tmp_mask, "w", **grid.profile(1, "uint8", compress=compression)) as out_mask:
            for window in windows:
                validity = np.zeros((int(window.height), int(window.width)), np.uint16)
                footprint = np.ones_like(validity, dtype=bool)
                for index, sensor in enumerate(sensors):
                    if index in clear_by_date:
                        clear, sensor_footprint = sensor.read_clear_by_date(grid, window)
                        sensor_validity = clear.sum(axis=0, dtype=np.uint16)
                        counts = clear.sum(axis=(1, 2), dtype=np.int64)
                        clear_by_date[index] = counts if clear_by_date[index] is None else clear_by_date[index] + counts
                    else:
                        sensor_validity, sensor_footprint = sensor.read_masks(grid, window)
                    validity += sensor_validity.astype(np.uint16)
                    footprint &= sensor_footprint
                out_validity.write(validity, 1, window=window)
                out_mask.write(footprint.astype(np.uint8), 1, window=window)
        for index, counts in clear_by_date.items():
            check_clear_dates(tile, sensors[index], sensors[index].input_dates(), counts)
    LOGGER.info("validity of %s written (%d chunks)", tile, len(windows))


def check_clear_dates(tile: str, sensor, dates: list[str], counts) -> None:
    """Refuse a tile whose every observation is masked; warn about the dates without any clear pixel.

    Parameters
    ----------
    tile
        Tile name.
    sensor
        The sensor (its ``label`` and ``path_key`` name it in messages).
    dates
        Its input dates.
    counts
        Clear pixels of the tile per input date.

    Raises
    ------
    InputDataError
        If no date has a clear pixel.
    """
    label = getattr(sensor, "label", "") or type(sensor).__name__
    where = f"chain.{sensor.path_key}" if getattr(sensor, "path_key", "") else "the sensor's products"
    counts = np.zeros(len(dates), np.int64) if counts is None else np.asarray(counts)
    if len(dates) and not counts.any():
        raise InputDataError(f"tile {tile}: every {label} observation of its {len(dates)} date(s) is masked (clouds, "
                             f"saturation, no data or NaN); its map would be a single gap-filled class: remove "
                             f"{tile} from chain.list_tile or check its mask files under {where}")
    empty = [date for date, count in zip(dates, counts.tolist()) if count == 0]
    if empty:
        LOGGER.warning("tile %s: %d of %d %s date(s) have no clear pixel (every observation masked): %s; they "
                       "only add gap-filled values", tile, len(empty), len(dates), label, ", ".join(empty))
