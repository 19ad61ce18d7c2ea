"""One ADC rule for every read (neurohw.devices.adc): a read is taken to code units as
``a * codes_per_unit`` (``a`` the accumulated sum in units of ``unit``, ``codes_per_unit =
(unit / step) * gain``), then ``clip(rint(.), -max_code, max_code)``: ties round half to even.

Exact half-code ties are where a second rule would show: on the reference device with an 8-bit
ADC (one code = 64 levels at any scale: step = scale 512 uS / 2^7, level = scale 0.0625 uS),
binary inputs on 16 cells whose levels sum to 3296 give exactly 51.5 codes. Crossbar.mvm and the reservoir's reads must give the same code, and
that code is the one exact rational arithmetic rounds half to even to (fractions.Fraction,
Python's round), an independent computation.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.devices.adc import TileADC, adc_codes
from neurohw.devices.model import load_device
from neurohw.reservoir.backends import numpy_ref
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

SCALE = 0.07  # weight per uS; not a power of two, so weight-unit sums are rounded in float64
N_ROWS = 16
#: levels of the 16 cells of a column (level step 0.0625 uS): sums 3296 = 51.5 * 64 (codes)
TIE_UP = [219, 209, 211, 252, 180, 239, 223, 150, 193, 244, 210, 153, 234, 230, 243, 106]
TIE_DOWN = [202] * N_ROWS  # 3232 levels = 50.5 codes
NOT_A_TIE = [206] * 15 + [210]  # 3300 levels = 51.5625 codes


@pytest.fixture(scope="module")
def device():
    return load_device("taox_rram_40nm", {"adc": {"bits": 8}})


def _crossbar(device) -> Crossbar:
    """Columns: +51.5 codes, +50.5 codes, -51.5 codes, 51.5625 codes (levels above)."""
    step = device.levels.step_us
    k_pos = np.array([TIE_UP, TIE_DOWN, [0] * N_ROWS, NOT_A_TIE], dtype=np.int64).T
    k_neg = np.array([[0] * N_ROWS, [0] * N_ROWS, TIE_UP, [0] * N_ROWS], dtype=np.int64).T
    return Crossbar(device, k_pos * step, k_neg * step, SCALE, seed=1)


def _exact_codes(device, k_pos, k_neg) -> list[int]:
    """Codes in exact rational arithmetic: levels summed, times unit / step, rounded half to even."""
    bits, range_us, step_us = device.adc.bits, Fraction(device.adc.range_us), Fraction(device.levels.step_us)
    codes_per_level = step_us * 2 ** (bits - 1) / range_us  # (scale step_us) / (scale range_us / 2^(bits-1))
    sums = (np.asarray(k_pos) - np.asarray(k_neg)).sum(axis=0)
    return [round(int(s) * codes_per_level) for s in sums]  # Python's round: half to even


def test_the_tie_rule_is_half_to_even_in_code_units():
    x = np.array([51.5, 50.5, -51.5, -50.5, 0.5, 1.5, 126.5, 127.5, -200.0])
    assert adc_codes(x, 127).tolist() == [52, 50, -52, -50, 0, 2, 126, 127, -127]


def test_crossbar_mvm_and_the_reservoir_give_the_same_code_at_exact_ties(device):
    xb = _crossbar(device)
    assert xb.adc is not None and xb.adc.bits == 8
    unit = SCALE * device.levels.step_us
    assert float(xb.adc.codes_per_unit(unit)[0]) == 1 / 64  # 64 levels per code, exactly
    exact = _exact_codes(device, np.array([TIE_UP, TIE_DOWN, [0] * N_ROWS, NOT_A_TIE]).T,
                         np.array([[0] * N_ROWS, [0] * N_ROWS, TIE_UP, [0] * N_ROWS]).T)
    assert exact == [52, 50, -52, 52]

    # Crossbar.mvm: binary input on all rows, no read noise
    mvm_codes = xb.mvm(np.ones(N_ROWS), noise=False) / xb.adc.step[0]
    assert np.array_equal(mvm_codes, np.array(exact, float))

    # the reservoir: the same crossbar as its input crossbar, one read of input tile 0
    rec = Crossbar(device, np.zeros((4, 4)), np.zeros((4, 4)), SCALE, seed=2)
    enc = LSMEncoder.from_crossbars(xb, rec, LSMConfig(scale=SCALE, backend="numpy"))
    syn = enc.synapses()
    assert syn.integer and syn.adc is not None
    (read,) = numpy_ref.reads(syn, np.arange(N_ROWS), np.ones(N_ROWS, np.int64), np.zeros(4, bool), n_planes=1)
    code, _ = numpy_ref.read_output(syn, read, t=0, sample=0, noisy=False)
    assert code.tolist() == exact


def test_the_weight_unit_rule_it_replaces_disagreed_here(device):
    """The replaced rule, ``rint(p * gain / step)`` on the float sum ``p`` of the weights
    (``unit * level`` each), gives 51 for the 51.5-code tie: the sum is rounded in float64 before
    the ADC sees it. The level sum in code units gives 52."""
    step = SCALE * device.adc.range_us / 2 ** (device.adc.bits - 1)
    unit = SCALE * device.levels.step_us
    p = 0.0
    for k in TIE_UP:
        p += unit * k
    assert np.rint(p * (1.0 / step)) == 51
    adc = TileADC(8, np.array([step]))
    assert adc.quantize(np.array([[float(sum(TIE_UP))]]), unit=unit)[0, 0] == 52 * step
