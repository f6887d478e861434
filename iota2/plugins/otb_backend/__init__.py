"""The optional Orfeo ToolBox backend: a binding over Debian's OTB application engine, OTB learners.

* :mod:`iota2.plugins.otb_backend.otbApplication`: the classic ``otbApplication`` Python API (``Registry``,
  ``Application``) over a small pybind11 binding compiled by ``iota2 otb build`` (:mod:`.build`).
* :func:`otb_available` / :func:`load_otb`: what other packages call before using OTB (the OTB-style applications of
  :mod:`iota2.common`); :class:`OtbUnavailableError` says what is missing and how to install it.
* :class:`iota2.plugins.otb_backend.learner.OtbLearner`: the OTB classifiers of ``arg_train.classifier``.

Importing this module is cheap and never fails when OTB is absent: the compiled module is loaded at the first
:func:`load_otb`. See ``docs/otb.md``.
"""

from __future__ import annotations

import functools
import json
import sys

from iota2.core.errors import ConfigError
from iota2.core.hookspecs import hookimpl

INSTALL_COMMAND = "apt-get install otb-bin libotb-dev, then iota2 otb build"


class OtbUnavailableError(ConfigError):
    """OTB or the binding over it is not usable here; the message says what is missing and the install command."""


@functools.lru_cache(maxsize=1)
def load_otb():
    """The ``otbApplication``-like module (:mod:`iota2.plugins.otb_backend.otbApplication`), loaded once.

    Raises
    ------
    OtbUnavailableError
        OTB is not installed, or the binding is not built for this source and Python; one line with the fix.
    """
    from iota2.plugins.otb_backend import otbApplication

    return otbApplication


def otb_available() -> bool:
    """Whether OTB applications can be run through the binding (the result of the first call is kept)."""
    return _available()


@functools.lru_cache(maxsize=1)
def _available() -> bool:
    try:
        load_otb()
    except OtbUnavailableError:
        return False
    return True


def otb_command(argv: list[str]) -> int:
    """``iota2 otb build [--out DIR]`` compiles the binding; ``iota2 otb status [--json]`` says whether OTB and
    the binding are usable and where."""
    import argparse

    from iota2.plugins.otb_backend import build

    parser = argparse.ArgumentParser(prog="iota2 otb", description="The OTB backend: build the binding over OTB's "
                                     "application engine, or show its status.")
    sub = parser.add_subparsers(dest="action", required=True)
    make = sub.add_parser("build", help="compile the binding (needs apt-get install otb-bin libotb-dev, g++ and "
                                        "pybind11)")
    make.add_argument("--out", default=None, help="output folder (default: $IOTA2_OTB_BUILD_DIR, else "
                                                  "~/.cache/iota2/otb-<version>)")
    show = sub.add_parser("status", help="whether OTB and the binding are usable, and where")
    show.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    if args.action == "build":
        path = build.build(args.out)
        load_otb.cache_clear()
        _available.cache_clear()
        print(f"built {path}")
        return 0
    info = build.status()
    if info["usable"]:  # the binding exists: check that it loads and finds the applications
        try:
            info["applications"] = len(load_otb().Registry.GetAvailableApplications())
        except OtbUnavailableError as exc:
            info["usable"], info["problems"] = False, [str(exc)]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"OTB {info['otb_version'] or 'not found'}: engine in {info['otb_library_dir']}, applications in "
              f"{info['otb_applications_dir']}")
        print(f"binding: {info['binding'] or 'not built'} (searched in {', '.join(info['binding_searched_in'])})")
        if info["usable"]:
            print(f"usable: yes ({info.get('applications', 0)} applications)")
        else:
            print(f"usable: no: {'; '.join(info['problems'])}; fix: {INSTALL_COMMAND}", file=sys.stderr)
    return 0 if info["usable"] else 1


@hookimpl
def iota2_register_commands():
    """Register ``iota2 otb build`` and ``iota2 otb status``."""
    return {"otb": otb_command}


@hookimpl
def iota2_register_learners():
    """The OTB learner (``otb``), selected by ``arg_train.classifier``."""
    from iota2.plugins.otb_backend.learner import OtbLearner

    return {OtbLearner.name: OtbLearner}
