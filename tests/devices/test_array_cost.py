"""The array cost of an encoder, counted by hand on small tiles and on the reference macro."""

from __future__ import annotations

import pytest

from neurohw.devices.array_cost import array_cost, lsm_shapes
from neurohw.devices.model import load_device


def test_array_cost_by_hand():
    dev = load_device("ideal", {"array": {"rows": 4, "cols": 6}, "adc": {"bits": 5, "range_us": 10.0}})  # tiles: 4 inputs x 3 pairs
    # input 10 x 7: 3 row tiles x 3 column tiles; recurrent 7 x 7: 2 row tiles x 3 column tiles
    cost = array_cost(dev, lsm_shapes(10, 7))
    assert cost == {"cells": 2 * 10 * 7 + 2 * 7 * 7, "tiles": 3 * 3 + 2 * 3, "adc_columns": 3 * 7 + 2 * 7,
                    "adc_bit_columns": 5 * (3 * 7 + 2 * 7)}
    assert array_cost(load_device("ideal"), [(3, 3)])["adc_bit_columns"] == 0  # no ADC
    with pytest.raises(ValueError):
        array_cost(dev, [(0, 3)])


def test_reference_macro_holds_a_128_neuron_reservoir_on_two_tiles():
    cost = array_cost(load_device("taox_rram_40nm"), lsm_shapes(98, 128))  # 512 x 256-pair tiles, 14-bit ADC
    assert cost == {"cells": 2 * 98 * 128 + 2 * 128 * 128, "tiles": 2, "adc_columns": 256, "adc_bit_columns": 14 * 256}
