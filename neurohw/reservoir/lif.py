"""The leaky integrate-and-fire neuron of the reservoir, as a pure function (Norse style).

Discrete time, one step per time bin (dt = 1 bin; ``decay`` is the per-bin leak factor, given
directly). As a continuous LIF ``tau dv/dt = -v + r I`` it is the forward-Euler step,
``decay = 1 - dt / tau`` (the form neurohw's NIR export writes and snnTorch's and Norse's NIR
importers step; ``exp(-dt / tau)`` would be the exact solution, a slightly different ``tau``).
Hard reset, recurrence from the previous step's spikes, exactly as the reference scripts of
Lin et al. (Nat. Comput. Sci. 5:37-47, 2025) run it::

    mem[t] = mem[t-1] * decay * (1 - s[t-1]) + I[t]          (reset="hard")
    mem[t] = mem[t-1] * decay - v_th * s[t-1] + I[t]         (reset="subtract")
    s[t]   = mem[t] > v_th                                    (strict: mem == v_th does not fire)
    I[t]   = W_in^T x[t] + W_rec^T s[t-1]                     (the crossbar reads)

Evaluation order, identical in every backend (it matters only in the last bit):
``leak = 0 if s[t-1] else mem*decay`` (hard) or ``leak = mem*decay; leak -= v_th if s[t-1]``
(subtract); then ``mem = leak + I``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LIFParameters(NamedTuple):
    """``v_th``: threshold (weight units); ``decay``: leak factor per step in (0, 1];
    ``reset``: "hard" (to 0) or "subtract" (``v_th`` is taken off)."""

    v_th: float = 5.0
    decay: float = 0.9
    reset: str = "hard"


class LIFState(NamedTuple):
    """Membrane ``mem`` (float64) and the previous step's spikes ``s`` (bool), same shape."""

    mem: np.ndarray
    s: np.ndarray


def lif_initial_state(shape) -> LIFState:
    """All neurons at rest: ``mem = 0``, no spikes."""
    return LIFState(np.zeros(shape, dtype=np.float64), np.zeros(shape, dtype=bool))


def lif_step(current: np.ndarray, state: LIFState, p: LIFParameters) -> tuple[np.ndarray, LIFState]:
    """One step: ``(s[t], LIFState(mem[t], s[t]))`` from the input current ``I[t]``.

    ``current`` is the total synaptic input of this step (weight units), computed from the
    previous step's spikes ``state.s`` by the caller (the crossbar reads).
    """
    leak = state.mem * p.decay
    if p.reset == "hard":
        leak = np.where(state.s, 0.0, leak)
    elif p.reset == "subtract":
        leak = np.where(state.s, leak - p.v_th, leak)
    else:
        raise ValueError(f"reset must be 'hard' or 'subtract', got {p.reset!r}")
    mem = leak + current
    s = mem > p.v_th
    return s, LIFState(mem, s)
