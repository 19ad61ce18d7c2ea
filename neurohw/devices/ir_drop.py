"""First-order IR drop: wire resistance lowers the voltage a cell sees.

Geometry of one tile (``rows`` x ``cols`` physical cells, differential pairs in adjacent
columns 2j, 2j+1): each word line is driven at its column-0 end, each bit line is sensed at a
virtual ground below its last row; every wire segment between neighbouring cells (and from the
last cell to the driver/sense amp) has resistance ``r``.

First order (currents computed at the ideal voltages, then the resulting drops applied once;
all rows driven at the same voltage V, the worst case, so the model is input-independent):
    word line i, segment k (feeds cells k..cols-1):  I = V sum_{j' >= k} G_ij'
    drop at cell (i, j) on the word line:            V r sum_{k <= j} sum_{j' >= k} G_ij'
    bit line j, segment k (carries cells 0..k):      I = V sum_{i' <= k} G_i'j
    potential at cell (i, j) on the bit line:        V r sum_{k >= i} sum_{i' <= k} G_i'j
    G_eff_ij = G_ij (1 - eps_ij),  eps_ij = r [ sum_{k<=j} sum_{j'>=k} G_ij' + sum_{k>=i} sum_{i'<=k} G_i'j ]
with G in siemens (uS * 1e-6). Valid while eps << 1; the error is O(eps^2)
(tests/test_devices_ir_drop.py compares it with the exact nodal solution).
"""

from __future__ import annotations

import numpy as np


def attenuation(g_us: np.ndarray, r_ohm: float) -> np.ndarray:
    """``eps`` of every cell of one physical tile ``g_us`` (rows, cols), clipped to [0, 1)."""
    g = np.asarray(g_us, dtype=np.float64) * 1e-6
    row_seg = np.cumsum(g[:, ::-1], axis=1)[:, ::-1]  # sum_{j' >= k} G_ij'
    row_drop = np.cumsum(row_seg, axis=1)  # sum_{k <= j}
    col_seg = np.cumsum(g, axis=0)  # sum_{i' <= k} G_i'j
    col_rise = np.cumsum(col_seg[::-1], axis=0)[::-1]  # sum_{k >= i}
    return np.clip(r_ohm * (row_drop + col_rise), 0.0, 1.0 - 1e-12)


def effective_conductances(g_pos: np.ndarray, g_neg: np.ndarray, tile_rows: int, tile_cols: int, r_ohm: float) -> tuple[np.ndarray, np.ndarray]:
    """IR-drop-attenuated ``(g_pos, g_neg)`` (n_in, n_out) of a crossbar tiled as
    ``tile_rows`` inputs x ``tile_cols`` differential pairs per tile (pairs interleaved)."""
    n_in, n_out = g_pos.shape
    out_p = np.empty_like(g_pos, dtype=np.float64)
    out_n = np.empty_like(g_neg, dtype=np.float64)
    for r0 in range(0, n_in, tile_rows):
        for c0 in range(0, n_out, tile_cols):
            rs, cs = slice(r0, r0 + tile_rows), slice(c0, c0 + tile_cols)
            p, n = g_pos[rs, cs], g_neg[rs, cs]
            phys = np.empty((p.shape[0], 2 * p.shape[1]))
            phys[:, 0::2], phys[:, 1::2] = p, n
            eff = phys * (1.0 - attenuation(phys, r_ohm))
            out_p[rs, cs], out_n[rs, cs] = eff[:, 0::2], eff[:, 1::2]
    return out_p, out_n
