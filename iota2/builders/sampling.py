"""Sampling: learn/validation split of ground-truth polygons and selection of training pixels.

Everything here is a pure function on pandas / geopandas / numpy objects; the caller reads the vectors,
rasterises the learning polygons and writes the results.

* :func:`split_polygons` assigns each ground-truth polygon to the learning or the validation set, by polygon
  count and stratified by (region, class), with one random generator per run (:func:`run_seed`).
* :func:`validate_sample_selection` checks and normalises the ``arg_train.sample_selection`` mapping, whose keys
  are those of OTB's SampleSelection application (``sampler``, ``strategy``, ``strategy.constant.nb``, ...).
* :func:`params_for_model` resolves the ``per_model`` overrides for one model.
* :func:`select_samples` selects training pixels among the candidate pixels of one model.
* :func:`class_statistics_table` and :func:`write_class_statistics` build and write the per-class, per-region
  count of selected samples (``class_statistics_seed<S>_learn.csv``).
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from iota2.core.errors import ConfigError
from iota2.core.raster import atomic_output

if TYPE_CHECKING:  # pandas is imported where it is used: checking the configuration does not need it
    import pandas as pd

LOGGER = logging.getLogger(__name__)

LEARN = "learn"
VALIDATION = "validation"
BOTH = "both"

SAMPLERS = ("random", "periodic")
STRATEGIES = ("all", "constant", "byclass", "percent", "total", "smallest")

#: Defaults of the normalised ``sample_selection`` mapping (``None``: no default, required by some strategies).
SAMPLE_SELECTION_DEFAULTS: dict[str, Any] = {
    "sampler": "random",
    "sampler.periodic.jitter": 0,
    "strategy": "all",
    "strategy.constant.nb": None,
    "strategy.byclass.in": None,
    "strategy.percent.p": 0.5,
    "strategy.total.v": 1000,
    "rand": None,
}

#: OTB SampleSelection parameters that iota2 fills itself; a user may not set them.
FORBIDDEN_KEYS = ("outrates", "in", "mask", "vec", "out", "instats", "field", "layer", "inxml")

#: Keys accepted and ignored (OTB resource hints with no meaning here).
IGNORED_KEYS = ("ram",)

_PER_MODEL_KEYS = ("per_model", "per_models")
_PREFIX = "arg_train.sample_selection"
_OPTION_OF = {"strategy.constant.nb": ("strategy", "constant"), "strategy.byclass.in": ("strategy", "byclass"),
              "strategy.percent.p": ("strategy", "percent"), "strategy.total.v": ("strategy", "total"),
              "sampler.periodic.jitter": ("sampler", "periodic")}
"""The keys that only one strategy or sampler reads."""


# ---------------------------------------------------------------------------------------------------------------------
# learn / validation split of polygons
# ---------------------------------------------------------------------------------------------------------------------

#: Stream numbers mixed into the seed of each random draw, so that the split and the selection of one run never
#: share a stream.
SPLIT_STREAM = 0
SELECTION_STREAM = 1
LEARNING_STREAM = 2


def run_seed(seed: int | None, run: int, stream: int, key: str = "") -> np.random.SeedSequence:
    """The seed of one random draw: the base seed, the run, the kind of draw and a key (e.g. a region).

    Every (seed, run, stream, key) gives an independent stream (numpy's :class:`~numpy.random.SeedSequence`
    hashes them together), so run ``r`` of seed ``s`` shares nothing with run ``r - 1`` of seed ``s + 1``,
    and two regions or two runs never reuse one stream.

    Parameters
    ----------
    seed
        ``arg_train.random_seed`` (or ``sample_selection.rand``); ``None`` gives fresh entropy at each call
        (not reproducible).
    run
        Run number.
    stream
        :data:`SPLIT_STREAM`, :data:`SELECTION_STREAM` or :data:`LEARNING_STREAM`.
    key
        Further key, e.g. the region (model) name.

    Returns
    -------
    numpy.random.SeedSequence
    """
    if seed is None:
        return np.random.SeedSequence()
    seed = int(seed)
    encoded = list(str(key).encode("utf-8"))
    return np.random.SeedSequence([abs(seed), int(seed < 0), int(run), int(stream), len(encoded), *encoded])


def learn_count(n_polygons: int, ratio: float) -> int:
    """Number of learning polygons of a (region, class) group of ``n_polygons >= 2``.

    ``round(n * ratio)`` (Python's ``round``, so 2.5 gives 2), at least 1 and at most ``n - 1``, so that the
    class has learning and validation polygons whatever the ratio.
    """
    return min(n_polygons - 1, max(1, round(n_polygons * ratio)))


def split_polygons(polygons: pd.DataFrame, class_field: str, region_field: str, ratio: float, seed: int | None,
                   run: int, split_ground_truth: bool = True) -> np.ndarray:
    """Assign every ground-truth polygon to the learning or the validation set of one run.

    One random generator is made per run from ``(seed, run)`` (:func:`run_seed`) and shared by the
    (region, class) groups, visited in sorted (region, class) order. For each group of ``n`` polygons:

    * ``n == 1``: the polygon serves both sets (iota2 duplicates it), marked ``"both"``;
    * otherwise :func:`learn_count` polygons (``round(n * ratio)``, at least 1, at most ``n - 1``) are drawn
      for learning among the sorted polygon ids, the others go to validation.

    Runs are independent draws, and two classes with the same number of polygons are not split alike.

    The polygon identifier is the ``originfid`` column. Rows sharing an ``originfid`` (pieces of one polygon
    clipped by a tile or a cloud mask) count as one polygon and always fall in the same set.

    Parameters
    ----------
    polygons
        Ground-truth polygons (a GeoDataFrame or any DataFrame) with columns ``class_field``, ``region_field``
        and ``originfid``.
    class_field
        Column holding the class label.
    region_field
        Column holding the region name.
    ratio
        Share of polygons used for learning, in ``(0, 1]`` (``arg_train.ratio``).
    seed
        ``arg_train.random_seed``; ``None`` draws a different split at every call.
    run
        Run (seed) number.
    split_ground_truth
        ``arg_train.split_ground_truth``; when ``False`` every polygon is used for both sets.

    Returns
    -------
    numpy.ndarray
        One string per row of ``polygons``, in row order: ``"learn"``, ``"validation"`` or ``"both"``.

    Raises
    ------
    ConfigError
        If ``ratio`` is outside ``(0, 1]``.
    ValueError
        If a required column is missing.
    """
    import pandas as pd

    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ConfigError(f"arg_train.ratio = {ratio!r} is not allowed; use a number in (0, 1], e.g. 0.7")
    missing = [name for name in (class_field, region_field, "originfid") if name not in polygons.columns]
    if missing:
        raise ValueError(f"the ground-truth polygons lack the column(s) {', '.join(missing)}")
    assignment = np.full(len(polygons), BOTH, dtype="<U10")
    if not split_ground_truth or len(polygons) == 0:
        return assignment
    keys = pd.DataFrame({"region": polygons[region_field].to_numpy(), "label": polygons[class_field].to_numpy(),
                         "fid": polygons["originfid"].to_numpy()})
    rng = np.random.default_rng(run_seed(seed, run, SPLIT_STREAM))
    for _, group in keys.groupby(["region", "label"], sort=True, dropna=False):
        positions = group.index.to_numpy()  # 0..len-1 because ``keys`` has a fresh RangeIndex
        fids = group["fid"].to_numpy()
        sorted_ids = np.unique(fids)
        if len(sorted_ids) == 1:
            continue  # already "both"
        drawn = rng.permutation(len(sorted_ids))[:learn_count(len(sorted_ids), ratio)]
        is_learn = np.isin(fids, sorted_ids[drawn])
        assignment[positions] = np.where(is_learn, LEARN, VALIDATION)
    return assignment


# ---------------------------------------------------------------------------------------------------------------------
# sample_selection parameters
# ---------------------------------------------------------------------------------------------------------------------

def _flatten(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into OTB's dotted key names (``{"strategy.constant": {"nb": 5}}``)."""
    flat: dict[str, Any] = {}
    for raw_key, value in params.items():
        key = f"{prefix}{str(raw_key).strip()}"
        if isinstance(value, Mapping) and key not in _PER_MODEL_KEYS:
            flat.update(_flatten(value, prefix=key + "."))
        else:
            flat[key] = value
    return flat


def _hint(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _as_int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where} = {value!r} is not allowed; use an integer >= {minimum}")
    return int(value)


def _as_fraction(where: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{where} must be a number in (0, 1], e.g. 0.1 for 10 % of each class, got {value!r}")
    if not 0 < value <= 1:
        raise ConfigError(f"{where} = {value!r} is not allowed; use a number in (0, 1], e.g. 0.1 for 10 % "
                          "of each class")
    return float(value)


def _as_choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ConfigError(f"{where} = {value!r} is not allowed; use one of {', '.join(map(repr, choices))}"
                          f"{_hint(str(value).lower(), list(choices))}")
    return value.strip().lower()


def _validate_flat(params: Mapping, prefix: str, allow_per_model: bool, warn: bool = True) -> dict[str, Any]:
    """Check one ``sample_selection`` mapping (or one ``per_model`` entry) and fill its defaults."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of OTB SampleSelection parameters "
                          f"(sampler: random, strategy: all, ...), got {params!r}")
    flat = _flatten(params)
    allowed = list(SAMPLE_SELECTION_DEFAULTS) + list(IGNORED_KEYS)
    allowed += list(_PER_MODEL_KEYS) if allow_per_model else ["target_model"]
    normalised = dict(SAMPLE_SELECTION_DEFAULTS)
    for key, value in flat.items():
        where = f"{prefix}.{key}"
        if key.lower() in FORBIDDEN_KEYS:
            raise ConfigError(f"{where} must not be set: iota2 sets the SampleSelection parameters "
                              f"{', '.join(FORBIDDEN_KEYS)} itself; remove it")
        if key not in allowed:
            raise ConfigError(f"unknown key {where}{_hint(key, allowed)}; allowed keys are "
                              f"{', '.join(k for k in allowed if k not in _PER_MODEL_KEYS[1:])}")
        if key in IGNORED_KEYS or key in _PER_MODEL_KEYS or key == "target_model":
            continue
        if value is None:
            continue
        if key == "sampler":
            normalised[key] = _as_choice(where, value, SAMPLERS)
        elif key == "strategy":
            normalised[key] = _as_choice(where, value, STRATEGIES)
        elif key == "sampler.periodic.jitter":
            normalised[key] = _as_int(where, value, minimum=0)
        elif key in ("strategy.constant.nb", "strategy.total.v"):
            normalised[key] = _as_int(where, value, minimum=1)
        elif key == "rand":
            normalised[key] = _as_int(where, value, minimum=0)
        elif key == "strategy.percent.p":
            normalised[key] = _as_fraction(where, value)
        elif key == "strategy.byclass.in":
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise ConfigError(f"{where} must be the path of a CSV file with one 'label,count' line per class, "
                                  f"got {value!r}")
            path = Path(value).expanduser()
            if not path.is_file():
                raise ConfigError(f"{where} = '{value}' does not exist; give the path of a CSV file with one "
                                  "'label,count' line per class")
            normalised[key] = str(path)
    strategy = normalised["strategy"]
    for key, (option, choice) in _OPTION_OF.items():
        if warn and normalised[key] != SAMPLE_SELECTION_DEFAULTS[key] and normalised[option] != choice:
            LOGGER.warning("%s.%s is set but %s is '%s', not '%s': it is not used", prefix, key, option,
                           normalised[option], choice)
    if strategy == "constant" and normalised["strategy.constant.nb"] is None:
        raise ConfigError(f"{prefix}.strategy.constant.nb is mandatory with strategy 'constant'; "
                          f"set the number of samples per class, e.g. \"strategy.constant.nb\": 500")
    if strategy == "byclass" and normalised["strategy.byclass.in"] is None:
        raise ConfigError(f"{prefix}.strategy.byclass.in is mandatory with strategy 'byclass'; set the path of a "
                          "CSV file with one 'label,count' line per class")
    if not allow_per_model:
        if "target_model" not in flat or flat["target_model"] is None or str(flat["target_model"]).strip() == "":
            raise ConfigError(f"{prefix}.target_model is mandatory: the name of the model (region) the entry "
                              "applies to")
        normalised["target_model"] = str(flat["target_model"]).strip()
    return normalised


def validate_sample_selection(params: Mapping | None, warn: bool = True) -> dict[str, Any]:
    """Check ``arg_train.sample_selection`` and return it normalised, with every default filled.

    Keys are OTB SampleSelection parameter names, dots included (``"strategy.constant.nb": 500`` in YAML);
    nested mappings are flattened into dotted names. Recognised keys:

    ``sampler``
        ``random`` (default) or ``periodic``.
    ``sampler.periodic.jitter``
        Integer >= 0 (default 0): random phase shift of the periodic sampler.
    ``strategy``
        ``all`` (default), ``constant``, ``byclass``, ``percent``, ``total`` or ``smallest``.
    ``strategy.constant.nb``
        Integer >= 1, samples per class (mandatory with ``constant``).
    ``strategy.byclass.in``
        Path of a CSV file of ``label,count`` lines (mandatory with ``byclass``).
    ``strategy.percent.p``
        Fraction of each class in ``(0, 1]`` (default 0.5).
    ``strategy.total.v``
        Integer >= 1, total number of samples split in proportion to the classes (default 1000).
    ``rand``
        Integer >= 0, random seed overriding ``chain.random_seed`` for the selection.
    ``per_model`` (or ``per_models``)
        List of mappings, each with a ``target_model`` and its own selection keys, replacing the whole
        mapping for that model.
    ``ram``
        Accepted and ignored.

    Parameters
    ----------
    params
        The user's mapping; ``None`` means every default.
    warn
        Log a warning for each key that only another strategy or sampler reads. The configuration check at
        start warns; the selection tasks validate again silently, so that each warning is given once.

    Returns
    -------
    dict
        Keys of :data:`SAMPLE_SELECTION_DEFAULTS` (values normalised: lower-case names, ints, float) plus
        ``per_model``, a list of normalised entries each with a string ``target_model``. Validating a
        normalised mapping again returns an equal mapping.

    Raises
    ------
    ConfigError
        On an unknown, forbidden or ill-typed key, naming it as ``arg_train.sample_selection.<key>``.
    """
    params = {} if params is None else params
    normalised = _validate_flat(params, _PREFIX, allow_per_model=True, warn=warn)
    entries: list[Any] = []
    for key in _PER_MODEL_KEYS:
        value = params.get(key) if isinstance(params, Mapping) else None
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_PREFIX}.{key} must be a list of mappings, each with a 'target_model' and its "
                              f"selection keys, got {value!r}")
        entries.extend((key, index, entry) for index, entry in enumerate(value))
    normalised["per_model"] = [_validate_flat(entry, f"{_PREFIX}.{key}[{index}]", allow_per_model=False, warn=warn)
                               for key, index, entry in entries]
    return normalised


def _model_matches(target: str, model: str) -> bool:
    """Whether a ``target_model`` applies to ``model``; sub-models of huge regions (``1f2``) match ``1``."""
    return model == target or re.fullmatch(re.escape(target) + r"f\d+", model) is not None


def params_for_model(params: Mapping, model: str) -> dict[str, Any]:
    """The selection parameters of one model: its ``per_model`` entry if any, else the global mapping.

    Parameters
    ----------
    params
        A ``sample_selection`` mapping, raw or normalised by :func:`validate_sample_selection`.
    model
        Model (region) name, e.g. ``"1"``; a sub-model ``"1f2"`` of a split region uses the entry of ``"1"``.

    Returns
    -------
    dict
        The last entry whose ``target_model`` matches, without ``target_model``; otherwise ``params`` without
        ``per_model`` / ``per_models``.
    """
    model = str(model)
    chosen: Mapping | None = None
    for key in _PER_MODEL_KEYS:
        entries = params.get(key) or []
        if isinstance(entries, Mapping):
            entries = [entries]
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("target_model") is not None \
                    and _model_matches(str(entry["target_model"]).strip(), model):
                chosen = entry
    source = chosen if chosen is not None else params
    return {key: value for key, value in source.items() if key not in _PER_MODEL_KEYS and key != "target_model"}


# ---------------------------------------------------------------------------------------------------------------------
# pixel selection
# ---------------------------------------------------------------------------------------------------------------------

def _label_key(value: Any) -> str:
    """A comparable text form of a class label (``11``, ``11.0``, ``np.int64(11)`` and ``"11"`` agree)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


def check_byclass_labels(params: Mapping, labels: list[int]) -> None:
    """Warn about ground-truth classes that a ``byclass`` file (of the selection or of a ``per_model`` entry)
    leaves out, since they get no learning samples, and about labels of the file not in the ground truth."""
    for entry in [params, *params.get("per_model", [])]:
        if entry["strategy"] != "byclass":
            continue
        counts = read_byclass_counts(entry["strategy.byclass.in"])
        known = {_label_key(label) for label in labels}
        missing = [str(label) for label in labels if _label_key(label) not in counts]
        unknown = sorted(set(counts) - known)
        where = f"{_PREFIX}.strategy.byclass.in ({entry['strategy.byclass.in']})"
        if missing:
            LOGGER.warning("%s has no line for class(es) %s of the ground truth: they get no learning samples "
                           "and cannot appear in the map", where, ", ".join(missing))
        if unknown:
            LOGGER.warning("%s lists label(s) %s that are not in the ground truth", where, ", ".join(unknown))


def read_byclass_counts(path: str | Path) -> dict[str, int]:
    """Read a ``strategy.byclass.in`` file: one ``label,count`` line per class.

    Separators may be a comma, a semicolon, a tab or spaces; blank lines, ``#`` comments and a header line
    (whose count is not a number) are skipped.

    Returns
    -------
    dict
        Label (as text, see the selection) to required count.

    Raises
    ------
    ConfigError
        If a line cannot be read or a count is negative.
    """
    where = f"{_PREFIX}.strategy.byclass.in"
    counts: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [line.strip() for line in handle]
    for number, line in enumerate(rows, start=1):
        if not line or line.startswith("#"):
            continue
        fields = [field.strip() for field in re.split(r"[,;\t ]+", line) if field.strip()]
        if len(fields) < 2:
            raise ConfigError(f"{where}: line {number} of '{path}' is {line!r}; write 'label,count'")
        label, count_text = fields[0], fields[1]
        try:
            count = int(float(count_text))
        except ValueError:
            if not counts and all(not r or r.startswith("#") for r in rows[:number - 1]):
                continue  # header line
            raise ConfigError(f"{where}: line {number} of '{path}' has count {count_text!r}; write 'label,count' "
                              "with an integer count") from None
        if count < 0:
            raise ConfigError(f"{where}: line {number} of '{path}' asks for {count} samples; counts must be >= 0")
        counts[_label_key(label)] = count
    return counts


def _largest_remainder(total: int, sizes: dict[Any, int]) -> dict[Any, int]:
    """Split ``total`` proportionally to ``sizes`` with integer parts summing exactly to ``total``."""
    grand = sum(sizes.values())
    if grand == 0:
        return {label: 0 for label in sizes}
    total = min(total, grand)
    quotas = {label: total * size / grand for label, size in sizes.items()}
    parts = {label: int(math.floor(quota)) for label, quota in quotas.items()}
    missing = total - sum(parts.values())
    # ties broken by label order so the result is deterministic
    order = sorted(sizes, key=lambda label: (-(quotas[label] - parts[label]), _label_key(label)))
    for label in order[:missing]:
        parts[label] += 1
    return parts


def required_samples(sizes: dict[Any, int], params: Mapping) -> dict[Any, int]:
    """Number of samples to select per class, from the strategy, capped by what each class offers.

    Parameters
    ----------
    sizes
        Available candidate pixels per class label.
    params
        Normalised selection parameters (:func:`validate_sample_selection`).

    Returns
    -------
    dict
        Label to required count (``<= sizes[label]``). A class asked for more than it has (``constant``,
        ``byclass``) gets all its pixels and a warning is logged.
    """
    strategy = params["strategy"]
    if strategy == "all":
        wanted = dict(sizes)
    elif strategy == "smallest":
        smallest = min((size for size in sizes.values() if size > 0), default=0)
        wanted = {label: smallest for label in sizes}
    elif strategy == "constant":
        wanted = {label: params["strategy.constant.nb"] for label in sizes}
    elif strategy == "byclass":
        per_class = read_byclass_counts(params["strategy.byclass.in"])
        wanted = {label: per_class.get(_label_key(label), 0) for label in sizes}
    elif strategy == "percent":
        fraction = params["strategy.percent.p"]
        wanted = {label: int(math.floor(0.5 + fraction * size)) for label, size in sizes.items()}
    elif strategy == "total":
        wanted = _largest_remainder(params["strategy.total.v"], sizes)
    else:  # pragma: no cover - validated before
        raise ConfigError(f"{_PREFIX}.strategy = {strategy!r} is not allowed; use one of {', '.join(STRATEGIES)}")
    required = {}
    for label, size in sizes.items():
        count = wanted[label]
        if count > size:
            LOGGER.warning("sample selection: class %s has %d candidate pixels but strategy '%s' asks for %d; "
                           "all %d are taken", label, size, strategy, count, size)
            count = size
        required[label] = count
    return required


def _periodic_positions(available: int, required: int, jitter: int, rng: np.random.Generator) -> np.ndarray:
    """Evenly spread positions: ``i`` is kept when ``floor((i+1+o)*rate) > floor((i+o)*rate)``.

    ``rate = required / available`` and ``o`` is a random phase in ``[0, jitter]`` (0 without jitter); integer
    arithmetic makes the count exactly ``required``.
    """
    if required >= available:
        return np.arange(available)
    if required == 0:
        return np.empty(0, dtype=np.int64)
    offset = int(rng.integers(0, jitter + 1)) if jitter > 0 else 0
    index = np.arange(available, dtype=np.int64) + offset
    keep = ((index + 1) * required) // available > (index * required) // available
    return np.flatnonzero(keep)


def select_samples(candidates: pd.DataFrame, class_field: str, params: Mapping | None,
                   seed: int | np.random.SeedSequence | None) -> pd.DataFrame:
    """Select training pixels among the candidate pixels of one model, with OTB SampleSelection semantics.

    Parameters
    ----------
    candidates
        One row per pixel whose centre lies in a learning polygon of the model, with at least the columns
        ``class_field``, ``originfid``, ``tile``, ``row`` and ``col``, in a deterministic order (tile, row, col);
        the periodic sampler follows this order.
    class_field
        Column holding the class label.
    params
        The model's ``sample_selection`` mapping (already resolved with :func:`params_for_model`); it is
        validated with :func:`validate_sample_selection` (silently: keys of other strategies were warned about
        at start).
    seed
        Random seed or :class:`~numpy.random.SeedSequence` (the chain passes :func:`run_seed` of the run and
        model); the mapping's ``rand`` overrides it; ``None`` is not reproducible. One generator serves every
        class, in label order.

    Returns
    -------
    pandas.DataFrame
        The selected rows of ``candidates`` (same columns and index), in candidate order. The same inputs and
        seed give the same rows.

    Raises
    ------
    ConfigError
        On invalid parameters.
    ValueError
        If ``class_field`` is not a column of ``candidates``.
    """
    import pandas as pd

    normalised = validate_sample_selection(params, warn=False)
    if class_field not in candidates.columns:
        raise ValueError(f"the candidate pixels lack the class column {class_field!r}")
    if len(candidates) == 0:
        return candidates.iloc[:0].copy()
    if normalised["rand"] is not None:
        seed = normalised["rand"]
    rng = np.random.default_rng(seed)
    labels = candidates[class_field].to_numpy()
    codes, uniques = pd.factorize(labels, sort=True)
    sizes = {label: int(count) for label, count in zip(uniques.tolist(), np.bincount(codes, minlength=len(uniques)))}
    required = required_samples(sizes, normalised)
    periodic = normalised["sampler"] == "periodic"
    jitter = normalised["sampler.periodic.jitter"]
    chosen = []
    for code, label in enumerate(uniques.tolist()):
        positions = np.flatnonzero(codes == code)
        count = required[label]
        if count >= len(positions):
            chosen.append(positions)
        elif periodic:
            chosen.append(positions[_periodic_positions(len(positions), count, jitter, rng)])
        elif count > 0:
            chosen.append(np.sort(rng.choice(positions, size=count, replace=False)))
    selected = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
    return candidates.iloc[selected].copy()


# ---------------------------------------------------------------------------------------------------------------------
# class statistics report
# ---------------------------------------------------------------------------------------------------------------------

def _region_sort_key(name: str) -> tuple:
    return (0, int(name), name) if re.fullmatch(r"\d+", name) else (1, 0, name)


def class_statistics_table(counts: Mapping[Any, Mapping[int, int]], labels: list[int],
                           class_names: Mapping[int, str]) -> pd.DataFrame:
    """Selected samples per class and region, the labwork's ``class_statistics_seed<S>_learn.csv``.

    Parameters
    ----------
    counts
        Region name to {class label: number of selected samples}.
    labels
        Every label of the nomenclature; classes with no sample get a row of zeros. Labels found in ``counts``
        but missing here get a row too.
    class_names
        Label to class name (the label itself is used when a name is missing).

    Returns
    -------
    pandas.DataFrame
        Columns ``Class``, ``Label``, ``Region <name>`` for each region (numeric names in numeric order) and
        ``Total``; one row per label in ascending order, then a ``Total`` row (empty ``Label``) with the column
        sums.
    """
    import pandas as pd

    regions = sorted((str(region) for region in counts), key=_region_sort_key)
    by_region = {str(region): {int(label): int(value) for label, value in per_class.items()}
                 for region, per_class in counts.items()}
    all_labels = sorted({int(label) for label in labels}
                        | {label for per_class in by_region.values() for label in per_class})
    rows = []
    for label in all_labels:
        row: dict[str, Any] = {"Class": class_names.get(label, str(label)), "Label": label}
        for region in regions:
            row[f"Region {region}"] = by_region[region].get(label, 0)
        row["Total"] = sum(by_region[region].get(label, 0) for region in regions)
        rows.append(row)
    columns = ["Class", "Label"] + [f"Region {region}" for region in regions] + ["Total"]
    table = pd.DataFrame(rows, columns=columns)
    total_row: dict[str, Any] = {"Class": "Total", "Label": ""}
    for column in columns[2:]:
        total_row[column] = int(table[column].sum()) if len(table) else 0
    table = pd.concat([table.astype({"Label": object}), pd.DataFrame([total_row], columns=columns)],
                      ignore_index=True)
    for column in columns[2:]:
        table[column] = table[column].astype(np.int64)
    return table


def write_class_statistics(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a class statistics table as CSV (comma separated, UTF-8, no index), atomically.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    return Path(path)
