"""Streaming learning samples for deep learning: files written by a real chain run (sampling group), read in
batches, split by polygon, normalised and shuffled into torch batches."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyogrio
import pytest

from iota2.core.errors import InputDataError
from iota2.plugins.dl_samples import (FeatureStatistics, SamplesFile, ShuffledBatches, feature_statistics,
                                      split_by_polygon, write_random_samples)


@pytest.fixture(scope="module")
def chain_samples(tmp_path_factory, s2_dataset):
    """The samples file of region 1, run 0, written by the chain in both formats (same selection)."""
    from conftest import write_config

    from iota2.cli import main

    root = tmp_path_factory.mktemp("dl_samples")
    files = {}
    for samples_format in ("sqlite", "parquet"):
        output = root / f"out_{samples_format}"
        config = write_config(root / f"{samples_format}.yaml", s2_dataset, output, chain={"last_step": "sampling"},
                              arg_train={"samples_format": samples_format})
        assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
        files[samples_format] = output / "learningSamples" / f"Samples_region_1_seed0_learn.{samples_format}"
    return files


@pytest.fixture(scope="module")
def whole(chain_samples):
    """The Parquet samples table loaded whole with pandas: what the streamed reads must equal."""
    return pd.read_parquet(chain_samples["parquet"])


def collect(batches):
    return [tuple(np.asarray(part) for part in batch) for batch in batches]


def sorted_rows(values: np.ndarray) -> np.ndarray:
    return values[np.lexsort(values.T[::-1])]


# ---------------------------------------------------------------------------------------------------------------------
# SamplesFile
# ---------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("samples_format", ["sqlite", "parquet"])
def test_samples_file_reads_what_pandas_reads(chain_samples, whole, samples_format):
    """Metadata and every batch equal the whole table as pandas reads it (the file of the learning step)."""
    table = pyogrio.read_dataframe(chain_samples["sqlite"], read_geometry=False) if samples_format == "sqlite" \
        else whole
    samples = SamplesFile(chain_samples[samples_format], "CODE")
    names = [c for c in table.columns if c not in ("code", "region", "originfid", "tile_o", "x", "y")]
    assert samples.feature_names == names and len(names) > 100
    assert samples.n_rows == len(table) == 1200
    np.testing.assert_array_equal(samples.labels(), table["code"].to_numpy())
    np.testing.assert_array_equal(samples.polygon_ids(), table["originfid"].to_numpy())
    batches = list(samples.iter_batches(None, batch_size=500))
    assert [len(b.rows) for b in batches] == [500, 500, 200]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), table[names].to_numpy(np.float32))
    assert batches[0].features.dtype == np.float32 and batches[0].labels.dtype == np.int64
    # given rows, in the given order, with repeats
    rows = np.array([1199, 0, 5, 5, 600, 3])
    batch = samples.read(rows)
    np.testing.assert_array_equal(batch.features, table[names].to_numpy(np.float32)[rows])
    np.testing.assert_array_equal(batch.labels, table["code"].to_numpy()[rows])
    np.testing.assert_array_equal(batch.rows, rows)
    # a subset of the features, in the model's order
    subset = SamplesFile(chain_samples[samples_format], "code", feature_names=names[::-7])
    np.testing.assert_array_equal(subset.read(rows).features, table[names[::-7]].to_numpy(np.float32)[rows])


def test_sqlite_and_parquet_give_identical_batches(chain_samples):
    rows = np.random.default_rng(3).permutation(1200)[:1000]
    sqlite = collect(SamplesFile(chain_samples["sqlite"], "code").iter_batches(rows, 128))
    parquet = collect(SamplesFile(chain_samples["parquet"], "code").iter_batches(rows, 128))
    assert len(sqlite) == len(parquet) == 8
    for left, right in zip(sqlite, parquet):
        for a, b in zip(left, right):
            np.testing.assert_array_equal(a, b)


def test_samples_file_bad_input(chain_samples, tmp_path):
    with pytest.raises(InputDataError, match=r"missing\.sqlite does not exist.*'sampling'"):
        SamplesFile(tmp_path / "missing.sqlite", "code")
    other = tmp_path / "samples.csv"
    other.write_text("code\n1\n")
    with pytest.raises(InputDataError, match=r"samples\.csv: unknown format '\.csv'.*arg_train\.samples_format"):
        SamplesFile(other, "code")
    with pytest.raises(InputDataError, match=r"no class column 'landcover' \(chain\.data_field\)"):
        SamplesFile(chain_samples["sqlite"], "landcover")
    with pytest.raises(InputDataError, match=r"lacks feature column\(s\) \['sentinel2_b99_20180105'\]"):
        SamplesFile(chain_samples["parquet"], "code", feature_names=["sentinel2_b99_20180105"])
    samples = SamplesFile(chain_samples["parquet"], "code")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1200\)"):
        samples.read(np.array([0, 1200]))


# ---------------------------------------------------------------------------------------------------------------------
# split by polygon
# ---------------------------------------------------------------------------------------------------------------------

def test_split_by_polygon_on_the_chain_file(chain_samples):
    samples = SamplesFile(chain_samples["sqlite"], "code")
    labels, polygons = samples.labels(), samples.polygon_ids()
    split = split_by_polygon(labels, polygons, 0.3, seed=0)
    assert not set(polygons[split.train]) & set(polygons[split.validation])
    np.testing.assert_array_equal(np.sort(np.concatenate([split.train, split.validation])), np.arange(1200))
    for label in np.unique(labels):
        mine = labels == label
        held = np.isin(np.flatnonzero(mine), split.validation).mean()
        largest = pd.Series(polygons[mine]).value_counts().max() / mine.sum()
        # whole polygons: as close to the ratio as one polygon allows; at least one polygon on each side
        assert 0 < held < 1 and abs(held - 0.3) <= largest, (label, held)
    again = split_by_polygon(labels, polygons, 0.3, seed=0)
    np.testing.assert_array_equal(again.validation, split.validation)
    others = [split_by_polygon(labels, polygons, 0.3, seed=s).validation for s in range(1, 6)]
    assert any(len(o) != len(split.validation) or (o != split.validation).any() for o in others)


def test_split_by_polygon_ratio_and_single_polygon_classes():
    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 40, 600)  # 600 polygons of 5-39 samples
    polygons = np.repeat(np.arange(600) * 7 + 3, sizes)
    labels = np.repeat(np.arange(600) % 4 + 1, sizes)
    labels[polygons == 3] = 9  # class 9: one polygon
    labels[polygons == 10] = 1
    order = rng.permutation(len(labels))
    labels, polygons = labels[order], polygons[order]
    split = split_by_polygon(labels, polygons, 0.2, seed=42)
    assert split.train_only_classes == [9]
    assert not np.isin(polygons[split.validation], polygons[split.train]).any()
    assert set(np.flatnonzero(labels == 9)) <= set(split.train)
    for label in (1, 2, 3, 4):
        share = np.isin(np.flatnonzero(labels == label), split.validation).mean()
        assert abs(share - 0.2) < 0.01, (label, share)
    assert len(split_by_polygon(labels, polygons, 0.0, seed=1).validation) == 0
    with pytest.raises(ValueError, match="validation_ratio"):
        split_by_polygon(labels, polygons, 1.0, seed=1)


# ---------------------------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("samples_format", ["sqlite", "parquet"])
def test_feature_statistics_equal_numpy(chain_samples, whole, samples_format, tmp_path):
    samples = SamplesFile(chain_samples[samples_format], "code")
    values = whole[samples.feature_names].to_numpy(np.float32).astype(np.float64)
    rows = np.random.default_rng(1).permutation(1200)[:777]
    for subset, batch_size in ((None, 100), (rows, 64), (rows, 10_000)):
        statistics = feature_statistics(samples, subset, batch_size=batch_size)
        expected = values if subset is None else values[subset]
        np.testing.assert_allclose(statistics.mean, expected.mean(axis=0), rtol=1e-6, atol=0)
        np.testing.assert_allclose(statistics.std, expected.std(axis=0), rtol=1e-6, atol=0)
        assert statistics.count == len(expected)
    path = tmp_path / "model_1_seed_0_statistics.json"
    statistics.save(path)
    loaded = FeatureStatistics.load(path)
    assert loaded.feature_names == samples.feature_names and loaded.count == 777
    np.testing.assert_array_equal(loaded.mean, statistics.mean)
    np.testing.assert_array_equal(loaded.std, statistics.std)
    normalised = loaded.normalise(values[:50])
    assert normalised.dtype == np.float32
    np.testing.assert_allclose(normalised, (values[:50] - statistics.mean) / statistics.std, rtol=1e-5, atol=1e-5)
    data = json.loads(path.read_text())
    data["mean"] = data["mean"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(InputDataError, match=r"statistics .*model_1_seed_0_statistics\.json cannot be read.*learning"):
        FeatureStatistics.load(path)


def test_constant_feature_normalises_to_zero():
    statistics = FeatureStatistics(["a", "b"], np.array([1.0, 5.0]), np.array([2.0, 0.0]), 10)
    np.testing.assert_array_equal(statistics.normalise(np.array([[3.0, 5.0]])), [[1.0, 0.0]])


# ---------------------------------------------------------------------------------------------------------------------
# shuffled batches and the torch dataset
# ---------------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def training(chain_samples):
    samples = SamplesFile(chain_samples["sqlite"], "code")
    split = split_by_polygon(samples.labels(), samples.polygon_ids(), 0.25, seed=0)
    return samples, split.train, feature_statistics(samples, split.train)


@pytest.mark.parametrize("options", [dict(shuffle=True), dict(shuffle=False), dict(shuffle=True, in_memory=True),
                                     dict(shuffle=True, num_workers=2)])
def test_every_row_once_per_epoch(training, whole, options):
    import torch

    samples, train, statistics = training
    workers = options.pop("num_workers", 0)
    classes = [8, 7, 6, 5, 4, 3, 2, 1]
    dataset = __import__("iota2.plugins.dl_samples", fromlist=["x"]).TorchSamplesDataset(
        samples, train, statistics, classes=classes, batch_size=50, block_rows=40, buffer_blocks=3, seed=5, **options)
    assert isinstance(dataset, torch.utils.data.IterableDataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        batches = list(loader)
        assert all(x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (len(y), samples.n_features)
                   for x, y in batches)
        sizes = [len(y) for _, y in batches]
        assert sum(sizes) == len(train)
        if not workers:  # one short batch, at the end
            assert sizes[:-1] == [50] * (len(sizes) - 1) and len(batches) == len(dataset)
        else:  # one short batch per worker at most
            assert sum(size < 50 for size in sizes) <= workers and len(batches) <= len(dataset) + workers - 1
        got = np.concatenate([np.column_stack([x.numpy(), y.numpy()]) for x, y in batches])
        expected_x = statistics.normalise(whole[samples.feature_names].to_numpy(np.float32)[train])
        expected_y = 8 - whole["code"].to_numpy()[train]  # classes reversed: label 8 -> 0
        expected = np.column_stack([expected_x, expected_y.astype(np.float32)])
        np.testing.assert_array_equal(sorted_rows(got), sorted_rows(expected))
        if not options.get("shuffle"):
            np.testing.assert_array_equal(got, expected)


def test_shuffle_order_follows_seed_and_epoch(training):
    samples, train, statistics = training

    def order(seed, epoch=0, **options):
        batches = ShuffledBatches(samples, train, statistics, batch_size=64, block_rows=32, buffer_blocks=4,
                                  seed=seed, **options)
        batches.set_epoch(epoch)
        return np.concatenate([x[:, 0] for x, _ in batches.iter_numpy()])

    first = order(7)
    np.testing.assert_array_equal(first, order(7))
    assert not np.array_equal(first, order(8))
    assert not np.array_equal(first, order(7, epoch=1))
    assert not np.array_equal(np.sort(first), first)  # shuffled
    np.testing.assert_array_equal(np.sort(first), np.sort(order(8)))  # the same rows
    np.testing.assert_array_equal(order(3, in_memory=True), order(3, in_memory=True))
    assert not np.array_equal(order(3, in_memory=True), order(4, in_memory=True))
    # a batch mixes several places of the file: more than one polygon in most batches
    batches = ShuffledBatches(samples, train, statistics, batch_size=64, block_rows=32, buffer_blocks=4, seed=1)
    polygons = samples.polygon_ids()
    assert np.mean([len(np.unique(polygons[rows])) for rows in batches.buffers()]) > 2


def test_dataset_refuses_unknown_classes_and_other_statistics(training):
    samples, train, statistics = training
    with pytest.raises(InputDataError, match=r"classes \[3, 4, 5, 6, 7, 8\] that are not among the model's"):
        ShuffledBatches(samples, train, statistics, classes=[1, 2])
    other = FeatureStatistics(statistics.feature_names[1:], statistics.mean[1:], statistics.std[1:], 1)
    with pytest.raises(InputDataError, match="normalisation statistics are of other features"):
        ShuffledBatches(samples, train, other)


def test_module_imports_without_torch(chain_samples):
    """torch is imported by TorchSamplesDataset only; without it the name gives one clear ImportError."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError
        from iota2.plugins import dl_samples
        samples = dl_samples.SamplesFile({str(chain_samples["parquet"])!r}, "code")
        statistics = dl_samples.feature_statistics(samples)
        batches = dl_samples.ShuffledBatches(samples, None, statistics, batch_size=500)
        print(sum(len(y) for _, y in batches.iter_numpy()))
        try:
            from iota2.plugins.dl_samples import TorchSamplesDataset
        except ImportError as exc:
            print("ImportError:", exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1200", "ImportError: TorchSamplesDataset needs torch: install it with pip install 'iota2[dl]' "
                "(torch==2.13.0)"]


# ---------------------------------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------------------------------

MEMORY_SCRIPT = """
import sys
import numpy as np, pandas as pd, pyarrow.parquet, pyogrio  # imported before the baseline
from iota2.plugins.dl_samples import SamplesFile

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])

path, mode = sys.argv[1], sys.argv[2]
before = hwm()
if mode == "stream":
    samples = SamplesFile(path, "code")
    total = 0.0
    for batch in samples.iter_batches(None, batch_size=1024):
        total += float(batch.features[:, 0].sum())
    rows = samples.n_rows
else:  # as the learning step reads it
    table = pd.read_parquet(path) if path.endswith(".parquet") else pyogrio.read_dataframe(path, read_geometry=False)
    names = [c for c in table.columns
             if c.lower() not in ("code", "region", "originfid", "tile_o", "x", "y", "geometry")]
    features = table[names].to_numpy(np.float32)
    total, rows = float(features[:, 0].sum()), len(features)
print(rows, round(total, 1), hwm() - before)
"""


@pytest.mark.slow
def test_streaming_memory_is_bounded_by_the_batch(tmp_path, capsys):
    """100 000 x 200 features (37x the chain file's values) read in batches of 1024 in a fresh process: the peak RSS
    grows by less than a fifth of what loading it whole with pandas costs."""
    files = write_random_samples(tmp_path, 100_000, 200)
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    for samples_format, path in files.items():
        measured = {}
        for mode in ("stream", "whole"):
            result = subprocess.run([sys.executable, str(script), str(path), mode], capture_output=True, text=True,
                                    timeout=600)
            assert result.returncode == 0, result.stderr
            rows, total, kib = result.stdout.split()
            measured[mode] = (int(rows), float(total), int(kib))
        with capsys.disabled():
            print(f"\n{samples_format}: peak RSS increase streaming {measured['stream'][2] / 1024:.1f} MiB, "
                  f"whole load with pandas {measured['whole'][2] / 1024:.1f} MiB")
        assert measured["stream"][0] == measured["whole"][0] == 100_000
        assert abs(measured["stream"][1] - measured["whole"][1]) < 1  # the same values (float32 sums)
        assert measured["whole"][2] > 76 * 1024  # the whole table (76 MiB of float32) is there
        assert measured["stream"][2] < measured["whole"][2] / 5
