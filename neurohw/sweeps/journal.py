"""A search's Optuna journal (``study.log``) in which every entry carries its own digest.

Optuna's journal storage replays a list of operations (create a trial, set a parameter, tell a
value, ...). :class:`CheckedJournal` is its backend: one entry per line, ::

    <sha256 of the JSON text, 64 hex digits> <JSON text>\\n

after a first line ``neurohw-journal 1``. Appending writes whole lines, flushes and fsyncs. On
opening, every line's digest is checked before its JSON is parsed; the journal is valid up to
its first line that is cut (``kill -9`` or a full disk in the middle of an append), damaged or
not ours. Everything from that line on is dropped: the file is moved aside
(:func:`neurohw.storage.quarantine`, one warning line) and its verified entries are written
to a new file by the storage rule (:func:`neurohw.storage.write_bytes_atomic`). Later entries
depend on earlier ones (trial numbers), so nothing after a bad line can be kept; the search
then runs the lost trials again, and proposes the same ones (see :mod:`.search`: the sampler is
seeded per trial).

Only the session holding the search folder's lock (:func:`neurohw.sweeps.records.hold_folder`)
opens the journal, so the backend keeps the verified entries in memory after the first read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend

from neurohw.storage import NoSpaceError, StorageError, quarantine, write_bytes_atomic

HEADER = b"neurohw-journal 1\n"
#: a journal larger than this is not one neurohw wrote (a 10,000-trial study is ~20 MB)
MAX_BYTES = 1 << 30


def entry_line(entry: dict[str, Any]) -> bytes:
    """One journal line: the SHA-256 of the entry's JSON text, a space, the text, a newline."""
    text = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return hashlib.sha256(text).hexdigest().encode("ascii") + b" " + text + b"\n"


def verified_entries(blob: bytes) -> tuple[list[dict], int, str | None]:
    """The entries of a journal's bytes up to the first bad line: ``(entries, bytes they span,
    reason the rest was refused or None)``. Each line's digest is checked before it is parsed."""
    if not blob:
        return [], 0, None
    if not blob.startswith(HEADER):
        return [], 0, "not a neurohw journal (its first line is not 'neurohw-journal 1')"
    entries: list[dict] = []
    pos = len(HEADER)
    while pos < len(blob):
        end = blob.find(b"\n", pos)
        if end < 0:
            return entries, pos, f"entry {len(entries) + 1} is cut short (no line end)"
        line = blob[pos:end]
        digest, sep, text = line.partition(b" ")
        if not sep or len(digest) != 64 or hashlib.sha256(text).hexdigest().encode("ascii") != digest:
            return entries, pos, f"entry {len(entries) + 1} does not match its SHA-256"
        try:
            entry = json.loads(text)
        except (ValueError, RecursionError):  # verified bytes that are not JSON: not ours
            return entries, pos, f"entry {len(entries) + 1} is not JSON"
        if not isinstance(entry, dict):
            return entries, pos, f"entry {len(entries) + 1} is not an operation"
        entries.append(entry)
        pos = end + 1
    return entries, pos, None


class CheckedJournal(BaseJournalBackend):
    """Optuna journal backend over ``path`` (see the module doc)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: list[dict] | None = None

    def _load(self) -> list[dict]:
        if self._entries is not None:
            return self._entries
        try:
            if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
                quarantine(self.path, "not a regular file")
            size = self.path.stat().st_size if self.path.exists() else 0
            if size > MAX_BYTES:
                quarantine(self.path, f"{size} bytes, more than a journal of this kind holds")
            blob = self.path.read_bytes() if self.path.exists() else b""
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot be read ({exc.strerror or exc}); check the folder's permissions") from None
        entries, good, reason = verified_entries(blob)
        if reason is not None:
            quarantine(self.path, f"{reason}; the journal is cut to its {len(entries)} verified entries")
            write_bytes_atomic(self.path, blob[:good] if good else HEADER)
        elif not blob:
            write_bytes_atomic(self.path, HEADER)
        self._entries = entries
        return entries

    def read_logs(self, log_number_from: int):
        return list(self._load()[log_number_from:])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        entries = self._load()
        data = b"".join(entry_line(e) for e in logs)
        try:
            with open(self.path, "ab") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpaceError(f"{self.path}: no space left on device while appending to it; free space and run the "
                                   "search again (it resumes from the last complete entry)") from None
            raise StorageError(f"{self.path}: cannot be written ({exc.strerror or exc}); check the folder's permissions") from None
        entries.extend(json.loads(json.dumps(e)) for e in logs)
