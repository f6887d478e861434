"""Band-math expressions: evaluated by walking a checked tree, never by eval."""

import numpy as np
import pytest

from iota2.core.band_math import BandMath
from iota2.core.errors import ConfigError

BANDS = ["B2", "B3", "B4", "B8"]


def values():
    rng = np.random.default_rng(0)
    return {f"b{index + 1}": rng.uniform(1, 3000, (3, 4, 5)).astype(np.float32) for index in range(4)}


@pytest.mark.parametrize("text, expected", [
    ("(b4-b3)/(b4+b3)*1000", lambda b: (b["b4"] - b["b3"]) / (b["b4"] + b["b3"]) * 1000),
    ("b1^2 + -b2", lambda b: b["b1"] ** 2 + -b["b2"]),
    ("sqrt(abs(b1 - b2)) + max(b3, b4) / 2", lambda b: np.sqrt(np.abs(b["b1"] - b["b2"])) + np.maximum(b["b3"], b["b4"]) / 2),
    ("log10(b4) * 2 ** 3", lambda b: np.log10(b["b4"]) * 2 ** 3),
])
def test_values_and_types_match_numpy(text, expected):
    bands = values()
    result = BandMath(text, BANDS, "Sentinel_2.additional_features").evaluate(bands)
    reference = expected(bands)
    assert result.dtype == reference.dtype == np.float32
    assert np.array_equal(result, reference)


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('touch x')", "unknown function"),
    ("b1.__class__", "Attribute is not allowed"),
    ("(lambda: 1)()", "unknown function"),
    ("[b1, b2][0]", "is not allowed"),
    ("'b1' + b2", "is not a number"),
    ("b5 * 2", "unknown name 'b5'"),
    ("sqrt", "must be called"),
    ("max(b1, b2, key=b3)", "keyword is not allowed"),
    ("b1 if b2 else b3", "IfExp is not allowed"),
    ("(b1 - b2", "cannot parse"),
])
def test_anything_outside_the_grammar_is_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        BandMath(text, BANDS, "Sentinel_2.additional_features")
    assert str(error.value).startswith("Sentinel_2.additional_features: ")


def test_no_eval_in_the_package():
    from pathlib import Path

    import iota2

    import re

    sources = Path(iota2.__file__).parent.rglob("*.py")
    call = re.compile(r"(?<![\w.])eval\(")  # the builtin, not a method such as torch's module.eval()
    assert not [str(path) for path in sources if call.search(path.read_text(encoding="utf-8"))]
