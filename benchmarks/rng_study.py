"""Read-noise normals: candidate generators side by side, speed and quality.

Every candidate draws one normal per column of a 1,000-column tile read from counter-based
words keyed by (step, sample, stream, column), as the reservoir does (neurohw.reservoir.rng):

- ``philox10-acklam``: Philox4x32-10 + P. J. Acklam's inverse normal CDF in float64 with an
  arithmetic-only logarithm (the reservoir's previous draw; central branch vectorised, the
  ~4.85 % tail words compacted and run through the full formula).
- ``philox7-acklam``: the same with Philox4x32-7 (the fewest rounds that pass BigCrush).
- ``philox7-table``: a tabulated inverse CDF with linear interpolation on integer words: the
  sign bit, then 31 bits r; nodes at r < 64 and at 64 segments per octave of r (1,665 nodes,
  values by scipy's ``ndtri``), ``z = T[i] + low * S[i]`` (two table loads per draw).
- ``philox7-ziggurat``: Marsaglia & Tsang's 128-layer ziggurat on 32-bit words (fast path:
  ``|j| < k[i]``, ~98.8 %; wedge and tail with fresh words of the next counters and libm
  ``exp``/``log``: speed and quality only, not bit-portable).
- ``philox7-boxmuller32``: Box-Muller in float32 (the reservoir's draw,
  :func:`neurohw.reservoir.rng.column_gaussians_nb`): one radius and one angle word per pair.

Measured: ns per normal on one core (words included, best of 5 compiled loops of 20,000 tile
reads), ns per
element of a whole noisy tile read (draw, ``sqrt`` of the variance, ADC conversion) for the old
and the new draw; quality on 10^7 draws (KS test against N(0, 1), mean, variance, skewness,
excess kurtosis, tail mass beyond 3, 4 and 5 sigma against the exact ``2 Phi(-t)``), the
largest |z| each method can produce, and for the adopted draw the exact tail mass over all
words (no sampling error). Also: how often a tile read has a column of zero variance on the
reference workload (the case in which a draw could be skipped).

Run: ``python benchmarks/rng_study.py [--json] [--draws N]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from numba import njit
from scipy import stats
from scipy.special import ndtr, ndtri

from neurohw.reservoir import rng as R

N_COLUMNS = 1000
NB = (N_COLUMNS + 3) // 4
KEY = (np.uint64(0x1234567), np.uint64(0x89ABCDE))
TAILS = (3.0, 4.0, 5.0)


# ---------------------------------------------------------------- Philox words (10 and 7 rounds)


def _philox(rounds: int):
    @njit(inline="always", error_model="numpy")
    def philox(c0, c1, c2, c3, k0, k1):
        m = np.uint64(R.MASK32)
        s = np.uint64(32)
        for r in range(rounds):
            if r > 0:
                k0 = (k0 + np.uint64(R.W0)) & m
                k1 = (k1 + np.uint64(R.W1)) & m
            p0 = np.uint64(R.M0) * c0
            p1 = np.uint64(R.M1) * c2
            n0 = (p1 >> s) ^ c1 ^ k0
            n2 = (p0 >> s) ^ c3 ^ k1
            c1 = p1 & m
            c3 = p0 & m
            c0 = n0
            c2 = n2
        return c0, c1, c2, c3

    return philox


philox10 = _philox(10)
philox7 = _philox(7)


def _words(philox):
    @njit(error_model="numpy")
    def words(out, k0, k1, step, sample, stream):
        nb = out.shape[0] // 4
        for b in range(nb):
            w0, w1, w2, w3 = philox(np.uint64(b), np.uint64(step), np.uint64(sample), np.uint64(stream), k0, k1)
            out[b] = np.int64(w0)
            out[nb + b] = np.int64(w1)
            out[2 * nb + b] = np.int64(w2)
            out[3 * nb + b] = np.int64(w3)

    return words


words10 = _words(philox10)
words7 = _words(philox7)

# ---------------------------------------------------------------- Acklam (the previous draw)

A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
P_LOW = 0.02425
ATANH = (1.0, 1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0)
CENTRAL_LO = 104152957  # the integer range of Acklam's central branch (|q| <= 0.5 - P_LOW)
CENTRAL_HI = 2**32 - 1 - CENTRAL_LO


@njit(inline="always", error_model="numpy")
def acklam_central(w):
    q = (np.float64(w) + 0.5) * (1.0 / 4294967296.0) - 0.5
    r = q * q
    num = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
    den = ((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0
    return num / den


@njit(inline="always", error_model="numpy")
def acklam_tail(w):
    q = (np.float64(w) + 0.5) * (1.0 / 4294967296.0) - 0.5
    lower = q < 0
    wt = w if lower else np.int64(4294967295) - w
    v = np.int64(2) * wt + np.int64(1)
    e = np.int64(0)
    t = v
    for sh in (16, 8, 4, 2, 1):
        s = np.int64(t >= (np.int64(1) << np.int64(sh))) * np.int64(sh)
        t = t >> s
        e += s
    m = np.float64(v << (np.int64(31) - e)) * (1.0 / 2147483648.0)
    if m > 1.4142135623730951:
        m *= 0.5
        e += 1
    s_ = (m - 1.0) / (m + 1.0)
    s2 = s_ * s_
    acc = ATANH[8]
    for k in range(7, -1, -1):
        acc = acc * s2 + ATANH[k]
    lt = math.sqrt(-2.0 * (np.float64(e - 33) * 0.6931471805599453 + 2.0 * s_ * acc))
    num = ((((C[0] * lt + C[1]) * lt + C[2]) * lt + C[3]) * lt + C[4]) * lt + C[5]
    den = (((D[0] * lt + D[1]) * lt + D[2]) * lt + D[3]) * lt + 1.0
    return (num if lower else -num) / den


def _acklam_normals(words_fn):
    @njit(error_model="numpy")
    def normals(z, words, tail, k0, k1, step, sample, stream):
        words_fn(words, k0, k1, step, sample, stream)
        n = z.shape[0]
        for j in range(n):
            z[j] = acklam_central(words[j])
        nt = 0
        for j in range(n):  # branch-free compaction of the tail words
            w = words[j]
            words[nt] = w | (np.int64(j) << np.int64(32))
            nt += np.int64(w < CENTRAL_LO) | np.int64(w > CENTRAL_HI)
        for k in range(nt):
            tail[k] = acklam_tail(words[k] & np.int64(R.MASK32))
        for k in range(nt):
            z[words[k] >> np.int64(32)] = tail[k]

    return normals


acklam10 = _acklam_normals(words10)
acklam7 = _acklam_normals(words7)

# ---------------------------------------------------------------- tabulated inverse CDF

TABLE_K = 6  # 64 segments per octave of the 31-bit magnitude word


def table_nodes():
    """Nodes ``N_i`` (31-bit words) and ``(T_i, S_i)``: ``|z| = T[i] + low * S[i]``."""
    n = ((30 - TABLE_K) << TABLE_K) + (1 << (TABLE_K + 1)) + 1
    i = np.arange(n)
    shift = np.maximum((i >> TABLE_K) - 1, 0)
    node = np.where(i < (1 << TABLE_K), i, ((1 << TABLE_K) + (i & ((1 << TABLE_K) - 1))) << shift)
    T = -ndtri((node + 0.5) / 2**32)
    S = np.zeros(n)
    S[:-1] = (T[1:] - T[:-1]) / (node[1:] - node[:-1])
    return T, S


TABLE_T, TABLE_S = table_nodes()


@njit(inline="always", error_model="numpy")
def table_normal(w, T, S):
    r = w & np.int64(0x7FFFFFFF)
    t = r
    bl = np.int64(0)
    for sh in (16, 8, 4, 2, 1):
        s = np.int64(t >= (np.int64(1) << np.int64(sh))) * np.int64(sh)
        t = t >> s
        bl += s
    bl += np.int64(r > 0)
    sh_ = max(bl - np.int64(TABLE_K + 1), np.int64(0))
    idx = (sh_ << np.int64(TABLE_K)) + (r >> sh_)
    m = T[idx] + np.float64(r & ((np.int64(1) << sh_) - np.int64(1))) * S[idx]
    return m if w >= np.int64(2147483648) else -m


@njit(error_model="numpy")
def table_normals(z, words, T, S, k0, k1, step, sample, stream):
    words7(words, k0, k1, step, sample, stream)
    for j in range(z.shape[0]):
        z[j] = table_normal(words[j], T, S)


# ---------------------------------------------------------------- ziggurat (Marsaglia & Tsang 2000)


def ziggurat_tables(layers: int = 128):
    dn, vn = 3.442619855899, 9.91256303526217e-3
    m1 = 2147483648.0
    kn, wn, fn = np.zeros(layers, np.int64), np.zeros(layers), np.zeros(layers)
    q = vn / math.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0], wn[-1] = q / m1, dn / m1
    fn[0], fn[-1] = 1.0, math.exp(-0.5 * dn * dn)
    tn = dn
    for i in range(layers - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn, 3.442619855899


ZIG_K, ZIG_W, ZIG_F, ZIG_R = ziggurat_tables()


@njit(error_model="numpy")
def ziggurat_normals(z, words, kn, wn, fn, r_tail, k0, k1, step, sample, stream):
    words7(words, k0, k1, step, sample, stream)
    n = z.shape[0]
    for j in range(n):
        hz = np.int64(np.int32(np.uint32(words[j])))
        iz = hz & np.int64(127)
        if abs(hz) < kn[iz]:
            z[j] = hz * wn[iz]
            continue
        extra = np.uint64(1)  # wedge/tail: fresh words from the next counters of this column
        while True:
            if iz == 0:  # the base strip's tail
                while True:
                    counter3 = (np.uint64(stream) + (extra << np.uint64(20))) & np.uint64(R.MASK32)
                    u1, u2, _, _ = philox7(np.uint64(j), np.uint64(step), np.uint64(sample), counter3, k0, k1)
                    extra += np.uint64(1)
                    x = -math.log((np.float64(u1) + 0.5) / 4294967296.0) / r_tail
                    y = -math.log((np.float64(u2) + 0.5) / 4294967296.0)
                    if y + y >= x * x:
                        break
                z[j] = r_tail + x if hz > 0 else -r_tail - x
                break
            x = hz * wn[iz]
            counter3 = (np.uint64(stream) + (extra << np.uint64(20))) & np.uint64(R.MASK32)
            u1, u2, _, _ = philox7(np.uint64(j), np.uint64(step), np.uint64(sample), counter3, k0, k1)
            extra += np.uint64(1)
            if fn[iz] + ((np.float64(u1) + 0.5) / 4294967296.0) * (fn[iz - 1] - fn[iz]) < math.exp(-0.5 * x * x):
                z[j] = x
                break
            hz = np.int64(np.int32(np.uint32(u2)))
            iz = hz & np.int64(127)
            if abs(hz) < kn[iz]:
                z[j] = hz * wn[iz]
                break


# ---------------------------------------------------------------- Box-Muller float32 (adopted)


@njit(error_model="numpy")
def boxmuller_normals(z, r2, g, words32, k0, k1, step, sample, stream):
    R.column_gaussians_nb(r2, g, words32, k0, k1, step, sample, stream)
    for j in range(z.shape[0]):
        z[j] = np.float64(math.sqrt(r2[j]) * g[j])


# ---------------------------------------------------------------- a whole noisy tile read


@njit(error_model="numpy")
def read_old(reps, a, q, rel2, unit, inv_step, step, fmax):
    n = a.shape[0]
    z = np.zeros(n)
    words = np.zeros(4 * NB, np.int64)
    tail = np.zeros(n)
    cur = np.zeros(n)
    for t in range(reps):
        acklam10(z, words, tail, KEY[0], KEY[1], t, 3, 4)
        for j in range(n):
            v = np.float64(a[j]) * unit + math.sqrt(rel2 * np.float64(q[j])) * z[j]
            c = min(max(np.rint(v * inv_step), -fmax), fmax)
            cur[j] += c * step
    return cur.sum()


@njit(error_model="numpy")
def read_new(reps, a, q, rel2c, ua, step, fmax):
    n = a.shape[0]
    r2 = np.zeros(4 * NB, np.float32)
    g = np.zeros(4 * NB, np.float32)
    words = np.zeros(4 * NB, np.uint32)
    cur = np.zeros(n)
    for t in range(reps):
        R.column_gaussians_nb(r2, g, words, KEY[0], KEY[1], t, 3, 4)
        for j in range(n):
            nc = math.sqrt((rel2c * np.float32(q[j])) * r2[j]) * g[j]
            c = min(max(np.rint(np.float64(a[j]) * ua + np.float64(nc)), -fmax), fmax)
            cur[j] += c * step
    return cur.sum()


# ---------------------------------------------------------------- measurement


@njit(error_model="numpy")
def loop_acklam10(reps, z, w64, tail):
    for t in range(reps):
        acklam10(z, w64, tail, KEY[0], KEY[1], t, 3, 4)


@njit(error_model="numpy")
def loop_acklam7(reps, z, w64, tail):
    for t in range(reps):
        acklam7(z, w64, tail, KEY[0], KEY[1], t, 3, 4)


@njit(error_model="numpy")
def loop_table(reps, z, w64, T, S):
    for t in range(reps):
        table_normals(z, w64, T, S, KEY[0], KEY[1], t, 3, 4)


@njit(error_model="numpy")
def loop_ziggurat(reps, z, w64, kn, wn, fn, r_tail):
    for t in range(reps):
        ziggurat_normals(z, w64, kn, wn, fn, r_tail, KEY[0], KEY[1], t, 3, 4)


@njit(error_model="numpy")
def loop_boxmuller(reps, r2, g, w32):
    for t in range(reps):
        R.column_gaussians_nb(r2, g, w32, KEY[0], KEY[1], t, 3, 4)


def candidates():
    """name -> (draw(t): fill the float64 ``z`` with step t's N_COLUMNS normals, timed(reps):
    a compiled loop over reps steps, largest |z| the method can produce (None: unbounded))."""
    z = np.zeros(N_COLUMNS)
    w64 = np.zeros(4 * NB, np.int64)
    w32 = np.zeros(4 * NB, np.uint32)
    tail = np.zeros(N_COLUMNS)
    r2 = np.zeros(4 * NB, np.float32)
    g = np.zeros(4 * NB, np.float32)
    k0, k1 = KEY
    zmax_acklam = -float(ndtri(0.5 / 2**32))

    def bm(t):
        boxmuller_normals(z, r2, g, w32, k0, k1, t, 3, 4)

    out = {
        "philox10-acklam": (lambda t: acklam10(z, w64, tail, k0, k1, t, 3, 4), lambda n: loop_acklam10(n, z, w64, tail), zmax_acklam),
        "philox7-acklam": (lambda t: acklam7(z, w64, tail, k0, k1, t, 3, 4), lambda n: loop_acklam7(n, z, w64, tail), zmax_acklam),
        "philox7-table": (
            lambda t: table_normals(z, w64, TABLE_T, TABLE_S, k0, k1, t, 3, 4),
            lambda n: loop_table(n, z, w64, TABLE_T, TABLE_S),
            float(TABLE_T[0]),
        ),
        "philox7-ziggurat": (lambda t: ziggurat_normals(z, w64, ZIG_K, ZIG_W, ZIG_F, ZIG_R, k0, k1, t, 3, 4),
                             lambda n: loop_ziggurat(n, z, w64, ZIG_K, ZIG_W, ZIG_F, ZIG_R), None),
        "philox7-boxmuller32": (bm, lambda n: loop_boxmuller(n, r2, g, w32), R.R_MAX),
    }  # fmt: skip
    return z, out


def speed(repeat: int = 5) -> dict:
    """ns per normal of each candidate (words included), one core: compiled loops of 20,000
    tile draws of N_COLUMNS normals, the candidates in turn ``repeat`` times (a shared machine
    slows some runs down), the fastest run of each."""
    _, cands = candidates()
    for _, timed, _ in cands.values():
        timed(5)
    best = {name: math.inf for name in cands}
    for _ in range(repeat):
        for name, (_, timed, _) in cands.items():
            t0 = time.perf_counter()
            timed(20_000)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: round(v / (20_000 * N_COLUMNS) * 1e9, 3) for name, v in best.items()}


def read_speed() -> dict:
    """ns per element of a whole noisy tile read (draw, sqrt of the variance, ADC conversion)."""
    rng = np.random.default_rng(0)
    a = rng.integers(-3000, 3000, N_COLUMNS).astype(np.int32)
    q = rng.integers(1, 10**6, N_COLUMNS).astype(np.int32)
    unit = 0.0017
    runs = {"philox10-acklam, float64 read": lambda r: read_old(r, a, q, (0.02 * unit) ** 2, unit, 1 / unit, unit, 8191.0),
            "philox7-boxmuller32, float32 noise": lambda r: read_new(r, a, q, np.float32(0.02**2), 1.0, unit, 8191.0)}  # fmt: skip
    for fn in runs.values():
        fn(5)
    best = {name: math.inf for name in runs}
    for _ in range(5):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(20_000)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: round(v / (20_000 * N_COLUMNS) * 1e9, 3) for name, v in best.items()}


def quality(n_draws: int) -> dict:
    """10^7 (``n_draws``) draws of each candidate: KS, moments, tail mass against exact."""
    z, cands = candidates()
    steps = -(-n_draws // N_COLUMNS)
    out = {}
    for name, (fn, _, zmax) in cands.items():
        draws = np.empty(steps * N_COLUMNS)
        for t in range(steps):
            fn(t)
            draws[t * N_COLUMNS : (t + 1) * N_COLUMNS] = z
        draws = draws[:n_draws]
        ks = stats.kstest(draws, "norm")
        row = {"ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue), "mean": float(draws.mean()), "variance": float(draws.var()),
               "skewness": float(stats.skew(draws)), "excess_kurtosis": float(stats.kurtosis(draws)), "largest_abs_z": zmax,
               "largest_abs_z_drawn": float(np.abs(draws).max())}  # fmt: skip
        for t in TAILS:
            row[f"tail_{t:g}_sigma"] = float(np.mean(np.abs(draws) > t))
        out[name] = row
    out["exact"] = {f"tail_{t:g}_sigma": float(2 * ndtr(-t)) for t in TAILS}
    out["exact"].update(mean=0.0, variance=1.0, skewness=0.0, excess_kurtosis=0.0)
    out["draws"] = n_draws
    return out


@njit(error_model="numpy")
def boxmuller_block(out, k0, k1, t0, r2, g, w32):
    """``out`` (steps, N_COLUMNS) float64: the adopted draw at steps ``t0, t0+1, ...``."""
    for i in range(out.shape[0]):
        R.column_gaussians_nb(r2, g, w32, k0, k1, t0 + i, 3, 4)
        for j in range(out.shape[1]):
            out[i, j] = np.float64(math.sqrt(r2[j]) * g[j])


def ks_over_keys(n_draws: int, n_keys: int = 5) -> list[float]:
    """KS p-values of the adopted draw, ``n_draws`` each under ``n_keys`` other noise seeds: one
    p-value says little (a sample's p is uniform on (0, 1) when the draw is right)."""
    r2, g, w32 = np.zeros(4 * NB, np.float32), np.zeros(4 * NB, np.float32), np.zeros(4 * NB, np.uint32)
    out = []
    for seed in range(1, n_keys + 1):
        k0, k1 = R.seed_key(seed * 0x9E3779B97F4A7C15 % 2**64)
        z = np.empty((-(-n_draws // N_COLUMNS), N_COLUMNS))
        boxmuller_block(z, np.uint64(k0), np.uint64(k1), 0, r2, g, w32)
        out.append(float(stats.kstest(z.ravel()[:n_draws], "norm").pvalue))
    return out


def exact_tails_boxmuller() -> dict:
    """P(|z| > t) of the adopted draw over every word pair, no sampling: every radius word
    ``w0`` whose radius exceeds t (of the 2^32) against all 2^24 angle codes ``k`` (cosine slot;
    the sine slot's codes are the same multiset by the grid's symmetry): ``|R c| > t`` counted
    as ``|c| > t / R`` (the float32 product's rounding, < 1e-7 relative, ignored)."""
    k = np.arange(2**24, dtype=np.uint32) << np.uint32(8)
    c, _ = R.angle(k)
    absc = np.sort(np.abs(c.astype(np.float64)))
    out = {}
    for t in TAILS:
        w_max = min(int(math.exp(-0.5 * t * t) * 1.001 * 2**32) + 4096, 2**32)  # radius > t needs u < exp(-t^2/2)
        total = 0.0
        for lo in range(0, w_max, 2**22):
            w = np.arange(lo, min(lo + 2**22, w_max), dtype=np.uint64).astype(np.uint32)
            radius = np.sqrt(R.radius2(w).astype(np.float64))
            radius = radius[radius > t]
            total += float(np.sum(1.0 - np.searchsorted(absc, t / radius, side="right") / absc.size))
        out[f"tail_{t:g}_sigma"] = total / 2**32
    return out


def zero_variance_fraction(n_samples: int = 8) -> dict:
    """On the reference workload (benchmarks/bench_reservoir.py, input tiles, every 10th step):
    the fraction of a tile read's columns with zero variance (no active row has a non-zero
    weight in that column), i.e. the draws that could be skipped."""
    from neurohw.benchmarks import bench_reservoir as bench
    from neurohw.reservoir.backends import numpy_ref
    from neurohw.reservoir.lsm import LSMEncoder

    w = dict(bench.WORKLOAD, batch=n_samples)
    syn = LSMEncoder(bench._config(w, 0.0273, "numpy", True), w["device"]).synapses()  # ~the calibrated scale
    rasters = bench._rasters(w)
    reads = zero = 0
    spiking = np.zeros(syn.n_neurons, bool)
    for r in rasters:
        for t in range(0, r.n_bins, 10):
            lo, hi = r.indptr[t], r.indptr[t + 1]
            idx = r.indices[lo:hi].astype(np.int64)
            for rd in numpy_ref.reads(syn, idx, np.ones(len(idx), np.int64), spiking, 1):
                reads += rd.q.size
                zero += int(np.count_nonzero(rd.q == 0))
    return {"column_reads": reads, "zero_variance": zero, "fraction": zero / max(reads, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="read-noise normal generators: speed and quality")
    p.add_argument("--json", action="store_true")
    p.add_argument("--draws", type=int, default=10_000_000)
    a = p.parse_args(argv)
    report = {"ns_per_normal": speed(), "ns_per_noisy_read_element": read_speed(), "quality": quality(a.draws),
              "boxmuller32_ks_pvalues_other_keys": ks_over_keys(a.draws), "boxmuller32_exact_tails": exact_tails_boxmuller(),
              "zero_variance": zero_variance_fraction()}  # fmt: skip
    if a.json:
        print(json.dumps(report, indent=1))
        return 0
    print("ns per normal (one core, words included):")
    for k, v in report["ns_per_normal"].items():
        print(f"  {k:<24}{v:>8.3f}")
    print("ns per element of a noisy tile read (draw + sqrt + ADC):")
    for k, v in report["ns_per_noisy_read_element"].items():
        print(f"  {k:<40}{v:>8.3f}")
    q = report["quality"]
    print(f"quality on {q['draws']:,} draws:")
    cols = ["ks_statistic", "ks_pvalue", "mean", "variance", "skewness", "excess_kurtosis", "tail_3_sigma", "tail_4_sigma", "tail_5_sigma", "largest_abs_z"]
    print("  " + f"{'':<22}" + "".join(f"{c[:12]:>13}" for c in cols))
    for name, row in q.items():
        if isinstance(row, dict):
            print("  " + f"{name:<22}" + "".join(f"{row.get(c) if row.get(c) is not None else float('inf'):>13.4g}" for c in cols))
    print("Box-Muller float32, KS p-values under 5 other keys:", [round(p, 3) for p in report["boxmuller32_ks_pvalues_other_keys"]])
    print("Box-Muller float32, exact tail mass over all words:", {k: f"{v:.4g}" for k, v in report["boxmuller32_exact_tails"].items()})
    print("zero-variance columns on the reference workload:", report["zero_variance"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
