"""Per-object statistics: values against a direct computation per segment, chunks combined = whole tile, both
kernels, files, the table's columns and ``obia.stats_used`` checks."""

from __future__ import annotations

import numpy as np
import pytest

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.zonal_stats import (STATISTICS, ZonalPartials, check_statistics, combine, partial_statistics,
                                    read_partials, statistics_table, write_partials)

ALL = list(STATISTICS)


def blocks(rows=60, cols=50, n=3, seed=0, sparse=False):
    """Segment ids (irregular blocks, some 0) and features with a level per segment plus noise."""
    rng = np.random.default_rng(seed)
    row_edges = np.sort(rng.choice(np.arange(1, rows), 7, replace=False))
    col_edges = np.sort(rng.choice(np.arange(1, cols), 6, replace=False))
    ids = (np.searchsorted(row_edges, np.arange(rows), side="right")[:, None] * 10
           + np.searchsorted(col_edges, np.arange(cols), side="right")[None, :] + 1).astype(np.uint32)
    ids[rng.random((rows, cols)) < 0.05] = 0
    if sparse:  # ids far apart: the rank path
        ids = np.where(ids > 0, ids.astype(np.uint64) * 50_000_000 % (2**32 - 1) + 1, 0).astype(np.uint32)
    features = (ids[..., None] % 97 * 100.0 + rng.normal(0, 5, (rows, cols, n))).astype(np.float32)
    return ids, features


def direct(ids, features, mask=None):
    """Statistics per segment by a plain loop."""
    keep = ids != 0 if mask is None else (ids != 0) & mask
    out = {}
    for segment in np.unique(ids[keep]):
        values = features[keep & (ids == segment)].astype(np.float64)
        out[int(segment)] = {"mean": values.mean(0), "std": values.std(0), "min": values.min(0),
                             "max": values.max(0), "count": np.full(values.shape[1], len(values))}
    return out


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_statistics_match_a_direct_computation(compiled, sparse):
    ids, features = blocks(sparse=sparse)
    mask = np.random.default_rng(1).random(ids.shape) > 0.1
    partials = partial_statistics(ids, features, ALL, mask=mask, compiled=compiled)
    expected = direct(ids, features, mask)
    assert partials.segments.tolist() == sorted(expected)
    assert partials.segments.dtype == np.uint32 and np.all(np.diff(partials.segments.astype(np.int64)) > 0)
    segments, values, names = statistics_table(partials, ["a", "b", "c"], ALL)
    assert names[:5] == ["a_mean", "a_count", "a_min", "a_max", "a_std"] and names[5] == "b_mean"
    assert values.dtype == np.float32 and values.shape == (len(expected), 15)
    for row, segment in enumerate(segments):
        for column, name in enumerate(names):
            label, stat = name.split("_")
            np.testing.assert_allclose(values[row, column], expected[int(segment)][stat]["abc".index(label)],
                                       rtol=1e-6, atol=1e-4, err_msg=name)


def test_chunks_combined_give_the_whole_tile():
    ids, features = blocks(rows=64, cols=48, n=4)
    whole = partial_statistics(ids, features, ALL)
    parts = [partial_statistics(ids[r:r + 16, c:c + 24], features[r:r + 16, c:c + 24], ALL)
             for r in range(0, 64, 16) for c in range(0, 48, 24)]
    assert len(whole) < sum(len(part) for part in parts)  # segments cross the chunk borders
    combined = combine(parts[::-1])  # any order
    np.testing.assert_array_equal(combined.segments, whole.segments)
    np.testing.assert_array_equal(combined.count, whole.count)
    np.testing.assert_array_equal(combined.min, whole.min)
    np.testing.assert_array_equal(combined.max, whole.max)
    np.testing.assert_allclose(combined.sum, whole.sum, rtol=1e-13)
    np.testing.assert_allclose(combined.sumsq, whole.sumsq, rtol=1e-13)


@pytest.mark.parametrize("compiled", [True, False])
def test_small_batches_give_the_same_statistics(compiled):
    ids, features = blocks()
    whole = partial_statistics(ids, features, ["mean", "max"], compiled=compiled)
    batched = partial_statistics(ids, features, ["mean", "max"], batch_pixels=37, compiled=compiled)
    np.testing.assert_array_equal(batched.segments, whole.segments)
    np.testing.assert_array_equal(batched.count, whole.count)
    np.testing.assert_array_equal(batched.max, whole.max)
    np.testing.assert_allclose(batched.sum, whole.sum, rtol=1e-13)
    with pytest.raises(ValueError, match="batch_pixels"):
        partial_statistics(ids, features, ["mean"], batch_pixels=0)


def test_only_the_partials_the_statistics_need():
    ids, features = blocks()
    mean = partial_statistics(ids, features, ["mean"])
    assert mean.sum is not None and mean.sumsq is None and mean.min is None and mean.max is None
    extrema = partial_statistics(ids, features, ["min"])
    assert extrema.sum is None and extrema.min is not None and extrema.max is not None
    with pytest.raises(ValueError, match="needs the partial 'sumsq'"):
        statistics_table(mean, ["a", "b", "c"], ["std"])
    with pytest.raises(ValueError, match="different statistics"):
        combine([mean, extrema])


def test_segments_without_counted_pixel_are_absent():
    ids, features = blocks()
    mask = ids != ids[0, 0]
    partials = partial_statistics(ids, features, ["count"], mask=mask)
    assert int(ids[0, 0]) not in partials.segments.tolist()
    assert partials.count.sum() == np.count_nonzero(mask & (ids != 0))
    empty = partial_statistics(np.zeros((4, 4), np.uint32), np.ones((4, 4, 2), np.float32), ["mean", "std"])
    assert len(empty) == 0 and empty.sum.shape == (0, 2)
    segments, values, names = statistics_table(empty, ["x", "y"], ["mean", "std"])
    assert segments.shape == (0,) and values.shape == (0, 4) and names == ["x_mean", "x_std", "y_mean", "y_std"]


def test_std_of_a_constant_segment_is_zero_not_nan():
    ids = np.ones((30, 30), np.uint32)
    features = np.full((30, 30, 2), 9876.543, np.float32)
    _, values, _ = statistics_table(partial_statistics(ids, features, ["std"]), ["a", "b"], ["std"])
    assert np.all(values == 0.0)


def test_write_and_read_partials(tmp_path):
    ids, features = blocks()
    partials = partial_statistics(ids, features, ["mean", "std"])
    path = write_partials(tmp_path / "stats" / "chunk_0.npz", partials)
    assert sorted(p.name for p in path.parent.iterdir()) == ["chunk_0.npz"]  # no temporary left
    read = read_partials(path)
    for name in ("segments", "count", "sum", "sumsq"):
        np.testing.assert_array_equal(getattr(read, name), getattr(partials, name))
    assert read.min is None and read.max is None
    with pytest.raises(InputDataError, match="missing.npz"):
        read_partials(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputDataError, match="bad.npz"):
        read_partials(tmp_path / "bad.npz")


def test_table_needs_one_label_per_feature():
    ids, features = blocks()
    with pytest.raises(ValueError, match="2 feature labels for partials of 3 features"):
        statistics_table(partial_statistics(ids, features, ["mean"]), ["a", "b"], ["mean"])


def test_check_statistics():
    assert check_statistics(["Mean", " std "]) == ["mean", "std"]
    assert check_statistics("mean, max") == ["mean", "max"]
    with pytest.raises(ConfigError, match=r"obia.stats_used: 'median' .*mean, count, min, max, std"):
        check_statistics(["mean", "median"])
    with pytest.raises(ConfigError, match="obia.stats_used lists 'mean' twice"):
        check_statistics(["mean", "MEAN"])
    for bad in ([], None, 3):
        with pytest.raises(ConfigError, match="obia.stats_used"):
            check_statistics(bad)
    assert isinstance(ZonalPartials(np.zeros(0, np.uint32), np.zeros(0, np.int64)).n_features, type(None))
