"""Read noise, noise-equivalent sampling, drift, stuck cells and write-verify programming."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from neurohw.crossbar import Crossbar
from neurohw.devices.input_encoding import encode
from neurohw.devices.model import load_device
from neurohw.devices.programming import expected_pulses, program


def test_read_noise_std_within_5_percent():
    """taox_rram_40nm (2 % multiplicative, through the 14-bit ADC): one active row at a time."""
    xb = Crossbar.from_forming("taox_rram_40nm", 512, 256, scale=0.07, seed=2)
    W = xb.weights()
    rng = np.random.default_rng(0)
    rows = [i for i in range(512) if np.count_nonzero(np.abs(W[i]) > 0.5) > 100][:8]
    rel = []
    for i in rows:
        x = np.zeros((1000, 512))
        x[:, i] = 1.0
        y = xb.mvm(x, rng=rng)
        keep = np.abs(W[i]) > 0.5  # |dG| > 7 uS: well above the ADC LSB
        rel.append((y[:, keep] / W[i, keep] - 1.0).ravel())
    rel = np.concatenate(rel)
    measured = rel.std()
    assert measured == pytest.approx(0.02, rel=0.05), measured
    assert abs(rel.mean()) < 4 * 0.02 / np.sqrt(rel.size)


def _brute_force(x_planes, W, relative, additive, n_trials, rng):
    """Per-cell noise, fresh for every plane and trial: sum_k c_k sum_i P_ki (w_ij (1 + r e) + a e')."""
    out = np.zeros((n_trials, W.shape[1]))
    for c, P in x_planes:
        e1 = rng.standard_normal((n_trials, *W.shape))
        e2 = rng.standard_normal((n_trials, *W.shape))
        cells = W[None] * (1 + relative * e1) + additive * e2
        out += c * np.einsum("i,tij->tj", P, cells)
    return out


@pytest.mark.parametrize("bits", [None, 4], ids=["binary", "bit-serial-4"])
def test_noise_equivalent_matches_per_cell_noise(bits):
    over = {"read_noise": {"relative": 0.05, "additive_us": 0.3}, "input": {"bits": bits, "bit_serial": True}}
    dev = load_device("ideal", over)
    xb = Crossbar.from_forming(dev, 24, 6, scale=0.1, seed=4)
    W = xb.weights()
    rng = np.random.default_rng(9)
    x = (rng.random(24) < 0.5).astype(float) if bits is None else rng.integers(0, 16, 24).astype(float)
    planes = [(c, P[0]) for c, P in encode(x[None], dev.input)]
    assert len(planes) == (1 if bits is None else 4)
    n = 40000
    ne = xb.mvm(np.tile(x, (n, 1)), rng=np.random.default_rng(1))
    bf = _brute_force(planes, W, 0.05, xb.read_noise_additive, n, np.random.default_rng(2))
    # closed form: mean x@W; variance sum_k c_k^2 (r^2 P_k @ W^2 + a^2 sum P_k)
    mean = x @ W
    var = sum(c * c * (0.05**2 * (P @ W**2) + xb.read_noise_additive**2 * P.sum()) for c, P in planes)
    for sample in (ne, bf):
        se = np.sqrt(var / n)
        assert np.all(np.abs(sample.mean(0) - mean) < 4.5 * se)
        np.testing.assert_allclose(sample.var(0), var, rtol=0.05)
    np.testing.assert_allclose(ne.var(0), bf.var(0), rtol=0.06)
    if bits is not None:  # bit-serial variance is not r^2 x^2 @ W^2 (each plane is its own read)
        naive = 0.05**2 * (x**2 @ W**2)
        assert np.all(np.abs(ne.var(0) / naive - 1) > 0.2)


def test_noise_free_and_seeded_noise():
    xb = Crossbar.from_forming("taox_rram_40nm", 100, 40, 0.1, seed=1)
    x = (np.random.default_rng(0).random((5, 100)) < 0.3).astype(float)
    np.testing.assert_allclose(xb.mvm(x, noise=False), x @ xb.weights(), atol=1e-12)
    twin = Crossbar.from_forming("taox_rram_40nm", 100, 40, 0.1, seed=1)
    a1, a2 = xb.mvm(x), xb.mvm(x)
    b1, b2 = twin.mvm(x), twin.mvm(x)
    np.testing.assert_array_equal(a1, b1)  # same seed -> same noise draws, in order
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # fresh noise on every read


def test_drift_follows_power_law():
    dev = load_device("pcm_like")
    xb = Crossbar.from_forming(dev, 256, 128, scale=0.1, seed=3)
    t0 = dev.drift.t0_s
    nu = xb.nu
    # nu ~ N(0.049, 0.008) per cell
    assert stats.kstest(nu.ravel(), "norm", args=(0.049, 0.008)).pvalue > 1e-3
    np.testing.assert_array_equal(xb.weights(t0), xb.weights())  # no drift until t0
    times = t0 * np.array([10.0, 100.0, 1e3, 1e4])
    g0 = np.stack([xb.g_pos, xb.g_neg])
    mean_log = []
    for t in times:
        gp, gn = xb.conductances(t)
        ok = g0 > 1.0
        ratio = np.divide(np.stack([gp, gn]), g0, out=np.ones_like(g0), where=ok)
        # per cell: log(G/G0) / log(t/t0) == -nu exactly
        np.testing.assert_allclose(np.log(ratio[ok]) / np.log(t / t0), -nu[ok], rtol=1e-9, atol=1e-12)
        mean_log.append(np.log(ratio[ok]).mean())
        np.testing.assert_allclose(xb.weights(t), xb.scale * (gp - gn))
    slope = np.polyfit(np.log(times / t0), mean_log, 1)[0]
    assert slope == pytest.approx(-nu[g0 > 1.0].mean(), rel=1e-9)
    assert -slope == pytest.approx(0.049, abs=4 * 0.008 / np.sqrt(nu.size))


def test_stuck_cells_fractions_and_values():
    over = {"stuck": {"p_on": 0.01, "p_off": 0.03, "g_on_us": 40.0, "g_off_us": 0.0}}
    dev = load_device("taox_rram_40nm", over)
    xb = Crossbar.from_forming(dev, 512, 256, 0.1, seed=8)
    n = 2 * 512 * 256
    on, off = (xb.stuck_code == 1), (xb.stuck_code == 2)
    for frac, p in ((on.mean(), 0.01), (off.mean(), 0.03)):
        assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n)
    g = np.stack([xb.g_pos, xb.g_neg])
    assert np.all(g[on] == 40.0) and np.all(g[off] == 0.0)
    # programming cannot move stuck cells; write-verify spends all pulses on them
    W = np.random.default_rng(0).normal(size=(64, 32))
    pw = Crossbar.from_weights(dev, W, seed=2)
    g = np.stack([pw.g_pos, pw.g_neg])
    stuck_on = pw.stuck_code == 1
    assert np.all(g[stuck_on] == 40.0)
    assert np.all(pw.pulses[stuck_on] == dev.programming.max_pulses)


def test_write_verify_pulse_counts_match_geometric_law():
    over = {"programming": {"write_verify": True, "tolerance_us": 0.5, "pulse_std_us": 1.0, "max_pulses": 5}}
    dev = load_device("ideal", over)
    targets = np.full(200_000, 50.0)
    res = program(targets, dev.programming, np.random.default_rng(0))
    q = 0.38292492254802624  # erf(0.5 / sqrt 2): one pulse lands within +-0.5 std
    assert expected_pulses(dev.programming) == pytest.approx((1 - (1 - q) ** 5) / q)
    mean, se = res.pulses.mean(), res.pulses.std() / np.sqrt(targets.size)
    assert abs(mean - expected_pulses(dev.programming)) < 4 * se
    assert abs(res.converged.mean() - (1 - (1 - q) ** 5)) < 4 * np.sqrt(0.1 / targets.size)
    assert np.all(np.abs(res.g_us[res.converged] - 50.0) <= 0.5)
    assert res.pulses.max() == 5 and res.pulses.min() == 1
