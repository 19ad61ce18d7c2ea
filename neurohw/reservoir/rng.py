"""Counter-based random numbers: Philox4x32-10, the same draws in numpy, numba and CUDA.

Why counter-based: a read-noise draw is a pure function of ``(seed, sample, step, stream,
column)``, so it does not depend on batch size, thread count, launch order or backend.

Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011; the Random123 library): a 4 x 32-bit counter and a 2 x 32-bit key, 10 rounds of
``(hi, lo) = M * c`` with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and the Weyl key bumps
``W0 = 0x9E3779B9``, ``W1 = 0xBB67AE85``. Known-answer vectors from Random123's
tests/kat_vectors are checked in tests/test_lif.py.

Counter layout of the reservoir's read noise, for a read of ``n`` columns: ``nb = ceil(n/4)``
Philox blocks; block ``b`` has counter ``(b, step, sample, stream)`` and key
``(seed mod 2**32, seed // 2**32)``; column ``j`` takes word ``j // nb`` of block ``j % nb``.

Normal from a word ``w``: ``p = (w + 0.5) / 2**32`` in (0, 1), then the inverse normal CDF by
P. J. Acklam's rational approximation (relative error < 1.15e-9; central region
``|p - 0.5| <= 0.5 - 0.02425``, tails ``sqrt(-2 ln p)``). The logarithm is computed from the
integer word with a branch-free bit length and the series ``ln m = 2 atanh((m-1)/(m+1))``, so
the whole draw is integer arithmetic, + - * / and sqrt: IEEE-exact operations. Written in the
same order in numpy, numba and CUDA (compiled with --fmad=false / -ffp-contract=off), the
draws are bit-identical on every backend, and so are noisy spikes. |z| <= 6.3 by construction.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF
TWO_PI = 2.0 * math.pi
INV_2_32 = 1.0 / 4294967296.0  # 2**-32


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key ``(k0, k1)`` of a non-negative 64-bit seed."""
    seed = int(seed)
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed & MASK32, (seed >> 32) & MASK32


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on arrays (numpy, vectorised): four uint32 output words.

    All arguments broadcast; values are taken modulo 2**32.
    """
    u = np.uint64
    m = u(MASK32)
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & m for c in (c0, c1, c2, c3))
    k0 = np.asarray(k0, dtype=np.uint64) & m
    k1 = np.asarray(k1, dtype=np.uint64) & m
    for r in range(10):
        if r:
            k0 = (k0 + u(W0)) & m
            k1 = (k1 + u(W1)) & m
        p0 = u(M0) * c0
        p1 = u(M1) * c2
        hi0, lo0 = p0 >> u(32), p0 & m
        hi1, lo1 = p1 >> u(32), p1 & m
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


# inverse normal CDF, P. J. Acklam (2003), "An algorithm for computing the inverse normal
# cumulative distribution function"; relative error < 1.15e-9 over (0, 1)
ACKLAM_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
ACKLAM_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
P_LOW = 0.02425
LN2 = 0.6931471805599453  # ln 2, correctly rounded
SQRT2 = 1.4142135623730951
# 1/(2k+1), k = 0..8, for ln m = 2 s sum_k s^(2k) / (2k+1), s = (m-1)/(m+1), |s| <= 0.1716
ATANH_C = (1.0, 1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0)


def log_half_word(v):
    """``ln(v / 2**33)`` for odd integers ``1 <= v < 2**32`` (numpy; exact-arithmetic twin of
    the numba and CUDA versions)."""
    v = np.asarray(v, dtype=np.int64)
    e = np.zeros_like(v)
    t = v.copy()
    for sh in (16, 8, 4, 2, 1):
        s = np.where(t >= (1 << sh), sh, 0)
        t = t >> s
        e = e + s
    m = (v << (31 - e)).astype(np.float64) * (1.0 / 2147483648.0)  # in [1, 2)
    big = m > SQRT2
    m = np.where(big, m * 0.5, m)
    e = np.where(big, e + 1, e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = ATANH_C[8]
    for c in ATANH_C[7::-1]:
        acc = acc * s2 + c
    return (e - 33).astype(np.float64) * LN2 + 2.0 * s * acc


def normal_from_word(w):
    """Standard normal from uint32 words (numpy): Acklam's inverse CDF of ``(w + 0.5) / 2**32``."""
    w = np.asarray(w, dtype=np.int64)
    p = (w.astype(np.float64) + 0.5) * INV_2_32
    q = p - 0.5
    r = q * q
    a, b = ACKLAM_A, ACKLAM_B
    num_c = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
    den_c = ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0
    wt = np.where(q < 0, w, 4294967295 - w)  # the word of min(p, 1 - p)
    lt = np.sqrt(-2.0 * log_half_word(2 * wt + 1))
    c, d = ACKLAM_C, ACKLAM_D
    num_t = (((((c[0] * lt + c[1]) * lt + c[2]) * lt + c[3]) * lt + c[4]) * lt + c[5])
    num_t = np.where(q < 0, num_t, -num_t)
    den_t = (((d[0] * lt + d[1]) * lt + d[2]) * lt + d[3]) * lt + 1.0
    central = np.abs(q) <= 0.5 - P_LOW
    return np.where(central, num_c, num_t) / np.where(central, den_c, den_t)


def column_normals(seed: int, n_columns: int, step, sample, stream) -> np.ndarray:
    """Standard normals for columns ``0..n_columns-1`` at counters ``(step, sample, stream)``.

    ``step``, ``sample`` and ``stream`` broadcast against each other (shape S); the result has
    shape ``S + (n_columns,)``. Column ``j`` is word ``j // nb`` of Philox block ``j % nb``.
    """
    k0, k1 = seed_key(seed)
    step, sample, stream = np.broadcast_arrays(np.asarray(step), np.asarray(sample), np.asarray(stream))
    nb = (n_columns + 3) // 4
    blocks = np.arange(nb)
    words = philox4x32(blocks, step[..., None], sample[..., None], stream[..., None], k0, k1)
    z = normal_from_word(np.concatenate(words, axis=-1))  # word k of block b at k * nb + b
    return z[..., :n_columns]

# ---- numba twins (used by the cpu backend; identical integer arithmetic) ----


@njit(cache=True, inline="always", error_model="numpy")
def philox4x32_nb(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on scalars (numba); arguments and results are uint64 holding 32 bits."""
    m = np.uint64(MASK32)
    s = np.uint64(32)
    for r in range(10):
        if r > 0:
            k0 = (k0 + np.uint64(W0)) & m
            k1 = (k1 + np.uint64(W1)) & m
        p0 = np.uint64(M0) * c0
        p1 = np.uint64(M1) * c2
        n0 = (p1 >> s) ^ c1 ^ k0
        n2 = (p0 >> s) ^ c3 ^ k1
        c1 = p1 & m
        c3 = p0 & m
        c0 = n0
        c2 = n2
    return c0, c1, c2, c3


@njit(cache=True, inline="always", error_model="numpy")
def normal_from_word_nb(w):
    """Numba twin of :func:`normal_from_word` for one word (int64 holding 32 bits).

    Branch-free (selects only) so that LLVM vectorises the loop that calls it.
    """
    p = (np.float64(w) + 0.5) * INV_2_32
    q = p - 0.5
    r = q * q
    num_c = (((((ACKLAM_A[0] * r + ACKLAM_A[1]) * r + ACKLAM_A[2]) * r + ACKLAM_A[3]) * r + ACKLAM_A[4]) * r + ACKLAM_A[5]) * q
    den_c = ((((ACKLAM_B[0] * r + ACKLAM_B[1]) * r + ACKLAM_B[2]) * r + ACKLAM_B[3]) * r + ACKLAM_B[4]) * r + 1.0
    lower = np.int64(q < 0)
    wt = lower * w + (np.int64(1) - lower) * (np.int64(4294967295) - w)
    v = np.int64(2) * wt + np.int64(1)
    t = v
    s16 = np.int64(t >= np.int64(65536)) * np.int64(16)
    t = t >> s16
    s8 = np.int64(t >= np.int64(256)) * np.int64(8)
    t = t >> s8
    s4 = np.int64(t >= np.int64(16)) * np.int64(4)
    t = t >> s4
    s2_ = np.int64(t >= np.int64(4)) * np.int64(2)
    t = t >> s2_
    s1 = np.int64(t >= np.int64(2))
    e = s16 + s8 + s4 + s2_ + s1
    m = np.float64(v << (np.int64(31) - e)) * (1.0 / 2147483648.0)
    big = m > SQRT2
    m = m * 0.5 if big else m
    e = e + np.int64(big)
    s_ = (m - 1.0) / (m + 1.0)
    s2 = s_ * s_
    acc = ATANH_C[8]
    acc = acc * s2 + ATANH_C[7]
    acc = acc * s2 + ATANH_C[6]
    acc = acc * s2 + ATANH_C[5]
    acc = acc * s2 + ATANH_C[4]
    acc = acc * s2 + ATANH_C[3]
    acc = acc * s2 + ATANH_C[2]
    acc = acc * s2 + ATANH_C[1]
    acc = acc * s2 + ATANH_C[0]
    ln = np.float64(e - np.int64(33)) * LN2 + 2.0 * s_ * acc
    lt = math.sqrt(-2.0 * ln)
    num_t = (((((ACKLAM_C[0] * lt + ACKLAM_C[1]) * lt + ACKLAM_C[2]) * lt + ACKLAM_C[3]) * lt + ACKLAM_C[4]) * lt + ACKLAM_C[5])
    num_t = num_t if q < 0 else -num_t
    den_t = (((ACKLAM_D[0] * lt + ACKLAM_D[1]) * lt + ACKLAM_D[2]) * lt + ACKLAM_D[3]) * lt + 1.0
    central = abs(q) <= 0.5 - P_LOW
    return (num_c if central else num_t) / (den_c if central else den_t)


def central_word_range() -> tuple[int, int]:
    """The words ``w`` whose normal takes Acklam's central branch: ``lo <= w <= hi``.

    The branch test is ``|q| <= 0.5 - P_LOW`` with ``q = (w + 0.5) 2**-32 - 0.5`` (both
    operations exact in float64, so ``q`` is monotone in ``w``); found by bisection on that very
    test, so the integer range selects exactly the same words as the float test.
    """

    def central(w: int) -> bool:
        return abs((float(w) + 0.5) * INV_2_32 - 0.5) <= 0.5 - P_LOW

    lo, hi = 0, 2**31
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if central(mid) else (mid + 1, hi)
    top_lo, top_hi = 2**31, MASK32
    while top_lo < top_hi:
        mid = (top_lo + top_hi + 1) // 2
        top_lo, top_hi = (mid, top_hi) if central(mid) else (top_lo, mid - 1)
    return lo, top_lo


CENTRAL_LO, CENTRAL_HI = central_word_range()  # 104152957, 2**32 - 1 - 104152957


@njit(cache=True, inline="always", error_model="numpy")
def central_normal_nb(w):
    """Acklam's central branch of :func:`normal_from_word_nb` alone (same operations, same
    bits); valid for ``CENTRAL_LO <= w <= CENTRAL_HI``."""
    p = (np.float64(w) + 0.5) * INV_2_32
    q = p - 0.5
    r = q * q
    num_c = (((((ACKLAM_A[0] * r + ACKLAM_A[1]) * r + ACKLAM_A[2]) * r + ACKLAM_A[3]) * r + ACKLAM_A[4]) * r + ACKLAM_A[5]) * q
    den_c = ((((ACKLAM_B[0] * r + ACKLAM_B[1]) * r + ACKLAM_B[2]) * r + ACKLAM_B[3]) * r + ACKLAM_B[4]) * r + 1.0
    return num_c / den_c


@njit(cache=True, error_model="numpy")
def column_normals_into_nb(out, words, tail, k0, k1, step, sample, stream):
    """Fill ``out[j]`` with the normal of column ``j`` (numba twin of :func:`column_normals`).

    Scratch: ``words`` int64 of length ``4 * ceil(n / 4)``, ``tail`` float64 of length ``n``.
    Same bits as :func:`normal_from_word_nb` on every word, computed in vectorised passes: the
    central branch for every column (it is the answer for 95.15 % of the words), an in-place
    compaction of the tail columns (integer range test, ``(j << 32) | w`` packed in ``words``),
    the full formula on the ~4.85 % tail words (contiguous in ``tail``), then a scatter.
    """
    n = out.shape[0]
    nb = (n + 3) // 4
    st = np.uint64(step) & np.uint64(MASK32)
    sa = np.uint64(sample) & np.uint64(MASK32)
    sr = np.uint64(stream) & np.uint64(MASK32)
    for b in range(nb):
        w0, w1, w2, w3 = philox4x32_nb(np.uint64(b), st, sa, sr, k0, k1)
        words[b] = np.int64(w0)
        words[nb + b] = np.int64(w1)
        words[2 * nb + b] = np.int64(w2)
        words[3 * nb + b] = np.int64(w3)
    for j in range(n):
        out[j] = central_normal_nb(words[j])
    lo = np.int64(CENTRAL_LO)
    hi = np.int64(CENTRAL_HI)
    nt = 0
    for j in range(n):  # branch-free in-place compaction (nt <= j: slot j was read first)
        w = words[j]
        words[nt] = w | (np.int64(j) << np.int64(32))
        nt += np.int64(w < lo) | np.int64(w > hi)
    for k in range(nt):
        tail[k] = normal_from_word_nb(words[k] & np.int64(MASK32))
    for k in range(nt):
        out[words[k] >> np.int64(32)] = tail[k]


@njit(cache=True, error_model="numpy")
def column_normals_nb(out, words, k0, k1, step, sample, stream):
    """:func:`column_normals_into_nb` with its own ``tail`` scratch (``words``: int64 scratch
    of length ``4 * ceil(n / 4)``)."""
    column_normals_into_nb(out, words, np.empty(out.shape[0], np.float64), k0, k1, step, sample, stream)
