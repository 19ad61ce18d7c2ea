"""Drift compensation: a digital gain that undoes the mean conductance drift, estimated from a
reference read right after programming and another at read time.

The estimator is aihwkit's (IBM Analog Hardware Acceleration Kit: ``GlobalDriftCompensation``
and ``PerColumnDriftCompensation`` in ``aihwkit/inference/compensation/drift.py``, applied by
``InferenceTileWithPeriphery`` in ``aihwkit/simulator/tiles/inference.py``: ``program_weights``
takes the baseline, ``drift_weights(t)`` the current readout and ``post_forward`` multiplies the
tile's digital output by the ratio; documented under "Drift compensation" in
https://aihwkit.readthedocs.io/en/latest/pcm_inference.html):

- reference read: the crossbar is read with the one-hot input vectors (the identity matrix, one
  read per input row), so read ``i`` returns row ``i`` of the weights, ``y_ij = W_ij(t)``;
- readout: ``global``: ``r = mean_ij |y_ij|`` (one number per crossbar, aihwkit's tile);
  ``column``: ``r_j = mean_i |y_ij|`` (one per output column);
- gain: ``alpha = r(t_prog) / r(t)``, multiplied into every later read's digital output.

Two choices of neurohw: the reads are exact (no read noise, before the converter), as aihwkit's
``GlobalDriftCompensationWithExactReference`` takes its baseline; a calibration read averages
``n_in x n_out`` cells, so read noise would move the gain by ~``r / sqrt(n_in n_out)``
(1e-4 on a 392 x 256 crossbar). And a column whose readout is 0 (no conductance at all) keeps
gain 1, where aihwkit clamps the readout at 1e-4.
"""

from __future__ import annotations

import numpy as np

#: compensation modes: none, one gain per crossbar, one gain per output column
MODES = ("none", "global", "column")


def readout(weights: np.ndarray, mode: str) -> np.ndarray:
    """The reference readout of a crossbar whose one-hot reads give ``weights`` (n_in, n_out):
    ``global``: ``mean |W|`` broadcast to every column; ``column``: ``mean_i |W_ij|`` per column."""
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if mode == "global":
        return np.full(w.shape[1], w.mean())
    if mode == "column":
        return w.mean(axis=0)
    raise ValueError(f"drift compensation mode must be one of {MODES[1:]} for a readout, got {mode!r}")


def gains(reference: np.ndarray, current: np.ndarray, mode: str) -> np.ndarray:
    """Per-column digital gains ``alpha = readout(reference) / readout(current)`` (n_out,):
    ``reference`` the weights read right after programming, ``current`` those read now. ``none``:
    ones. A column whose current readout is 0 keeps gain 1."""
    n_out = np.shape(current)[1]
    if mode == "none":
        return np.ones(n_out)
    r0, rt = readout(reference, mode), readout(current, mode)
    out = np.ones(n_out)
    np.divide(r0, rt, out=out, where=rt > 0)
    return out
