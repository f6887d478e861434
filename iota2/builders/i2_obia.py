"""The OBIA builder (``i2_obia``): objects of a segmentation classified from their zonal statistics.

The pixel chain's groups, in order (``init``, ``sampling``, ``learning``, ``classification``, ``mosaic``,
``validation``), with the pixel steps of sampling and classification swapped for per-object ones
(docs/obia.md):

* ``init``: output folders, pixel validity and common mask per tile (:mod:`iota2.core.tile_steps`), the
  segmentation of each tile: the user's rasterised on the tile grid
  (:func:`iota2.core.user_segmentation.rasterise_segmentation`) or SLIC superpixels per chunk, assembled per tile
  (:mod:`iota2.core.segmentation`);
* ``sampling``: ground truth split per run and region (the pixel chain's), its pixels per tile, zonal statistics
  per (tile, chunk), objects and their statistics per tile, ground-truth pixels per object, object outlines,
  learning samples per (region, run) (one row per learning object) and class statistics per run;
* ``learning``: the pixel chain's learning task (:func:`iota2.builders.learning.train_model`): any learner;
* ``classification``: the objects of each tile predicted with the model of their region, for every run, then
  rasterised into the tile maps chunk by chunk;
* ``mosaic``: the pixel chain's final maps and pixel validity, and the classified objects as a GeoPackage;
* ``validation``: the pixel chain's pixel-based confusion matrices, object-based ones, and ``RESULTS.txt``
  holding both.

The builder keeps its own task journal (``IOTA2_tasks_status_i2_obia.txt``).
"""

from __future__ import annotations

import logging

from iota2.builders.i2_classification import I2Classification
from iota2.builders.report_task import add_report_and_stac_tasks
from iota2.core.errors import ConfigError
from iota2.core.graph import Graph
from iota2.core.hookspecs import hookimpl
from iota2.core.layout import CLASSIFICATION_FINAL_PRODUCTS, OBIA_ENTRIES, OBIA_STATUS_FILE
from iota2.core.plugins import learners
from iota2.core.tile_steps import sensor_config

LOGGER = logging.getLogger(__name__)

NAME = "i2_obia"
"""The builder's name in ``builders.builders_class_name``."""

STEPS = "iota2.builders.obia"
"""Module of this builder's own steps."""


def _task(module: str, name: str) -> str:
    return f"iota2.builders.{module}:{name}"


def region_order(regions: list[str], priority: list[str] | None) -> list[str]:
    """Regions in the order they claim an object touching several: ``obia.region_priority`` first, then the
    others in numeric order (names that are numbers by value, then the others by name)."""
    from iota2.builders.sampling import _region_sort_key

    first = [str(name) for name in (priority or [])]
    return first + sorted((name for name in regions if name not in first), key=_region_sort_key)


class I2Obia(I2Classification):
    """Object-based classification: one model per (region, run) learnt and applied on objects."""

    groups = ["init", "sampling", "learning", "classification", "mosaic", "validation"]
    output_entries = OBIA_ENTRIES

    def final_products(self) -> tuple[str, ...]:
        """The pixel chain's products in ``final/`` (maps, validity, RESULTS.txt) and the classified objects."""
        return CLASSIFICATION_FINAL_PRODUCTS

    def __init__(self, config, parallel_tasks: int = 1):
        super().__init__(config, parallel_tasks)
        self.segmentation_kind: str | None = None
        self.region_names: list[str] = []

    # ------------------------------------------------------------------ checks
    def check_config(self) -> None:
        """The pixel chain's checks, then the ``obia`` section: the statistics, autocontext (a pixel method)."""
        if self.config["arg_train"].get("enable_autocontext"):
            raise ConfigError("arg_train.enable_autocontext: autocontext is a pixel classification and does not "
                              "combine with the OBIA builder (i2_obia); set it to False, or use builders_class_name: "
                              "['i2_classification'] for autocontext")
        from iota2.core.zonal_stats import check_statistics

        self.config["obia"]["stats_used"] = check_statistics(self.config["obia"]["stats_used"])
        super().check_config()

    def check_inputs(self) -> None:
        """The pixel chain's checks (sensors, ground truth, regions, class files), then the segmentation (missing,
        empty, covering no tile: an error; tiles it leaves out: a warning) and ``obia.region_priority``."""
        super().check_inputs()
        obia = self.config["obia"]
        path = obia.get("obia_segmentation_path")
        if path:
            from iota2.core.user_segmentation import check_segmentation

            self.segmentation_kind = check_segmentation(path, self.grids)
        priority = [str(name) for name in (obia.get("region_priority") or [])]
        if self.config["chain"].get("region_path"):
            from iota2.builders.ground_truth import load_regions

            regions = load_regions(self.config["chain"]["region_path"], self.config["chain"]["region_field"],
                                   next(iter(self.grids.values())).crs)
            self.region_names = regions["region"].tolist()
        else:
            self.region_names = ["1"]
        unknown = [name for name in priority if name not in self.region_names]
        if unknown or len(set(priority)) != len(priority):
            what = f"names {unknown} that are no region" if unknown else "names a region twice"
            raise ConfigError(f"obia.region_priority {what} (regions: {', '.join(self.region_names)}"
                              f"{' of chain.region_path' if self.config['chain'].get('region_path') else ''}); "
                              "list region names once each, or remove the key")

    # ------------------------------------------------------------------ graph
    def build_graph(self) -> Graph:
        if not self.grids:
            self.check_inputs()
        config = self.config
        chain, train, obia = config["chain"], config["arg_train"], config["obia"]
        sensors = sensor_config(config)
        out = chain["output_path"]
        runs = train["runs"]
        compression = chain["compression_algorithm"]
        probability_map = config["arg_classification"]["enable_probability_map"]
        nomenclature = chain.get("nomenclature_path")
        region_path = chain.get("region_path")
        segmentation = obia.get("obia_segmentation_path") or None
        user = segmentation is not None
        stats = list(obia["stats_used"])
        coverage = obia["min_class_coverage"]
        if self.learner is None:
            from iota2.core.learner import select_learner

            learner_class = select_learner(config)
            self.learner = (learner_class.name, learner_class.settings_from_config(config))
        learner_name, learner_settings = self.learner
        learner_resources = learners()[learner_name](learner_settings).resources()
        grids = {tile: grid.to_dict() for tile, grid in self.grids.items()}
        windows = self.tile_set.window_lists()
        chunks_by_tile = {tile: len(windows[tile]) for tile in self.tiles}
        order = region_order(self.region_names, obia.get("region_priority")) if region_path else None
        graph = Graph(self.groups, status_file=OBIA_STATUS_FILE)
        step = graph.add_step
        step("obia_directories", "init", "create output directories")
        step("validity", "init", "compute pixel validity and common mask by tile")
        if user:
            step("segmentation", "init", "rasterise the user segmentation on each tile")
        else:
            step("slic_chunk", "init", "compute SLIC superpixels by tile and chunk", per_chunk=True)
            step("slic_tile", "init", "assemble the superpixels of each tile")
        step("ground_truth", "sampling", "clip ground truth to tiles and regions, split learn/validation per run")
        step("truth_pixels", "sampling", "rasterise ground-truth polygons by tile")
        step("zonal_statistics", "sampling", "statistics of the features per segment by tile and chunk",
             per_chunk=True)
        step("objects", "sampling", "combine the statistics of each object by tile")
        step("object_truth", "sampling", "ground-truth pixels of each object by tile")
        step("object_polygons", "sampling", "outline the objects of each tile")
        step("object_samples", "sampling", "label learning objects by model and run")
        step("class_statistics", "sampling", "write class statistics by run")
        step("learning", "learning", "learn one model by region and run")
        step("classify_objects", "classification", "classify the objects of each tile")
        step("rasterise_objects", "classification", "rasterise the classified objects by tile and run")
        step("mosaic", "mosaic", "mosaic tiles into final maps by run")
        step("pixels_validity", "mosaic", "mosaic pixel validity")
        step("vectorise_objects", "mosaic", "write the classified objects by run")
        step("confusion", "validation", "pixel-based confusion matrix by run")
        step("object_confusion", "validation", "object-based confusion matrix by run")
        step("report", "validation", "report over runs (RESULTS.txt: pixels and objects)")
        step("html_report", "validation", "self-contained HTML report of the run (final/report.html)")
        task = graph.add_task

        directories = task("obia_directories", "obia_directories", "iota2.core.tile_steps:create_directories",
                           {"output_path": out, "tiles": self.tiles, "builder": NAME})
        validity = {tile: task(f"validity_{tile}", "validity", "iota2.core.tile_steps:compute_validity",
                               {"config": sensors, "tile": tile, "grid": grids[tile],
                                "dates_by_sensor": self.dates_by_sensor, "output_path": out,
                                "compression": compression,
                                "memory_mb": config["python_data_managing"]["memory_per_task_mb"]}, [directories])
                    for tile in self.tiles}
        segments = {}
        for tile in self.tiles:
            if user:
                segments[tile] = task(f"segmentation_{tile}", "segmentation",
                                      "iota2.core.user_segmentation:rasterise_segmentation",
                                      {"segmentation_path": segmentation, "tile": tile, "grid": grids[tile],
                                       "output_path": out, "compression": compression}, [directories])
                continue
            from iota2.core.segmentation import first_ids

            ids = first_ids(windows[tile])
            chunks = [task(f"slic_{tile}_chunk_{index}", "slic_chunk", "iota2.core.segmentation:segment_chunk",
                           {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                            "dates_by_sensor": self.dates_by_sensor, "output_path": out, "first_id": ids[index],
                            "compression": compression}, [validity[tile]])
                      for index, window in enumerate(windows[tile])]
            segments[tile] = task(f"slic_{tile}", "slic_tile", "iota2.core.segmentation:merge_superpixels",
                                  {"tile": tile, "grid": grids[tile], "windows": windows[tile], "output_path": out,
                                   "compression": compression}, chunks)
        truth = task("ground_truth", "ground_truth", "iota2.builders.i2_classification:prepare_ground_truth",
                     {"grids": grids, "output_path": out, "ground_truth": chain["ground_truth"],
                      "data_field": chain["data_field"], "runs": runs, "ratio": train["ratio"],
                      "random_seed": train["random_seed"], "split_ground_truth": train["split_ground_truth"],
                      "region_path": region_path, "region_field": chain["region_field"] if region_path else None},
                     [directories])
        pixels = {tile: task(f"truth_pixels_{tile}", "truth_pixels", _task("samples", "tile_pixels"),
                             {"tile": tile, "grid": grids[tile], "output_path": out,
                              "cloud_threshold": train["cloud_threshold"]}, [truth, validity[tile]])
                  for tile in self.tiles}
        zonal = []
        for position, tile in enumerate(self.tiles):
            earlier = [grids[other] for other in self.tiles[:position]] if user else []
            zonal += [task(f"zonal_{tile}_chunk_{index}", "zonal_statistics", f"{STEPS}:zonal_chunk",
                           {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                            "dates_by_sensor": self.dates_by_sensor, "output_path": out, "user_segmentation": user,
                            "stats": stats, "earlier_grids": earlier, "by_region": bool(region_path),
                            "buffer_size": obia.get("buffer_size")},
                           [segments[tile], validity[tile]] + ([truth] if region_path else []))
                      for index, window in enumerate(windows[tile])]
        objects = [task(f"objects_{tile}", "objects", f"{STEPS}:object_statistics",
                        {"config": sensors, "tile": tile, "tiles": self.tiles, "grids": grids,
                         "chunks_by_tile": chunks_by_tile, "dates_by_sensor": self.dates_by_sensor, "output_path": out,
                         "user_segmentation": user, "stats": stats, "region_order": order},
                        [task_ for task_ in zonal if user or task_.name.startswith(f"zonal_{tile}_chunk_")])
                   for tile in self.tiles]
        object_truth = [task(f"object_truth_{tile}", "object_truth", f"{STEPS}:object_truth",
                             {"tile": tile, "tiles": self.tiles, "output_path": out, "user_segmentation": user},
                             [pixels[tile], segments[tile]])
                        for tile in self.tiles]
        polygons = [task(f"object_polygons_{tile}", "object_polygons", f"{STEPS}:object_polygons",
                         {"tile": tile, "tiles": self.tiles, "grid": grids[tile], "output_path": out,
                          "segmentation_path": segmentation}, [segments[tile]])
                    for tile in self.tiles]
        crs = next(iter(self.grids.values())).crs.to_wkt()
        models = [(region, run) for region in self.regions for run in range(runs)]
        samples = {}
        for region, run in models:
            samples[region, run] = task(
                f"object_samples_region_{region}_seed_{run}", "object_samples", f"{STEPS}:object_samples",
                {"region": region, "run": run, "tiles": self.tiles, "output_path": out,
                 "data_field": chain["data_field"], "samples_format": train["samples_format"],
                 "sample_selection": train["sample_selection"], "random_seed": train["random_seed"],
                 "min_coverage": coverage, "crs": crs}, objects + object_truth + polygons)
        class_statistics = [task(f"class_statistics_seed_{run}", "class_statistics",
                                 _task("samples", "write_run_class_statistics"),
                                 {"run": run, "regions": self.regions, "output_path": out,
                                  "nomenclature_path": nomenclature},
                                 [samples[region, run] for region in self.regions])
                            for run in range(runs)]
        learning = [task(f"learning_region_{region}_seed_{run}", "learning", _task("learning", "train_model"),
                         {"region": region, "run": run, "output_path": out, "learner_name": learner_name,
                          "settings": learner_settings, "data_field": chain["data_field"],
                          "samples_format": train["samples_format"], "random_seed": train["random_seed"]},
                         [samples[region, run]], resources=learner_resources)
                    for region, run in models]
        classified = [task(f"classify_objects_{tile}", "classify_objects", f"{STEPS}:classify_objects",
                           {"tile": tile, "regions": self.regions, "runs": runs, "all_labels": self.labels,
                            "output_path": out}, learning + [objects[position]])
                      for position, tile in enumerate(self.tiles)]
        tile_maps = {}
        for position, tile in enumerate(self.tiles):
            for run in range(runs):
                tile_maps[tile, run] = task(
                    f"rasterise_objects_{tile}_seed_{run}", "rasterise_objects", f"{STEPS}:rasterise_objects",
                    {"tile": tile, "tiles": self.tiles, "grid": grids[tile], "windows": windows[tile], "run": run,
                     "all_labels": self.labels, "output_path": out, "user_segmentation": user,
                     "compression": compression, "probability_map": probability_map},
                    (classified if user else [classified[position]]) + [validity[tile]])
        final_probability_map = probability_map and config["arg_classification"]["generate_final_probability_map"]
        mosaics = []
        for run in range(runs):
            mosaics.append(task(f"mosaic_seed_{run}", "mosaic", _task("mosaic", "mosaic_run"),
                 {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out,
                  "compression": compression, "color_table": chain.get("color_table"),
                  "nomenclature_path": nomenclature,
                  "probability_map": final_probability_map},
                 [tile_maps[tile, run] for tile in self.tiles]))
            task(f"vectorise_objects_seed_{run}", "vectorise_objects", f"{STEPS}:vectorise_objects",
                 {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out},
                 classified + polygons)
        validity_map = task("pixels_validity", "pixels_validity", _task("mosaic", "pixels_validity"),
                            {"tiles": self.tiles, "output_path": out, "compression": compression},
                            [tile_maps[tile, 0] for tile in self.tiles] + list(validity.values()))
        confusion = []
        for run in range(runs):
            confusion.append(task(f"confusion_seed_{run}", "confusion", _task("validation", "confusion_of_run"),
                                  {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out,
                                   "nomenclature_path": nomenclature},
                                  [tile_maps[tile, run] for tile in self.tiles] + list(pixels.values())))
            confusion.append(task(f"object_confusion_seed_{run}", "object_confusion", f"{STEPS}:object_confusion",
                                  {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out,
                                   "min_coverage": coverage, "nomenclature_path": nomenclature},
                                  classified + object_truth))
        report = task("report", "report", f"{STEPS}:report", {"runs": runs, "output_path": out,
                                                              "nomenclature_path": nomenclature},
                      confusion + mosaics)  # the area-adjusted accuracy counts the final maps
        add_report_and_stac_tasks(graph, output_path=out, runs=runs, regions=self.regions, all_labels=self.labels,
                                  dates_by_sensor=self.dates_by_sensor, nomenclature_path=nomenclature,
                                  color_table=chain.get("color_table"), report=report, validity_map=validity_map,
                                  mosaics=mosaics, class_statistics=class_statistics, learning=learning)
        return graph


@hookimpl
def iota2_register_builders():
    return {NAME: I2Obia, "I2Obia": I2Obia}
