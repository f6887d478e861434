"""The classification builder (``i2_classification``): ground truth + images in, maps and reports out.

Groups of steps, in order: ``init``, ``sampling``, ``learning``, ``classification``, ``mosaic``,
``validation``. Tasks are per tile, per (region, run) or per (tile, chunk) with explicit
dependencies, so tiles progress independently wherever the method allows. Each task receives the few values
it uses, computed once in :meth:`I2Classification.build_graph`; the tasks that read images get
:func:`iota2.core.tile_steps.sensor_config`, the part of the configuration the sensors read.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path


from iota2.builders.report_task import add_report_and_stac_tasks
from iota2.core.builder import Builder
from iota2.core.config import require
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.graph import Graph
from iota2.core.hookspecs import hookimpl
from iota2.core.layout import CLASSIFICATION_FINAL_PRODUCTS, OUTPUT_ENTRIES, STATUS_FILE, OutputLayout
from iota2.core.learner import select_learner
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.core.plugins import learners
from iota2.core.raster import Grid, write_raster
from iota2.core.tile_steps import sensor_config
from iota2.core.tiles import TileSet, prepare_tiles

LOGGER = logging.getLogger(__name__)


class _Steps:
    """The step modules of this builder, imported at first use: discovering the plugins (and so reporting a
    configuration error) does not import pandas, geopandas and scikit-learn, which the steps need."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return importlib.import_module(f"iota2.builders.{name}")


steps = _Steps()

OTB_EQUIVALENTS = {"rf": "RandomForestClassifier", "sharkrf": "RandomForestClassifier", "libsvm": "SVC",
                   "svm": "SVC", "boost": "AdaBoostClassifier", "dt": "ExtraTreesClassifier",
                   "knn": "KNeighborsClassifier", "ann": "MLPClassifier", "bayes": "LogisticRegression"}


def _task(module: str, name: str) -> str:
    """``"iota2.builders.<module>:<name>"``, the function of a task (imported by the process that runs it)."""
    return f"iota2.builders.{module}:{name}"


def prepare_ground_truth(grids: dict, output_path: str, ground_truth: str, data_field: str, runs: int, ratio: float,
                         random_seed: int | None, split_ground_truth: bool = True, region_path: str | None = None,
                         region_field: str | None = None) -> None:
    """Clip the ground truth to tiles and regions, split it per run, write the split files and region rasters.

    Parameters
    ----------
    grids
        Grid of each tile (:meth:`iota2.core.raster.Grid.to_dict`).
    output_path
        ``chain.output_path``.
    ground_truth, data_field
        ``chain.ground_truth`` and ``chain.data_field``.
    runs, ratio, random_seed, split_ground_truth
        The split settings of ``arg_train``.
    region_path, region_field
        ``chain.region_path`` (None: one region) and ``chain.region_field``.
    """
    grids = {tile: Grid.from_dict(grid) for tile, grid in grids.items()}
    pieces = steps.ground_truth.formatted_ground_truth(grids, ground_truth, data_field, region_path, region_field)
    pieces = steps.ground_truth.split_runs(pieces, runs, ratio, random_seed, split_ground_truth)
    steps.ground_truth.write_split_files(pieces, Path(output_path), data_field, runs)
    regions = steps.ground_truth.load_regions(region_path, region_field, next(iter(grids.values())).crs)
    if regions is not None:
        import rasterio
        from rasterio import features as rio_features

        names = regions["region"].tolist()
        for tile, grid in grids.items():
            burnt = rio_features.rasterize(zip(regions.geometry.values, range(1, len(names) + 1)),
                                           out_shape=(grid.height, grid.width), transform=grid.transform, fill=0,
                                           dtype="uint16")
            path = OutputLayout(output_path).region_raster(tile)
            write_raster(path, burnt, grid, nodata=0)
            with rasterio.open(path, "r+") as dst:
                dst.update_tags(regions=",".join(names))


class I2Classification(Builder):
    """Pixel classification of image time series with one model per (region, run)."""

    groups = ["init", "sampling", "learning", "classification", "mosaic", "validation"]
    output_entries = OUTPUT_ENTRIES + (STATUS_FILE,)
    mandatory_keys = [("chain", "ground_truth"), ("chain", "data_field")]

    def final_products(self) -> tuple[str, ...]:
        """Maps, validity, confusion matrices and RESULTS.txt in ``final/``."""
        return CLASSIFICATION_FINAL_PRODUCTS

    def __init__(self, config, parallel_tasks: int = 1):
        super().__init__(config, parallel_tasks)
        self.tiles: list[str] = list(config["chain"]["list_tile"])
        self.sensor_classes = []
        self.grids: dict[str, Grid] = {}
        self.dates_by_sensor: dict[str, list[str]] = {}
        self.regions: list[str] = []
        self.labels: list[int] = []
        self.tiles_with_truth: list[str] = []
        self.tile_set: TileSet | None = None
        self.config_checked = False
        self.learner: tuple[str, dict] | None = None

    # ------------------------------------------------------------------ checks
    def check_config(self) -> None:
        require(self.config, self.mandatory_keys, "the classification builder (i2_classification)")
        train = self.config["arg_train"]
        if train.get("classifier") and not any(learner_class.selected_by(self.config)
                                               for learner_class in learners().values()):
            if str(train["classifier"]).lower() not in OTB_EQUIVALENTS:
                raise ConfigError(f"arg_train.classifier = {train['classifier']!r} is neither one of OTB's classifiers "
                                  f"({', '.join(sorted(set(OTB_EQUIVALENTS) - {'sharkrf'}))}) nor a name an installed "
                                  "learner answers to (iota2 plugins lists them)")
            native = OTB_EQUIVALENTS[str(train["classifier"]).lower()]
            raise ConfigError(f"arg_train.classifier = {train['classifier']!r} selects an OTB classifier, and no "
                              "installed learner handles OTB classifiers; reinstall iota2 (its OTB backend plugin, "
                              "docs/otb.md), or remove arg_train.classifier and use the native equivalent: "
                              f"scikit_models_parameters: {{model_type: {native}}}")
        if train.get("deep_learning_parameters") and not any(learner_class.selected_by(self.config)
                                                             for learner_class in learners().values()):
            raise ConfigError("arg_train.deep_learning_parameters: no installed learner handles deep learning; "
                              "install the deep-learning plugin, or remove the section to use "
                              "scikit_models_parameters")
        if self.config["external_features"].get("functions"):  # a missing module or function fails now
            from iota2.core.feature_functions import FeatureFunctions

            FeatureFunctions.from_config(self.config)
        unsupported = [("sensors_data_interpolation", "write_outputs"), ("iota2_feature_extraction", "rel_refl"),
                       ("iota2_feature_extraction", "acor_feat")]
        for section, key in unsupported:
            if self.config[section].get(key):
                raise ConfigError(f"{section}.{key}: not available in this version; set it to False")
        if self.config["builders"].get("builders_paths"):
            raise ConfigError("builders.builders_paths: builders are plugins found through the 'iota2' entry-point "
                              "group; package your builder (see docs/plugins.md) and remove builders_paths")
        train["sample_selection"] = steps.sampling.validate_sample_selection(train["sample_selection"])
        learner_class = select_learner(self.config)  # unknown learner or keyword: fail before any task
        self.learner = (learner_class.name, learner_class.settings_from_config(self.config))
        if train.get("enable_autocontext"):  # random forests only, as iota2
            steps.autocontext.check_learner(*self.learner, self.config)
        self.config_checked = True

    def check_inputs(self) -> None:
        """Check config, sensors and ground truth; compute grids, dates, regions and labels (cheap)."""
        if not self.config_checked:  # the command line checks the configuration first, before any cluster starts
            self.check_config()
        self.tile_set = prepare_tiles(self.config, self.parallel_tasks)
        self.sensor_classes = self.tile_set.sensor_classes
        self.grids = self.tile_set.grids
        self.dates_by_sensor = self.tile_set.dates_by_sensor
        chain = self.config["chain"]
        pieces = steps.ground_truth.formatted_ground_truth(self.grids, chain["ground_truth"], chain["data_field"],
                                                           chain.get("region_path"), chain["region_field"])
        self.labels = sorted(int(v) for v in pieces["label"].unique())
        self.regions = sorted(pieces["region"].unique().tolist(), key=lambda r: (len(r), r))
        self.tiles_with_truth = [t for t in self.tiles if (pieces["tile"] == t).any()]
        for region in self.regions:
            classes = pieces.loc[pieces["region"] == region, "label"].unique()
            if len(classes) < 2:
                raise InputDataError(f"region {region} of {chain.get('region_path') or 'the tiles'} has ground truth "
                                     f"of a single class ({classes.tolist()}); a model needs at least two classes: "
                                     "add polygons of other classes or merge this region with a neighbour")
        too_large = [label for label in self.labels if label > steps.ground_truth.MAX_LABEL]
        if too_large:  # check_labels refuses them already; the maps' pixel type depends on it
            raise InputDataError(f"chain.ground_truth '{chain['ground_truth']}': label(s) {too_large[:10]} of "
                                 f"chain.data_field '{chain['data_field']}' exceed {steps.ground_truth.MAX_LABEL}, the "
                                 "largest label a map holds; recode these classes")
        self.check_class_files()
        steps.sampling.check_byclass_labels(self.config["arg_train"]["sample_selection"], self.labels)

    def check_class_files(self) -> None:
        """Read the nomenclature and the colour table now (a wrong path or line fails at start, not after the
        classification) and warn about ground-truth labels they leave out."""
        chain = self.config["chain"]
        for key, read, used_for in (("nomenclature_path", read_nomenclature, "named by their number in the reports"),
                                    ("color_table", read_color_table, "given a default colour in the colour map")):
            entries = read(chain.get(key))
            missing = [label for label in self.labels if entries and label not in entries]
            if missing:
                LOGGER.warning("chain.%s: %s has no line for label(s) %s of the ground truth; they are %s",
                               key, chain[key], ", ".join(map(str, missing)), used_for)

    # ------------------------------------------------------------------ graph
    def windows(self, tile: str) -> list:
        """Chunk windows of ``tile`` (see :meth:`iota2.core.tiles.TileSet.windows`)."""
        return self.tile_set.windows(tile)

    def build_graph(self) -> Graph:
        if not self.grids:
            self.check_inputs()
        config = self.config
        chain, train = config["chain"], config["arg_train"]
        sensors = sensor_config(config)  # what the tasks reading images through the sensors need
        out = chain["output_path"]
        runs = train["runs"]
        compression = chain["compression_algorithm"]
        probability_map = config["arg_classification"]["enable_probability_map"]
        nomenclature = chain.get("nomenclature_path")
        region_path = chain.get("region_path")
        if self.learner is None:
            learner_class = select_learner(config)
            self.learner = (learner_class.name, learner_class.settings_from_config(config))
        learner_name, learner_settings = self.learner
        learner_resources = learners()[learner_name](learner_settings).resources()
        grids = {tile: grid.to_dict() for tile, grid in self.grids.items()}
        graph = Graph(self.groups)
        step = graph.add_step
        step("create_directories", "init", "create output directories")
        step("validity", "init", "compute pixel validity and common mask by tile")
        autocontext = bool(train["enable_autocontext"])
        if autocontext:
            step("superpixels", "init", "compute SLIC superpixels by tile and chunk (autocontext)",
                 per_chunk=True)
            step("superpixels_merge", "init", "assemble the SLIC superpixels of each tile (autocontext)")
        step("ground_truth", "sampling", "clip ground truth to tiles and regions, split learn/validation per run")
        step("truth_pixels", "sampling", "rasterise ground-truth polygons by tile")
        step("selection", "sampling", "select learning samples by model and run")
        step("class_statistics", "sampling", "write class statistics by run")
        step("extraction", "sampling", "extract features of samples by tile and chunk", per_chunk=True)
        step("merge_samples", "sampling", "merge samples by model and run")
        if autocontext:
            step("learning", "learning", "learn one model by region, run and autocontext iteration")
            step("context", "learning", "classify chunks and count labels per superpixel by autocontext iteration",
                 per_chunk=True)
            step("classification", "classification", "classify tiles chunk by chunk, autocontext iterations in "
                 "sequence", per_chunk=True)
        else:
            step("learning", "learning", "learn one model by region and run")
            step("classification", "classification", "classify tiles chunk by chunk", per_chunk=True)
        step("merge_chunks", "classification", "merge classified chunks by tile and run")
        step("mosaic", "mosaic", "mosaic tiles into final maps by run")
        step("pixels_validity", "mosaic", "mosaic pixel validity")
        step("confusion", "validation", "confusion matrix by run")
        step("report", "validation", "report over runs (RESULTS.txt, figures)")
        step("html_report", "validation", "self-contained HTML report of the run (final/report.html)")
        task = graph.add_task

        directories = task("create_directories", "create_directories", "iota2.core.tile_steps:create_directories",
                           {"output_path": out, "tiles": self.tiles})
        validity = {tile: task(f"validity_{tile}", "validity", "iota2.core.tile_steps:compute_validity",
                               {"config": sensors, "tile": tile, "grid": grids[tile],
                                "dates_by_sensor": self.dates_by_sensor, "output_path": out,
                                "compression": compression,
                                "memory_mb": config["python_data_managing"]["memory_per_task_mb"]}, [directories])
                    for tile in self.tiles}
        truth = task("ground_truth", "ground_truth", f"{__name__}:prepare_ground_truth",
                     {"grids": grids, "output_path": out, "ground_truth": chain["ground_truth"],
                      "data_field": chain["data_field"], "runs": runs, "ratio": train["ratio"],
                      "random_seed": train["random_seed"], "split_ground_truth": train["split_ground_truth"],
                      "region_path": region_path, "region_field": chain["region_field"] if region_path else None},
                     [directories])
        pixels = [task(f"truth_pixels_{tile}", "truth_pixels", _task("samples", "tile_pixels"),
                       {"tile": tile, "grid": grids[tile], "output_path": out,
                        "cloud_threshold": train["cloud_threshold"]}, [truth, validity[tile]])
                  for tile in self.tiles]
        models = [(region, run) for region in self.regions for run in range(runs)]
        selection = {(region, run): task(f"selection_region_{region}_seed_{run}", "selection",
                                         _task("samples", "select_region_samples"),
                                         {"region": region, "run": run, "tiles": self.tiles, "output_path": out,
                                          "sample_selection": train["sample_selection"],
                                          "random_seed": train["random_seed"],
                                          "cloud_threshold": train["cloud_threshold"]}, pixels)
                     for region, run in models}
        class_statistics = [task(f"class_statistics_seed_{run}", "class_statistics",
                                 _task("samples", "write_run_class_statistics"),
                                 {"run": run, "regions": self.regions, "output_path": out,
                                  "nomenclature_path": nomenclature},
                                 [selection[region, run] for region in self.regions])
                            for run in range(runs)]
        windows = self.tile_set.window_lists()
        extraction = [task(f"extraction_{tile}_chunk_{index}", "extraction", _task("samples", "extract_chunk_samples"),
                           {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                            "dates_by_sensor": self.dates_by_sensor, "selections": [list(m) for m in models],
                            "output_path": out, "data_field": chain["data_field"]}, list(selection.values()))
                      for tile in self.tiles_with_truth for index, window in enumerate(windows[tile])]
        chunks_by_tile = {tile: len(windows[tile]) for tile in self.tiles_with_truth}
        learning, merged_samples = [], {}
        for region, run in models:
            merged = merged_samples[region, run] = task(
                f"merge_samples_region_{region}_seed_{run}", "merge_samples", _task("samples", "merge_region_samples"),
                {"region": region, "run": run, "chunks_by_tile": chunks_by_tile, "grids": grids, "output_path": out,
                 "data_field": chain["data_field"], "samples_format": train["samples_format"]}, extraction)
            if autocontext:
                continue
            learning.append(task(f"learning_region_{region}_seed_{run}", "learning", _task("learning", "train_model"),
                                 {"region": region, "run": run, "output_path": out, "learner_name": learner_name,
                                  "settings": learner_settings, "data_field": chain["data_field"],
                                  "samples_format": train["samples_format"], "random_seed": train["random_seed"]},
                                 [merged], resources=learner_resources))  # threads and GPU of the fit
        chunk_tasks = {}
        if autocontext:  # SLIC, then the learning and classification of each iteration
            chunk_tasks = steps.autocontext.add_autocontext_tasks(
                graph, tiles=self.tiles, tiles_with_truth=self.tiles_with_truth, grids=grids, windows=windows,
                dates_by_sensor=self.dates_by_sensor, sensors=sensors, regions=self.regions, runs=runs,
                all_labels=self.labels, iterations=train["autocontext_iterations"], output_path=out,
                learner=self.learner, learner_resources=learner_resources, data_field=chain["data_field"],
                samples_format=train["samples_format"], random_seed=train["random_seed"],
                by_region=bool(region_path), probability_map=probability_map, compression=compression,
                remove_tmp_files=chain["remove_tmp_files"], directories=directories, validity=validity, truth=truth,
                merged_samples=merged_samples)
        merged_chunks = {}
        for tile in self.tiles:
            chunks = chunk_tasks.get(tile) or [
                task(f"classification_{tile}_chunk_{index}", "classification",
                     _task("classification", "classify_chunk"),
                     {"config": sensors, "tile": tile, "grid": grids[tile], "window": window, "chunk": index,
                      "dates_by_sensor": self.dates_by_sensor, "regions": self.regions, "runs": runs,
                      "all_labels": self.labels, "output_path": out, "by_region": bool(region_path),
                      "probability_map": probability_map, "compression": compression},
                     learning + [truth, validity[tile]])
                for index, window in enumerate(windows[tile])]
            for run in range(runs):
                merged_chunks[tile, run] = task(f"merge_chunks_{tile}_seed_{run}", "merge_chunks",
                                                _task("classification", "merge_tile_chunks"),
                                                {"tile": tile, "grid": grids[tile], "windows": windows[tile],
                                                 "run": run, "all_labels": self.labels, "output_path": out,
                                                 "compression": compression, "probability_map": probability_map,
                                                 "remove_tmp_files": chain["remove_tmp_files"]}, chunks)
        final_probability_map = probability_map and config["arg_classification"]["generate_final_probability_map"]
        mosaics = [task(f"mosaic_seed_{run}", "mosaic", _task("mosaic", "mosaic_run"),
                        {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out,
                         "compression": compression, "color_table": chain.get("color_table"),
                         "nomenclature_path": nomenclature,
                         "probability_map": final_probability_map},
                        [merged_chunks[tile, run] for tile in self.tiles])
                   for run in range(runs)]
        validity_map = task("pixels_validity", "pixels_validity", _task("mosaic", "pixels_validity"),
                            {"tiles": self.tiles, "output_path": out, "compression": compression},
                            [merged_chunks[tile, 0] for tile in self.tiles] + list(validity.values()))
        confusion = [task(f"confusion_seed_{run}", "confusion", _task("validation", "confusion_of_run"),
                          {"tiles": self.tiles, "run": run, "all_labels": self.labels, "output_path": out,
                           "nomenclature_path": nomenclature},
                          [merged_chunks[tile, run] for tile in self.tiles] + pixels)
                     for run in range(runs)]
        report = task("report", "report", _task("validation", "report"),
                      {"runs": runs, "output_path": out, "nomenclature_path": nomenclature},
                      confusion + mosaics)  # the area-adjusted accuracy counts the final maps
        add_report_and_stac_tasks(graph, output_path=out, runs=runs, regions=self.regions, all_labels=self.labels,
                                  dates_by_sensor=self.dates_by_sensor, nomenclature_path=nomenclature,
                                  color_table=chain.get("color_table"), report=report, validity_map=validity_map,
                                  mosaics=mosaics, class_statistics=class_statistics, learning=learning)
        return graph


@hookimpl
def iota2_register_builders():
    return {"i2_classification": I2Classification, "I2Classification": I2Classification}
