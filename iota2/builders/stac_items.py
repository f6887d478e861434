"""STAC tasks: the items of a run's final maps (``final/stac/``) and the model cards of its models
(``model/stac/``), see :mod:`iota2.core.stac` and ``docs/stac.md``.

* :func:`write_run_items` (classification and OBIA builders): an item per final map that exists
  (``Classif_Seed_S.tif``, ``Classif_Seed_S_ColorIndexed.tif``, ``Confidence_Seed_S.tif``,
  ``ProbabilityMap_seed_S.tif``, ``PixelsValidity.tif``), ``final/stac/collection.json`` linking them, and an
  item per model ``model/stac/model_R_seed_S.json``.
* :func:`write_features_map_item` (features-map builder): the item of ``final/<output_name>.tif`` and its
  collection.
* :func:`add_stac_tasks`: the step and task a builder adds to its graph.

Every file is validated against the vendored schemas before it is written (atomically); hrefs are relative, so the
output folder can be moved.
"""

from __future__ import annotations

import logging
from pathlib import Path

from iota2.core.layout import OutputLayout
from iota2.core.legend import class_legend
from iota2.core.nomenclature import read_color_table, read_nomenclature
from iota2.core.quicklook import quicklook_path

LOGGER = logging.getLogger(__name__)

STAC_FOLDER = "stac"
"""Sub-folder of ``final/`` and ``model/`` holding the STAC files."""
COLLECTION_FILE = "collection.json"
MAPS_COLLECTION_ID = "iota2-final-maps"
FEATURES_COLLECTION_ID = "iota2-features-map"

QML = "application/xml"
"""Media type given to QGIS styles (``.qml``, XML) and GDAL's ``.aux.xml``."""


# ---------------------------------------------------------------------------- paths

def maps_stac_folder(output_path: str | Path) -> Path:
    """``final/stac/``."""
    return OutputLayout(output_path).final / STAC_FOLDER


def map_item_path(output_path: str | Path, raster: str | Path) -> Path:
    """``final/stac/<map stem>.json``: the item of a final map."""
    return maps_stac_folder(output_path) / f"{Path(raster).stem}.json"


def collection_path(output_path: str | Path) -> Path:
    """``final/stac/collection.json``: the collection of the final maps' items."""
    return maps_stac_folder(output_path) / COLLECTION_FILE


def model_item_path(output_path: str | Path, region: str, run: int) -> Path:
    """``model/stac/model_<R>_seed_<S>.json``: the STAC item (model card) of a model."""
    return OutputLayout(output_path).models / STAC_FOLDER / f"model_{region}_seed_{run}.json"


def date_range(dates_by_sensor: dict[str, list[str]]) -> tuple[str, str] | tuple[None, None]:
    """First and last date (``YYYYMMDD``) of every sensor's dates: the time series a map was made from; ``(None,
    None)`` without dates."""
    dates = sorted(str(date) for dates in (dates_by_sensor or {}).values() for date in dates or [])
    return (dates[0], dates[-1]) if dates else (None, None)


def _check_dates(start, end, what: str) -> None:
    from iota2.core.errors import InputDataError

    if start is None or end is None:
        raise InputDataError(f"{what}: no date in dates_by_sensor; a STAC item needs the time series' first and last "
                             "date (enable a sensor with dated images)")


# ---------------------------------------------------------------------------- items of the maps

def _sidecars(layout: OutputLayout, raster: Path, categories: bool = False) -> dict:
    sidecars = {"style": (raster.with_suffix(".qml"), QML, ["metadata", "style"], "QGIS style"),
                "thumbnail": (quicklook_path(layout, raster), "image/png", ["thumbnail", "overview"], "quicklook")}
    if categories:
        sidecars["categories"] = (raster.with_name(raster.name + ".aux.xml"), QML, ["metadata"],
                                  "class names and colours (GDAL categories and raster attribute table)")
    return sidecars


def _run_maps(layout: OutputLayout, run: int, legend) -> list[dict]:
    """The final maps of a run: path, title, legend, roles and band fields of each."""
    return [
        {"path": layout.final_classification(run), "title": f"land-cover classification, run {run}",
         "legend": legend, "categories": True},
        {"path": layout.final_color_indexed(run), "title": f"land-cover classification with colour palette, run {run}",
         "legend": legend, "roles": ("visual", "data"), "categories": True},
        {"path": layout.final_confidence(run), "title": f"confidence of the classification, run {run} (0-100)",
         "band_fields": {"unit": "percent"}},
        {"path": layout.final_probability_map(run), "title": f"class probabilities, run {run} (0-1000, one band per "
                                                             "class in increasing label order)",
         "band_fields": {"scale": 0.001}, "probabilities": True},
    ]


def _derived_from(item, item_path: Path, model_items: list[Path]) -> None:
    import pystac

    from iota2.core.stac import _relative

    for path in model_items:
        item.add_link(pystac.Link("derived_from", _relative(path, item_path.parent), media_type="application/geo+json",
                                  title=f"model {path.stem}"))


def write_collection(folder: Path, collection_id: str, description: str, items: list) -> Path:
    """Write ``items`` (pystac Items) and a collection linking them in ``folder`` (``<id>.json`` and
    ``collection.json``), every file validated first, hrefs relative.

    Returns
    -------
    Path
        The collection file.
    """
    import pystac

    from iota2.core.stac import stac_datetime, write_stac

    boxes = [item.bbox for item in items]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    starts = [item.common_metadata.start_datetime or item.datetime for item in items]
    ends = [item.common_metadata.end_datetime or item.datetime for item in items]
    extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[stac_datetime(min(starts)),
                                                                                  stac_datetime(max(ends))]]))
    collection = pystac.Collection(collection_id, description, extent, license="other",
                                   catalog_type=pystac.CatalogType.SELF_CONTAINED)
    target = folder / COLLECTION_FILE
    collection.set_self_href(str(target.resolve()))
    for item in items:
        collection.add_item(item)
        item.set_self_href(str((folder / f"{item.id}.json").resolve()))
    for item in items:  # asset and derived_from hrefs are already relative to the folder
        write_stac(folder / f"{item.id}.json", item.to_dict(include_self_link=False, transform_hrefs=True))
    return write_stac(target, collection.to_dict(include_self_link=False, transform_hrefs=True))


def write_run_items(output_path: str, runs: int, regions: list[str], all_labels: list[int],
                    dates_by_sensor: dict[str, list[str]], nomenclature_path: str | None = None,
                    color_table: str | None = None) -> list[Path]:
    """Write the STAC items of a classification run: one per model (``model/stac/``), one per final map and the
    collection of the maps (``final/stac/``).

    Parameters
    ----------
    output_path
        ``chain.output_path``.
    runs
        ``arg_train.runs``.
    regions
        The regions (one model per region and run).
    all_labels
        Every label of the ground truth.
    dates_by_sensor
        Interpolation dates of each sensor (:attr:`iota2.core.tiles.TileSet.dates_by_sensor`): the time range.
    nomenclature_path, color_table
        ``chain.nomenclature_path`` and ``chain.color_table``: class names and colours.

    Returns
    -------
    list of Path
        The files written (model items, map items, then the collection).

    Raises
    ------
    InputDataError
        No final map, no dates, a model without a readable summary, or an item that does not validate.
    """
    from iota2.core.errors import InputDataError
    from iota2.core.stac import map_item

    layout = OutputLayout(output_path)
    start, end = date_range(dates_by_sensor)
    _check_dates(start, end, f"STAC items of {layout.final}")
    legend = class_legend(list(all_labels), read_nomenclature(nomenclature_path), read_color_table(color_table),
                          color_table)
    written = []
    models_by_run = {run: write_model_items(output_path, run, regions, legend, start, end) for run in range(runs)}
    for paths in models_by_run.values():
        written += paths
    folder = maps_stac_folder(output_path)
    items = []
    for run in range(runs):
        for spec in _run_maps(layout, run, legend):
            path = Path(spec["path"])
            if not path.exists():
                continue
            item_path = map_item_path(output_path, path)
            band_fields = spec.get("band_fields")
            item = map_item(path, item_path, start, end, spec["title"], legend=spec.get("legend"),
                            roles=spec.get("roles", ("data",)), band_fields=band_fields,
                            extra_assets=_sidecars(layout, path, spec.get("categories", False)),
                            properties={"iota2:run": run})
            if spec.get("probabilities"):
                for band, entry in zip(item.assets["data"].extra_fields["raster:bands"], legend.entries):
                    band["description"] = f"probability of {entry.name} (label {entry.label}) x 1000"
            _derived_from(item, item_path, models_by_run[run])
            items.append(item)
    if layout.pixels_validity.exists():
        items.append(map_item(layout.pixels_validity, map_item_path(output_path, layout.pixels_validity), start, end,
                              "number of clear observations of each pixel (where run 0 classified it)",
                              band_fields={"unit": "dates"},
                              extra_assets=_sidecars(layout, layout.pixels_validity)))
    if not items:
        raise InputDataError(f"no final map in {layout.final} to describe in STAC: run the mosaic step first "
                             "(chain.first_step / last_step)")
    collection = write_collection(folder, MAPS_COLLECTION_ID, f"Final maps of the iota2 run in {layout.root.name}: "
                                  "classification, colour-indexed map, confidence, probabilities and pixel validity",
                                  items)
    written += [folder / f"{item.id}.json" for item in items] + [collection]
    LOGGER.info("STAC: %d map item(s) and %d model item(s) written in %s and %s", len(items),
                sum(map(len, models_by_run.values())), folder, layout.models / STAC_FOLDER)
    return written


# ---------------------------------------------------------------------------- model cards

def _model_of(layout: OutputLayout, region: str, run: int) -> tuple[Path, int | None] | None:
    """The model of (region, run) and its autocontext iteration: the plain model, else the last iteration's."""
    model = layout.model(region, run)
    if model.with_suffix(".json").exists():
        return model, None
    folder = layout.autocontext_models(region, run)
    iterations = sorted((int(path.name.split("_")[-1]), path) for path in folder.glob("iteration_*")
                        if path.name.split("_")[-1].isdigit()) if folder.is_dir() else []
    for iteration, path in reversed(iterations):
        candidate = path / model.name
        if candidate.with_suffix(".json").exists():
            return candidate, iteration
    return None


def write_model_items(output_path: str, run: int, regions: list[str], legend, start, end) -> list[Path]:
    """Write ``model/stac/model_<R>_seed_<S>.json`` for every region's model of ``run``: the model card, with the
    validation metrics of the run (``final/TMP/Classif_Seed_<S>.csv``) when the confusion matrix exists.

    Raises
    ------
    InputDataError
        A model of the run has no summary (it was not trained): run the learning step first.
    """
    from iota2.core.errors import InputDataError
    from iota2.core.learner import read_summary
    from iota2.core.metrics import read_confusion_csv
    from iota2.core.stac import footprint, model_item, validation_metrics, write_stac

    layout = OutputLayout(output_path)
    metrics = None
    confusion = layout.run_confusion(run)
    if confusion.exists():
        matrix, labels = read_confusion_csv(confusion)
        metrics = validation_metrics(matrix, labels, legend.names(), confusion.relative_to(layout.root).as_posix())
    else:
        LOGGER.info("STAC: no %s yet, the model items of run %d have no validation metrics", confusion, run)
    geometry = bbox = None
    if layout.final_classification(run).exists():
        import rasterio

        with rasterio.open(layout.final_classification(run)) as dataset:
            geometry, bbox = footprint(dataset)
    written = []
    for region in regions:
        found = _model_of(layout, str(region), run)
        if found is None:
            raise InputDataError(f"model of region {region} and run {run} ({layout.model(region, run)}) has no "
                                 "summary: it was not trained; run the learning step before the STAC items")
        model, iteration = found
        summary = read_summary(model)
        target = model_item_path(output_path, region, run)
        properties = {"iota2:autocontext_iteration": iteration} if iteration is not None else {}
        item = model_item(model, summary, target, legend, start, end, geometry=geometry, bbox=bbox, metrics=metrics,
                          properties=properties)
        item.properties.setdefault("iota2:region", str(region))
        item.properties.setdefault("iota2:run", run)
        map_item_file = map_item_path(output_path, layout.final_classification(run))
        if layout.final_classification(run).exists():
            import pystac

            from iota2.core.stac import _relative

            item.add_link(pystac.Link("related", _relative(map_item_file, target.parent),
                                      media_type="application/geo+json", title=f"map of run {run}"))
        written.append(write_stac(target, item.to_dict(include_self_link=False, transform_hrefs=False)))
    return written


# ---------------------------------------------------------------------------- features map

def features_map_stac_folder(output_path: str | Path, output_name: str | None) -> Path:
    """``final/<output_name>_stac/``: the STAC files of a features map (a folder of its own, so that a features
    map written into a classification's output folder leaves the classification's ``final/stac/`` alone)."""
    layout = OutputLayout(output_path)
    return layout.final / f"{layout.final_features_map(output_name).stem}_{STAC_FOLDER}"


def write_features_map_item(output_path: str, output_name: str | None,
                            dates_by_sensor: dict[str, list[str]]) -> list[Path]:
    """Write the STAC item of the features map ``final/<output_name>.tif`` (one ``raster:bands`` entry per feature,
    named by its label) and its collection, in :func:`features_map_stac_folder`.

    Raises
    ------
    InputDataError
        The map does not exist, or there is no date.
    """
    from iota2.core.errors import InputDataError
    from iota2.core.stac import map_item

    layout = OutputLayout(output_path)
    raster = layout.final_features_map(output_name)
    if not raster.exists():
        raise InputDataError(f"features map '{raster}' does not exist: run the features_map step before its STAC "
                             "item")
    start, end = date_range(dates_by_sensor)
    _check_dates(start, end, f"STAC item of {raster}")
    folder = features_map_stac_folder(output_path, output_name)
    item_path = folder / f"{raster.stem}.json"
    item = map_item(raster, item_path, start, end, "features map (one band per feature)",
                    extra_assets=_sidecars(layout, raster))
    collection = write_collection(folder, FEATURES_COLLECTION_ID,
                                  f"Features map of the iota2 run in {layout.root.name}", [item])
    return [item_path, collection]


# ---------------------------------------------------------------------------- graph

def add_stac_tasks(graph, group: str, kwargs: dict, dependencies: list, features_map: bool = False):
    """Add the step ``stac`` to ``group`` and its one task to ``graph``.

    Parameters
    ----------
    graph
        A :class:`iota2.core.graph.Graph`.
    group
        The group of the step (``"validation"`` for the classification and OBIA builders, ``"writing"`` for the
        features map).
    kwargs
        The task's arguments: those of :func:`write_run_items`, or of :func:`write_features_map_item` with
        ``features_map``.
    dependencies
        Tasks that write what the items describe (final maps, models, confusion matrices).

    Returns
    -------
    Task
    """
    function = "write_features_map_item" if features_map else "write_run_items"
    graph.add_step("stac", group, "describe the final maps and the models in STAC (final/stac, model/stac)")
    return graph.add_task("stac", "stac", f"{__name__}:{function}", kwargs, dependencies)
