"""The shipped sweeps run as shipped (their axes cut to the ends, a smaller base through --set)
and leave their plots in the sweep folder; drift alone loses accuracy by 10 years after
programming and the compensation wins it back."""

from __future__ import annotations

import pytest
import yaml

from _sweeps import cli, write_yaml
from neurohw.resources import experiments_dir
from neurohw.sweeps.table import read_csv

#: the shipped base (digits_ridge) shrunk to seconds a point
SMALL = ["--set", "data.digits.options={samples_per_class: 10}", "--set", "reservoir.digits.n_neurons=32",
         "--set", "reservoir.digits.calibration_samples=32"]


def _shipped(name: str, **changes) -> dict:
    spec = yaml.safe_load((experiments_dir() / "sweeps" / f"{name}.yaml").read_text())
    for key, value in changes.items():
        if key in ("seeds",):
            spec[key] = value
        else:
            assert key in spec["axes"], key
            spec["axes"][key] = value
    return spec


@pytest.mark.slow
def test_the_drift_and_noise_sweeps_run_and_plot(tmp_path):
    cache = tmp_path / "cache"
    drift = write_yaml(tmp_path / "drift.yaml", _shipped("drift", seeds=[0, 1], **{"device.read_time_s": [1.0, 315576000.0]}))
    out = tmp_path / "drift"
    res = cli(["sweep", str(drift), "--out", str(out), "--workers", "2", *SMALL], cache)
    assert res.returncode == 0, res.stderr
    assert (out / "test_accuracy__vs__read_time_s__by__drift_compensation.png").stat().st_size > 10_000
    rows = read_csv(out / "results.csv")
    acc = {}
    for r in rows:
        acc.setdefault((float(r["device.read_time_s"]), r["device.drift_compensation"]), []).append(float(r["test_accuracy"]))
    mean = {k: sum(v) / len(v) for k, v in acc.items()}
    ten_years = 315576000.0
    # 1 s is before the drift's t0 (20 s): the same reads whatever the compensation
    assert acc[(1.0, "none")] == acc[(1.0, "global")] == acc[(1.0, "column")]
    assert mean[(ten_years, "none")] < mean[(1.0, "none")] - 0.2  # drift alone loses it
    for mode in ("global", "column"):  # compensation wins it back
        assert mean[(ten_years, mode)] > mean[(ten_years, "none")] + 0.2
        assert mean[(ten_years, mode)] > mean[(1.0, "none")] - 0.15

    noise = write_yaml(tmp_path / "noise.yaml", _shipped("noise_robustness", seeds=[0], **{
        "device.overrides.read_noise.relative": [0.0, 0.4], "device.overrides.adc.bits": [3, 14]}))
    out = tmp_path / "noise"
    res = cli(["sweep", str(noise), "--out", str(out), "--workers", "2", *SMALL], cache)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["cv_accuracy__vs__adc-bits__by__read_noise-relative.png", "cv_accuracy__vs__read_noise-relative__by__adc-bits.png",
                     "test_accuracy__vs__adc-bits__by__read_noise-relative.png", "test_accuracy__vs__read_noise-relative__by__adc-bits.png"]
    assert len(read_csv(out / "results.csv")) == 4
