"""Model files."""

import hashlib
import json

import pytest

from iota2.builders.learning import load_model
from iota2.core.errors import InputDataError


def test_an_unreadable_model_names_the_file_and_the_step_to_run_again(tmp_path):
    path = tmp_path / "model_1_seed_0.skops"
    path.write_bytes(b"garbage\n")
    (tmp_path / "model_1_seed_0.json").write_text(json.dumps(
        {"feature_names": ["a"], "classes": [1, 2], "files": {path.name: hashlib.sha256(b"garbage\n").hexdigest()}}))
    with pytest.raises(InputDataError, match="model_1_seed_0.skops cannot be read .*first_step: learning"):
        load_model(path)


def test_a_missing_model_names_the_file_and_the_step_to_run_again(tmp_path):
    with pytest.raises(InputDataError, match="model_1_seed_0.skops does not exist.*first_step: learning"):
        load_model(tmp_path / "model_1_seed_0.skops")


def test_learning_seeds_are_independent_per_run_and_region():
    from iota2.builders.learning import learning_seed

    def seed_of(base, run, region="1"):
        return learning_seed({"arg_train": {"random_seed": base}}, run, region)

    assert seed_of(5, 1) == seed_of(5, 1)  # reproducible
    assert seed_of(5, 1) != seed_of(6, 0)  # run r of seed s is not run r-1 of seed s+1
    assert seed_of(5, 1) != seed_of(5, 1, "2")  # two regions' models do not share one stream
    assert len({seed_of(5, run) for run in range(20)}) == 20
    assert seed_of(None, 0) is None  # no seed: a fresh one, as documented
