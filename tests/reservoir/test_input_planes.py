"""Count inputs in the reservoir read as the device reads them: the input codes and planes
against neurohw.devices.input_encoding, and one reservoir step against Crossbar.mvm on the same
inputs (ADC codes exactly with noise off; per-column mean and variance with noise on)."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.data.binning import to_sparse
from neurohw.devices.input_encoding import encode
from neurohw.devices.model import InputSpec, load_device
from neurohw.reservoir.backends import cpu, numpy_ref
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder
from neurohw.reservoir.synapses import Synapses

SPECS = [
    InputSpec(bits=6, full_scale=None, bit_serial=True),  # the reference macro
    InputSpec(bits=3, full_scale=None, bit_serial=True),  # counts above 7 clip to 7
    InputSpec(bits=8, full_scale=None, bit_serial=False),  # PWM: one amplitude read
    InputSpec(bits=4, full_scale=30.0, bit_serial=True),  # codes rint(x / 2)
    InputSpec(bits=None),  # analog amplitudes
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"bits{s.bits}-fs{s.full_scale}-{'serial' if s.bit_serial else 'amp'}")
def test_synapses_planes_equal_the_device_input_encoding(spec):
    """Synapses' codes, planes and coefficients (what every backend reads) against
    input_encoding.encode (what Crossbar.mvm reads), on every raster value 0..255."""
    syn = Synapses(np.zeros((256, 2), np.int8), np.zeros((2, 2), np.int8), 1.0, 1.0, 0.9,
                   input_bits=spec.bits, input_full_scale=spec.full_scale, input_bit_serial=spec.bit_serial)  # fmt: skip
    x = np.arange(256.0)[None, :]
    codes = syn.input_codes(255)
    n_planes = syn.n_planes(int(codes.max()))
    ours = [(c, p) for c, p in zip(syn.plane_coefficients(n_planes), numpy_ref.input_planes(syn, codes.astype(np.int64), n_planes)) if np.any(p)]
    theirs = encode(x, spec)
    assert len(ours) == len(theirs)
    for (c, p), (c_dev, p_dev) in zip(ours, theirs):
        assert c == c_dev
        np.testing.assert_array_equal(p, p_dev[0])


def _encoder(n_inputs=600, n_neurons=48, seed=3):
    """The reference macro with 2 input tiles, firing switched off (v_th huge): after one step
    the membrane is the step's current."""
    cfg = LSMConfig(n_inputs=n_inputs, n_neurons=n_neurons, v_th=1e9, decay=0.9, scale=0.05, backend="cpu", seed=seed)
    return LSMEncoder(cfg, "taox_rram_40nm")


def _count_inputs(rng, n_inputs, density=0.04, high=12):
    x = np.zeros(n_inputs, np.int64)
    on = rng.choice(n_inputs, int(density * n_inputs), replace=False)
    x[on] = rng.integers(1, high, len(on))
    x[on[:3]] = [1, 2, 11]  # one binary input and counts with one and three planes
    return x


def test_bit_serial_adc_codes_equal_crossbar_mvm_noise_off():
    """Noise off: every (tile, plane) read's ADC codes equal Crossbar's quantised plane read,
    and the step's current (per tile the planes' codes shifted and added) equals
    Crossbar.mvm(x, noise=False) (which adds the planes' outputs in float)."""
    rng = np.random.default_rng(0)
    enc = _encoder()
    syn = enc.synapses()
    assert syn.bit_serial and syn.adc is not None and syn.integer
    xin, _ = enc.crossbars()
    x = _count_inputs(rng, syn.n_inputs)
    idx = np.flatnonzero(x)
    codes = syn.input_codes(int(x.max()))[x[idx]]
    n_planes = syn.n_planes(int(codes.max()))
    assert n_planes == 4  # counts up to 11
    reads = numpy_ref.reads(syn, idx, codes, np.zeros(syn.n_neurons, bool), n_planes)
    planes = list(xin._planes(x[None, :].astype(np.float64)))
    assert len(reads) == sum(int(np.count_nonzero(Pt[0].any(axis=-1))) for _, _, Pt in planes)  # one read per active (plane, tile)
    W = xin.weights()
    tr = xin.tile_rows
    step = syn.read_tables()[0]
    for r in reads:
        coef, P, _ = planes[r.plane]
        part = P[0, r.k * tr : (r.k + 1) * tr] @ W[r.k * tr : (r.k + 1) * tr]
        _, code = numpy_ref.read_output(syn, r, 0, 0, noisy=False)
        np.testing.assert_array_equal(code * step[r.k], xin.adc.quantize(part, tile=r.k))  # the same codes
        assert r.coef == coef
    current = numpy_ref.step_current(syn, idx, codes, np.zeros(syn.n_neurons, bool), 0, 0, False, n_planes)
    np.testing.assert_allclose(current, xin.mvm(x.astype(np.float64), noise=False), rtol=1e-12, atol=1e-12)


def test_bit_serial_noisy_read_statistics_equal_crossbar_mvm():
    """Noise on: per column, the mean and variance of one read of count inputs over 3,000
    draws (sample ids) equal Crossbar.mvm's on the same inputs; and the variance is the
    bit-serial one (sum over planes of 4^b r^2 sum w^2), well below the amplitude read's
    (r^2 sum x^2 w^2) that the backends used before."""
    rng = np.random.default_rng(1)
    enc = _encoder()
    syn = enc.synapses()
    xin, _ = enc.crossbars()
    x = _count_inputs(rng, syn.n_inputs)
    N = 3000
    raster = to_sparse(x[None, :].astype(np.uint8))
    res = cpu.run_batch(syn, [raster] * N, np.arange(N), noise=True)
    ours = res.membrane.astype(np.float64)
    theirs = xin.mvm(np.repeat(x[None, :].astype(np.float64), N, axis=0), rng=np.random.default_rng(2), noise=True)
    m1, m2 = ours.mean(0), theirs.mean(0)
    v1, v2 = ours.var(0, ddof=1), theirs.var(0, ddof=1)
    z = (m1 - m2) / np.sqrt((v1 + v2) / N)
    assert np.max(np.abs(z)) < 4.5
    ratio = v1 / v2
    assert np.max(np.abs(ratio - 1)) < 5 * np.sqrt(4 / N)
    W = xin.weights()
    bits = [(x >> b) & 1 for b in range(4)]
    r = xin.read_noise_relative
    var_bit_serial = sum(4.0**b * r**2 * (bits[b][:, None] * W**2).sum(0) for b in range(4))
    var_amplitude = r**2 * ((x**2)[:, None] * W**2).sum(0)
    assert np.median(v1 / var_bit_serial) == pytest.approx(1.0, abs=0.1)  # plus the ADC's rounding
    assert np.median(var_amplitude / v1) > 1.3


def test_device_without_bit_serial_inputs_reads_one_amplitude_plane():
    """The analog amplitude mode stays for devices whose inputs are not bit-serial (PCM-like:
    8-bit PWM): one read of amplitude x per tile, variance r^2 sum x^2 w^2."""
    device = load_device("taox_rram_40nm", {"input": {"bits": 8, "bit_serial": False}})
    enc = LSMEncoder(LSMConfig(n_inputs=600, n_neurons=48, v_th=1e9, scale=0.05, backend="cpu", seed=3), device)
    syn = enc.synapses()
    assert not syn.bit_serial and syn.n_planes(11) == 1
    xin, _ = enc.crossbars()
    x = _count_inputs(np.random.default_rng(0), syn.n_inputs)
    idx = np.flatnonzero(x)
    current = numpy_ref.step_current(syn, idx, syn.input_codes(11)[x[idx]], np.zeros(syn.n_neurons, bool), 0, 0, False)
    np.testing.assert_allclose(current, xin.mvm(x.astype(np.float64), noise=False), rtol=1e-12, atol=1e-12)
    assert len(numpy_ref.reads(syn, idx, x[idx], np.zeros(syn.n_neurons, bool), 1)) == 2  # one per input tile
