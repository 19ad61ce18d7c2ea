"""The run's encoder energy equals the crossbar's own ledger for the same reads.

``Crossbar.count_reads`` (what the run's energy is counted with, through
``LSMEncoder.energy``) counts reads from the inputs alone; ``Crossbar.mvm`` counts them while it
computes. Both must agree for binary inputs (one plane) and count inputs (bit-serial planes on
the TaOx macro, whose inputs are 6-bit bit-serial).
"""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.reservoir.lsm import LSMEncoder


def crossbar_read_energy(xb, active):
    """(analog joules, digital-baseline joules) of reading ``xb`` once per row of ``active``."""
    ledger = xb.count_reads(active)
    return ledger.joules(include_programming=False), ledger.digital_baseline_joules()


@pytest.mark.parametrize("n_in", [40, 700])  # one row tile; two row tiles (512 rows each)
@pytest.mark.parametrize("top", [1, 5, 11])
def test_energy_matches_crossbar_ledger(n_in, top):
    xb = Crossbar.from_forming("taox_rram_40nm", n_in, 8, 0.07, seed=1)
    rng = np.random.default_rng(top)
    x = (rng.integers(0, top + 1, size=(6, n_in)) * (rng.random((6, n_in)) < 0.3)).astype(np.uint8)
    joules, digital = crossbar_read_energy(xb, x)
    xb.ledger.reset()
    xb.mvm(x.astype(np.float64), rng=np.random.default_rng(0), noise=False)
    assert joules == pytest.approx(xb.ledger.joules(include_programming=False), rel=1e-12)
    assert digital == pytest.approx(6 * n_in * 8 * xb.device.digital_baseline.mac_j, rel=1e-12)


def test_count_inputs_cost_more_than_their_binary_pattern():
    xb = Crossbar.from_forming("taox_rram_40nm", 64, 8, 0.07, seed=2)
    x = np.zeros((1, 64), dtype=np.uint8)
    x[0, :10] = 7  # three bit planes, each with the same 10 active rows
    e_count, _ = crossbar_read_energy(xb, x)
    e_binary, _ = crossbar_read_energy(xb, (x > 0).astype(np.uint8))
    assert e_count == pytest.approx(3 * e_binary, rel=1e-12)


def test_encoder_energy_is_the_crossbars_count_of_its_reads():
    """LSMEncoder.energy: the input crossbar read with every bin's inputs, the recurrent one with
    the previous bin's spikes (the last bin's spikes are never read back)."""
    enc = LSMEncoder(n_inputs=70, n_neurons=12, scale=0.07, seed=5, backend="numpy", noise=False)
    rng = np.random.default_rng(0)
    raster = (rng.random((9, 70)) < 0.2).astype(np.uint8)
    spikes = enc.run_batch([raster], [0], record_spikes=True).spikes[0]
    xin, xrec = enc.crossbars()
    e_in, d_in = crossbar_read_energy(xin, raster)
    e_rec, d_rec = crossbar_read_energy(xrec, spikes[:-1].astype(np.uint8))
    got = enc.energy(raster, spikes)
    assert got.analog_j == pytest.approx(e_in + e_rec, rel=1e-12) and got.digital_j == pytest.approx(d_in + d_rec, rel=1e-12)
    assert got.digital_j == pytest.approx((9 * 70 * 12 + 8 * 12 * 12) * xin.device.digital_baseline.mac_j, rel=1e-12)
