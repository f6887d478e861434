"""Init steps of the tiles of a run, shared by the builders: output folders, pixel validity (``nbView.tif``)
and common mask of a tile.

Each function is a task function (module level, small picklable arguments) that any builder wires into its
graph as ``"iota2.core.tile_steps:<name>"``.
"""

from __future__ import annotations

import logging

import numpy as np
import rasterio

from iota2.core.config import Config
from iota2.core.errors import InputDataError
from iota2.core.features import enabled_sensors
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, atomic_output, chunk_windows

LOGGER = logging.getLogger(__name__)


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


def compute_validity(config: dict, tile: str, grid: dict, dates_by_sensor: dict, output_path: str) -> None:
    """Write ``features/<T>/nbView.tif`` (clear observations, all sensors) and the common mask.

    Sensors that give their clear observations date by date (``read_clear_by_date``, the optical ones) are
    checked: a date without any clear pixel on the tile is warned about (tile and dates named), and a tile
    where every observation of a sensor is masked is refused, since its map would be made of gap-filled
    zeros, a single class.

    Raises
    ------
    InputDataError
        If every observation of a sensor on the tile is masked; nothing is written.
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    sensors = [cls(config, tile) for cls in enabled_sensors(config)]
    windows = chunk_windows(grid, "auto", bytes_per_pixel=64 * sum(len(d) for d in dates_by_sensor.values()) + 16,
                            memory_mb=config["python_data_managing"]["memory_per_task_mb"])
    compress = config["chain"]["compression_algorithm"]
    clear_by_date = {index: None for index, sensor in enumerate(sensors) if hasattr(sensor, "read_clear_by_date")}
    layout = OutputLayout(output_path)
    with atomic_output(layout.validity(tile)) as tmp_validity, atomic_output(layout.common_mask(tile)) as tmp_mask:
        with rasterio.open(tmp_validity, "w", **grid.profile(1, "uint16", compress=compress)) as out_validity, \
                rasterio.open(tmp_mask, "w", **grid.profile(1, "uint8", compress=compress)) as out_mask:
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
