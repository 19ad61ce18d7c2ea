"""Stochastic electroforming: the random conductance a cell takes when the array is formed.

Each cell forms independently with probability ``p`` (:attr:`Forming.probability`). A formed
cell's conductance is drawn from the configured distribution (gaussian, lognormal or a measured
histogram); an unformed cell stays at ``unformed_us``. The result is clipped to
``[g_min_us, g_max_us]`` and, for devices with levels, rounded to the level grid.

One cell (ignoring clipping and levels), with formed mean ``m``, formed variance ``s^2`` and
unformed conductance ``u``:
    E[G]   = p m + (1 - p) u
    Var[G] = p s^2 + p (1 - p) (m - u)^2
A differential pair of two independent cells, ``dG = G+ - G-``, has mean 0 and
``Var[dG] = 2 Var[G]``. Reference (Lin et al. 2025): p = 0.5, N(14.25 uS, 2.46 uS), u = 0
gives std(dG) = 10.37 uS.
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.levels import snap
from neurohw.devices.model import Distribution, Forming


def _lognormal_params(mean: float, std: float) -> tuple[float, float]:
    """(mu, sigma) of ln G for a lognormal with the given mean and std of G itself."""
    s2 = np.log1p((std / mean) ** 2)
    return float(np.log(mean) - s2 / 2), float(np.sqrt(s2))


def sample_distribution(dist: Distribution, size, rng: np.random.Generator) -> np.ndarray:
    """Draw conductances (uS) from ``dist``; float64 array of shape ``size``."""
    if dist.kind == "gaussian":
        return rng.normal(dist.mean_us, dist.std_us, size=size)
    if dist.kind == "lognormal":
        mu, sigma = _lognormal_params(dist.mean_us, dist.std_us)
        return rng.lognormal(mu, sigma, size=size)
    edges = np.asarray(dist.edges_us, dtype=np.float64)
    prob = np.asarray(dist.counts, dtype=np.float64)
    prob = prob / prob.sum()
    k = rng.choice(len(prob), size=size, p=prob)
    return edges[k] + rng.random(size=size) * (edges[k + 1] - edges[k])


def distribution_cdf(dist: Distribution, g_us: np.ndarray) -> np.ndarray:
    """The CDF of ``dist`` at ``g_us`` (for goodness-of-fit tests)."""
    from scipy import stats  # here, not at the top: ~0.7 s to import, and only goodness-of-fit checks need it

    g_us = np.asarray(g_us, dtype=np.float64)
    if dist.kind == "gaussian":
        if dist.std_us == 0:
            return (g_us >= dist.mean_us).astype(np.float64)
        return stats.norm.cdf(g_us, loc=dist.mean_us, scale=dist.std_us)
    if dist.kind == "lognormal":
        mu, sigma = _lognormal_params(dist.mean_us, dist.std_us)
        return stats.lognorm.cdf(g_us, s=sigma, scale=np.exp(mu))
    edges = np.asarray(dist.edges_us, dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(dist.counts)]) / np.sum(dist.counts)
    return np.interp(g_us, edges, cum, left=0.0, right=1.0)


def distribution_moments(dist: Distribution) -> tuple[float, float]:
    """(mean, variance) of ``dist`` in uS and uS^2."""
    if dist.kind in ("gaussian", "lognormal"):
        return float(dist.mean_us), float(dist.std_us) ** 2
    a = np.asarray(dist.edges_us[:-1], dtype=np.float64)
    b = np.asarray(dist.edges_us[1:], dtype=np.float64)
    p = np.asarray(dist.counts, dtype=np.float64) / np.sum(dist.counts)
    mean = float(np.sum(p * (a + b) / 2))
    second = float(np.sum(p * (a * a + a * b + b * b) / 3))
    return mean, second - mean**2


def form_cells(forming: Forming, shape, rng: np.random.Generator, step_us: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Form an array of cells: ``(g_us float64, formed bool)``, both of ``shape``.

    Draw order (fixed, so that a seed pins the result): the formation mask first, then one
    conductance per cell (drawn for every cell, used where formed).
    """
    formed = rng.random(size=shape) < forming.probability
    g_formed = sample_distribution(forming.formed, shape, rng)
    g = np.where(formed, g_formed, forming.unformed_us)
    g = np.clip(g, forming.g_min_us, forming.g_max_us)
    return snap(g, step_us), formed


def cell_moments(forming: Forming) -> tuple[float, float]:
    """(mean, variance) of one formed-or-unformed cell (closed form; no clipping, no levels)."""
    m, s2 = distribution_moments(forming.formed)
    p, u = forming.probability, forming.unformed_us
    return p * m + (1 - p) * u, p * s2 + p * (1 - p) * (m - u) ** 2


def differential_std(forming: Forming) -> float:
    """std of ``G+ - G-`` for two independently formed cells, uS (closed form)."""
    return float(np.sqrt(2 * cell_moments(forming)[1]))
