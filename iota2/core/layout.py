"""Where everything a run writes lies under ``chain.output_path``: one :class:`OutputLayout` for every path.

Steps and builders ask the layout for a path instead of joining folder and file names themselves, so a name
is written once (here), a second builder reuses the classification builder's paths without importing its
modules, and ``docs/outputs.md`` documents this module. The names follow iota2's where users rely on them
(``final/Classif_Seed_0.tif``, ``RESULTS.txt``, ``class_statistics_seed0_learn.csv`` ...). T is a tile, R a
region (model), S a run (seed) index.

This module imports nothing from :mod:`iota2.builders` (and nothing heavier than :mod:`pathlib`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

OUTPUT_FOLDERS = ("samplesSelection", "model", "formattingVectors", "classif", "final", "final/TMP", "features",
                  "learningSamples", "dataAppVal", "shapeRegion", "logs")
"""Folders of the classification builder's output tree, relative to the root (created by its first task)."""

OUTPUT_ENTRIES = tuple(sorted({folder.split("/")[0] for folder in OUTPUT_FOLDERS}))
"""Top-level entries of :data:`OUTPUT_FOLDERS`: what ``chain.remove_output_path`` may delete for the builder."""

CLASSIFICATION_FINAL_PRODUCTS = ("Classif_Seed_*", "Confidence_Seed_*", "ProbabilityMap_seed_*", "PixelsValidity.*",
                                 "Confusion_Matrix_Classif_Seed_*", "RESULTS.txt", "TMP", "quicklooks", "stac",
                                 "report.html")
"""Glob patterns of what the classification builder writes in ``final/`` (see :meth:`OutputLayout.final`)."""

STATUS_FILE = "IOTA2_tasks_status.txt"
"""Journal of the tasks' states and fingerprints (read by ``-restart``)."""
RESOLVED_CONFIG = "config_resolved.yaml"
"""The configuration with every default filled in, written at each run."""
DRIVER_LOG = "iota2.log"
"""The driver's log."""
MARKER = ".iota2_output"
"""Marks the folder as iota2's."""
LOCK = ".iota2.lock"
"""Held by the run using the folder."""
INCOMPLETE_NOTE = "INCOMPLETE_RUN.txt"
"""In ``final/`` while a run that writes there has not finished."""
PREVIOUS_FINAL = "final_previous"
"""The previous run's ``final/`` products, moved aside by a run from scratch."""
FORMATTED_GROUND_TRUTH = "ground_truth_formatted.parquet"
"""Ground truth clipped to tiles and regions, in ``formattingVectors/``."""

TILE_MAP_KINDS = ("label", "confidence", "proba")
"""Kinds of map a tile has in ``classif/`` (see :meth:`OutputLayout.tile_map`)."""

FEATURES_MAP_STATUS_FILE = "IOTA2_tasks_status_i2_features_map.txt"
"""Journal of the features-map builder's tasks (its own: a features map run into a classification's folder
leaves the classification's restart state alone)."""
FEATURES_MAP_FOLDER = "customF"
"""Chunks and tile maps of the features-map builder."""
FEATURES_MAP_NAME = "features_map"
"""Name of the feature map in ``final/`` when ``external_features.output_name`` is not set."""
FEATURES_MAP_FOLDERS = (FEATURES_MAP_FOLDER, "final", "features", "logs")
"""Folders of the features-map builder's output tree (created by its first task)."""
FEATURES_MAP_ENTRIES = tuple(sorted(FEATURES_MAP_FOLDERS + (FEATURES_MAP_STATUS_FILE,)))
"""Top-level entries the features-map builder writes: what ``chain.remove_output_path`` may delete for it."""

# ---- OBIA
OBIA_STATUS_FILE = "IOTA2_tasks_status_i2_obia.txt"
"""Journal of the OBIA builder's tasks (its own, so the OBIA and the pixel chain keep separate restart states)."""
OBIA_FOLDER = "obia"
"""Zonal statistics, objects and object predictions of the OBIA builder."""
OBIA_FOLDERS = OUTPUT_FOLDERS + ("segmentation", OBIA_FOLDER, f"{OBIA_FOLDER}/zonal", f"{OBIA_FOLDER}/objects",
                                 f"{OBIA_FOLDER}/classif")
"""Folders of the OBIA builder's output tree: the classification builder's and its own (created by its first
task)."""
OBIA_ENTRIES = tuple(sorted({folder.split("/")[0] for folder in OBIA_FOLDERS} | {OBIA_STATUS_FILE}))
"""Top-level entries the OBIA builder writes: what ``chain.remove_output_path`` may delete for it."""


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """Every path a run writes under its output folder.

    Parameters
    ----------
    root
        ``chain.output_path`` (str or path).

    Examples
    --------
    >>> layout = OutputLayout("/data/out")
    >>> layout.final_classification(0).as_posix()
    '/data/out/final/Classif_Seed_0.tif'
    >>> layout.model("1", 2).name
    'model_1_seed_2.skops'
    """

    root: Path

    folders = OUTPUT_FOLDERS
    entries = OUTPUT_ENTRIES

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    # ------------------------------------------------------------------ run files
    @property
    def status_file(self) -> Path:
        """``IOTA2_tasks_status.txt``: state and fingerprint of every task."""
        return self.root / STATUS_FILE

    @property
    def resolved_config(self) -> Path:
        """``config_resolved.yaml``: the configuration with every default filled in."""
        return self.root / RESOLVED_CONFIG

    @property
    def driver_log(self) -> Path:
        """``iota2.log``: the driver's log."""
        return self.root / DRIVER_LOG

    @property
    def marker(self) -> Path:
        """``.iota2_output``: marks the folder as iota2's."""
        return self.root / MARKER

    @property
    def lock(self) -> Path:
        """``.iota2.lock``: held by the run using the folder."""
        return self.root / LOCK

    @property
    def previous_final(self) -> Path:
        """``final_previous/``: the previous run's final products."""
        return self.root / PREVIOUS_FINAL

    @property
    def incomplete_note(self) -> Path:
        """``final/INCOMPLETE_RUN.txt``: present while the products of ``final/`` may be out of date."""
        return self.final / INCOMPLETE_NOTE

    @property
    def logs(self) -> Path:
        """``logs/``: one folder of task logs per step."""
        return self.root / "logs"

    def task_log(self, step: str, task: str) -> Path:
        """``logs/<step>/<task>.log``: the log of one task (every attempt appends to it)."""
        return self.logs / step / f"{task}.log"

    def directories(self, tiles: list[str] = (), builder: str = "i2_classification") -> list[Path]:
        """The folders of a builder's output tree and those of each tile, in creation order.

        Parameters
        ----------
        tiles
            Tile names (each has ``features/<T>/tmp``).
        builder
            ``"i2_classification"`` (:data:`OUTPUT_FOLDERS`), ``"i2_features_map"``
            (:data:`FEATURES_MAP_FOLDERS`) or ``"i2_obia"`` (:data:`OBIA_FOLDERS`).
        """
        trees = {"i2_classification": OUTPUT_FOLDERS, "i2_features_map": FEATURES_MAP_FOLDERS,
                 "i2_obia": OBIA_FOLDERS}
        if builder not in trees:
            raise ValueError(f"builder {builder!r}: use one of {', '.join(trees)}")
        return [self.root / folder for folder in trees[builder]] + [self.tile_features_tmp(tile) for tile in tiles]

    # ------------------------------------------------------------------ features of a tile
    def tile_features(self, tile: str) -> Path:
        """``features/<T>/``."""
        return self.root / "features" / tile

    def tile_features_tmp(self, tile: str) -> Path:
        """``features/<T>/tmp/``."""
        return self.tile_features(tile) / "tmp"

    def validity(self, tile: str) -> Path:
        """``features/<T>/nbView.tif``: clear observations per pixel (all sensors)."""
        return self.tile_features(tile) / "nbView.tif"

    def slic(self, tile: str) -> Path:
        """``features/<T>/tmp/SLIC_<T>.tif``: SLIC superpixel ids of the tile (uint32, 0 = none)."""
        return self.tile_features_tmp(tile) / f"SLIC_{tile}.tif"

    def slic_chunk(self, tile: str, chunk: int) -> Path:
        """``features/<T>/tmp/SLIC_<T>_chunk_<i>.tif``: superpixel ids of one chunk, before assembly."""
        return self.tile_features_tmp(tile) / f"SLIC_{tile}_chunk_{chunk}.tif"

    def segments(self, tile: str) -> Path:
        """``segmentation/<T>_segments.tif``: a user segmentation's segment ids on the tile grid (uint32,
        0 = no segment)."""
        return self.root / "segmentation" / f"{tile}_segments.tif"

    def common_mask(self, tile: str) -> Path:
        """``features/<T>/tmp/MaskCommunSL.tif``: 1 where every sensor has data."""
        return self.tile_features_tmp(tile) / "MaskCommunSL.tif"

    # ------------------------------------------------------------------ ground truth and regions
    @property
    def formatted_ground_truth(self) -> Path:
        """``formattingVectors/ground_truth_formatted.parquet``: ground truth clipped to tiles and regions."""
        return self.root / "formattingVectors" / FORMATTED_GROUND_TRUTH

    def split_polygons(self, tile: str, run: int, subset: str) -> Path:
        """``dataAppVal/<T>_seed_<S>_learn.sqlite`` (``subset`` "learn") or ``_val.sqlite`` (``subset`` "val")."""
        if subset not in ("learn", "val"):
            raise ValueError(f"subset {subset!r}: use 'learn' or 'val'")
        return self.root / "dataAppVal" / f"{tile}_seed_{run}_{subset}.sqlite"

    def region_raster(self, tile: str) -> Path:
        """``shapeRegion/<T>_regions.tif``: region index per pixel (with ``chain.region_path``)."""
        return self.root / "shapeRegion" / f"{tile}_regions.tif"

    # ------------------------------------------------------------------ samples
    def truth_pixels(self, tile: str) -> Path:
        """``samplesSelection/<T>_pixels.parquet``: the ground-truth pixels of a tile."""
        return self.root / "samplesSelection" / f"{tile}_pixels.parquet"

    def selection(self, region: str, run: int) -> Path:
        """``samplesSelection/samples_region_<R>_seed_<S>_selection.parquet``: selected learning pixels."""
        return self.root / "samplesSelection" / f"samples_region_{region}_seed_{run}_selection.parquet"

    def class_statistics(self, run: int) -> Path:
        """``learningSamples/class_statistics_seed<S>_learn.csv``: selected samples per class and region."""
        return self.root / "learningSamples" / f"class_statistics_seed{run}_learn.csv"

    def chunk_features(self, tile: str, chunk: int) -> Path:
        """``learningSamples/<T>_features_chunk_<i>.parquet``: feature values at the selected pixels of a chunk."""
        return self.root / "learningSamples" / f"{tile}_features_chunk_{chunk}.parquet"

    def samples(self, region: str, run: int, samples_format: str = "sqlite") -> Path:
        """``learningSamples/Samples_region_<R>_seed<S>_learn.sqlite`` (``.parquet`` with that format)."""
        suffix = "sqlite" if samples_format == "sqlite" else "parquet"
        return self.root / "learningSamples" / f"Samples_region_{region}_seed{run}_learn.{suffix}"

    # ------------------------------------------------------------------ models
    @property
    def models(self) -> Path:
        """``model/``: the fitted learners and their summaries."""
        return self.root / "model"

    def model(self, region: str, run: int) -> Path:
        """``model/model_<R>_seed_<S>.skops``: the fitted learner."""
        return self.models / f"model_{region}_seed_{run}.skops"

    def model_forest(self, region: str, run: int) -> Path:
        """``model/model_<R>_seed_<S>_forest.npz``: node arrays of a tree ensemble."""
        return self.forest_of(self.model(region, run))

    def model_summary(self, region: str, run: int) -> Path:
        """``model/model_<R>_seed_<S>.json``: readable summary with the digests of the model files."""
        return self.summary_of(self.model(region, run))

    def cross_validation(self, region: str, run: int) -> Path:
        """``model/model_<R>_seed_<S>_cross_val_param.cv``: grid-search results."""
        return self.models / f"model_{region}_seed_{run}_cross_val_param.cv"

    @staticmethod
    def forest_of(model_file) -> Path:
        """``<name>_forest.npz`` next to the model file ``<name>.skops`` (wherever the model lies)."""
        model_file = Path(model_file)
        return model_file.with_name(f"{model_file.stem}_forest.npz")

    @staticmethod
    def summary_of(model_file) -> Path:
        """``<name>.json`` next to the model file ``<name>.skops`` (wherever the model lies)."""
        return Path(model_file).with_suffix(".json")

    # ------------------------------------------------------------------ classification
    def classif_chunk(self, tile: str, run: int, chunk: int, proba: bool = False) -> Path:
        """``classif/chunks/<T>_seed_<S>_chunk_<i>.tif`` (label, confidence) or, with ``proba``,
        ``classif/chunks/PROBAMAP_<T>_seed_<S>_chunk_<i>.tif``."""
        prefix = "PROBAMAP_" if proba else ""
        return self.root / "classif" / "chunks" / f"{prefix}{tile}_seed_{run}_chunk_{chunk}.tif"

    def tile_map(self, tile: str, run: int, kind: str = "label") -> Path:
        """The map of a tile and run in ``classif/``.

        Parameters
        ----------
        tile, run
            Tile name and run index.
        kind
            ``"label"`` (``Classif_<T>_seed_<S>.tif``), ``"confidence"`` (``<T>_confidence_seed_<S>.tif``) or
            ``"proba"`` (``PROBAMAP_<T>_seed_<S>.tif``).
        """
        names = {"label": f"Classif_{tile}_seed_{run}.tif", "confidence": f"{tile}_confidence_seed_{run}.tif",
                 "proba": f"PROBAMAP_{tile}_seed_{run}.tif"}
        if kind not in names:
            raise ValueError(f"kind {kind!r}: use one of {', '.join(TILE_MAP_KINDS)}")
        return self.root / "classif" / names[kind]

    # ------------------------------------------------------------------ final products
    @property
    def final(self) -> Path:
        """``final/``."""
        return self.root / "final"

    @property
    def final_tmp(self) -> Path:
        """``final/TMP/``: confusion matrices per tile and run, validity pieces per tile."""
        return self.final / "TMP"

    def final_classification(self, run: int) -> Path:
        """``final/Classif_Seed_<S>.tif``: the mosaic of labels."""
        return self.final / f"Classif_Seed_{run}.tif"

    def final_color_indexed(self, run: int) -> Path:
        """``final/Classif_Seed_<S>_ColorIndexed.tif``: the labels with the colour table as palette."""
        return self.final / f"Classif_Seed_{run}_ColorIndexed.tif"

    def final_confidence(self, run: int) -> Path:
        """``final/Confidence_Seed_<S>.tif``: confidence 0-100."""
        return self.final / f"Confidence_Seed_{run}.tif"

    def final_probability_map(self, run: int) -> Path:
        """``final/ProbabilityMap_seed_<S>.tif``: one band per class, 0-1000."""
        return self.final / f"ProbabilityMap_seed_{run}.tif"

    @property
    def pixels_validity(self) -> Path:
        """``final/PixelsValidity.tif``: clear observations where run 0 classified the pixel."""
        return self.final / "PixelsValidity.tif"

    def tile_pixels_validity(self, tile: str) -> Path:
        """``final/TMP/<T>_PixelsValidity.tif``: a tile's piece of :attr:`pixels_validity`."""
        return self.final_tmp / f"{tile}_PixelsValidity.tif"

    def tile_confusion(self, tile: str, run: int) -> Path:
        """``final/TMP/<T>_seed_<S>.csv``: confusion matrix of a tile and run (OTB format)."""
        return self.final_tmp / f"{tile}_seed_{run}.csv"

    def area_accuracy(self, run: int) -> Path:
        """``final/TMP/area_accuracy_seed_<S>.csv``: the area-adjusted accuracy of a run (Olofsson et al. 2014)."""
        return self.final_tmp / f"area_accuracy_seed_{run}.csv"

    def run_confusion(self, run: int) -> Path:
        """``final/TMP/Classif_Seed_<S>.csv``: confusion matrix of a run over every tile (OTB format)."""
        return self.final_tmp / f"Classif_Seed_{run}.csv"

    def confusion_figure(self, run: int) -> Path:
        """``final/Confusion_Matrix_Classif_Seed_<S>.png``."""
        return self.final / f"Confusion_Matrix_Classif_Seed_{run}.png"

    @property
    def report_html(self) -> Path:
        """``final/report.html``: the self-contained HTML report of the run."""
        return self.final / "report.html"

    @property
    def results(self) -> Path:
        """``final/RESULTS.txt``: confusion matrix and scores averaged over runs."""
        return self.final / "RESULTS.txt"

    # ------------------------------------------------------------------ features map
    @property
    def features_map_status_file(self) -> Path:
        """``IOTA2_tasks_status_i2_features_map.txt``: the features-map builder's journal."""
        return self.root / FEATURES_MAP_STATUS_FILE

    @property
    def custom_features(self) -> Path:
        """``customF/``: chunks and tile maps of the features-map builder."""
        return self.root / FEATURES_MAP_FOLDER

    def features_map_chunk(self, tile: str, chunk: int) -> Path:
        """``customF/<T>_chunk_<i>.tif``: the features of one chunk of a tile."""
        return self.custom_features / f"{tile}_chunk_{chunk}.tif"

    def features_map_chunk_level(self, tile: str, chunk: int, factor: int) -> Path:
        """``customF/<T>_chunk_<i>_x<f>.tif``: the chunk's average overview at factor f (1 pixel per f x f)."""
        return self.custom_features / f"{tile}_chunk_{chunk}_x{factor}.tif"

    def features_map_tile_level(self, tile: str, factor: int) -> Path:
        """``customF/<T>_features_x<f>.vrt``: a VRT of the chunks' overviews at factor f."""
        return self.custom_features / f"{tile}_features_x{factor}.vrt"

    def features_map_tile(self, tile: str) -> Path:
        """``customF/<T>_features.vrt``: the features of a tile (a VRT of its chunks at their places)."""
        return self.custom_features / f"{tile}_features.vrt"

    def final_features_map(self, output_name: str | None = None) -> Path:
        """``final/<output_name>.tif``: the feature map of every tile.

        Parameters
        ----------
        output_name
            ``external_features.output_name``, with or without ``.tif``; default ``features_map``.
        """
        name = str(output_name or FEATURES_MAP_NAME)
        if name.lower().endswith(".tif"):
            name = name[:-4]
        return self.final / f"{name}.tif"

    # ---- autocontext
    def autocontext_models(self, region: str, run: int) -> Path:
        """``model/model_<R>_seed_<S>/``: the models of every autocontext iteration of (region, run)."""
        return self.models / f"model_{region}_seed_{run}"

    def autocontext_model(self, region: str, run: int, iteration: int) -> Path:
        """``model/model_<R>_seed_<S>/iteration_<K>/model_<R>_seed_<S>.skops``: the model of autocontext iteration
        ``K`` (1-based), with its ``.json`` summary and ``_forest.npz`` next to it."""
        return self.autocontext_models(region, run) / f"iteration_{iteration}" / f"model_{region}_seed_{run}.skops"

    def autocontext_samples(self, region: str, run: int, iteration: int) -> Path:
        """``learningSamples/autocontext/Samples_region_<R>_seed<S>_learn_it_<K>.parquet``: the learning samples
        plus their context features of iteration ``K - 1`` (``K`` >= 2)."""
        name = f"Samples_region_{region}_seed{run}_learn_it_{iteration}.parquet"
        return self.root / "learningSamples" / "autocontext" / name

    def autocontext_counts(self, tile: str, run: int, chunk: int, iteration: int) -> Path:
        """``classif/autocontext/<T>_seed_<S>_chunk_<i>_it_<K>_superpixel_counts.parquet``: predicted labels counted
        per superpixel of a chunk at autocontext iteration ``K``."""
        name = f"{tile}_seed_{run}_chunk_{chunk}_it_{iteration}_superpixel_counts.parquet"
        return self.root / "classif" / "autocontext" / name

    # ---- OBIA
    @property
    def obia_status_file(self) -> Path:
        """``IOTA2_tasks_status_i2_obia.txt``: the OBIA builder's journal."""
        return self.root / OBIA_STATUS_FILE

    def zonal_partials(self, tile: str, chunk: int) -> Path:
        """``obia/zonal/<T>_chunk_<i>.npz``: per-segment partial sums of the features of one chunk (count, sum,
        sum of squares, min, max), combined into the objects' statistics."""
        return self.root / OBIA_FOLDER / "zonal" / f"{tile}_chunk_{chunk}.npz"

    def zonal_regions(self, tile: str, chunk: int) -> Path:
        """``obia/zonal/<T>_chunk_<i>_regions.parquet``: the regions each segment of a chunk touches (segment,
        region), with ``chain.region_path``."""
        return self.root / OBIA_FOLDER / "zonal" / f"{tile}_chunk_{chunk}_regions.parquet"

    def object_statistics(self, tile: str) -> Path:
        """``obia/objects/<T>_objects.parquet``: the objects a tile holds (object key, segment id, pixels, region,
        centroid) and their statistics, one column per feature and statistic."""
        return self.root / OBIA_FOLDER / "objects" / f"{tile}_objects.parquet"

    def object_truth(self, tile: str) -> Path:
        """``obia/objects/<T>_truth.parquet``: ground-truth pixels of the tile per object and ground-truth piece
        (object, piece, pixels)."""
        return self.root / OBIA_FOLDER / "objects" / f"{tile}_truth.parquet"

    def object_polygons(self, tile: str) -> Path:
        """``obia/objects/<T>_polygons.parquet``: the outline of each object of a tile (GeoParquet)."""
        return self.root / OBIA_FOLDER / "objects" / f"{tile}_polygons.parquet"

    def object_predictions(self, tile: str, run: int) -> Path:
        """``obia/classif/<T>_seed_<S>_objects.parquet``: label, confidence and probabilities of the objects a
        tile holds, for one run."""
        return self.root / OBIA_FOLDER / "classif" / f"{tile}_seed_{run}_objects.parquet"

    def final_objects(self, run: int) -> Path:
        """``final/Classif_Seed_<S>_objects.gpkg``: the classified objects of every tile (class, confidence,
        probabilities)."""
        return self.final / f"Classif_Seed_{run}_objects.gpkg"

    def object_confusion(self, run: int) -> Path:
        """``final/TMP/Classif_Seed_<S>_objects.csv``: object-based confusion matrix of a run (OTB format)."""
        return self.final_tmp / f"Classif_Seed_{run}_objects.csv"

    def object_confusion_figure(self, run: int) -> Path:
        """``final/Confusion_Matrix_Classif_Seed_<S>_objects.png``: the object-based confusion matrix."""
        return self.final / f"Confusion_Matrix_Classif_Seed_{run}_objects.png"

    @property
    def pixel_results(self) -> Path:
        """``final/TMP/RESULTS_pixels.txt``: the pixel-based part of an OBIA run's ``RESULTS.txt``."""
        return self.final_tmp / "RESULTS_pixels.txt"

    @property
    def object_results(self) -> Path:
        """``final/TMP/RESULTS_objects.txt``: the object-based part of an OBIA run's ``RESULTS.txt``."""
        return self.final_tmp / "RESULTS_objects.txt"
