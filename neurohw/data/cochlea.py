"""A silicon-cochlea model: from a waveform to t,x,p spike events, one channel per frequency band.

Stages, per channel ``c`` (after the CochleaAMS sensors that recorded N-TIDIGITS: Liu et al.,
"Asynchronous binaural spatial audition sensor with 2 x 64 x 4 channel output", IEEE TBioCAS
8:453, 2014; Anumula et al., Frontiers in Neuroscience 12:23, 2018):

1. band-pass filter: a Butterworth band-pass (``order`` poles per band edge, second-order
   sections) centred at ``fc_c``, the centre frequencies spaced geometrically from ``f_min`` to
   ``f_max``; its -3 dB bandwidth is one equivalent rectangular bandwidth of the human ear,
   ``ERB(f) = 24.7 (4.37 f / 1000 + 1)`` Hz (Glasberg & Moore, Hearing Research 47:103, 1990),
   with the edges placed so that ``sqrt(f_lo f_hi) = fc``;
2. half-wave rectification and a first-order low-pass (time constant ``envelope_tau_ms``),
   scaled by pi so that a steady sine of amplitude A gives an envelope of A (the mean of a
   half-wave rectified sine is A / pi);
3. level in dB above a floor: ``drive = max(0, 20 log10(env) - floor_dbfs)`` (dBFS: a full-scale
   sine, amplitude 1, is 0 dB);
4. a leaky integrate-and-fire encoder, stepped every ``hop`` samples (``dt = hop / fs``):
   ``v <- v exp(-dt / tau) + gain dt drive``; a spike when ``v >= 1``, then ``v = 0``.

Events are cochlea events (``COCHLEA_DTYPE``): ``t`` the end of the step in microseconds, ``x``
the channel (0 = lowest frequency), ``p = 1`` (tonic's N-TIDIGITS reader sets every ``p`` to 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from neurohw.data.events import COCHLEA_DTYPE


@dataclass(frozen=True)
class CochleaModel:
    """Parameters of the cochlea model (defaults: digits-cochlea's, tuned on the embedded-data prototype)."""

    #: number of frequency channels
    n_channels: int = 64
    #: lowest and highest centre frequency, Hz
    f_min_hz: float = 100.0
    f_max_hz: float = 8000.0
    #: Butterworth order per band edge (a band-pass of order 2 * order)
    order: int = 2
    #: time constant of the envelope low-pass after rectification, milliseconds (corner
    #: 1 / (2 pi tau) = 32 Hz: keeps syllable-rate changes, damps the ripple of a rectified
    #: 100 Hz band to 30 %; the 50 ms LIF leak averages what is left)
    envelope_tau_ms: float = 5.0
    #: level that gives zero drive, dB relative to a full-scale sine (prototype: -60 dBFS)
    floor_dbfs: float = -60.0
    #: leak time constant of the LIF encoder, milliseconds (prototype: 50 ms)
    leak_tau_ms: float = 50.0
    #: LIF input gain, (threshold units) per (dB above floor) per second; with the 50 ms leak a
    #: channel fires once its drive exceeds 1 / (gain tau) = 3.3 dB. 6.0 gives digits-cochlea
    #: ~2,000 events per utterance (p5-p95 0.9k-3.8k), the prototype's level
    gain: float = 6.0
    #: LIF step, in audio samples (11 samples at 22,050 Hz = 0.499 ms)
    hop: int = 11

    def __post_init__(self):
        if self.n_channels < 1 or self.order < 1 or self.hop < 1:
            raise ValueError("cochlea n_channels, order and hop must be >= 1")
        if not 0 < self.f_min_hz < self.f_max_hz:
            raise ValueError(f"cochlea needs 0 < f_min_hz < f_max_hz, got {self.f_min_hz}, {self.f_max_hz}")
        if not (self.envelope_tau_ms > 0 and self.leak_tau_ms > 0 and self.gain > 0):
            raise ValueError("cochlea envelope_tau_ms, leak_tau_ms and gain must be > 0")


def erb_hz(f_hz: np.ndarray | float) -> np.ndarray:
    """Equivalent rectangular bandwidth of the human auditory filter at ``f_hz`` (Glasberg & Moore 1990)."""
    return 24.7 * (4.37 * np.asarray(f_hz, dtype=np.float64) / 1000.0 + 1.0)


def centre_frequencies(model: CochleaModel) -> np.ndarray:
    """The channels' centre frequencies, Hz: ``f_min (f_max / f_min)^(c / (n - 1))``."""
    if model.n_channels == 1:
        return np.array([np.sqrt(model.f_min_hz * model.f_max_hz)])
    return model.f_min_hz * (model.f_max_hz / model.f_min_hz) ** (np.arange(model.n_channels) / (model.n_channels - 1))


def band_edges(model: CochleaModel) -> tuple[np.ndarray, np.ndarray]:
    """The -3 dB edges ``(f_lo, f_hi)`` of each channel: ``f_hi - f_lo = ERB(fc)``, ``f_lo f_hi = fc^2``."""
    fc = centre_frequencies(model)
    half = erb_hz(fc) / 2.0
    f_lo = np.sqrt(half**2 + fc**2) - half
    return f_lo, f_lo + 2.0 * half


def filterbank_sos(model: CochleaModel, fs: float) -> np.ndarray:
    """Second-order sections ``(C, order, 6)`` of every channel's band-pass (scipy's layout)."""
    from scipy.signal import butter

    f_lo, f_hi = band_edges(model)
    if f_hi[-1] >= fs / 2:
        raise ValueError(f"the top channel reaches {f_hi[-1]:.0f} Hz, above the Nyquist frequency {fs / 2:.0f} Hz")
    return np.stack([butter(model.order, [lo, hi], btype="bandpass", fs=fs, output="sos") for lo, hi in zip(f_lo, f_hi)])


@numba.njit(cache=True)
def _envelopes(x, sos, alpha, hop, out):  # pragma: no cover - jitted
    """Band-pass (transposed direct form II), half-wave rectify, low-pass; every ``hop``-th
    sample of the envelope of each channel goes to ``out[(len(x) // hop), C]``."""
    n_ch, n_sec, _ = sos.shape
    z1 = np.zeros((n_sec, n_ch))
    z2 = np.zeros((n_sec, n_ch))
    b0 = np.empty((n_sec, n_ch))
    b1 = np.empty((n_sec, n_ch))
    b2 = np.empty((n_sec, n_ch))
    a1 = np.empty((n_sec, n_ch))
    a2 = np.empty((n_sec, n_ch))
    for c in range(n_ch):
        for s in range(n_sec):
            b0[s, c] = sos[c, s, 0]
            b1[s, c] = sos[c, s, 1]
            b2[s, c] = sos[c, s, 2]
            a1[s, c] = sos[c, s, 4] / sos[c, s, 3]
            a2[s, c] = sos[c, s, 5] / sos[c, s, 3]
    env = np.zeros(n_ch)
    y = np.empty(n_ch)
    k = 0
    for n in range(out.shape[0] * hop):
        for c in range(n_ch):
            y[c] = x[n]
        for s in range(n_sec):
            for c in range(n_ch):
                xin = y[c]
                yo = b0[s, c] * xin + z1[s, c]
                z1[s, c] = b1[s, c] * xin - a1[s, c] * yo + z2[s, c]
                z2[s, c] = b2[s, c] * xin - a2[s, c] * yo
                y[c] = yo
        for c in range(n_ch):
            r = y[c] if y[c] > 0.0 else 0.0
            env[c] += alpha * (np.pi * r - env[c])
        if (n + 1) % hop == 0:
            for c in range(n_ch):
                out[k, c] = env[c]
            k += 1


@numba.njit(cache=True)
def _lif(drive, decay, step_gain, spikes):  # pragma: no cover - jitted
    """LIF over ``drive[(T, C)]``: ``v = v decay + step_gain drive``; spike at ``v >= 1``, reset to 0."""
    n_steps, n_ch = drive.shape
    v = np.zeros(n_ch)
    for k in range(n_steps):
        for c in range(n_ch):
            v[c] = v[c] * decay + step_gain * drive[k, c]
            if v[c] >= 1.0:
                spikes[k, c] = True
                v[c] = 0.0


def channel_envelopes(audio: np.ndarray, fs: float, model: CochleaModel, sos: np.ndarray | None = None) -> np.ndarray:
    """The rectified, low-passed output of each band, ``(len(audio) // hop, C)``, one row per LIF step."""
    audio = np.ascontiguousarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D, got shape {audio.shape}")
    sos = filterbank_sos(model, fs) if sos is None else sos
    alpha = 1.0 - np.exp(-1.0 / (fs * model.envelope_tau_ms * 1e-3))  # first-order low-pass, exact for a step
    out = np.zeros((len(audio) // model.hop, model.n_channels))
    _envelopes(audio, np.ascontiguousarray(sos, dtype=np.float64), alpha, model.hop, out)
    return out


def level_drive(envelope: np.ndarray, model: CochleaModel) -> np.ndarray:
    """dB above the floor, clipped at 0: ``max(0, 20 log10(env) - floor_dbfs)``."""
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(envelope)
    return np.maximum(db - model.floor_dbfs, 0.0)


def lif_spikes(drive: np.ndarray, dt_s: float, model: CochleaModel) -> np.ndarray:
    """Boolean spikes ``(T, C)`` of one LIF encoder per channel driven by ``drive`` (dB above floor)."""
    drive = np.ascontiguousarray(drive, dtype=np.float64)
    spikes = np.zeros(drive.shape, dtype=np.bool_)
    _lif(drive, np.exp(-dt_s / (model.leak_tau_ms * 1e-3)), model.gain * dt_s, spikes)
    return spikes


def step_times_us(n_steps: int, fs: float, hop: int) -> np.ndarray:
    """End time of each LIF step, microseconds (floored): ``(k + 1) hop / fs``."""
    return np.floor((np.arange(n_steps) + 1) * hop * 1e6 / fs).astype(np.int64)


def cochlea_events(audio: np.ndarray, fs: float, model: CochleaModel = CochleaModel(), sos: np.ndarray | None = None) -> np.ndarray:
    """The cochlea events (``COCHLEA_DTYPE``, sorted by time, then channel) of one waveform.

    ``audio``: samples at ``fs`` Hz in full-scale units (a sine of amplitude 1 is 0 dBFS).
    Pass ``sos`` from :func:`filterbank_sos` to reuse the filter design over many calls.
    """
    env = channel_envelopes(audio, fs, model, sos)
    spikes = lif_spikes(level_drive(env, model), model.hop / fs, model)
    steps, channels = np.nonzero(spikes)
    ev = np.empty(len(steps), dtype=COCHLEA_DTYPE)
    ev["t"] = step_times_us(spikes.shape[0], fs, model.hop)[steps]
    ev["x"] = channels
    ev["p"] = 1
    return ev
