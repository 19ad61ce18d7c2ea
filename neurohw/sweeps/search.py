"""Hyperparameter search: an Optuna study (TPE or random sampler) over ranges of experiment keys,
its trials run as sweep points (:func:`neurohw.sweeps.point.run_point`) on the same executors.

A search file::

    name: digits_search
    base: digits_ridge                      # a shipped experiment, a path, or an inline mapping
    overrides: {data.digits.max_train_per_class: 40}
    params:
      reservoir.digits.decay: {low: 0.8, high: 0.99}
      reservoir.digits.target_rate: {low: 0.02, high: 0.2, log: true}
      reservoir.digits.n_neurons: {low: 64, high: 256, step: 32}    # integers when low and high are
      head.features: {choices: [[rate], [rate, counts]]}
    objective: validation                   # or cv_accuracy, val_accuracy, zero_shot.val_seen.mean, ...
    trials: 20
    sampler: tpe                            # tpe | random
    seed: 0                                 # the sampler's seed
    seeds: [0]                              # run seeds of every trial; the objective is their mean

The objective is always measured on held-out training data, never on the test split:
``validation`` is the ridge readout's k-fold ``cv_accuracy``, a linear or MLP readout's
``val_accuracy``, or zero-shot seen-class validation retrieval (``zero_shot.val_seen.mean``,
the mean of both directions), whichever the trial's head reports; ``test_accuracy`` and test
retrieval are refused. Trials run ``capacity`` at a time on the executor, asked and told in
trial order, so a search with the same seed and the same number of workers proposes the same
trials (TPE's proposals depend on how many run at once).

Resuming continues the study. The k-th trial of the budget (k: trials finished so far, not
counting interrupted ones, plus its place in the batch) is asked with a sampler built for it
alone and seeded with ``SeedSequence([seed, k])`` (:func:`sampler_for`), so its proposal depends
on the seed, k and the trials finished before it, and on nothing a session keeps in memory. A
sampler built once per session from ``seed`` restarts its random stream at every resume and
proposes the first trials again; replaying the stream instead would tie a resume to Optuna's
internal order of draws. With one worker, 3 + 3 trials are the six trials of one run of 6.

The search folder holds ``study.log`` (Optuna's journal storage over
:class:`neurohw.sweeps.journal.CheckedJournal`: a digest per entry, cut back to its last
verified entry with one warning when damaged or cut mid-line; the study resumes when the search
runs again into the same folder; trials a killed session left running are run again with the
same parameters), ``search.json``, ``runs/`` (every trial's run directory), ``trials.csv``,
``history.png`` (objective per trial and best so far), ``params.png`` (the objective against
each parameter) and ``best.yaml``: the base experiment with the best trial's values, a config
``neurohw run`` accepts.

A multi-objective search (co-design: accuracy against energy and array cost) gives
``objectives:``, a list of metrics with a direction each, instead of ``objective:``, and may
bound metrics with ``constraints:``::

    objectives:
      - {metric: validation, direction: maximize}
      - {metric: energy_per_sample}             # J per test sample (minimised by default)
      - {metric: array.cells}                   # programmed RRAM cells
    constraints:
      - {metric: validation, min: 0.85}
    sampler: nsga2                              # nsga2 (default) | nsga3 | tpe | random
    population: 20                              # NSGA-II/III generation size

The metrics and their units are in :mod:`neurohw.sweeps.objectives`; the samplers and what a
trial stores in :mod:`neurohw.sweeps.multi`. Instead of ``best.yaml`` and the single-objective
plots such a search writes ``pareto.csv`` (the front of the feasible trials, with each member's
test score), ``front/tNNNN.yaml`` (each member as a runnable experiment), ``trials.csv`` (every
trial's metrics, feasible, front), ``front__<y>__vs__<x>.png`` per pair of objectives and
``hypervolume.png`` (:mod:`neurohw.sweeps.front`, :mod:`neurohw.sweeps.front_plots`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from neurohw.config import Section, validate
from neurohw.errors import ConfigError
from neurohw.experiments.schema import NAME_PATTERN, ExperimentConfig, parse_config
from neurohw.paths import atomic_path
from neurohw.progress import Progress, note, warn
from neurohw.resources import shipped_yaml
from neurohw.sweeps import base as base_mod
from neurohw.sweeps.multi import finish, sampler, tell
from neurohw.sweeps.objectives import ConstraintSpec, ObjectiveSpec, check_objectives, direction_of, objective_name
from neurohw.sweeps.point import VALIDATION_METRICS, PointTask, metric_names, one_line, run_point
from neurohw.sweeps.records import hold_folder
from neurohw.sweeps.search_plots import plot_history, plot_params
from neurohw.sweeps.spec import read_spec
from neurohw.sweeps.table import cell


class ParamSpec(Section):
    """A searched key: a range (``low``, ``high``, optional ``log``, ``step``) or ``choices``.
    Integers when ``low`` and ``high`` (and ``step``) are written as integers."""

    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = Field(None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _kind(self) -> ParamSpec:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("give either choices or a range (low, high, log, step), not both")
            if not self.choices:
                raise ValueError("choices must list at least one value")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices")
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("a log range takes no step")
        return self

    @property
    def integer(self) -> bool:
        return self.choices is None and all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)

    def distribution(self):
        """The Optuna distribution of this parameter."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:  # Optuna's choices are plain scalars: lists and mappings travel as JSON text
            return CategoricalDistribution([_choice_text(c) for c in self.choices])
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=None if self.step is None else float(self.step))

    def value(self, sampled) -> Any:
        """The config value of a sampled parameter (choices back from their JSON text)."""
        return json.loads(sampled) if self.choices is not None else sampled

    def corners(self) -> list:
        """The values checked before the search runs: every choice, or both ends of the range."""
        if self.choices is not None:
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.integer else [float(self.low), float(self.high)]


def _choice_text(value) -> str:
    return json.dumps(value, sort_keys=True)


class SearchSpec(Section):
    """A search file (see the module doc)."""

    name: str | None = Field(None, description="the search's name (default: the file's stem); names its folder")
    base: str | dict[str, Any] = Field(description="the base experiment: a YAML path, a shipped name, or an inline mapping")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fixed changes to the base (nested or dotted keys)")
    params: dict[str, ParamSpec] = Field(description="key -> range or choices")
    objective: str | None = Field(None, description="a validation metric (never a test one); default validation")
    direction: Literal["maximize", "minimize"] | None = None
    objectives: list[ObjectiveSpec] | None = Field(None, description="several objectives (a multi-objective search), instead of objective")
    constraints: list[ConstraintSpec] = Field(default_factory=list, description="bounds on metrics (multi-objective only)")
    population: int = Field(20, ge=2, le=10_000, description="NSGA-II/III generation size")
    trials: int = Field(20, ge=1, le=100_000, description="trials in total, counting earlier sessions")
    sampler: Literal["tpe", "random", "nsga2", "nsga3"] | None = Field(None, description="default: tpe, nsga2 with objectives")
    seed: int = Field(0, ge=0, lt=2**32, description="the sampler's seed")
    seeds: list[int] | None = Field(None, description="run seeds of every trial (default: the base's); objective: their mean")
    output: str = Field("searches", description="parent folder of the search folder <output>/<name> (--out replaces both)")
    threads: int = Field(1, ge=1, le=256, description="threads of one trial")

    @model_validator(mode="after")
    def _checks(self) -> SearchSpec:
        if self.name is not None and not NAME_PATTERN.fullmatch(self.name):
            raise ValueError("name must be a plain file name: letters, digits, '.', '_' or '-'")
        if not self.params:
            raise ValueError("params must name at least one key to search")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0):
            raise ValueError(f"seeds must list distinct non-negative integers, got {self.seeds}")
        if self.objectives is not None and (self.objective is not None or self.direction is not None):
            raise ValueError("give objective (and direction) for one objective, or objectives for several, not both")
        if self.objectives is None and self.constraints:
            raise ValueError("constraints need objectives: (a multi-objective search)")
        if self.objectives is None and self.sampler in ("nsga2", "nsga3"):
            raise ValueError(f"sampler {self.sampler} is multi-objective; give objectives: or use tpe or random")
        return self


@dataclass
class Search:
    """A validated search."""

    name: str
    source: str
    raw: dict  # the base experiment with overrides
    params: dict[str, ParamSpec]
    objective: str
    direction: str
    trials: int
    sampler: str
    seed: int
    seeds: list[int]
    output: str
    threads: int
    configs: list[ExperimentConfig] = field(default_factory=list, repr=False)  # the base and every corner, checked
    objectives: list[ObjectiveSpec] = field(default_factory=list)  # several: a multi-objective search
    constraints: list[ConstraintSpec] = field(default_factory=list)
    population: int = 20

    @property
    def multi(self) -> bool:
        """True for a multi-objective search (``objectives:``)."""
        return bool(self.objectives)

    @property
    def directions(self) -> list[str]:
        """The direction of each objective (multi-objective)."""
        return [direction_of(o) for o in self.objectives]

    def front_raw(self, number: int, values: dict[str, Any]) -> dict:
        """A front member's experiment: the base with trial ``number``'s ``values`` and the
        trial's run seeds, so that ``neurohw run`` measures the trial's validation score."""
        raw = base_mod.point_config(self.raw, values, self.source)
        raw["name"] = base_mod.run_name(self.name, f"t{number:04d}")
        raw["seeds"] = list(self.seeds)
        raw.pop("seed", None)
        return raw

    def trial_raw(self, number: int, values: dict[str, Any]) -> dict:
        """The raw experiment of trial ``number`` with parameter ``values`` (dotted keys)."""
        raw = base_mod.point_config(self.raw, values, self.source)
        raw["seeds"] = list(self.seeds)
        raw.pop("seed", None)
        raw["name"] = base_mod.run_name(self.name, f"t{number:04d}")
        raw.setdefault("plots", False)
        return raw

    def best_raw(self, values: dict[str, Any]) -> dict:
        """The base experiment with the best trial's ``values``: what best.yaml holds."""
        raw = base_mod.point_config(self.raw, values, self.source)
        raw["name"] = base_mod.run_name(self.name, "best")
        if "seeds" not in raw and "seed" not in raw:
            raw["seeds"] = list(self.seeds)
        return raw


@dataclass(frozen=True)
class SearchResult:
    folder: Path
    best_config: Path
    best_value: float
    best_trial: int
    trials: int
    plots: list[Path]
    pareto: Path | None = None  # a multi-objective search's pareto.csv (best_* then describe its first member)


def search_path(name_or_path: str | Path) -> Path:
    """A search YAML path as given, or a shipped search's file for a bare name."""
    return shipped_yaml(name_or_path, "searches", "search")


def load_search(path_or_name: str | Path, overrides: list[str] | None = None, trials: int | None = None,
                raw_spec: dict | None = None) -> Search:
    """Read and check a search file: the schema, every parameter's ends and choices against the
    experiment schema, the objective (a validation metric the trials measure)."""
    raw_spec, source, folder = read_spec(path_or_name, raw_spec, search_path, "search", "see experiments/searches/ for a complete example")
    spec = validate(SearchSpec, raw_spec, source)
    if trials is not None:
        if trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {trials}")
        spec = spec.model_copy(update={"trials": trials})
    study = base_mod.study_base(spec, Path(source), folder, source, overrides)
    raw, base_cfg, name, seeds, seeds_raw = study.raw, study.config, study.name, study.seeds, study.seeds_raw
    configs = [base_cfg]
    for key, p in spec.params.items():
        base_mod.check_key(key, source, "parameter")
        for v in p.corners():
            configs.append(base_mod.validate_point(seeds_raw, {key: v}, f"{source}: parameter"))
    if spec.objectives is not None:
        check_objectives(spec.objectives, spec.constraints, base_cfg, source)
        return Search(name=name, source=source, raw=raw, params=dict(spec.params), objective=spec.objectives[0].metric,
                      direction=direction_of(spec.objectives[0]), trials=spec.trials, sampler=spec.sampler or "nsga2",
                      seed=spec.seed, seeds=seeds, output=spec.output, threads=spec.threads, configs=configs,
                      objectives=list(spec.objectives), constraints=list(spec.constraints), population=spec.population)
    spec = spec.model_copy(update={"objective": spec.objective or "validation", "direction": spec.direction or "maximize",
                                   "sampler": spec.sampler or "tpe"})
    allowed = ("validation", *VALIDATION_METRICS)
    if spec.objective not in allowed:
        test = spec.objective.startswith("test") or spec.objective.split(".")[:2] in (["zero_shot", "seen"], ["zero_shot", "unseen"])
        why = "is measured on the test split; a search selects on validation data only" if test else "is not a validation metric"
        raise ConfigError(f"{source}: objective {spec.objective!r} {why}; use one of {', '.join(allowed)}")
    measured = objective_name(spec.objective, base_cfg)
    if measured not in metric_names(base_cfg):
        raise ConfigError(f"{source}: objective {spec.objective!r} is not measured by the base's {base_cfg.task} task with a "
                          f"{base_cfg.head_kind} head; use 'validation' ({objective_name('validation', base_cfg)} there)")
    return Search(name=name, source=source, raw=raw, params=dict(spec.params), objective=spec.objective, direction=spec.direction,
                  trials=spec.trials, sampler=spec.sampler, seed=spec.seed, seeds=seeds, output=spec.output, threads=spec.threads,
                  configs=configs)


def search_folder(search: Search, out: str | Path | None) -> Path:
    return Path(out) if out is not None else Path(search.output) / search.name


def slot_seed(seed: int, slot: int) -> int:
    """The sampler seed of the ``slot``-th trial of the budget (0, 1, ...): 32 bits of numpy's
    ``SeedSequence([seed, slot])``, so every slot has its own independent stream."""
    import numpy as np

    return int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])


def sampler_for(search: Search, slot: int):
    """A fresh sampler for the ``slot``-th trial (see the module doc: why a trial's proposal
    depends on the seed, its slot and the finished trials only)."""
    import optuna

    seed = slot_seed(search.seed, slot)
    if search.multi:
        return sampler(search, seed)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _study(search: Search, folder: Path):
    import optuna
    from optuna.storages import JournalStorage

    from neurohw.sweeps.journal import CheckedJournal  # inside: the journal loads optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(CheckedJournal(folder / "study.log"))
    aim = {"directions": search.directions} if search.multi else {"direction": search.direction}
    return optuna.create_study(study_name=search.name, storage=storage, sampler=sampler_for(search, 0), load_if_exists=True, **aim)


def _resume(study, search: Search) -> int:
    """Trials a killed session left running: told failed and asked again with the same
    parameters; their numbers are kept in the study (``interrupted``, written before they are
    told, so a session cut here repeats this step and nothing else) so they do not use up
    trials. A trial cut before all its parameters were stored is not enqueued: its slot's
    sampler proposes it again."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if stale:
        study.set_user_attr("interrupted", sorted(set(interrupted_trials(study)) | {t.number for t in stale}))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL)
        if set(t.params) == set(search.params) and not search.multi:
            study.enqueue_trial(t.params)
    # A multi-objective search enqueues nothing: its slot's sampler proposes the same values again
    # (the slot rule), and NSGA-II must see that proposal to count it in its generation (an
    # enqueued trial gets none, and the generations of every later trial would shift).
    return len(stale)


def interrupted_trials(study) -> list[int]:
    """The numbers of the trials a killed session left running (told failed, then run again)."""
    value = study.user_attrs.get("interrupted", [])
    return [int(n) for n in value] if isinstance(value, list) else []


def _finished(study) -> int:
    """Trials that used up the budget: complete or failed, not interrupted."""
    from optuna.trial import TrialState

    skip = set(interrupted_trials(study))
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)) if t.number not in skip)


def run_search(search: Search, executor, folder: Path, progress: bool = True) -> SearchResult:
    """Run (or resume) the study until it has ``search.trials`` finished trials (module doc)."""
    from optuna.trial import TrialState

    folder = Path(folder)
    with hold_folder(folder, "search", search.name):  # one session per search folder at a time
        runs = folder / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "search.json", suffix=".json") as tmp:
            tmp.write_text(json.dumps({"name": search.name, "source": search.source, "objective": search.objective,
                                       "direction": search.direction, "trials": search.trials, "sampler": search.sampler,
                                       "seed": search.seed, "seeds": search.seeds, "base": search.raw,
                                       **_multi_json(search),
                                       "params": {k: p.model_dump(exclude_none=True) for k, p in search.params.items()}}, indent=1))
        study = _study(search, folder)
        retried = _resume(study, search)
        done = _finished(study)
        dists = {k: p.distribution() for k, p in search.params.items()}
        resumed = f"; {done} done, {retried} interrupted trial(s) to run again" if done or retried else ""
        note(f"[bold]search {search.name}[/bold]: {search.trials} trials ({search.sampler}, {_aim_text(search)}) "
             f"on {executor.describe()}{resumed} -> {folder}", progress)
        failed = 0
        with Progress(f"search {search.name}", total=search.trials, completed=min(done, search.trials), enabled=progress) as bar:
            while done < search.trials:
                batch = []
                for i in range(min(executor.capacity, search.trials - done)):
                    study.sampler = sampler_for(search, done + i)
                    batch.append(study.ask(dists))
                tasks = []
                for trial in batch:
                    values = {k: search.params[k].value(trial.params[k]) for k in search.params}
                    tasks.append(PointTask(f"t{trial.number:04d}", search.trial_raw(trial.number, values), str(runs), search.threads))
                bar.update(info=f"{len(batch)} running, {failed} failed" + _best_text(study))
                results = {task.task: result for task, result in executor.run(run_point, tasks)}
                for trial, task in zip(batch, tasks):
                    error = _tell(study, trial, search, task, results[task.task])
                    if error is not None:
                        failed += 1
                        trial.set_user_attr("error", error)
                        study.tell(trial, state=TrialState.FAIL)
                        warn(f"search {search.name}: trial {trial.number} failed: {error}")
                    done += 1
                    bar.update(advance=1, info=f"{failed} failed" + _best_text(study))
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise ConfigError(f"search {search.name}: no trial finished ({failed} failed; see the warnings above); fix the config and run again")
        if search.multi:
            return _finish_multi(search, folder, study, len(complete), progress)
        best = study.best_trial
        values = {k: search.params[k].value(best.params[k]) for k in search.params}
        best_path = _write_best(search, folder, values, best, len(complete))
        _write_trials(search, folder, study)
        history = plot_history(folder / "history.png", study, search, len(interrupted_trials(study)))
        plots = [p for p in (history, plot_params(folder / "params.png", study, search)) if p]
    note(f"search {search.name}: best {search.objective} = {best.value:.4f} (trial {best.number} of {len(complete)} finished); "
         f"{best_path}", progress)
    return SearchResult(folder, best_path, float(best.value), best.number, len(complete), plots)


def _aim_text(search: Search) -> str:
    if not search.multi:
        return f"objective {search.objective}, {search.direction}"
    return "objectives " + ", ".join(f"{o.metric} ({d[:3]})" for o, d in zip(search.objectives, search.directions))


def _multi_json(search: Search) -> dict:
    """search.json's entries of a multi-objective search (none for one objective)."""
    if not search.multi:
        return {}
    return {"objectives": [{"metric": o.metric, "direction": d} for o, d in zip(search.objectives, search.directions)],
            "constraints": [c.model_dump(exclude_none=True) for c in search.constraints], "population": search.population}


def _tell(study, trial, search: Search, task: PointTask, result) -> str | None:
    """Tell a trial's result (one objective, or several: :func:`neurohw.sweeps.multi.tell`);
    the error line of a failed trial (nothing told)."""
    if not search.multi:
        value, error = _objective(search, task, result)
        if error is None:
            study.tell(trial, value)
        return error
    if isinstance(result, BaseException):
        return one_line(result)
    if result["status"] != "ok":
        return result["error"]
    return tell(study, trial, search, parse_config(task.config, task.task), result["metrics"])


def _finish_multi(search: Search, folder: Path, study, n_complete: int, progress: bool) -> SearchResult:
    """The end of a multi-objective search: the front, its tables and plots."""
    pareto, plots, n_front = finish(search, folder, study, set(interrupted_trials(study)))
    note(f"search {search.name}: {n_front} trial(s) on the Pareto front of {n_complete} finished; {pareto}", progress)
    return SearchResult(folder, pareto, float("nan"), -1, n_complete, plots, pareto=pareto)


def _best_text(study) -> str:
    from optuna.trial import TrialState

    if len(study.directions) > 1:  # no single best: the front is written at the end
        return ""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return ""
    return f", best {study.best_value:.4f} (trial {study.best_trial.number})"


def _objective(search: Search, task: PointTask, result) -> tuple[float | None, str | None]:
    if isinstance(result, BaseException):
        return None, one_line(result)
    if result["status"] != "ok":
        return None, result["error"]
    cfg = parse_config(task.config, task.task)
    name = objective_name(search.objective, cfg)
    value = result["metrics"].get(name)
    if value is None:
        return None, f"the run reports no {name} (objective {search.objective}; head {cfg.head_kind})"
    return float(value), None


def _write_best(search: Search, folder: Path, values: dict, best, n_complete: int) -> Path:
    path = folder / "best.yaml"
    head = (f"# The best of {n_complete} finished trials of search '{search.name}' ({search.sampler} sampler, seed {search.seed}):\n"
            f"# trial {best.number}, {search.objective} = {best.value!r} ({search.direction}), mean over run seeds {search.seeds}.\n"
            f"# Searched: " + ", ".join(f"{k} = {v!r}" for k, v in values.items()) + "\n"
            f"# Run it: neurohw run {path}\n")
    with atomic_path(path, suffix=".yaml") as tmp:
        tmp.write_text(head + yaml.safe_dump(search.best_raw(values), sort_keys=False))
    return path


def _write_trials(search: Search, folder: Path, study) -> Path:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = list(search.params)
    w.writerow(["trial", "state", search.objective, *keys, "error"])
    interrupted = set(interrupted_trials(study))
    for t in study.get_trials(deepcopy=False):
        vals = [cell(search.params[k].value(t.params[k])) if k in t.params else "" for k in keys]
        state = "interrupted" if t.number in interrupted else t.state.name.lower()
        w.writerow([t.number, state, cell(t.value) if t.value is not None else "", *vals, t.user_attrs.get("error", "")])
    with atomic_path(folder / "trials.csv", suffix=".csv") as tmp:
        tmp.write_text(buf.getvalue())
    return folder / "trials.csv"
