"""The embedded datasets: generated from a seed on first use, cached, loaded by name.

``digits-dvs`` (:mod:`neurohw.data.digits_dvs`) and ``digits-cochlea``
(:mod:`neurohw.data.digits_cochlea`) need no download: they are built from data that ships with
the dependencies (scikit-learn's digits, espeak-ng's voices), deterministically from a seed, and
kept in ``cache_dir()/embedded/<name>-v<version>-seed<seed>[-n<per class>].seal``. Both have the
classes ``"0"`` .. ``"9"`` (paired by digit class for the zero-shot task) and one fixed,
stratified train/test split (20 % test per class) drawn from the same seed.

A cache file follows the storage rule (:mod:`neurohw.storage`): the arrays in safetensors
layout (:func:`neurohw.storage.pack_arrays`) sealed by a header with their SHA-256
(:func:`neurohw.storage.write_sealed`: temporary name, fsync, rename), so a killed generation
never leaves a half-written entry and every load checks the digest of the bytes before they are
parsed (as views of the verified bytes, no copy). Its metadata carries the parameters it was
generated for (``meta["params"]``: name, generator version, seed, samples per class), compared
with the request after the digest: a file generated for other parameters under this name is
reported in one warning and generated again, and so is a damaged file (moved aside by
:func:`neurohw.storage.quarantine`). Concurrent processes generate a file once (an exclusive
:func:`neurohw.paths.file_lock` per file). The version in the file name changes whenever the
generated events would change.

Determinism: the same seed gives byte-identical events on the same platform (numpy Generators
seeded from ``[seed, stream, ...]``; espeak-ng run in a fresh child process per generation, see
:mod:`neurohw.data.speech`). Across CPUs or BLAS builds the float32 rendering of digits-dvs may
differ in the last bit, which can move an event that sits exactly on a threshold.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurohw.data.dataset import EventDataset
from neurohw.data.events import CAMERA_DTYPE, COCHLEA_DTYPE
from neurohw.errors import DataError, did_you_mean
from neurohw.paths import cache_dir, file_lock, remove_stale_temporaries
from neurohw.progress import Progress, note, warn
from neurohw.storage import DamagedEntry, StorageError, pack_arrays, quarantine, read_sealed, unpack_arrays, write_sealed

EMBEDDED_NAMES = ("digits-dvs", "digits-cochlea", "digits-v1")
SPLITS = ("train", "test")
#: the classes of both datasets, in label order
CLASSES = [str(d) for d in range(10)]
#: fraction of each class in the test split
TEST_FRACTION = 0.2
#: random stream of the train/test split (numpy SeedSequence entropy [seed, stream])
_SPLIT_STREAM = 99


@dataclass
class PackedEvents:
    """All samples of a generated dataset: event fields concatenated, ``counts[i]`` per sample."""

    labels: np.ndarray
    counts: np.ndarray
    columns: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if len(self.labels) != len(self.counts):
            raise ValueError(f"{len(self.labels)} labels but {len(self.counts)} event counts")
        total = int(self.counts.sum())
        for key, col in self.columns.items():
            if len(col) != total:
                raise ValueError(f"event field '{key}' has {len(col)} values, counts sum to {total}")

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=out[1:])
        return out


def pack_channel_events(
    labels: np.ndarray,
    samples: Iterable[tuple[np.ndarray, np.ndarray]],
    x_dtype: type[np.unsignedinteger],
    meta: dict,
    on_progress: Callable[..., None] | None = None,
    every: int = 1,
    stage: str = "",
) -> PackedEvents:
    """The events of a channel sensor (``COCHLEA_DTYPE``: ``t`` microseconds, ``x`` the channel,
    ``p`` = 1) packed from one ``(t, x)`` pair per sample, in label order: ``t`` as uint32, ``x``
    as ``x_dtype``. ``samples`` is consumed lazily; ``on_progress(done, len(labels), stage)``
    after every ``every``-th sample and after the last."""
    counts, t_col, x_col = [], [], []
    n = len(labels)
    for i, (t, x) in enumerate(samples):
        counts.append(len(t))
        t_col.append(t.astype(np.uint32))
        x_col.append(x.astype(x_dtype))
        if on_progress is not None and ((i + 1) % every == 0 or i + 1 == n):
            on_progress(i + 1, n, stage)
    t_all = np.concatenate(t_col)
    return PackedEvents(
        labels=labels,
        counts=np.array(counts, dtype=np.int64),
        columns={"t": t_all, "x": np.concatenate(x_col), "p": np.ones(len(t_all), dtype=np.uint8)},
        meta=meta,
    )


@dataclass(frozen=True)
class _Spec:
    name: str
    version: int  # bump whenever the generated events change
    module: str  # provides generate(seed, samples_per_class, on_progress) -> PackedEvents
    sensor_size: tuple[int, int, int]
    dtype: np.dtype
    description: str


_SPECS = {
    "digits-dvs": _Spec(
        "digits-dvs", 1, "neurohw.data.digits_dvs", (34, 34, 2), CAMERA_DTYPE,
        "scikit-learn's 1,797 handwritten digits, 3 saccades, emulated 34x34 DVS",
    ),
    "digits-cochlea": _Spec(
        "digits-cochlea", 2, "neurohw.data.digits_cochlea", (64, 1, 1), COCHLEA_DTYPE,
        "spoken digits 0-9 by espeak-ng, 64-channel cochlea model",
    ),
    "digits-v1": _Spec(
        "digits-v1", 1, "neurohw.data.digits_v1", (400, 1, 1), COCHLEA_DTYPE,
        "simulated V1 recording (400 Gabor units, Poisson) of the digits-dvs images, sample i <-> image i",
    ),
}


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise DataError(f"unknown embedded dataset '{name}'{did_you_mean(name, EMBEDDED_NAMES)}; choose one of {', '.join(EMBEDDED_NAMES)}")
    return _SPECS[name]


def _check_options(seed, samples_per_class) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"embedded dataset seed must be an integer >= 0, got {seed!r}")
    if samples_per_class is not None and (
        isinstance(samples_per_class, bool) or not isinstance(samples_per_class, (int, np.integer)) or samples_per_class < 1
    ):
        raise DataError(f"samples_per_class must be an integer >= 1 or null (all samples), got {samples_per_class!r}")


def description(name: str) -> str:
    """One line saying what the embedded dataset is."""
    return _spec(name).description


def cache_path(name: str, seed: int = 0, samples_per_class: int | None = None) -> Path:
    """Where the cache file of ``name`` generated from ``seed`` lives (whether or not it exists)."""
    spec = _spec(name)
    _check_options(seed, samples_per_class)
    suffix = "" if samples_per_class is None else f"-n{int(samples_per_class)}"
    return cache_dir() / "embedded" / f"{spec.name}-v{spec.version}-seed{int(seed)}{suffix}.seal"


def generation_params(name: str, seed: int, samples_per_class: int | None) -> dict:
    """What a cache file is generated for (stored in it, compared with the request on load)."""
    spec = _spec(name)
    return {"name": spec.name, "version": spec.version, "generator": spec.module, "seed": int(seed),
            "samples_per_class": None if samples_per_class is None else int(samples_per_class)}


def embedded_status(name: str, seed: int = 0) -> tuple[bool, str]:
    """``(present, location)``: whether the full dataset for ``seed`` is cached, and where."""
    path = cache_path(name, seed)
    return path.is_file(), str(path)


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of test samples: ``round(test_fraction * n_c)`` random samples of each class."""
    labels = np.asarray(labels)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(test_fraction * len(idx)))
        is_test[rng.permutation(idx)[:n_test]] = True
    return is_test


def generate_embedded(name: str, seed: int = 0, samples_per_class: int | None = None, progress: bool = True) -> Path:
    """Generate ``name`` from ``seed`` into its cache file (replacing any there) and return the path."""
    spec = _spec(name)
    path = cache_path(name, seed, samples_per_class)

    module = importlib.import_module(spec.module)
    start = time.perf_counter()
    with Progress(f"{name} (seed {seed}): generating", enabled=progress) as bar:

        def on_progress(done: int, total: int, stage: str = "generating") -> None:
            bar.update(completed=done, total=total, description=f"{name} (seed {seed}): {stage}")

        packed = module.generate(int(seed), samples_per_class, on_progress)
    elapsed = time.perf_counter() - start
    is_test = stratified_split(packed.labels, TEST_FRACTION, np.random.default_rng([int(seed), _SPLIT_STREAM]))
    arrays = {"labels": packed.labels, "offsets": packed.offsets, "is_test": is_test, **packed.columns}
    meta = dict(packed.meta, name=name, version=spec.version, seed=int(seed), samples_per_class=samples_per_class,
                params=generation_params(name, seed, samples_per_class))
    remove_stale_temporaries(path.parent)
    write_sealed(path, pack_arrays(arrays, {"meta": json.dumps(meta, sort_keys=True)}))
    note(f"{name}: {len(packed.labels)} samples, {int(packed.counts.sum()):,} events in {elapsed:.1f} s -> {path}", progress)
    return path


class _Damaged(Exception):
    """A verified cache file that cannot be used as it is (it is generated again)."""


def _read_cache(path: Path, spec: _Spec, params: dict) -> dict[str, np.ndarray]:
    """The arrays of a cache file: its digest checked first (:class:`DamagedEntry`), then
    parsed, then its parameters compared with ``params`` and its arrays with each other
    (:class:`_Damaged`)."""
    payload = read_sealed(path)
    fields = spec.dtype.names
    try:
        stored, strings = unpack_arrays(payload)
        arrays = {k: stored[k] for k in ("labels", "offsets", "is_test", *fields)}
        meta = json.loads(strings["meta"])
    except (ValueError, KeyError) as exc:
        raise _Damaged(f"unreadable ({type(exc).__name__})") from exc
    stored = meta.get("params") if isinstance(meta, dict) else None
    if stored != params:
        raise _Damaged(f"generated for {_describe(stored)}, not {_describe(params)}")
    n = len(arrays["labels"])
    ok = (
        len(arrays["offsets"]) == n + 1
        and len(arrays["is_test"]) == n
        and all(len(arrays[f]) == arrays["offsets"][-1] for f in fields)
        and np.all(np.diff(arrays["offsets"]) >= 0)
    )
    if not ok:
        raise _Damaged("inconsistent (wrong lengths)")
    arrays["meta"] = meta
    return arrays


def _describe(params) -> str:
    if not isinstance(params, dict):
        return "unknown parameters"
    return ", ".join(f"{k} {params.get(k)}" for k in ("version", "seed", "samples_per_class"))


def _load_or_generate(name: str, seed: int, samples_per_class: int | None, progress: bool) -> tuple[Path, dict]:
    """The checked arrays of a cache file, generating it (once, under its lock) when it is
    missing, damaged or generated for other parameters."""
    spec = _spec(name)
    path = cache_path(name, seed, samples_per_class)
    params = generation_params(name, seed, samples_per_class)
    if (path.parent.exists() or path.parent.is_symlink()) and not path.parent.is_dir():
        quarantine(path.parent, "not a folder (the embedded datasets' folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{path.parent}: cannot be created ({exc.strerror or exc}); check the cache folder") from None
    with file_lock(path):
        if path.exists() or path.is_symlink():
            try:
                return path, _read_cache(path, spec, params)
            except FileNotFoundError:
                pass  # a dangling link: replaced by the new file
            except DamagedEntry as exc:
                quarantine(path, exc.reason)
            except _Damaged as exc:
                warn(f"embedded dataset cache {path.name} is {exc}; generating it again")
        generate_embedded(name, seed, samples_per_class, progress)
        try:
            return path, _read_cache(path, spec, params)
        except (DamagedEntry, _Damaged) as exc:  # just written: the disk or the generator is at fault
            raise DataError(f"embedded cache file {path} is {exc} right after it was written; check the disk under {path.parent}") from None


def load_embedded(
    name: str, split: str, seed: int = 0, samples_per_class: int | None = None, progress: bool = True
) -> EventDataset:
    """The ``split`` ("train" or "test") of embedded dataset ``name``, generated on first use.

    ``seed`` selects the generation (sensor, voices, noise) and the split; ``samples_per_class``
    (default: all) makes a smaller, separately cached dataset, e.g. for quick tests.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' for {name}{did_you_mean(split, SPLITS)}; choose 'train' or 'test'")
    path, arrays = _load_or_generate(name, seed, samples_per_class, progress)
    index = np.flatnonzero(arrays["is_test"] == (split == "test"))
    offsets = arrays["offsets"]
    columns = {f: arrays[f] for f in spec.dtype.names}
    dtype = spec.dtype

    def loader(j: int) -> np.ndarray:
        k = index[j]
        lo, hi = offsets[k], offsets[k + 1]
        ev = np.empty(hi - lo, dtype=dtype)
        for f, col in columns.items():
            ev[f] = col[lo:hi]
        return ev

    return EventDataset(
        name=name,
        split=split,
        sensor_size=spec.sensor_size,
        dtype=dtype,
        classes=list(CLASSES),
        labels=arrays["labels"][index],
        loader=loader,
        sources=[f"{name}#{k}" for k in index],
        meta=dict(arrays["meta"], cache=str(path), index=index),
    )
