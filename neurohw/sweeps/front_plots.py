"""The plots of a multi-objective search: for each pair of objectives, every finished trial
faded behind the pair's own 2-D front (a step line) and the members of the full front (marked,
with their trial numbers), infeasible trials as crosses; and the hypervolume of the feasible
trials against the trial number (objectives normalised over the feasible trials, reference 1.1
in each: :func:`neurohw.sweeps.pareto.hypervolume_history`)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from neurohw.sweeps.front import TrialRow, objective_matrix
from neurohw.sweeps.objectives import unit_of
from neurohw.sweeps.pareto import hypervolume_history, non_dominated


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pair_path(folder: Path, x: str, y: str) -> Path:
    """The file of the plot of objective ``y`` against ``x``."""
    return folder / f"front__{y}__vs__{x}.png"


def _label(metric: str) -> str:
    return f"{metric} [{unit_of(metric)}]"


def _log(values: np.ndarray) -> bool:
    pos = values[values > 0]
    return len(pos) == len(values) and len(pos) > 1 and pos.max() / pos.min() > 100


def plot_pairs(folder: Path, search, rows: list[TrialRow], members: list[TrialRow]) -> list[Path]:
    """One PNG per pair of objectives (module doc); none when no trial finished."""
    if not rows:
        return []
    plt = _pyplot()
    allv = objective_matrix(search, rows)
    feasible = np.array([r.feasible for r in rows])
    on_front = np.array([r.number in {m.number for m in members} for r in rows])
    out = []
    for i, j in itertools.combinations(range(len(search.objectives)), 2):
        x, y = search.objectives[i].metric, search.objectives[j].metric
        dirs = [search.directions[i], search.directions[j]]
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
        ax.scatter(allv[feasible, i], allv[feasible, j], color="0.55", alpha=0.35, s=22, label="trial")
        if np.any(~feasible):
            ax.scatter(allv[~feasible, i], allv[~feasible, j], color="0.55", alpha=0.5, marker="x", s=22, label="infeasible")
        if np.any(feasible):
            pts = allv[feasible][:, [i, j]]
            pair = pts[non_dominated(pts, dirs)]
            order = np.argsort(pair[:, 0] * (-1 if dirs[0] == "maximize" else 1), kind="stable")
            ax.step(pair[order, 0], pair[order, 1], where="post", color="C0", lw=1.2, label="front of these two")
        ax.scatter(allv[on_front, i], allv[on_front, j], color="C3", s=34, zorder=3, label="on the full front")
        for r, v in zip(rows, allv):
            if r.number in {m.number for m in members}:
                ax.annotate(str(r.number), (v[i], v[j]), textcoords="offset points", xytext=(4, 3), fontsize=7, color="C3")
        for setter, values in ((ax.set_xscale, allv[:, i]), (ax.set_yscale, allv[:, j])):
            if _log(values):
                setter("log")
        ax.set_xlabel(_label(x) + (" (higher is better)" if dirs[0] == "maximize" else " (lower is better)"), fontsize=9)
        ax.set_ylabel(_label(y) + (" (higher is better)" if dirs[1] == "maximize" else " (lower is better)"), fontsize=9)
        ax.set_title(f"search {search.name}: {len(rows)} trials, {len(members)} on the front", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = pair_path(folder, x, y)
        fig.savefig(path)
        plt.close(fig)
        out.append(path)
    return out


def plot_hypervolume(path: Path, search, rows: list[TrialRow]) -> Path | None:
    """``hypervolume.png``; None without a feasible trial."""
    ok = [r for r in rows if r.feasible]
    if not ok:
        return None
    plt = _pyplot()
    hv = hypervolume_history(objective_matrix(search, ok), search.directions)
    n = [r.number for r in ok]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.step(n, hv, where="post", color="C0")
    ax.plot(n, hv, "o", color="C0", ms=3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"hypervolume (of {1.1 ** len(search.objectives):.3f})")
    ax.set_ylim(bottom=0)
    ax.set_title(f"search {search.name}: hypervolume of the feasible trials so far\n"
                 f"{len(search.objectives)} objectives, each normalised to [0, 1] over the trials; reference 1.1", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
