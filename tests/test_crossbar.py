"""The crossbar: ideal exactness, integer weights, tiling, programming, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device


def test_ideal_device_reproduces_float_matmul():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(700, 300))
    x = rng.normal(size=(16, 700))  # analog, signed inputs
    xb = Crossbar.from_weights("ideal", W, seed=0)
    assert xb.n_tiles == 2 and xb.adc is None
    np.testing.assert_allclose(xb.weights(), W, rtol=0, atol=1e-14)
    y = xb.mvm(x)
    np.testing.assert_allclose(y, x @ W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xb.mvm(x[0]), x[0] @ W, rtol=1e-12, atol=1e-12)


def test_integer_weights_exact_for_reference_macro():
    xb = Crossbar.from_forming("taox_rram_40nm", 300, 200, scale=0.07, seed=1)
    Wq, unit = xb.integer_weights()
    assert Wq.dtype == np.int32 and unit == 0.07 * 0.0625
    W = xb.weights()
    assert np.array_equal(W, unit * Wq)  # bit for bit
    assert np.array_equal(W, xb.scale * (xb.g_pos - xb.g_neg))  # power-of-two step: both forms agree
    assert np.abs(Wq).max() > 100
    assert Crossbar.from_forming("ideal", 30, 20, 0.07, seed=1).integer_weights() is None


def test_weights_are_read_only_and_shapes_checked():
    xb = Crossbar.from_forming("taox_rram_40nm", 10, 4, scale=0.1, seed=0)
    with pytest.raises(ValueError):
        xb.weights()[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"shape \(B, 10\)"):
        xb.mvm(np.zeros((2, 11)))
    with pytest.raises(ValueError, match="scale"):
        Crossbar.from_forming("taox_rram_40nm", 10, 4, scale=-1.0)


def test_tiling_does_not_change_exact_results():
    """Noise-free, no ADC: any tile size gives x @ W (digital accumulation of tile sums)."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(50, 30))
    x = rng.integers(0, 8, size=(7, 50)).astype(float)
    ref = x @ W
    for rows, cols in ((512, 512), (16, 8), (7, 4)):
        dev = load_device("ideal", {"array": {"rows": rows, "cols": cols}, "input": {"bits": 3}})
        y = Crossbar.from_weights(dev, W, seed=0).mvm(x)
        np.testing.assert_allclose(y, ref, atol=1e-12)


def test_from_weights_on_levels_with_write_verify():
    dev = load_device("taox_rram_40nm")
    W = np.random.default_rng(2).uniform(-1, 1, size=(64, 32))
    xb = Crossbar.from_weights(dev, W, seed=5)
    assert xb.scale == pytest.approx(np.abs(W).max() / 40.0)
    assert xb.integer_weights() is not None
    tol = dev.programming.tolerance_us * xb.scale
    ok = xb.converged[0] & xb.converged[1]
    assert ok.mean() > 0.99
    # each converged cell within the tolerance of its snapped target: |dW| <= 2 tol + one level
    err = np.abs(xb.weights() - W)[ok]
    assert err.max() <= 2 * tol + xb.scale * dev.levels.step_us
    assert xb.ledger.programming_pulses == int(xb.pulses.sum()) > W.size * 2


def test_from_forming_reference_statistics_and_rescaled():
    xb = Crossbar.from_forming("taox_rram_40nm", 256, 200, scale=0.07, seed=9)
    dg = xb.g_pos - xb.g_neg
    assert dg.std() == pytest.approx(10.37, rel=0.02)
    formed = xb.g_pos[xb.formed[0]]
    assert formed.mean() == pytest.approx(14.25, abs=0.05) and formed.std() == pytest.approx(2.46, rel=0.03)
    twice = xb.rescaled(0.14)
    np.testing.assert_array_equal(twice.weights(), 2 * xb.weights())
    assert twice.read_noise_relative == 0.02
    assert twice.adc.step[0] == 2 * xb.adc.step[0]


def test_additive_noise_is_in_weight_units():
    dev = load_device("ideal", {"read_noise": {"additive_us": 2.0}})
    xb = Crossbar.from_forming(dev, 8, 3, scale=0.5, seed=0)
    assert xb.read_noise_additive == 1.0
    x = np.zeros((20000, 8))
    x[:, :4] = 1.0  # four active rows -> std sqrt(4) * 1.0
    y = xb.mvm(x, rng=np.random.default_rng(0)) - x[0] @ xb.weights()
    np.testing.assert_allclose(y.std(axis=0), 2.0, rtol=0.03)
