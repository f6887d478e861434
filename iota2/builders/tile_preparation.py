"""Init tasks of a tile: output folders, pixel validity (``nbView.tif``) and common mask."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio

from iota2.core.config import Config
from iota2.core.features import enabled_sensors
from iota2.core.raster import Grid, atomic_output, chunk_windows

LOGGER = logging.getLogger(__name__)

OUTPUT_FOLDERS = ["samplesSelection", "model", "formattingVectors", "classif", "final", "final/TMP", "features",
                  "learningSamples", "dataAppVal", "shapeRegion", "logs"]


def validity_path(output_path, tile: str) -> Path:
    return Path(output_path) / "features" / tile / "nbView.tif"


def common_mask_path(output_path, tile: str) -> Path:
    return Path(output_path) / "features" / tile / "tmp" / "MaskCommunSL.tif"


def create_directories(output_path: str, tiles: list[str]) -> None:
    """Create the output tree (existing content is kept, so a restart loses nothing)."""
    root = Path(output_path)
    for folder in OUTPUT_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for tile in tiles:
        (root / "features" / tile / "tmp").mkdir(parents=True, exist_ok=True)


def compute_validity(config: dict, tile: str, grid: dict, dates_by_sensor: dict, output_path: str) -> None:
    """Write ``features/<T>/nbView.tif`` (clear observations, all sensors) and the common mask."""
    config = Config(config)
    grid = Grid.from_dict(grid)
    sensors = [cls(config, tile) for cls in enabled_sensors(config)]
    windows = chunk_windows(grid, "auto", bytes_per_pixel=64 * sum(len(d) for d in dates_by_sensor.values()) + 16,
                            memory_mb=config["python_data_managing"]["memory_per_task_mb"])
    compress = config["chain"]["compression_algorithm"]
    with atomic_output(validity_path(output_path, tile)) as tmp_validity, \
            atomic_output(common_mask_path(output_path, tile)) as tmp_mask:
        with rasterio.open(tmp_validity, "w", **grid.profile(1, "uint16", compress=compress)) as out_validity, \
                rasterio.open(tmp_mask, "w", **grid.profile(1, "uint8", compress=compress)) as out_mask:
            for window in windows:
                validity = np.zeros((int(window.height), int(window.width)), np.uint16)
                footprint = np.ones_like(validity, dtype=bool)
                for sensor in sensors:
                    sensor_validity, sensor_footprint = sensor.read_masks(grid, window)
                    validity += sensor_validity.astype(np.uint16)
                    footprint &= sensor_footprint
                out_validity.write(validity, 1, window=window)
                out_mask.write(footprint.astype(np.uint8), 1, window=window)
    LOGGER.info("validity of %s written (%d chunks)", tile, len(windows))
