"""Each finished point of a sweep, recorded by the storage rule, so that a killed sweep resumes
and no edited or damaged record reaches the table.

``<sweep folder>/points/<task>.bin`` (``task`` = ``p<point>-s<seed>``) is a sealed file
(:func:`neurohw.storage.write_sealed`: a 48-byte header with the SHA-256 of its content, then
the record as JSON): the point's values, seed, status (``ok`` or ``failed`` with its one-line
error), metrics, run directory and ``key``, the SHA-256 of the canonical JSON of the exact
experiment the point ran. It is written under a temporary name, fsynced and renamed: complete
or absent.

On a new start (:meth:`RecordStore.finished`) a record is trusted only when its content matches
its SHA-256, its JSON has the shape written here (every field, of its type), and its task,
point, seed, values and key are this point's. A record that fails any of these (edited, cut,
damaged, of an older format, or valid JSON of the wrong shape) is moved aside into
``points/.quarantine/`` with one warning line and the point runs again; a record of a config
that changed since (another ``key``) or of a failed point runs again too, without a warning.

:func:`hold_folder` makes one session at a time own a sweep or search folder: an exclusive,
non-blocking ``flock`` on ``<folder>/.session.lock`` (released by the kernel when the process
dies), taken before ``sweep.json`` / ``search.json`` is written and any point runs; a second
session into the same folder is refused with one line before it runs anything.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from neurohw.errors import ConfigError
from neurohw.experiments.feature_cache import canonical_json
from neurohw.storage import DamagedEntry, quarantine, read_sealed, sha256_bytes, write_sealed

#: the file that names what a sweep or search folder holds
FOLDER_FILES = {"sweep": "sweep.json", "search": "search.json"}
#: a point record is a few kB; anything far larger is not one
MAX_RECORD_BYTES = 1 << 20
#: the fields of a record and their types (``None`` allowed where listed)
FIELDS = {"task": (str,), "point": (int,), "seed": (int,), "values": (dict,), "key": (str,), "status": (str,),
          "metrics": (dict,), "error": (str, type(None)), "run_dir": (str, type(None)), "wall_s": (int, float)}


def claim_folder(folder: str | Path, kind: str, name: str) -> None:
    """Refuse ``folder`` when it holds another sweep or search than ``kind`` ``name`` (running
    again into one's own folder resumes it; into another's would mix two tables in one folder)."""
    folder = Path(folder)
    for other_kind, fname in FOLDER_FILES.items():
        try:
            held = json.loads((folder / fname).read_text()).get("name")
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if other_kind != kind or held != name:
            raise ConfigError(f"{folder} holds the {other_kind} '{held}', not the {kind} '{name}'; "
                              f"give another --out (or remove that folder to start it afresh)")


@contextmanager
def hold_folder(folder: str | Path, kind: str, name: str):
    """Own ``folder`` for one session of the ``kind`` ``name`` (see the module doc): refuse it,
    with one line, when another session holds it or it holds another study."""
    import fcntl

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".session.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ConfigError(f"{kind} folder {folder}: cannot be used ({exc.strerror or exc}); give another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{folder}: another session of a sweep or search is running in this folder; wait for it to "
                              f"finish (running the {kind} again then resumes it) or give another --out") from None
        claim_folder(folder, kind, name)
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def config_key(raw: dict) -> str:
    """sha256 of the canonical JSON of a point's raw experiment config."""
    return sha256_bytes(canonical_json(raw).encode())


def _number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def shape_problem(record) -> str | None:
    """What is wrong with the shape of a decoded record, or None (see :data:`FIELDS`)."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not a record"
    for name, types in FIELDS.items():
        if name not in record:
            return f"no '{name}'"
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, types):
            return f"'{name}' is a {type(value).__name__}"
    if record["status"] not in ("ok", "failed"):
        return f"status {record['status']!r}"
    if not all(isinstance(k, str) and _number(v) for k, v in record["metrics"].items()):
        return "metrics that are not numbers"
    if record["status"] == "ok" and (record["run_dir"] is None or record["error"] is not None):
        return "an ok record without its run directory"
    if isinstance(record["wall_s"], float) and not math.isfinite(record["wall_s"]):
        return "a wall time that is not finite"
    return None


@dataclass
class RecordStore:
    """The ``points/`` folder of a sweep."""

    folder: Path

    @property
    def path(self) -> Path:
        return Path(self.folder) / "points"

    def file(self, task: str) -> Path:
        return self.path / f"{task}.bin"

    def write(self, task: str, record: dict) -> None:
        """Store ``record`` for ``task`` (complete or not at all; sealed with its SHA-256)."""
        problem = shape_problem(record)
        if problem is not None:  # a bug here, never the user's input
            raise ValueError(f"point record {task}: {problem}")
        write_sealed(self.file(task), json.dumps(record, indent=1, sort_keys=True, allow_nan=True).encode())

    def read(self, task: str) -> dict | None:
        """The verified record of ``task``; None when absent. A record that is damaged, edited or
        of the wrong shape is quarantined (one warning line) and None is returned."""
        path = self.file(task)
        try:
            payload = read_sealed(path, max_bytes=MAX_RECORD_BYTES)
            try:
                record = json.loads(payload)
            except (ValueError, RecursionError):
                raise DamagedEntry(path, "its content is not JSON") from None
            problem = shape_problem(record)
            if problem is not None:
                raise DamagedEntry(path, f"not a point record ({problem})")
            if record["task"] != task:
                raise DamagedEntry(path, f"the record of {record['task']}, not of {task}")
        except FileNotFoundError:
            return None
        except DamagedEntry as exc:
            quarantine(path, f"{exc.reason}; point {task} runs again")
            return None
        return record

    def finished(self, task: str, meta: dict) -> dict | None:
        """The verified ``ok`` record of ``task`` when it ran exactly this point (``meta``: task,
        point, seed, values and config ``key``), else None (the point runs)."""
        rec = self.read(task)
        if rec is None or rec["status"] != "ok" or rec["key"] != meta["key"]:
            return None
        mine = (meta["point"], meta["seed"], canonical_json(meta["values"]))
        if (rec["point"], rec["seed"], canonical_json(rec["values"])) != mine:
            quarantine(self.file(task), f"its point, seed or values are not those of {task} with this config; it runs again")
            return None
        return rec
