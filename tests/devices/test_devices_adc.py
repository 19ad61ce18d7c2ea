"""The per-tile ADC and input quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.devices.adc import TileADC
from neurohw.devices.input_encoding import encode, quantize_inputs
from neurohw.devices.model import InputSpec, load_device


def test_quantisation_error_bounded_by_half_lsb():
    adc = TileADC(bits=6, step=np.array([0.1, 0.25]))
    assert adc.max_code == 31
    rng = np.random.default_rng(0)
    for t in range(2):
        fs = adc.full_scale[t]
        p = rng.uniform(-fs, fs, size=100_000)
        q = adc.quantize(p, tile=t)
        err = np.abs(q - p)
        assert err.max() <= adc.step[t] / 2 + 1e-12
        assert err.max() > 0.49 * adc.step[t]  # the bound is attained, not loose
        codes = np.rint(q / adc.step[t])
        assert np.array_equal(codes * adc.step[t], q) and np.abs(codes).max() <= 31
    # saturation beyond full scale
    np.testing.assert_allclose(adc.quantize(np.array([100.0, -100.0]), tile=1), [31 * 0.25, -31 * 0.25])
    # all tiles at once: axis -2 is the tile axis
    p = rng.normal(size=(3, 2, 4))
    np.testing.assert_array_equal(adc.quantize(p), np.stack([adc.quantize(p[:, t], tile=t) for t in range(2)], axis=1))


def test_crossbar_adc_error_bound_multi_tile_bit_serial():
    """Coarse 6-bit ADC, 3 row tiles, 6-bit bit-serial inputs, no noise: the error of y is at
    most sum over planes and tiles of |c_k| * LSB / 2."""
    dev = load_device("taox_rram_40nm", {"adc": {"bits": 6, "range_us": 256.0}, "array": {"rows": 40, "cols": 16}})
    xb = Crossbar.from_forming(dev, 100, 20, scale=0.05, seed=3)
    assert xb.n_tiles == 3 and xb.n_col_tiles == 3
    x = np.random.default_rng(1).integers(0, 64, size=(50, 100)).astype(float)
    y = xb.mvm(x, noise=False)
    exact = x @ xb.weights()
    lsb = xb.adc.step[0]
    assert lsb == pytest.approx(0.05 * 256.0 / 32)
    bound = sum(abs(c) for c in (2.0**b for b in range(6))) * xb.n_tiles * lsb / 2
    err = np.abs(y - exact)
    assert err.max() <= bound
    assert err.max() > 0.0  # the 6-bit ADC does quantise


def test_14bit_adc_is_exact_on_levels_for_binary_inputs():
    """taox: the ADC LSB equals the level unit, so noise-free binary reads are exact sums."""
    xb = Crossbar.from_forming("taox_rram_40nm", 512, 64, scale=0.07, seed=0)
    Wq, unit = xb.integer_weights()
    assert xb.adc.step[0] == unit
    x = (np.random.default_rng(2).random((20, 512)) < 0.1).astype(float)
    y = xb.mvm(x, noise=False)
    np.testing.assert_array_equal(np.rint(y / unit).astype(np.int64), x.astype(np.int64) @ Wq.astype(np.int64))


def test_per_tile_gain_never_saturates_binary_inputs():
    xb = Crossbar.from_forming("pcm_like", 600, 50, scale=0.1, seed=1)
    W = xb.weights()
    assert xb.n_tiles == 3
    for t in range(3):
        worst = np.abs(W[t * 256 : (t + 1) * 256]).sum(axis=0).max()
        assert xb.adc.full_scale[t] == pytest.approx(worst)
    ones = np.ones((1, 600))
    y = xb.mvm(ones, noise=False)  # PWM (not bit-serial), 8-bit inputs: one plane of ones
    assert np.all(np.abs(y - ones @ W) <= 3 * xb.adc.step.max() / 2)


def test_input_encoding_planes():
    spec = InputSpec(bits=3, bit_serial=True)
    x = np.array([[0.0, 1.0, 5.0, -3.0, 9.0, 2.4]])
    planes = encode(x, spec)
    coefs = sorted(c for c, _ in planes)
    assert coefs == [-2.0, -1.0, 1.0, 2.0, 4.0]  # 3 = 1 + 2 on the negative pass; no 4 there
    for _, p in planes:
        assert set(np.unique(p)) <= {0.0, 1.0}
    np.testing.assert_array_equal(quantize_inputs(x, spec), [[0, 1, 5, -3, 7, 2]])  # clip at 7, round 2.4
    binary = encode(np.array([[0.0, 1.0, 1.0]]), spec)
    assert len(binary) == 1 and binary[0][0] == 1.0
    # with a full scale, a 1.0 input is the top code 1111b: four bit-serial reads
    assert sorted(c for c, _ in encode(np.array([[1.0, 0.0]]), InputSpec(bits=4, full_scale=1.0))) == [1 / 15, 2 / 15, 4 / 15, 8 / 15]
    fs = InputSpec(bits=4, full_scale=1.0, bit_serial=False)
    np.testing.assert_allclose(quantize_inputs(np.array([0.5, 1.2]), fs), [8 / 15, 1.0])
    assert len(encode(np.array([0.5, 1.2]), fs)) == 1
