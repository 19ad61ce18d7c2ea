"""The multi-objective side of a search (``objectives:`` in the search file, :mod:`.search`):
its samplers, what a finished trial stores, and what the search writes at the end.

Samplers (Optuna's): ``nsga2`` (NSGAIISampler, the default with several objectives), ``nsga3``
(NSGAIIISampler), ``tpe`` (TPESampler's multi-objective mode) and ``random``. A trial's
constraint values are stored with it (``Trial.set_constraint``, Optuna 5's replacement of
``constraints_func``), and the first three read them: feasible trials first as NSGA parents and
in TPE's good set; ``random`` ignores them while sampling. Infeasible trials are left off the
front whatever the sampler. ``population`` sets NSGA-II/III's generation size.

A trial's objective and constraint metrics (:mod:`.objectives`) and its test score are stored
with it as user attributes (``metrics``, ``final``) before it is told, so the constraints, the
front and the tables read them back from the study, also after a resumed session.
"""

from __future__ import annotations

from pathlib import Path

from neurohw.sweeps import front as front_mod
from neurohw.sweeps.front_plots import plot_hypervolume, plot_pairs
from neurohw.sweeps.objectives import constraint_values, final_score, metric_value

#: the samplers of a multi-objective search
SAMPLERS = ("nsga2", "nsga3", "tpe", "random")


def sampler(search, seed: int):
    """A fresh Optuna sampler for a multi-objective ``search`` with ``seed``."""
    import optuna

    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=search.population, seed=seed)
    if search.sampler == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=search.population, seed=seed)
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def constraint_keys(search) -> list[str]:
    """The names of a trial's constraint values, in :func:`constraint_values` order."""
    return [f"{c.metric}.{end}" for c in search.constraints for end in ("min", "max") if getattr(c, end) is not None]


def measure(search, cfg, metrics: dict) -> tuple[list[float] | None, dict, str | None]:
    """A finished run's objective values (in ``search.objectives`` order), the metrics to store
    (objectives, constraints, test score) and an error line when the run lacks one of them."""
    names = front_mod.metric_columns(search)
    stored = {}
    for name in names:
        v = metric_value(name, metrics, cfg)
        if v is None:
            return None, {}, f"the run reports no {name} (head {cfg.head_kind})"
        stored[name] = v
    return [stored[o.metric] for o in search.objectives], stored, None


def tell(study, trial, search, cfg, metrics: dict) -> str | None:
    """Store a finished run's metrics and test score with ``trial`` and tell its objective
    values; the error line (nothing told) when the run lacks a metric."""
    values, stored, error = measure(search, cfg, metrics)
    if error is not None:
        return error
    trial.set_user_attr("metrics", stored)
    for key, value in zip(constraint_keys(search), constraint_values(search.constraints, stored)):
        trial.set_constraint(key, value)
    final = final_score(metrics, cfg)
    if final is not None:
        trial.set_user_attr("final", final)
    study.tell(trial, values)
    return None


def finish(search, folder: Path, study, interrupted: set[int]) -> tuple[Path, list[Path], int]:
    """Write the front (pareto.csv, front/*.yaml), trials.csv (``interrupted``: the numbers of
    the trials a killed session left running) and the plots; ``(pareto.csv, plots, front size)``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    rows = front_mod.trial_rows(search, [t for t in trials if t.state == TrialState.COMPLETE])
    members = front_mod.front(search, rows)
    configs = front_mod.write_front_configs(search, folder, members)
    pareto = front_mod.write_pareto(search, folder, members, configs, front_mod.final_name_of(search))
    front_mod.write_trials(search, folder, trials, members, interrupted)
    plots = plot_pairs(folder, search, rows, members)
    hv = plot_hypervolume(folder / "hypervolume.png", search, rows)
    return pareto, plots + ([hv] if hv else []), len(members)
