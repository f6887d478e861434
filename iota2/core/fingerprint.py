"""Fingerprints of finished tasks: what a task's outputs were made from, so that ``-restart`` reruns a task
whose configuration values or inputs changed, and everything after it.

A task receives the configuration as a mapping of sections. While it runs, :class:`RecordingConfig` records
which ``(section, key)`` pairs it reads (a whole section when it iterates or copies one, the whole
configuration when it copies it). The fingerprint of the finished task is a hash of

* its function and its other keyword arguments (tile, grid, window, dates, run, settings ...), with the size
  and modification time of each argument naming a file outside the output folder (an input: files inside it
  are the run's own products);
* the current values of the configuration keys it read, and for a value naming an existing file, that
  file's size and modification time (a ground truth or nomenclature edited in place);
* the fingerprints of the tasks it depends on (so a task rerun because its inputs changed makes every
  later task rerun too);
* the iota2 version.

On ``-restart`` the fingerprint of each task recorded as done is computed again from the current
configuration with the keys it read last time; the task is up to date only if it matches.
"""

from __future__ import annotations

import contextlib

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

WHOLE = "*"
"""Key recorded when a task reads a whole section (or, as section name, the whole configuration)."""


class _RecordingMapping(dict):
    """A mapping that records a read of all of it when it is iterated, compared or copied (copies are plain
    dicts)."""

    def _read_all(self) -> None:
        raise NotImplementedError

    def _plain(self) -> dict:
        return dict.copy(self)

    def __iter__(self):
        self._read_all()
        return super().__iter__()

    def keys(self):
        self._read_all()
        return super().keys()

    def values(self):
        self._read_all()
        return super().values()

    def items(self):
        self._read_all()
        return super().items()

    def __len__(self) -> int:
        self._read_all()
        return super().__len__()

    def __eq__(self, other) -> bool:
        self._read_all()
        return dict.__eq__(self, other)

    __hash__ = None

    def copy(self) -> dict:
        self._read_all()
        return copy.deepcopy(self._plain())

    def __deepcopy__(self, memo) -> dict:
        self._read_all()
        return copy.deepcopy(self._plain(), memo)

    def __copy__(self) -> dict:
        self._read_all()
        return self._plain()

    def __reduce__(self):
        self._read_all()
        return (dict, (self._plain(),))


class RecordingSection(_RecordingMapping):
    """A configuration section that records the keys read from it into ``reads``."""

    def __init__(self, name: str, values: dict, reads: set):
        super().__init__(values)
        self._name = name
        self._reads = reads

    def _read(self, key) -> None:
        self._reads.add((self._name, str(key)))

    def _read_all(self) -> None:
        self._reads.add((self._name, WHOLE))

    def __getitem__(self, key):
        self._read(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._read(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self._read(key)
        return super().__contains__(key)


class RecordingConfig(_RecordingMapping):
    """The configuration mapping given to a task, recording what the task reads (see the module docstring).

    Section values are deep copies: a task that modifies its configuration changes neither the caller's
    mapping nor the values recorded.
    """

    def __init__(self, values: dict):
        self.reads: set[tuple[str, str]] = set()
        super().__init__({name: RecordingSection(name, copy.deepcopy(section), self.reads)
                          if isinstance(section, dict) else copy.deepcopy(section)
                          for name, section in values.items()})

    def _read_all(self) -> None:
        self.reads.add((WHOLE, WHOLE))

    def __len__(self) -> int:  # the sections are always all there: their number depends on no value
        return dict.__len__(self)

    def _plain(self) -> dict:
        return {name: dict.copy(section) if isinstance(section, dict) else section
                for name, section in dict.items(self)}

    def recorded(self) -> list[str]:
        """The keys read, as sorted ``"section.key"`` strings (``*`` for a whole section or configuration)."""
        reads = self.reads
        if (WHOLE, WHOLE) in reads:
            return [f"{WHOLE}.{WHOLE}"]
        whole_sections = {section for section, key in reads if key == WHOLE}
        return sorted(f"{section}.{key}" for section, key in reads
                      if key == WHOLE or section not in whole_sections)


def _file_state(value: Any) -> Any:
    """Size and modification time of a value naming an existing file (directories and other values: None)."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    try:
        stat = os.stat(value)
    except (OSError, ValueError):
        return None
    if not os.path.isfile(value):
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _files_in(value: Any) -> list:
    """File states of every string naming a file in a (nested) configuration value."""
    if isinstance(value, dict):
        return [_files_in(item) for _key, item in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (list, tuple)):
        return [_files_in(item) for item in value]
    return _file_state(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))


def read_values(config: dict | None, reads: Iterable[str]) -> list:
    """The current values of the recorded keys (with the state of the files they name)."""
    config = config or {}
    values = []
    for read in reads:
        section, _, key = read.partition(".")
        if section == WHOLE:
            value = config
        elif key == WHOLE:
            value = config.get(section)
        else:
            value = (config.get(section) or {}).get(key)
        values.append([read, value, _files_in(value)])
    return values


def _outside(value: Any, folder: Path | None) -> Any:
    """``value`` with the strings naming a path inside ``folder`` (the run's own products) blanked."""
    if folder is None:
        return value
    if isinstance(value, dict):
        return {key: _outside(item, folder) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_outside(item, folder) for item in value]
    if isinstance(value, str) and value and len(value) <= 4096 and os.path.isabs(value):
        with contextlib.suppress(OSError, ValueError):
            if Path(value).resolve().is_relative_to(folder):
                return None
    return value


def task_fingerprint(function: str, kwargs: dict, reads: Iterable[str], dependency_fingerprints: Iterable[str],
                     version: str | None = None, output_folder: str | Path | None = None) -> str:
    """The fingerprint of a task (see the module docstring); ``kwargs["config"]``, if any, is the configuration
    mapping and only the keys in ``reads`` count. Arguments naming files inside ``output_folder`` are products of
    the run (an input is never there: :func:`iota2.core.output_folder.check_output_folder`): their state does not
    count, only their names."""
    if version is None:
        from iota2 import __version__ as version
    arguments = {key: value for key, value in kwargs.items() if key != "config"}
    folder = Path(output_folder).resolve() if output_folder is not None else None
    payload = [version, function, _canonical(arguments), _canonical(_files_in(_outside(arguments, folder))),
               _canonical(read_values(kwargs.get("config"), reads)), list(dependency_fingerprints)]
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()[:32]
