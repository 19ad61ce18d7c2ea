"""The feature cache: encoder features in HDF5, keyed by what determines them, resumable,
checked on every read, shared safely by concurrent processes.

Key: sha256 of the canonical JSON (sorted keys, no spaces) of
``{data, binning, device, reservoir, seed, samples, dataset, version}`` where ``version`` is
:data:`FEATURE_VERSION` (bumped whenever the encoder's numbers change for the same spec).
Runs that differ only in the head or the task share the file.

File ``<cache_dir>/features/<key>.h5``: one dataset per feature (``rate`` (N, n), ``counts``
(N, K, n), ...), ``done`` (N,) bool, ``block_crc`` (n_blocks,) uint32, the key's JSON in the
``spec`` attribute and the block size in ``block_size``. Samples are encoded in fixed blocks
``[b * block_size, (b + 1) * block_size)``; a finished block is written features first, then its
checksum (CRC-32 of its rows of every feature, in name order), then its ``done`` entries, then
flushed, so a killed run resumes at the first unfinished block.

Integrity: every read recomputes each done block's checksum. A block whose data no longer
matches (a flipped byte on disk, a torn write) is reported in one warning line and encoded
again: exactly the damaged blocks, never a silent use. A file that cannot be opened at all
(truncated, damaged header) or whose spec does not match is rebuilt, also with a warning.

Concurrency: a process holds an exclusive lock on ``<key>.h5.lock`` (:func:`neurohw.paths.file_lock`)
while it checks, fills or reads a file, so several runs (or sweep workers) sharing a cache never
see a half-written block or an HDF5 locking error; the second of two identical runs waits and
then reads what the first computed.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np

from neurohw.paths import cache_dir, file_lock

#: bump when the encoder's outputs change for the same spec (invalidates every cached feature)
FEATURE_VERSION = 3  # 3: read noise from Philox4x32-7 + float32 Box-Muller; count inputs read bit-serially on bit-serial devices


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


def block_checksum(features: dict[str, np.ndarray]) -> int:
    """CRC-32 of one block: every feature's rows, in name order, as stored (C order)."""
    crc = 0
    for name in sorted(features):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(np.ascontiguousarray(features[name]).tobytes(), crc)
    return crc


def _open(path: Path, mode: str):
    return h5py.File(path, mode, locking=False)  # processes coordinate through file_lock


class FeatureCache:
    """One cached feature file: create or reopen, write blocks, verify, report what is missing.

    Use it inside :meth:`locked` when other processes may share the cache
    (:func:`compute_cached` does).
    """

    def __init__(self, spec: dict, n_samples: int, root: Path | None = None):
        self.spec = {**spec, "version": FEATURE_VERSION}
        self.key = feature_key(spec)
        self.n = int(n_samples)
        self.path = Path(root if root is not None else cache_dir() / "features") / f"{self.key}.h5"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.warnings: list[str] = []

    def locked(self):
        """The exclusive lock of this entry (a context manager)."""
        return file_lock(self.path)

    # ------------------------------------------------------------------ state on disk

    def check_or_reset(self) -> None:
        """Delete the file when it cannot be read or belongs to another spec (it is rebuilt)."""
        if not self.path.exists():
            return
        try:
            with _open(self.path, "r") as f:
                ok = (f.attrs.get("spec") == canonical_json(self.spec) and f["done"].shape == (self.n,)
                      and "block_crc" in f and int(f.attrs.get("block_size", 0)) >= 1)
        except Exception:  # truncated or damaged beyond reading (e.g. killed while creating)
            ok = False
            self._warn(f"feature cache {self.path.name} is unreadable; rebuilding it")
        if not ok:
            self.path.unlink()

    @property
    def block_size(self) -> int | None:
        """The file's block size (None before its first block is written)."""
        if not self.path.exists():
            return None
        with _open(self.path, "r") as f:
            return int(f.attrs["block_size"]) if "block_size" in f.attrs else None

    @property
    def done(self) -> np.ndarray:
        """Boolean mask of the samples whose features are stored."""
        if not self.path.exists():
            return np.zeros(self.n, dtype=bool)
        with _open(self.path, "r") as f:
            return f["done"][...].astype(bool)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def blocks(self, block_size: int) -> list[np.ndarray]:
        """The sample indices of every block."""
        return [np.arange(s, min(s + block_size, self.n)) for s in range(0, self.n, block_size)]

    # ------------------------------------------------------------------ writing

    def write(self, indices: np.ndarray, features: dict[str, np.ndarray], attrs: dict | None = None, block_size: int | None = None) -> None:
        """Store the features of one whole block ``indices`` (ascending), its checksum, then mark
        it done and flush. ``block_size``: the layout of a new file (default: ``len(indices)``)."""
        idx = np.asarray(indices, dtype=np.int64)
        with _open(self.path, "a") as f:
            if "done" not in f:
                bs = int(block_size or len(idx))
                f.attrs["spec"] = canonical_json(self.spec)
                f.attrs["block_size"] = bs
                f.create_dataset("done", shape=(self.n,), dtype=bool, fillvalue=False)
                f.create_dataset("block_crc", shape=(-(-self.n // bs),), dtype=np.uint32, fillvalue=0)
            bs = int(f.attrs["block_size"])
            if len(idx) == 0 or idx[0] % bs or len(idx) != min(bs, self.n - idx[0]) or np.any(np.diff(idx) != 1):
                raise ValueError(f"write() takes one whole block of {bs} consecutive samples, got {len(idx)} from {idx[:1]}")
            for name, value in features.items():
                value = np.asarray(value)
                if len(value) != len(idx):
                    raise ValueError(f"feature {name!r} has {len(value)} rows for {len(idx)} indices")
                if name not in f:
                    f.create_dataset(name, shape=(self.n, *value.shape[1:]), dtype=value.dtype, chunks=True)
                f[name][idx[0] : idx[-1] + 1] = value
            stored = {name: f[name][idx[0] : idx[-1] + 1] for name in features}  # as written, in the file's dtypes
            f["block_crc"][idx[0] // bs] = block_checksum(stored)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            f.flush()
            f["done"][idx[0] : idx[-1] + 1] = True
            f.flush()

    # ------------------------------------------------------------------ reading and checking

    def verify(self) -> list[int]:
        """Check every done block against its checksum; damaged blocks are marked not done (so
        they are encoded again) and reported in one warning. Returns the damaged block numbers."""
        if not self.path.exists():
            return []
        with _open(self.path, "r") as f:  # read-only unless something is damaged: no write, no new mtime
            bs = int(f.attrs["block_size"])
            names = sorted(k for k in f.keys() if k not in ("done", "block_crc"))
            done, crc = f["done"][...].astype(bool), f["block_crc"][...]
            bad = [b for b, s in enumerate(range(0, self.n, bs))
                   if done[s : s + bs].any() and block_checksum({k: f[k][s : min(s + bs, self.n)] for k in names}) != int(crc[b])]
        if bad:
            with _open(self.path, "r+") as f:
                for b in bad:
                    f["done"][b * bs : min((b + 1) * bs, self.n)] = False
                f.flush()
        if bad:
            self._warn(f"feature cache {self.path.name}: {len(bad)} block(s) of {bs} samples fail their checksum "
                       f"(blocks {bad[:8]}{' ...' if len(bad) > 8 else ''}); encoding them again")
        return bad

    def read(self, names: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """All features (or ``names``) and the file's attributes; the cache must be complete."""
        if not self.complete:
            raise RuntimeError(f"feature cache {self.path} is incomplete")
        with _open(self.path, "r") as f:
            keys = [k for k in f.keys() if k not in ("done", "block_crc")] if names is None else list(names)
            feats = {k: f[k][...] for k in keys}
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items() if k not in ("spec", "block_size")}
        return feats, attrs

    def _warn(self, message: str) -> None:
        from neurohw.progress import warn

        self.warnings.append(message)
        warn(message)


def compute_cached(
    cache: FeatureCache,
    encode: Callable[[np.ndarray], dict[str, np.ndarray]],
    batch_size: int,
    progress: bool = False,
    description: str = "features",
) -> tuple[dict[str, np.ndarray], dict]:
    """Under the entry's lock: check the file, encode the missing or damaged blocks with
    ``encode(indices)``, then read everything back.

    Blocks are fixed (``batch_size`` for a new file, the file's own block size for an existing
    one); only blocks with a sample not done are encoded. Returns ``(features, attrs)``;
    ``attrs['encode_s']`` accumulates the encoding time over every (possibly interrupted) session.
    """
    from neurohw.progress import Progress

    with cache.locked():
        cache.check_or_reset()
        cache.verify()
        bs = cache.block_size or int(batch_size)
        done = cache.done
        todo = [b for b in cache.blocks(bs) if not done[b].all()]
        if todo:
            prev = 0.0
            if cache.path.exists():
                with _open(cache.path, "r") as f:
                    prev = float(f.attrs.get("encode_s", 0.0))
            with Progress(description, total=cache.n, completed=int(done.sum()), enabled=progress) as bar:
                for block in todo:
                    t0 = time.perf_counter()
                    feats = encode(block)
                    prev += time.perf_counter() - t0
                    cache.write(block, feats, {"encode_s": prev}, block_size=bs)
                    bar.update(advance=len(block))
        return cache.read()
