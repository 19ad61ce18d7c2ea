"""The encoder's public API: keyword construction, n_inputs inferred on first use, crossbars at
the calibrated scale, transform on a dataset, read-noise keys that never alias."""

from __future__ import annotations

import numpy as np
import pytest

import neurohw as nh
from neurohw.errors import ConfigError, DataError
from neurohw.reservoir.lsm import EVAL_ID_OFFSET, LSMConfig, LSMEncoder


def _rasters(n=6, T=12, C=40, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((T, C)) < 0.15).astype(np.uint8) for _ in range(n)]


def test_keywords_build_the_config_and_override_a_given_one():
    enc = LSMEncoder(n_neurons=20, scale=0.05, backend="numpy")
    assert enc.config.n_neurons == 20 and enc.config.scale == 0.05 and enc.device.name == "taox_rram_40nm"
    enc2 = LSMEncoder(LSMConfig(n_neurons=20, scale=0.05, v_th=4.0), "ideal", n_neurons=30)
    assert (enc2.config.n_neurons, enc2.config.v_th, enc2.device.name) == (30, 4.0, "ideal")
    assert nh.LSM is LSMEncoder


def test_n_inputs_is_inferred_from_the_first_raster_and_then_enforced():
    enc = LSMEncoder(n_neurons=16, scale=0.07, backend="numpy", seed=2)
    with pytest.raises(ConfigError, match="not known yet"):
        enc.crossbars()
    rasters = _rasters(C=40)
    feats = enc.encode(rasters, progress=False)
    assert enc.n_inputs == 40 and enc.config.n_inputs == 40 and feats["rate"].shape == (6, 16)
    with pytest.raises(DataError, match="n_inputs=40"):
        enc.encode([np.zeros((5, 41), np.uint8)], progress=False)
    # the same reservoir as one built with n_inputs given
    ref = LSMEncoder(n_inputs=40, n_neurons=16, scale=0.07, backend="numpy", seed=2)
    assert np.array_equal(ref.encode(rasters, progress=False)["rate"], feats["rate"])


def test_crossbars_are_at_the_calibrated_scale_with_the_same_conductances():
    enc = LSMEncoder(n_inputs=40, n_neurons=16, target_rate=0.1, calibration_samples=6, backend="numpy", noise=False)
    enc.calibrate(_rasters())
    xin, xrec = enc.crossbars()
    assert xin.scale == enc.scale and xrec.scale == enc.scale * enc.config.rec_scale
    assert np.array_equal(xin.g_pos, enc.crossbar_in.g_pos) and xin.formed is not None
    assert np.allclose(xin.weights(), enc.scale * (xin.g_pos - xin.g_neg))
    syn = enc.synapses()
    assert syn.integer and syn.unit == pytest.approx(enc.scale * enc.device.levels.step_us)


def test_sample_ids_key_the_noise_and_eval_ids_never_alias_training_ids():
    """The read-noise key is one 32-bit word: ids must fit it, and the evaluation offset (2**31)
    gives a sample other draws than the training sample with the same index."""
    enc = LSMEncoder(n_inputs=40, n_neurons=30, scale=0.3, backend="numpy", seed=1)
    r = _rasters(n=1)[0]
    a = enc.run_batch([r], [5]).membrane
    assert np.array_equal(a, enc.run_batch([r], [5]).membrane)  # same key, same draws
    b = enc.run_batch([r], [5 + EVAL_ID_OFFSET]).membrane
    assert not np.array_equal(a, b)
    with pytest.raises(DataError, match=r"\[0, 2\*\*32\)"):
        enc.run_batch([r], [2**32])
    with pytest.raises(DataError, match="one id per raster"):
        enc.run_batch([r, r], [1])


def test_transform_bins_a_dataset_and_uses_split_dependent_ids():
    train = nh.load_dataset("digits-dvs", "train")
    test = nh.load_dataset("digits-dvs", "test")
    binning = nh.Binning(n_bins=8, crop=(28, 28), downsample=4, polarity=0)
    enc = nh.LSM(n_neurons=24, scale=0.2, features=("rate", "counts"), count_bins=2, backend="cpu")
    idx = np.arange(5)
    X = enc.transform(train, binning, indices=idx, progress=False)
    assert enc.n_inputs == 49 and X.shape == (5, 24 + 2 * 24) and X.dtype == np.float32
    feats = enc.encode(nh.data.binning.dataset_rasters(train, binning, idx), idx, progress=False)
    assert np.array_equal(X[:, :24], feats["rate"]) and np.array_equal(X[:, 24:], feats["counts"].reshape(5, -1))
    Xt = enc.transform(test, binning, indices=idx, progress=False)
    ft = enc.encode(nh.data.binning.dataset_rasters(test, binning, idx), idx + EVAL_ID_OFFSET, progress=False)
    assert np.array_equal(Xt[:, :24], ft["rate"])
    with pytest.raises(DataError, match="n_inputs=49"):
        enc.transform(train, nh.Binning(n_bins=8), indices=idx, progress=False)


def test_an_encoder_on_given_crossbars_equals_the_formed_one():
    """from_crossbars: the same conductances (here through a conductance map, as a measured chip
    would hand them) give the same features; shapes and scale come from the crossbars."""
    from neurohw.crossbar import Crossbar

    formed = LSMEncoder(n_inputs=30, n_neurons=12, scale=0.07, seed=4, backend="numpy")
    xin, xrec = formed.crossbars()
    maps = [Crossbar.from_conductance_map(formed.device, x.conductance_map(), 1.0) for x in (xin, xrec)]
    given = LSMEncoder.from_crossbars(*maps, formed.config)
    assert (given.n_inputs, given.config.n_neurons, given.scale) == (30, 12, 0.07)
    rasters = _rasters(n=3, C=30)
    assert np.array_equal(formed.encode(rasters, progress=False)["rate"], given.encode(rasters, progress=False)["rate"])
    with pytest.raises(DataError, match="12 x 12"):
        LSMEncoder.from_crossbars(maps[0], maps[0], formed.config)
