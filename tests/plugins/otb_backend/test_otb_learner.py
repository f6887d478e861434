"""The OTB learner: the learner protocol (check_learner) with OTB's rf and libsvm, configuration errors, and the
probabilities built from OTB's label and confidence."""

from __future__ import annotations

import numpy as np
import pytest
from otb_testing import require_otb

from iota2.core.errors import ConfigError
from iota2.core.learner_checks import _samples, check_learner
from iota2.plugins.otb_backend.learner import OtbLearner, parse_options


@pytest.fixture(scope="module")
def otb():
    return require_otb()


def settings(classifier, options=None):
    return OtbLearner.settings_from_config({"arg_train": {"classifier": classifier,
                                                          "otb_classifier_options": options}})


@pytest.mark.parametrize("classifier, options", [("rf", {"classifier.rf.nbtrees": 20, "classifier.rf.max": 8}),
                                                 ("libsvm", {"classifier.libsvm.k": "rbf"}),
                                                 ("knn", {"classifier.knn.k": 5})])
def test_check_learner(otb, tmp_path, classifier, options):
    check_learner(OtbLearner, settings(classifier, options), tmp_path)


def test_libsvm_fit_predict_matches_otb_image_classifier(otb, tmp_path):
    samples, features, labels = _samples(tmp_path, "sqlite", seed=3)
    learner = OtbLearner(settings("libsvm"))
    report = learner.fit(samples)
    assert report["otb_options"]["classifier.libsvm.prob"] is True and report["n_samples"] == len(labels)
    proba = learner.predict_proba(features, 1)
    assert proba.shape == (len(features), len(learner.classes_))
    assert (learner.classes_[proba.argmax(axis=1)] == labels).mean() > 0.9
    otb_labels, confidence = learner.predict_label_confidence(features)
    np.testing.assert_array_equal(learner.classes_[proba.argmax(axis=1)], otb_labels)
    top = np.maximum(confidence, 1 / len(learner.classes_) + 1e-6)
    np.testing.assert_allclose(proba.max(axis=1), top)
    assert 0.3 < confidence.mean() <= 1  # OTB's libsvm probability of the chosen class
    files = learner.save(tmp_path / "model", "model_1_seed_0")
    assert sorted(files) == ["model_1_seed_0.txt", "model_1_seed_0_stats.xml"]
    stats = (tmp_path / "model" / "model_1_seed_0_stats.xml").read_text()
    assert stats.count("<StatisticVector") == 2 * len(learner.feature_names)
    # non-finite features do not break the classification
    probe = features[:3].copy()
    probe[0, 0] = np.nan
    assert np.isfinite(learner.predict_proba(probe)).all()


def test_rf_default_grows_every_tree(otb, tmp_path):
    samples, _, _ = _samples(tmp_path, "sqlite", seed=3)
    learner = OtbLearner(settings("rf", {"classifier.rf.nbtrees": 7}))
    assert learner.fit(samples)["otb_options"]["classifier.rf.acc"] == 0
    learner.save(tmp_path, "m")
    assert (tmp_path / "m.txt").read_text().count("ntrees: 7") == 1


def test_sharkrf_and_unknown_names_list_the_available_classifiers(otb):
    with pytest.raises(ConfigError, match=r"'sharkrf' is not a classifier of the installed OTB \(Debian's OTB is "
                                          r"built without Shark\); available: libsvm, boost, dt, ann, bayes, rf, knn"):
        settings("sharkrf")
    with pytest.raises(ConfigError, match="'forest' is not a classifier.*available: libsvm"):
        settings("forest")


def test_unknown_option_lists_the_classifier_keys(otb):
    with pytest.raises(ConfigError, match=r"'classifier.rf.trees' is not an option of the OTB classifier rf; its "
                                          r"options: classifier.rf.max, .*classifier.rf.nbtrees"):
        settings("rf", {"classifier.rf.trees": 10})
    with pytest.raises(ConfigError, match=r"otb_classifier_options.classifier.rf.nbtrees: OTB refuses 'many'"):
        settings("rf", {"classifier.rf.nbtrees": "many"})


def test_options_as_the_2020_string():
    assert parse_options(" -classifier.rf.min 5 -classifier.rf.max 25 ") == {"classifier.rf.min": "5",
                                                                            "classifier.rf.max": "25"}
    assert parse_options({"classifier.ann.sizes": [10, 5]}) == {"classifier.ann.sizes": [10, 5]}
    with pytest.raises(ConfigError, match="otb_classifier_options"):
        parse_options("5 -classifier.rf.max")


def test_boost_refuses_more_than_two_classes(otb, tmp_path):
    samples, _, _ = _samples(tmp_path, "sqlite", seed=3)
    with pytest.raises(ConfigError, match="boost .* separates two classes only"):
        OtbLearner(settings("boost")).fit(samples)
