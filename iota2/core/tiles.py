"""Tiles of a run, prepared once for any builder: the enabled sensors, each tile's reference grid, the
interpolation dates of each sensor and the chunk windows of a tile.

:func:`prepare_tiles` checks the sensors' inputs (headers only: cheap) and returns a :class:`TileSet`; builders
wire their steps over it (the classification builder, a features map, OBIA ...).
"""

from __future__ import annotations

import dataclasses

from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.core.features import bytes_per_pixel, enabled_sensors, grid_sensor
from iota2.core.raster import Grid, chunk_windows


@dataclasses.dataclass
class TileSet:
    """The tiles of a run and what every step needs to read them.

    Attributes
    ----------
    config
        The validated configuration.
    tiles
        Tile names, in ``chain.list_tile`` order.
    sensor_classes
        Enabled sensor classes, in iota2's stacking order.
    grids
        Reference grid of each tile (the finest optical sensor's, in ``chain.proj`` and
        ``chain.spatial_resolution`` when set).
    dates_by_sensor
        Interpolation dates of each sensor (by config section), common to all tiles.
    parallel_tasks
        Tasks run at once: chunk counts in ``auto`` mode are rounded up to a multiple of it.
    """

    config: object
    tiles: list[str]
    sensor_classes: list
    grids: dict[str, Grid]
    dates_by_sensor: dict[str, list[str]]
    parallel_tasks: int = 1

    def windows(self, tile: str) -> list[Window]:
        """Chunk windows of ``tile`` (``python_data_managing``: memory budget, number of chunks or fixed size)."""
        managing = self.config["python_data_managing"]
        return chunk_windows(self.grids[tile], managing["chunk_size_mode"], managing["number_of_chunks"],
                             managing["chunk_size_x"], managing["chunk_size_y"],
                             bytes_per_pixel(self.config, tile, self.dates_by_sensor, self.sensor_classes),
                             managing["memory_per_task_mb"], multiple_of=self.parallel_tasks)

    def window_lists(self) -> dict[str, list[list[int]]]:
        """``{tile: [[col_off, row_off, width, height], ...]}``: the windows as task arguments."""
        return {tile: [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)] for w in self.windows(tile)]
                for tile in self.tiles}


def prepare_tiles(config, parallel_tasks: int = 1) -> TileSet:
    """Check every enabled sensor's inputs on every tile and compute grids and interpolation dates.

    The first optical sensor (:func:`iota2.core.features.grid_sensor`) gives each tile's grid; the other
    sensors are checked against it. Raises the sensors' :class:`~iota2.core.errors.InputDataError` /
    :class:`~iota2.core.errors.ConfigError` naming the file or key.
    """
    tiles = list(config["chain"]["list_tile"])
    sensor_classes = enabled_sensors(config)
    chain = config["chain"]
    crs = CRS.from_user_input(chain["proj"]) if chain.get("proj") else None
    resolution = chain.get("spatial_resolution")
    first = grid_sensor(sensor_classes)
    grids: dict[str, Grid] = {}
    for tile in tiles:
        sensor = first(config, tile)
        sensor.check_inputs()
        grid = sensor.reference_grid(crs=crs, resolution=resolution)
        if crs is None:
            crs = grid.crs
        grids[tile] = grid
    dates_by_sensor: dict[str, list[str]] = {}
    for cls in sensor_classes:
        dates_by_tile = {}
        for tile in tiles:
            sensor = cls(config, tile)
            if cls is not first:
                sensor.check_inputs(grid=grids[tile])
            dates_by_tile[tile] = sensor.input_dates()
        dates_by_sensor[cls.config_section] = cls.interpolation_dates(config, dates_by_tile)
    return TileSet(config, tiles, sensor_classes, grids, dates_by_sensor, parallel_tasks)
