"""Model files: written in formats that run no code on load (skops, numpy arrays), checked against the digests
recorded at training, and refused with the step to run again when modified."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from iota2.builders.classification import predict
from iota2.builders.learning import forest_path, load_model, model_path, save_model, summary_path
from iota2.core.errors import InputDataError
from iota2.plugins.sklearn_learner import SklearnLearner

FEATURES = [f"f{i}" for i in range(6)]


def fitted(kind: str):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, len(FEATURES))).astype(np.float32) * [1, 10, 100, 1, 1, 1]
    labels = np.where(features[:, 0] + features[:, 1] / 10 > 0, 2, 5) + (features[:, 2] > 50)
    estimator = {"forest": RandomForestClassifier(20, random_state=0),
                 "scaled_forest": make_pipeline(StandardScaler(), RandomForestClassifier(20, random_state=0)),
                 "logistic": LogisticRegression(max_iter=500)}[kind]
    estimator.fit(features, labels)
    return estimator, features.astype(np.float32), sorted(set(labels.tolist()))


def written(tmp_path, kind: str):
    estimator, features, classes = fitted(kind)
    path = model_path(tmp_path, "1", 0)
    save_model(path, SklearnLearner.from_estimator(estimator, FEATURES), {"region": "1", "run": 0})
    return path, estimator, features, classes


@pytest.mark.parametrize("kind", ["forest", "scaled_forest", "logistic"])
def test_a_saved_model_predicts_as_the_fitted_one(tmp_path, kind):
    path, estimator, features, classes = written(tmp_path, kind)
    assert path.name == "model_1_seed_0.skops" and zipfile.is_zipfile(path)
    assert forest_path(path).exists() == (kind != "logistic")
    summary = json.loads(summary_path(path).read_text())
    assert summary["feature_names"] == FEATURES and set(summary["files"]) == {
        p.name for p in tmp_path.joinpath("model").iterdir() if p.suffix != ".json"}
    assert summary["learner"] == "sklearn" and summary["classes"] == classes
    assert (summary["region"], summary["run"]) == ("1", 0)
    model = load_model(path)
    assert isinstance(model, SklearnLearner)
    assert model.feature_names == FEATURES and model.classes_.tolist() == classes
    if kind != "logistic":  # applied from the node arrays: the scikit-learn object is not read
        assert model.forest_ is not None and model._estimator is None
    labels, confidence, proba = predict(model, features, classes)
    expected = estimator.predict_proba(features)
    assert np.allclose(proba, expected, atol=1e-6)
    assert np.array_equal(labels, np.asarray(classes)[expected.argmax(axis=1)])
    features[:3, 0] = np.nan  # the estimator's own predict_proba, read from the skops file on demand
    if kind != "logistic":
        assert model._estimator is None
        labels, _, proba = predict(model, features, classes)
        assert type(model._estimator) is type(estimator)
        np.testing.assert_allclose(proba, estimator.predict_proba(features), atol=1e-6)


class Payload:
    """Creates ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _record(path, data: bytes):
    """Write ``data`` as ``path`` and record its digest, as someone who can write the output folder could."""
    import hashlib

    path.write_bytes(data)
    summary = json.loads(summary_path(model_path(path.parent.parent, "1", 0)).read_text())
    summary["files"][path.name] = hashlib.sha256(data).hexdigest()
    summary_path(model_path(path.parent.parent, "1", 0)).write_text(json.dumps(summary))


def test_the_payload_would_run_if_unpickled(tmp_path):
    """The crafted file of the tests below does create its marker when loaded with pickle."""
    pickle.loads(pickle.dumps(Payload(tmp_path / "marker")))
    assert (tmp_path / "marker").exists()


@pytest.mark.parametrize("digest_updated", [False, True])
def test_a_malicious_pickle_in_place_of_a_model_is_refused_and_never_run(tmp_path, digest_updated):
    path, *_ = written(tmp_path, "logistic")
    marker = tmp_path / "marker"
    data = pickle.dumps({"estimator": Payload(marker), "feature_names": FEATURES, "classes": [2, 3, 5, 6]})
    if digest_updated:
        _record(path, data)
        reason = "cannot be read"
    else:
        path.write_bytes(data)
        reason = "was modified after training"
    with pytest.raises(InputDataError, match=rf"model {path} {reason}.*run the 'learning' group again"):
        load_model(path)
    assert not marker.exists()


def test_a_forest_file_holding_a_pickle_is_refused_and_never_run(tmp_path):
    path, *_ = written(tmp_path, "forest")
    marker = tmp_path / "marker"
    npz = forest_path(path)
    with np.load(npz) as data:
        arrays = dict(data)
    arrays["feature"] = np.array([Payload(marker)], dtype=object)
    with open(tmp_path / "evil.npz", "wb") as handle:
        np.savez(handle, **arrays)
    _record(npz, (tmp_path / "evil.npz").read_bytes())
    with pytest.raises(InputDataError, match=rf"model {npz} cannot be read.*learning"):
        load_model(path)
    assert not marker.exists()


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path):
    import skops.io

    path, estimator, *_ = written(tmp_path, "logistic")
    _record(path, skops.io.dumps({"estimator": estimator, "extra": Payload(tmp_path / "marker")}))
    with pytest.raises(InputDataError, match=r"holds types no installed learner declares \(.*Payload\)"):
        load_model(path)
    assert not (tmp_path / "marker").exists()


def test_a_tampered_forest_is_refused_even_with_its_digest_updated(tmp_path):
    path, *_ = written(tmp_path, "forest")
    npz = forest_path(path)
    with np.load(npz) as data:
        arrays = dict(data)
    arrays["child"] = arrays["child"] + 10**6  # indices out of the node arrays
    with open(tmp_path / "bad.npz", "wb") as handle:
        np.savez(handle, **arrays)
    _record(npz, (tmp_path / "bad.npz").read_bytes())
    with pytest.raises(InputDataError, match="cannot be read .*out of range"):
        load_model(path)


def test_a_model_of_a_learner_that_is_not_installed_is_refused(tmp_path):
    path, *_ = written(tmp_path, "forest")
    summary = json.loads(summary_path(path).read_text())
    summary["learner"] = "no_such_learner"
    summary_path(path).write_text(json.dumps(summary))
    with pytest.raises(InputDataError, match=r"learner 'no_such_learner', which is not installed \(installed: .*sklearn"
                                             r".*install the plugin"):
        load_model(path)


def test_a_summary_without_learner_name_is_read_by_the_default_learner(tmp_path):
    """Summaries of versions that did not name the learner hold scikit-learn models."""
    path, estimator, features, classes = written(tmp_path, "logistic")
    summary = json.loads(summary_path(path).read_text())
    del summary["learner"]
    summary_path(path).write_text(json.dumps(summary))
    model = load_model(path)
    assert isinstance(model, SklearnLearner)
    np.testing.assert_allclose(model.predict_proba(features), estimator.predict_proba(features))


def test_a_model_without_its_summary_is_refused(tmp_path):
    path, *_ = written(tmp_path, "forest")
    summary_path(path).unlink()
    with pytest.raises(InputDataError, match=rf"model {path} has no readable summary.*learning"):
        load_model(path)


def test_load_speed_against_pickle(tmp_path):
    """The forest path reads arrays: not slower than unpickling the same forest (measured, printed)."""
    import time

    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    features = rng.random((3500, 52), dtype=np.float32)
    forest = RandomForestClassifier(100, max_depth=25, min_samples_leaf=5, random_state=0).fit(
        features, rng.integers(1, 8, 3500))
    path = model_path(tmp_path, "1", 0)
    save_model(path, SklearnLearner.from_estimator(forest, [f"f{i}" for i in range(52)]), {"region": "1", "run": 0})
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"estimator": forest}, protocol=pickle.HIGHEST_PROTOCOL))
    from iota2.core.learner import _load_model

    ours = theirs = np.inf
    for attempt in range(3):
        _load_model.cache_clear()
        start = time.perf_counter()
        load_model(path)
        ours = min(ours, time.perf_counter() - start)
        start = time.perf_counter()
        pickle.loads((tmp_path / "model.pkl").read_bytes())
        theirs = min(theirs, time.perf_counter() - start)
    print(f"load: forest arrays {ours:.3f} s, pickle {theirs:.3f} s")
    assert ours < max(3 * theirs, 0.2)
