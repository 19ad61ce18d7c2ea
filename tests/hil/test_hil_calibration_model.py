"""Calibration writes only what it measured: an ADC gain error between tiles only when the
per-tile gains differ beyond their own standard errors (a chip without one gets none), and
device.yaml is the validated DeviceModel dumped (it loads back to the same model), each written
key with its source."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from _hil import device

from neurohw.devices.model import load_device
from neurohw.hil.calibration import calibrate, device_model, gain_spread
from neurohw.hil.macro import LocalMacro

SMALL = {"array.rows": 128, "array.cols": 128, "adc.range_us": 128.0}


def _calibrate(tmp_path, gain_error_std: float, tiles: int, seed: int = 0):
    dev = device(**SMALL, **{"adc.gain_error_std": gain_error_std})
    return calibrate(LocalMacro(dev, tiles=tiles, chip_seed=seed), tmp_path, reads=8, seed=seed, drift=False)


def test_a_fixed_gain_chip_without_gain_error_gets_none(tmp_path):
    s = _calibrate(tmp_path, 0.0, tiles=4)
    sp = s["adc"]["gain_spread"]
    assert sp["resolved"] is False and sp["p"] >= 0.001 and s["adc"]["gain_error_std"] is None
    text = (tmp_path / "device.yaml").read_text()
    assert "gain_error_std" not in text and "no gain error between tiles resolved" in text
    assert load_device(tmp_path / "device.yaml").adc.gain_error_std == 0.0


def test_a_gain_error_between_tiles_is_measured_and_written(tmp_path):
    s = _calibrate(tmp_path, 0.03, tiles=8, seed=1)
    sp = s["adc"]["gain_spread"]
    assert sp["resolved"] and sp["p"] < 1e-6
    gains = np.array(list(s["adc"]["gain"].values()))
    # the estimate is the sample std of the gains less their (tiny) standard errors
    assert sp["gain_error_std"] == pytest.approx(np.std(gains, ddof=1), rel=0.01)
    assert 0.015 < sp["gain_error_std"] < 0.06  # 8 draws of N(1, 0.03): the sample std's spread
    assert load_device(tmp_path / "device.yaml").adc.gain_error_std == pytest.approx(sp["gain_error_std"], rel=1e-9)


def test_gain_spread_against_its_closed_form():
    g, se = [1.0, 1.01, 0.99], [0.001, 0.001, 0.001]
    sp = gain_spread(g, se)
    assert sp["chi2"] == pytest.approx(((0.01 / 0.001) ** 2) * 2, rel=1e-9) and sp["dof"] == 2
    assert sp["p"] == pytest.approx(np.exp(-sp["chi2"] / 2), rel=1e-9)  # chi2 survival on 2 dof
    assert sp["gain_error_std"] == pytest.approx(np.sqrt(0.0001 - 1e-6), rel=1e-9)
    assert gain_spread([1.0, 1.0001], [0.001, 0.001])["resolved"] is False
    assert gain_spread([1.0], [0.001])["gain_error_std"] is None


def test_device_yaml_is_the_model_dumped(tmp_path):
    s = _calibrate(tmp_path, 0.0, tiles=2)
    info = LocalMacro(device(**SMALL), tiles=2, chip_seed=0).info()
    model, notes = device_model(s, info, info.facts, "gaussian")
    loaded = load_device(tmp_path / "device.yaml")
    assert loaded.model_dump(exclude={"name", "description", "source"}) == model.model_dump(exclude={"name", "description", "source"})
    raw = yaml.safe_load((tmp_path / "device.yaml").read_text())
    flat = {f"{a}.{b}" for a, v in raw.items() if isinstance(v, dict) for b in v}
    assert "adc.gain_error_std" not in flat and "read_noise.relative" in flat
    assert all(k in notes for k in flat if not k.startswith("forming.formed"))
    assert notes["read_noise.relative"].startswith("measured:") and s["chip_id"] in notes["read_noise.relative"]
