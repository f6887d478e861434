"""The compiled forest kernel gives scikit-learn's probabilities for the learners it covers."""

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from iota2.builders.classification import predict
from iota2.plugins.sklearn_learner import SklearnLearner
from iota2.plugins.forest_kernel import BLOCK
from iota2.plugins.tree_ensemble import CompiledForest, compiled_forest


def _data(n_samples=600, n_features=12, n_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_classes, n_features))
    labels = rng.integers(0, n_classes, n_samples)
    features = (centres[labels] + rng.normal(0, 2, (n_samples, n_features))).astype(np.float32)
    return features, (labels + 1) * 10


def _reference(estimator, features):
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(final, "n_jobs"):
        final.n_jobs = 1  # trees summed in order, as the kernel does
    return estimator.predict_proba(features)


@pytest.mark.parametrize("estimator", [
    RandomForestClassifier(n_estimators=30, random_state=1),
    RandomForestClassifier(n_estimators=20, max_depth=4, min_samples_leaf=5, class_weight="balanced", random_state=2),
    ExtraTreesClassifier(n_estimators=25, random_state=3),
    DecisionTreeClassifier(random_state=4),
    make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=15, random_state=5)),
    RandomForestClassifier(n_estimators=10, max_leaf_nodes=25, random_state=6),
], ids=["rf", "rf-shallow-weighted", "extra-trees", "tree", "scaled-rf", "rf-best-first"])
def test_probabilities_match_scikit_learn(estimator):
    features, labels = _data()
    estimator.fit(features[:400], labels[:400])
    pixels, _ = _data(n_samples=5000, seed=9)
    compiled = CompiledForest.from_estimator(estimator)
    assert compiled is not None
    for threads in (1, 2):
        proba = compiled.predict_proba(pixels, threads)
        np.testing.assert_allclose(proba, _reference(estimator, pixels), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_pixels", [1, BLOCK - 1, BLOCK, BLOCK + 1, 7 * BLOCK + 3])
def test_partial_blocks_and_early_stops(n_pixels):
    """Pixel counts around the kernel's block size, and blocks that stop before the tree's depth (pixels that all
    reach shallow leaves, next to a deep branch) or never split (a tree that is a single leaf)."""
    rng = np.random.default_rng(n_pixels)
    features = rng.normal(0, 1, (2000, 3)).astype(np.float32)
    labels = np.where(features[:, 0] < 0, 1, 2 + (np.sin(40 * features[:, 1]) > 0))  # x0 < 0: a shallow pure leaf
    deep = RandomForestClassifier(n_estimators=12, random_state=0).fit(features, labels)
    stump = DecisionTreeClassifier().fit(np.zeros((10, 3), np.float32), np.arange(10) % 2)  # root is a leaf
    assert stump.tree_.max_depth == 0 and max(tree.tree_.max_depth for tree in deep.estimators_) > 8
    shallow = rng.normal(0, 1, (n_pixels, 3)).astype(np.float32)
    shallow[:, 0] = -np.abs(shallow[:, 0]) - 0.5  # every pixel at the shallow leaf of most trees
    mixed = rng.normal(0, 1, (n_pixels, 3)).astype(np.float32)
    for estimator in (deep, stump):
        compiled = CompiledForest.from_estimator(estimator)
        for pixels in (shallow, mixed):
            proba = compiled.predict_proba(pixels, 1)
            np.testing.assert_array_equal(compiled.predict_proba(pixels, 2), proba)
            np.testing.assert_allclose(proba, _reference(estimator, pixels), rtol=0, atol=1e-12)


def test_siblings_are_side_by_side_breadth_first():
    """The layout the kernel relies on: a node's right child is next to its left one, and a tree's nodes
    are stored level by level (best-first trees, whose ids are not in depth-first order, included)."""
    features, labels = _data()
    for forest in (RandomForestClassifier(n_estimators=5, random_state=0),
                   RandomForestClassifier(n_estimators=5, max_leaf_nodes=30, random_state=0)):
        forest.fit(features, labels)
        compiled = CompiledForest.from_estimator(forest)
        ends = list(compiled.roots[1:]) + [len(compiled.feature)]
        for tree, root, end in zip(forest.estimators_, compiled.roots, ends):
            structure = tree.tree_
            slots = np.arange(root, end)
            leaf = np.isinf(compiled.threshold[root:end])
            assert leaf.sum() == (structure.children_left == -1).sum()
            np.testing.assert_array_equal(compiled.child[root:end][leaf], slots[leaf])  # leaves stay
            children = compiled.child[root:end][~leaf]
            assert np.all(children > slots[~leaf]) and np.all(np.diff(children) == 2)  # pairs, in parent order


def test_values_on_thresholds_follow_the_split_rule():
    """Feature values equal to a split threshold (and one float32 step around it) go the way scikit-learn sends
    them: thresholds are float64 midpoints, features float32."""
    features, labels = _data(n_samples=300, n_features=4, n_classes=3)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, labels)
    thresholds = np.concatenate([tree.tree_.threshold[tree.tree_.children_left != -1] for tree in forest.estimators_])
    values = thresholds.astype(np.float32)
    candidates = np.concatenate([values, np.nextafter(values, np.float32(np.inf)),
                                 np.nextafter(values, np.float32(-np.inf))])
    rng = np.random.default_rng(0)
    pixels = rng.choice(candidates, size=(20000, 4)).astype(np.float32)
    np.testing.assert_allclose(CompiledForest.from_estimator(forest).predict_proba(pixels), _reference(forest, pixels),
                               rtol=0, atol=1e-12)


def test_unsupported_learners_are_left_to_scikit_learn():
    features, labels = _data(n_samples=200)
    assert CompiledForest.from_estimator(SVC(probability=True).fit(features, labels)) is None
    multi_output = RandomForestClassifier(n_estimators=5).fit(features, np.stack([labels, labels[::-1]], axis=1))
    assert CompiledForest.from_estimator(multi_output) is None


def test_compiled_once_per_estimator():
    features, labels = _data(n_samples=200)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    assert compiled_forest(forest) is compiled_forest(forest)


def test_predict_falls_back_on_nan_features():
    """NaN features bypass the kernel (which would send them right) and get scikit-learn's own handling."""
    features, labels = _data(n_samples=400)
    features[::7, 0] = np.nan  # trees trained with missing values learn where NaN goes
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, labels)
    model = SklearnLearner.from_estimator(forest, [f"f{i}" for i in range(features.shape[1])])
    pixels, _ = _data(n_samples=1000, seed=3)
    pixels[::3, 0] = np.nan
    classes = model.classes_.tolist()
    result_labels, confidence, proba = predict(model, pixels, classes)
    reference = _reference(forest, pixels)
    np.testing.assert_allclose(proba, reference.astype(np.float32), atol=1e-6)
    assert np.array_equal(result_labels, np.asarray(classes)[reference.argmax(axis=1)])
    assert np.array_equal(confidence, np.rint(reference.max(axis=1) * 100).astype(np.uint8))


def test_a_failing_kernel_falls_back_to_scikit_learn(monkeypatch, caplog):
    """If numba cannot compile or load the kernel (no writable cache folder, broken install), classification goes
    through scikit-learn with one warning instead of failing."""
    from iota2.plugins import forest_kernel, tree_ensemble

    def broken(*args):
        raise RuntimeError("cannot cache function: no locator available")

    features, labels = _data(n_samples=300)
    forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(features, labels)
    model = SklearnLearner.from_estimator(forest, [f"f{i}" for i in range(features.shape[1])])
    monkeypatch.setattr(forest_kernel, "forest_proba", broken)
    tree_ensemble._kernel.cache_clear()
    try:
        assert CompiledForest.from_estimator(forest) is None
        result_labels, _, proba = predict(model, features, model.classes_.tolist(), compiled=True)
        assert "not available" in caplog.text and "RuntimeError" in caplog.text
        np.testing.assert_allclose(proba, _reference(forest, features).astype(np.float32), atol=1e-6)
    finally:
        monkeypatch.undo()
        tree_ensemble._kernel.cache_clear()
    assert CompiledForest.from_estimator(forest) is not None


def test_predict_selected_rows_in_batches_equals_predicting_their_copy(monkeypatch):
    """A chunk's pixels inside the common mask are predicted by index, batch by batch, without copying the whole
    chunk's features: the same labels, confidences and probabilities as predicting the copied rows."""
    from iota2.builders import classification

    features, labels = _data(n_samples=400)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, labels)
    model = SklearnLearner.from_estimator(forest, [f"f{i}" for i in range(features.shape[1])])
    pixels, _ = _data(n_samples=3000, seed=5)
    rows = np.flatnonzero(np.random.default_rng(1).random(len(pixels)) < 0.6)
    monkeypatch.setattr(classification, "COMPILED_BATCH", 257)  # several batches, the last one partial
    all_labels = [5] + model.classes_.tolist() + [999]  # labels the model never saw get probability 0
    by_index = predict(model, pixels, all_labels, rows=rows)
    copied = predict(model, pixels[rows], all_labels)
    for left, right in zip(by_index, copied):
        np.testing.assert_array_equal(left, right)
    assert len(by_index[0]) == len(rows) and set(by_index[0]) <= set(model.classes_)
