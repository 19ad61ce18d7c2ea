"""The operating point in the conductance HDF5 is complete: the numpy-only runner
(tests/export/_hdf5_runner.py, no neurohw import) rebuilt from the file alone gives neurohw's
spikes, counts and membrane bit for bit on devices that exercise every read path: several row
tiles, per-tile ADC gains with mismatch, multi-bit bit-serial and amplitude inputs, subtract
reset, integer and float weights, no ADC."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurohw.data.binning import Binning
from neurohw.devices.model import load_device
from neurohw.devices.chip_map import place
from neurohw.export.chip_map import write_hdf5
from neurohw.export.operating_point import operating_point
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

sys.path.insert(0, str(Path(__file__).parent))
import _hdf5_runner as runner

N_IN, N, T = 150, 70, 25
MULTI_TILE = {"array": {"rows": 64}, "adc": {"gain": "per_tile", "gain_error_std": 0.05}}
CASES = {
    "bit-serial, per-tile gains, subtract": ("taox_rram_40nm", MULTI_TILE, "subtract"),
    "amplitude input with full scale": ("taox_rram_40nm", {**MULTI_TILE, "input": {"bits": 4, "full_scale": 7.0,
                                                                                  "bit_serial": False}}, "hard"),
    "bit-serial with full scale, fixed gain": ("taox_rram_40nm", {"input": {"bits": 3, "full_scale": 5.0}}, "hard"),
    "ideal: float weights, no ADC": ("ideal", {}, "subtract"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_runner_from_the_file_alone_equals_neurohw(case, tmp_path):
    name, overrides, reset = CASES[case]
    device = load_device(name, overrides)
    enc = LSMEncoder(LSMConfig(n_inputs=N_IN, n_neurons=N, scale=0.05, v_th=3.0, decay=0.85, reset=reset, seed=5,
                               backend="numpy", noise=False, features=("rate", "counts", "membrane"), count_bins=3), device)
    xin, xrec = enc.crossbars()
    records = list(zip(place([("m/input", N_IN, N), ("m/recurrent", N, N)], device), [xin, xrec]))
    binning = Binning(n_bins=T, mode="count")
    point = operating_point(enc, "m", binning, (N_IN, 1, 1), False, enc.config.features, enc.config.count_bins)
    path = write_hdf5(tmp_path / "chip.h5", records, device, {}, [point])
    model = runner.load(str(path))["m"]
    assert model["integer"] == (name != "ideal") and (model["adc"] is None) == (name == "ideal")
    rng = np.random.default_rng(1)
    rasters = [np.where(rng.random((T, N_IN)) < 0.15, rng.integers(1, 9, (T, N_IN)), 0).astype(np.uint8) for _ in range(3)]
    ref = enc.run_batch(rasters, np.arange(3), record_spikes=True)
    total = 0
    for b, r in enumerate(rasters):
        got = runner.run(model, r.astype(np.int64))
        np.testing.assert_array_equal(got["spikes"], ref.spikes[b])
        np.testing.assert_array_equal(got["counts"], ref.counts[b])
        np.testing.assert_array_equal(got["rate"], ref.rate[b])
        np.testing.assert_array_equal(got["membrane"], ref.membrane[b])
        total += int(got["spikes"].sum())
    assert 0.02 < total / (3 * T * N) < 0.9  # neither silent nor saturated: the comparison means something


def test_operating_point_numbers(tmp_path):
    """Threshold in ADC codes = v_th / step per tile; the step in uS = step / scale; the fixed
    gain's step is scale * range_us / 2^(bits-1) (docs/export.md)."""
    device = load_device("taox_rram_40nm")
    enc = LSMEncoder(LSMConfig(n_inputs=20, n_neurons=10, scale=0.07, v_th=5.0, seed=1, noise=False), device)
    point = operating_point(enc, "m", Binning(n_bins=30, crop=(28, 28), downsample=2), (34, 34, 2), True)
    adc = point["adc_input"]
    step = 0.07 * 512.0 / 2**13
    np.testing.assert_array_equal(adc["step"], [step])
    np.testing.assert_allclose(adc["step_us"], [512.0 / 2**13])
    np.testing.assert_array_equal(adc["v_th_codes"], [5.0 / step])
    assert point["input"]["bits"] == 6 and point["input"]["bit_serial"] and point["time_step"]["n_bins"] == 30
    assert point["weights"]["unit"] == 0.07 * 0.0625
    with h5py.File(write_hdf5(tmp_path / "c.h5", [], device, {}, [point]), "r") as f:
        assert f["operating_point/m/neuron"].attrs["reset"] == "hard"
        assert f["operating_point/m/wiring/sensor_to_word_line"].shape == (2, 34, 34)
