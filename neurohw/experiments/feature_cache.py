"""The feature cache: encoder features in HDF5, keyed by what determines them, resumable.

Key: sha256 of the canonical JSON (sorted keys, no spaces) of
``{data, binning, device, reservoir, seed, samples, version}`` where ``version`` is
:data:`FEATURE_VERSION` (bumped whenever the encoder's numbers change). Runs that differ only in
the head or the task share the file.

File ``<cache_dir>/features/<key>.h5``: one dataset per feature (``rate`` (N, n), ``counts``
(N, K, n), ...), ``labels`` (N,), ``done`` (N,) bool, the key's JSON in the ``spec`` attribute.
Batches are written as they finish: the features first, then their ``done`` entries, then a
flush, so a killed run resumes at the first unfinished batch. A file that cannot be opened (a
kill during its creation) or whose spec does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np

from neurohw.paths import cache_dir

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


class FeatureCache:
    """One cached feature file: create or reopen, write batches, report what is missing."""

    def __init__(self, spec: dict, n_samples: int, root: Path | None = None):
        self.spec = {**spec, "version": FEATURE_VERSION}
        self.key = feature_key(spec)
        self.n = int(n_samples)
        self.path = Path(root if root is not None else cache_dir() / "features") / f"{self.key}.h5"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check_or_reset()

    def _check_or_reset(self) -> None:
        if not self.path.exists():
            return
        try:
            with h5py.File(self.path, "r") as f:
                ok = f.attrs.get("spec") == canonical_json(self.spec) and f["done"].shape == (self.n,)
        except Exception:  # truncated or corrupt (killed while creating): rebuild
            ok = False
        if not ok:
            self.path.unlink()

    @property
    def done(self) -> np.ndarray:
        """Boolean mask of the samples whose features are stored."""
        if not self.path.exists():
            return np.zeros(self.n, dtype=bool)
        with h5py.File(self.path, "r") as f:
            return f["done"][...].astype(bool)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def write(self, indices: np.ndarray, features: dict[str, np.ndarray], attrs: dict | None = None) -> None:
        """Store the features of samples ``indices`` (ascending), then mark them done and flush."""
        idx = np.asarray(indices, dtype=np.int64)
        with h5py.File(self.path, "a") as f:
            if "done" not in f:
                f.attrs["spec"] = canonical_json(self.spec)
                f.create_dataset("done", shape=(self.n,), dtype=bool, fillvalue=False)
            for name, value in features.items():
                value = np.asarray(value)
                if len(value) != len(idx):
                    raise ValueError(f"feature {name!r} has {len(value)} rows for {len(idx)} indices")
                if name not in f:
                    f.create_dataset(name, shape=(self.n, *value.shape[1:]), dtype=value.dtype, chunks=True)
                f[name][idx] = value
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            f.flush()
            f["done"][idx] = True
            f.flush()

    def set_attrs(self, attrs: dict) -> None:
        """Store small metadata (e.g. energy per sample) beside the features."""
        with h5py.File(self.path, "a") as f:
            for k, v in attrs.items():
                f.attrs[k] = v

    def read(self, names: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """All features (or ``names``) and the file's attributes; the cache must be complete."""
        if not self.complete:
            raise RuntimeError(f"feature cache {self.path} is incomplete")
        with h5py.File(self.path, "r") as f:
            keys = [k for k in f.keys() if k != "done"] if names is None else list(names)
            feats = {k: f[k][...] for k in keys}
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items() if k != "spec"}
        return feats, attrs


def compute_cached(
    cache: FeatureCache,
    encode: Callable[[np.ndarray], dict[str, np.ndarray]],
    batch_size: int,
    progress: bool = False,
    description: str = "features",
) -> tuple[dict[str, np.ndarray], dict]:
    """Fill the missing batches of ``cache`` with ``encode(indices)``, then read everything back.

    Batches are the fixed blocks ``[k*batch_size, (k+1)*batch_size)``; only blocks with a sample not
    yet done are encoded. Returns ``(features, attrs)``; ``attrs['encode_s']`` accumulates the
    encoding time over every (possibly interrupted) session.
    """
    done = cache.done
    blocks = [np.arange(s, min(s + batch_size, cache.n)) for s in range(0, cache.n, batch_size)]
    todo = [b for b in blocks if not done[b].all()]
    if todo:
        from neurohw.progress import Progress

        prev = 0.0
        if cache.path.exists():
            with h5py.File(cache.path, "r") as f:
                prev = float(f.attrs.get("encode_s", 0.0))
        with Progress(description, total=cache.n, completed=int(done.sum()), enabled=progress) as bar:
            for block in todo:
                t0 = time.perf_counter()
                feats = encode(block)
                prev += time.perf_counter() - t0
                cache.write(block, feats, {"encode_s": prev})
                bar.update(advance=len(block))
    return cache.read()
