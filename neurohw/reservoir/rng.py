"""Counter-based read-noise draws: Philox4x32-7 words, Box-Muller normals in float32.

Why counter-based: a read-noise draw is a pure function of ``(seed, sample, step, stream,
column)``, so it does not depend on batch size, thread count, launch order or backend.

Words: Philox4x32-R (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2,
3", SC 2011; the Random123 library): a 4 x 32-bit counter and a 2 x 32-bit key, R rounds of
``(hi, lo) = M * c`` with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and the Weyl key bumps
``W0 = 0x9E3779B9``, ``W1 = 0xBB67AE85``. The reservoir uses R = 7 (:data:`ROUNDS`), the
fewest rounds that the Random123 authors found to pass TestU01's BigCrush for Philox4x32 (10 is
their default, kept here for the known-answer tests). Known-answer vectors of both from
Random123's kat_vectors are checked in tests/test_lif.py.

Counter layout of a read of ``n`` columns: ``nb = ceil(n/4)`` Philox blocks; block ``b`` has
counter ``(b, step, sample, stream)`` and key ``(seed mod 2**32, seed // 2**32)``; column ``j``
takes slot ``k = j // nb`` of block ``j % nb``. Slots 0 and 1 are the Box-Muller pair made of
words 0 (radius) and 1 (angle): slot 0 takes the cosine, slot 1 the sine; slots 2 and 3 the
pair of words 2 and 3 likewise.

Normals (Box, Muller 1958), every operation in IEEE float32 (+ - * / sqrt, int <-> float
conversions, bit casts; no library function, no fused multiply-add), written in the same order
in numpy, numba and CUDA so that the draws, and noisy spikes, are bit-identical everywhere:

- radius: ``u = (f32(w0) + 0.5) 2**-32`` in (0, 1]; ``ln u = (e - 32) ln 2 + ln m`` from the
  float's exponent ``e`` and mantissa ``m`` (folded into (sqrt(1/2), sqrt 2]), with
  ``ln m = 2 s (1 + s^2/3 + s^4/5 + s^6/7 + s^8/9)``, ``s = (m - 1)/(m + 1)``, ``|s| <= 0.172``
  (truncation < 1e-9); ``r2 = -2 ln u`` (= R^2, the squared radius).
- angle: 24 bits of ``w1``, ``theta = 2 pi (k + 0.5) / 2**24``: the top two bits pick the
  quadrant, ``t`` in (-pi/4, pi/4) is the offset from the quadrant's middle, ``sin t`` and
  ``cos t`` by Taylor polynomials to t^9 and t^8 (truncation < 3e-8), rotated by pi/4 and the
  quadrant.
- ``z = sqrt(r2) * cos(theta)`` (slot 0) or ``sqrt(r2) * sin(theta)`` (slot 1).

A read with standard deviation ``sd`` adds ``sqrt(sd^2 * r2) * g`` (``g`` the cosine or sine):
one square root per column for the draw and the scale together. ``|z| <= sqrt(66 ln 2) = 6.77``.
Quality (KS, moments, tails) and the speed of the candidates that were measured against it:
docs/internals.md, Reservoir, and benchmarks/rng_study.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF
ROUNDS = 7  # Philox4x32-7: passes BigCrush (Salmon et al. 2011, Table 2)

F32 = np.float32
LN2 = F32(0.6931471805599453)  # ln 2 rounded to float32
SQRT_HALF = F32(0.7071067811865476)  # sqrt(1/2) rounded to float32
SQRT2_MANTISSA = 0x3504F3  # mantissa bits of float32(sqrt 2) = 0x3FB504F3
ATANH_C = tuple(F32(1.0 / k) for k in (3, 5, 7, 9))  # ln m = 2 s (1 + s^2/3 + s^4/5 + s^6/7 + s^8/9)
SIN_C = tuple(F32(c) for c in (-1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880))  # t^3, t^5, t^7, t^9
COS_C = tuple(F32(c) for c in (-1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320))  # t^2, t^4, t^6, t^8
ANGLE_STEP = F32(math.pi / 2**23)  # (pi/2) / 2**22: one angle code within a quadrant
ANGLE_MID = F32(2**21 - 0.5)  # the middle of a quadrant's 2**22 codes
R_MAX = math.sqrt(66.0 * math.log(2.0))  # largest |z|: u = 2**-33


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key ``(k0, k1)`` of a non-negative 64-bit seed."""
    seed = int(seed)
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed & MASK32, (seed >> 32) & MASK32


def philox4x32(c0, c1, c2, c3, k0, k1, rounds: int = 10):
    """Philox4x32-``rounds`` on arrays (numpy, vectorised): four uint32 output words.

    All arguments broadcast; values are taken modulo 2**32. ``rounds`` defaults to Random123's
    10 (what other users of these words, e.g. the HIL chip emulator, draw with); the reservoir's
    read noise passes ``rounds=ROUNDS`` (7).
    """
    u = np.uint64
    m = u(MASK32)
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & m for c in (c0, c1, c2, c3))
    k0 = np.asarray(k0, dtype=np.uint64) & m
    k1 = np.asarray(k1, dtype=np.uint64) & m
    for r in range(rounds):
        if r:
            k0 = (k0 + u(W0)) & m
            k1 = (k1 + u(W1)) & m
        p0 = u(M0) * c0
        p1 = u(M1) * c2
        hi0, lo0 = p0 >> u(32), p0 & m
        hi1, lo1 = p1 >> u(32), p1 & m
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def radius2(w) -> np.ndarray:
    """``r2 = -2 ln u``, ``u = (f32(w) + 0.5) 2**-32``, float32 (numpy; see the module doc)."""
    x = np.asarray(w, dtype=np.uint32).astype(np.float32) + F32(0.5)
    bits = np.atleast_1d(x).view(np.int32).reshape(np.shape(x))
    e = (bits >> 23) - 127
    mb = bits & 0x7FFFFF
    big = (mb > SQRT2_MANTISSA).astype(np.int32)
    m = (mb | (0x3F800000 - (big << 23))).astype(np.int32).view(np.float32)
    e = e + big
    s = (m - F32(1.0)) / (m + F32(1.0))
    s2 = s * s
    c3, c5, c7, c9 = ATANH_C
    p = (((c9 * s2 + c7) * s2 + c5) * s2 + c3) * s2 + F32(1.0)
    ln_u = (e - 32).astype(np.float32) * LN2 + F32(2.0) * s * p
    return F32(-2.0) * ln_u


def angle(w) -> tuple[np.ndarray, np.ndarray]:
    """``(cos theta, sin theta)``, ``theta = 2 pi (k + 0.5) / 2**24``, ``k = w >> 8``, float32
    (numpy; see the module doc)."""
    k = (np.asarray(w, dtype=np.uint32) >> 8).astype(np.int32)
    t = ((k & 0x3FFFFF).astype(np.float32) - ANGLE_MID) * ANGLE_STEP
    t2 = t * t
    s3, s5, s7, s9 = SIN_C
    c2, c4, c6, c8 = COS_C
    sn = ((((s9 * t2 + s7) * t2 + s5) * t2 + s3) * t2) * t + t
    cs = (((c8 * t2 + c6) * t2 + c4) * t2 + c2) * t2 + F32(1.0)
    c = (cs - sn) * SQRT_HALF  # cos(pi/4 + t)
    s = (cs + sn) * SQRT_HALF  # sin(pi/4 + t)
    qd = k >> 22
    odd = (qd & 1) == 1
    c1 = np.where(odd, -s, c)
    s1 = np.where(odd, c, s)
    neg = qd >= 2
    return np.where(neg, -c1, c1).astype(np.float32), np.where(neg, -s1, s1).astype(np.float32)


def column_gaussians(seed: int, n_columns: int, step, sample, stream) -> tuple[np.ndarray, np.ndarray]:
    """``(r2, g)`` of columns ``0..n_columns-1`` at counters ``(step, sample, stream)``:
    column ``j``'s normal is ``sqrt(r2[j]) * g[j]`` (float32; see the module doc).

    ``step``, ``sample`` and ``stream`` broadcast against each other (shape S); the results
    have shape ``S + (n_columns,)``.
    """
    k0, k1 = seed_key(seed)
    step, sample, stream = np.broadcast_arrays(np.asarray(step), np.asarray(sample), np.asarray(stream))
    nb = (n_columns + 3) // 4
    blocks = np.arange(nb)
    w0, w1, w2, w3 = philox4x32(blocks, step[..., None], sample[..., None], stream[..., None], k0, k1, rounds=ROUNDS)
    ra, rb = radius2(w0), radius2(w2)
    ca, sa = angle(w1)
    cb, sb = angle(w3)
    r2 = np.concatenate([ra, ra, rb, rb], axis=-1)  # slot k of block b at k * nb + b
    g = np.concatenate([ca, sa, cb, sb], axis=-1)
    return r2[..., :n_columns], g[..., :n_columns]


def column_normals(seed: int, n_columns: int, step, sample, stream) -> np.ndarray:
    """The standard normals ``sqrt(r2) * g`` of :func:`column_gaussians` (float32)."""
    r2, g = column_gaussians(seed, n_columns, step, sample, stream)
    return np.sqrt(r2) * g


def noise(var32: np.ndarray, r2: np.ndarray, g: np.ndarray) -> np.ndarray:
    """A read's noise ``sqrt(var * r2) * g`` for float32 variances ``var32`` (numpy; the rule
    every backend applies)."""
    return np.sqrt(np.asarray(var32, np.float32) * r2) * g


# ---- numba twins (used by the cpu backend; the same float32 operations in the same order) ----
# The integer steps (bit fields of a word, a float's exponent and mantissa) are exact, so the
# numba twins may compute them differently from numpy (as float32 operations on exact values,
# or in LLVM intrinsics on 32-bit lanes: numba widens int32 arithmetic to int64, which halves
# the vector width); every rounding float32 operation is the same, in the same order.


def _i32():
    from llvmlite import ir

    return ir.IntType(32), ir.FloatType(), ir.Constant


@intrinsic
def _exponent_f32(typingctx, x):
    """float32 ``e`` of a positive normal float32 ``x = m 2**e``, ``m`` in [1, 2) (exact)."""

    def codegen(context, builder, signature, args):
        i32, f32, const = _i32()
        bits = builder.bitcast(args[0], i32)
        return builder.sitofp(builder.sub(builder.ashr(bits, const(i32, 23)), const(i32, 127)), f32)

    return types.float32(types.float32), codegen


@intrinsic
def _mantissa_f32(typingctx, x):
    """float32 ``m`` in [1, 2) of a positive normal float32 ``x = m 2**e`` (exact)."""

    def codegen(context, builder, signature, args):
        i32, f32, const = _i32()
        bits = builder.bitcast(args[0], i32)
        return builder.bitcast(builder.or_(builder.and_(bits, const(i32, 0x7FFFFF)), const(i32, 0x3F800000)), f32)

    return types.float32(types.float32), codegen


@intrinsic
def _angle_code_f32(typingctx, w):
    """float32 ``w >> 8`` (the 24-bit angle code) of a uint32 word (exact)."""

    def codegen(context, builder, signature, args):
        i32, f32, const = _i32()
        v = args[0] if args[0].type.width == 32 else builder.trunc(args[0], i32)
        return builder.uitofp(builder.lshr(v, const(i32, 8)), f32)

    return types.float32(w), codegen


SQRT2_F32 = F32(math.sqrt(2.0))  # float32(sqrt 2): its mantissa bits are SQRT2_MANTISSA
QUADRANT = F32(2.0**22)
INV_QUADRANT = F32(2.0**-22)


@njit(cache=True, inline="always", error_model="numpy")
def philox4x32_nb(c0, c1, c2, c3, k0, k1):
    """Philox4x32-7 on scalars (numba); arguments and results are uint64 holding 32 bits."""
    m = np.uint64(MASK32)
    s = np.uint64(32)
    for r in range(ROUNDS):
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
def radius2_nb(w):
    """Numba twin of :func:`radius2` for one uint32 word."""
    x = F32(w) + F32(0.5)
    e = _exponent_f32(x)
    m = _mantissa_f32(x)
    big = m > SQRT2_F32
    m = m * F32(0.5) if big else m
    e = e + F32(1.0) if big else e
    s = (m - F32(1.0)) / (m + F32(1.0))
    s2 = s * s
    p = (((ATANH_C[3] * s2 + ATANH_C[2]) * s2 + ATANH_C[1]) * s2 + ATANH_C[0]) * s2 + F32(1.0)
    ln_u = (e - F32(32.0)) * LN2 + F32(2.0) * s * p
    return F32(-2.0) * ln_u


@njit(cache=True, inline="always", error_model="numpy")
def angle_nb(w):
    """Numba twin of :func:`angle` for one uint32 word: ``(cos theta, sin theta)``."""
    k = _angle_code_f32(w)
    qd = np.floor(k * INV_QUADRANT)  # quadrant 0..3 (exact)
    t = ((k - qd * QUADRANT) - ANGLE_MID) * ANGLE_STEP
    t2 = t * t
    sn = ((((SIN_C[3] * t2 + SIN_C[2]) * t2 + SIN_C[1]) * t2 + SIN_C[0]) * t2) * t + t
    cs = (((COS_C[3] * t2 + COS_C[2]) * t2 + COS_C[1]) * t2 + COS_C[0]) * t2 + F32(1.0)
    c = (cs - sn) * SQRT_HALF
    s = (cs + sn) * SQRT_HALF
    odd = (qd == F32(1.0)) | (qd == F32(3.0))
    c1 = -s if odd else c
    s1 = c if odd else s
    neg = qd >= F32(2.0)
    return (-c1 if neg else c1), (-s1 if neg else s1)


@njit(cache=True, inline="always", error_model="numpy")
def philox_words_nb(words, k0, k1, step, sample, stream):
    """Philox4x32-7 blocks ``b = 0..nb-1`` at counters ``(b, step, sample, stream)`` into the
    uint32 scratch ``words`` (length ``4 nb``): word ``k`` of block ``b`` at ``k nb + b``."""
    nb = words.shape[0] // 4
    st = np.uint64(step) & np.uint64(MASK32)
    sa = np.uint64(sample) & np.uint64(MASK32)
    sr = np.uint64(stream) & np.uint64(MASK32)
    for b in range(nb):
        w0, w1, w2, w3 = philox4x32_nb(np.uint64(b), st, sa, sr, k0, k1)
        words[b] = np.uint32(w0)
        words[nb + b] = np.uint32(w1)
        words[2 * nb + b] = np.uint32(w2)
        words[3 * nb + b] = np.uint32(w3)


@njit(cache=True, inline="always", error_model="numpy")
def gaussians_from_words_nb(r2, g, words):
    """:func:`column_gaussians`' ``(r2, g)`` from :func:`philox_words_nb`' words, in four
    vectorised passes (radius of words 0 and 2, angle of words 1 and 3)."""
    nb = words.shape[0] // 4
    for b in range(nb):
        r = radius2_nb(words[b])
        r2[b] = r
        r2[nb + b] = r
    for b in range(nb):
        r = radius2_nb(words[2 * nb + b])
        r2[2 * nb + b] = r
        r2[3 * nb + b] = r
    for b in range(nb):
        c, s = angle_nb(words[nb + b])
        g[b] = c
        g[nb + b] = s
    for b in range(nb):
        c, s = angle_nb(words[3 * nb + b])
        g[2 * nb + b] = c
        g[3 * nb + b] = s


@njit(cache=True, error_model="numpy")
def column_gaussians_nb(r2, g, words, k0, k1, step, sample, stream):
    """Numba twin of :func:`column_gaussians`: fill ``r2``, ``g`` (float32) from the uint32
    scratch ``words``; all three of length ``4 ceil(n / 4)`` for ``n`` columns."""
    philox_words_nb(words, k0, k1, step, sample, stream)
    gaussians_from_words_nb(r2, g, words)
