"""The drift clock as experiment keys: device.read_time_s (test reads), device.train_read_time_s
(calibration and training reads), device.drift_compensation; both in the feature cache key, and
only where they change the features."""

from __future__ import annotations

import pytest

from neurohw.errors import ConfigError
from neurohw.experiments.encoding import ModalityReservoir
from neurohw.experiments.extraction import cache_spec
from neurohw.experiments.feature_cache import feature_key
from neurohw.experiments.modalities import resolve_modalities
from neurohw.experiments.schema import parse_config


def _cfg(**device) -> dict:
    return {
        "task": "classify",
        "data": {"d": {"dataset": "digits-dvs", "options": {"samples_per_class": 5}, "binning": {"n_bins": 10, "downsample": 4}}},
        "reservoir": {"d": {"n_neurons": 16, "target_rate": 0.05, "calibration_samples": 8}},
        "head": {"kind": "ridge", "cv_folds": 2},
        "device": device,
    }


def _keys(raw: dict) -> dict[str, str]:
    cfg = parse_config(raw)
    mods = resolve_modalities(cfg, progress=False)
    (res,) = ModalityReservoir.for_seed(cfg, mods, 0)
    return {split: feature_key(cache_spec(res, split)) for split in ("train", "test")}


def test_read_times_and_compensation_key_the_features_where_they_change_them():
    plain = _keys(_cfg(model="pcm_like"))
    late = _keys(_cfg(model="pcm_like", read_time_s=1e6))
    comp = _keys(_cfg(model="pcm_like", read_time_s=1e6, drift_compensation="global"))
    assert late["train"] == plain["train"]  # the training split is read at programming
    assert len({plain["test"], late["test"], comp["test"]}) == 3
    # reads at or before the drift's t0 (20 s on pcm_like) are reads at programming
    assert _keys(_cfg(model="pcm_like", read_time_s=20.0, drift_compensation="column")) == plain
    # a device without drift: the clock changes nothing, so the keys stay
    assert _keys(_cfg(model="taox_rram_40nm", read_time_s=1e6, drift_compensation="global")) == _keys(_cfg())
    # calibrating and training later changes both splits (the scale is calibrated at that time)
    trained_late = _keys(_cfg(model="pcm_like", read_time_s=1e6, train_read_time_s=1e6))
    assert trained_late["train"] != plain["train"] and trained_late["test"] != late["test"]


def test_read_keys_are_checked_like_every_key():
    with pytest.raises(ConfigError, match=r"key 'device.read_time_s' = -5.0: .*greater than or equal to 0"):
        parse_config(_cfg(read_time_s=-5.0))
    with pytest.raises(ConfigError, match=r"device.drift_compensation.*one of 'none', 'global', 'column'"):
        parse_config(_cfg(drift_compensation="per_tile"))
    with pytest.raises(ConfigError, match=r"unknown key 'read_time' in device \(did you mean 'read_time_s'\?\)"):
        parse_config(_cfg(read_time=10))


def test_the_drift_clock_is_refused_for_a_chip_over_a_link():
    with pytest.raises(ConfigError, match=r"the chip at hil://127\.0\.0\.1:9 drifts in real time: remove them"):
        parse_config({**_cfg(read_time_s=10.0), "backend": "hil://127.0.0.1:9"})
