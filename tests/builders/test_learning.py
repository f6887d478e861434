"""Model files."""

import pytest

from iota2.builders.learning import load_model
from iota2.core.errors import InputDataError


def test_an_unreadable_model_names_the_file_and_the_step_to_run_again(tmp_path):
    path = tmp_path / "model_1_seed_0.pkl"
    path.write_bytes(b"garbage\n")
    with pytest.raises(InputDataError, match="model_1_seed_0.pkl cannot be read .*first_step: learning"):
        load_model(path)
