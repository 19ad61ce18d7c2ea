"""The feature cache: encoder features keyed by what determines them, one immutable sealed file
per finished block, verified before it is parsed, resumable, shared safely by concurrent
processes. It follows the storage rule of :mod:`neurohw.storage`.

Key: sha256 of the canonical JSON (sorted keys, no spaces) of
``{data, binning, device, reservoir, seed, samples, dataset, version}`` where ``version`` is
:data:`FEATURE_VERSION` (bumped whenever the encoder's numbers or this layout change for the same
spec). Runs that differ only in the head or the task share the entry.

Entry ``<cache_dir>/features/<key>/``:

- ``spec.seal``: the sealed canonical JSON ``{"layout", "spec", "n", "block_size"}``, written
  (atomically) before the first block;
- ``block-<b>.seal`` (``b`` zero-padded to 6 digits): samples
  ``[b * block_size, min((b + 1) * block_size, n))``, a sealed safetensors payload (one tensor
  per feature, shapes ``(rows, ...)``) whose metadata names the key, the block, its first and
  last-plus-one sample and the seconds it took to encode.

Every file is written once (temporary name, fsync, rename) and never changed. A reader checks the
SHA-256 of a file's bytes against its header first (:func:`neurohw.storage.read_sealed`) and only
then parses them (JSON, safetensors), then checks what they say (key, block, rows, the same
features as the entry's other blocks). A file that fails any check is moved aside
(:func:`neurohw.storage.quarantine`, one warning line naming it) and its block is encoded again
into a new file; a damaged ``spec.seal`` or one of another layout quarantines the whole entry.
A killed run resumes at the first missing block: finished blocks are kept.

Concurrency: a process holds an exclusive ``flock`` on ``<key>.lock`` (beside the entry) while it
checks and fills the entry, so the second of two identical runs waits and then reads what the
first computed. Everything read under the lock is verified before it is parsed, so damaged bytes
cannot make a parser hang while the lock is held. A cache that cannot be locked because it is
read-only is read without the lock (its files are immutable); a block that must be written there
ends the run with one error line.

A write that fails for lack of space publishes nothing and ends the run with one line naming the
path and "no space left" (:class:`neurohw.storage.NoSpaceError`, exit code 2).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from neurohw.paths import cache_dir, file_lock, remove_stale_temporaries
from neurohw.progress import Progress
from neurohw.storage import DamagedEntry, StorageError, pack_arrays, quarantine, read_sealed, unpack_arrays, write_sealed

#: bump when the encoder's outputs change for the same spec, or the layout of an entry changes
#: (invalidates every cached feature)
#: 4: sealed per-block files (storage rule) replace the mutable HDF5 file;
#: 3: read noise from Philox4x32-7 + float32 Box-Muller; count inputs read bit-serially on bit-serial devices
FEATURE_VERSION = 4
#: the layout of an entry (spec.seal, block-<b>.seal); part of spec.seal
LAYOUT = 1
#: the largest spec.seal read (its canonical JSON is a few kB)
_SPEC_MAX_BYTES = 1 << 22


def canonical_json(obj) -> str:
    """Deterministic JSON: sorted keys, no whitespace, numpy scalars as Python numbers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def feature_key(spec: dict) -> str:
    """sha256 hex digest of the canonical JSON of ``spec`` plus :data:`FEATURE_VERSION`."""
    return hashlib.sha256(canonical_json({**spec, "version": FEATURE_VERSION}).encode()).hexdigest()


class FeatureCache:
    """One cached feature entry: its spec file and its block files (see the module doc).

    Use it inside :meth:`locked` when other processes may share the cache
    (:func:`compute_cached` does).
    """

    def __init__(self, spec: dict, n_samples: int, root: Path | None = None):
        self.spec = {**spec, "version": FEATURE_VERSION}
        self.key = feature_key(spec)
        self.n = int(n_samples)
        self.root = Path(root if root is not None else cache_dir() / "features")
        self.path = self.root / self.key
        self.warnings: list[str] = []

    @property
    def spec_path(self) -> Path:
        return self.path / "spec.seal"

    def block_path(self, b: int) -> Path:
        return self.path / f"block-{b:06d}.seal"

    def blocks(self, block_size: int) -> list[np.ndarray]:
        """The sample indices of every block."""
        return [np.arange(s, min(s + block_size, self.n)) for s in range(0, self.n, block_size)]

    # ------------------------------------------------------------------ locking and folders

    @contextmanager
    def locked(self):
        """The exclusive lock of this entry (a context manager). The features folder is made
        first (a file or dangling link in its place is quarantined); a lock that cannot be
        created because the cache is read-only is skipped (see the module doc)."""
        self._ensure_folder(self.root, "the features folder")
        for attempt in (0, 1):
            try:
                cm = file_lock(self.path)
                cm.__enter__()
            except IsADirectoryError:
                if attempt:
                    raise StorageError(f"{self.path}.lock: a folder where the lock file belongs; remove it") from None
                quarantine(Path(f"{self.path}.lock"), "a folder where the lock file belongs")
                continue
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    yield None  # read-only cache: its immutable files are read without a lock
                    return
                raise StorageError(f"{self.path}.lock: cannot be created ({exc.strerror or exc}); "
                                   f"check the cache folder {self.root}") from None
            try:
                yield cm
            finally:
                cm.__exit__(None, None, None)
            return

    def _ensure_folder(self, folder: Path, what: str) -> None:
        """Make ``folder``; a file or a dangling link in its place is quarantined first."""
        if folder.is_dir():
            return
        if os.path.lexists(folder):
            quarantine(folder, f"{'a dangling link' if folder.is_symlink() else 'a file'} where {what} belongs")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            if not folder.is_dir():
                raise StorageError(f"{folder}: not a folder and cannot be moved aside; remove it") from None
        except OSError as exc:
            if not folder.is_dir():
                raise StorageError(f"{folder}: cannot be created ({exc.strerror or exc}); check the cache folder") from None

    # ------------------------------------------------------------------ the spec file

    def _spec_doc(self, block_size: int) -> dict:
        return {"layout": LAYOUT, "spec": self.spec, "n": self.n, "block_size": int(block_size)}

    def open_entry(self, batch_size: int) -> int:
        """Check (or create) the entry and return its block size: an existing, verified spec
        file keeps its block size; a damaged one, or one of another spec or size, moves the
        whole entry aside (one warning) and a new one is created with ``batch_size``."""
        if os.path.lexists(self.path) and not self.path.is_dir():
            quarantine(self.path, "not a folder (an entry is a folder)")
        if self.path.is_dir():
            remove_stale_temporaries(self.path)
            try:
                doc = json.loads(read_sealed(self.spec_path, _SPEC_MAX_BYTES))
                bs = doc.get("block_size") if isinstance(doc, dict) else None
                if (isinstance(bs, int) and not isinstance(bs, bool) and bs >= 1
                        and canonical_json(doc) == canonical_json(self._spec_doc(bs))):
                    return bs
                quarantine(self.path, "its spec file is of another spec, size or layout")
            except FileNotFoundError:
                pass  # removed, or killed before it was written: written now; blocks are checked one by one
            except DamagedEntry as exc:
                quarantine(self.path, f"spec.seal: {exc.reason}")
            except (ValueError, UnicodeDecodeError):  # verified bytes that are not our JSON
                quarantine(self.path, "spec.seal is not the entry's JSON")
        bs = int(batch_size)
        write_sealed(self.spec_path, canonical_json(self._spec_doc(bs)).encode())
        return bs

    # ------------------------------------------------------------------ blocks

    def write(self, b: int, indices: np.ndarray, features: dict[str, np.ndarray], encode_s: float) -> None:
        """Publish block ``b`` (samples ``indices``, consecutive) as one sealed file."""
        idx = np.asarray(indices, dtype=np.int64)
        for name, value in features.items():
            if len(value) != len(idx):
                raise ValueError(f"feature {name!r} has {len(value)} rows for {len(idx)} indices")
        meta = {"key": self.key, "block": str(b), "start": str(int(idx[0])), "stop": str(int(idx[-1]) + 1),
                "encode_s": repr(float(encode_s))}
        write_sealed(self.block_path(b), pack_arrays(features, meta))

    def load_block(self, b: int, indices: np.ndarray, layout: dict | None) -> tuple[dict[str, np.ndarray], float] | None:
        """Block ``b``'s verified features and encoding seconds, or None when it is absent or
        fails a check (then it is quarantined with one warning). ``layout``: the features'
        names, dtypes and trailing shapes of the entry's other blocks (None: the first)."""
        path = self.block_path(b)
        try:
            payload = read_sealed(path)
        except FileNotFoundError:
            return None
        except DamagedEntry as exc:
            self._quarantine(path, exc.reason)
            return None
        try:
            feats, meta = unpack_arrays(payload)
            want = {"key": self.key, "block": str(b), "start": str(int(indices[0])), "stop": str(int(indices[-1]) + 1)}
            if any(meta.get(k) != v for k, v in want.items()):
                raise ValueError("it belongs to another entry or block")
            if not feats or any(len(v) != len(indices) for v in feats.values()):
                raise ValueError("wrong number of rows")
            if layout is not None and _layout(feats) != layout:
                raise ValueError("other features than the entry's other blocks")
            encode_s = float(meta.get("encode_s", "0"))
        except ValueError as exc:
            self._quarantine(path, f"verified but inconsistent: {exc}")
            return None
        return feats, encode_s

    def _quarantine(self, path: Path, reason: str) -> None:
        self.warnings.append(f"{path}: {reason}")
        quarantine(path, reason)

    @property
    def done(self) -> np.ndarray:
        """Boolean mask of the samples whose block file is present (not verified)."""
        out = np.zeros(self.n, dtype=bool)
        try:
            doc = json.loads(read_sealed(self.spec_path, _SPEC_MAX_BYTES))
            bs = int(doc["block_size"])
        except (FileNotFoundError, DamagedEntry, ValueError, KeyError, TypeError):
            return out
        for b, idx in enumerate(self.blocks(bs)):
            out[idx] = self.block_path(b).is_file()
        return out


def _layout(feats: dict[str, np.ndarray]) -> dict:
    return {k: (v.dtype.str, v.shape[1:]) for k, v in feats.items()}


def compute_cached(
    cache: FeatureCache,
    encode: Callable[[np.ndarray], dict[str, np.ndarray]],
    batch_size: int,
    progress: bool = False,
    description: str = "features",
) -> tuple[dict[str, np.ndarray], dict]:
    """Under the entry's lock: check the entry, load its verified blocks, encode the missing or
    damaged ones with ``encode(indices)`` (each published as it finishes), and return every
    block's features concatenated.

    Blocks are fixed (``batch_size`` for a new entry, the entry's own block size for an existing
    one). Returns ``(features, attrs)``; ``attrs['encode_s']`` is the encoding time summed over
    the blocks (whatever session encoded them).
    """
    with cache.locked():
        bs = cache.open_entry(batch_size)
        blocks = cache.blocks(bs)
        got: list[dict[str, np.ndarray] | None] = [None] * len(blocks)
        seconds = [0.0] * len(blocks)
        layout = None
        for b, idx in enumerate(blocks):
            loaded = cache.load_block(b, idx, layout)
            if loaded is not None:
                got[b], seconds[b] = loaded
                layout = layout or _layout(got[b])
        todo = [b for b in range(len(blocks)) if got[b] is None]
        if todo:
            with Progress(description, total=cache.n, completed=cache.n - sum(len(blocks[b]) for b in todo),
                          enabled=progress) as bar:
                while todo:
                    b = todo.pop(0)
                    t0 = time.perf_counter()
                    feats = {k: np.ascontiguousarray(v) for k, v in encode(blocks[b]).items()}
                    seconds[b] = time.perf_counter() - t0
                    cache.write(b, blocks[b], feats, seconds[b])
                    got[b] = feats
                    bar.update(advance=len(blocks[b]))
                    if layout is not None and _layout(feats) != layout:  # the stored blocks hold other features
                        stale = [k for k in range(len(blocks)) if k not in todo and got[k] is not None and _layout(got[k]) == layout]
                        for k in stale:
                            cache._quarantine(cache.block_path(k), "other features than the encoder gives")
                            got[k] = None
                        todo = sorted(todo + stale)
                        layout = _layout(feats)
    names = sorted(got[0]) if got else []
    feats = {k: np.concatenate([g[k] for g in got]) for k in names}
    return feats, {"encode_s": float(sum(seconds))}

