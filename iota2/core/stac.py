"""STAC (SpatioTemporal Asset Catalog) descriptions of a run's products, written and validated offline.

Two kinds of STAC Items (https://stacspec.org, STAC 1.1.0), built with :mod:`pystac`:

* **a map item** per final map (:func:`map_item`): footprint and bounding box in WGS84, the time series' first and
  last date (``start_datetime``, ``end_datetime``), the projection extension (``proj:code``, ``proj:shape``,
  ``proj:transform``, ``proj:bbox``), the raster extension (``raster:bands``: data type, nodata, spatial
  resolution, scale and unit where they apply) and, on class maps, the classification extension
  (``classification:classes``: value, name and colour of each class); the map is the ``data`` asset (its media type
  says ``profile=cloud-optimized`` when GDAL marks it ``LAYOUT=COG``), its QGIS style, GDAL categories and
  quicklook are assets too.
* **a model item** per trained model (:func:`model_item`), the model card: the machine-learning-model extension
  (``mlm:name``, ``mlm:architecture``, ``mlm:framework``, ``mlm:tasks``, ``mlm:hyperparameters``, ``mlm:input``
  with the feature names, ``mlm:output`` with the classes), the training samples per class and the validation
  metrics of its run (``iota2:`` properties), the model files as assets.

**Validation without network.** :func:`validate` checks an item or a collection with :mod:`jsonschema` against the
JSON schemas of the STAC 1.1.0 core and of each extension the object declares, vendored in
``iota2/core/stac_schemas/`` (Apache-2.0, GeoJSON schemas MIT; see the ``README.md`` there) and resolved from
that folder only: a ``$ref`` to a schema that is not vendored is an error, never a download.

Extension versions are those whose schemas are vendored: projection 2.0.0, raster 1.1.0, classification 1.1.0 (the
version the mlm 1.4.0 schema refers to), mlm 1.4.0.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp

from iota2.core.errors import InputDataError
from iota2.core.raster import atomic_output

STAC_VERSION = "1.1.0"
"""STAC version of the items and collections written here."""

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"

SCHEMA_FOLDER = Path(__file__).with_name("stac_schemas")
"""The vendored JSON schemas."""

_SPEC = "https://schemas.stacspec.org/v1.1.0"
SCHEMA_FILES = {
    f"{_SPEC}/item-spec/json-schema/item.json": "stac-item.json",
    f"{_SPEC}/collection-spec/json-schema/collection.json": "stac-collection.json",
    f"{_SPEC}/catalog-spec/json-schema/catalog.json": "stac-catalog.json",
    **{f"{_SPEC}/item-spec/json-schema/{name}.json": f"stac-{name}.json"
       for name in ("bands", "basics", "common", "data-values", "datetime", "instrument", "licensing", "provider")},
    "https://geojson.org/schema/Feature.json": "geojson-Feature.json",
    "https://geojson.org/schema/Geometry.json": "geojson-Geometry.json",
    PROJECTION: "projection-v2.0.0.json",
    RASTER: "raster-v1.1.0.json",
    CLASSIFICATION: "classification-v1.1.0.json",
    MLM: "mlm-v1.4.0.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json": "processing-v1.1.0.json",
}
"""URI of each vendored schema -> its file in :data:`SCHEMA_FOLDER`."""

CORE_SCHEMAS = {"Feature": f"{_SPEC}/item-spec/json-schema/item.json",
                "Collection": f"{_SPEC}/collection-spec/json-schema/collection.json",
                "Catalog": f"{_SPEC}/catalog-spec/json-schema/catalog.json"}
"""Core schema of each STAC object ``type``."""

GEOTIFF = "image/tiff; application=geotiff"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"

FRAMEWORKS = {"sklearn": "scikit-learn", "deep_learning": "PyTorch"}
"""``mlm:framework`` of each learner (registry name of :mod:`iota2.core.learner`); another learner gives its name."""

MODEL_ARTIFACTS = {"sklearn": (".skops", "skops.io.dump"), "deep_learning": (".pt", "torch.save")}
"""Suffix of the file holding a learner's model and its ``mlm:artifact_type``."""


# ---------------------------------------------------------------------------- validation (offline)

@functools.lru_cache(maxsize=1)
def schema_registry():
    """A :class:`referencing.Registry` of the vendored schemas (plus JSON Schema's own meta-schemas) that never
    fetches a URI: a reference to another schema raises :class:`referencing.exceptions.Unresolvable`."""
    from jsonschema_specifications import REGISTRY
    from referencing import Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for uri, name in SCHEMA_FILES.items():
        contents = json.loads((SCHEMA_FOLDER / name).read_text(encoding="utf-8"))
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT7)))
    return REGISTRY.with_resources(resources).crawl()


MAX_REASONS = 4
"""Reasons given per schema error (a failed ``oneOf`` has one per branch)."""


def _reasons(error) -> list:
    """The innermost errors under ``error`` (the branches of ``oneOf`` / ``anyOf`` / ``if``), a missing field first,
    then the deepest in the document."""
    leaves, stack = [], [error]
    while stack:
        current = stack.pop()
        if current.context:
            stack.extend(current.context)
        else:
            leaves.append(current)
    return sorted(leaves, key=lambda leaf: (leaf.validator != "required", -len(leaf.absolute_path)))


def _schema_errors(stac: dict, uri: str) -> list[str]:
    from jsonschema import Draft7Validator
    from referencing.exceptions import Unresolvable

    registry = schema_registry()
    validator = Draft7Validator({"$ref": uri}, registry=registry)
    try:
        errors = sorted(validator.iter_errors(stac), key=lambda error: list(error.absolute_path))
        messages = []
        for error in errors:
            for leaf in _reasons(error)[:MAX_REASONS]:
                where = "/".join(str(part) for part in leaf.absolute_path) or "(top level)"
                message = leaf.message if len(leaf.message) <= 200 else leaf.message[:200] + " ..."
                if f"at {where}: {message}" not in messages:
                    messages.append(f"at {where}: {message}")
        return messages
    except Unresolvable as exc:
        return [f"refers to the schema {exc.ref!r}, which is not vendored in {SCHEMA_FOLDER}: it cannot be checked "
                "offline"]


def validation_errors(stac: dict) -> list[str]:
    """What makes a STAC item, collection or catalog invalid: one message per error and schema (empty when valid).

    The object is checked against the core schema of its ``type`` (STAC 1.1.0) and against the schema of every
    URI of its ``stac_extensions``, all read from :data:`SCHEMA_FOLDER`; an extension without a vendored schema is
    an error (it cannot be checked without network).
    """
    if not isinstance(stac, dict):
        return [f"a STAC object is a JSON object, not {type(stac).__name__}"]
    kind = stac.get("type")
    if kind not in CORE_SCHEMAS:
        return [f"'type' is {kind!r}: a STAC object's type is one of {', '.join(map(repr, CORE_SCHEMAS))}"]
    if stac.get("stac_version") != STAC_VERSION:
        return [f"'stac_version' is {stac.get('stac_version')!r}: the vendored schemas are those of STAC "
                f"{STAC_VERSION}"]
    messages = [f"{CORE_SCHEMAS[kind].rsplit('/', 1)[-1]}: {m}" for m in _schema_errors(stac, CORE_SCHEMAS[kind])]
    for uri in stac.get("stac_extensions") or []:
        if uri not in SCHEMA_FILES:
            messages.append(f"extension {uri!r} has no vendored schema in {SCHEMA_FOLDER}: it cannot be checked "
                            "offline")
            continue
        messages += [f"{uri}: {message}" for message in _schema_errors(stac, uri)]
    return messages


def validate(stac: dict, name: str | Path = "STAC object") -> None:
    """Raise when ``stac`` does not follow the schemas of :func:`validation_errors`.

    Raises
    ------
    InputDataError
        Naming ``name`` (a file or an item id) and every error found.
    """
    errors = validation_errors(stac)
    if errors:
        raise InputDataError(f"STAC '{name}' is not valid ({len(errors)} error(s)): " + "; ".join(errors))


def validate_file(path: str | Path) -> dict:
    """Read a STAC JSON file, :func:`validate` it and return it.

    Raises
    ------
    InputDataError
        The file is missing, not JSON, or not valid STAC; the message names it.
    """
    path = Path(path)
    try:
        stac = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"STAC file '{path}' cannot be read ({type(exc).__name__}: {exc})") from exc
    validate(stac, path)
    return stac


def check_links(path: str | Path) -> list[Path]:
    """Check that every link and asset of a STAC file is a relative href to an existing file.

    Returns
    -------
    list of Path
        The files its links and assets point to (resolved from the file's folder).

    Raises
    ------
    InputDataError
        An href is absolute or a URL (the folder could not be moved), or names a file that does not exist.
    """
    path = Path(path)
    stac = json.loads(path.read_text(encoding="utf-8"))
    targets = []
    hrefs = [(f"link {link.get('rel')!r}", link.get("href")) for link in stac.get("links", [])]
    hrefs += [(f"asset {key!r}", asset.get("href")) for key, asset in stac.get("assets", {}).items()]
    for what, href in hrefs:
        if not href or "://" in href or Path(href).is_absolute():
            raise InputDataError(f"STAC file '{path}': {what} has href {href!r}; hrefs must be relative paths so "
                                 "the output folder can be moved")
        target = (path.parent / href).resolve()
        if not target.exists():
            raise InputDataError(f"STAC file '{path}': {what} points to {href!r}, which does not exist ({target})")
        targets.append(target)
    return targets


def write_stac(path: str | Path, stac: dict) -> Path:
    """:func:`validate` a STAC object and write it as UTF-8 JSON, atomically (an invalid object is never written).

    Class names with quotes, backslashes, ``& < >`` or non-ASCII letters are kept as they are (JSON escapes what it
    must).
    """
    path = Path(path)
    validate(stac, path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(stac, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- what a raster says

def is_cog(dataset) -> bool:
    """Whether an open raster is a Cloud Optimized GeoTIFF.

    GDAL's COG driver marks its files (``IMAGE_STRUCTURE`` tag ``LAYOUT=COG``). Maps of several bands are written
    band-interleaved by GDAL's GTiff driver (:mod:`iota2.core.mosaic`), without the mark: they are
    recognised by the layout GDAL's COG validator checks: tiled, the image's directory right after the header,
    every overview's directory before the image's first block, overviews when the image is larger than a block.
    """
    if dataset.driver != "GTiff":
        return False
    if dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper() == "COG":
        return True
    if not dataset.profile.get("tiled"):
        return False
    block_rows, block_cols = dataset.block_shapes[0]
    overviews = dataset.overviews(1)
    if not overviews and (dataset.width > block_cols or dataset.height > block_rows):
        return False
    try:
        if int(dataset.get_tag_item("IFD_OFFSET", "TIFF", bidx=1)) not in (8, 16):
            return False
        first_block = min(int(dataset.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=band))
                          for band in range(1, dataset.count + 1))
        return all(int(dataset.get_tag_item("IFD_OFFSET", "TIFF", bidx=1, ovr=index)) < first_block
                   for index in range(len(overviews)))
    except (TypeError, ValueError):  # a block never written (sparse file) or no offset known
        return False


def media_type(dataset) -> str:
    """``image/tiff; application=geotiff`` plus ``; profile=cloud-optimized`` for a COG."""
    return COG if is_cog(dataset) else GEOTIFF


def _round(values, digits: int = 7) -> list[float]:
    return [round(float(value), digits) for value in values]


def footprint(dataset, points_per_edge: int = 21) -> tuple[dict, list[float]]:
    """The outline of an open raster's extent in WGS84 (longitude, latitude) and its bounding box.

    Each edge of the extent is cut into ``points_per_edge`` segments before reprojection, so the outline follows the
    curved edges of a projected tile.

    Returns
    -------
    (dict, list)
        A GeoJSON polygon and ``[west, south, east, north]``.

    Raises
    ------
    InputDataError
        The raster has no coordinate reference system.
    """
    if dataset.crs is None:
        raise InputDataError(f"'{dataset.name}' has no coordinate reference system: a STAC item needs its footprint "
                             "in WGS84; write the map with its CRS")
    left, bottom, right, top = dataset.bounds
    if dataset.crs.is_geographic:  # the extent itself (no curvature to follow)
        ring = [_round(point) for point in ([left, bottom], [right, bottom], [right, top], [left, top], [left, bottom])]
        return {"type": "Polygon", "coordinates": [ring]}, _round([left, bottom, right, top])
    steps = np.linspace(0.0, 1.0, points_per_edge + 1)[:-1]
    xs = np.concatenate([left + (right - left) * steps, np.full_like(steps, right), right - (right - left) * steps,
                         np.full_like(steps, left)])
    ys = np.concatenate([np.full_like(steps, top), top - (top - bottom) * steps, np.full_like(steps, bottom),
                         bottom + (top - bottom) * steps])
    lon, lat = rasterio.warp.transform(dataset.crs, "EPSG:4326", xs, ys)
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lon, lat)]
    ring = ring[::-1] + [ring[-1]]  # counterclockwise, closed (RFC 7946)
    bbox = [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def projection_fields(dataset) -> dict:
    """The projection extension's fields of an open raster: ``proj:code`` (``EPSG:<n>``, or ``proj:wkt2`` when the
    CRS has no EPSG code), ``proj:shape`` ``[rows, cols]``, ``proj:transform`` (the 6 affine coefficients) and
    ``proj:bbox`` in the raster's CRS."""
    fields = {}
    epsg = dataset.crs.to_epsg() if dataset.crs is not None else None
    if epsg is not None:
        fields["proj:code"] = f"EPSG:{epsg}"
    elif dataset.crs is not None:
        fields["proj:code"] = None
        fields["proj:wkt2"] = dataset.crs.to_wkt()
    fields["proj:shape"] = [int(dataset.height), int(dataset.width)]
    fields["proj:transform"] = [float(v) for v in tuple(dataset.transform)[:6]]
    fields["proj:bbox"] = [float(v) for v in dataset.bounds]
    return fields


def raster_bands(dataset, **per_band) -> list[dict]:
    """``raster:bands`` of an open raster: data type, nodata, spatial resolution and sampling of each band, with the
    ``per_band`` values (e.g. ``unit="percent"``) added to every band; band descriptions become ``description``."""
    resolution = abs(float(dataset.res[0]))
    if dataset.crs is not None and dataset.crs.is_geographic:
        resolution = resolution * 111_320.0  # metres, at the equator
    bands = []
    for index, dtype in enumerate(dataset.dtypes):
        band = {"data_type": str(dtype), "spatial_resolution": resolution, "sampling": "area"}
        nodata = dataset.nodatavals[index]
        if nodata is not None:
            band["nodata"] = _json_nodata(float(nodata))
        description = dataset.descriptions[index]
        if description:
            band["description"] = description
        band.update({key: value for key, value in per_band.items() if value is not None})
        bands.append(band)
    return bands


def _json_nodata(value: float):
    """A nodata value as ``raster:bands`` writes it: a number, or ``"nan"``, ``"inf"``, ``"-inf"``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if value.is_integer() else value


def stac_datetime(value) -> dt.datetime:
    """A ``YYYYMMDD`` date (or a date / datetime) as a UTC datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    text = str(value)
    try:
        return dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


def classification_classes(legend) -> list[dict]:
    """``classification:classes`` (extension 1.1.0) of a :class:`iota2.core.legend.Legend`: ``value`` (the label),
    ``name`` and ``description`` (the nomenclature's name) and ``color_hint`` (the colour, ``RRGGBB``)."""
    return [{"value": int(entry.label), "name": entry.name, "description": entry.name,
             "color_hint": entry.hex.lstrip("#").upper()} for entry in legend.entries]


# ---------------------------------------------------------------------------- items

def _relative(target: str | Path, start: str | Path) -> str:
    import os

    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def _add_extension(item, uri: str) -> None:
    if uri not in item.stac_extensions:
        item.stac_extensions.append(uri)


def map_item(raster: str | Path, item_path: str | Path, start, end, title: str, legend=None, roles=("data",),
             band_fields: dict | None = None, extra_assets: dict | None = None, properties: dict | None = None):
    """The STAC item of a map.

    Parameters
    ----------
    raster
        The map (GeoTIFF).
    item_path
        Where the item will be written (its asset hrefs are relative to that folder).
    start, end
        First and last date of the time series (``YYYYMMDD``, dates or datetimes): ``start_datetime`` and
        ``end_datetime``.
    title
        What the map is (item ``title`` and the data asset's).
    legend
        A :class:`iota2.core.legend.Legend` for a class map (its ``classification:classes``), None otherwise.
    roles
        Roles of the map asset (``data``; ``visual`` for the colour-indexed map).
    band_fields
        Fields added to every ``raster:bands`` entry (``unit``, ``scale`` ...).
    extra_assets
        ``{key: (path, media type, roles, title)}``: files beside the map (style, categories, quicklook); those that
        do not exist are left out.
    properties
        More item properties.

    Returns
    -------
    pystac.Item
        With hrefs relative to ``item_path``'s folder.
    """
    import pystac

    raster, item_path = Path(raster), Path(item_path)
    with rasterio.open(raster) as dataset:
        geometry, bbox = footprint(dataset)
        proj = projection_fields(dataset)
        bands = raster_bands(dataset, **(band_fields or {}))
        kind = media_type(dataset)
    item = pystac.Item(raster.stem, geometry, bbox, None, {"title": title, **(properties or {})},
                       start_datetime=stac_datetime(start), end_datetime=stac_datetime(end))
    item.set_self_href(str(item_path.resolve()))  # before the assets: pystac moves relative hrefs with the item
    item.properties.update(proj)
    _add_extension(item, PROJECTION)
    data = {"raster:bands": bands}
    _add_extension(item, RASTER)
    if legend is not None:
        data["classification:classes"] = classification_classes(legend)
        _add_extension(item, CLASSIFICATION)
    folder = item_path.parent
    item.add_asset("data", pystac.Asset(_relative(raster, folder), title=title, media_type=kind, roles=list(roles),
                                        extra_fields=data))
    for key, (path, asset_type, asset_roles, asset_title) in (extra_assets or {}).items():
        if Path(path).exists():
            item.add_asset(key, pystac.Asset(_relative(path, folder), title=asset_title, media_type=asset_type,
                                             roles=list(asset_roles)))
    return item


def _hyperparameters(summary: dict) -> dict:
    """``mlm:hyperparameters``: the learner's keywords (scikit-learn) or network hyper-parameters (torch), best
    grid-search values included, with JSON-safe values and keys."""
    values = {}
    settings = summary.get("settings") or {}
    for source in (settings.get("keywords"), summary.get("hyper_parameters"), summary.get("best_params"),
                   settings.get("dl_parameters")):
        if isinstance(source, dict):
            values.update(source)
    import re

    return {re.sub(r"[^0-9a-zA-Z_.-]", "_", str(key)): _json_safe(value) for key, value in values.items()}


def _json_safe(value):
    """``value`` with what JSON cannot hold replaced: NaN and infinities by None, numpy numbers by Python's, tuples
    by lists, other objects by their text."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def model_item(model_path: str | Path, summary: dict, item_path: str | Path, legend, start=None, end=None,
               geometry: dict | None = None, bbox: list | None = None, metrics: dict | None = None,
               properties: dict | None = None):
    """The STAC item (model card) of a trained model, with the machine-learning-model extension.

    Parameters
    ----------
    model_path
        :meth:`iota2.core.layout.OutputLayout.model` of the (region, run).
    summary
        Its summary (:func:`iota2.core.learner.read_summary`): learner, settings, feature names, classes, samples
        per class, files.
    item_path
        Where the item will be written (asset hrefs are relative to its folder).
    legend
        :class:`iota2.core.legend.Legend` of the ground truth: the names and colours of the output classes.
    start, end
        First and last date of the time series the features come from (None: the item's ``datetime`` is the
        model file's modification time).
    geometry, bbox
        The area classified with the model (WGS84), or None.
    metrics
        Validation metrics of the model's run (:func:`validation_metrics`), or None when there are none yet.
    properties
        More item properties.

    Returns
    -------
    pystac.Item
    """
    import pystac

    model_path, item_path = Path(model_path), Path(item_path)
    learner = str(summary.get("learner") or "sklearn")
    features = [str(name) for name in summary["feature_names"]]
    classes = [int(label) for label in summary["classes"]]
    names = legend.names()
    entries = {entry.label: entry for entry in legend.entries}
    output_legend = type(legend)(tuple(entries[label] for label in classes if label in entries))
    architecture = str(summary.get("estimator") or summary.get("network")
                       or (summary.get("settings") or {}).get("model_type")
                       or (summary.get("settings") or {}).get("dl_name") or learner)
    counts = {int(label): int(count) for label, count in (summary.get("samples_per_class") or {}).items()}
    props = {
        "title": f"{architecture} model {model_path.stem}",
        "mlm:name": model_path.stem,
        "mlm:architecture": architecture,
        "mlm:tasks": ["classification"],
        "mlm:framework": FRAMEWORKS.get(learner, learner),
        "mlm:pretrained": False,
        "mlm:pretrained_source": None,
        "mlm:input": [{"name": "pixel features", "bands": features,
                       "description": f"{len(features)} features per pixel, in this order",
                       "input": {"shape": [-1, len(features)], "dim_order": ["batch", "channel"],
                                 "data_type": "float32"}}],
        "mlm:output": [{"name": "class probabilities", "tasks": ["classification"],
                        "description": "probability of each class, in increasing label order; the map's label is the "
                                       "most probable class and its confidence the probability x 100",
                        "result": {"shape": [-1, len(classes)], "dim_order": ["batch", "class"],
                                   "data_type": "float32"},
                        "classification:classes": classification_classes(output_legend)}],
        "iota2:learner": learner,
        "iota2:region": summary.get("region"),
        "iota2:run": summary.get("run"),
        "iota2:training_samples": int(summary.get("n_samples", sum(counts.values()))),
        "iota2:training_samples_per_class": [{"value": label, "name": names.get(label, f"class {label}"),
                                              "count": counts.get(label, 0)} for label in classes],
    }
    hyper = _hyperparameters(summary)
    if hyper:
        props["mlm:hyperparameters"] = hyper
    for key in ("best_epoch", "best_metrics"):
        if summary.get(key) is not None:
            props[f"iota2:training_{key}"] = _json_safe(summary[key])
    if metrics is not None:
        props["iota2:validation"] = metrics
    props.update(properties or {})
    if start is not None and end is not None:
        item = pystac.Item(model_path.stem, geometry, bbox if geometry else None, None, props,
                           start_datetime=stac_datetime(start), end_datetime=stac_datetime(end))
    else:
        when = dt.datetime.fromtimestamp(model_path.with_suffix(".json").stat().st_mtime, dt.timezone.utc)
        item = pystac.Item(model_path.stem, geometry, bbox if geometry else None, when, props)
    _add_extension(item, MLM)
    folder = item_path.parent
    suffix, artifact = MODEL_ARTIFACTS.get(learner, (None, learner))
    files = sorted(summary.get("files") or {})
    main = next((name for name in files if suffix and name.endswith(suffix)), files[0] if files else None)
    for name in files:
        path = model_path.parent / name
        if name == main:
            item.add_asset("model", pystac.Asset(_relative(path, folder), title=f"{architecture} model",
                                                 media_type=_file_type(name), roles=["mlm:model", "data"],
                                                 extra_fields={"mlm:artifact_type": artifact,
                                                               "iota2:sha256": summary["files"][name],
                                                               "raster:bands": [{"name": f} for f in features]}))
            _add_extension(item, RASTER)  # the model's input bands, by name (what mlm:input refers to)
        else:
            roles = ["metadata"] if name.endswith(".json") else ["mlm:weights"]
            item.add_asset(Path(name).stem.removeprefix(model_path.stem).strip("_") or name,
                           pystac.Asset(_relative(path, folder), title=name, media_type=_file_type(name), roles=roles,
                                        extra_fields={"iota2:sha256": summary["files"][name]}))
    summary_file = model_path.with_suffix(".json")
    item.add_asset("summary", pystac.Asset(_relative(summary_file, folder), title="model summary (learner, classes, "
                                           "samples per class, feature names, file digests)",
                                           media_type="application/json", roles=["metadata"]))
    return item


def _file_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".json": "application/json", ".pt": "application/octet-stream; application=pytorch",
            ".npz": "application/octet-stream; application=numpy-npz",
            ".skops": "application/octet-stream; application=skops"}.get(suffix, "application/octet-stream")


def validation_metrics(matrix, labels: list[int], names: dict[int, str], source: str) -> dict:
    """The validation metrics of a confusion matrix (rows = reference, columns = map): OA, kappa, validation pixels
    and per-class precision, recall and F-score (:func:`iota2.core.metrics.coefficients`), NaN written ``null``.

    Parameters
    ----------
    matrix, labels
        From :func:`iota2.core.metrics.read_confusion_csv`.
    names
        ``{label: name}``.
    source
        The confusion matrix file, relative to the output folder (recorded with the metrics).
    """
    from iota2.core.metrics import coefficients

    found = coefficients(matrix)
    matrix = np.asarray(matrix)

    def number(value):
        value = float(value)
        return round(value, 6) if math.isfinite(value) else None

    return {"source": source, "pixels": int(matrix.sum()), "overall_accuracy": number(found["oa"]),
            "kappa": number(found["kappa"]),
            "per_class": [{"value": int(label), "name": names.get(int(label), f"class {label}"),
                           "reference_pixels": int(matrix[index].sum()),
                           "precision": number(found["precision"][index]), "recall": number(found["recall"][index]),
                           "f1": number(found["fscore"][index])} for index, label in enumerate(labels)]}
