"""Energy and latency accounting on a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device

OVER = {
    "array": {"rows": 2, "cols": 4},  # tiles of 2 inputs x 2 pairs
    "energy": {"cell_read_j": 1.0, "active_row_j": 10.0, "adc_conversion_j": 100.0, "programming_pulse_j": 1000.0},
    "timing": {"read_cycle_s": 1.0, "programming_pulse_s": 0.5},
    "digital_baseline": {"mac_j": 0.25},
}


def test_hand_computed_case():
    dev = load_device("ideal", OVER)
    W = np.arange(9, dtype=float).reshape(3, 3) - 4
    xb = Crossbar.from_weights(dev, W, seed=0)  # ideal: one exact pulse per cell -> 18 pulses
    assert (xb.n_tiles, xb.n_col_tiles) == (2, 2)
    assert xb.ledger.programming_pulses == 18
    x = np.array([[1.0, 0, 1], [0, 0, 0], [1, 1, 0]])
    y = xb.mvm(x)
    np.testing.assert_allclose(y, x @ W, atol=1e-12)
    # by hand: sample 0 reads tile 0 (row 0) and tile 1 (row 2); sample 1 reads nothing;
    # sample 2 reads tile 0 (rows 0, 1). Each tile read happens in both column tiles.
    c = xb.ledger.counts()
    assert c["read_cycles"] == (2 + 0 + 1) * 2
    assert c["active_rows"] == (1 + 1 + 2) * 2
    assert c["cell_reads"] == (1 + 1 + 2) * 2 * 3  # every active row reads 2 cells per output
    assert c["adc_conversions"] == (2 + 1) * 3
    assert c["macs"] == 3 * 3 * 3
    assert xb.ledger.joules() == pytest.approx(24 * 1 + 8 * 10 + 9 * 100 + 18 * 1000)
    assert xb.ledger.joules(include_programming=False) == pytest.approx(1004.0)
    assert xb.ledger.seconds() == pytest.approx(6 * 1.0 + 18 * 0.5)
    assert xb.ledger.digital_baseline_joules() == pytest.approx(27 * 0.25)
    xb.ledger.reset()
    assert xb.ledger.joules() == 0.0


def test_bit_serial_inputs_cost_one_read_per_plane():
    dev = load_device("ideal", {**OVER, "input": {"bits": 3, "bit_serial": True}})
    xb = Crossbar.from_forming(dev, 2, 2, scale=1.0, seed=0)
    assert xb.ledger.programming_pulses == 0  # ideal: no forming pulses
    xb.mvm(np.array([[5.0, 2.0]]))  # 5 = 101b, 2 = 010b: planes 0, 1, 2 each with one active row
    assert xb.ledger.read_cycles == 3 and xb.ledger.active_rows == 3 and xb.ledger.adc_conversions == 6


def test_reference_macro_energy_is_below_digital_baseline():
    """taox_rram_40nm, 512 x 256, 10 % active binary inputs: the ratio the YAML numbers imply."""
    xb = Crossbar.from_forming("taox_rram_40nm", 512, 256, scale=0.07, seed=0)
    xb.ledger.reset()
    x = (np.random.default_rng(0).random((100, 512)) < 0.1).astype(float)
    xb.mvm(x)
    active = x.sum()
    expected = active * 512 * 5.7e-15 + active * 1.2e-13 + 100 * 256 * 8.2e-11
    assert xb.ledger.joules() == pytest.approx(expected)
    ratio = xb.ledger.digital_baseline_joules() / xb.ledger.joules()
    assert ratio == pytest.approx(100 * 512 * 256 * 4.6e-12 / expected)
    assert 10 < ratio < 40


def test_adc_energy_follows_its_bits_when_the_device_gives_them():
    """adc_conversion_bits: e_adc(b) = adc_conversion_j * 2^(b - adc_conversion_bits), by hand."""
    over = {**OVER, "energy": {**OVER["energy"], "adc_conversion_bits": 8}, "adc": {"bits": 6, "range_us": 100.0}}
    x = np.array([[1.0, 0, 1]])
    for bits, per_conv in ((8, 100.0), (6, 25.0), (10, 400.0)):
        dev = load_device("ideal", {**over, "adc": {"bits": bits, "range_us": 100.0}})
        xb = Crossbar.from_weights(dev, np.ones((3, 3)), seed=0)
        ledger = xb.count_reads(x)  # tiles 0 and 1 each read once in both column tiles: 2 reads x 3 outputs
        assert ledger.adc_conversions == 6
        assert ledger.breakdown()["adc_conversions"] == pytest.approx(6 * per_conv)
    fixed = load_device("ideal", {**OVER, "adc": {"bits": 4, "range_us": 100.0}})  # no adc_conversion_bits: fixed
    assert Crossbar.from_weights(fixed, np.ones((3, 3)), seed=0).count_reads(x).breakdown()["adc_conversions"] == pytest.approx(600.0)
    taox = load_device("taox_rram_40nm", {"adc": {"bits": 6}})
    assert Crossbar.from_forming(taox, 4, 2, scale=0.07, seed=0).ledger.energy.adc_conversion_j == pytest.approx(8.2e-11 / 256)
