"""The sweep file and its points.

A sweep is a base experiment (:mod:`.base`) and axes over any of its keys::

    name: noise_robustness
    base: digits_ridge                       # a shipped experiment, a path, or an inline mapping
    overrides: {device.model: taox_rram_40nm}
    axes:                                    # the grid: every combination
      device.overrides.read_noise.relative: [0.0, 0.05, 0.1, 0.2]
      device.overrides.adc.bits: [4, 6, 8]
    zip:                                     # axes that move together (equal lengths)
      - {reservoir.digits.n_neurons: [64, 128], reservoir.digits.target_rate: [0.08, 0.06]}
    seeds: [0, 1, 2]                         # run seeds: one row per point and seed
    metrics: [test_accuracy, cv_accuracy]    # plotted (the table has every metric)

Points are the product of the axis groups in file order (``axes`` keys first, then each ``zip``
group; the last varies fastest), numbered from 0; each runs once per seed. Everything is checked
before any point runs (:func:`load_sweep`): the file against this schema, every axis key and
every value against the experiment schema (alone first, so a message names the axis, then every
point), the metric names, the datasets each point opens and the memory its reservoirs need.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from neurohw.config import Section, read_yaml, validate
from neurohw.errors import ConfigError, did_you_mean
from neurohw.experiments.schema import NAME_PATTERN, ExperimentConfig
from neurohw.resources import shipped_yaml
from neurohw.sweeps import base as base_mod
from neurohw.experiments.tasks import task_of
from neurohw.sweeps.point import metric_names


class SweepSpec(Section):
    """A sweep file (see the module doc)."""

    name: str | None = Field(None, description="the sweep's name (default: the file's stem); names its folder")
    base: str | dict[str, Any] = Field(description="the base experiment: a YAML path, a shipped name, or an inline mapping")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fixed changes to the base (nested or dotted keys)")
    axes: dict[str, Any] = Field(default_factory=dict, description="key -> list of values; the grid is every combination")
    zip_: list[dict[str, Any]] = Field(default_factory=list, alias="zip", description="groups of axes that move together")
    seeds: list[int] | None = Field(None, description="run seeds (default: the base's); one row per point and seed")
    metrics: list[str] | None = Field(None, description="metrics to plot (default: the task's test and validation scores)")
    output: str = Field("sweeps", description="parent folder of the sweep folder <output>/<name> (--out replaces both)")
    threads: int = Field(1, ge=1, le=256, description="threads of one point (the same for every executor and worker count)")

    @field_validator("name")
    @classmethod
    def _plain(cls, v):
        if v is not None and not NAME_PATTERN.fullmatch(v):
            raise ValueError("name must be a plain file name: letters, digits, '.', '_' or '-'")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError(f"seeds must list distinct non-negative integers, got {v}")
        return v


@dataclass(frozen=True)
class Point:
    """One point: its number and its values (dotted key -> value, in axis order)."""

    index: int
    values: dict[str, Any]

    def label(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.values.items())


@dataclass
class Sweep:
    """A validated sweep: every point and seed checked by the experiment schema."""

    name: str
    source: str
    raw: dict  # the base experiment with overrides applied
    axes: list[str]  # every axis key, in order (zip members included)
    points: list[Point]
    seeds: list[int]
    metrics: list[str]
    output: str
    threads: int
    task: str
    configs: dict[int, ExperimentConfig] = field(default_factory=dict, repr=False)

    def task_id(self, point: int, seed: int) -> str:
        return f"p{point:04d}-s{seed}"

    def point_raw(self, point: Point, seed: int) -> dict:
        """The raw experiment of ``point`` for one run seed (what a worker runs)."""
        raw = base_mod.point_config(self.raw, point.values, self.source)
        raw["seeds"] = [int(seed)]
        raw.pop("seed", None)
        raw["name"] = base_mod.run_name(self.name, self.task_id(point.index, seed))
        raw.setdefault("plots", False)  # per-point figures only when the base asks for them
        return raw

    def describe(self) -> dict:
        """What the sweep folder's ``sweep.json`` holds: the resolved sweep."""
        return {"name": self.name, "source": self.source, "task": self.task, "axes": self.axes, "seeds": self.seeds,
                "metrics": self.metrics, "threads": self.threads, "base": self.raw,
                "points": [{"point": p.index, "values": p.values} for p in self.points]}


def sweep_path(name_or_path: str | Path) -> Path:
    """A sweep YAML path as given, or a shipped sweep's file for a bare name (``drift``)."""
    return shipped_yaml(name_or_path, "sweeps", "sweep")


def read_spec(path_or_name: str | Path, raw_spec: dict | None, find, what: str, example: str) -> tuple[dict, str, Path | None]:
    """``(raw mapping, source name, folder)`` of a sweep or search: read from its file (``find``
    resolves a shipped name) or given as ``raw_spec`` (then it has no folder)."""
    if raw_spec is not None:
        return raw_spec, str(path_or_name), None
    path = find(path_or_name)
    return read_yaml(path, ConfigError, what, example), str(path), path.parent


def _axis_groups(spec: SweepSpec, source: str) -> list[list[tuple[str, list]]]:
    """The axis groups: each ``axes`` key alone, then each ``zip`` group (its keys, equal lengths)."""
    groups: list[list[tuple[str, list]]] = [[(k, v)] for k, v in spec.axes.items()]
    for n, group in enumerate(spec.zip_):
        if not group:
            raise ConfigError(f"{source}: zip group {n} is empty; give its axes as key: [values]")
        groups.append(list(group.items()))
    seen: list[str] = []
    for group in groups:
        for key, values in group:
            base_mod.check_key(key, source)
            if not isinstance(values, list):
                raise ConfigError(f"{source}: axis {key!r} must be a list of values, got {values!r}; write {key}: [{values!r}]")
            if not values:
                raise ConfigError(f"{source}: axis {key!r} is empty; give at least one value")
            for other in seen:
                if key == other or key.startswith(other + ".") or other.startswith(key + "."):
                    raise ConfigError(f"{source}: axis {key!r} overlaps axis {other!r}; sweep each key once")
            seen.append(key)
        lengths = {len(v) for _, v in group}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in group)
            raise ConfigError(f"{source}: the axes of a zip group move together and need equal lengths, got {sizes}")
    return groups


def load_sweep(path_or_name: str | Path, overrides: list[str] | None = None, raw_spec: dict | None = None) -> Sweep:
    """Read and check a sweep file (or ``raw_spec``, its content): everything of the module doc,
    before anything runs or is written. ``overrides``: ``--set`` changes of the base experiment."""
    raw_spec, source, folder = read_spec(path_or_name, raw_spec, sweep_path, "sweep", "see experiments/sweeps/ for complete examples")
    spec = validate(SweepSpec, raw_spec, source)
    study = base_mod.study_base(spec, Path(source), folder, source, overrides)
    groups = _axis_groups(spec, source)
    raw, base_cfg, name, seeds, seeds_raw = study.raw, study.config, study.name, study.seeds, study.seeds_raw
    # every axis value alone, so that a message names the axis and its value
    for group in groups:
        for i in range(len(group[0][1])):
            base_mod.validate_point(seeds_raw, {k: v[i] for k, v in group}, f"{source}: axis")
    choices = [[[(k, v[i]) for k, v in g] for i in range(len(g[0][1]))] for g in groups]  # per group: its value sets
    points = [Point(i, dict(kv for chosen in combo for kv in chosen)) for i, combo in enumerate(itertools.product(*choices))]
    configs = {p.index: base_mod.validate_point(seeds_raw, p.values, f"{source}: point {p.index}") for p in points}
    tasks = {c.task for c in configs.values()}
    if len(tasks) > 1:
        raise ConfigError(f"{source}: every point must run the same task, got {sorted(tasks)}; sweep one task per file")
    task = tasks.pop()
    metrics = list(spec.metrics) if spec.metrics is not None else default_metrics(base_cfg)
    known = set().union(*(metric_names(c) for c in configs.values()))
    for m in metrics:
        if m not in known:
            raise ConfigError(f"{source}: metric {m!r} is not measured by this sweep's runs{did_you_mean(m, known)}; "
                              f"measured: {', '.join(sorted(known))}")
    return Sweep(name=name, source=source, raw=raw, axes=[k for g in groups for k, _ in g], points=points, seeds=seeds,
                 metrics=metrics, output=spec.output, threads=spec.threads, task=task, configs=configs)


def default_metrics(cfg: ExperimentConfig) -> list[str]:
    """The plotted metrics when the sweep names none: the test score and the validation score."""
    return task_of(cfg).default_metrics(cfg)
