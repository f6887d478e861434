"""YAML configuration: sections and keys with types and defaults, strict validation, clear errors.

A configuration is a YAML mapping of sections (``chain``, ``arg_train``, ...) to mappings of keys; iota2's own
``.cfg`` files (``chain : { output_path : '/out' }``) are read too (:mod:`iota2.core.cfg_syntax`), into the same
validated configuration.
Every key is declared once, here for the core sections or by a plugin through the
``iota2_config_sections`` hook, with its type, default and documentation. Loading a file:

* fills every missing key with its default;
* rejects unknown sections and keys with a "did you mean" hint;
* accepts iota2's older camelCase spellings (``outputPath``, ``sampleSelection``, ``argTrain``);
* checks types (an int is accepted where a float is expected) and allowed values;
* checks the keys the selected builders declare mandatory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from iota2.core.errors import ConfigError

LOGGER = logging.getLogger(__name__)

_MISSING = object()
MANDATORY = _MISSING

#: Largest ``arg_train.runs``: each run is a full learning, classification and validation.
MAX_RUNS = 1000
#: Largest ``arg_train.random_seed`` (numpy and scikit-learn take seeds below 2**32).
MAX_SEED = 2 ** 31 - 1


@dataclasses.dataclass
class Param:
    """One configuration key.

    Parameters
    ----------
    type
        One of ``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"list"``, ``"dict"``,
        ``"str_or_list"`` (a space- or comma-separated string, or a YAML list, read as a list of strings),
        ``"any"``.
    default
        Value used when the key is absent; :data:`MANDATORY` when the key has no default.
    doc
        One or two sentences for the configuration reference.
    choices
        Allowed values (for ``str`` keys), or ``None``.
    nullable
        Whether ``None`` is an accepted value.
    check
        Optional ``check(value) -> str | None`` returning an error message for a bad value.
    """

    type: str
    default: Any = None
    doc: str = ""
    choices: tuple | None = None
    nullable: bool = True
    check: Callable[[Any], str | None] | None = None

    @property
    def mandatory(self) -> bool:
        return self.default is _MISSING


@dataclasses.dataclass
class Section:
    """A configuration section: a name, its keys and a description.

    Two sections with the same name (e.g. a sensor plugin adding its ``chain.s2_path``) are merged.
    """

    name: str
    params: dict[str, Param]
    doc: str = ""
    aliases: tuple[str, ...] = ()


def _positive(value):
    return None if value is None or value > 0 else "must be > 0"


def _ratio(value):
    return None if 0.0 < value < 1.0 else "must be strictly between 0 and 1 (share of polygons used for learning)"


def _between(low, high, why=""):
    """A check accepting ``low <= value <= high``; ``why`` says what the bound protects."""
    def check(value):
        if value is None or low <= value <= high:
            return None
        return f"must be between {low} and {high}{why}"
    return check


def _at_least(low, why=""):
    def check(value):
        return None if value is None or value >= low else f"must be >= {low}{why}"
    return check


def _resolution(value):
    """``chain.spatial_resolution``: unset, a positive number, or a pair ``[x, y]`` of positive numbers."""
    if value in (None, "", []):
        return None

    def positive_number(item):
        return isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) and item > 0

    if positive_number(value):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(positive_number(item) for item in value):
        return None
    return "must be a positive number of CRS units (e.g. 10) or a pair of them (e.g. [10, 10]), without quotes"


def _known_crs(value):
    """``chain.proj``: a CRS that PROJ knows (an unknown EPSG code fails here, not in the first task)."""
    if value in (None, ""):
        return None
    import rasterio  # already imported by the command line (iota2.core.raster): no start-up cost
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # reports PROJ's error through the exception only, not on stderr too
            CRS.from_user_input(value)
    except CRSError:
        return "is not a coordinate reference system that PROJ knows; write an EPSG code such as 'EPSG:2154'"
    return None


def _distinct_tiles(value):
    repeated = sorted({tile for tile in value if value.count(tile) > 1})
    if repeated:
        return f"lists {', '.join(repeated)} more than once; list each tile once"
    return None


def _yyyymmdd(value):
    if value in (None, ""):
        return None
    if not re.fullmatch(r"\d{8}", str(value)):
        return "must be a date written YYYYMMDD, e.g. '20180101'"
    return None


CORE_SECTIONS: list[Section] = [
    Section("chain", {
        "output_path": Param("str", MANDATORY, "Root folder of every output of the run.", nullable=False),
        "remove_output_path": Param("bool", False, "Delete the outputs of earlier iota2 runs before a run that "
                                    "starts at the 'init' group (never on -restart): only the entries iota2 writes, "
                                    "in a folder marked as iota2's."),
        "check_inputs": Param("bool", True, "Accepted for iota2 configurations. Inputs (configuration, class files, "
                              "tiles, ground truth, regions) are always checked before any task runs, as the checks "
                              "are cheap; False only logs a warning saying so."),
        "nomenclature_path": Param("str", None, "Text file with one 'name:label' line per class (read at start; labels it leaves out are named by their number, with a warning)."),
        "color_table": Param("str", None, "Text file with one 'label R G B' line per class (read at start; labels it leaves out get a default colour, with a warning)."),
        "list_tile": Param("str_or_list", MANDATORY, "Tiles to process, e.g. 'T31TCJ T31TDJ'; each listed once.",
                           nullable=False, check=_distinct_tiles),
        "ground_truth": Param("str", None, "Polygon file (any OGR format) with the class field data_field."),
        "data_field": Param("str", None, "Integer class field of the ground truth (labels > 0)."),
        "region_path": Param("str", None, "Optional polygon file of eco-regions; one model is learnt per region."),
        "region_field": Param("str", "region", "Region attribute of region_path."),
        "spatial_resolution": Param("any", None, "Output pixel size in CRS units (a positive number, or [x, y]); "
                                    "default: the sensor's native resolution (10 m for Sentinel-2).",
                                    check=_resolution),
        "proj": Param("str", None, "Output CRS, e.g. 'EPSG:2154'; default: the CRS of the first tile's data. "
                      "Tiles and ground truth in another CRS are reprojected (and a message says so). Checked at "
                      "start: a code PROJ does not know stops the run.", check=_known_crs),
        "first_step": Param("str", None, "First group of steps to run (e.g. 'sampling'); default: the first group."),
        "last_step": Param("str", None, "Last group of steps to run (e.g. 'learning'); default: the last group."),
        "log_file_level": Param("str", "INFO", "Level of the per-task log files.",
                                choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        "remove_tmp_files": Param("bool", False, "Delete intermediate per-chunk files once merged (for the features "
                                  "map: the chunks and tile VRTs of customF/, once the final map is written)."),
        "compression_algorithm": Param("str", "ZSTD", "GeoTIFF compression of outputs.",
                                       choices=("ZSTD", "LZW", "DEFLATE", "NONE")),
    }, "General input/output settings."),
    Section("arg_train", {
        "runs": Param("int", 1, f"Number of independent learn/validation splits (seeds), 1 to {MAX_RUNS}.",
                      check=_between(1, MAX_RUNS, " (each run is a full learning, classification and validation)")),
        "ratio": Param("float", 0.5, "Share of polygons of each (region, class) put in the learning set.",
                       check=_ratio),
        "random_seed": Param("int", None, "Base seed of the polygon split, sample selection and learning; each run "
                             "(and model) draws from its own stream derived from (random_seed, run) "
                             f"(0 to {MAX_SEED}). None: a fresh seed each run (not reproducible).",
                             check=_between(0, MAX_SEED, " (numpy and scikit-learn take 32-bit seeds >= 0)")),
        "split_ground_truth": Param("bool", True, "If False every polygon is used for both learning and validation."),
        "cloud_threshold": Param("int", 0, "Keep ground-truth pixels seen clear at least this many times.",
                                 check=_at_least(0)),
        "classifier": Param("str", None, "OTB classifier: rf, libsvm, knn, ann, boost, dt or bayes (no Shark). Needs "
                            "the OTB backend (docs/otb.md); the native equivalent is "
                            "scikit_models_parameters.model_type."),
        "otb_classifier_options": Param("any", None, "Options of the OTB classifier, by OTB parameter name "
                                        "({'classifier.rf.nbtrees': 100}) or as iota2's flag string."),
        "sample_selection": Param("dict", {"sampler": "random", "strategy": "all"},
                                  "Pixel selection inside learning polygons: sampler (random|periodic), strategy "
                                  "(all|constant|byclass|percent|total|smallest) and their 'strategy.*' keys, "
                                  "'rand' seed, 'per_model' overrides."),
        "features": Param("list", ["NDVI", "NDWI", "Brightness"], "Spectral indices computed per date; [] for none."),
        "deep_learning_parameters": Param("dict", None, "Deep-learning settings (dl_name, epochs, "
                                           "model_selection_criterion ...; every key in docs/deep_learning.md)."),
        "enable_autocontext": Param("bool", False, "Contextual classification: the class proportions of each "
                                    "pixel's SLIC superpixel are added per iteration; random forest only "
                                    "(docs/autocontext.md)."),
        "autocontext_iterations": Param("int", 3, "Number of autocontext iterations.",
                                        check=_between(1, 100)),
        "samples_format": Param("str", "sqlite", "Format of the learning-samples files: 'sqlite' (layer 'output', "
                                "as iota2) or 'parquet' (faster, no column limit).", choices=("sqlite", "parquet")),
    }, "Polygon split, sample selection and learning.", aliases=("argTrain",)),
    Section("arg_classification", {
        "classif_mode": Param("str", "separate", "'separate': each region's model classifies its region.",
                              choices=("separate",)),
        "enable_probability_map": Param("bool", False, "Write per-class probability rasters (0-1000, int16)."),
        "generate_final_probability_map": Param("bool", False, "Mosaic the probability maps into final/."),
    }, "Classification settings.", aliases=("argClassification",)),
    Section("scikit_models_parameters", {
        "model_type": Param("str", None, "Registered classifier name (e.g. RandomForestClassifier, SVC, "
                            "ExtraTreesClassifier); default: a random forest of 100 trees."),
        "standardization": Param("bool", False, "Standardise features (mean 0, std 1) before learning."),
        "cross_validation_folds": Param("int", 5, "Folds of the grid search (at least 2).",
                                        check=_at_least(2, " (a grid search needs a training and a test fold)")),
        "cross_validation_grouped": Param("bool", False, "Group folds by polygon (originfid) so pixels of one "
                                          "polygon never sit in both the training and the test fold."),
        "cross_validation_parameters": Param("dict", {}, "Parameter grid for GridSearchCV, e.g. "
                                             "{n_estimators: [50, 100]}."),
        "keyword_arguments": Param("dict", {}, "Estimator keyword arguments (any other key of this section is "
                                   "also passed to the estimator)."),
    }, "Native (scikit-learn) learners. Any other key is passed to the estimator's constructor."),
    Section("sensors_data_interpolation", {
        "auto_date": Param("bool", True, "Derive the interpolation dates from the data of all tiles."),
        "use_gapfilling": Param("bool", True, "Linear temporal gap-filling of masked dates."),
        "write_outputs": Param("bool", False, "Also write the full feature stack of each tile to features/<tile>/tmp."),
        "use_additional_features": Param("bool", False, "Enable each sensor's additional_features."),
    }, "Temporal interpolation.", aliases=("GlobChain",)),
    Section("iota2_feature_extraction", {
        "copy_input": Param("bool", True, "Keep the reflectances in the feature stack."),
        "rel_refl": Param("bool", False, "Reflectances relative to a reference band (not supported yet)."),
        "keep_duplicates": Param("bool", True, "Keep duplicated features."),
        "extract_bands": Param("bool", False, "Apply each sensor's keep_bands."),
        "acor_feat": Param("bool", False, "Indices with a 0.05 offset (not supported yet)."),
    }, "Spectral features.", aliases=("iota2FeatureExtraction",)),
    Section("python_data_managing", {
        "chunk_size_mode": Param("str", "auto", "'auto': chunks sized from memory_per_task_mb; 'split_number': "
                                 "number_of_chunks stripes per tile; 'user_fixed': chunk_size_x x chunk_size_y.",
                                 choices=("auto", "split_number", "user_fixed")),
        "number_of_chunks": Param("int", None, "Chunks per tile in 'split_number' mode.", check=_positive),
        "chunk_size_x": Param("int", 50, "Chunk width in 'user_fixed' mode.", check=_positive),
        "chunk_size_y": Param("int", 50, "Chunk height in 'user_fixed' mode.", check=_positive),
        "memory_per_task_mb": Param("int", 1024, "Memory budget of one task in MB; in 'auto' mode chunks are as "
                                    "large as this budget allows.", check=_positive),
        "padding_size": Param("int", 0, "Pixels read around each chunk and cropped afterwards (for spatial filters).",
                              check=lambda v: None if v >= 0 else "must be >= 0"),
    }, "Chunking of tiles for memory and parallelism."),
    Section("external_features", {
        "module": Param("str", None, "Python file defining feature functions."),
        "functions": Param("any", None, "Function names (space-separated string or list)."),
        "concat_mode": Param("bool", True, "Append user features to iota2's (True) or replace them (False)."),
        "output_name": Param("str", None, "Name of the feature map."),
    }, "User feature functions."),
    Section("obia", {
        "obia_segmentation_path": Param("str", None, "Segmentation of the OBIA builder (i2_obia): a vector file "
                                        "(shp, gpkg, sqlite; any CRS, reprojected) of polygons, or a GeoTIFF of "
                                        "segment ids (0 = no segment); None: SLIC superpixels computed on the "
                                        "features of each tile."),
        "stats_used": Param("list", ["mean"], "Statistics describing each object, for every feature: any of "
                            "mean, count, min, max, std."),
        "buffer_size": Param("int", None, "Pixels per batch of the per-object statistics of a chunk (bounds their "
                             "working memory besides the chunk's features); None: 1048576.", check=_positive),
        "region_priority": Param("str_or_list", None, "Order in which regions claim an object touching several "
                                 "(region names of chain.region_path); None: numeric order of the names."),
        "min_class_coverage": Param("float", 0.5, "Smallest share of an object's pixels that the polygons of its "
                                    "majority class must cover for the object to be a learning (or object-based "
                                    "validation) sample; 0.5: the majority of its area.",
                                    check=lambda v: None if 0.0 < v <= 1.0 else "must be > 0 and <= 1"),
    }, "Object-based classification (builder i2_obia, docs/obia.md).", aliases=("OBIA",)),
    Section("builders", {
        "builders_class_name": Param("list", ["i2_classification"], "Builders to run, in order."),
        "builders_paths": Param("str", None, "Folder of user builders (not supported: install a plugin)."),
    }, "Workflow selection."),
    Section("task_retry_limits", {
        "allowed_retry": Param("int", 0, "Times a failed task is retried before the run stops (0 to 100).",
                               check=_between(0, 100)),
        "maximum_ram": Param("float", 180.0, "RAM cap (GB) when retrying with more resources.", check=_positive),
        "maximum_cpu": Param("int", 40, "CPU cap when retrying with more resources.", check=_positive),
    }, "Retries of failed tasks."),
    Section("slurm", {
        "account": Param("str", None, "Account passed to sbatch --account."),
        "queue": Param("str", None, "Partition / queue."),
        "walltime": Param("str", "01:00:00", "Wall time of one worker job."),
        "cores": Param("int", 1, "Cores per worker job.", check=_positive),
        "memory": Param("str", "4GB", "Memory per worker job."),
        "job_extra_directives": Param("list", [], "Extra #SBATCH / #PBS lines."),
        "local_directory": Param("str", None, "Worker scratch directory."),
    }, "Cluster jobs (Slurm and PBS schedulers)."),
]


def camel_to_snake(name: str) -> str:
    """Return the snake_case spelling of an iota2 camelCase key (``outputPath`` -> ``output_path``)."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return name.lower()


def resolve_name(name: str, declared) -> str:
    """The declared spelling of ``name``: itself, its snake_case form, or the declared name equal to it once
    underscores and case are ignored (``useGapFilling`` -> ``use_gapfilling``); else ``name`` unchanged."""
    if name in declared:
        return name
    snake = camel_to_snake(name)
    if snake in declared:
        return snake
    squashed = {key.replace("_", "").lower(): key for key in declared}
    return squashed.get(name.replace("_", "").lower(), name)


class Config:
    """A validated configuration.

    Access values with ``config["chain"]["output_path"]`` or iota2's ``config.getParam("chain",
    "output_path")``.
    """

    def __init__(self, values: dict[str, dict], path: str | None = None, sections: dict[str, Section] | None = None):
        self._values = values
        self.path = path
        self.sections = sections or {}

    def __getitem__(self, section: str) -> dict:
        return self._values[section]

    def __contains__(self, section: str) -> bool:
        return section in self._values

    def getParam(self, section: str, key: str):  # noqa: N802 - iota2's API name
        """Return the value of ``key`` in ``section`` (iota2 API)."""
        try:
            return self._values[section][key]
        except KeyError as exc:
            raise ConfigError(f"unknown configuration key {section}.{key}") from exc

    def as_dict(self) -> dict:
        return copy.deepcopy(self._values)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self._values, sort_keys=False, allow_unicode=True)


def all_sections(extra: Iterable[Section] | None = None) -> dict[str, Section]:
    """Merge the core sections with plugin sections (sections of the same name are merged)."""
    if extra is None:
        from iota2.core.plugins import config_sections

        extra = config_sections()
    merged: dict[str, Section] = {}
    for section in list(CORE_SECTIONS) + list(extra):
        if section.name in merged:
            current = merged[section.name]
            merged[section.name] = Section(current.name, {**current.params, **section.params},
                                           current.doc or section.doc, current.aliases + section.aliases)
        else:
            merged[section.name] = Section(section.name, dict(section.params), section.doc, section.aliases)
    return merged


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_type(where: str, param: Param, value):
    if value is None:
        if param.nullable:
            return None
        raise ConfigError(f"{where} must not be empty; set it to a {param.type}")
    kind = param.type
    if kind == "any":
        pass
    elif kind == "str":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and param.check is _yyyymmdd:
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}; quote it in the YAML file")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif kind == "list":
        if isinstance(value, str):
            value = [item for item in re.split(r"[\s,]+", value) if item]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, e.g. [a, b], got {value!r}")
    elif kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping (key: value lines), got {value!r}")
    elif kind == "str_or_list":
        if isinstance(value, str):
            value = [item for item in re.split(r"[\s,]+", value) if item]
        elif isinstance(value, list) and all(isinstance(item, (str, int)) for item in value):
            value = [str(item) for item in value]
        else:
            raise ConfigError(f"{where} must be a space-separated string or a list of strings, got {value!r}")
    else:  # pragma: no cover - declaration error
        raise ValueError(f"unknown parameter type {kind}")
    if param.choices is not None and value not in param.choices:
        raise ConfigError(f"{where} = {value!r} is not allowed; use one of {', '.join(map(repr, param.choices))}"
                          f"{_hint(str(value), map(str, param.choices))}")
    if param.check is not None:
        problem = param.check(value)
        if problem:
            raise ConfigError(f"{where} = {value!r} {problem}")
    return value


def _section_aliases(sections: dict[str, Section]) -> dict[str, str]:
    aliases = {}
    for name, section in sections.items():
        for alias in section.aliases:
            aliases[alias] = name
    return aliases


OPEN_SECTIONS = {"scikit_models_parameters"}

NOT_AVAILABLE_SECTIONS = {
    "dim_red": "dimensionality reduction (section 'dim_red')",
    "coregistration": "co-registration to a VHR image (section 'coregistration')",
    "simplification": "the vectorization builder (section 'simplification', builder 'i2_vectorization')",
}
"""iota2's sections whose feature this version does not have: named with a message of their own."""

NOT_AVAILABLE_KEYS = {"full_learn_segment": "learning from the part of a segment inside its learning polygons "
                                            "(obia.full_learn_segment: objects are always described by all their "
                                            "pixels)"}
"""iota2's keys whose feature this version does not have, wherever they are written."""


def _not_available(what: str) -> str:
    return f"{what} is not available in this version (docs/differences.md lists what is not); remove it"


def _owners(key: str, sections: dict[str, Section], besides: str | None = None) -> list[str]:
    """Sections declaring ``key`` (in any accepted spelling), other than ``besides``."""
    return [name for name, section in sections.items()
            if name != besides and resolve_name(key, section.params) in section.params]


def _section_name(raw_name, sections: dict[str, Section], aliases: dict[str, str], source: str, content) -> str:
    """The declared section ``raw_name`` stands for; a ConfigError saying what to do when there is none."""
    name = aliases.get(raw_name) or resolve_name(str(raw_name), sections)
    if name in sections:
        return name
    unavailable = resolve_name(str(raw_name), NOT_AVAILABLE_SECTIONS)
    if unavailable in NOT_AVAILABLE_SECTIONS:
        raise ConfigError(f"{source}: section '{raw_name}': {_not_available(NOT_AVAILABLE_SECTIONS[unavailable])}")
    unavailable = resolve_name(str(raw_name), NOT_AVAILABLE_KEYS)
    if unavailable in NOT_AVAILABLE_KEYS:
        raise ConfigError(f"{source}: '{raw_name}': {_not_available(NOT_AVAILABLE_KEYS[unavailable])}")
    owners = _owners(str(raw_name), sections)
    if owners and not isinstance(content, dict):
        raise ConfigError(f"{source}: '{raw_name}' is a key of section '{owners[0]}'; write it indented "
                          f"under '{owners[0]}:'")
    raise ConfigError(f"{source}: unknown section '{raw_name}'{_hint(str(raw_name), sections)} "
                      f"(known sections: {', '.join(sorted(sections))})")


def _unknown_key(source: str, section: str, raw_key, declared, sections: dict[str, Section]) -> ConfigError:
    unavailable = resolve_name(str(raw_key), NOT_AVAILABLE_KEYS)
    if unavailable in NOT_AVAILABLE_KEYS:
        return ConfigError(f"{source}: '{section}.{raw_key}': {_not_available(NOT_AVAILABLE_KEYS[unavailable])}")
    owners = _owners(str(raw_key), sections, besides=section)
    if owners:
        where = f"section '{owners[0]}'" if len(owners) == 1 else \
            "sections " + ", ".join(f"'{owner}'" for owner in owners)
        return ConfigError(f"{source}: '{raw_key}' is a key of {where}, not of '{section}'; move it under "
                           f"'{owners[0]}:'")
    return ConfigError(f"{source}: unknown key '{section}.{raw_key}'{_hint(str(raw_key), declared)} "
                       f"(keys of '{section}': {', '.join(sorted(declared))})")


def validate(raw: dict, sections: dict[str, Section] | None = None, source: str = "the configuration") -> Config:
    """Validate a raw mapping and return a :class:`Config` with every default filled in.

    Parameters
    ----------
    raw
        The mapping read from the YAML file: section name -> mapping of keys.
    sections
        The declared sections; default: the core sections and those of the installed plugins.
    source
        How errors name the configuration (its file).

    Raises
    ------
    ConfigError
        For an unknown, misplaced, unavailable or repeated section or key, a value of the wrong type or out
        of its range, or a missing mandatory key; the message names the key and the fix.
    """
    sections = sections if sections is not None else all_sections()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a YAML mapping of sections (chain:, arg_train:, ...)")
    aliases = _section_aliases(sections)
    values: dict[str, dict] = {}
    spelled: dict[str, str] = {}
    for raw_name, content in raw.items():
        name = _section_name(raw_name, sections, aliases, source, content)
        if name in spelled:
            raise ConfigError(f"{source}: sections '{spelled[name]}' and '{raw_name}' are both section '{name}' "
                              "(the second would replace the first); merge them into one")
        spelled[name] = str(raw_name)
        if content is None:
            content = {}
        if not isinstance(content, dict):
            raise ConfigError(f"{source}: section '{raw_name}' must contain 'key: value' lines")
        declared = sections[name].params
        section_values = values.setdefault(name, {})
        keys_spelled: dict[str, str] = {}
        for raw_key, value in content.items():
            key = resolve_name(str(raw_key), declared)
            if key not in declared and name in OPEN_SECTIONS:
                key = str(raw_key)
            elif key not in declared:
                raise _unknown_key(source, name, raw_key, declared, sections)
            if key in keys_spelled:
                raise ConfigError(f"{source}: keys '{keys_spelled[key]}' and '{raw_key}' of section '{raw_name}' are "
                                  f"both '{name}.{key}' (the second would replace the first); keep one")
            keys_spelled[key] = str(raw_key)
            try:
                section_values[key] = value if key not in declared else \
                    _check_type(f"{name}.{key}", declared[key], value)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    for name, section in sections.items():
        section_values = values.setdefault(name, {})
        for key, param in section.params.items():
            if key not in section_values and not param.mandatory:
                section_values[key] = copy.deepcopy(param.default)
    for name, section in sections.items():
        for key, param in section.params.items():
            if param.mandatory and values[name].get(key) is None:
                raise ConfigError(f"{source}: mandatory key '{name}.{key}' is missing: {param.doc}")
    if values.get("chain", {}).get("check_inputs") is False:
        LOGGER.warning("%s: chain.check_inputs is False, but inputs are always checked before any task runs "
                       "(the checks are cheap); remove the key to silence this warning", source)
    return Config(values, sections=sections)


class _RepeatedKeyError(yaml.YAMLError):
    """A mapping key written twice in one YAML mapping."""

    def __init__(self, key, first_line: int, second_line: int):
        super().__init__(f"'{key}' written twice")
        self.key, self.first_line, self.second_line = key, first_line, second_line


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a key written twice in a mapping (at any level).

    PyYAML keeps the last value of a repeated key without a word: a section written twice would silently
    replace the first. Keys brought by a merge (``<<: *anchor``) may be overridden, as YAML intends.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: PyYAML reports it itself
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _RepeatedKeyError(key, first, line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_load(text: str):
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


_GLUED_QUOTED_KEY = re.compile(r"""^([ \t]*(?:-[ \t]+)?(?:"[^"\n]*"|'[^'\n]*')):(?=[^\s:])""", re.MULTILINE)
"""A line that starts with a quoted key glued to its value, as in the labwork's ``"sampler":"periodic"``."""

_GLUED_PLAIN_KEY = re.compile(r"""^([ \t]*[A-Za-z_][\w.]*):(?=["'])""", re.MULTILINE)
"""A line that starts with a plain key glued to a quoted value, as in the labwork's ``patterns:"mnt pente aspect"``."""


def _parse_yaml(text: str, path: Path):
    """Parse a configuration, reading the labwork's glued keys as spaced ones.

    ``"key":value`` is JSON, which YAML reads inside braces only; ``key:"value"`` is one plain scalar to YAML (a
    syntax error in a block of keys, a string when it is alone under its section). Lines starting with either
    form are parsed with a space after the ':', with a warning naming them; if that text is no valid YAML
    either, the original text's error is raised. A repeated key is always an error.
    """
    lines = sorted({text.count("\n", 0, match.start()) + 1
                    for pattern in (_GLUED_QUOTED_KEY, _GLUED_PLAIN_KEY) for match in pattern.finditer(text)})
    if lines:
        try:
            raw = _yaml_load(_GLUED_PLAIN_KEY.sub(r"\1: ", _GLUED_QUOTED_KEY.sub(r"\1: ", text)))
        except _RepeatedKeyError:
            raise
        except yaml.YAMLError:
            pass
        else:
            LOGGER.warning("%s: read 'key:value' as 'key: value' on line(s) %s (YAML needs a space after ':' "
                           "outside braces)", path, ", ".join(map(str, lines)))
            return raw
    return _yaml_load(text)


def read_utf8_text(path: str | Path, error: type[Exception], what: str) -> str:
    """The text of ``path``, which must be UTF-8 (a byte-order mark is accepted).

    Parameters
    ----------
    path
        The file to read.
    error
        Exception type raised when the file is not UTF-8 (:class:`ConfigError`, :class:`InputDataError`).
    what
        How the message names the file, e.g. ``"chain.nomenclature_path"``.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{what}: '{path}' is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as "
                    f"UTF-8, e.g. 'iconv -f LATIN1 -t UTF-8 {Path(path).name} > utf8_{Path(path).name}'") from None


def _yaml_error_line(exc: yaml.YAMLError):
    """The line and column (1-based) a YAML error is about, or None."""
    mark = getattr(exc, "problem_mark", None)
    if getattr(exc, "context", None) == "while scanning a simple key" and getattr(exc, "context_mark", None):
        mark = exc.context_mark  # the line of the would-be key, not the next line where PyYAML gave up
    return (mark.line + 1, mark.column + 1) if mark else None


def _cfg_opens_a_section(text: str) -> bool:
    """Whether ``text`` starts like iota2's ``.cfg`` syntax: a first entry ``name :`` opening a ``{``."""
    return re.match(r"\s*(?:#[^\n]*\s*)*(?:[A-Za-z_]\w*|'[^'\n]*'|\"[^\"\n]*\")\s*:\s*(?:#[^\n]*\s*)*\{",
                    text) is not None


def _parse_config_text(text: str, path: Path):
    """The raw mapping of a configuration file: iota2's ``.cfg`` syntax (:mod:`iota2.core.cfg_syntax`) for a
    ``.cfg`` file, YAML otherwise; a file in the other syntax than its name says is read too."""
    from iota2.core.cfg_syntax import load_cfg

    if path.suffix.lower() == ".cfg":
        try:
            return load_cfg(path, text)
        except ConfigError as cfg_error:
            try:
                raw = _parse_yaml(text, path)
            except yaml.YAMLError:
                raise cfg_error from None
            if not isinstance(raw, dict) or _cfg_opens_a_section(text):
                raise cfg_error from None
            LOGGER.info("%s: read as YAML (it is not in the .cfg syntax: %s)", path, cfg_error)
            return raw
    try:
        return _parse_yaml(text, path)
    except _RepeatedKeyError as exc:
        raise ConfigError(f"'{path}': '{exc.key}' is written twice, on lines {exc.first_line} and {exc.second_line} "
                          "(YAML would silently keep only the second); merge them into one") from None
    except yaml.YAMLError as exc:
        try:
            return load_cfg(path, text)
        except ConfigError:
            if _cfg_opens_a_section(text):
                raise
        position = _yaml_error_line(exc)
        where = f" at line {position[0]}, column {position[1]}" if position else ""
        hint = "; check the indentation, put a space after the ':' of each 'key: value', and quote values that " \
               "contain ': ' (files in iota2's 'section : { key : value }' syntax are read too: name them .cfg)"
        raise ConfigError(f"'{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}{hint}") from exc


def load_config(path: str | Path, sections: dict[str, Section] | None = None) -> Config:
    """Read and validate a configuration file, and read the class files it names.

    Parameters
    ----------
    path
        The configuration (UTF-8): YAML, or iota2's ``.cfg`` syntax (``chain : { output_path : '/out' }``, read by
        :mod:`iota2.core.cfg_syntax`) when its name ends with ``.cfg`` or it is not YAML. Both give the same
        validated configuration.
    sections
        The declared sections; default: the core sections and those of the installed plugins.

    Returns
    -------
    Config
        The validated configuration, every default filled in.

    Raises
    ------
    ConfigError
        When the file is missing, not UTF-8, not YAML nor ``.cfg`` (``file:line:col`` and what was expected),
        repeats a key, or fails :func:`validate`.
    InputDataError
        When the nomenclature or the colour table it names is missing or wrong
        (:mod:`iota2.core.nomenclature`).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file '{path}' does not exist; pass an existing YAML or .cfg file to -config")
    text = read_utf8_text(path, ConfigError, "configuration file")
    raw = _parse_config_text(text, path)
    config = validate(raw, sections, source=str(path))
    config.path = str(path.resolve())
    from iota2.core.nomenclature import read_color_table, read_nomenclature

    read_nomenclature(config["chain"].get("nomenclature_path"))  # a wrong class file fails now, before any worker
    read_color_table(config["chain"].get("color_table"))
    return config


def require(config: Config, keys: Iterable[tuple[str, str]], who: str) -> None:
    """Raise a :class:`ConfigError` when one of ``keys`` (section, key) is unset; ``who`` names the requirer."""
    for section, key in keys:
        if config[section].get(key) in (None, "", []):
            doc = config.sections[section].params[key].doc if section in config.sections else ""
            raise ConfigError(f"'{section}.{key}' is mandatory for {who}: {doc}")


def reference_markdown(sections: dict[str, Section] | None = None) -> str:
    """Return the configuration reference (Markdown), generated from the declared sections."""
    sections = sections if sections is not None else all_sections()
    lines = ["# Configuration reference", "",
             "Generated by `iota2 config-reference` from the declared defaults; do not edit by hand.", "",
             "Section and key names are also recognised in iota2's camelCase spelling and whatever the case and the "
             "underscores (`Sentinel2:` is the `Sentinel_2` section, `useGapFilling` is `use_gapfilling`); a name "
             "that matches none stops the run with the closest known name, and a key written in the wrong section "
             "with the name of its section.", "",
             "The file must be UTF-8. A section or key written twice (YAML would silently keep the last one) stops "
             "the run with the lines of both. The sections of iota2 features this version does not have "
             f"({', '.join(f'`{name}`' for name in NOT_AVAILABLE_SECTIONS)}) stop the run with a message saying so. "
             "Values are checked when the file is loaded, before anything starts; so are the nomenclature and the "
             "colour table it names.", ""]
    for name in sorted(sections):
        section = sections[name]
        lines += [f"## `{name}`", "", section.doc, "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        for key, param in section.params.items():
            default = "**mandatory**" if param.mandatory else f"`{param.default!r}`"
            doc = param.doc + (f" Allowed: {', '.join(map(str, param.choices))}." if param.choices else "")
            lines.append(f"| `{key}` | {param.type} | {default} | {doc} |")
        lines.append("")
    return "\n".join(lines)
