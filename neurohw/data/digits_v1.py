"""digits-v1: a simulated V1 recording of the digit images that digits-dvs shows, instance-paired.

Sample ``i`` of digits-v1 is the response to the very image that sample ``i`` of digits-dvs
shows (the same scikit-learn digit, :func:`neurohw.data.digits_dvs.source_images`, same label,
same train/test split for the same seed): the two datasets are paired by instance, not only by
class, which is what a brain-machine-interface setting records (each neural response beside the
image that caused it).

The model, a textbook linear-nonlinear-Poisson (LNP) population of V1 simple cells:

1. Stimulus. The 10x10 image (8x8 digit with a 1-pixel zero border, grey / 16 in [0, 1]) is
   upsampled to 28x28 pixels by the same linear ("tent") interpolation digits-dvs uses
   (:func:`neurohw.data.saccades.tent_weights`), flashed at ``t = 0`` for ``STIM_US``.
2. Receptive fields. ``GRID x GRID`` retinotopic positions x ``len(ORIENTATIONS)`` orientations x
   2 phases (even, odd) x 2 signs (ON / OFF half of the rectified response) = 400 units. Each is
   a 2-D Gabor function, the fit of simple-cell receptive fields by Jones & Palmer (J.
   Neurophysiol. 58:1233-1258, 1987; Daugman, JOSA A 2:1160-1169, 1985)::

       G(x, y) = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) cos(2 pi x' / lambda + phi)
       x' = (x - x0) cos(theta) + (y - y0) sin(theta),  y' = -(x - x0) sin(theta) + (y - y0) cos(theta)

   made zero-mean (a uniform field drives no unit) and scaled to unit L2 norm. Per unit, drawn
   once per seed (the "electrode array" is fixed, as one recording is): a centre jitter of
   +-``POS_JITTER_PX``, an orientation jitter of N(0, ``THETA_JITTER_RAD``), a wavelength
   ``lambda`` ~ U(``LAMBDA_PX``), a gain ~ lognormal(0, ``GAIN_SIGMA``), a spontaneous rate ~
   U(``SPONT_HZ``) and a response latency ~ U(``LATENCY_US``) (V1 onset latencies of 30-80 ms,
   Maunsell & Gibson, J. Neurophysiol. 68:1332-1344, 1992).
3. Nonlinearity. The drive ``d = sign * <G, I>`` (I in [0, 1], pixels) is half-wave rectified
   and passed through a Naka-Rushton contrast response (Albrecht & Hamilton, J. Neurophysiol.
   48:217-237, 1982): ``r = spont + gain * R_MAX_HZ * d+^n / (d+^n + C50^n)``, n = ``NR_EXP``.
4. Spikes. An inhomogeneous Poisson process per unit and trial: rate ``spont`` over the whole
   ``DURATION_US`` plus ``r - spont`` from ``latency + jitter`` to ``latency + jitter + STIM_US``
   (trial jitter N(0, ``TRIAL_JITTER_US``)), i.e. spike counts Poisson(rate x time) with times
   uniform in their interval (Dayan & Abbott, Theoretical Neuroscience, 2001, ch. 1.4).

Events are ``t, x, p`` (``COCHLEA_DTYPE``: ``x`` is the unit, ``p`` = 1; t in microseconds,
sorted), sensor size ``(400, 1, 1)``, like digits-cochlea's channels. Every draw comes from a
numpy Generator seeded with ``[seed, stream, ...]``: the same seed gives the same events.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neurohw.data.digits_dvs import DIGIT_SIZE, source_images
from neurohw.data.embedded import PackedEvents, pack_channel_events
from neurohw.data.saccades import tent_weights

#: retinotopic grid: GRID x GRID receptive-field centres over the 28x28 image
GRID = 5
#: preferred orientations, radians
ORIENTATIONS = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
#: phases of the carrier: even (cosine) and odd (sine) simple cells
PHASES = (0.0, -np.pi / 2)
#: the units: GRID^2 positions x orientations x phases x 2 signs (ON / OFF)
N_UNITS = GRID * GRID * len(ORIENTATIONS) * len(PHASES) * 2
#: tonic order (channels, 1, 1)
SENSOR_SIZE = (N_UNITS, 1, 1)
#: Gabor carrier wavelength range, pixels of the 28x28 image (a digit stroke is ~3-4 px wide)
LAMBDA_PX = (7.0, 10.0)
#: Gaussian envelope width sigma = SIGMA_PER_LAMBDA * lambda (Jones & Palmer: ~0.4-0.6 cycles)
SIGMA_PER_LAMBDA = 0.5
#: envelope aspect ratio gamma (elongated along the bars; Jones & Palmer report ~0.5-1)
GAMMA = 0.7
#: receptive-field centre jitter (uniform +-), pixels; orientation jitter (normal sd), radians
POS_JITTER_PX = 1.0
THETA_JITTER_RAD = 0.1
#: Naka-Rushton contrast response: maximum driven rate (Hz), semi-saturation drive, exponent
R_MAX_HZ = 80.0
C50 = 1.5
NR_EXP = 2.0
#: per-unit gain spread (lognormal sigma) and spontaneous rate range (Hz)
GAIN_SIGMA = 0.3
SPONT_HZ = (1.0, 5.0)
#: stimulus duration, recording duration, onset latency range and trial jitter, microseconds
STIM_US = 200_000
DURATION_US = 300_000
LATENCY_US = (40_000, 70_000)
TRIAL_JITTER_US = 5_000.0
#: random streams derived from the seed (numpy SeedSequence entropy [seed, stream, ...])
_UNIT_STREAM, _SPIKE_STREAM = 0, 1


def upsampled_images(samples_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The digits-dvs source images upsampled to ``(N, 28, 28)`` (intensity in [0, 1]) and labels."""
    images, labels = source_images(samples_per_class)
    w = tent_weights(DIGIT_SIZE, images.shape[1], DIGIT_SIZE, np.zeros(1))[0]  # (28, 10)
    return np.einsum("ij,njk,lk->nil", w, images.astype(np.float64), w), labels


def unit_bank(seed: int) -> dict[str, np.ndarray]:
    """The recorded population for ``seed``: filters ``(N_UNITS, 28*28)`` (zero mean, unit norm),
    sign (+1 ON / -1 OFF), gain, spontaneous rate (Hz), latency (us), and each unit's nominal
    position index, orientation and phase."""
    rng = np.random.default_rng([seed, _UNIT_STREAM])
    step = DIGIT_SIZE / GRID
    rows = [(gy, gx, o, ph, s) for gy in range(GRID) for gx in range(GRID) for o in range(len(ORIENTATIONS))
            for ph in range(len(PHASES)) for s in (1.0, -1.0)]
    n = len(rows)
    gy, gx, o, ph, sign = (np.array(c) for c in zip(*rows))
    x0 = (gx + 0.5) * step - 0.5 + rng.uniform(-POS_JITTER_PX, POS_JITTER_PX, n)
    y0 = (gy + 0.5) * step - 0.5 + rng.uniform(-POS_JITTER_PX, POS_JITTER_PX, n)
    theta = np.asarray(ORIENTATIONS)[o] + rng.normal(0.0, THETA_JITTER_RAD, n)
    lam = rng.uniform(*LAMBDA_PX, n)
    phase = np.asarray(PHASES)[ph]
    gain = rng.lognormal(0.0, GAIN_SIGMA, n)
    spont = rng.uniform(*SPONT_HZ, n)
    latency = rng.uniform(*LATENCY_US, n)
    yy, xx = np.mgrid[0:DIGIT_SIZE, 0:DIGIT_SIZE].astype(np.float64)
    dx, dy = xx[None] - x0[:, None, None], yy[None] - y0[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    xr, yr = dx * c + dy * s, -dx * s + dy * c
    sigma = (SIGMA_PER_LAMBDA * lam)[:, None, None]
    g = np.exp(-(xr**2 + GAMMA**2 * yr**2) / (2 * sigma**2)) * np.cos(2 * np.pi * xr / lam[:, None, None] + phase[:, None, None])
    g = g.reshape(n, -1)
    g -= g.mean(1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return {"filters": g, "sign": sign, "gain": gain, "spont": spont, "latency": latency,
            "position": gy * GRID + gx, "orientation": o, "phase": ph}


def firing_rates(images: np.ndarray, bank: dict[str, np.ndarray]) -> np.ndarray:
    """Driven rates ``(N, N_UNITS)`` in Hz during the stimulus (spontaneous rate included)."""
    drive = bank["sign"] * (images.reshape(len(images), -1) @ bank["filters"].T)
    d = np.maximum(drive, 0.0) ** NR_EXP
    return bank["spont"] + bank["gain"] * R_MAX_HZ * d / (d + C50**NR_EXP)


def spike_train(rates: np.ndarray, bank: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One trial's spikes ``(t_us, unit)``, sorted by time, for driven ``rates`` (N_UNITS,) Hz."""
    spont, n = bank["spont"], len(rates)
    onset = np.clip(bank["latency"] + rng.normal(0.0, TRIAL_JITTER_US, n), 0.0, DURATION_US - STIM_US)
    n_spont = rng.poisson(spont * DURATION_US * 1e-6)
    n_driven = rng.poisson(np.maximum(rates - spont, 0.0) * STIM_US * 1e-6)
    unit = np.concatenate([np.repeat(np.arange(n), n_spont), np.repeat(np.arange(n), n_driven)])
    t0 = np.concatenate([np.zeros(int(n_spont.sum())), np.repeat(onset, n_driven)])
    span = np.concatenate([np.full(int(n_spont.sum()), float(DURATION_US)), np.full(int(n_driven.sum()), float(STIM_US))])
    t = np.minimum(np.floor(t0 + rng.random(len(t0)) * span), DURATION_US - 1).astype(np.int64)
    order = np.lexsort((unit, t))
    return t[order], unit[order]


def generate(
    seed: int,
    samples_per_class: int | None = None,
    on_progress: Callable[..., None] | None = None,
) -> PackedEvents:
    """Generate the digits-v1 events: one trial per digits-dvs image, in the same order."""
    images, labels = upsampled_images(samples_per_class)
    bank = unit_bank(seed)
    rates = firing_rates(images, bank)
    trials = (spike_train(rates[i], bank, np.random.default_rng([seed, _SPIKE_STREAM, i])) for i in range(len(images)))
    meta = {
        "source": "sklearn.datasets.load_digits (the digits-dvs images, same order)",
        "model": f"LNP V1 simple cells: {N_UNITS} Gabor units, grid {GRID}, Naka-Rushton rmax {R_MAX_HZ} Hz c50 {C50}, "
                 f"Poisson spikes, stim {STIM_US} us",
        "pairs_with": "digits-dvs",
    }
    return pack_channel_events(labels, trials, np.uint16, meta, on_progress, every=200, stage="V1 spikes")
