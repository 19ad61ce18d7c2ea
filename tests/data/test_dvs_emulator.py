"""The DVS pixel model against closed forms and a brute-force reference; saccade rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurohw.data.dvs_emulator import DVSPixelModel, background_events, emulate_dvs, pixel_thresholds
from neurohw.data.events import CAMERA_DTYPE
from neurohw.data.saccades import SaccadePath, render_saccades, tent_weights

EPS = 0.15


def _one_pixel(log_levels, times_us, theta_on, theta_off=None, refractory_us=0.0):
    """Events of a 1x1 sensor whose log intensity passes through ``log_levels`` at ``times_us``."""
    intensity = np.exp(np.asarray(log_levels, dtype=np.float64)) - EPS
    video = intensity.reshape(1, 1, -1)
    th = np.array([theta_on, theta_on if theta_off is None else theta_off], dtype=np.float64).reshape(2, 1, 1)
    model = DVSPixelModel(refractory_us=refractory_us, noise_rate_hz=0.0, eps=EPS)
    return emulate_dvs(video, np.asarray(times_us, dtype=np.float64), th, model, np.random.default_rng(0))


@pytest.mark.parametrize("delta,theta", [(1.0, 0.25 + 1e-3), (1.3, 0.21), (0.2, 0.25), (2.0, 0.3)])
def test_ramp_gives_floor_delta_over_theta_on_events_at_exact_times(delta, theta):
    # L rises linearly by delta over 100 ms: events when L crosses L0 + k theta, at t = k theta / slope
    T = 100_000.0
    ev = _one_pixel([0.0, delta], [0.0, T], theta)
    n = math.floor(delta / theta)
    assert len(ev) == n
    assert np.all(ev["p"] == 1) and np.all(ev["x"] == 0) and np.all(ev["y"] == 0)
    expected_t = np.floor(np.arange(1, n + 1) * theta / (delta / T))
    np.testing.assert_allclose(ev["t"], expected_t, atol=1)  # log intensity is float32: +-1 us


def test_falling_ramp_uses_the_off_threshold():
    # down by 1.0 with theta_off = 0.3 (theta_on = 0.1 must not matter): 3 OFF events
    ev = _one_pixel([0.5, -0.5], [0.0, 10_000.0], theta_on=0.1, theta_off=0.3)
    assert len(ev) == 3 and np.all(ev["p"] == 0)
    np.testing.assert_allclose(ev["t"], np.floor(np.arange(1, 4) * 0.3 / 1.0 * 10_000.0), atol=1)


def test_up_then_down_fires_from_the_moved_reference():
    # up 2.6 theta: 2 ON (reference ends at L0 + 2 theta); down to L0 - 0.25 theta: crossings at
    # L0 + theta and L0, i.e. 2 OFF events; then flat: nothing more
    th = 0.2
    top, bottom = 2.6 * th, -0.25 * th
    ev = _one_pixel([0.0, top, bottom, bottom], [0.0, 1000.0, 2000.0, 5000.0], th)
    assert list(ev["p"]) == [1, 1, 0, 0]
    t_on = np.array([1.0, 2.0]) * th / top * 1000.0
    t_off = 1000.0 + (top - np.array([1.0, 0.0]) * th) / ((top - bottom) / 1000.0)
    np.testing.assert_allclose(ev["t"], np.floor(np.concatenate([t_on, t_off])), atol=1)


@pytest.mark.parametrize("t_ref", [500.0, 1000.0, 3000.0])
def test_refractory_period_delays_events_by_closed_form(t_ref):
    # slope s, threshold th: with the pixel held in reset for t_ref after each event and starting
    # again from the level it sees then, event n is at n th / s + (n - 1) t_ref
    th, T, delta = 0.25, 100_000.0, 3.0
    s = delta / T
    ev = _one_pixel([0.0, delta], [0.0, T], th, refractory_us=t_ref)
    n = np.arange(1, 100)
    t = n * th / s + (n - 1) * t_ref
    t = t[t <= T]
    assert len(ev) == len(t)
    np.testing.assert_allclose(ev["t"], np.floor(t), atol=1)


def test_refractory_loses_the_change_it_hides():
    # 10 thresholds in 100 us: 10 events without refractory, 1 with 1 ms (and none later: the
    # reference is the level at the end of the reset)
    th = 0.2
    levels, times = [0.0, 10.05 * th, 10.05 * th], [0.0, 100.0, 20_000.0]
    assert len(_one_pixel(levels, times, th)) == 10
    ev = _one_pixel(levels, times, th, refractory_us=1000.0)
    assert len(ev) == 1 and abs(ev["t"][0] - math.floor(100.0 / 10.05)) <= 1


def _brute_force(logv, times, th_on, th_off, t_ref):
    """Reference: step every microsecond, fire when |L - R| >= theta (one pixel at a time)."""
    out = []
    n_h, n_w, _ = logv.shape
    grid = np.arange(times[0], times[-1] + 1)
    for y in range(n_h):
        for x in range(n_w):
            L = np.interp(grid, times, logv[y, x].astype(np.float64))
            ref, ready = L[0], grid[0]
            for t, level in zip(grid[1:], L[1:]):
                if t < ready:
                    ref = level
                    continue
                if level - ref >= th_on[y, x]:
                    out.append((x, y, t, 1))
                elif ref - level >= th_off[y, x]:
                    out.append((x, y, t, 0))
                else:
                    continue
                ref = ref + (th_on[y, x] if out[-1][3] else -th_off[y, x])
                if t_ref > 0:
                    ready = t + t_ref
                    ref = level  # held in reset from here: follows L
    return out


@pytest.mark.parametrize("t_ref", [0.0, 700.0])
def test_random_video_matches_a_microsecond_brute_force(t_ref):
    rng = np.random.default_rng(3)
    n_frames, h, w = 12, 3, 4
    times = np.floor(np.cumsum(np.concatenate([[0.0], rng.uniform(500, 2000, n_frames - 1)])))
    logv = np.cumsum(rng.normal(0, 0.4, (h, w, n_frames)), axis=2)
    logv = (logv - logv.min() + np.log(EPS) + 0.01).astype(np.float32)  # ln(I + eps) >= ln(eps)
    th = pixel_thresholds(h, w, DVSPixelModel(threshold=0.3, threshold_sigma=0.05), rng)
    model = DVSPixelModel(refractory_us=t_ref, noise_rate_hz=0.0, eps=EPS)
    ev = emulate_dvs(np.exp(logv.astype(np.float64)) - EPS, times, th, model, rng)
    ref = _brute_force(logv, times, th[0], th[1], t_ref)
    assert len(ev) == len(ref) > 20
    got = sorted(zip(ev["x"], ev["y"], ev["t"], ev["p"]))
    ref = sorted(ref)
    for (gx, gy, gt, gp), (rx, ry, rt, rp) in zip(got, ref):
        assert (gx, gy, gp) == (rx, ry, rp)
        assert abs(gt - rt) <= 2  # the reference fires at the first whole microsecond after the crossing


def test_thresholds_follow_their_distribution_and_clip():
    model = DVSPixelModel(threshold=0.25, threshold_sigma=0.03)
    th = pixel_thresholds(100, 100, model, np.random.default_rng(1))
    assert th.shape == (2, 100, 100)
    n = th.size
    assert abs(th.mean() - 0.25) < 4 * 0.03 / math.sqrt(n)
    assert abs(th.std() - 0.03) < 4 * 0.03 / math.sqrt(2 * n)
    wide = pixel_thresholds(50, 50, DVSPixelModel(threshold=0.1, threshold_sigma=0.1, threshold_min=0.05), np.random.default_rng(1))
    assert wide.min() == 0.05 and np.mean(wide == 0.05) == pytest.approx(0.3085, abs=0.03)  # P(N(0.1,0.1) < 0.05)


def test_background_activity_is_poisson_at_the_given_rate():
    rng = np.random.default_rng(5)
    rate, w, h, dur = 2.0, 34, 34, 300_000.0
    b, x, y, t, p = background_events(400, w, h, 0.0, dur, rate, rng)
    lam = rate * dur * 1e-6 * w * h  # events per recording
    counts = np.bincount(b, minlength=400)
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / 400)
    assert abs(counts.var() / lam - 1.0) < 0.2  # Poisson: variance = mean
    assert x.min() >= 0 and x.max() == w - 1 and y.max() == h - 1 and t.min() >= 0 and t.max() < dur
    assert abs(p.mean() - 0.5) < 4 * 0.5 / math.sqrt(len(p))


def test_static_scene_gives_only_noise_and_output_is_sorted():
    model = DVSPixelModel(noise_rate_hz=5.0, eps=EPS)
    rng = np.random.default_rng(0)
    video = np.full((3, 8, 8, 11), 0.5)
    th = pixel_thresholds(8, 8, model, rng)
    evs = emulate_dvs(video, np.linspace(0, 200_000, 11), th, model, rng)
    assert len(evs) == 3
    for ev in evs:
        assert ev.dtype == CAMERA_DTYPE and np.all(np.diff(ev["t"]) >= 0)
    total = sum(len(e) for e in evs)
    lam = 3 * 5.0 * 0.2 * 64
    assert abs(total - lam) < 4 * math.sqrt(lam)


def test_emulator_rejects_bad_inputs():
    model = DVSPixelModel()
    th = np.full((2, 2, 2), 0.25)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=">= 0"):
        emulate_dvs(-np.ones((2, 2, 3)), np.arange(3.0), th, model, rng)
    with pytest.raises(ValueError, match="strictly increasing"):
        emulate_dvs(np.ones((2, 2, 3)), np.array([0.0, 2.0, 1.0]), th, model, rng)
    with pytest.raises(ValueError, match="thresholds must have shape"):
        emulate_dvs(np.ones((2, 2, 3)), np.arange(3.0), np.ones((2, 3, 3)), model, rng)
    with pytest.raises(ValueError):
        DVSPixelModel(threshold=0.0)


def test_saccade_path_visits_its_vertices_with_zero_speed_there():
    path = SaccadePath()
    t = np.array([0.0, 100_000.0, 200_000.0, 300_000.0, 50_000.0])
    ox, oy = path.offsets(t)
    np.testing.assert_allclose(np.c_[ox, oy][:4], [(1, 1), (3, 5), (5, 1), (1, 1)])
    np.testing.assert_allclose((ox[4], oy[4]), (2.0, 3.0))  # smooth step is 1/2 at mid-leg
    ox1, _ = path.offsets(np.array([100_000.0 - 1.0, 100_000.0]))
    assert abs(ox1[1] - ox1[0]) < 1e-8  # zero velocity at a corner


def test_tent_weights_upsample_and_translate_exactly():
    # integer offset and scale 1: a pure shift
    w = tent_weights(6, 4, 4.0, np.array([1.0]))[0]
    expected = np.zeros((6, 4))
    expected[1:5] = np.eye(4)
    np.testing.assert_allclose(w, expected)
    # rows sum to 1 inside the image (partition of unity), so a constant image stays constant
    w = tent_weights(34, 10, 28.0, np.array([3.0]))[0]
    inner = w[3 + 2 : 3 + 26]
    np.testing.assert_allclose(inner.sum(axis=1), 1.0)
    video = render_saccades(np.ones((1, 10, 10)), 34, 28, SaccadePath(), np.array([0.0]))
    assert video.shape == (1, 34, 34, 1)
    np.testing.assert_allclose(video[0, 1 + 2 : 1 + 26, 1 + 2 : 1 + 26, 0], 1.0, rtol=1e-6)
    # beyond the image's last source pixel (tent support: 1 source pixel = 2.8 canvas pixels)
    assert video[0, 33, :, 0].max() == 0 and video[0, :, 33, 0].max() == 0
