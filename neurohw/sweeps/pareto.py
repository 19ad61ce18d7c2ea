"""The Pareto front of a multi-objective search: which trials no other trial beats on every
objective, and the hypervolume they enclose.

Objectives are given with a direction each (``maximize`` / ``minimize``). Everything here works
on a copy turned into minimisation (a maximised objective negated), so:

- trial ``a`` *dominates* ``b`` when ``a`` is no worse on every objective and strictly better on
  at least one; the *front* is the set of trials no other trial dominates (two trials with equal
  values are both on it);
- the *hypervolume* of a set of points with respect to a reference point ``r`` (worse than every
  point on every objective) is the volume of the union of the boxes ``[p, r]``: the part of
  objective space the set dominates up to ``r``. Computed exactly: in 1-D the length
  ``r - min p``; in k-D by slicing along the first objective (the points sorted by it; between
  consecutive values ``x_i`` and ``x_(i+1)`` the slab of width ``x_(i+1) - x_i`` has the
  (k-1)-D hypervolume of the points ``p`` with ``p_0 <= x_i``), which is exact and takes
  ``O(n^k)`` time: fine for the hundreds of trials of a search with two to four objectives
  (While, Hingston, Barone and Huband, "A faster algorithm for calculating hypervolume",
  IEEE Trans. Evol. Comput. 10(1), 2006: the HSO algorithm).

:func:`normalized` maps each objective onto ``[0, 1]`` (0 the best value over the trials, 1 the
worst) so that a hypervolume is a fraction of a box and objectives in joules and in cells weigh
alike; the search's hypervolume curve uses the reference point ``1.1`` in every normalised
objective (10 % beyond the worst trial, so the worst trials still add volume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIRECTIONS = ("maximize", "minimize")


def as_minimization(values, directions: Sequence[str]) -> np.ndarray:
    """``values`` (n, k) as a float64 array to be minimised: maximised columns negated."""
    v = np.array(values, dtype=np.float64, ndmin=2)
    if v.shape[1] != len(directions):
        raise ValueError(f"{v.shape[1]} objectives but {len(directions)} directions")
    for j, d in enumerate(directions):
        if d not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {d!r}")
        if d == "maximize":
            v[:, j] = -v[:, j]
    if not np.all(np.isfinite(v)):
        raise ValueError("objective values must be finite numbers")
    return v


def non_dominated(values, directions: Sequence[str]) -> np.ndarray:
    """A boolean mask over the rows of ``values`` (n, k): True for the front (module doc)."""
    v = as_minimization(values, directions) if len(values) else np.zeros((0, len(directions)))
    n = len(v)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = np.all(v <= v[i], axis=1)
        better = np.any(v < v[i], axis=1)
        if np.any(no_worse & better):
            mask[i] = False
    return mask


def normalized(values, directions: Sequence[str], span=None) -> np.ndarray:
    """``values`` (n, k) as minimisation in ``[0, 1]`` per objective: 0 at the best, 1 at the
    worst of ``span`` (default: ``values`` themselves); a constant objective maps to 0."""
    v = as_minimization(values, directions)
    s = v if span is None else as_minimization(span, directions)
    lo, hi = s.min(axis=0), s.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return (v - lo) / width


def hypervolume(points, reference) -> float:
    """The exact hypervolume of minimisation ``points`` (n, k) up to ``reference`` (k,) (module
    doc); points not strictly better than the reference on every objective add nothing."""
    p = np.array(points, dtype=np.float64, ndmin=2)
    r = np.asarray(reference, dtype=np.float64)
    if p.size == 0:
        return 0.0
    if p.shape[1] != r.shape[0]:
        raise ValueError(f"points have {p.shape[1]} objectives, the reference {r.shape[0]}")
    p = p[np.all(p < r, axis=1)]
    return _hso(p, r)


def _hso(p: np.ndarray, r: np.ndarray) -> float:
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(r[0] - p[:, 0].min())
    p = p[np.argsort(p[:, 0], kind="stable")]
    xs = p[:, 0]
    total = 0.0
    for i in range(len(p)):
        upper = xs[i + 1] if i + 1 < len(p) else r[0]
        width = upper - xs[i]
        if width > 0:
            total += width * _hso(p[: i + 1, 1:], r[1:])
    return float(total)


def hypervolume_history(values, directions: Sequence[str], reference: float = 1.1) -> np.ndarray:
    """The hypervolume of the first ``i + 1`` rows of ``values`` (n, k), for every ``i``: on
    objectives normalised over all the rows, up to ``reference`` in each (module doc)."""
    v = normalized(values, directions)
    r = np.full(v.shape[1], float(reference))
    out = np.zeros(len(v))
    front = np.zeros((0, v.shape[1]))
    for i, row in enumerate(v):
        pts = np.vstack([front, row])
        front = pts[non_dominated(pts, ["minimize"] * v.shape[1])]
        out[i] = hypervolume(front, r)
    return out
