"""The results table of a sweep (``results.csv``) and its mean and spread over seeds.

One row per point and seed, in point order then seed order: ``point``, ``seed``, one column
per axis (the dotted key; lists and mappings as JSON), ``status``, ``error``, then one column
per metric (the plotted ones first, then the rest in name order). Floats are written as Python
writes them (the shortest text that reads back as the same number), so the same results give
the same bytes. Nothing that measures the machine (wall times, paths of run directories) is in
it: the same seeds give the same table on any executor.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurohw.paths import atomic_path


def cell(value: Any) -> str:
    """A value as CSV text: numbers by ``repr``, None as empty, lists and mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def metric_columns(rows: Sequence[dict], first: Sequence[str]) -> list[str]:
    """The metric columns: ``first`` (those present), then every other in name order; a column
    that is empty in every row is left out."""
    present = {k for r in rows for k, v in r.get("metrics", {}).items() if v is not None}
    return [m for m in first if m in present] + sorted(present - set(first))


def write_csv(path: Path, rows: Sequence[dict], axes: Sequence[str], first_metrics: Sequence[str]) -> Path:
    """Write the table (module doc) atomically; ``rows``: records with ``point``, ``seed``,
    ``values``, ``status``, ``error``, ``metrics``."""
    metrics = metric_columns(rows, first_metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", "seed", *axes, "status", "error", *metrics])
    for r in rows:
        m = r.get("metrics") or {}
        w.writerow([r["point"], r["seed"], *(cell(r["values"].get(a)) for a in axes), r["status"], r.get("error") or "",
                    *(cell(m.get(k)) for k in metrics)])
    with atomic_path(path, suffix=".csv") as tmp:
        tmp.write_text(buf.getvalue())
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """The table as a list of rows (column -> text)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def seed_spread(rows: Sequence[dict], x: str, series: str | None, metric: str) -> dict:
    """Mean and sample std over seeds of ``metric`` against axis ``x``, one line per value of
    axis ``series`` (None: one line). Other axes are averaged first, per seed. Returns
    ``{series value (JSON text): (x values, means, stds, seed counts)}`` in first-seen order;
    failed points and missing values are left out."""
    per: dict[str, dict[str, dict[int, list[float]]]] = {}  # series -> x -> seed -> values
    xs_raw: dict[str, Any] = {}
    for r in rows:
        v = (r.get("metrics") or {}).get(metric)
        if r.get("status") != "ok" or v is None:
            continue
        xk = json.dumps(r["values"].get(x), sort_keys=True)
        sk = json.dumps(r["values"].get(series), sort_keys=True) if series else ""
        xs_raw.setdefault(xk, r["values"].get(x))
        per.setdefault(sk, {}).setdefault(xk, {}).setdefault(int(r["seed"]), []).append(float(v))
    out = {}
    for sk, by_x in per.items():
        xs, means, stds, counts = [], [], [], []
        for xk, by_seed in by_x.items():
            seed_means = np.array([np.mean(v) for v in by_seed.values()])
            xs.append(xs_raw[xk])
            means.append(float(seed_means.mean()))
            stds.append(float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0)
            counts.append(len(seed_means))
        out[sk] = (xs, means, stds, counts)
    return out
