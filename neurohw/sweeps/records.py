"""Each finished point of a sweep, recorded atomically, so that a killed sweep resumes.

``<sweep folder>/points/<task>.json`` (``task`` = ``p<point>-s<seed>``) holds the point's values,
seed, status (``ok`` or ``failed`` with its one-line error), metrics, run directory and the key
of its config (sha256 of the canonical JSON of the exact experiment the point ran). A record is
written under a temporary name and renamed (:func:`neurohw.paths.atomic_path`): it is either
complete or absent. On a new start, a task whose record is ``ok`` and whose key matches is not
run again; a failed one, or one whose config changed since, is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from neurohw.experiments.feature_cache import canonical_json
from neurohw.paths import atomic_path


#: the file that names what a sweep or search folder holds
FOLDER_FILES = {"sweep": "sweep.json", "search": "search.json"}


def claim_folder(folder: str | Path, kind: str, name: str) -> None:
    """Refuse ``folder`` when it holds another sweep or search than ``kind`` ``name`` (running
    again into one's own folder resumes it; into another's would mix two tables in one folder)."""
    from neurohw.errors import ConfigError

    folder = Path(folder)
    for other_kind, fname in FOLDER_FILES.items():
        try:
            held = json.loads((folder / fname).read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            continue
        if other_kind != kind or held != name:
            raise ConfigError(f"{folder} holds the {other_kind} '{held}', not the {kind} '{name}'; "
                              f"give another --out (or remove that folder to start it afresh)")


def config_key(raw: dict) -> str:
    """sha256 of the canonical JSON of a point's raw experiment config."""
    import hashlib

    return hashlib.sha256(canonical_json(raw).encode()).hexdigest()


@dataclass
class RecordStore:
    """The ``points/`` folder of a sweep."""

    folder: Path

    @property
    def path(self) -> Path:
        return Path(self.folder) / "points"

    def file(self, task: str) -> Path:
        return self.path / f"{task}.json"

    def write(self, task: str, record: dict) -> None:
        """Store ``record`` for ``task`` (complete or not at all)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.file(task), suffix=".json") as tmp:
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=True))

    def read(self, task: str) -> dict | None:
        """The record of ``task``, or None (absent or unreadable: the task runs again)."""
        try:
            return json.loads(self.file(task).read_text())
        except (OSError, ValueError):
            return None

    def finished(self, task: str, key: str) -> dict | None:
        """The ``ok`` record of ``task`` when it ran exactly this config (``key``), else None."""
        rec = self.read(task)
        return rec if rec is not None and rec.get("status") == "ok" and rec.get("key") == key else None
