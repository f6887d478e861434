"""The features-map builder (``i2_features_map``): images in, a map of their features out (no ground truth).

Groups of steps, in order:

* ``init``: output folders, then the pixel validity and common mask of each tile
  (:mod:`iota2.core.tile_steps`);
* ``writing``: the features of every (tile, chunk) written to ``customF/<T>_chunk_<i>.tif`` (each sensor's
  default features and the ``external_features`` functions), the chunks of a tile assembled into
  ``customF/<T>_features.vrt``, the tiles mosaicked into ``final/<output_name>.tif``.

``chain.first_step: writing`` reruns only the writing group (e.g. after changing
``external_features.functions``) with the grids and validity ``init`` prepared. The builder keeps its own task
journal (``IOTA2_tasks_status_i2_features_map.txt``), so it can share an output folder with a classification
without touching the classification's restart state. Tasks receive the few values they use; the chunk and
validity tasks get :func:`iota2.core.tile_steps.sensor_config`, the part of the configuration the sensors and
the feature stage read.
"""

from __future__ import annotations

import fnmatch

from iota2.builders.stac_items import add_stac_tasks
from iota2.core.builder import Builder
from iota2.core.errors import ConfigError
from iota2.core.graph import Graph
from iota2.core.hookspecs import hookimpl
from iota2.core.layout import (CLASSIFICATION_FINAL_PRODUCTS, FEATURES_MAP_ENTRIES, FEATURES_MAP_STATUS_FILE,
                               OutputLayout)
from iota2.core.mosaic import exact_overview_factors
from iota2.core.raster import align_stripes
from iota2.core.tile_steps import sensor_config
from iota2.core.tiles import TileSet, prepare_tiles

NAME = "i2_features_map"
"""The builder's name in ``builders.builders_class_name``."""

STEPS = "iota2.builders.features_map"
"""Module of this builder's writing steps."""


class I2FeaturesMap(Builder):
    """Feature maps of image time series: every feature of every pixel, written chunk by chunk."""

    groups = ["init", "writing"]
    output_entries = FEATURES_MAP_ENTRIES
    learns = False
    mandatory_keys: list[tuple[str, str]] = []

    def final_products(self) -> tuple[str, ...]:
        """The feature map ``final/<output_name>.tif``, its GDAL side file and its STAC folder."""
        output_name = self.config["external_features"].get("output_name")
        path = OutputLayout(self.config["chain"]["output_path"]).final_features_map(output_name)
        return path.name, f"{path.name}.aux.xml", f"{path.stem}_stac"

    def __init__(self, config, parallel_tasks: int = 1):
        super().__init__(config, parallel_tasks)
        self.tiles: list[str] = list(config["chain"]["list_tile"])
        self.tile_set: TileSet | None = None
        self.config_checked = False

    # ------------------------------------------------------------------ checks
    def check_config(self) -> None:
        """Check ``external_features`` (output name, concat mode, functions) without reading any image.

        Raises
        ------
        ConfigError
            For an ``output_name`` that is not a plain file name, ``concat_mode: False`` without functions (a
            map without bands), an unknown function or module, or ``builders.builders_paths``.
        """
        external = self.config["external_features"]
        name = external.get("output_name")
        if name is not None:
            stem = str(name)[:-4] if str(name).lower().endswith(".tif") else str(name)
            if not stem.strip() or "/" in stem or "\\" in stem or stem.startswith(".") or stem != stem.strip():
                raise ConfigError(f"external_features.output_name = {name!r}: give a file name without folder, e.g. "
                                  "'features_map' (the map is written to final/<output_name>.tif)")
            taken = [pattern for pattern in CLASSIFICATION_FINAL_PRODUCTS
                     if fnmatch.fnmatchcase(f"{stem}.tif", pattern)]
            if taken:  # the map would replace (and a rerun delete) a classification's product in final/
                raise ConfigError(f"external_features.output_name = {name!r} is the name of a classification product "
                                  f"in final/ ({taken[0]}); choose another name, e.g. 'features_map'")
        functions = external.get("functions")
        if not functions and external.get("concat_mode") is False:
            raise ConfigError("external_features.concat_mode is False (only the functions' features are written) but "
                              "external_features.functions is empty: the map would have no band; name functions "
                              "(e.g. functions: \"get_soi\") or set concat_mode to True")
        if functions:  # an unknown module or function fails now, before any task
            from iota2.core.feature_functions import FeatureFunctions

            FeatureFunctions.from_config(self.config)
        if self.config["builders"].get("builders_paths"):
            raise ConfigError("builders.builders_paths: builders are plugins found through the 'iota2' entry-point "
                              "group; package your builder (see docs/plugins.md) and remove builders_paths")
        self.config_checked = True

    def check_inputs(self) -> None:
        """Check the configuration and every sensor's inputs; compute grids and dates (cheap: headers only)."""
        if not self.config_checked:
            self.check_config()
        self.tile_set = prepare_tiles(self.config, self.parallel_tasks)

    # ------------------------------------------------------------------ graph
    def build_graph(self) -> Graph:
        """``init``: folders, validity per tile; ``writing``: chunks, tile maps, the final map.

        The chunks need the folders only: they run beside the validity of their tile (which reads every mask of
        the tile) instead of after it, and the final map waits for both, so a run whose validity failed leaves no
        final map."""
        if self.tile_set is None:
            self.check_inputs()
        tile_set = self.tile_set
        chain = self.config["chain"]
        sensors = sensor_config(self.config)
        out = chain["output_path"]
        compression = chain["compression_algorithm"]
        output_name = self.config["external_features"].get("output_name")
        grids = {tile: grid.to_dict() for tile, grid in tile_set.grids.items()}
        dates = tile_set.dates_by_sensor
        graph = Graph(self.groups, status_file=FEATURES_MAP_STATUS_FILE)
        step = graph.add_step
        step("features_map_directories", "init", "create output directories")
        step("features_map_validity", "init", "compute pixel validity and common mask by tile")
        step("features_chunk", "writing", "compute and write the features of each tile chunk (customF)",
             per_chunk=True)
        step("features_tile", "writing", "assemble the chunks of each tile")
        step("features_map", "writing", "mosaic the tiles into the final feature map")
        task = graph.add_task
        directories = task("features_map_directories", "features_map_directories",
                           "iota2.core.tile_steps:create_directories",
                           {"output_path": out, "tiles": self.tiles, "builder": NAME})
        windows = tile_set.window_lists()
        overview_factors: list[int] = []
        if len(self.tiles) == 1:  # the final map is this tile: its chunks can make its overviews, exactly
            tile, grid = self.tiles[0], tile_set.grids[self.tiles[0]]
            exact = exact_overview_factors(grid.width, grid.height)
            aligned = align_stripes(windows[tile], exact[-1], grid.width, grid.height) if exact else None
            if aligned is not None:
                windows[tile], overview_factors = aligned, exact
        tile_maps, validities = [], []
        for tile in self.tiles:
            validity = task(f"features_map_validity_{tile}", "features_map_validity",
                            "iota2.core.tile_steps:compute_validity",
                            {"config": sensors, "tile": tile, "grid": grids[tile], "dates_by_sensor": dates,
                             "output_path": out, "compression": compression,
                             "memory_mb": self.config["python_data_managing"]["memory_per_task_mb"]}, [directories])
            validities.append(validity)
            chunks = [task(f"features_{tile}_chunk_{index}", "features_chunk", f"{STEPS}:write_chunk",
                           {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                            "dates_by_sensor": dates, "output_path": out, "output_name": output_name,
                            "compression": compression, "overview_factors": overview_factors}, [directories])
                      for index, window in enumerate(windows[tile])]
            tile_maps.append(task(f"features_tile_{tile}", "features_tile", f"{STEPS}:merge_tile",
                                  {"tile": tile, "grid": grids[tile], "windows": windows[tile], "output_path": out,
                                   "overview_factors": overview_factors}, chunks))
        final_map = task("features_map", "features_map", f"{STEPS}:mosaic_tiles",
                         {"tiles": self.tiles, "output_path": out, "output_name": output_name,
                          "compression": compression,
                          "chunks_per_tile": {tile: len(windows[tile]) for tile in self.tiles},
                          "remove_tmp_files": chain["remove_tmp_files"], "overview_factors": overview_factors},
                         tile_maps + validities)
        add_stac_tasks(graph, "writing", {"output_path": out, "output_name": output_name, "dates_by_sensor": dates},
                       [final_map], features_map=True)
        return graph


@hookimpl
def iota2_register_builders():
    return {NAME: I2FeaturesMap, "I2FeaturesMap": I2FeaturesMap}
