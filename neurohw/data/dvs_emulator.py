"""An emulated DVS pixel array: from an intensity video to x,y,t,p events.

Pixel model (Lichtsteiner, Posch & Delbruck, "A 128x128 120 dB 15 us latency asynchronous
temporal contrast vision sensor", IEEE JSSC 43:566, 2008; frame interpolation as in v2e, Hu,
Liu & Delbruck, CVPR workshops 2021):

- each pixel sees the log intensity ``L(t) = ln(I(t) + eps)`` (natural log; ``eps`` is the dark
  level in the video's intensity units);
- it remembers a reference level ``R``; an ON event fires when ``L - R`` reaches ``+theta_on``,
  an OFF event when it reaches ``-theta_off``; then ``R`` moves to the level at the event;
- after an event the pixel is held in reset for the refractory period ``t_ref``: ``R`` follows
  ``L`` during that time, so the change seen while refractory is lost, and the pixel starts again
  from ``R = L(t_event + t_ref)``;
- thresholds differ from pixel to pixel (mismatch, ``N(theta, sigma)``), fixed for a sensor;
- background activity: independent Poisson events at ``noise_rate_hz`` per pixel, either
  polarity with probability 1/2, superposed on the signal events.

Between two frames the log intensity is taken as linear in time, so an event's time is the exact
solution of ``L(t) = R +- theta`` (not a frame time); times are floored to microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from neurohw.data.events import CAMERA_DTYPE


@dataclass(frozen=True)
class DVSPixelModel:
    """Parameters of the emulated pixel array (defaults: the digits-dvs sensor)."""

    #: mean contrast threshold, natural-log units (ON and OFF alike); 0.25 gave N-MNIST-like
    #: event counts in the embedded-data prototype; real DVS: 0.1-0.5
    threshold: float = 0.25
    #: pixel-to-pixel threshold mismatch, std in the same units (prototype: +-0.03)
    threshold_sigma: float = 0.03
    #: thresholds are clipped below at this value so that no pixel fires on rounding noise
    threshold_min: float = 0.05
    #: refractory (reset) period after each event, microseconds (prototype: 1 ms)
    refractory_us: float = 1000.0
    #: background activity per pixel, events per second (prototype: ~0.15 Hz)
    noise_rate_hz: float = 0.15
    #: dark level added to the intensity before the log, in intensity units (I in [0, 1]); it
    #: sets the log contrast of ink on black, ln(1.15 / 0.15) = 2.0 = 8 thresholds. 0.15 gives
    #: digits-dvs ~3,500 events per sample (p5-p95 3.0k-4.1k), inside real N-MNIST's 2.3k-6.1k
    eps: float = 0.15

    def __post_init__(self):
        if not self.threshold > 0 or not self.threshold_min > 0:
            raise ValueError(f"DVS thresholds must be > 0, got threshold={self.threshold}, threshold_min={self.threshold_min}")
        if self.threshold_sigma < 0 or self.refractory_us < 0 or self.noise_rate_hz < 0 or not self.eps > 0:
            raise ValueError("DVS threshold_sigma, refractory_us and noise_rate_hz must be >= 0 and eps > 0")


def pixel_thresholds(height: int, width: int, model: DVSPixelModel, rng: np.random.Generator) -> np.ndarray:
    """The fixed ON and OFF thresholds of a sensor, shape ``(2, H, W)``: ``[theta_on, theta_off]``.

    Each is ``max(N(threshold, threshold_sigma), threshold_min)``, drawn independently per pixel.
    """
    theta = rng.normal(model.threshold, model.threshold_sigma, size=(2, height, width))
    return np.maximum(theta, model.threshold_min)


def log_intensity(intensity: np.ndarray, eps: float) -> np.ndarray:
    """``ln(I + eps)``, the quantity a DVS pixel's photoreceptor reports (float32)."""
    return np.log(np.asarray(intensity, dtype=np.float32) + np.float32(eps))


@numba.njit(cache=True)
def _pixel_events(logv, times, th_on, th_off, t_ref, out_b, out_x, out_y, out_t, out_p):  # pragma: no cover - jitted
    """Events of every pixel of a ``(B, H, W, T)`` log video; returns how many, or -1 if full.

    Written sample by sample, pixel by pixel, in time order within a pixel (the caller sorts).
    """
    n_samples, height, width, n_frames = logv.shape
    cap = out_t.shape[0]
    n = 0
    for b in range(n_samples):
        for y in range(height):
            for x in range(width):
                on = th_on[y, x]
                off = th_off[y, x]
                ref = np.float64(logv[b, y, x, 0])
                ready = times[0]  # end of the current refractory period
                for k in range(1, n_frames):
                    t0 = times[k - 1]
                    t1 = times[k]
                    l0 = np.float64(logv[b, y, x, k - 1])
                    l1 = np.float64(logv[b, y, x, k])
                    slope = (l1 - l0) / (t1 - t0)
                    if ready > t0:  # held in reset: the reference follows the log intensity
                        if ready >= t1:
                            ref = l1
                            continue
                        ref = l0 + slope * (ready - t0)
                    if slope == 0.0:
                        continue
                    if slope > 0.0:
                        sign = 1
                        theta = on
                    else:
                        sign = -1
                        theta = -off
                    while True:
                        target = ref + theta
                        if (sign == 1 and target > l1) or (sign == -1 and target < l1):
                            break
                        te = t0 + (target - l0) / slope
                        if n >= cap:
                            return -1
                        out_b[n] = b
                        out_x[n] = x
                        out_y[n] = y
                        out_t[n] = np.int64(np.floor(te))
                        out_p[n] = 1 if sign == 1 else 0
                        n += 1
                        if t_ref > 0.0:
                            ready = te + t_ref
                            if ready >= t1:
                                ref = l1
                                break
                            ref = l0 + slope * (ready - t0)
                        else:
                            ref = target
    return n


def _signal_events(logv: np.ndarray, times_us: np.ndarray, thresholds: np.ndarray, refractory_us: float):
    """Columns ``(b, x, y, t, p)`` of the signal events of a ``(B, H, W, T)`` log video."""
    logv = np.ascontiguousarray(logv, dtype=np.float32)
    times = np.ascontiguousarray(times_us, dtype=np.float64)
    if logv.ndim != 4 or logv.shape[-1] != len(times):
        raise ValueError(f"log video must be (B, H, W, T) with T = len(times) = {len(times)}, got {logv.shape}")
    if len(times) < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("frame times must be at least two and strictly increasing")
    th = np.ascontiguousarray(thresholds, dtype=np.float64)
    if th.shape != (2,) + logv.shape[1:3]:
        raise ValueError(f"thresholds must have shape (2, H, W) = {(2,) + logv.shape[1:3]}, got {th.shape}")
    cap = max(1024, logv.shape[0] * logv.shape[1] * logv.shape[2] * 4)
    while True:
        cols = (np.empty(cap, np.int32), np.empty(cap, np.int16), np.empty(cap, np.int16), np.empty(cap, np.int64), np.empty(cap, np.int8))
        n = _pixel_events(logv, times, th[0], th[1], float(refractory_us), *cols)
        if n >= 0:
            return tuple(c[:n] for c in cols)
        cap *= 4


def background_events(n_samples: int, width: int, height: int, t_start_us: float, t_stop_us: float, rate_hz: float, rng: np.random.Generator):
    """Columns ``(b, x, y, t, p)`` of Poisson background activity for ``n_samples`` recordings.

    Per pixel and recording the count is Poisson(``rate_hz * duration``); times are uniform in
    ``[t_start, t_stop)``, pixels uniform, polarity 0 or 1 with probability 1/2.
    """
    duration_s = (t_stop_us - t_start_us) * 1e-6
    counts = rng.poisson(rate_hz * duration_s * width * height, size=n_samples)
    total = int(counts.sum())
    b = np.repeat(np.arange(n_samples, dtype=np.int32), counts)
    x = rng.integers(0, width, size=total).astype(np.int16)
    y = rng.integers(0, height, size=total).astype(np.int16)
    t = np.floor(rng.uniform(t_start_us, t_stop_us, size=total)).astype(np.int64)
    p = rng.integers(0, 2, size=total).astype(np.int8)
    return b, x, y, t, p


def emulate_packed(
    logv: np.ndarray,
    times_us: np.ndarray,
    thresholds: np.ndarray,
    model: DVSPixelModel,
    rng: np.random.Generator,
):
    """Signal plus background events of a batch, packed: ``(counts[B], x, y, t, p)``.

    Events are grouped by sample (sample 0 first) and sorted by time within a sample (ties keep
    the order signal-then-noise, pixel by pixel), the layout the embedded-data cache stores.
    """
    n_samples, height, width, _ = logv.shape
    sig = _signal_events(logv, times_us, thresholds, model.refractory_us)
    noise = background_events(n_samples, width, height, float(times_us[0]), float(times_us[-1]), model.noise_rate_hz, rng)
    b, x, y, t, p = (np.concatenate([s, q]) for s, q in zip(sig, noise))
    order = np.lexsort((t, b))  # stable: by sample, then by time
    counts = np.bincount(b, minlength=n_samples)
    return counts, x[order], y[order], t[order], p[order]


def emulate_dvs(
    intensity: np.ndarray,
    times_us: np.ndarray,
    thresholds: np.ndarray,
    model: DVSPixelModel,
    rng: np.random.Generator,
) -> list[np.ndarray] | np.ndarray:
    """Events a DVS would report for each intensity video of a batch.

    ``intensity``: ``(B, H, W, T)`` (or ``(H, W, T)`` for one video), linear intensity >= 0;
    ``times_us``: the ``T`` frame times in microseconds; ``thresholds``: ``(2, H, W)`` from
    :func:`pixel_thresholds`; ``rng`` draws the background activity. Returns one structured
    array (``CAMERA_DTYPE``, time-sorted) per video, or one array for a single ``(H, W, T)``
    video; ``p`` is 1 for ON and 0 for OFF.
    """
    intensity = np.asarray(intensity)
    single = intensity.ndim == 3
    if single:
        intensity = intensity[None]
    if np.any(intensity < 0):
        raise ValueError("intensity must be >= 0")
    counts, x, y, t, p = emulate_packed(log_intensity(intensity, model.eps), times_us, thresholds, model, rng)
    out = []
    start = 0
    for c in counts:
        ev = np.empty(c, dtype=CAMERA_DTYPE)
        ev["x"], ev["y"], ev["t"], ev["p"] = x[start : start + c], y[start : start + c], t[start : start + c], p[start : start + c]
        out.append(ev)
        start += c
    return out[0] if single else out
