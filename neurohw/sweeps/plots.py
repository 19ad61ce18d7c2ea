"""The plots of a sweep: each metric against each axis, mean over seeds with the sample std as
a band (and error bars), one line per value of a second axis.

For every plotted metric and every axis ``x`` with more than one value, one PNG
``<metric>__vs__<x>.png`` (dots in names become ``-``): with a second axis, one line per value
of the next axis in the sweep's order (``__by__<series>`` in the name, every other axis averaged
per seed first); with one axis, one line. Numeric axes are drawn to scale (logarithmic when all
values are positive and span at least two decades); other values (names, lists, null) at equal
spacing in sweep order. Time axes (keys ending in ``_s``) are labelled in s, min, h, d, mo, y.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurohw.sweeps.table import seed_spread


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _distinct(rows: Sequence[dict], axis: str) -> list:
    seen, out = set(), []
    for r in rows:
        k = json.dumps(r["values"].get(axis), sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(r["values"].get(axis))
    return out


def _short(key: str) -> str:
    return key.removeprefix("device.overrides.").removeprefix("device.")


#: units a time in seconds is written in on an axis: (seconds, name)
_UNITS = ((365.25 * 86400, "y"), (365.25 * 86400 / 12, "mo"), (7 * 86400, "wk"), (86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _duration(t: float) -> str:
    """``t`` seconds in the largest unit it reaches (1 s, 1 h, 1 d, 1 y, 10 y)."""
    for unit, name in _UNITS:
        if t >= unit:
            return f"{t / unit:.3g} {name}"
    return f"{t:g} s"


def _label(v) -> str:
    return "null" if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v))


def plot_metric(path: Path, rows: Sequence[dict], metric: str, x: str, series: str | None, title: str) -> Path | None:
    """One plot (module doc); None when no point of it succeeded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = seed_spread(rows, x, series, metric)
    if not lines:
        return None
    order = _distinct(rows, x)
    numeric = _numeric(order)
    log = numeric and min(order) > 0 and max(order) / min(order) >= 100
    pos = {json.dumps(v, sort_keys=True): (float(v) if numeric else i) for i, v in enumerate(order)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    series_order = _distinct(rows, series) if series else [None]
    for sv in series_order:
        key = json.dumps(sv, sort_keys=True) if series else ""
        if key not in lines:
            continue
        xs, means, stds, counts = lines[key]
        idx = np.argsort([pos[json.dumps(v, sort_keys=True)] for v in xs])
        px = np.array([pos[json.dumps(xs[i], sort_keys=True)] for i in idx])
        m, s = np.array(means)[idx], np.array(stds)[idx]
        shown = _duration(sv) if series and series.endswith("_s") and _numeric([sv]) else _label(sv)
        label = f"{_short(series)} = {shown}" if series else None
        line, = ax.plot(px, m, marker="o", label=label)
        ax.fill_between(px, m - s, m + s, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.errorbar(px, m, yerr=s, fmt="none", ecolor=line.get_color(), capsize=3, linewidth=1)
    if log:
        ax.set_xscale("log")
        ax.minorticks_off()
    if log:  # a tick at every value (log axes label decades only otherwise); times in s, min, h, d, mo, y
        ticks = sorted(float(v) for v in order)
        ax.set_xticks(ticks, [_duration(t) if x.endswith("_s") else f"{t:g}" for t in ticks], rotation=30 if len(ticks) > 5 else 0)
    elif not numeric:
        ax.set_xticks(range(len(order)), [_label(v) for v in order], rotation=20 if len(order) > 4 else 0)
    n_seeds = max(c for (_, _, _, cs) in lines.values() for c in cs)
    ax.set_xlabel(_short(x))
    ax.set_ylabel(metric)
    ax.set_title(f"{title}\nmean ± std over {n_seeds} seed{'s' if n_seeds > 1 else ''}", fontsize=10)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sweep(folder: Path, rows: Sequence[dict], axes: Sequence[str], metrics: Sequence[str], name: str) -> list[Path]:
    """Every plot of the module doc into ``folder``; returns the files written."""
    varied = [a for a in axes if len(_distinct(rows, a)) > 1]
    out = []
    for metric in metrics:
        for x in varied:
            others = [a for a in varied if a != x]
            series = others[0] if others else None
            fname = f"{metric}__vs__{_short(x)}" + (f"__by__{_short(series)}" if series else "")
            fname = fname.replace(".", "-").replace("/", "-") + ".png"
            rest = [a for a in others[1:]]
            title = name + (f" (averaged over {', '.join(_short(a) for a in rest)})" if rest else "")
            p = plot_metric(Path(folder) / fname, rows, metric, x, series, title)
            if p is not None:
                out.append(p)
    return out
