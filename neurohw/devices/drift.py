"""Conductance drift: a power law in time since programming.

    G(t) = G0 * (t / t0)^(-nu)   for t > t0,   G(t) = G0 for t <= t0
with one exponent ``nu`` per cell drawn at programming time, ``nu ~ N(nu_mean, nu_std)``
clipped at 0 (drift never raises a conductance). Reference for PCM: aihwkit's
PCMLikeNoiseModel (t0 = 20 s, nu ~ 0.05; Nandakumar et al. 2019, Joshi et al. 2020).
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.model import Drift


def sample_nu(drift: Drift, shape, rng: np.random.Generator) -> np.ndarray:
    """Per-cell drift exponents (zeros when drift is disabled; the generator is not touched then)."""
    if not drift.enabled:
        return np.zeros(shape)
    return np.maximum(rng.normal(drift.nu_mean, drift.nu_std, size=shape), 0.0)


def drift_factor(nu: np.ndarray, t_s: float, t0_s: float) -> np.ndarray:
    """``(max(t, t0) / t0)^-nu``: the factor that multiplies G0 at time ``t_s`` after programming."""
    if t_s < 0:
        raise ValueError(f"time since programming must be >= 0 s, got {t_s}")
    ratio = max(float(t_s), t0_s) / t0_s
    return np.power(ratio, -np.asarray(nu, dtype=np.float64))


def drifts(drift: Drift, t_s: float | None) -> bool:
    """Whether conductances read ``t_s`` seconds after programming differ from those read at
    programming: drift enabled and ``t_s > t0`` (at or before ``t0`` the factor is exactly 1)."""
    return t_s is not None and drift.enabled and float(t_s) > drift.t0_s


def drifted(g0_us: np.ndarray, nu: np.ndarray, t_s: float, t0_s: float) -> np.ndarray:
    """Conductances at time ``t_s`` after programming."""
    return np.asarray(g0_us, dtype=np.float64) * drift_factor(nu, t_s, t0_s)
