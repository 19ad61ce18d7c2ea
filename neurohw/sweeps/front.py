"""The results of a multi-objective search: its finished trials as rows, the Pareto front of the
feasible ones (:mod:`.pareto`), ``pareto.csv``, ``trials.csv`` and one runnable experiment YAML
per front member (``front/t0007.yaml``).

Every trial's metrics that the objectives and constraints use are stored in the study with it
(user attribute ``metrics``), and so is its test score (``final``: the run measured it once; it is
shown for front members only and never used to select). A trial is *feasible* when every
constraint holds (:func:`neurohw.sweeps.objectives.constraint_values` <= 0), whichever sampler
ran it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from neurohw.paths import atomic_path
from neurohw.sweeps.objectives import constraint_values, final_score_name
from neurohw.sweeps.pareto import non_dominated
from neurohw.sweeps.table import cell


@dataclass(frozen=True)
class TrialRow:
    """One finished trial: its number, searched values (config values by dotted key), metric
    values (objectives and constraints, by metric name), feasibility and test score."""

    number: int
    values: dict
    metrics: dict
    feasible: bool
    final: float | None


def trial_rows(search, trials) -> list[TrialRow]:
    """The complete trials (Optuna FrozenTrials) of ``search`` as rows, in trial order."""
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        metrics = dict(t.user_attrs.get("metrics", {}))
        values = {k: search.params[k].value(t.params[k]) for k in search.params if k in t.params}
        feasible = all(c <= 0 for c in constraint_values(search.constraints, metrics))
        rows.append(TrialRow(t.number, values, metrics, feasible, t.user_attrs.get("final")))
    return rows


def objective_matrix(search, rows: list[TrialRow]) -> np.ndarray:
    """The objectives of ``rows`` as an (n, k) array, in the order of ``search.objectives``."""
    return np.array([[r.metrics[o.metric] for o in search.objectives] for r in rows], dtype=np.float64).reshape(len(rows), -1)


def front(search, rows: list[TrialRow]) -> list[TrialRow]:
    """The feasible rows no other feasible row dominates, ordered by the first objective (best
    first), then by trial number. A design proposed twice (the same searched values: the same
    runs, the same metrics) is listed once, as its first trial."""
    ok = [r for r in rows if r.feasible]
    if not ok:
        return []
    mask = non_dominated(objective_matrix(search, ok), search.directions)
    members, seen = [], set()
    for r, m in zip(ok, mask):
        key = json.dumps(r.values, sort_keys=True, default=str)
        if m and key not in seen:
            seen.add(key)
            members.append(r)
    first, sign = search.objectives[0].metric, (-1.0 if search.directions[0] == "maximize" else 1.0)
    return sorted(members, key=lambda r: (sign * r.metrics[first], r.number))


def metric_columns(search) -> list[str]:
    """The metric columns of the tables: the objectives, then constraint metrics not among them."""
    names = [o.metric for o in search.objectives]
    return names + [c.metric for c in search.constraints if c.metric not in names]


def write_front_configs(search, folder: Path, members: list[TrialRow]) -> dict[int, Path]:
    """``front/tNNNN.yaml`` per member: the base experiment with the member's values and the
    search's run seeds, which ``neurohw run`` runs to the trial's validation score. Files of
    trials no longer on the front are removed, so the folder holds the front."""
    out_dir = folder / "front"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for r in members:
        path = out_dir / f"t{r.number:04d}.yaml"
        raw = search.front_raw(r.number, r.values)
        head = (f"# Trial {r.number} of search '{search.name}', on its Pareto front of "
                + ", ".join(f"{o.metric} ({d})" for o, d in zip(search.objectives, search.directions)) + ":\n"
                + "".join(f"#   {m} = {r.metrics[m]!r}\n" for m in metric_columns(search))
                + "# Searched: " + ", ".join(f"{k} = {v!r}" for k, v in r.values.items()) + "\n"
                + f"# Run it: neurohw run {path}\n")
        with atomic_path(path, suffix=".yaml") as tmp:
            tmp.write_text(head + yaml.safe_dump(raw, sort_keys=False))
        paths[r.number] = path
    keep = {p.name for p in paths.values()}
    for old in out_dir.glob("t*.yaml"):
        if old.name not in keep:
            old.unlink()
    return paths


def write_pareto(search, folder: Path, members: list[TrialRow], configs: dict[int, Path], final_name: str) -> Path:
    """``pareto.csv``: one row per front member (the :func:`front` order): trial, the searched
    values, every objective and constraint metric, the test score (``final_name``, measured once
    by the trial's run) and the member's YAML (relative to the search folder)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys, cols = list(search.params), metric_columns(search)
    w.writerow(["trial", *keys, *cols, final_name, "config"])
    for r in members:
        w.writerow([r.number, *(cell(r.values[k]) for k in keys), *(cell(r.metrics[m]) for m in cols),
                    cell(r.final) if r.final is not None else "", configs[r.number].relative_to(folder).as_posix()])
    with atomic_path(folder / "pareto.csv", suffix=".csv") as tmp:
        tmp.write_text(buf.getvalue())
    return folder / "pareto.csv"


def write_trials(search, folder: Path, trials, members: list[TrialRow], interrupted: set[int]) -> Path:
    """``trials.csv`` of a multi-objective search: every trial (any state; ``interrupted``: the
    trials a killed session left running, run again later) with its metrics, ``feasible`` and
    ``front`` (0/1); no test score (it is reported for front members only)."""
    on_front = {r.number for r in members}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys, cols = list(search.params), metric_columns(search)
    w.writerow(["trial", "state", *keys, *cols, "feasible", "front", "error"])
    for t in sorted(trials, key=lambda t: t.number):
        metrics = t.user_attrs.get("metrics", {})
        done = t.state.name == "COMPLETE"
        feasible = done and all(c <= 0 for c in constraint_values(search.constraints, metrics))
        vals = [cell(search.params[k].value(t.params[k])) if k in t.params else "" for k in keys]
        state = "interrupted" if t.number in interrupted else t.state.name.lower()
        w.writerow([t.number, state, *vals, *(cell(metrics[m]) if m in metrics else "" for m in cols),
                    int(feasible) if done else "", int(t.number in on_front) if done else "", t.user_attrs.get("error", "")])
    with atomic_path(folder / "trials.csv", suffix=".csv") as tmp:
        tmp.write_text(buf.getvalue())
    return folder / "trials.csv"


def final_name_of(search) -> str:
    """The name of the test score column (the base's task decides it)."""
    return final_score_name(search.configs[0])
