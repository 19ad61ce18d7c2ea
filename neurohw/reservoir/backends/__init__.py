"""Where the reservoir's arithmetic runs: ``numpy`` (reference), ``cpu`` (numba), ``cupy``.

Every backend module exposes ``NAME``, ``OPTIONS`` (the keyword options its ``run_batch``
takes, e.g. ``threads``), ``available() -> bool``, ``why_unavailable() -> str`` and
``run_batch(synapses, rasters, sample_ids, count_bins, noise, record_spikes, **options) ->
BatchResult``, and gives the same spikes as :mod:`.numpy_ref` (bit for bit with integer
weights; see docs/internals.md, Reservoir). :func:`select_backend` resolves ``auto`` (``cupy``
when a CUDA device works, otherwise ``cpu``) and returns a :class:`Backend`: the module with
the options it takes bound, so callers never ask which backend they have.

A backend may also be named by a URL (``hil://HOST:PORT``, ``hil+serial://PORT?baud=N``): the
crossbars then live on a chip behind a link (:mod:`neurohw.hil.backend`). Such a backend also
has ``form_crossbars(device, config, seeds)`` (the encoder's crossbars are formed on the chip
and read back), ``identity()`` (what the feature cache keys on: the link and the chip's INFO)
and ``close()``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import NamedTuple

import numpy as np

from neurohw.errors import ConfigError, did_you_mean

BACKENDS = ("numpy", "cpu", "cupy")
_MODULES = {"numpy": "numpy_ref", "cpu": "cpu", "cupy": "cupy_backend"}
#: backends named by a URL (a crossbar on a chip over a link): scheme -> the module whose
#: ``backend_for(url)`` builds it (hardware in the loop, :mod:`neurohw.hil.backend`)
URL_SCHEMES = {"hil": "neurohw.hil.backend", "hil+serial": "neurohw.hil.backend"}


def is_url(name: str) -> bool:
    """Whether a backend name is a link URL (``hil://...``) rather than a local backend."""
    return "://" in str(name)


def check_backend_name(name: str) -> str:
    """``name`` if it names a backend (auto, numpy, cpu, cupy, or a URL of :data:`URL_SCHEMES`,
    checked by its module); else ValueError with one line (for the schemas' validators)."""
    name = str(name)
    if is_url(name):
        scheme = name.split("://", 1)[0].lower()
        if scheme not in URL_SCHEMES:
            raise ValueError(f"backend {name!r}: unknown scheme {scheme + '://'!r}{did_you_mean(scheme, URL_SCHEMES)}; "
                             "use hil://HOST:PORT or hil+serial://PORT?baud=N")
        module = importlib.import_module(URL_SCHEMES[scheme])
        try:
            module.check_url(name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return name
    if name not in ("auto", *BACKENDS):
        raise ValueError(f"backend {name!r} is unknown; use auto, {', '.join(BACKENDS)} or hil://HOST:PORT{did_you_mean(name, ('auto', *BACKENDS))}")
    return name


class BatchResult(NamedTuple):
    """Features of one batch: ``rate`` (B, n) float32 = spike count / T_b; ``counts``
    (B, K, n) int32 spikes per time bin; ``membrane`` (B, n) float32 after the last step;
    ``spikes``: per sample a (T_b, n) bool raster, when asked for."""

    rate: np.ndarray
    counts: np.ndarray
    membrane: np.ndarray
    spikes: list | None = None


def bin_of_step(t: int, T, K: int):
    """Count bin of step ``t`` of a ``T``-step sample: ``floor(t * K / T)`` (K equal bins);
    ``T`` may be an integer array (one length per sample), then one bin per sample."""
    return (t * K) // T


def load_backend(name: str):
    """The backend module ``name`` (numpy|cpu|cupy); raises ConfigError for unknown names or
    a backend that cannot run here."""
    if name not in _MODULES:
        raise ConfigError(f"reservoir backend {name!r} is unknown; use one of auto, {', '.join(BACKENDS)}{did_you_mean(name, BACKENDS)}")
    module = importlib.import_module(f"neurohw.reservoir.backends.{_MODULES[name]}")
    if not module.available():
        raise ConfigError(f"reservoir backend {name!r} cannot run here ({module.why_unavailable()}); use backend: cpu")
    return module


@dataclass(frozen=True)
class Backend:
    """A backend module with its options bound (those of ``module.OPTIONS`` that were given)."""

    module: ModuleType
    options: dict = field(default_factory=dict)

    @property
    def NAME(self) -> str:  # upper case: the modules' constant NAME, read the same way
        return self.module.NAME

    def run_batch(self, syn, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False) -> BatchResult:
        """The module's ``run_batch`` with the bound options."""
        return self.module.run_batch(syn, rasters, sample_ids, count_bins, noise, record_spikes, **self.options)


def select_backend(name: str = "auto", **options) -> Backend:
    """Resolve ``auto`` (cupy when a CUDA device works, else cpu), load the backend and bind the
    ``options`` it takes (a backend ignores options it has no use for, e.g. ``threads`` on a
    GPU; None means "the backend's default")."""
    if is_url(name):
        check_backend_name(name)
        return importlib.import_module(URL_SCHEMES[name.split("://", 1)[0].lower()]).backend_for(name, **options)
    if name == "auto":
        cupy_module = importlib.import_module("neurohw.reservoir.backends.cupy_backend")
        module = cupy_module if cupy_module.available() else load_backend("cpu")
    else:
        module = load_backend(name)
    taken = getattr(module, "OPTIONS", ())
    return Backend(module, {k: v for k, v in options.items() if k in taken and v is not None})


def why_unavailable(name: str) -> str:
    """Why backend ``name`` cannot run here ("" when it can)."""
    if name not in _MODULES:
        raise ConfigError(f"reservoir backend {name!r} is unknown; use one of auto, {', '.join(BACKENDS)}{did_you_mean(name, BACKENDS)}")
    try:
        module = importlib.import_module(f"neurohw.reservoir.backends.{_MODULES[name]}")
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if module.available() else module.why_unavailable()


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    out = []
    for name, mod in _MODULES.items():
        try:
            if importlib.import_module(f"neurohw.reservoir.backends.{mod}").available():
                out.append(name)
        except ImportError:
            pass
    return out


class PackedBatch(NamedTuple):
    """A batch of sparse rasters as flat arrays (for the compiled backends)."""

    indptr: np.ndarray  # int64, concatenated per-sample indptr (T_b + 1 each)
    indptr_off: np.ndarray  # int64 (B,), where sample b's indptr starts
    indices: np.ndarray  # int32, concatenated active channels
    values: np.ndarray  # int32, concatenated values
    nnz_off: np.ndarray  # int64 (B,), where sample b's indices start
    lengths: np.ndarray  # int64 (B,), T_b


def pack_batch(rasters) -> PackedBatch:
    """Concatenate the CSR arrays of a batch of SparseRasters."""
    lengths = np.array([r.n_bins for r in rasters], dtype=np.int64)
    nnz = np.array([r.nnz for r in rasters], dtype=np.int64)
    indptr_off = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    nnz_off = np.concatenate([[0], np.cumsum(nnz)[:-1]]).astype(np.int64)
    indptr = np.concatenate([np.asarray(r.indptr, np.int64) for r in rasters]) if rasters else np.zeros(0, np.int64)
    indices = np.concatenate([np.asarray(r.indices[: r.nnz], np.int32) for r in rasters]) if rasters else np.zeros(0, np.int32)
    values = np.concatenate([np.asarray(r.values[: r.nnz], np.int32) for r in rasters]) if rasters else np.zeros(0, np.int32)
    return PackedBatch(indptr, indptr_off, indices, values, nnz_off, lengths)
