"""Drift over time as the reservoir reads it, and its compensation: the power law's closed form,
aihwkit's reference-read estimator computed independently (torch, one-hot reads), the gain
applied exactly as a digital gain after the ADC, and the experiment keys that carry both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohw.crossbar import Crossbar
from neurohw.devices.drift_compensation import gains
from neurohw.devices.model import load_device
from neurohw.errors import ConfigError
from neurohw.reservoir.lsm import LSMEncoder

YEAR = 365.25 * 86400.0


def _aihwkit_alpha(w0: np.ndarray, wt: np.ndarray, per_column: bool) -> np.ndarray:
    """aihwkit's estimator written again in torch: forward the one-hot read-out tensor (eye) through
    the tile at programming and now, read out the (per-column) mean |y|, alpha = ref / current."""
    eye = torch.eye(w0.shape[0], dtype=torch.float64)
    y0, yt = eye @ torch.tensor(np.array(w0)), eye @ torch.tensor(np.array(wt))
    if per_column:
        return (y0.abs().mean(dim=0) / yt.abs().mean(dim=0)).numpy()
    return np.full(w0.shape[1], float(y0.abs().mean() / yt.abs().mean()))


@pytest.mark.parametrize("mode", ["global", "column"])
def test_gains_equal_an_independent_computation_of_aihwkits_estimator(mode):
    dev = load_device("pcm_like")
    xb = Crossbar.from_forming(dev, 120, 40, scale=0.05, seed=4)
    t = 30 * 86400.0
    alpha = xb.drift_gains(t, mode)
    ref = _aihwkit_alpha(np.asarray(xb.weights()), xb.weights(t), per_column=(mode == "column"))
    np.testing.assert_allclose(alpha, ref, rtol=1e-12)
    assert np.all(alpha > 1.0)  # conductances only fall: the gain raises
    # the same from the module function on any pair of matrices, and ones when nothing drifted
    np.testing.assert_array_equal(gains(xb.weights(), xb.weights(t), mode), alpha)
    np.testing.assert_array_equal(xb.drift_gains(dev.drift.t0_s, mode), np.ones(40))
    np.testing.assert_array_equal(xb.drift_gains(t, "none"), np.ones(40))


def test_one_drift_exponent_gives_the_closed_form_gain():
    """With every cell drifting by the same nu, G(t) = G0 (t / t0)^-nu, so both estimators must
    return exactly (t / t0)^nu."""
    dev = load_device("pcm_like", {"drift": {"nu_std": 0.0}})
    xb = Crossbar.from_forming(dev, 64, 32, scale=0.05, seed=1)
    for t in (60.0, 86400.0, 10 * YEAR):
        closed = (t / dev.drift.t0_s) ** dev.drift.nu_mean
        for mode in ("global", "column"):
            np.testing.assert_allclose(xb.drift_gains(t, mode), closed, rtol=1e-12)


def _encoder(device, **kw) -> LSMEncoder:
    return LSMEncoder(n_inputs=50, n_neurons=24, scale=0.3, backend="numpy", seed=5, device=device, **kw)


def test_the_reservoir_reads_the_drifted_conductances_of_the_power_law():
    dev = load_device("pcm_like")
    enc = _encoder(dev)
    xin, xrec = enc.crossbars()
    t = 3600.0 * 24
    f = (t / dev.drift.t0_s) ** -xin.nu  # closed form per cell, (2, n_in, n)
    fr = (t / dev.drift.t0_s) ** -xrec.nu
    syn = enc.read_at(t).synapses()
    np.testing.assert_allclose(syn.w_in, enc.scale * (xin.g_pos * f[0] - xin.g_neg * f[1]), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(syn.w_rec, enc.scale * (xrec.g_pos * fr[0] - xrec.g_neg * fr[1]), rtol=1e-12, atol=1e-15)
    # the ADC keeps the full scale it was calibrated to at programming
    np.testing.assert_array_equal(syn.adc.step_in, xin.adc.step)
    # at or before t0 (and back at None) the reads are exactly those at programming
    at_prog = enc.read_at(None).synapses()
    for t_early in (0.0, dev.drift.t0_s):
        same = enc.read_at(t_early).synapses()
        np.testing.assert_array_equal(same.w_in, at_prog.w_in)
    rasters = [(np.random.default_rng(s).random((20, 50)) < 0.2).astype(np.uint8) for s in range(4)]
    early = enc.read_at(None).encode(rasters, progress=False)["rate"]
    late = enc.read_at(10 * YEAR).encode(rasters, progress=False)["rate"]
    assert late.mean() < early.mean()  # weaker weights, fewer spikes


def test_global_compensation_is_a_digital_gain_after_the_adc():
    """The compensated crossbar is the drifted one with its output multiplied by alpha: weights,
    ADC steps and additive read noise all scale by alpha, so every ADC code is the drifted read's."""
    dev = load_device("pcm_like", {"read_noise": {"additive_us": 0.2}})
    enc = _encoder(dev)
    xin, _ = enc.crossbars()
    t = YEAR
    alpha = float(xin.drift_gains(t, "global")[0])
    plain = enc.read_at(t, "none").synapses()
    comp = enc.read_at(t, "global").synapses()
    np.testing.assert_allclose(comp.w_in, alpha * plain.w_in, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(comp.adc.step_in, alpha * plain.adc.step_in, rtol=1e-12)
    assert comp.noise_additive == pytest.approx(alpha * plain.noise_additive, rel=1e-12)
    assert comp.noise_relative == plain.noise_relative
    # the same through a crossbar read (per-tile ADC, noise off): codes unchanged, values times alpha
    x = (np.random.default_rng(2).random((16, 50)) < 0.3).astype(float)
    drifted = xin.mvm(x, noise=False, t_s=t)
    view = xin.rescaled(xin.scale * alpha)
    np.testing.assert_allclose(view.mvm(x, noise=False, t_s=t), alpha * drifted, rtol=1e-9, atol=1e-12)


def test_without_an_adc_a_uniform_drift_is_undone_exactly():
    dev = load_device("pcm_like", {"drift": {"nu_std": 0.0}, "adc": {"bits": None}})
    enc = _encoder(dev)
    at_prog = enc.read_at(None).synapses()
    for mode in ("global", "column"):
        comp = enc.read_at(10 * YEAR, mode).synapses()
        np.testing.assert_allclose(comp.w_in, at_prog.w_in, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(comp.w_rec, at_prog.w_rec, rtol=1e-12, atol=1e-15)


def test_column_compensation_takes_each_columns_gain():
    dev = load_device("pcm_like", {"adc": {"bits": None}})
    enc = _encoder(dev)
    xin, _ = enc.crossbars()
    t = YEAR
    alpha = xin.drift_gains(t, "column")
    assert alpha.std() > 0  # columns drift by different amounts
    comp = enc.read_at(t, "column").synapses()
    np.testing.assert_allclose(comp.w_in, xin.weights(t) * alpha, rtol=1e-12, atol=1e-15)


def test_bad_read_settings_are_one_line_errors():
    enc = _encoder("pcm_like")
    with pytest.raises(ConfigError, match="read time"):
        enc.read_at(-1.0)
    with pytest.raises(ConfigError, match="drift compensation must be one of none, global, column"):
        enc.read_at(10.0, "columns")
