"""Binning: events -> (T, C) rasters, checked against a brute-force loop, tonic's ToFrame and hand cases."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pydantic
import pytest
import tonic
from tonic.transforms import CenterCrop, ToFrame

from neurohw.data.binning import Binning, SparseRaster, n_channels, to_raster, to_sparse, to_sparse_raster
from neurohw.data.events import CAMERA_DTYPE, COCHLEA_DTYPE, camera_events, cochlea_events
from neurohw.errors import ConfigError

CAMERA = (34, 34, 2)
COCHLEA = (64, 1, 1)


def random_camera(rng, n=400, sensor=CAMERA, t_max=300_000):
    t = np.sort(rng.integers(0, t_max, n))
    return camera_events(rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n), t, rng.integers(0, 2, n))


def random_cochlea(rng, n=300, channels=64, t_max=900_000):
    return cochlea_events(np.sort(rng.integers(0, t_max, n)), rng.integers(0, channels, n), 1)


def brute_force(events, sensor, b: Binning) -> np.ndarray:
    """The module doc's rules, one event at a time, with exact fractions for the bin edges."""
    W, H, P = sensor
    camera = "y" in events.dtype.names
    h, w = (b.crop if b.crop else (H, W)) if camera else (1, W)
    y0, x0 = (H - h) // 2, (W - w) // 2
    f = b.downsample
    w_out = (w + f - 1) // f
    h_out = (h + f - 1) // f
    sets = 2 if (P == 2 and b.polarity == "both") else 1
    C = sets * h_out * w_out
    t = [int(v) for v in events["t"]]
    t0 = min(t) if t else 0
    if b.n_bins is not None:
        T = b.n_bins
        span = (max(t) - t0) if t else 0
    else:
        T = ((max(t) - t0) // b.bin_width_us + 1) if t else 0
        if b.max_bins is not None:
            T = b.max_bins
    counts = {}
    for ev in events:
        x, p, te = int(ev["x"]), int(ev["p"]), int(ev["t"])
        y = int(ev["y"]) if camera else 0
        if P == 2 and b.polarity in (0, 1) and p != b.polarity:
            continue
        if not (x0 <= x < x0 + w and y0 <= y < y0 + h):
            continue
        xs, ys = (x - x0) // f, (y - y0) // f
        pi = p if sets == 2 else 0
        c = (pi * h_out + ys) * w_out + xs
        if b.n_bins is not None:
            if span == 0:
                k = 0
            else:  # the k with t0 + k*D/N <= t < t0 + (k+1)*D/N, last bin closed
                k = next(k for k in range(T) if te < t0 + Fraction((k + 1) * span, T) or k == T - 1)
        else:
            k = (te - t0) // b.bin_width_us
            if k >= T:
                continue
        counts[(k, c)] = counts.get((k, c), 0) + 1
    out = np.zeros((T, C), dtype=np.uint8)
    for (k, c), n in counts.items():
        out[k, c] = 1 if b.mode == "binary" else min(n, 255)
    return out


CAMERA_SETTINGS = [
    dict(n_bins=n_bins, crop=crop, polarity=pol, downsample=ds, mode=mode)
    for n_bins, crop, pol, ds, mode in itertools.product(
        [1, 7, 50], [None, (16, 16), (19, 11)], [0, 1, "both", "merge"], [1, 3], ["binary", "count"]
    )
] + [
    dict(bin_width_us=w, max_bins=m, crop=(16, 16), polarity=pol, mode="count")
    for w, m, pol in itertools.product([1000, 33_333], [None, 5, 400], [0, "both"])
]


@pytest.mark.parametrize("settings", CAMERA_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_camera_raster_equals_brute_force(settings):
    rng = np.random.default_rng(abs(hash(str(sorted(settings.items())))) % 2**32)
    events = random_camera(rng, t_max=2_000)  # dense in time: many events sit on bin edges
    b = Binning(**settings)
    raster = to_raster(events, CAMERA, b)
    assert raster.dtype == np.uint8
    assert raster.shape[1] == n_channels(CAMERA, b)
    np.testing.assert_array_equal(raster, brute_force(events, CAMERA, b))


@pytest.mark.parametrize(
    "settings",
    [
        dict(n_bins=129),
        dict(n_bins=129, mode="count", downsample=4),
        dict(n_bins=10, polarity=0),  # single-polarity sensor: polarity has no effect
        dict(bin_width_us=1000),
        dict(bin_width_us=1000, max_bins=129, mode="count"),
        dict(bin_width_us=20_000, max_bins=5, downsample=3),
    ],
)
def test_cochlea_raster_equals_brute_force(settings):
    rng = np.random.default_rng(3)
    events = random_cochlea(rng, t_max=5 * 129 * 7)
    b = Binning(**settings)
    raster = to_raster(events, COCHLEA, b)
    np.testing.assert_array_equal(raster, brute_force(events, COCHLEA, b))
    assert raster.shape[1] == n_channels(COCHLEA, b) == -(-64 // b.downsample)


def _tonic_events(events):
    out = np.zeros(len(events), dtype=tonic.datasets.NMNIST.dtype)
    for name in out.dtype.names:
        out[name] = events[name]
    return out


@pytest.mark.parametrize("n_bins", [3, 10, 50])
def test_n_bins_matches_tonic_toframe_plus_last_events(n_bins):
    """tonic's ToFrame(n_time_bins) uses windows (t_last - t_first) // N and drops events at t_last."""
    rng = np.random.default_rng(n_bins)
    events = random_camera(rng, n=2000)
    events["t"] -= events["t"][0]
    span = n_bins * 5_000  # a multiple of n_bins: the two definitions share their bin edges
    events = events[events["t"] < span]
    events = np.concatenate([events, camera_events([4, 30], [5, 2], [span, span], [1, 0])])
    frames = ToFrame(sensor_size=CAMERA, n_time_bins=n_bins)(_tonic_events(events))  # (T, P, H, W)
    expected = frames.reshape(n_bins, -1).astype(np.int64)
    last = events[events["t"] == span]
    for ev in last:  # the events tonic leaves out go to our last (closed) bin
        expected[n_bins - 1, (ev["p"] * 34 + ev["y"]) * 34 + ev["x"]] += 1
    ours = to_raster(events, CAMERA, Binning(n_bins=n_bins, polarity="both", mode="count"))
    np.testing.assert_array_equal(ours, expected)


def test_bin_width_matches_tonic_toframe_time_window():
    rng = np.random.default_rng(11)
    events = random_camera(rng, n=3000)
    width = 7_001
    assert (events["t"][-1] - events["t"][0]) % width != 0
    frames = ToFrame(sensor_size=CAMERA, time_window=width, include_incomplete=True)(_tonic_events(events))
    ours = to_raster(events, CAMERA, Binning(bin_width_us=width, polarity="both", mode="count"))
    np.testing.assert_array_equal(ours, frames.reshape(len(frames), -1))


def test_centre_crop_matches_tonic_centercrop_then_toframe():
    rng = np.random.default_rng(5)
    events = random_camera(rng, n=3000)
    width = 9_999
    cropped = CenterCrop(sensor_size=CAMERA, size=16)(_tonic_events(events))
    frames = ToFrame(sensor_size=(16, 16, 2), time_window=width, include_incomplete=True, start_time=events["t"][0],
                     end_time=events["t"][-1])(cropped)
    ours = to_raster(events, CAMERA, Binning(bin_width_us=width, crop=(16, 16), polarity="both", mode="count"))
    np.testing.assert_array_equal(ours, frames.reshape(len(frames), -1))


def test_cochlea_matches_tonic_toframe():
    rng = np.random.default_rng(8)
    events = random_cochlea(rng, n=2000)
    width = 12_345
    tev = np.zeros(len(events), dtype=tonic.datasets.NTIDIGITS18.dtype)
    for name in tev.dtype.names:
        tev[name] = events[name]
    frames = ToFrame(sensor_size=COCHLEA, time_window=width, include_incomplete=True)(tev)  # (T, 1, 64)
    ours = to_raster(events, COCHLEA, Binning(bin_width_us=width, mode="count"))
    np.testing.assert_array_equal(ours, frames[:, 0, :])


def test_hand_case_camera():
    # 4x3 sensor (W=4, H=3), two polarities, n_bins=2 over t in [0, 100]
    ev = camera_events(x=[0, 3, 1, 1, 2], y=[0, 2, 1, 1, 0], t=[0, 49, 50, 100, 100], p=[1, 0, 1, 1, 0])
    r = to_raster(ev, (4, 3, 2), Binning(n_bins=2, polarity="both", mode="count"))
    expected = np.zeros((2, 24), dtype=np.uint8)
    expected[0, (1 * 3 + 0) * 4 + 0] = 1  # (0,0) ON, t=0
    expected[0, (0 * 3 + 2) * 4 + 3] = 1  # (3,2) OFF, t=49
    expected[1, (1 * 3 + 1) * 4 + 1] = 2  # (1,1) ON, t=50 and t=100
    expected[1, (0 * 3 + 0) * 4 + 2] = 1  # (2,0) OFF, t=100
    np.testing.assert_array_equal(r, expected)
    merged = to_raster(ev, (4, 3, 2), Binning(n_bins=2, polarity="merge"))
    assert merged.shape == (2, 12)
    assert merged[1, 1 * 4 + 1] == 1 and merged[0, 2 * 4 + 3] == 1 and merged.sum() == 4
    off = to_raster(ev, (4, 3, 2), Binning(n_bins=2, polarity=0))
    assert off.sum() == 2 and off[0, 2 * 4 + 3] == 1 and off[1, 2] == 1


def test_hand_case_downsample_and_saturation():
    ev = camera_events(x=[5] * 300 + [33], y=[6] * 300 + [33], t=np.arange(301), p=[1] * 301)
    b = Binning(n_bins=1, downsample=4, polarity=1, mode="count")
    r = to_raster(ev, CAMERA, b)
    assert r.shape == (1, 9 * 9)  # ceil(34 / 4) = 9
    assert r[0, (6 // 4) * 9 + 5 // 4] == 255  # 300 events saturate
    assert r[0, 8 * 9 + 8] == 1  # the partial last block keeps its event
    assert r.sum() == 256


def test_max_bins_pads_and_cuts():
    ev = cochlea_events(t=[1000, 1500, 4999, 9000], x=[0, 1, 2, 3])
    padded = to_raster(ev, COCHLEA, Binning(bin_width_us=1000, max_bins=20))
    assert padded.shape == (20, 64)
    assert np.argwhere(padded).tolist() == [[0, 0], [0, 1], [3, 2], [8, 3]]
    cut = to_raster(ev, COCHLEA, Binning(bin_width_us=1000, max_bins=4))
    np.testing.assert_array_equal(cut, padded[:4])


def test_degenerate_durations():
    one = cochlea_events(t=[5_000, 5_000], x=[7, 9])
    r = to_raster(one, COCHLEA, Binning(n_bins=129))
    assert r.shape == (129, 64) and r[0, 7] == r[0, 9] == 1 and r.sum() == 2
    empty = np.zeros(0, dtype=CAMERA_DTYPE)
    assert to_raster(empty, CAMERA, Binning(n_bins=50, crop=(16, 16), polarity=0)).shape == (50, 256)
    assert to_raster(empty, CAMERA, Binning(bin_width_us=1000, max_bins=7)).shape == (7, 34 * 34 * 2)
    assert to_raster(np.zeros(0, dtype=COCHLEA_DTYPE), COCHLEA, Binning(bin_width_us=1000)).shape == (0, 64)


def test_nmnist_centre_crop_gives_256_channels(nmnist_small):
    from neurohw.data.nmnist import read_nmnist_folder

    ds = read_nmnist_folder(nmnist_small, "test")
    b = Binning(n_bins=50, crop=(16, 16), polarity=0, mode="count")
    assert n_channels(ds.sensor_size, b) == 256
    for i in range(5):
        ev, _ = ds[i]
        r = to_raster(ev, ds.sensor_size, b)
        assert r.shape == (50, 256)
        inside = (ev["p"] == 0) & (ev["x"] >= 9) & (ev["x"] < 25) & (ev["y"] >= 9) & (ev["y"] < 25)
        assert r.max() < 255 and int(r.sum()) == int(inside.sum())
        pixel = np.bincount((ev["y"][inside] - 9) * 16 + ev["x"][inside] - 9, minlength=256)
        np.testing.assert_array_equal(r.sum(axis=0), pixel)


def test_sparse_round_trip():
    rng = np.random.default_rng(2)
    ev = random_camera(rng, n=1500)
    b = Binning(n_bins=40, crop=(16, 16), polarity="both", mode="count")
    dense = to_raster(ev, CAMERA, b)
    sp = to_sparse_raster(ev, CAMERA, b)
    assert isinstance(sp, SparseRaster) and sp.n_bins == 40 and sp.n_channels == 512
    assert sp.nnz == np.count_nonzero(dense)
    np.testing.assert_array_equal(sp.to_dense(), dense)
    for t in (0, 17, 39):  # bin t lists exactly its active channels, in order
        np.testing.assert_array_equal(sp.indices[sp.indptr[t]:sp.indptr[t + 1]], np.flatnonzero(dense[t]))
    np.testing.assert_array_equal(to_sparse(dense).indices, sp.indices)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(n_bins=5, bin_width_us=1000),
        dict(n_bins=5, max_bins=10),
        dict(n_bins=0),
        dict(bin_width_us=-1),
        dict(n_bins=5, polarity=2),
        dict(n_bins=5, mode="spikes"),
        dict(n_bins=5, downsample=0),
        dict(n_bins=5, crop=(0, 16)),
        dict(n_bins=5, bins=3),
    ],
)
def test_binning_rejects_bad_settings(kwargs):
    with pytest.raises(pydantic.ValidationError):
        Binning(**kwargs)


def test_binning_rejects_crop_that_does_not_fit():
    with pytest.raises(ConfigError, match="larger than the sensor"):
        n_channels(CAMERA, Binning(n_bins=5, crop=(40, 16)))
    with pytest.raises(ConfigError, match="cameras only"):
        to_raster(cochlea_events([0], [1]), COCHLEA, Binning(n_bins=5, crop=(1, 16)))


def test_events_outside_the_sensor_are_refused():
    with pytest.raises(ValueError, match="outside the sensor"):
        to_raster(camera_events([34], [0], [0], [1]), CAMERA, Binning(n_bins=2))
    with pytest.raises(ValueError, match="outside the sensor"):
        to_raster(cochlea_events([0], [64]), COCHLEA, Binning(n_bins=2))
