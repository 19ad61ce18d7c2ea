"""What a multi-objective search trades off: its objectives, their units, and its constraints.

An objective is a metric of a trial's run (:func:`neurohw.sweeps.point.flat_metrics`) with a
direction:

| name | unit | what |
|---|---|---|
| ``validation`` (or a named one: ``cv_accuracy``, ``val_accuracy``, ``zero_shot.val_seen.mean``, ...) | fraction | the score on held-out training data (:func:`objective_name`) |
| ``energy_per_sample`` | J per test sample | ``energy.encoder_j_per_sample + energy.head_j_per_sample``: the crossbars' read energy (ledger, :mod:`neurohw.devices.energy`) plus the head's digital MACs |
| ``energy.encoder_j_per_sample``, ``energy.head_j_per_sample`` | J per test sample | either part alone |
| ``array.cells`` | cells | programmed RRAM cells (two per weight) |
| ``array.tiles`` | tiles | arrays of the device's size the crossbars span |
| ``array.adc_columns`` | converters | column ADCs in use |
| ``array.adc_bit_columns`` | bit x converters | ADC bits x column ADCs in use |

(:mod:`neurohw.devices.array_cost` defines the array costs.) The default direction is
``maximize`` for a validation score and ``minimize`` for a cost. Test-split metrics are refused:
a search selects on validation data only.

A constraint bounds a metric of the same list (``{metric: validation, min: 0.85}``): a trial
outside it is *infeasible* and is never on the front. Optuna's NSGA-II, NSGA-III and TPE samplers
read a trial's constraint values, ``c <= 0`` for a feasible trial; here ``c = min - value`` and
``c = value - max``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from neurohw.config import Section
from neurohw.devices.array_cost import ARRAY_COSTS
from neurohw.errors import ConfigError, did_you_mean
from neurohw.sweeps.point import VALIDATION_METRICS, metric_names
from neurohw.experiments.tasks import task_of

#: metrics a multi-objective search may use beside the validation scores, with their units
COST_UNITS = {
    "energy_per_sample": "J/sample",
    "energy.encoder_j_per_sample": "J/sample",
    "energy.head_j_per_sample": "J/sample",
    **{f"array.{k}": unit for k, unit in ARRAY_COSTS.items()},
}


class ObjectiveSpec(Section):
    """One objective: a metric (module doc) and its direction (default by the metric)."""

    metric: str
    direction: Literal["maximize", "minimize"] | None = None


class ConstraintSpec(Section):
    """A bound on a metric: ``min`` and/or ``max``."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ConstraintSpec:
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs min, max or both")
        if self.min is not None and self.max is not None and not self.min <= self.max:
            raise ValueError(f"min must not exceed max, got min={self.min}, max={self.max}")
        return self


def is_validation(metric: str) -> bool:
    """True for a validation score (maximised by default)."""
    return metric == "validation" or metric in VALIDATION_METRICS


def direction_of(spec: ObjectiveSpec) -> str:
    """The objective's direction: as given, else maximise a validation score, minimise a cost."""
    if spec.direction is not None:
        return spec.direction
    return "maximize" if is_validation(spec.metric) else "minimize"


def unit_of(metric: str) -> str:
    """The unit of an objective or constraint metric (module doc)."""
    return "fraction" if is_validation(metric) else COST_UNITS[metric]


def objective_name(objective: str, cfg) -> str:
    """The metric a trial with config ``cfg`` is scored by (``validation`` resolved by its head)."""
    if objective != "validation":
        return objective
    return task_of(cfg).validation_metric(cfg)


def check_metric(metric: str, base_cfg, source: str, what: str) -> None:
    """A metric an objective or constraint may use: a validation score the base's task and head
    report, or a cost (module doc); test metrics refused with one line."""
    allowed = ["validation", *VALIDATION_METRICS, *COST_UNITS]
    if metric.startswith("test") or metric.split(".")[:2] in (["zero_shot", "seen"], ["zero_shot", "unseen"]):
        raise ConfigError(f"{source}: {what} {metric!r} is measured on the test split; a search selects on validation data only")
    if metric not in allowed:
        raise ConfigError(f"{source}: {what} {metric!r} is not a search metric{did_you_mean(metric, allowed)}; use one of {', '.join(allowed)}")
    if is_validation(metric):
        measured = objective_name(metric, base_cfg)
        if measured not in metric_names(base_cfg):
            raise ConfigError(f"{source}: {what} {metric!r} is not measured by the base's {base_cfg.task} task with a "
                              f"{base_cfg.head_kind} head; use 'validation' ({objective_name('validation', base_cfg)} there)")


def check_objectives(objectives: list[ObjectiveSpec], constraints: list[ConstraintSpec], base_cfg, source: str) -> None:
    """Every objective and constraint metric (:func:`check_metric`); objectives distinct."""
    if len(objectives) < 2:
        raise ConfigError(f"{source}: objectives must list at least two metrics (one objective: use 'objective:')")
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: objectives name a metric twice: {', '.join(names)}")
    for o in objectives:
        check_metric(o.metric, base_cfg, source, "objective")
    for c in constraints:
        check_metric(c.metric, base_cfg, source, "constraint")


def metric_value(metric: str, metrics: dict, cfg) -> float | None:
    """The value of ``metric`` in a trial's flat metrics (``cfg``: the trial's ExperimentConfig,
    which resolves ``validation``); None when the run does not report it."""
    if metric == "energy_per_sample":
        parts = [metrics.get("energy.encoder_j_per_sample"), metrics.get("energy.head_j_per_sample")]
        return None if None in parts else float(parts[0] + parts[1])
    value = metrics.get(objective_name(metric, cfg) if is_validation(metric) else metric)
    if value is None:
        return None
    return int(value) if metric.startswith("array.") else float(value)  # array costs are counts


def constraint_values(constraints: list[ConstraintSpec], values: dict[str, float]) -> list[float]:
    """Optuna's constraint values (<= 0: satisfied) of a trial with metric ``values``."""
    out = []
    for c in constraints:
        v = values[c.metric]
        if c.min is not None:
            out.append(float(c.min - v))
        if c.max is not None:
            out.append(float(v - c.max))
    return out


def final_score_name(cfg) -> str:
    """The test-split score reported for a front member (never used to select): classification
    ``test_accuracy``, zero-shot seen-class retrieval (the mean of both directions)."""
    return task_of(cfg).final_score_name()


def final_score(metrics: dict, cfg) -> float | None:
    """A run's test score (:func:`final_score_name`) from its flat metrics."""
    return task_of(cfg).final_score(metrics)
