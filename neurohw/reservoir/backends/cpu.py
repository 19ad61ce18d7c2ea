"""The fast CPU backend: numba, event-driven, parallel over the samples of a batch.

Per sample and step only the rows of active inputs (``w_in[i]``) and of neurons that spiked
at the previous step (``w_rec[k]``) are read; each row is contiguous (row = presynaptic
input/neuron), so a step is a handful of streaming vector adds into a per-tile accumulator.
Integer weights (conductance levels) accumulate in int32: exact, so the spikes equal the numpy
reference bit for bit. The arithmetic after the sums (unit, noise, ADC, leak) is per neuron and
in the order of :mod:`.numpy_ref`. ``cache=True``: the JIT cost is paid once per machine.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from neurohw.reservoir.backends import BatchResult, pack_batch
from neurohw.reservoir.rng import column_normals_nb, seed_key
from neurohw.reservoir.synapses import Synapses

NAME = "cpu"


def available() -> bool:
    return True


def why_unavailable() -> str:
    return ""


@njit(parallel=True, cache=True, error_model="numpy")
def _run(indptr, indptr_off, indices, values, nnz_off, lengths, sample_ids,
         w_in, w_rec, acc_proto, q_proto, tile_rows, n_tin, use_adc, step, inv_step, max_code,
         unit, v_th, decay, subtract, noisy, rel2, add2, k0, k1,
         rate, counts, membrane, spikes, record):  # fmt: skip
    B = lengths.shape[0]
    n = w_rec.shape[0]
    K = counts.shape[1]
    n_tiles = acc_proto.shape[0]
    fmax = np.float64(max_code)
    for b in prange(B):
        T = lengths[b]
        acc = np.zeros_like(acc_proto)
        q = np.zeros_like(q_proto)
        rows = np.zeros(n_tiles, np.int64)
        mem = np.zeros(n, np.float64)
        cur = np.zeros(n, np.float64)
        z = np.zeros(n, np.float64)
        words = np.zeros(4 * ((n + 3) // 4), np.int64)
        s_prev = np.zeros(n, np.bool_)
        spk = np.zeros(n, np.int64)
        total = np.zeros(n, np.int64)
        nspk = 0
        ip0 = indptr_off[b]
        nz0 = nnz_off[b]
        sid = np.uint64(sample_ids[b])
        for t in range(T):
            # --- input crossbar: rows of the active inputs ---
            for k in range(indptr[ip0 + t], indptr[ip0 + t + 1]):
                i = indices[nz0 + k]
                x = values[nz0 + k]
                if x == 0:
                    continue
                tile = i // tile_rows if use_adc else 0
                rows[tile] += x * x
                row = w_in[i]
                a = acc[tile]
                if x == 1:
                    for j in range(n):
                        a[j] += row[j]
                else:
                    for j in range(n):
                        a[j] += x * row[j]
                if noisy:
                    qq = q[tile]
                    for j in range(n):
                        qq[j] += x * x * row[j] * row[j]
            # --- recurrent crossbar: rows of the neurons that spiked at t-1 ---
            for k in range(nspk):
                i = spk[k]
                tile = n_tin + i // tile_rows if use_adc else 0
                rows[tile] += 1
                row = w_rec[i]
                a = acc[tile]
                for j in range(n):
                    a[j] += row[j]
                if noisy:
                    qq = q[tile]
                    for j in range(n):
                        qq[j] += row[j] * row[j]
            # --- reads -> current (unit, noise, ADC), tile order as in numpy_ref ---
            for j in range(n):
                cur[j] = 0.0
            for tile in range(n_tiles):
                nr = rows[tile]
                if nr == 0:
                    continue
                a = acc[tile]
                if noisy:
                    column_normals_nb(z, words, k0, k1, t, sid, tile)
                    qq = q[tile]
                    fr = add2 * np.float64(nr)
                    for j in range(n):
                        v = np.float64(a[j]) * unit
                        v = v + math.sqrt(rel2 * np.float64(qq[j]) + fr) * z[j]
                        if use_adc:
                            c = np.rint(v * inv_step[tile])
                            c = min(max(c, -fmax), fmax)
                            v = c * step[tile]
                        cur[j] += v
                        a[j] = 0
                        qq[j] = 0
                else:
                    for j in range(n):
                        v = np.float64(a[j]) * unit
                        if use_adc:
                            c = np.rint(v * inv_step[tile])
                            c = min(max(c, -fmax), fmax)
                            v = c * step[tile]
                        cur[j] += v
                        a[j] = 0
                rows[tile] = 0
            # --- LIF step (neurohw.reservoir.lif) and the spike list ---
            nspk = 0
            kb = (t * K) // T
            for j in range(n):
                leak = mem[j] * decay
                if s_prev[j]:
                    if subtract:
                        leak = leak - v_th
                    else:
                        leak = 0.0
                m = leak + cur[j]
                mem[j] = m
                fired = m > v_th
                s_prev[j] = fired
                if fired:
                    spk[nspk] = j
                    nspk += 1
                    total[j] += 1
                    counts[b, kb, j] += 1
                    if record:
                        spikes[b, t, j] = True
        for j in range(n):
            rate[b, j] = np.float32(total[j] / max(T, 1))
            membrane[b, j] = np.float32(mem[j])


def kernel_arrays(syn: Synapses, noise: bool):
    """The dtype-carrying scratch prototypes and ADC tables of :func:`_run`."""
    tr, n_tin, n_trec = syn.tiles()
    n_tiles = (n_tin + n_trec) if syn.adc is not None else 1
    n = syn.n_neurons
    noisy = bool(noise and syn.noisy)
    acc_dtype = np.int32 if syn.integer else np.float64
    q_dtype = np.int64 if syn.integer else np.float64
    acc_proto = np.zeros((n_tiles, n), acc_dtype)
    q_proto = np.zeros((n_tiles, n) if noisy else (1, 1), q_dtype)
    step, inv_step = syn.adc_tables()
    max_code = syn.adc.max_code if syn.adc is not None else 1
    return acc_proto, q_proto, tr, n_tin, step, inv_step, max_code, noisy


def check_integer_range(syn: Synapses, max_value: int = 255) -> None:
    """Raise when an int32 accumulator could overflow (never for realistic level counts)."""
    if syn.integer:
        wmax = max(int(np.abs(syn.w_in).max(initial=0)), int(np.abs(syn.w_rec).max(initial=0)))
        bound = wmax * (syn.n_inputs * max_value + syn.n_neurons)
        if bound >= 2**31:
            raise ValueError(f"integer weights up to {wmax} levels could overflow the int32 accumulator")


def run_batch(syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False, threads: int | None = None) -> BatchResult:
    """Run a batch (see :func:`neurohw.reservoir.backends.numpy_ref.run_batch`)."""
    pb = pack_batch(rasters)
    B = len(rasters)
    n = syn.n_neurons
    check_integer_range(syn, int(pb.values.max(initial=1)))
    acc_proto, q_proto, tr, n_tin, step, inv_step, max_code, noisy = kernel_arrays(syn, noise)
    k0, k1 = seed_key(syn.seed)
    rate = np.zeros((B, n), np.float32)
    counts = np.zeros((B, count_bins, n), np.int32)
    membrane = np.zeros((B, n), np.float32)
    T_max = int(pb.lengths.max(initial=0))
    spikes = np.zeros((B, T_max, n) if record_spikes else (1, 1, 1), np.bool_)
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    _run(pb.indptr, pb.indptr_off, pb.indices, pb.values, pb.nnz_off, pb.lengths,
         np.asarray(sample_ids, np.int64), syn.w_in, syn.w_rec, acc_proto, q_proto,
         int(tr), int(n_tin), syn.adc is not None, step, inv_step, int(max_code),
         syn.unit_value, float(syn.v_th), float(syn.decay), syn.reset == "subtract", noisy,
         float(syn.rel2), float(syn.add2), np.uint64(k0), np.uint64(k1),
         rate, counts, membrane, spikes, bool(record_spikes))  # fmt: skip
    rec = [spikes[b, : pb.lengths[b]] for b in range(B)] if record_spikes else None
    return BatchResult(rate, counts, membrane, rec)
