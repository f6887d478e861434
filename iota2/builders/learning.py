"""Learning task: one model per (region, run) from its samples file, with the configured learner."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from iota2.builders.samples import read_samples, samples_path
from iota2.core.config import Config
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.plugins import classifiers
from iota2.core.raster import atomic_output
from iota2.core.scheduler import task_threads

LOGGER = logging.getLogger(__name__)
DEFAULT_MODEL = "RandomForestClassifier"
FRAMEWORK_KEYS = {"model_type", "standardization", "cross_validation_folds", "cross_validation_grouped",
                  "cross_validation_parameters", "keyword_arguments"}


def model_path(output_path, region: str, run: int) -> Path:
    return Path(output_path) / "model" / f"model_{region}_seed_{run}.pkl"


def estimator_settings(config) -> tuple[str, dict]:
    """The learner name and its keyword arguments from ``scikit_models_parameters``."""
    section = config["scikit_models_parameters"]
    name = section.get("model_type") or DEFAULT_MODEL
    registry = classifiers()
    if name not in registry:
        raise ConfigError(f"scikit_models_parameters.model_type = {name!r} is not a registered classifier; "
                          f"available: {', '.join(sorted(registry))}")
    params = dict(section.get("keyword_arguments") or {})
    params.update({k: v for k, v in section.items() if k not in FRAMEWORK_KEYS})
    return name, params


def accepted_keywords(factory) -> frozenset[str] | None:
    """The keywords a registered learner accepts (None when its factory does not tell)."""
    if hasattr(factory, "parameter_names"):
        return frozenset(factory.parameter_names())
    estimator_class = getattr(factory, "estimator_class", factory if inspect.isclass(factory) else None)
    return frozenset(inspect.signature(estimator_class).parameters) if estimator_class is not None else None


def check_estimator_settings(config) -> tuple[str, dict, frozenset[str] | None]:
    """Check the learner name, its keywords and the keywords of its grid search without building it.

    Returns the name, the keywords and the accepted keyword names (None when unknown)."""
    name, params = estimator_settings(config)
    accepted = accepted_keywords(classifiers()[name])
    if accepted is not None:
        grid = config["scikit_models_parameters"].get("cross_validation_parameters") or {}
        for where, keys in (("scikit_models_parameters", params), ("scikit_models_parameters."
                                                                  "cross_validation_parameters", grid)):
            unknown = sorted(set(keys) - accepted)
            if unknown:
                raise ConfigError(f"{where}: {', '.join(unknown)} not accepted by {name}; its keywords are "
                                  f"{', '.join(sorted(accepted))}")
    return name, params, accepted


def build_estimator(config, run: int):
    """An unfitted estimator (a pipeline with a scaler when ``standardization`` is set)."""
    name, params, accepted = check_estimator_settings(config)
    factory = classifiers()[name]
    if accepted is not None:
        seed = config["arg_train"]["random_seed"]
        if "random_state" in accepted and "random_state" not in params:
            params["random_state"] = (seed or 0) + run
        if "n_jobs" in accepted and "n_jobs" not in params:
            params["n_jobs"] = task_threads()
    estimator = factory(**params)
    if config["scikit_models_parameters"]["standardization"]:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = make_pipeline(StandardScaler(), estimator)
    return estimator


def train_model(config: dict, region: str, run: int, output_path: str) -> None:
    """Fit the model of ``region`` and ``run``; write ``model/model_<R>_seed_<S>.pkl`` (+ ``.json`` summary)."""
    config = Config(config)
    field = config["chain"]["data_field"].lower()
    path = samples_path(output_path, region, run, config["arg_train"]["samples_format"])
    table, feature_names = read_samples(path, field)
    labels = table[field].to_numpy(np.int64)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise InputDataError(f"model of region {region}, run {run}: only class(es) {classes.tolist()} in {path}; a "
                             "classifier needs at least two classes: add ground truth of other classes in this region")
    features = table[feature_names].to_numpy(np.float32)
    estimator = build_estimator(config, run)
    section = config["scikit_models_parameters"]
    grid = section.get("cross_validation_parameters") or {}
    report = {}
    if grid:
        from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

        if section["cross_validation_grouped"]:
            folds = GroupKFold(n_splits=section["cross_validation_folds"])
        else:
            folds = StratifiedKFold(n_splits=section["cross_validation_folds"], shuffle=True,
                                    random_state=(config["arg_train"]["random_seed"] or 0) + run)
        prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
        search = GridSearchCV(estimator, {prefix + k: v for k, v in grid.items()}, cv=folds, refit=True)
        search.fit(features, labels, groups=table["originfid"].to_numpy() if section["cross_validation_grouped"]
                   else None)
        estimator = search.best_estimator_
        report = {"best_params": {k[len(prefix):]: v for k, v in search.best_params_.items()},
                  "best_score": float(search.best_score_),
                  "mean_test_score": [float(v) for v in search.cv_results_["mean_test_score"]],
                  "params": [{k[len(prefix):]: v for k, v in p.items()} for p in search.cv_results_["params"]]}
        cv_path = model_path(output_path, region, run).with_name(f"model_{region}_seed_{run}_cross_val_param.cv")
        _write_text(cv_path, json.dumps(report, indent=2, default=str))
    else:
        estimator.fit(features, labels)
    model = {"estimator": estimator, "feature_names": feature_names, "classes": classes.tolist(),
             "region": region, "run": run}
    target = model_path(output_path, region, run)
    with atomic_output(target) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
    _write_text(target.with_suffix(".json"), json.dumps(
        {"learner": type(estimator).__name__, "classes": classes.tolist(), "n_samples": int(len(labels)),
         "n_features": len(feature_names), "samples_per_class": pd.Series(labels).value_counts().sort_index()
         .to_dict(), **report}, indent=2, default=str))
    LOGGER.info("region %s run %d: %s fitted on %d samples x %d features", region, run, type(estimator).__name__,
                len(labels), len(feature_names))


def load_model(path: Path) -> dict:
    """Load a model file; kept in memory per process (keyed by path, size and modification time) so the
    chunks a worker classifies do not each unpickle the same forest."""
    stat = Path(path).stat()
    return _load_model(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_model(path: str, size: int, mtime_ns: int) -> dict:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - truncated, overwritten or from an incompatible version
        raise InputDataError(f"model {path} cannot be read ({type(exc).__name__}: {exc}); run the 'learning' "
                             "group again (chain.first_step: learning) to rewrite it") from exc


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
