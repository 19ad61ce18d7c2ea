"""The weight scale that gives a target firing rate, by bisection.

A random reservoir's firing rate depends on how many inputs are active, so a fixed ``scale``
does not carry over between datasets; finding the scale to a target mean rate (e.g. 6 %) does
(measured on the embedded datasets). The rate grows with the scale (more current per spike and
per input) until it saturates; the search brackets the target on a log scale, then bisects.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from neurohw.errors import ConfigError


#: weight per uS: the input crossbar's scale of the N-MNIST reference configuration (the public
#: scripts of Lin et al., Nat. Comput. Sci. 2025: 256 inputs, 200 neurons, v_th 5.0, decay 0.90;
#: experiments/nmnist_lsm.yaml); the first guess of :func:`find_scale` and LSM()'s default
REFERENCE_SCALE = 0.07


def find_scale(rate_of: Callable[[float], float], target: float, start: float = REFERENCE_SCALE, rel_tol: float = 0.02,
               max_iter: int = 40) -> float:
    """The scale ``s`` with ``rate_of(s)`` within ``rel_tol * target`` of ``target``.

    ``rate_of``: mean firing rate (spikes per neuron per step) at scale ``s`` (deterministic:
    noise off). ``start``: first guess (:data:`REFERENCE_SCALE`). Brackets by
    doubling/halving, then bisects ``log s``; returns the best scale found within
    ``max_iter`` evaluations. Raises ConfigError when no scale in [1e-9, 1e9] brackets the target.
    """
    if not 0 < target < 1:
        raise ConfigError(f"target_rate must be in (0, 1), got {target}")
    cache: dict[float, float] = {}

    def f(s: float) -> float:
        if s not in cache:
            cache[s] = float(rate_of(s))
        return cache[s]

    lo = hi = float(start)
    if f(start) < target:
        while f(hi) < target:
            lo, hi = hi, hi * 2.0
            if hi > 1e9:
                raise ConfigError(f"target_rate {target} is not reached at any scale up to 1e9 (max rate {f(lo):.4f}); lower target_rate")
    else:
        while f(lo) >= target:
            hi, lo = lo, lo / 2.0
            if lo < 1e-9:
                raise ConfigError(f"target_rate {target} is exceeded even at scale 1e-9; raise target_rate or check the inputs")
    best = min((lo, hi), key=lambda s: abs(f(s) - target))
    for _ in range(max_iter):
        if abs(f(best) - target) <= rel_tol * target:
            break
        mid = math.sqrt(lo * hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        best = min((best, mid), key=lambda s: abs(f(s) - target))
    return best
