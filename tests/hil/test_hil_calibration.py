"""Calibration of an emulated chip whose device YAML the test knows: the measured device model
recovers it (read noise within 5 %, formed fraction within 1 % absolute, formed-conductance mean
and std within 3 %, stuck cells, drift), validates, cites its measurement, and its conductance
map loads as a crossbar."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _hil import device_from_yaml, live_server

from neurohw.cli import main
from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device
from neurohw.hil.calibration import calibrate, fit_read_noise, formed_threshold, otsu_threshold
from neurohw.hil.macro import LocalMacro
from neurohw.hil.remote import RemoteMacro


def _known_chip():
    def edit(raw):
        raw["name"] = "known_chip"
        raw["read_noise"].update(relative=0.03, additive_us=0.4)
        raw["forming"].update(probability=0.62)
        raw["forming"]["formed"].update(mean_us=12.0, std_us=3.0)
        raw["stuck"].update(p_on=0.004, p_off=0.008)

    return device_from_yaml("taox_rram_40nm", edit)


def test_calibration_recovers_the_known_device(tmp_path):
    dev = _known_chip()
    with live_server(dev, tiles=2) as srv:
        with RemoteMacro(srv.url, chip_seed=4) as macro:
            s = calibrate(macro, tmp_path / "remote", reads=32, seed=1)
    f, rn, st = s["forming"], s["read_noise"], s["stuck"]
    assert rn["relative"] == pytest.approx(0.03, rel=0.05)
    assert rn["additive_us"] == pytest.approx(0.4, rel=0.05)
    assert rn["resolved"]
    assert f["formed_fraction"] == pytest.approx(0.62, abs=0.01)
    assert f["formed_mean_us"] == pytest.approx(12.0, rel=0.03)
    assert f["formed_std_us"] == pytest.approx(3.0, rel=0.03)
    assert f["unformed_median_us"] == 0.0
    assert st["p_on"] == pytest.approx(0.004, abs=0.001) and st["p_off"] == pytest.approx(0.008, abs=0.0015)
    assert st["g_on_us"] == 40.0 and st["g_off_us"] == 0.0
    for t, g in s["adc"]["gain"].items():
        assert g == pytest.approx(1.0, abs=2e-3)
    assert s["drift"]["measured"] and s["drift"]["nu_mean"] == 0.0

    out = tmp_path / "remote"
    model = load_device(out / "device.yaml")
    assert model.read_noise.relative == pytest.approx(rn["relative"], rel=1e-5)
    assert model.forming.probability == pytest.approx(f["formed_fraction"], rel=1e-5)
    assert (model.array.rows, model.array.cols, model.adc.bits, model.levels.step_us) == (512, 512, 14, 0.0625)
    assert model.drift.enabled is False and model.energy == dev.energy and model.programming == dev.programming
    text = (out / "device.yaml").read_text()
    assert s["chip_id"] in text and s["date"] in text and "32 reads" in text and "from the chip's INFO facts" in text
    saved = json.loads((out / "calibration.json").read_text())
    assert saved["read_noise"]["relative"] == rn["relative"]

    # the measured map is a crossbar, and the in-process macro measures the same chip
    xb = Crossbar.from_conductance_map(model, out / "conductance_map.h5", scale=0.07)
    assert (xb.n_in, xb.n_out) == (512, 256)
    assert 0.6 < np.mean(np.concatenate([xb.g_pos.ravel(), xb.g_neg.ravel()]) > 6) < 0.64
    calibrate(LocalMacro(dev, tiles=2, chip_seed=4), tmp_path / "local", reads=32, seed=1)
    for name in ("conductance_map_tile0.h5", "conductance_map_tile1.h5"):
        a = Crossbar.from_conductance_map(model, tmp_path / "local" / name, 1.0)
        b = Crossbar.from_conductance_map(model, out / name, 1.0)
        assert np.array_equal(a.g_pos, b.g_pos) and np.array_equal(a.g_neg, b.g_neg)
    local = json.loads((tmp_path / "local" / "calibration.json").read_text())
    assert local["read_noise"] == saved["read_noise"] and local["stuck"] == saved["stuck"]


def test_calibration_measures_drift_and_faulty_cells():
    def edit(raw):
        raw["read_noise"]["relative"] = 0.0

    dev = device_from_yaml("pcm_like", edit)  # drift nu ~ N(0.049, 0.008); per-tile 8-bit ADC
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        s = calibrate(LocalMacro(dev, tiles=1, chip_seed=0, extra_stuck=0.01, extra_stuck_kind="both"), d, reads=8)
        model = load_device(f"{d}/device.yaml")
    assert s["drift"]["nu_mean"] == pytest.approx(0.049, rel=0.03)
    assert s["drift"]["nu_std"] == pytest.approx(0.008, rel=0.1)
    assert model.drift.enabled and model.drift.t0_s == 20.0
    assert s["stuck"]["p_on"] + s["stuck"]["p_off"] == pytest.approx(0.01, abs=0.002)
    assert model.adc.gain == "per_tile" and model.input.bit_serial is False
    assert s["forming"]["formed_fraction"] == pytest.approx(1.0, abs=0.01)
    assert s["read_noise"]["relative"] < 0.005


def test_helpers_against_closed_forms():
    rng = np.random.default_rng(0)
    mix = np.concatenate([rng.normal(0, 0.3, 5000), rng.normal(14, 2.5, 5000)])
    assert 3 < otsu_threshold(mix) < 10
    assert 1.5 < formed_threshold(mix) < 2.5  # just above the tight cluster at 0 (6 x 0.3)
    assert formed_threshold(rng.normal(12, 3, 5000)) == float("-inf")  # one cluster: all formed
    assert formed_threshold(np.zeros(100)) == float("inf")  # nothing formed
    few = np.concatenate([np.zeros(9500), rng.normal(14, 2.5, 500)])
    assert 0 < formed_threshold(few, 0.0625) <= 0.125
    q = rng.uniform(1, 500, 4000)
    k = rng.choice([1.0, 16.0, 64.0], 4000)
    true = 0.02**2 * q + 0.3**2 * k
    var = true * rng.chisquare(31, 4000) / 31
    r, a = fit_read_noise(var, q, k, floor=1e-6)
    assert r == pytest.approx(0.02, rel=0.03) and a == pytest.approx(0.3, rel=0.03)


def test_cli_calibrate(tmp_path, capsys):
    dev = _known_chip()
    with live_server(dev, tiles=1) as srv:
        assert main(["hil", "calibrate", srv.url, "--out", str(tmp_path), "--reads", "8", "--no-drift", "--formed", "histogram"]) == 0
    out = capsys.readouterr().out
    assert "formed 0.6" in out and "wrote" in out
    model = load_device(tmp_path / "device.yaml")
    assert model.forming.formed.kind == "histogram" and model.drift.enabled is False
    assert main(["hil", "calibrate", "hil://127.0.0.1:1", "--out", str(tmp_path / "x")]) == 2
    assert main(["hil", "calibrate", "hil://127.0.0.1:1", "--out", str(tmp_path / "x"), "--tiles", "a,b"]) == 2
