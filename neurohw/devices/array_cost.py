"""What an encoder occupies on the macro: the array cost of a co-design trade-off.

For crossbars of ``n_in x n_out`` logical weights on a device whose tiles hold ``tile_rows``
inputs by ``tile_cols`` differential pairs (:class:`neurohw.devices.model.DeviceModel`), summed
over the crossbars (an LSM has two per modality: input ``n_inputs x n_neurons`` and recurrent
``n_neurons x n_neurons``):

- ``cells``: programmed RRAM cells, ``2 n_in n_out`` (two per differential pair) [cells];
- ``tiles``: arrays the crossbar spans, ``ceil(n_in / tile_rows) ceil(n_out / tile_cols)``
  [tiles of ``tile_rows x 2 tile_cols`` cells];
- ``adc_columns``: column converters in use, one per pair in every row tile,
  ``ceil(n_in / tile_rows) n_out`` [converters]; each row tile's partial sum is converted on
  its own (:class:`neurohw.crossbar.Crossbar`);
- ``adc_bit_columns``: ``adc.bits x adc_columns`` [bit x converters], a first-order proxy of
  the converters' area (0 without an ADC).

These count what the model simulates; the periphery around the array (drivers, sense amplifiers,
digital control, buffers) is not in them (docs/sweeps.md, "How far to trust the front").
"""

from __future__ import annotations

from collections.abc import Iterable

#: the array cost's quantities, in the order metrics.json lists them, with their units
ARRAY_COSTS = {"cells": "cells", "tiles": "tiles", "adc_columns": "converters", "adc_bit_columns": "bit x converters"}


def array_cost(device, shapes: Iterable[tuple[int, int]]) -> dict[str, int]:
    """The array cost (module doc) of crossbars ``shapes`` ((n_in, n_out) logical weights each)
    on ``device`` (a DeviceModel)."""
    rows, pairs = device.tile_rows, device.tile_cols
    bits = device.adc.bits or 0
    out = dict.fromkeys(ARRAY_COSTS, 0)
    for n_in, n_out in shapes:
        if n_in < 1 or n_out < 1:
            raise ValueError(f"a crossbar needs n_in >= 1 and n_out >= 1, got {n_in} x {n_out}")
        row_tiles = -(-n_in // rows)
        out["cells"] += 2 * n_in * n_out
        out["tiles"] += row_tiles * -(-n_out // pairs)
        out["adc_columns"] += row_tiles * n_out
    out["adc_bit_columns"] = bits * out["adc_columns"]
    return out


def lsm_shapes(n_inputs: int, n_neurons: int) -> list[tuple[int, int]]:
    """An LSM encoder's two crossbars: input ``n_inputs x n_neurons``, recurrent ``n_neurons x n_neurons``."""
    return [(n_inputs, n_neurons), (n_neurons, n_neurons)]
