"""Stuck-at cells: cells that ignore forming and programming and sit at a fixed conductance.

Each cell is independently stuck on with probability ``p_on`` (at ``g_on_us``), stuck off with
``p_off`` (at ``g_off_us``), or free. Draw: one uniform ``u`` per cell; ``u < p_on`` -> on,
``p_on <= u < p_on + p_off`` -> off.
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.levels import snap
from neurohw.devices.model import Stuck

FREE, ON, OFF = 0, 1, 2


def sample_stuck(stuck: Stuck, shape, rng: np.random.Generator) -> np.ndarray:
    """A uint8 code per cell: 0 free, 1 stuck on, 2 stuck off."""
    u = rng.random(size=shape)
    code = np.zeros(shape, dtype=np.uint8)
    code[u < stuck.p_on] = ON
    code[(u >= stuck.p_on) & (u < stuck.p_on + stuck.p_off)] = OFF
    return code


def apply_stuck(g_us: np.ndarray, code: np.ndarray, stuck: Stuck, step_us: float | None = None) -> np.ndarray:
    """``g_us`` with stuck cells replaced by their stuck conductance (on the level grid, if any)."""
    g = np.array(g_us, dtype=np.float64, copy=True)
    g[code == ON] = snap(np.float64(stuck.g_on_us), step_us)
    g[code == OFF] = snap(np.float64(stuck.g_off_us), step_us)
    return g
