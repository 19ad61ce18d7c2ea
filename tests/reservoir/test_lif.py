"""The LIF step against a hand computation, and the counter-based normal draws."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy import stats
from scipy.special import ndtri

from neurohw.reservoir.lif import LIFParameters, lif_initial_state, lif_step
from neurohw.reservoir.rng import column_normals, column_normals_nb, normal_from_word, normal_from_word_nb, philox4x32, philox4x32_nb

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


# Random123 tests/kat_vectors, "philox4x32 10" lines: counter (4), key (2) -> output (4)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0), (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(v) for v in philox4x32(*ctr, *key)) == expected
    assert tuple(int(v) for v in philox4x32_nb(*(np.uint64(v) for v in ctr + key))) == expected


def test_normal_from_word_matches_inverse_cdf_and_numba():
    rng = np.random.default_rng(1)
    w = np.concatenate([rng.integers(0, 2**32, 200_000), np.arange(2000), 2**32 - 1 - np.arange(2000)])
    z = normal_from_word(w)
    ref = ndtri((w + 0.5) / 2**32)
    assert np.max(np.abs(z - ref) / np.maximum(np.abs(ref), 1e-3)) < 1.2e-9  # Acklam's bound

    @njit(error_model="numpy")
    def nb(ws):
        out = np.empty(ws.shape[0])
        for i in range(ws.shape[0]):
            out[i] = normal_from_word_nb(ws[i])
        return out

    np.testing.assert_array_equal(nb(w.astype(np.int64)), z)  # bit for bit


def test_column_normals_are_standard_normal_and_counter_keyed():
    z = column_normals(5, 997, np.arange(200)[:, None], 3, np.arange(2)[None, :])  # (200, 2, 997)
    flat = z.ravel()
    assert abs(flat.mean()) < 4 / np.sqrt(flat.size)
    assert abs(flat.var() - 1) < 4 * np.sqrt(2 / flat.size)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    # columns and streams are not correlated with each other
    assert abs(np.corrcoef(z[:, 0, :].ravel(), z[:, 1, :].ravel())[0, 1]) < 4 / np.sqrt(z[:, 0].size)
    out = np.empty(997)
    column_normals_nb(out, np.empty(4 * 250, np.int64), np.uint64(5), np.uint64(0), 17, 3, 1)
    np.testing.assert_array_equal(out, z[17, 1])
    assert not np.array_equal(column_normals(6, 997, 17, 3, 1), z[17, 1])  # another seed, other draws


def test_central_word_range_selects_exactly_the_float_branch_test():
    """The integer range of Acklam's central branch (used by the numba draws to find the tail
    words) equals the float test ``|q| <= 0.5 - P_LOW`` at and around both edges."""
    from neurohw.reservoir.rng import CENTRAL_HI, CENTRAL_LO, INV_2_32, P_LOW

    def central(w):
        return abs((float(w) + 0.5) * INV_2_32 - 0.5) <= 0.5 - P_LOW

    for w in [*range(CENTRAL_LO - 3, CENTRAL_LO + 4), *range(CENTRAL_HI - 3, CENTRAL_HI + 4), 0, 2**31, 2**32 - 1]:
        assert central(w) == (CENTRAL_LO <= w <= CENTRAL_HI), w
    assert abs(CENTRAL_LO / 2**32 - P_LOW) < 1e-9 and CENTRAL_HI == 2**32 - 1 - CENTRAL_LO
