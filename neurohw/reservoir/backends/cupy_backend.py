"""The GPU backend: kernels/lsm.cu loaded with ``cupy.RawModule``, one fused launch per step.

The host loop below is written against an array module ``xp`` and a kernel module with
``get_function``; on a GPU they are cupy and a ``RawModule``. Tests without a GPU pass numpy
and the same kernel source built for the CPU (:mod:`.host_shim`), so this exact host code and
kernel source are checked against the numpy reference everywhere.
"""

from __future__ import annotations

import numpy as np

from neurohw.reservoir.backends import BatchResult, pack_batch
from neurohw.reservoir.backends.host_shim import KERNELS_DIR
from neurohw.reservoir.rng import seed_key
from neurohw.reservoir.synapses import Synapses

NAME = "cupy"
OPTIONS = ()  # keyword options of run_batch
KERNEL_FILE = KERNELS_DIR / "lsm.cu"
NVCC_OPTIONS = ("--fmad=false", "-std=c++14")
THREADS_PER_BLOCK = 128
_WEIGHT_TYPES = {np.dtype(np.int8): "signed char", np.dtype(np.int16): "short", np.dtype(np.int32): "int", np.dtype(np.float64): "double"}
_modules: dict = {}
_why = ""


def kernel_defines(syn: Synapses) -> dict[str, str]:
    """The -D types of kernels/lsm.cu for these synapses (weights, accumulators)."""
    wt = _WEIGHT_TYPES.get(np.dtype(syn.w_in.dtype))
    if wt is None or syn.w_rec.dtype != syn.w_in.dtype:
        raise ValueError(f"weights of dtype {syn.w_in.dtype}/{syn.w_rec.dtype} are not supported by the kernels")
    if syn.integer:
        return {"WT": wt, "AT": "int", "QT": "long long"}
    return {"WT": "double", "AT": "double", "QT": "double"}


def available() -> bool:
    """True when cupy imports and a CUDA device runs a kernel."""
    global _why
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1).sum()
        return True
    except Exception as exc:  # no driver, no device, no cupy
        _why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return False


def why_unavailable() -> str:
    return _why or "no working CUDA device"


def raw_module(defines: dict[str, str]):
    """The compiled ``cupy.RawModule`` of kernels/lsm.cu for these types (cached)."""
    import cupy

    key = tuple(sorted(defines.items()))
    if key not in _modules:
        options = NVCC_OPTIONS + tuple(f"-D{k}={v}" for k, v in key)
        _modules[key] = cupy.RawModule(code=KERNEL_FILE.read_text(), options=options)
    return _modules[key]


def run_batch(
    syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False, *, xp=None, module=None
) -> BatchResult:
    """Run a batch (see :func:`neurohw.reservoir.backends.numpy_ref.run_batch`).

    ``xp``/``module``: array module and kernel module; default cupy and the RawModule.
    """
    if module is None:
        import cupy

        xp = cupy
        module = raw_module(kernel_defines(syn))
    elif xp is None:
        xp = np
    pb = pack_batch(rasters)
    B, n = len(rasters), syn.n_neurons
    tr, n_tin, n_trec = syn.tiles()
    n_tiles = (n_tin + n_trec) if syn.adc is not None else 1
    step, ua, rel2, add2 = syn.read_tables()
    table = syn.input_codes(int(pb.values.max(initial=0)))
    n_planes = syn.n_planes(int(table.max(initial=0)))
    coefs = syn.plane_coefficients(n_planes)
    max_code = float(syn.adc.max_code) if syn.adc is not None else 1.0
    noisy = bool(noise and syn.noisy)
    k0, k1 = seed_key(syn.seed)
    T_max = int(pb.lengths.max(initial=0))
    K = int(count_bins)

    dev = xp.asarray
    indptr, indptr_off, indices = dev(pb.indptr), dev(pb.indptr_off), dev(np.ascontiguousarray(pb.indices) if len(pb.indices) else np.zeros(1, np.int32))
    codes = dev(np.ascontiguousarray(table[pb.values], np.int32) if len(pb.values) else np.zeros(1, np.int32))
    nnz_off, lengths = dev(pb.nnz_off), dev(pb.lengths)
    sids = dev(np.asarray(sample_ids, np.int64))
    w_in, w_rec = dev(np.ascontiguousarray(syn.w_in)), dev(np.ascontiguousarray(syn.w_rec))
    coefs_d, step_d, ua_d, rel2_d, add2_d = dev(coefs), dev(step), dev(ua), dev(rel2), dev(add2)
    spk = xp.zeros((2, B, n), np.int32)
    nspk = xp.zeros((2, B), np.int32)
    mem = xp.zeros((B, n), np.float64)
    s_prev = xp.zeros((B, n), np.uint8)
    counts = xp.zeros((B, K, n), np.int32)
    rec = xp.zeros((B, T_max, n) if record_spikes else (1,), np.uint8)
    kernel = module.get_function("lsm_step")
    grid = ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, B, 1)
    block = (THREADS_PER_BLOCK, 1, 1)
    for t in range(T_max):
        cur, nxt = t % 2, (t + 1) % 2
        nspk[nxt] = 0
        kernel(grid, block, (
            indptr, indptr_off, indices, codes, nnz_off, lengths, sids, w_in, w_rec, np.int32(n),
            spk[cur], nspk[cur], spk[nxt], nspk[nxt], mem, s_prev, counts, np.int32(K),
            np.int32(tr), np.int32(n_tin), np.int32(n_tiles), np.int32(syn.adc is not None), np.int32(n_planes),
            np.int32(syn.bit_serial), coefs_d, step_d, ua_d, rel2_d, add2_d,
            np.float64(max_code), np.float64(syn.unit_value), np.float64(syn.v_th), np.float64(syn.decay),
            np.int32(syn.reset == "subtract"), np.int32(noisy),
            np.uint32(k0), np.uint32(k1), np.int32(t), rec, np.int32(bool(record_spikes)), np.int32(T_max),
        ))  # fmt: skip
    to_host = (lambda a: a.get()) if hasattr(mem, "get") else np.asarray
    counts_h = to_host(counts)
    total = counts_h.sum(axis=1, dtype=np.int64)
    rate = (total / np.maximum(pb.lengths, 1)[:, None]).astype(np.float32)
    membrane = to_host(mem).astype(np.float32)
    spikes = None
    if record_spikes:
        rec_h = to_host(rec).astype(bool)
        spikes = [rec_h[b, : pb.lengths[b]] for b in range(B)]
    return BatchResult(rate, counts_h, membrane, spikes)
