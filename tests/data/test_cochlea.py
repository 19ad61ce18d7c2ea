"""The cochlea model: filter design, filtering against scipy, tone responses, the LIF in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter, sosfilt, sosfreqz

from neurohw.data.cochlea import (
    CochleaModel,
    band_edges,
    centre_frequencies,
    channel_envelopes,
    cochlea_events,
    erb_hz,
    filterbank_sos,
    level_drive,
    lif_spikes,
    step_times_us,
)
from neurohw.data.events import COCHLEA_DTYPE

FS = 22050.0
MODEL = CochleaModel()


def _tone(f_hz, amplitude, seconds=0.4):
    t = np.arange(int(seconds * FS)) / FS
    return amplitude * np.sin(2 * np.pi * f_hz * t)


def test_centre_frequencies_are_log_spaced_from_100_hz_to_8_khz():
    fc = centre_frequencies(MODEL)
    assert len(fc) == 64
    assert fc[0] == pytest.approx(100.0) and fc[-1] == pytest.approx(8000.0)
    np.testing.assert_allclose(fc[1:] / fc[:-1], 80.0 ** (1 / 63))


def test_band_edges_are_one_erb_wide_and_centred_geometrically():
    fc = centre_frequencies(MODEL)
    lo, hi = band_edges(MODEL)
    np.testing.assert_allclose(hi - lo, 24.7 * (4.37 * fc / 1000 + 1))
    np.testing.assert_allclose(np.sqrt(lo * hi), fc)
    assert erb_hz(1000.0) == pytest.approx(132.639)  # Glasberg & Moore: ERB(1 kHz) ~ 133 Hz


def test_each_band_pass_has_unit_gain_at_its_centre_and_minus_3_db_at_its_edges():
    sos = filterbank_sos(MODEL, FS)
    assert sos.shape == (64, 2, 6)
    fc = centre_frequencies(MODEL)
    lo, hi = band_edges(MODEL)
    for c in range(0, 64, 7):
        _, h = sosfreqz(sos[c], worN=[lo[c], fc[c], hi[c]], fs=FS)
        np.testing.assert_allclose(np.abs(h)[[0, 2]], 1 / math.sqrt(2), rtol=1e-6)  # edges are pre-warped: exact
        # the bilinear transform moves the digital peak slightly off fc (most at 8 kHz): -0.0002 dB
        assert abs(h[1]) == pytest.approx(1.0, abs=1e-4)


def test_envelopes_match_scipy_filtering_rectification_and_low_pass():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 4000)
    model = CochleaModel(n_channels=8, hop=7)
    sos = filterbank_sos(model, FS)
    env = channel_envelopes(x, FS, model, sos)
    assert env.shape == (4000 // 7, 8)
    alpha = 1 - math.exp(-1 / (FS * model.envelope_tau_ms * 1e-3))
    for c in range(8):
        band = sosfilt(sos[c], x)
        ref = lfilter([alpha], [1, -(1 - alpha)], np.pi * np.maximum(band, 0))
        np.testing.assert_allclose(env[:, c], ref[6 : 7 * env.shape[0] : 7], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("channel", [3, 20, 40, 63])
def test_a_tone_at_a_centre_frequency_peaks_in_its_channel_with_its_amplitude(channel):
    fc = centre_frequencies(MODEL)[channel]
    env = channel_envelopes(_tone(fc, 0.1), FS, MODEL)
    steady = env[len(env) // 2 :].mean(axis=0)  # after the filters and the low-pass settled
    assert int(np.argmax(steady)) == channel
    assert steady[channel] == pytest.approx(0.1, rel=0.02)  # unit gain; pi * mean(half-wave) = A
    drive = level_drive(env[len(env) // 2 :, channel], MODEL).mean()
    assert drive == pytest.approx(20 * math.log10(0.1) + 60, abs=0.5)  # 40 dB above -60 dBFS


def test_a_tone_between_channels_peaks_in_a_neighbour():
    fc = centre_frequencies(MODEL)
    for f in (333.0, 1234.0, 5000.0):
        env = channel_envelopes(_tone(f, 0.05), FS, MODEL)
        peak = int(np.argmax(env[len(env) // 2 :].mean(axis=0)))
        below = int(np.searchsorted(fc, f)) - 1
        assert peak in (below, below + 1)


def test_lif_matches_the_closed_form_for_a_constant_drive():
    # v_k = g dt D (1 - a^k) / (1 - a) from v = 0; a spike at the first k with v_k >= 1, then
    # again every k* steps after the reset
    dt = MODEL.hop / FS
    a = math.exp(-dt / (MODEL.leak_tau_ms * 1e-3))
    for drive in (10.0, 25.0, 60.0):
        step = MODEL.gain * dt * drive
        k_star = next(k for k in range(1, 100_000) if step * (1 - a**k) / (1 - a) >= 1.0)
        spikes = lif_spikes(np.full((2000, 1), drive), dt, MODEL)[:, 0]
        expected = np.zeros(2000, dtype=bool)
        expected[k_star - 1 :: k_star] = True
        np.testing.assert_array_equal(spikes, expected)
    # too weak to ever reach threshold: g D tau < 1
    weak = 0.9 / (MODEL.gain * MODEL.leak_tau_ms * 1e-3)
    assert not lif_spikes(np.full((5000, 1), weak), dt, MODEL).any()


def test_events_of_a_tone_burst_sit_near_its_frequency_and_start_after_its_onset():
    fc = centre_frequencies(MODEL)
    audio = np.concatenate([np.zeros(int(0.1 * FS)), _tone(fc[30], 0.1, 0.3), np.zeros(int(0.1 * FS))])
    ev = cochlea_events(audio, FS, MODEL)
    assert ev.dtype == COCHLEA_DTYPE and np.all(ev["p"] == 1)
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() >= 100_000  # silence (log of 0) gives no drive
    counts = np.bincount(ev["x"], minlength=64)
    assert int(np.argmax(counts)) in (29, 30, 31)
    assert counts[:15].sum() == 0 and counts[50:].sum() == 0  # far channels stay silent at 40 dB
    louder = cochlea_events(audio * 10, FS, MODEL)
    assert len(louder) > len(ev)


def test_step_times_are_step_ends_in_microseconds():
    np.testing.assert_array_equal(step_times_us(3, FS, 11), np.floor(np.array([11, 22, 33]) * 1e6 / FS))


def test_model_rejects_bad_parameters():
    with pytest.raises(ValueError):
        CochleaModel(f_min_hz=8000, f_max_hz=100)
    with pytest.raises(ValueError, match="Nyquist"):
        filterbank_sos(CochleaModel(f_max_hz=10_800), FS)
    with pytest.raises(ValueError, match="1-D"):
        channel_envelopes(np.zeros((2, 10)), FS, MODEL)
