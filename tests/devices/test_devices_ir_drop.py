"""First-order IR drop against the exact nodal solution of the resistive network."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from neurohw.crossbar import Crossbar
from neurohw.devices.ir_drop import attenuation
from neurohw.devices.model import load_device


def exact_column_currents(g_us: np.ndarray, r_ohm: float, v: float = 0.2) -> np.ndarray:
    """Kirchhoff's current law on the full network: word lines driven at column 0 through r,
    bit lines sensed at virtual ground below the last row through r; returns I per column (A)."""
    rows, cols = g_us.shape
    g = g_us * 1e-6
    gw = 1.0 / r_ohm
    n = rows * cols

    def R(i, j):  # word-line node
        return i * cols + j

    def C(i, j):  # bit-line node
        return n + i * cols + j

    A = lil_matrix((2 * n, 2 * n))
    b = np.zeros(2 * n)

    def link(a, c, cond):
        A[a, a] += cond
        A[c, c] += cond
        A[a, c] -= cond
        A[c, a] -= cond

    for i in range(rows):
        A[R(i, 0), R(i, 0)] += gw  # driver at V
        b[R(i, 0)] += gw * v
        for j in range(cols):
            if j + 1 < cols:
                link(R(i, j), R(i, j + 1), gw)
            link(R(i, j), C(i, j), g[i, j])
            if i + 1 < rows:
                link(C(i, j), C(i + 1, j), gw)
    for j in range(cols):
        A[C(rows - 1, j), C(rows - 1, j)] += gw  # sense amp at 0 V
    phi = spsolve(A.tocsr(), b)
    return gw * phi[n + (rows - 1) * cols : n + rows * cols]


@pytest.mark.parametrize("r_ohm", [1.0, 10.0])
def test_first_order_beats_ideal_against_exact_network(r_ohm):
    g = np.random.default_rng(0).uniform(5.0, 30.0, size=(24, 16))
    v = 0.2
    exact = exact_column_currents(g, r_ohm, v)
    ideal = v * g.sum(axis=0) * 1e-6
    first = v * (g * (1 - attenuation(g, r_ohm))).sum(axis=0) * 1e-6
    err_ideal = np.abs(ideal - exact).max() / exact.max()
    err_first = np.abs(first - exact).max() / exact.max()
    eps = attenuation(g, r_ohm).max()
    assert err_ideal > 0.5 * eps  # the drop is real at this size
    assert err_first < 0.1 * err_ideal  # first order removes > 90 % of it
    assert err_first < 2 * eps**2  # and what remains is second order


def test_crossbar_ir_drop_lowers_weights_and_disables_integer_form():
    dev = load_device("taox_rram_40nm", {"ir_drop": {"enabled": True, "wire_resistance_ohm": 1.0}})
    xb = Crossbar.from_forming(dev, 64, 32, scale=1.0, seed=0)
    gp, gn = xb.conductances()
    assert np.all(gp <= xb.g_pos) and np.all(gn <= xb.g_neg)
    assert (gp < xb.g_pos).any()
    assert xb.integer_weights() is None
    np.testing.assert_allclose(xb.weights(), gp - gn)
