"""The reference backend: plain numpy, one sample and one time step at a time.

This file is the executable statement of the reservoir's semantics (neurohw.reservoir.lif for
the neuron, neurohw.reservoir.synapses for the reads); the fast backends must give the same
spikes. Readability wins over speed here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neurohw.devices.adc import adc_codes
from neurohw.reservoir.backends import BatchResult, bin_of_step
from neurohw.reservoir.lif import LIFParameters, lif_initial_state, lif_step
from neurohw.reservoir.rng import column_gaussians, noise
from neurohw.reservoir.synapses import Synapses

NAME = "numpy"
OPTIONS = ()  # keyword options of run_batch


def available() -> bool:
    return True


def why_unavailable() -> str:
    return ""


class Read(NamedTuple):
    """One array read of one step: ``a = sum P w`` (int64 for integer weights, else float64),
    ``q = sum P^2 w^2``, ``rows = sum P^2`` (float64), the noise ``stream``, the row tile ``k``
    whose tables convert it (:meth:`Synapses.read_tables`), its input plane and the plane's
    coefficient (``v 2^b``; 1 for spikes)."""

    stream: int
    k: int
    plane: int
    coef: float
    a: np.ndarray
    q: np.ndarray
    rows: float


def _partial_sums(w: np.ndarray, rows: np.ndarray, x: np.ndarray, integer: bool):
    """One read of rows ``rows`` driven by ``x``: ``(sum x w, sum x^2 w^2, sum x^2)``."""
    dtype = np.int64 if integer else np.float64
    wr = w[rows].astype(dtype)
    xv = np.asarray(x).astype(dtype)
    return xv @ wr, (xv * xv) @ (wr * wr), float(np.sum(np.asarray(x, np.int64) ** 2))


def input_planes(syn: Synapses, codes: np.ndarray, n_planes: int) -> list[np.ndarray]:
    """The input planes of one step (``codes`` of the active inputs): bit-serial, plane ``b``
    is ``(codes >> b) & 1``; otherwise one amplitude plane, the codes themselves."""
    if syn.bit_serial:
        return [(codes >> b) & 1 for b in range(n_planes)]
    return [codes]


def reads(syn: Synapses, x_idx, x_code, spiking, n_planes: int) -> list[Read]:
    """The crossbar reads of one step, in the order their outputs are summed.

    With an ADC: per input tile ``k`` (in order), its planes ``b = 0..`` that have an active row
    (stream ``k + b n_tiles``, ``n_tiles`` = input + recurrent tiles); then the recurrent tiles
    (stream ``n_tin + k``, plane 0, coefficient 1: spikes are binary). Without an ADC there is no
    per-read conversion, so all of a step's reads are one Gaussian read per column (stream 0):
    mean and variance are the coefficient-weighted sums of the planes' and the recurrent
    read's, ``a = f(a_rec) + sum_b c_b f(a_b)``, ``q = f(q_rec) + sum_b c_b^2 f(q_b)`` (float64
    ``f``; exact for integer weights and ``v = 1``).
    """
    tr, n_tin, n_trec = syn.tiles()
    n_tiles = n_tin + n_trec
    coefs = syn.plane_coefficients(n_planes)
    planes = input_planes(syn, np.asarray(x_code, np.int64), n_planes)
    rec_idx = np.flatnonzero(spiking)
    ones = np.ones(len(rec_idx), dtype=np.int64)
    if syn.adc is None:
        a_rec, q_rec, r_rec = _partial_sums(syn.w_rec, rec_idx, ones, syn.integer)
        a, q, rows = a_rec.astype(np.float64), q_rec.astype(np.float64), r_rec
        for c, plane in zip(coefs, planes):
            a_b, q_b, r_b = _partial_sums(syn.w_in, x_idx, plane, syn.integer)
            a = a + c * a_b.astype(np.float64)
            q = q + (c * c) * q_b.astype(np.float64)
            rows = rows + (c * c) * r_b
        return [Read(0, 0, 0, 1.0, a, q, rows)] if rows > 0 else []
    out = []
    for k in range(n_tin):
        sel = (x_idx // tr) == k
        for b, (c, plane) in enumerate(zip(coefs, planes)):
            if np.any(plane[sel] != 0):
                out.append(Read(k + b * n_tiles, k, b, float(c), *_partial_sums(syn.w_in, x_idx[sel], plane[sel], syn.integer)))
    for k in range(n_trec):
        sel = (rec_idx // tr) == k
        if np.any(sel):
            out.append(Read(n_tin + k, n_tin + k, 0, 1.0, *_partial_sums(syn.w_rec, rec_idx[sel], ones[sel], syn.integer)))
    return out


def read_output(syn: Synapses, r: Read, t: int, sample: int, noisy: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One read's output: its ADC codes (float64, integer-valued) with an ADC, else its value
    in weight units; and the codes again (None without an ADC).

    Noise (float32, :func:`neurohw.reservoir.rng.noise`): ``n = sqrt((rel2 f32(q) + add2
    f32(rows)) r2) g`` with ``(r2, g)`` the Box-Muller parts of the read's columns at counter
    ``(t, sample, stream)``, in the read's output units. With an ADC: ``code = clip(rint(f64(a)
    ua + f64(n)), -max_code, max_code)``; without: ``f64(a) unit + f64(n)`` (``ua = unit`` in
    the tables).
    """
    _, ua, rel2, add2 = syn.read_tables()
    x = np.asarray(r.a, np.float64) * ua[r.k]
    if noisy:
        var = rel2[r.k] * np.asarray(r.q, np.float64).astype(np.float32) + add2[r.k] * np.float32(r.rows)
        r2, g = column_gaussians(syn.seed, syn.n_neurons, t, sample, r.stream)
        x = x + noise(var, r2, g).astype(np.float64)
    if syn.adc is None:
        return x, None
    code = adc_codes(x, float(syn.adc.max_code))
    return code, code


def step_current(syn: Synapses, x_idx, x_code, spiking, t: int, sample: int, noise: bool, n_planes: int = 1) -> np.ndarray:
    """The synaptic current ``I[t]`` (float64, weight units) of one sample at step ``t``.

    With an ADC, per row tile in :func:`reads`' order, its planes' codes shifted and added as
    integers (``sum_b 2^b code_b``, exact in float64), times the tile's step, times ``v`` (the
    input value of one code step; 1 for spikes), summed from 0.0; a tile without a read adds
    nothing. Without an ADC the one merged read's value.
    """
    noisy = noise and syn.noisy
    current = np.zeros(syn.n_neurons, dtype=np.float64)
    step = syn.read_tables()[0]
    _, n_tin, _ = syn.tiles()
    tiles: dict[int, np.ndarray] = {}  # tile -> sum_b 2^b code_b, in read order
    for r in reads(syn, x_idx, x_code, spiking, n_planes):
        out, code = read_output(syn, r, t, sample, noisy)
        if code is None:
            current = current + out
        else:
            tiles[r.k] = tiles.get(r.k, 0.0) + (2.0**r.plane) * code
    for k, codes in tiles.items():
        current = current + (codes * step[k]) * (syn.input_value if k < n_tin else 1.0)
    return current


def run_batch(syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False) -> BatchResult:
    """Run the reservoir on a batch of :class:`~neurohw.data.binning.SparseRaster` s.

    ``sample_ids[b]`` is sample ``b``'s index in the whole dataset (the noise counter), so the
    result does not depend on how samples are batched. Raster values become input codes by
    :meth:`Synapses.input_codes`; the number of bit planes follows from the batch's largest
    code (planes that are zero everywhere are never read, so this does not change a result).
    """
    n = syn.n_neurons
    B = len(rasters)
    params = LIFParameters(syn.v_th, syn.decay, syn.reset)
    max_value = max((int(np.max(r.values[: r.nnz], initial=0)) for r in rasters), default=0)
    table = syn.input_codes(max_value)
    n_planes = syn.n_planes(int(table.max(initial=0)))
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
            codes = table[np.asarray(r.values[lo:hi], np.int64)]
            current = step_current(syn, r.indices[lo:hi].astype(np.int64), codes, state.s, t, int(sample_ids[b]), noise, n_planes)
            s, state = lif_step(current, state, params)
            total += s
            counts[b, bin_of_step(t, T, count_bins)] += s
            rec[t] = s
        rate[b] = total / max(T, 1)
        membrane[b] = state.mem
        spikes.append(rec)
    return BatchResult(rate, counts, membrane, spikes if record_spikes else None)
