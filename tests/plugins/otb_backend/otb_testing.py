"""Helpers of the OTB backend's tests: the binding, built once per session where it is missing."""

from __future__ import annotations

import os

import pytest

SKIP_REASON = ("OTB is not installed (apt-get install otb-bin libotb-dev); IOTA2_REQUIRE_OTB=1 turns this skip into a "
               "failure")


def require_otb():
    """The ``otbApplication``-like module; builds the binding when OTB is installed and it is missing; skips (fails
    under ``IOTA2_REQUIRE_OTB=1``) when OTB is not installed."""
    from iota2.plugins.otb_backend import _available, build, load_otb

    problems = [p for p in build.find_otb().missing()]
    if problems:
        if os.environ.get("IOTA2_REQUIRE_OTB") == "1":
            pytest.fail(f"IOTA2_REQUIRE_OTB=1 but {'; '.join(problems)}")
        pytest.skip(SKIP_REASON)
    if build.find_binding() is None:
        build.build(quiet=True)
        load_otb.cache_clear()
        _available.cache_clear()
    return load_otb()
