"""The reference backend: plain numpy, one sample and one time step at a time.

This file is the executable statement of the reservoir's semantics (neurohw.reservoir.lif for
the neuron, neurohw.reservoir.synapses for the reads); the fast backends must give the same
spikes. Readability wins over speed here.
"""

from __future__ import annotations

import numpy as np

from neurohw.reservoir.backends import BatchResult, bin_of_step
from neurohw.reservoir.lif import LIFParameters, lif_initial_state, lif_step
from neurohw.reservoir.rng import column_normals
from neurohw.reservoir.synapses import Synapses

NAME = "numpy"
OPTIONS = ()  # keyword options of run_batch


def available() -> bool:
    return True


def why_unavailable() -> str:
    return ""


def _partial_sums(w: np.ndarray, rows: np.ndarray, x: np.ndarray, integer: bool):
    """One read of rows ``rows`` driven by ``x``: ``(sum x w, sum x^2 w^2, sum x^2)``."""
    if integer:
        wr = w[rows].astype(np.int64)
        xv = x.astype(np.int64)
    else:
        wr = w[rows].astype(np.float64)
        xv = x.astype(np.float64)
    p = xv @ wr
    q = (xv * xv) @ (wr * wr)
    return p, q, int(np.sum(x.astype(np.int64) ** 2))


def _reads(syn: Synapses, x_idx, x_val, spiking):
    """The crossbar reads of one step: a list of ``(stream, p, q, n_rows)``.

    Without an ADC both crossbars are summed into one read per column (stream 0; the sum of
    the two independent Gaussian reads has the summed variance). With an ADC, one read per
    tile that has an active row: input tiles are streams ``0..n_tiles_in-1``, recurrent
    tiles follow.
    """
    tr, n_tin, n_trec = syn.tiles()
    rec_idx = np.flatnonzero(spiking)
    ones = np.ones(len(rec_idx), dtype=np.int64)
    if syn.adc is None:
        reads = []
        p_in, q_in, r_in = _partial_sums(syn.w_in, x_idx, x_val, syn.integer)
        p_rec, q_rec, r_rec = _partial_sums(syn.w_rec, rec_idx, ones, syn.integer)
        if r_in + r_rec > 0:
            reads.append((0, p_in + p_rec, q_in + q_rec, r_in + r_rec))
        return reads
    reads = []
    for base, w, idx, val, n_tiles in ((0, syn.w_in, x_idx, x_val, n_tin), (n_tin, syn.w_rec, rec_idx, ones, n_trec)):
        for k in range(n_tiles):
            sel = (idx // tr) == k
            if np.any(val[sel] != 0):
                reads.append((base + k, *_partial_sums(w, idx[sel], val[sel], syn.integer)))
    return reads


def step_current(syn: Synapses, x_idx, x_val, spiking, t: int, sample: int, noise: bool) -> np.ndarray:
    """The synaptic current ``I[t]`` (float64, weight units) of one sample at step ``t``."""
    n = syn.n_neurons
    unit = syn.unit_value
    noisy = noise and syn.noisy
    current = np.zeros(n, dtype=np.float64)
    if syn.adc is not None:
        step, inv_step = syn.adc_tables()
    for stream, p, q, n_rows in _reads(syn, x_idx, x_val, spiking):
        value = p.astype(np.float64) * unit
        if noisy:
            sd = np.sqrt(syn.rel2 * q.astype(np.float64) + syn.add2 * float(n_rows))
            value = value + sd * column_normals(syn.seed, n, t, sample, stream)
        if syn.adc is not None:
            code = np.clip(np.rint(value * inv_step[stream]), -syn.adc.max_code, syn.adc.max_code)
            value = code * step[stream]
        current = current + value
    return current


def run_batch(syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False) -> BatchResult:
    """Run the reservoir on a batch of :class:`~neurohw.data.binning.SparseRaster` s.

    ``sample_ids[b]`` is sample ``b``'s index in the whole dataset (the noise counter), so the
    result does not depend on how samples are batched.
    """
    n = syn.n_neurons
    B = len(rasters)
    params = LIFParameters(syn.v_th, syn.decay, syn.reset)
    rate = np.zeros((B, n), dtype=np.float32)
    counts = np.zeros((B, count_bins, n), dtype=np.int32)
    membrane = np.zeros((B, n), dtype=np.float32)
    spikes = []
    for b, r in enumerate(rasters):
        T = r.n_bins
        state = lif_initial_state(n)
        total = np.zeros(n, dtype=np.int64)
        rec = np.zeros((T, n), dtype=bool)
        for t in range(T):
            lo, hi = r.indptr[t], r.indptr[t + 1]
            current = step_current(syn, r.indices[lo:hi].astype(np.int64), r.values[lo:hi], state.s, t, int(sample_ids[b]), noise)
            s, state = lif_step(current, state, params)
            total += s
            counts[b, bin_of_step(t, T, count_bins)] += s
            rec[t] = s
        rate[b] = total / max(T, 1)
        membrane[b] = state.mem
        spikes.append(rec)
    return BatchResult(rate, counts, membrane, spikes if record_spikes else None)
