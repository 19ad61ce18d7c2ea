"""How inputs reach the word lines: quantisation and bit-serial planes.

An input vector ``x`` is applied as a list of *planes* ``(c_k, P_k)`` with
``x_applied = sum_k c_k P_k``; each plane is one array read (fresh read noise, its own ADC
conversion), and the digital side accumulates ``sum_k c_k * read(P_k)``.

- ``bits: null``: one analog plane, ``P = x``, ``c = 1`` (exact, any sign).
- ``bits: n``: codes ``q = clip(rint(|x| / v), 0, 2^n - 1)`` with the code value ``v = 1``
  (``full_scale: null``: inputs are integer codes) or ``v = full_scale / (2^n - 1)``.
  ``bit_serial``: planes ``P_b = (q >> b) & 1`` with ``c_b = v 2^b`` (binary planes; a binary
  input is one plane). Otherwise one amplitude plane ``P = q`` with ``c = v`` (e.g. PWM).
  Negative inputs take the same planes again for ``|x|`` of the negative entries, with ``-c``.
Planes that are zero for the whole batch are not read.
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.model import InputSpec


def quantize_inputs(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The applied input value ``sum_k c_k P_k`` (what the array actually sees), float64."""
    return sum((c * p for c, p in encode(x, spec)), start=np.zeros(np.shape(x)))


def encode(x: np.ndarray, spec: InputSpec) -> list[tuple[float, np.ndarray]]:
    """Split inputs ``x`` (..., n_in) into ``[(coefficient, plane), ...]`` (see the module doc)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs must be finite")
    if spec.bits is None:
        return [(1.0, x)] if np.any(x) else []
    if spec.full_scale is None and np.all((x == 0.0) | (x == 1.0)):  # binary codes: one plane
        return [(1.0, x)] if np.any(x) else []
    top = 2**spec.bits - 1
    v = 1.0 if spec.full_scale is None else spec.full_scale / top
    planes: list[tuple[float, np.ndarray]] = []
    for sign in (1.0, -1.0):
        mag = np.where(sign * x > 0, np.abs(x), 0.0)
        if not np.any(mag):
            continue
        q = np.clip(np.rint(mag / v), 0, top).astype(np.int64)
        if spec.bit_serial:
            for b in range(spec.bits):
                plane = ((q >> b) & 1).astype(np.float64)
                if np.any(plane):
                    planes.append((sign * v * 2.0**b, plane))
        elif np.any(q):
            planes.append((sign * v, q.astype(np.float64)))
    return planes
