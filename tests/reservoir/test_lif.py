"""The LIF step against a hand computation, and the counter-based normal draws (Philox4x32-7
words, float32 Box-Muller normals) against known answers, closed forms and distribution tests."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy import stats

from neurohw.reservoir.lif import LIFParameters, lif_initial_state, lif_step
from neurohw.reservoir.rng import R_MAX, ROUNDS, angle, angle_nb, column_gaussians_nb, column_normals, philox4x32, philox4x32_nb, radius2, radius2_nb

# The 3-neuron, 4-step case (worked by hand below; all values are dyadic, so exact in float).
W_IN = np.array([[0.75, 0.5, 0.0], [0.5, 0.0, 1.25]])  # input i -> neuron j
W_REC = np.array([[0.0, 0.5, -0.25], [0.0, 0.0, 0.0], [0.25, 0.0, 0.0]])  # neuron k -> neuron j
X = np.array([[1, 1], [1, 0], [0, 1], [1, 1]])
V_TH, DECAY = 1.0, 0.5
# hard reset, mem[t] = mem[t-1]*decay*(1-s[t-1]) + W_in^T x[t] + W_rec^T s[t-1]:
# t0: I = [1.25, .5, 1.25]                       mem = [1.25, .5, 1.25]   s = [1,0,1]
# t1: leak [0, .25, 0]; I_in [.75,.5,0] + I_rec rows 0,2 [.25,.5,-.25]
#                                                mem = [1.0, 1.25, -.25]  s = [0,1,0] (1.0 is not > 1.0)
# t2: leak [.5, 0, -.125]; I_in [.5,0,1.25] + I_rec row 1 [0,0,0]
#                                                mem = [1.0, 0, 1.125]    s = [0,0,1]
# t3: leak [.5, 0, 0]; I_in [1.25,.5,1.25] + I_rec row 2 [.25,0,0]
#                                                mem = [2.0, .5, 1.25]    s = [1,0,1]
HAND_SPIKES = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=bool)
HAND_MEM = np.array([2.0, 0.5, 1.25])
# reset by subtraction, mem[t] = mem[t-1]*decay - v_th*s[t-1] + I[t]:
# t1: [.625-1, .25, .625-1] + [1, 1, -.25] = [.625, 1.25, -.625]          s = [0,1,0]
# t2: [.3125, .625-1, -.3125] + [.5, 0, 1.25] = [.8125, -.375, .9375]      s = [0,0,0]
# t3: [.40625, -.1875, .46875] + [1.25, .5, 1.25] = [1.65625, .3125, 1.71875]  s = [1,0,1]
HAND_SPIKES_SUB = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=bool)
HAND_MEM_SUB = np.array([1.65625, 0.3125, 1.71875])


@pytest.mark.parametrize("reset, spikes, mem", [("hard", HAND_SPIKES, HAND_MEM), ("subtract", HAND_SPIKES_SUB, HAND_MEM_SUB)])
def test_lif_step_hand_case(reset, spikes, mem):
    p = LIFParameters(V_TH, DECAY, reset)
    state = lif_initial_state(3)
    got = []
    for t in range(4):
        current = X[t] @ W_IN + state.s @ W_REC
        s, state = lif_step(current, state, p)
        got.append(s)
    np.testing.assert_array_equal(np.array(got), spikes)
    np.testing.assert_array_equal(state.mem, mem)


def test_lif_threshold_is_strict_and_reset_checked():
    s, st = lif_step(np.array([1.0, 1.0 + 1e-12]), lif_initial_state(2), LIFParameters(1.0, 0.9))
    assert s.tolist() == [False, True]
    with pytest.raises(ValueError):
        lif_step(np.zeros(2), st, LIFParameters(1.0, 0.9, "soft"))


# Random123 tests/kat_vectors, "philox4x32 10" and "philox4x32 7" lines: counter (4), key (2) -> output (4)
KAT_CASES = [((0, 0, 0, 0), (0, 0)), ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2), ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0))]
KAT10 = [(0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD), (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)]
KAT7 = [(0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48), (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662), (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A)]


@pytest.mark.parametrize("case", range(3))
def test_philox_known_answers(case):
    assert ROUNDS == 7
    ctr, key = KAT_CASES[case]
    assert tuple(int(v) for v in philox4x32(*ctr, *key)) == KAT10[case]  # Random123's default
    assert tuple(int(v) for v in philox4x32(*ctr, *key, rounds=ROUNDS)) == KAT7[case]  # the reservoir's
    assert tuple(int(v) for v in philox4x32_nb(*(np.uint64(v) for v in ctr + key))) == KAT7[case]


def _edge_words():
    rng = np.random.default_rng(1)
    edges = [0, 1, 2, 2**23 - 1, 2**23, 2**24 - 1, 2**24, 2**31 - 1, 2**31, 2**32 - 129, 2**32 - 128, 2**32 - 1]
    return np.concatenate([rng.integers(0, 2**32, 200_000), np.arange(4096), 2**32 - 1 - np.arange(4096), edges]).astype(np.uint32)


def test_box_muller_parts_match_closed_forms_and_numba():
    """The float32 radius and angle against float64 closed forms, and the numba twins bit for
    bit (the cpu backend draws with those)."""
    w = _edge_words()
    r2 = radius2(w)
    u = (w.astype(np.float32) + np.float32(0.5)).astype(np.float64) / 2**32  # the float32 u, exactly
    exact = -2.0 * np.log(u)
    assert np.all(np.abs(r2 - exact) <= 4e-7 * np.maximum(exact, 1.0))  # float32 ln to a few ulp
    assert float(radius2(np.uint32(0))) == pytest.approx(66 * np.log(2), rel=1e-6)  # the largest radius^2
    c, s = angle(w)
    theta = 2 * np.pi * ((w >> 8).astype(np.float64) + 0.5) / 2**24
    assert np.max(np.abs(c - np.cos(theta))) < 3e-7 and np.max(np.abs(s - np.sin(theta))) < 3e-7

    @njit(error_model="numpy")
    def nb(ws):
        r, cc, ss = np.empty(ws.shape[0], np.float32), np.empty(ws.shape[0], np.float32), np.empty(ws.shape[0], np.float32)
        for i in range(ws.shape[0]):
            r[i] = radius2_nb(ws[i])
            cc[i], ss[i] = angle_nb(ws[i])
        return r, cc, ss

    rn, cn, sn = nb(w)
    np.testing.assert_array_equal(rn, r2)
    np.testing.assert_array_equal(cn, c)
    np.testing.assert_array_equal(sn, s)


def test_column_normals_are_standard_normal_and_counter_keyed():
    """2.4 M draws over steps, streams and columns: moments, KS, 3-sigma tail mass, no
    correlation between streams or between a Box-Muller pair's cosine and sine; the numba draws
    equal numpy's; another seed gives other draws. (10^7 draws and the exact tails:
    benchmarks/rng_study.py, quoted in docs/internals.md.)"""
    z = column_normals(5, 997, np.arange(1200)[:, None], 3, np.arange(2)[None, :])  # (1200, 2, 997)
    flat = z.ravel().astype(np.float64)
    n = flat.size
    assert abs(flat.mean()) < 4 / np.sqrt(n)
    assert abs(flat.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(flat)) < 4 * np.sqrt(6 / n) and abs(stats.kurtosis(flat)) < 4 * np.sqrt(24 / n)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    p3 = 2 * stats.norm.sf(3)
    assert abs(np.mean(np.abs(flat) > 3) - p3) < 4 * np.sqrt(p3 / n)
    assert np.abs(flat).max() <= R_MAX
    assert abs(np.corrcoef(z[:, 0, :].ravel(), z[:, 1, :].ravel())[0, 1]) < 4 / np.sqrt(z[:, 0].size)
    nb = (997 + 3) // 4  # columns j and nb + j: the cosine and sine of one Box-Muller pair
    pair_c, pair_s = z[:, 0, :nb].ravel(), z[:, 0, nb : 2 * nb].ravel()
    assert abs(np.corrcoef(pair_c, pair_s)[0, 1]) < 4 / np.sqrt(pair_c.size)
    assert abs(np.corrcoef(pair_c**2, pair_s**2)[0, 1]) < 4 / np.sqrt(pair_c.size)  # independent, not merely uncorrelated
    r2, g = np.empty(4 * nb, np.float32), np.empty(4 * nb, np.float32)
    column_gaussians_nb(r2, g, np.empty(4 * nb, np.uint32), np.uint64(5), np.uint64(0), 17, 3, 1)
    np.testing.assert_array_equal(np.sqrt(r2[:997]) * g[:997], z[17, 1])
    assert not np.array_equal(column_normals(6, 997, 17, 3, 1), z[17, 1])  # another seed, other draws
