"""The output folder of a run: what may be used as one, what a run may delete in it, one run at a time, and
products of an earlier run never passed off as current.

* :func:`check_output_folder` refuses an output folder whose use or cleaning could destroy data the run did
  not make: an empty path, ``/``, the home folder, the current folder, or a folder that holds, is, or lies
  inside an input named in the configuration (imagery, ground truth, nomenclature, user rasters ...).
* The first run writes :data:`MARKER` into the folder. ``chain.remove_output_path`` deletes only what an
  iota2 run writes there (the entries its builders declare and the run files), and only in a folder that
  holds the marker; a non-empty folder without it is refused. A folder without the marker that holds entries
  a run would write (``final``, ``model`` ...) is refused too: a run never overwrites what it did not write.
* :class:`RunLock` lets one run at a time use a folder (a lock file created atomically, with the holder's
  pid, host and start time, refreshed while it runs; a lock whose holder is gone is taken over).
* :func:`set_aside_previous_products` moves the ``final/`` products of an earlier run to ``final_previous/``
  before a run that makes them all again, and :data:`INCOMPLETE_NOTE` marks ``final/`` while a run that
  writes into it has not finished.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterable

from iota2.core.errors import ConfigError
from iota2.core.layout import (DRIVER_LOG, INCOMPLETE_NOTE, LOCK, MARKER, PREVIOUS_FINAL, RESOLVED_CONFIG,  # noqa: F401
                               OUTPUT_ENTRIES, STATUS_FILE, OutputLayout)

LOGGER = logging.getLogger(__name__)

RUN_FILES = (RESOLVED_CONFIG, DRIVER_LOG, MARKER, PREVIOUS_FINAL)
"""Entries of the output folder written by every run, whatever the builder (names: :mod:`iota2.core.layout`).
Task journals are the builders' own entries (each builder keeps its restart state)."""

HEARTBEAT_S = 20.0
"""The lock holder refreshes the lock file's modification time this often."""
STALE_AFTER_S = 120.0
"""A lock not refreshed for this long is stale (its holder was killed or its machine stopped)."""


# --------------------------------------------------------------------------------------------- the folder
def _input_paths(config) -> list[tuple[str, Path]]:
    """``("section.key", path)`` of every configuration value naming an existing file or folder, except the
    output folders themselves."""
    found = []
    for section_name in sorted(config.sections or {}) if getattr(config, "sections", None) else []:
        section = config[section_name] if section_name in config else {}
        for key, value in section.items():
            if key == "output_path" or key.endswith("_output_path") or key == "local_directory":
                continue
            for item in (value if isinstance(value, list) else [value]):
                if isinstance(item, str) and item.strip() and len(item) < 4096:
                    try:
                        path = Path(item).expanduser()
                        if path.exists():
                            found.append((f"{section_name}.{key}", path.resolve()))
                    except (OSError, ValueError):
                        continue
    return found


def _is_relative_to(path: Path, other: Path) -> bool:
    try:
        path.relative_to(other)
        return True
    except ValueError:
        return False


def check_output_folder(config, entries: Iterable[str] = (*OUTPUT_ENTRIES, STATUS_FILE)) -> Path:
    """Check ``chain.output_path`` and return it resolved.

    Raises
    ------
    ConfigError
        The path is empty, ``/``, the home folder, the current folder, a file, not writable, or a folder that
        holds, is or lies inside an input; or ``chain.remove_output_path`` is true for a non-empty folder that
        no iota2 run wrote.
    """
    raw = str(config["chain"].get("output_path") or "").strip()
    if not raw:
        raise ConfigError("chain.output_path is empty; set it to a folder for the run's outputs (a new folder is "
                          "best)")
    output = Path(raw).expanduser().resolve()
    home = Path.home().resolve() if Path.home() else None
    if output == Path(output.anchor):
        raise ConfigError(f"chain.output_path = '{raw}' is the root of the file system; choose a folder for the "
                          "run's outputs")
    if home is not None and output == home:
        raise ConfigError(f"chain.output_path = '{raw}' is your home folder; choose a folder for the run's outputs, "
                          "e.g. ~/iota2_output")
    if output == Path.cwd().resolve():
        raise ConfigError(f"chain.output_path = '{raw}' is the current folder; choose a folder for the run's "
                          "outputs, e.g. ./output")
    for key, path in _input_paths(config):
        if output == path or _is_relative_to(path, output):
            raise ConfigError(f"chain.output_path = '{raw}' holds the input {key} = '{path}'; choose an output "
                              "folder that holds no input data")
        if path.is_dir() and _is_relative_to(output, path):
            raise ConfigError(f"chain.output_path = '{raw}' lies inside the input folder {key} = '{path}'; "
                              "choose an output folder outside the input data")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"chain.output_path = '{raw}' is a file; set it to a folder (existing or to create)")
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"chain.output_path = '{raw}': {existing} is not a folder you can write to; choose "
                          "another output_path")
    if output.is_dir() and not (output / MARKER).exists() and any(output.iterdir()):
        if config["chain"].get("remove_output_path"):
            raise ConfigError(f"chain.remove_output_path is true but '{output}' is not empty and was not written by "
                              f"iota2 (no {MARKER} file in it): iota2 deletes only what its runs wrote. Choose a new "
                              "or empty output_path, or set remove_output_path to false")
        taken = sorted(name for name in {*entries, *RUN_FILES} if (output / name).exists())
        if taken:
            raise ConfigError(f"chain.output_path = '{raw}' holds {', '.join(taken)}, which no iota2 run wrote there "
                              f"(no {MARKER} file): a run would overwrite them. Choose a new or empty output_path, or "
                              "move them away")
    return output


def mark_output_folder(output: Path) -> None:
    """Create the folder if needed and write :data:`MARKER` (once)."""
    output.mkdir(parents=True, exist_ok=True)
    marker = output / MARKER
    if not marker.exists():
        marker.write_text("This folder holds the outputs of iota2 runs; chain.remove_output_path deletes only the "
                          "entries iota2 writes.\n", encoding="utf-8")


def remove_outputs(output: Path, entries: Iterable[str], final_products: Iterable[str] | None = None) -> list[str]:
    """Delete the given top-level entries (and the run files) of a folder marked as iota2's; return the
    entries kept because no iota2 run writes them.

    ``final/`` is shared by builders: with ``final_products`` (glob patterns) only its matching entries are
    deleted (and the folder if nothing else is left in it); with ``None`` the whole folder is."""
    if not (output / MARKER).exists():
        raise ConfigError(f"'{output}' holds no {MARKER} file: iota2 does not delete folders it did not write")
    ours = set(entries) | set(RUN_FILES)
    ours.discard(MARKER)
    ours.discard(LOCK)
    kept = []
    for child in sorted(output.iterdir()):
        if child.name in (MARKER, LOCK):
            continue
        if child.name not in ours:
            kept.append(child.name)
            continue
        if child.name == OutputLayout(output).final.name and final_products is not None and child.is_dir():
            for entry in _matching(child, final_products):
                _delete(entry)
            with contextlib.suppress(OSError):
                child.rmdir()  # only when empty
            continue
        _delete(child)
    return kept


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _matching(folder: Path, patterns: Iterable[str]) -> list[Path]:
    patterns = list(patterns)
    return sorted(child for child in folder.iterdir() if any(child.match(pattern) for pattern in patterns))


# --------------------------------------------------------------------------------------------- products
def set_aside_previous_products(output: Path, final_products: Iterable[str] = ("*",)) -> list[str]:
    """Move the entries of ``final/`` matching ``final_products`` (glob patterns: the products of the builders
    about to run, made again by them) to ``final_previous/``, replacing entries of the same name there; return
    the names moved. Other builders' products stay in ``final/``."""
    layout = OutputLayout(output)
    final = layout.final
    if not final.is_dir():
        return []
    moving = [entry for entry in _matching(final, final_products) if entry.name != INCOMPLETE_NOTE]
    if not moving:
        return []
    previous = layout.previous_final
    previous.mkdir(exist_ok=True)
    for entry in moving:
        target = previous / entry.name
        if target.exists() or target.is_symlink():
            _delete(target)
        entry.rename(target)
    return [entry.name for entry in moving]


def write_incomplete_note(output: Path, started: str) -> None:
    """Mark ``final/``: a run that writes there is under way (or failed)."""
    note = OutputLayout(output).incomplete_note
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(
        f"An iota2 run started at {started} has not finished (it is running, failed or was interrupted).\n"
        "Products in this folder may come from an earlier run and may not match config_resolved.yaml.\n"
        "Resume with -restart; this file is removed when a run ends without error.\n", encoding="utf-8")


def remove_incomplete_note(output: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        OutputLayout(output).incomplete_note.unlink()


# --------------------------------------------------------------------------------------------- the lock
def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """One run at a time in an output folder.

    The lock file is created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFS v3 and
    later) and holds the pid, host, start time and command line of its holder; a thread refreshes its
    modification time every :data:`HEARTBEAT_S` seconds. A lock is stale when its holder's process is gone
    (same host) or when it has not been refreshed for :data:`STALE_AFTER_S` seconds (any host: a killed job
    on a cluster node); a stale lock is taken over, with a warning.
    """

    def __init__(self, output: Path):
        self.path = Path(output) / LOCK
        self.content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                   "started": datetime.datetime.now().isoformat(timespec="seconds"),
                                   "command": " ".join(sys.argv)[:500], "token": uuid.uuid4().hex})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _holder(self) -> tuple[dict, float] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
            age = datetime.datetime.now().timestamp() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = {}
        return (holder if isinstance(holder, dict) else {}), age

    def _stale(self, holder: dict, age: float) -> bool:
        if age > STALE_AFTER_S:
            return True
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _process_running(holder["pid"])
        return False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`ConfigError` naming the run that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                found = self._holder()
                if found is None:
                    continue  # released meanwhile
                holder, age = found
                if not self._stale(holder, age):
                    raise ConfigError(
                        f"chain.output_path '{self.path.parent}' is in use by another iota2 run (pid "
                        f"{holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
                        f": {holder.get('command', '?')}); wait for it to end or choose another output_path. If no "
                        f"such run exists any more, delete {self.path}") from None
                self._take_over(holder)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(self.content)
                handle.flush()
                os.fsync(handle.fileno())
            self._thread = threading.Thread(target=self._heartbeat, name="iota2-lock", daemon=True)
            self._thread.start()
            return
        raise ConfigError(f"could not take the lock {self.path}: other runs keep taking it; try again")

    def _take_over(self, holder: dict) -> None:
        """Remove a stale lock (renamed first, so that two runs taking it over at once do not both win)."""
        aside = self.path.with_name(f"{LOCK}.stale.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = {}
        if isinstance(moved, dict) and holder.get("token") and moved.get("token") != holder.get("token"):
            # another run took the stale lock over between our look and the rename: give it back
            with contextlib.suppress(OSError):
                os.rename(aside, self.path)
            return
        aside.unlink(missing_ok=True)
        LOGGER.warning("%s: took over the lock of a run that is gone (pid %s on %s, started %s)", self.path.parent,
                       holder.get("pid", "?"), holder.get("host", "?"), holder.get("started", "?"))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Give the lock back (only if this run still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text(encoding="utf-8")).get("token") == json.loads(self.content)["token"]:
                self.path.unlink()

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
