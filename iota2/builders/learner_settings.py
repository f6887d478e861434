"""The learner named in ``scikit_models_parameters`` and its keywords, checked without importing the learner
library nor the learning step (the command line checks them before any worker starts)."""

from __future__ import annotations

import inspect

from iota2.core.errors import ConfigError
from iota2.core.plugins import classifiers

DEFAULT_MODEL = "RandomForestClassifier"
FRAMEWORK_KEYS = {"model_type", "standardization", "cross_validation_folds", "cross_validation_grouped",
                  "cross_validation_parameters", "keyword_arguments"}


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
