"""The plots of a search: its history (the objective of every finished trial in trial order,
the best so far as a step line, failed trials marked on the axis) and each parameter's effect
(the objective against the parameter's value, one panel per parameter, log scale for log
ranges, choices at equal spacing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _trials(study):
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study.get_trials(deepcopy=False, states=(TrialState.FAIL,))


def plot_history(path: Path, study, search, interrupted: int) -> Path | None:
    """``history.png`` (``interrupted``: how many trials a killed session left and were run
    again, named in the title); None when no trial finished."""
    done, failed = _trials(study)
    if not done:
        return None
    plt = _pyplot()
    n = np.array([t.number for t in done])
    v = np.array([t.value for t in done], dtype=float)
    order = np.argsort(n)
    n, v = n[order], v[order]
    best = np.maximum.accumulate(v) if search.direction == "maximize" else np.minimum.accumulate(v)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.plot(n, v, "o", alpha=0.7, label="trial")
    ax.step(n, best, where="post", color="C3", label="best so far")
    real_failures = [t.number for t in failed if "error" in t.user_attrs]
    if real_failures:
        ax.plot(real_failures, [np.nanmin(v)] * len(real_failures), "x", color="0.4", label="failed")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(search.objective)
    title = f"search {search.name}: {len(done)} trials ({search.sampler}), best {best[-1]:.4f}"
    ax.set_title(title + (f"; {interrupted} interrupted and run again" if interrupted else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_params(path: Path, study, search) -> Path | None:
    """``params.png``; None when no trial finished."""
    done, _ = _trials(study)
    if not done:
        return None
    plt = _pyplot()
    keys = list(search.params)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), dpi=110, squeeze=False)
    v = np.array([t.value for t in done], dtype=float)
    best = int(np.argmax(v) if search.direction == "maximize" else np.argmin(v))
    for ax, key in zip(axes.ravel(), keys):
        p = search.params[key]
        raw = [t.params[key] for t in done]
        if p.choices is not None:
            labels = [json.dumps(c, sort_keys=True) for c in p.choices]
            x = np.array([labels.index(r) for r in raw], dtype=float)
            jitter = (np.random.default_rng(0).random(len(x)) - 0.5) * 0.2  # fixed seed: the same figure every time
            ax.scatter(x + jitter, v, alpha=0.7)
            ax.scatter([x[best]], [v[best]], color="C3", zorder=3, label="best")
            ax.set_xticks(range(len(labels)), [label.replace('"', "") for label in labels], rotation=15, fontsize=8)
        else:
            x = np.array(raw, dtype=float)
            ax.scatter(x, v, alpha=0.7)
            ax.scatter([x[best]], [v[best]], color="C3", zorder=3, label="best")
            if p.log:
                from matplotlib.ticker import NullFormatter

                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(search.objective, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle(f"search {search.name}: {search.objective} against each parameter ({len(done)} trials)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
