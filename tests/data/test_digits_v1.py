"""digits-v1: the simulated V1 recording of the digits-dvs images.

Checked against computations written here from the model's equations (module docstring of
neurohw.data.digits_v1): the Gabor filters, the Naka-Rushton rates, the Poisson spike counts
(mean and variance), and that sample i is the response to image i of digits-dvs (same label, same
split, its spike counts fit its own image's rates better than any other image's).
"""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.data import digits_v1 as v1
from neurohw.data.digits_dvs import source_images
from neurohw.data.embedded import load_embedded
from neurohw.data.events import COCHLEA_DTYPE
from neurohw.data.registry import instance_ids, load_dataset

PER_CLASS = 4


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path))
    return tmp_path


def test_gabor_filter_matches_the_formula():
    bank = v1.unit_bank(0)
    rng = np.random.default_rng([0, 0])  # the same draws, in the same order, as unit_bank
    n = v1.N_UNITS
    jx, jy = rng.uniform(-v1.POS_JITTER_PX, v1.POS_JITTER_PX, n), rng.uniform(-v1.POS_JITTER_PX, v1.POS_JITTER_PX, n)
    dtheta, lam = rng.normal(0.0, v1.THETA_JITTER_RAD, n), rng.uniform(*v1.LAMBDA_PX, n)
    for k in (0, 37, n - 1):
        gy, gx, o, ph, sign = np.unravel_index(k, (v1.GRID, v1.GRID, len(v1.ORIENTATIONS), len(v1.PHASES), 2))
        x0 = (gx + 0.5) * 28 / v1.GRID - 0.5 + jx[k]
        y0 = (gy + 0.5) * 28 / v1.GRID - 0.5 + jy[k]
        th = v1.ORIENTATIONS[o] + dtheta[k]
        g = np.zeros((28, 28))
        for y in range(28):
            for x in range(28):
                xp = (x - x0) * np.cos(th) + (y - y0) * np.sin(th)
                yp = -(x - x0) * np.sin(th) + (y - y0) * np.cos(th)
                s = 0.5 * lam[k]
                g[y, x] = np.exp(-(xp**2 + 0.49 * yp**2) / (2 * s * s)) * np.cos(2 * np.pi * xp / lam[k] + v1.PHASES[ph])
        g = (g - g.mean()) / np.linalg.norm(g - g.mean())
        np.testing.assert_allclose(bank["filters"][k], g.ravel(), atol=1e-12)
        assert bank["sign"][k] == (1.0 if sign == 0 else -1.0)
    assert abs(bank["filters"].sum(1)).max() < 1e-9  # zero mean: a uniform field drives nothing


def test_rates_follow_naka_rushton_and_a_blank_image_gives_the_spontaneous_rate():
    bank = v1.unit_bank(3)
    images, _ = v1.upsampled_images(2)
    rates = v1.firing_rates(images, bank)
    d = np.maximum(bank["sign"] * (images.reshape(len(images), -1) @ bank["filters"].T), 0)
    expect = bank["spont"] + bank["gain"] * 80.0 * d**2 / (d**2 + 1.5**2)
    np.testing.assert_allclose(rates, expect, rtol=1e-12)
    np.testing.assert_allclose(v1.firing_rates(np.zeros((1, 28, 28)), bank)[0], bank["spont"])
    assert rates.max() < bank["spont"].max() + 80.0 * bank["gain"].max()


def test_spike_counts_are_poisson_with_the_model_mean():
    bank = v1.unit_bank(0)
    images, _ = v1.upsampled_images(1)
    rates = v1.firing_rates(images[:1], bank)[0]
    expect = bank["spont"] * 0.3 + (rates - bank["spont"]) * 0.2  # spikes per unit in 300 ms
    trials = 400
    counts = np.zeros((trials, v1.N_UNITS))
    for r in range(trials):
        t, x = v1.spike_train(rates, bank, np.random.default_rng([9, r]))
        assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < v1.DURATION_US
        counts[r] = np.bincount(x, minlength=v1.N_UNITS)
    total = counts.sum(1)  # Poisson: mean = variance = expect.sum()
    se = np.sqrt(expect.sum() / trials)
    assert abs(total.mean() - expect.sum()) < 5 * se
    assert 0.8 < total.var(ddof=1) / expect.sum() < 1.25
    per_unit = counts.mean(0)
    assert np.all(np.abs(per_unit - expect) < 5 * np.sqrt(expect / trials) + 1e-9)


def test_driven_spikes_start_after_the_unit_latency():
    bank = v1.unit_bank(0)
    rates = np.full(v1.N_UNITS, 500.0)  # strongly driven: nearly all spikes are driven ones
    t, x = v1.spike_train(rates, bank, np.random.default_rng(1))
    early = t < bank["latency"][x] - 4 * v1.TRIAL_JITTER_US
    # only spontaneous spikes (a few Hz) come before the onset
    assert early.sum() < 0.02 * len(t)


def test_dataset_is_deterministic_well_formed_and_paired_with_digits_dvs(cache):
    train = load_dataset("digits-v1", "train", samples_per_class=PER_CLASS, progress=False)
    test = load_dataset("digits-v1", "test", samples_per_class=PER_CLASS, progress=False)
    assert (train.sensor_size, train.dtype, train.classes) == ((v1.N_UNITS, 1, 1), COCHLEA_DTYPE, [str(d) for d in range(10)])
    assert len(train) + len(test) == 10 * PER_CLASS
    ev = train.events(0)
    assert np.all(np.diff(ev["t"]) >= 0) and ev["x"].min() >= 0 and ev["x"].max() < v1.N_UNITS and np.all(ev["p"] == 1)
    n = np.array([len(train.events(i)) for i in range(len(train))])
    assert 300 < n.min() and n.max() < 3000  # ~2 spikes per unit per 300 ms trial
    # the same seed, generated again in another cache: byte-identical
    for split, ds in (("train", train), ("test", test)):
        again = v1.generate(0, PER_CLASS)
        k = int(ds.meta["index"][0])
        lo, hi = again.offsets[k], again.offsets[k + 1]
        assert np.array_equal(again.columns["t"][lo:hi], ds.events(0)["t"])
        assert np.array_equal(again.columns["x"][lo:hi], ds.events(0)["x"])
    # pairing: same labels, same split, same source indices as digits-dvs
    for split, ds in (("train", train), ("test", test)):
        dvs = load_dataset("digits-dvs", split, samples_per_class=PER_CLASS, progress=False)
        assert np.array_equal(ds.labels, dvs.labels)
        assert np.array_equal(instance_ids(ds), instance_ids(dvs))
    assert instance_ids(load_embedded("digits-cochlea", "test", samples_per_class=1, progress=False)) is None


def test_sample_i_is_the_response_to_image_i():
    """The spike counts of trial i fit image i's rates (Poisson log-likelihood) better than those
    of every other image in >= 90 % of trials."""
    packed = v1.generate(0, PER_CLASS)
    images, labels = source_images(PER_CLASS)
    assert np.array_equal(packed.labels, labels)
    up, _ = v1.upsampled_images(PER_CLASS)
    bank = v1.unit_bank(0)
    rates = v1.firing_rates(up, bank)
    mean = bank["spont"] * 0.3 + (rates - bank["spont"]) * 0.2  # (N, units) expected counts
    counts = np.stack([np.bincount(packed.columns["x"][packed.offsets[i]:packed.offsets[i + 1]], minlength=v1.N_UNITS)
                       for i in range(len(labels))])
    loglik = counts @ np.log(mean).T - mean.sum(1)[None, :]  # [trial, image]
    assert np.mean(np.argmax(loglik, axis=1) == np.arange(len(labels))) >= 0.9
