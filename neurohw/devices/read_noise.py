"""Read noise, drawn afresh on every read.

Per differential-pair read of weight ``w`` at input ``x``:
    contribution = x * (w * (1 + r * e1) + a * e2),    e1, e2 ~ N(0, 1) independent
with ``r`` = ``read_noise.relative`` and ``a`` = ``scale * read_noise.additive_us`` (weight
units per active row). A column's read is a sum of independent Gaussians, so exactly
    out_j ~ N( sum_i x_i w_ij,  r^2 sum_i x_i^2 w_ij^2 + a^2 sum_i x_i^2 )
(noise-equivalent sampling: one extra matmul with W**2 instead of a noise matrix per read). For binary inputs ``x^2 = x``. A bit-serial input is a sum
of binary reads, each with fresh noise, and each plane is sampled this way on its own.
"""

from __future__ import annotations

import numpy as np


def read_variance(x: np.ndarray, w2: np.ndarray, relative: float, additive: float) -> np.ndarray:
    """``r^2 (x^2 @ W^2) + a^2 sum(x^2)`` for inputs ``x`` (..., n_in) and ``w2 = W**2`` (n_in, n_out)."""
    x2 = np.square(x)
    var = (relative * relative) * (x2 @ w2) if relative > 0 else np.zeros(x.shape[:-1] + (w2.shape[-1],))
    if additive > 0:
        var = var + (additive * additive) * x2.sum(axis=-1, keepdims=True)
    return var


def sample_read(mean: np.ndarray, variance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mean + sqrt(variance) * N(0, 1)``, one fresh draw per element."""
    return mean + np.sqrt(variance) * rng.standard_normal(mean.shape)
