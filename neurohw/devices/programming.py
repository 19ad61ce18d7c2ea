"""Programming a target conductance with write-verify.

Model (one pulse): the cell lands at ``target + N(0, pulse_std_us)``, clipped to the
programming window ``[g_min_us, g_max_us]`` and read back on the level grid (if any). With
``write_verify`` the cell is verified after each pulse and re-pulsed while
``|g - target| > tolerance_us``, at most ``max_pulses`` pulses in all; without it, one pulse.
Each cell's pulse count is recorded. Without levels and clipping, one pulse succeeds with
``q = erf(tolerance / (pulse_std sqrt 2))``, so the pulse count is geometric truncated at
``M = max_pulses``: ``E[pulses] = (1 - (1-q)^M) / q``, converged fraction ``1 - (1-q)^M``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurohw.devices.levels import snap
from neurohw.devices.model import Programming


@dataclass(frozen=True)
class ProgramResult:
    """Programmed conductances (uS), pulses per cell, and whether each cell met the tolerance."""

    g_us: np.ndarray  # float64
    pulses: np.ndarray  # int32
    converged: np.ndarray  # bool


def program(targets_us: np.ndarray, prog: Programming, rng: np.random.Generator, step_us: float | None = None) -> ProgramResult:
    """Program ``targets_us`` (clipped to the window, snapped to levels) with write-verify."""
    target = snap(np.clip(np.asarray(targets_us, dtype=np.float64), prog.g_min_us, prog.g_max_us), step_us)
    g = np.empty_like(target)
    pulses = np.zeros(target.shape, dtype=np.int32)
    todo = np.ones(target.shape, dtype=bool)
    n_max = prog.max_pulses if prog.write_verify else 1
    for _ in range(n_max):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        t = target.flat[idx]
        reached = snap(np.clip(t + prog.pulse_std_us * rng.standard_normal(idx.size), prog.g_min_us, prog.g_max_us), step_us)
        g.flat[idx] = reached
        pulses.flat[idx] += 1
        ok = np.abs(reached - t) <= prog.tolerance_us
        if prog.write_verify:
            todo.flat[idx[ok]] = False
        else:
            todo[...] = False
    converged = np.abs(g - target) <= prog.tolerance_us
    return ProgramResult(g_us=g, pulses=pulses, converged=converged)


def expected_pulses(prog: Programming) -> float:
    """Closed-form mean pulse count without levels or clipping (see the module doc)."""
    from math import erf, sqrt

    if not prog.write_verify:
        return 1.0
    if prog.pulse_std_us == 0:
        return 1.0
    q = erf(prog.tolerance_us / (prog.pulse_std_us * sqrt(2)))
    if q == 0:
        return float(prog.max_pulses)
    return (1 - (1 - q) ** prog.max_pulses) / q
