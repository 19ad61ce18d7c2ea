"""Counter-based random numbers: Philox4x32-10, the same draws in numpy, numba and CUDA.

Why counter-based: a read-noise draw is a pure function of ``(seed, sample, step, stream,
column)``, so it does not depend on batch size, thread count, launch order or backend. The same
seed gives the same noise on ``numpy``, ``cpu`` and ``cupy`` (kernels/philox.cuh is the CUDA
twin of this file), and therefore the same noisy spikes.

Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011; the Random123 library): a 4 x 32-bit counter and a 2 x 32-bit key, 10 rounds of
``(hi, lo) = M * c`` with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and the Weyl key bumps
``W0 = 0x9E3779B9``, ``W1 = 0xBB67AE85``. Known-answer vectors from Random123's
tests/kat_vectors are checked in tests/test_lif.py.

Counter layout used by the reservoir (one Philox call gives 4 normals, for 4 adjacent columns):
``ctr = (column // 4, step, sample, stream)``, ``key = (seed mod 2**32, seed // 2**32)``.
Normals by Box-Muller on the two word pairs: ``u = (word + 0.5) / 2**32`` in (0, 1),
``r = sqrt(-2 ln u_a)``, ``z = (r cos 2 pi u_b, r sin 2 pi u_b)``; columns ``4k..4k+3`` take
``(z0a, z0b, z1a, z1b)``. |z| <= 6.8 by construction (32-bit uniforms).
Transcendentals (log, cos, sin) may differ in the last bit between libm, numba and CUDA, so
noisy membranes agree across backends to ~1e-15 relative, not bit for bit.
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


def box_muller(wa, wb):
    """Two normals from two uint32 words (numpy): ``(r cos 2 pi u_b, r sin 2 pi u_b)``."""
    ua = (np.asarray(wa, dtype=np.float64) + 0.5) * INV_2_32
    ub = (np.asarray(wb, dtype=np.float64) + 0.5) * INV_2_32
    r = np.sqrt(-2.0 * np.log(ua))
    th = TWO_PI * ub
    return r * np.cos(th), r * np.sin(th)


def column_normals(seed: int, n_columns: int, step, sample, stream) -> np.ndarray:
    """Standard normals for columns ``0..n_columns-1`` at counters ``(step, sample, stream)``.

    ``step``, ``sample`` and ``stream`` broadcast against each other (shape S); the result has
    shape ``S + (n_columns,)``. Column ``j`` is word pair ``(j % 4) // 2`` of Philox block
    ``j // 4``, cos for even ``j``, sin for odd ``j``.
    """
    k0, k1 = seed_key(seed)
    step, sample, stream = np.broadcast_arrays(np.asarray(step), np.asarray(sample), np.asarray(stream))
    shape = step.shape
    blocks = np.arange((n_columns + 3) // 4)
    w = philox4x32(blocks, step[..., None], sample[..., None], stream[..., None], k0, k1)
    za0, za1 = box_muller(w[0], w[1])
    zb0, zb1 = box_muller(w[2], w[3])
    z = np.stack([za0, za1, zb0, zb1], axis=-1).reshape(shape + (4 * len(blocks),))
    return z[..., :n_columns]


# ---- numba twins (used by the cpu backend; identical integer arithmetic) ----


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def box_muller_nb(wa, wb):
    """Two normals from two 32-bit words held in uint64 (numba)."""
    ua = (np.float64(wa) + 0.5) * INV_2_32
    ub = (np.float64(wb) + 0.5) * INV_2_32
    r = math.sqrt(-2.0 * math.log(ua))
    th = TWO_PI * ub
    return r * math.cos(th), r * math.sin(th)


@njit(cache=True)
def column_normals_nb(out, k0, k1, step, sample, stream):
    """Fill ``out[j]`` with the normal of column ``j`` (numba twin of :func:`column_normals`)."""
    n = out.shape[0]
    for b in range((n + 3) // 4):
        w0, w1, w2, w3 = philox4x32_nb(np.uint64(b), np.uint64(step), np.uint64(sample), np.uint64(stream), k0, k1)
        z0, z1 = box_muller_nb(w0, w1)
        z2, z3 = box_muller_nb(w2, w3)
        j = 4 * b
        out[j] = z0
        if j + 1 < n:
            out[j + 1] = z1
        if j + 2 < n:
            out[j + 2] = z2
        if j + 3 < n:
            out[j + 3] = z3
