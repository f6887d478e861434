"""Shared fixtures: a generated THEIA-like Sentinel-2 data set and configurations written to disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def s2_dataset(tmp_path_factory):
    """Two 120x120 THEIA-like tiles with ground truth, nomenclature and colour table (generated once)."""
    from iota2.datagen.sentinel2 import generate_dataset

    root = tmp_path_factory.mktemp("s2data")
    return generate_dataset(root, tiles=("T31TCJ", "T31TDJ"), size=120, seed=1)


def write_config(path: Path, dataset: dict, output: Path, **sections) -> Path:
    """Write a complete classification config for ``dataset``; ``sections`` override/extend it."""
    config = {
        "chain": {"output_path": str(output), "list_tile": " ".join(dataset["tiles"]),
                  "s2_path": str(dataset["s2_path"]), "ground_truth": str(dataset["ground_truth"]),
                  "data_field": "code", "nomenclature_path": str(dataset["nomenclature"]),
                  "color_table": str(dataset["color_table"])},
        "arg_train": {"runs": 1, "ratio": 0.6, "random_seed": 0,
                      "sample_selection": {"sampler": "random", "strategy": "constant",
                                           "strategy.constant.nb": 150}},
        "scikit_models_parameters": {"model_type": "RandomForestClassifier", "n_estimators": 30},
        "python_data_managing": {"chunk_size_mode": "split_number", "number_of_chunks": 2},
    }
    for name, values in sections.items():
        if name == "scikit_models_parameters":
            config[name] = dict(values)  # a learner's keywords replace the default learner's
        else:
            config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def make_config(tmp_path, s2_dataset):
    """Factory: ``make_config(**sections)`` writes a config in tmp_path and returns its path."""
    def factory(name: str = "config.yaml", output: Path | None = None, **sections) -> Path:
        return write_config(tmp_path / name, s2_dataset, output or tmp_path / "out", **sections)

    return factory


BENCH_SMOKE = Path(__file__).parent / "bench"
"""Smoke runs of the bench/ scripts: marked ``bench``, left out of the default run (``addopts`` in pyproject.toml)
and run by ``python -m pytest -q -m bench`` (CI runs both)."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BENCH_SMOKE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bench)
    # pytest-xdist (``-n 2 --dist loadfile`` in pyproject.toml) hands whole files to its workers in collection order:
    # the files holding end-to-end runs (marked slow) go first, so that no long file starts last while the other
    # worker has nothing left. A stable sort by file: each file's tests stay together and in their order.
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)
