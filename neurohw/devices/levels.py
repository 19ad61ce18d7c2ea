"""Discrete conductance levels: cells that sit on multiples of a step ``step_us``.

A macro knows its conductances only through a quantised readout (write-verify reads, the ADC),
so a device with ``levels.step_us`` keeps every formed and programmed conductance on the grid
``G = k * step_us`` (k integer). With a power-of-two step, differences and scalings of levels
are exact in float64, which makes ``W == unit * Wq`` hold bit for bit.
"""

from __future__ import annotations

import numpy as np


def snap(g_us: np.ndarray, step_us: float | None) -> np.ndarray:
    """Round conductances to the nearest level ``k * step_us`` (identity when ``step_us`` is None)."""
    g_us = np.asarray(g_us, dtype=np.float64)
    if step_us is None:
        return g_us
    return np.rint(g_us / step_us) * step_us


def level_indices(g_us: np.ndarray, step_us: float) -> np.ndarray | None:
    """The integer levels ``k`` with ``g == k * step_us`` exactly, or None if any cell is off the grid."""
    g_us = np.asarray(g_us, dtype=np.float64)
    k = np.rint(g_us / step_us)
    if not np.all(k * step_us == g_us) or np.any(np.abs(k) > 2**31 - 1):
        return None
    return k.astype(np.int64)
