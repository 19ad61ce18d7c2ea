"""Stochastic forming: the sampled conductances follow the configured distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from neurohw.crossbar import Crossbar
from neurohw.devices.forming import differential_std, distribution_cdf, form_cells
from neurohw.devices.model import load_device

ALPHA = 1e-3  # KS rejection level; every test below uses a fixed seed


def _dithered_cdf(dist, step):
    """CDF of (level-snapped sample + U(-step/2, step/2)): the configured CDF at the level-cell
    edges, linear in between (exact for rounding to the nearest level)."""

    def cdf(x):
        x = np.asarray(x, dtype=np.float64)
        k = np.floor(x / step + 0.5)
        lo, hi = (k - 0.5) * step, (k + 0.5) * step
        f_lo, f_hi = distribution_cdf(dist, lo), distribution_cdf(dist, hi)
        return f_lo + (x - lo) / step * (f_hi - f_lo)

    return cdf


def test_reference_array_512x512_ks_and_formed_fraction():
    """taox_rram_40nm: one 512 x 512 array (256 pairs) formed; formed cells on the 0.0625 uS grid."""
    dev = load_device("taox_rram_40nm")
    xb = Crossbar.from_forming(dev, 512, 256, scale=1.0, seed=7)
    g = np.stack([xb.g_pos, xb.g_neg])
    assert g.size == 512 * 512
    formed = xb.formed
    frac = formed.mean()
    assert abs(frac - dev.forming.probability) < 0.01, frac
    step = dev.levels.step_us
    assert np.array_equal(np.rint(g / step) * step, g)  # every cell on a level
    assert np.all(g[~formed] == dev.forming.unformed_us)
    dither = np.random.default_rng(1).uniform(-step / 2, step / 2, size=int(formed.sum()))
    res = stats.kstest(g[formed] + dither, _dithered_cdf(dev.forming.formed, step))
    assert res.pvalue > ALPHA, res
    # and the test has power: the same cells against a mean shifted by 0.05 uS are rejected
    shifted = dev.forming.formed.model_copy(update={"mean_us": 14.30})
    assert stats.kstest(g[formed] + dither, _dithered_cdf(shifted, step)).pvalue < ALPHA


def test_differential_weight_statistics_match_closed_form():
    dev = load_device("taox_rram_40nm")
    xb = Crossbar.from_forming(dev, 512, 256, scale=0.07, seed=3)
    dg = xb.g_pos - xb.g_neg
    expected = differential_std(dev.forming)  # sqrt(2 (p s^2 + p (1-p) m^2)) = 10.372 uS
    assert expected == pytest.approx(10.3722, abs=1e-3)
    assert dg.std() == pytest.approx(expected, rel=0.01)
    assert abs(dg.mean()) < 4 * expected / np.sqrt(dg.size)
    np.testing.assert_array_equal(xb.weights(), 0.07 * dg)


@pytest.mark.parametrize(
    "formed, seed",
    [
        ({"kind": "gaussian", "mean_us": 34.06, "std_us": 5.32}, 11),  # the second chip's statistics
        ({"kind": "lognormal", "mean_us": 20.0, "std_us": 8.0}, 12),
        ({"kind": "histogram", "edges_us": [5.0, 10.0, 12.0, 15.0, 25.0], "counts": [10, 40, 35, 15]}, 13),
    ],
)
def test_continuous_distributions_ks(formed, seed):
    dev = load_device("ideal", {"forming": {"formed": formed, "probability": 0.3}})
    g, mask = form_cells(dev.forming, (512, 512), np.random.default_rng(seed))
    assert abs(mask.mean() - 0.3) < 0.01
    res = stats.kstest(g[mask], lambda x: distribution_cdf(dev.forming.formed, x))
    assert res.pvalue > ALPHA, res
    # power: the same sample against the distribution stretched by 2 % is rejected
    wrong = stats.kstest(g[mask] * 1.02, lambda x: distribution_cdf(dev.forming.formed, x))
    assert wrong.pvalue < ALPHA, wrong


def test_same_seed_same_conductances():
    a = Crossbar.from_forming("taox_rram_40nm", 64, 32, 0.1, seed=5)
    b = Crossbar.from_forming("taox_rram_40nm", 64, 32, 0.1, seed=5)
    c = Crossbar.from_forming("taox_rram_40nm", 64, 32, 0.1, seed=6)
    np.testing.assert_array_equal(a.g_pos, b.g_pos)
    np.testing.assert_array_equal(a.g_neg, b.g_neg)
    assert not np.array_equal(a.g_pos, c.g_pos)
