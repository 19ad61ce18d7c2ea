"""The Pareto front and its hypervolume against independent computations: a brute-force
dominance check written here from the definition, hypervolumes counted by hand and by unit
voxels on an integer grid."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurohw.sweeps.pareto import hypervolume, hypervolume_history, non_dominated, normalized


def _brute_front(rows, directions):
    """Indices of the rows no other row dominates, straight from the definition."""
    def better_or_equal(a, b, d):
        return a >= b if d == "maximize" else a <= b

    def strictly_better(a, b, d):
        return a > b if d == "maximize" else a < b

    front = []
    for i, a in enumerate(rows):
        beaten = False
        for j, b in enumerate(rows):
            if i != j and all(better_or_equal(y, x, d) for x, y, d in zip(a, b, directions)) and \
                    any(strictly_better(y, x, d) for x, y, d in zip(a, b, directions)):
                beaten = True
                break
        if not beaten:
            front.append(i)
    return front


@pytest.mark.parametrize("directions", [("maximize", "minimize"), ("maximize", "minimize", "minimize"),
                                        ("minimize", "minimize", "minimize", "maximize")])
def test_the_front_equals_a_brute_force_filter(directions):
    rng = np.random.default_rng(len(directions))
    for trial in range(30):
        n = int(rng.integers(1, 40))
        rows = rng.integers(0, 6, size=(n, len(directions))).tolist()  # small integers: many ties
        mask = non_dominated(rows, directions)
        assert np.flatnonzero(mask).tolist() == _brute_front(rows, directions)


def test_hypervolume_by_hand():
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == pytest.approx(1 + 2 + 3)  # a staircase of three steps
    assert hypervolume([[1, 1, 1]], [2, 2, 2]) == pytest.approx(1.0)
    assert hypervolume([[0, 1, 1], [1, 0, 1]], [2, 2, 2]) == pytest.approx(2 + 2 - 1)  # two boxes overlapping in a unit cube
    assert hypervolume([[3, 0], [5, 5]], [4, 4]) == pytest.approx(1 * 4)  # the second point lies beyond the reference
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_equals_counted_voxels():
    rng = np.random.default_rng(3)
    for k in (2, 3):
        for _ in range(10):
            pts = rng.integers(0, 5, size=(int(rng.integers(1, 9)), k))
            ref = np.full(k, 5)
            count = sum(1 for cell in itertools.product(range(5), repeat=k) if np.any(np.all(pts <= np.array(cell), axis=1)))
            assert hypervolume(pts, ref) == pytest.approx(count)


def test_hypervolume_history_grows_to_the_whole_front():
    rng = np.random.default_rng(5)
    vals = np.column_stack([rng.random(25), rng.random(25) * 1e-9, rng.integers(100, 5000, 25)])
    directions = ["maximize", "minimize", "minimize"]
    hist = hypervolume_history(vals, directions)
    assert np.all(np.diff(hist) >= -1e-12)
    v = normalized(vals, directions)
    # the last value: every point's normalised box [v, 1.1]^3, counted by Monte Carlo as a loose independent check
    probe = rng.random((200_000, 3)) * 1.1
    covered = np.zeros(len(probe), dtype=bool)
    for p in v:
        covered |= np.all(probe >= p, axis=1)
    assert hist[-1] == pytest.approx(covered.mean() * 1.1 ** 3, rel=0.01)
    assert hist[-1] == pytest.approx(hypervolume(v[non_dominated(vals, directions)], [1.1] * 3))
