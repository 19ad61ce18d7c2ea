"""One point of a sweep (or one trial of a search): an experiment config run by
:func:`neurohw.experiments.runner.run_experiment` in a worker, its metrics as one flat row.

:func:`run_point` is what every executor runs; it never raises for a problem of the point
itself: a failure comes back as ``status: failed`` with one line, and the other points go on.

Metrics (:func:`flat_metrics`): metrics.json's per-seed entry flattened to dotted names
(``test_accuracy``, ``cv_accuracy``, ``zero_shot.seen.a_to_b``, ...) plus the energy per sample
(``energy.encoder_j_per_sample``, ...) and the encoder's array cost (``array.cells``, ...), numbers only; with several run seeds the mean over them.
Wall times (``timing``, ``*_s``, ``training_cost_ratio``) are left out: they measure the machine,
and the same seeds must give the same table on any executor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from neurohw.devices.array_cost import ARRAY_COSTS
from neurohw.errors import UserError
from neurohw.experiments.tasks import task_of

#: the environment variables that size the thread pools of numpy's BLAS, OpenMP, MKL and numba
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
#: the validation scores: measured on held-out training data, never on the test split
VALIDATION_METRICS = ("cv_accuracy", "val_accuracy", "zero_shot.val_seen.a_to_b", "zero_shot.val_seen.b_to_a",
                      "zero_shot.val_seen.mean")
_ENERGY = ("encoder_j_per_sample", "head_j_per_sample", "digital_baseline_j_per_sample")


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point: its id, the raw experiment config, the folder of
    its run directory and the threads it may use."""

    task: str
    config: dict
    runs_dir: str
    threads: int = 1


def limit_threads(n: int) -> None:
    """Use at most ``n`` threads in this process: the environment for libraries not loaded yet,
    and torch, the BLAS pools (threadpoolctl) and numba for those already loaded."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def run_point(task: PointTask) -> dict:
    """Run ``task``'s experiment; ``{"status": "ok", "metrics", "run_dir", "wall_s"}`` or
    ``{"status": "failed", "error": <one line>}``."""
    t0 = time.perf_counter()
    try:
        limit_threads(task.threads)
        # inside, after limit_threads: the runner and the schema load torch and numba, whose thread pools are sized first
        from neurohw.experiments.run_dir import RunDir
        from neurohw.experiments.runner import run_experiment  # (same reason)
        from neurohw.experiments.schema import parse_config  # (same reason)

        cfg = parse_config(task.config, task.task)
        path = run_experiment(cfg, task.runs_dir, progress=False)
        metrics = flat_metrics(RunDir.open(path).metrics())  # read back through its manifest, like every run reader
        return {"status": "ok", "metrics": metrics, "error": None, "run_dir": str(path), "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # catch-all on purpose: a point's failure is its record, never the sweep's end
        return {"status": "failed", "metrics": {}, "error": one_line(exc), "run_dir": None, "wall_s": time.perf_counter() - t0}


def one_line(exc: BaseException) -> str:
    """An exception as one line: a UserError's message, else its type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _timing(key: str) -> bool:
    return key == "timing" or key.endswith("_s") or key == "training_cost_ratio"


def _flatten(obj: Any, prefix: str, out: dict) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not _timing(str(k)):
                _flatten(v, f"{prefix}{k}.", out)
    elif obj is None or (isinstance(obj, (int, float)) and not isinstance(obj, bool)):
        out[prefix[:-1]] = obj


def flat_metrics(metrics: dict) -> dict[str, float | None]:
    """The row of one run (see the module doc): per-seed metrics flattened, means over seeds."""
    rows = []
    for entry in metrics.get("per_seed") or [metrics]:
        row: dict = {}
        _flatten({k: v for k, v in entry.items() if k != "seed"}, "", row)
        zs = row.get("zero_shot.val_seen.a_to_b"), row.get("zero_shot.val_seen.b_to_a")
        if None not in zs:
            row["zero_shot.val_seen.mean"] = (zs[0] + zs[1]) / 2
        rows.append(row)
    out: dict[str, float | None] = {}
    for key in rows[0]:
        vals = [r.get(key) for r in rows]
        out[key] = None if any(v is None for v in vals) else (vals[0] if len(vals) == 1 else float(sum(vals) / len(vals)))
    _flatten({"energy": {k: metrics.get("energy", {}).get(k) for k in _ENERGY}}, "", out)
    if "array" in metrics:  # the encoder's array cost (neurohw.devices.array_cost); runs before it had none
        _flatten({"array": {k: metrics["array"].get(k) for k in ARRAY_COSTS}}, "", out)
    return out


def metric_names(cfg) -> set[str]:
    """The metrics a run of ``cfg`` (an ExperimentConfig) reports (checked against real runs in
    the tests), so that a sweep or search naming another is refused before it runs."""
    energy = {f"energy.{k}" for k in _ENERGY} | {f"array.{k}" for k in ARRAY_COSTS}
    return task_of(cfg).metric_names(cfg) | energy
