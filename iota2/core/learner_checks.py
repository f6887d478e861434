"""Conformance check of a learner (:class:`iota2.core.learner.Learner`), like scikit-learn's ``check_estimator``.

A plugin author runs it in the plugin's tests::

    from iota2.core.learner_checks import check_learner

    def test_my_learner_follows_the_protocol(tmp_path):
        check_learner(MyLearner, {"epochs": 5}, tmp_path)

It writes small real samples files (SQLite with the chain's schema, and Parquet), fits the learner on them and
checks what the chain relies on; a failed point raises :class:`AssertionError` naming it.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from pathlib import Path

import numpy as np

from iota2.core.learner import Learner, LearningSamples, Resources, load_model, save_model

CHECK_CLASSES = (3, 11, 7)
"""Labels of the check's samples, not in increasing order and not 0..n-1: ``classes_`` must come out sorted."""


def make_samples(n_per_class: int = 60, n_features: int = 6, seed: int = 0, classes=CHECK_CLASSES,
                 n_polygons_per_class: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Separable float32 features, labels, polygon ids (``originfid``) and feature names of a small samples table.

    Each class is a Gaussian blob around its own centre; rows of one polygon are neighbours in feature space."""
    rng = np.random.default_rng(seed)
    names = [f"sentinel2_b{i + 1}_2020010{i % 9 + 1}" for i in range(n_features)]
    features, labels, polygons = [], [], []
    for index, label in enumerate(classes):
        centre = rng.normal(0, 4, n_features)
        features.append(centre + rng.normal(0, 1, (n_per_class, n_features)))
        labels.append(np.full(n_per_class, label, np.int64))
        polygons.append(index * n_polygons_per_class + np.arange(n_per_class) % n_polygons_per_class + 1)
    order = rng.permutation(n_per_class * len(classes))
    return (np.concatenate(features)[order].astype(np.float32), np.concatenate(labels)[order],
            np.concatenate(polygons)[order].astype(np.int64), names)


def write_samples_file(path: Path, features: np.ndarray, labels: np.ndarray, polygons: np.ndarray,
                       feature_names: list[str], label_field: str = "code", samples_format: str = "sqlite",
                       region: str = "1") -> Path:
    """Write a samples file with the chain's schema (the class field, ``region``, ``originfid``, ``tile_o``, the
    features as float32, points; see :func:`iota2.builders.samples.merge_region_samples`).

    Parameters
    ----------
    path
        The file to write (``.sqlite`` or ``.parquet``).
    features, labels, polygons
        ``(n, n_features)`` values, ``(n,)`` labels and ``(n,)`` polygon ids.
    feature_names
        Column names of the features.
    label_field
        The class column (lower case, as the chain writes it).
    samples_format
        ``"sqlite"`` (a SQLite layer ``output`` with point geometries) or ``"parquet"`` (``x``, ``y`` columns).
    region
        The ``region`` column.
    """
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    table = pd.DataFrame({label_field: np.asarray(labels, np.int64), "region": np.full(n, str(region)),
                          "originfid": np.asarray(polygons, np.int64), "tile_o": np.full(n, "T31TCJ")})
    table = pd.concat([table, pd.DataFrame(np.asarray(features, np.float32), columns=list(feature_names))], axis=1)
    xs = 500_000.0 + 10.0 * np.arange(n)
    ys = np.full(n, 4_800_000.0)
    if samples_format == "parquet":
        table["x"], table["y"] = xs, ys
        table.to_parquet(path, index=False)
    else:
        frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(xs, ys), crs="EPSG:32631")
        pyogrio.write_dataframe(frame, path, driver="SQLite", layer="output")
    return path


def _samples(folder: Path, samples_format: str, seed: int | None, region: str = "1", run: int = 0,
             data_seed: int = 0) -> tuple[LearningSamples, np.ndarray, np.ndarray]:
    features, labels, polygons, names = make_samples(seed=data_seed)
    suffix = "sqlite" if samples_format == "sqlite" else "parquet"
    path = write_samples_file(folder / "learningSamples" / f"Samples_region_{region}_seed{run}_learn.{suffix}",
                              features, labels, polygons, names, "code", samples_format, region)
    samples = LearningSamples(path=path, samples_format=samples_format, label_field="code", feature_names=names,
                              region=region, run=run, seed=seed, report_folder=folder / "model")
    samples.report_folder.mkdir(parents=True, exist_ok=True)
    return samples, features, labels


def _fail(point: str, detail: str) -> AssertionError:
    return AssertionError(f"check_learner: {point}: {detail}")


def _check(condition: bool, point: str, detail: str) -> None:
    if not condition:
        raise _fail(point, detail)


def _proba(learner: Learner, features: np.ndarray, point: str) -> np.ndarray:
    try:
        proba = np.asarray(learner.predict_proba(features, 1))
    except Exception as exc:  # noqa: BLE001 - reported as the failed point
        raise _fail(point, f"predict_proba raised {type(exc).__name__}: {exc}") from exc
    return proba


def check_learner(learner_class: type[Learner], settings: dict, folder: str | Path | None = None,
                  atol: float = 1e-5) -> None:
    """Check that ``learner_class`` built from ``settings`` follows the learner protocol.

    Points checked, in order (each failure names its point):

    * ``class attributes``: a non-empty ``name``; ``selected_by``, ``settings_from_config``, ``load`` are
      classmethods; ``resources()`` returns a :class:`iota2.core.learner.Resources` with ``threads >= 1``;
    * ``fit``: on a SQLite samples file with the chain's schema, returns a JSON-able dict;
    * ``classes_``: sorted int64 labels of the samples (given unsorted); ``feature_names``: the samples' feature
      names in order;
    * ``predict_proba``: shape ``(n, n_classes)``, finite, in [0, 1], rows summing to 1 within ``atol``, float32 or
      float64; an empty block gives ``(0, n_classes)`` (NaN features are the learner's to handle: the scikit-learn
      learner leaves them to its estimator);
    * ``fit quality``: on well-separated classes, at least 90 % of the training rows are labelled right;
    * ``save``: returns ``{file name: sha256}`` of files written into the folder, each named ``<stem>...``;
    * ``load``: through :func:`iota2.core.learner.load_model` (the summary written by
      :func:`iota2.core.learner.save_model`), an instance of the class with the same ``classes_`` and
      ``feature_names`` and identical probabilities;
    * ``modified file``: each model file changed after saving is refused with an ``InputDataError`` when the model is
      loaded or first used (on a block with a NaN feature, which makes the scikit-learn learner read its estimator);
    * ``determinism``: a second fit with the same seed gives the same probabilities (within ``atol``);
    * ``parquet``: fitting from a Parquet samples file gives the probabilities of the SQLite one.

    Parameters
    ----------
    learner_class
        The learner class (what a plugin registers).
    settings
        Its settings (what :meth:`Learner.settings_from_config` returns), small enough to fit in seconds.
    folder
        Where to write the samples and models (a temporary folder when None).
    atol
        Tolerance of the probability comparisons.

    Raises
    ------
    AssertionError
        The first point that fails, named in the message.
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="iota2_check_learner_") as tmp:
            return check_learner(learner_class, settings, Path(tmp), atol)
    folder = Path(folder)
    from iota2.core.errors import InputDataError

    _check(isinstance(getattr(learner_class, "name", None), str) and learner_class.name != "",
           "class attributes", "the class has no name (the registry name written in model summaries)")
    for method in ("selected_by", "settings_from_config", "load"):
        _check(inspect.ismethod(getattr(learner_class, method, None)) and
               getattr(learner_class, method).__self__ is learner_class, "class attributes",
               f"{method} must be a classmethod")
    learner = learner_class(dict(settings))
    resources = learner.resources()
    _check(isinstance(resources, Resources) and isinstance(resources.threads, int) and resources.threads >= 1,
           "class attributes", f"resources() must return Resources with threads >= 1, got {resources!r}")

    samples, features, labels = _samples(folder / "sqlite", "sqlite", seed=7)
    try:
        report = learner.fit(samples)
    except Exception as exc:  # noqa: BLE001 - reported as the failed point
        raise _fail("fit", f"raised {type(exc).__name__}: {exc}") from exc
    _check(isinstance(report, dict), "fit", f"must return a dict (a report for the model summary), got "
                                            f"{type(report).__name__}")
    try:
        json.dumps(report, default=str)
    except (TypeError, ValueError) as exc:
        raise _fail("fit", f"its report is not JSON-able ({exc})") from exc

    expected_classes = np.array(sorted(set(labels.tolist())), np.int64)
    classes = np.asarray(getattr(learner, "classes_", None))
    _check(classes.dtype == np.int64 and np.array_equal(classes, expected_classes), "classes_",
           f"expected the sorted int64 labels {expected_classes.tolist()}, got {classes!r}")
    _check(list(getattr(learner, "feature_names", [])) == samples.feature_names, "feature_names",
           f"expected {samples.feature_names}, got {getattr(learner, 'feature_names', None)!r}")

    proba = _proba(learner, features, "predict_proba")
    n_classes = len(expected_classes)
    _check(proba.shape == (len(features), n_classes), "predict_proba",
           f"shape {proba.shape}, expected (n, n_classes) = {(len(features), n_classes)}")
    _check(proba.dtype in (np.float32, np.float64), "predict_proba", f"dtype {proba.dtype}, expected float32/64")
    _check(bool(np.isfinite(proba).all()) and proba.min() >= -atol and proba.max() <= 1 + atol, "predict_proba",
           "probabilities must be finite and in [0, 1]")
    sums = proba.sum(axis=1)
    _check(bool(np.allclose(sums, 1.0, atol=atol)), "predict_proba",
           f"rows must sum to 1 (found sums from {sums.min():.6g} to {sums.max():.6g})")
    right = float((expected_classes[proba.argmax(axis=1)] == labels).mean())
    _check(right >= 0.9, "fit quality", f"only {right:.0%} of the training rows of well-separated classes are "
                                        "labelled right: the columns of predict_proba may not follow classes_")
    empty = _proba(learner, features[:0], "predict_proba of no rows")
    _check(empty.shape == (0, n_classes), "predict_proba of no rows", f"shape {empty.shape}, expected "
                                                                       f"(0, {n_classes})")

    model_path = folder / "model" / "model_1_seed_0.skops"
    try:
        summary_file = save_model(model_path, learner, {"region": "1", "run": 0, **report})
    except Exception as exc:  # noqa: BLE001 - reported as the failed point
        raise _fail("save", f"raised {type(exc).__name__}: {exc}") from exc
    files = json.loads(summary_file.read_text(encoding="utf-8"))["files"]
    _check(isinstance(files, dict) and len(files) > 0, "save", "must return {file name: sha256} of its files")
    from iota2.core.learner import file_digest

    for name, digest in files.items():
        path = model_path.parent / name
        _check(name.startswith(model_path.stem) and path.is_file(), "save",
               f"{name} is not a file named after the stem {model_path.stem!r} in {model_path.parent}")
        _check(file_digest(path) == digest, "save", f"the digest returned for {name} is not its sha256")

    load_model.cache_clear()
    try:
        loaded = load_model(model_path)
    except Exception as exc:  # noqa: BLE001 - reported as the failed point
        raise _fail("load", f"raised {type(exc).__name__}: {exc}") from exc
    _check(type(loaded) is learner_class, "load", f"load_model gave a {type(loaded).__name__}, not a "
                                                  f"{learner_class.__name__}")
    _check(np.array_equal(np.asarray(loaded.classes_), expected_classes) and
           list(loaded.feature_names) == samples.feature_names, "load", "classes_ or feature_names differ after load")
    again = _proba(loaded, features, "load")
    _check(again.shape == proba.shape and bool(np.allclose(again, proba, atol=atol, rtol=0)), "load",
           "the loaded model's probabilities differ from the fitted one's "
           f"(largest difference {np.abs(again - proba).max() if again.shape == proba.shape else 'shape'})")

    probe = features[:5].copy()
    probe[0, 0] = np.nan  # the scikit-learn learner reads its estimator file for such rows only
    for name in sorted(files):
        changed = model_path.parent / name
        original = changed.read_bytes()
        changed.write_bytes(original + b"\0")
        load_model.cache_clear()
        try:
            load_model(model_path).predict_proba(probe, 1)
        except InputDataError:
            pass
        except Exception as exc:  # noqa: BLE001 - reported as the failed point
            raise _fail("modified file", f"a modified {name} must raise InputDataError when loaded or used, got "
                                         f"{type(exc).__name__}: {exc}") from exc
        else:
            raise _fail("modified file", f"{name} changed after saving was loaded and used; load must check the "
                                         "digests of summary['files'] (iota2.core.learner.check_file)")
        finally:
            changed.write_bytes(original)
            load_model.cache_clear()

    twin = learner_class(dict(settings))
    twin.fit(samples)
    same = _proba(twin, features, "determinism")
    _check(bool(np.allclose(same, proba, atol=atol, rtol=0)), "determinism",
           "two fits with the same seed give different probabilities; seed every random draw with samples.seed")

    parquet, _, _ = _samples(folder / "parquet", "parquet", seed=7)
    from_parquet = learner_class(dict(settings))
    try:
        from_parquet.fit(parquet)
    except Exception as exc:  # noqa: BLE001 - reported as the failed point
        raise _fail("parquet", f"fit from a Parquet samples file raised {type(exc).__name__}: {exc}") from exc
    _check(bool(np.allclose(_proba(from_parquet, features, "parquet"), proba, atol=atol, rtol=0)), "parquet",
           "fitting from the same samples as Parquet gives other probabilities than from SQLite")
    return None
