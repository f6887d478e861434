"""YAML configuration: sections and keys with types and defaults, strict validation, clear errors.

A configuration is a YAML mapping of sections (``chain``, ``arg_train``, ...) to mappings of keys.
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
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from iota2.core.errors import ConfigError

LOGGER = logging.getLogger(__name__)

_MISSING = object()
MANDATORY = _MISSING


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


def _yyyymmdd(value):
    if value in (None, ""):
        return None
    if not re.fullmatch(r"\d{8}", str(value)):
        return "must be a date written YYYYMMDD, e.g. '20180101'"
    return None


CORE_SECTIONS: list[Section] = [
    Section("chain", {
        "output_path": Param("str", MANDATORY, "Root folder of every output of the run.", nullable=False),
        "remove_output_path": Param("bool", False, "Delete the content of output_path before a run that starts at "
                                    "the 'init' group (never on -restart)."),
        "check_inputs": Param("bool", True, "Check ground truth, regions and tiles before any task runs."),
        "nomenclature_path": Param("str", None, "Text file with one 'name:label' line per class (read at start; labels it leaves out are named by their number, with a warning)."),
        "color_table": Param("str", None, "Text file with one 'label R G B' line per class (read at start; labels it leaves out get a default colour, with a warning)."),
        "list_tile": Param("str_or_list", MANDATORY, "Tiles to process, e.g. 'T31TCJ T31TDJ'.", nullable=False),
        "ground_truth": Param("str", None, "Polygon file (any OGR format) with the class field data_field."),
        "data_field": Param("str", None, "Integer class field of the ground truth (labels > 0)."),
        "region_path": Param("str", None, "Optional polygon file of eco-regions; one model is learnt per region."),
        "region_field": Param("str", "region", "Region attribute of region_path."),
        "spatial_resolution": Param("any", None, "Output pixel size in CRS units (number, or [x, y]); default: "
                                    "the sensor's native resolution (10 m for Sentinel-2)."),
        "proj": Param("str", None, "Output CRS, e.g. 'EPSG:2154'; default: the CRS of the first tile's data. "
                      "Tiles and ground truth in another CRS are reprojected (and a message says so)."),
        "first_step": Param("str", None, "First group of steps to run (e.g. 'sampling'); default: the first group."),
        "last_step": Param("str", None, "Last group of steps to run (e.g. 'learning'); default: the last group."),
        "log_file_level": Param("str", "INFO", "Level of the per-task log files.",
                                choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        "remove_tmp_files": Param("bool", False, "Delete intermediate per-chunk files once merged."),
        "compression_algorithm": Param("str", "ZSTD", "GeoTIFF compression of outputs.",
                                       choices=("ZSTD", "LZW", "DEFLATE", "NONE")),
    }, "General input/output settings."),
    Section("arg_train", {
        "runs": Param("int", 1, "Number of independent learn/validation splits (seeds).", check=_positive),
        "ratio": Param("float", 0.5, "Share of polygons of each (region, class) put in the learning set.",
                       check=_ratio),
        "random_seed": Param("int", None, "Base seed of the polygon split and of sample selection; run S uses "
                             "random_seed + S. None: a fresh seed each run (not reproducible)."),
        "split_ground_truth": Param("bool", True, "If False every polygon is used for both learning and validation."),
        "cloud_threshold": Param("int", 0, "Keep ground-truth pixels seen clear at least this many times."),
        "classifier": Param("str", None, "OTB classifier name (rf, libsvm, ...). Needs the OTB backend; the native "
                            "equivalent is scikit_models_parameters.model_type."),
        "otb_classifier_options": Param("any", None, "Options of the OTB classifier."),
        "sample_selection": Param("dict", {"sampler": "random", "strategy": "all"},
                                  "Pixel selection inside learning polygons: sampler (random|periodic), strategy "
                                  "(all|constant|byclass|percent|total|smallest) and their 'strategy.*' keys, "
                                  "'rand' seed, 'per_model' overrides."),
        "features": Param("list", ["NDVI", "NDWI", "Brightness"], "Spectral indices computed per date; [] for none."),
        "deep_learning_parameters": Param("dict", None, "Deep-learning settings (dl_name, epochs, ...)."),
        "enable_autocontext": Param("bool", False, "Contextual (autocontext) classification."),
        "autocontext_iterations": Param("int", 3, "Number of autocontext iterations.", check=_positive),
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
        "cross_validation_folds": Param("int", 5, "Folds of the grid search.", check=_positive),
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
    Section("builders", {
        "builders_class_name": Param("list", ["i2_classification"], "Builders to run, in order."),
        "builders_paths": Param("str", None, "Folder of user builders (not supported: install a plugin)."),
    }, "Workflow selection."),
    Section("task_retry_limits", {
        "allowed_retry": Param("int", 0, "Times a failed task is retried before the run stops.",
                               check=lambda v: None if v >= 0 else "must be >= 0"),
        "maximum_ram": Param("float", 180.0, "RAM cap (GB) when retrying with more resources."),
        "maximum_cpu": Param("int", 40, "CPU cap when retrying with more resources."),
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
        return value
    if kind == "str":
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


def validate(raw: dict, sections: dict[str, Section] | None = None, source: str = "the configuration") -> Config:
    """Validate a raw mapping and return a :class:`Config` with every default filled in."""
    sections = sections if sections is not None else all_sections()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a YAML mapping of sections (chain:, arg_train:, ...)")
    aliases = _section_aliases(sections)
    values: dict[str, dict] = {}
    for raw_name, content in raw.items():
        name = aliases.get(raw_name) or resolve_name(str(raw_name), sections)
        if name not in sections:
            owners = [sec for sec, decl in sections.items() if raw_name in decl.params]
            if owners and not isinstance(content, dict):
                raise ConfigError(f"{source}: '{raw_name}' is a key of section '{owners[0]}'; write it indented "
                                  f"under '{owners[0]}:'")
            raise ConfigError(f"{source}: unknown section '{raw_name}'{_hint(str(raw_name), sections)} "
                              f"(known sections: {', '.join(sorted(sections))})")
        if content is None:
            content = {}
        if not isinstance(content, dict):
            raise ConfigError(f"{source}: section '{raw_name}' must contain 'key: value' lines")
        declared = sections[name].params
        section_values = values.setdefault(name, {})
        for raw_key, value in content.items():
            key = resolve_name(str(raw_key), declared)
            if key not in declared:
                if name in OPEN_SECTIONS:
                    section_values[str(raw_key)] = value
                    continue
                raise ConfigError(f"{source}: unknown key '{name}.{raw_key}'{_hint(str(raw_key), declared)} "
                                  f"(keys of '{name}': {', '.join(sorted(declared))})")
            section_values[key] = _check_type(f"{name}.{key}", declared[key], value)
    for name, section in sections.items():
        section_values = values.setdefault(name, {})
        for key, param in section.params.items():
            if key not in section_values and not param.mandatory:
                section_values[key] = copy.deepcopy(param.default)
    for name, section in sections.items():
        for key, param in section.params.items():
            if param.mandatory and values[name].get(key) is None:
                raise ConfigError(f"{source}: mandatory key '{name}.{key}' is missing: {param.doc}")
    return Config(values, sections=sections)


_GLUED_QUOTED_KEY = re.compile(r"""^(\s*(?:-\s+)?(?:"[^"\n]*"|'[^'\n]*')):(?=[^\s:])""", re.MULTILINE)
"""A line that starts with a quoted key glued to its value, as in the labwork's ``"sampler":"periodic"``."""


def _load_with_spaced_quoted_keys(text: str, path: Path):
    """``"key":value`` is JSON, and YAML reads it inside braces only; in an indented block it is a syntax
    error. Parse again with a space after such keys; return None if that does not help either."""
    lines = [text.count("\n", 0, match.start()) + 1 for match in _GLUED_QUOTED_KEY.finditer(text)]
    if not lines:
        return None
    try:
        raw = yaml.safe_load(_GLUED_QUOTED_KEY.sub(r"\1: ", text))
    except yaml.YAMLError:
        return None
    LOGGER.warning("%s: read '\"key\":value' as '\"key\": value' on line(s) %s (YAML needs a space after ':' "
                   "outside braces)", path, ", ".join(map(str, lines)))
    return raw


def load_config(path: str | Path, sections: dict[str, Section] | None = None) -> Config:
    """Read and validate a YAML configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file '{path}' does not exist; pass an existing YAML file to -config")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raw = _load_with_spaced_quoted_keys(text, path)
        if raw is None:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            hint = ("; iota2's older '.cfg' syntax (section : { key : value }) is not read: write the same sections "
                    "in YAML, 'section:' then indented 'key: value' lines") if path.suffix == ".cfg" else \
                "; check the indentation, put a space after the ':' of each 'key: value', and quote values that " \
                "contain ': '"
            raise ConfigError(f"'{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}{hint}") from exc
    config = validate(raw, sections, source=str(path))
    config.path = str(path.resolve())
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
             "that matches none stops the run with the closest known name.", ""]
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
