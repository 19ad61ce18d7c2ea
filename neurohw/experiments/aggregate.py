"""metrics.json: the per-seed results of a run folded into means over seeds (sample std,
``ddof=1``, beside each mean; 0 for one seed), per-seed details kept."""

from __future__ import annotations

from neurohw.devices.array_cost import array_cost, lsm_shapes
import neurohw
from neurohw.experiments.results import SeedResult
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.stats import mean_std
from neurohw.experiments.tasks import task_of


def _baselines(results: list[SeedResult]) -> dict:
    """Means over seeds of the baseline's numbers and of its seen/unseen retrieval dicts."""
    first = results[0].baselines
    out = {}
    for key, v in first.items():
        if isinstance(v, (int, float)):
            out[key] = mean_std([r.baselines[key] for r in results])[0]
        elif isinstance(v, dict) and key in ("seen", "unseen"):
            out[key] = {d: mean_std([r.baselines[key][d] for r in results])[0] for d in v}
    return out


def _array(cfg: ExperimentConfig, result: SeedResult) -> dict:
    """The array cost of every modality's encoder together (:mod:`neurohw.devices.array_cost`);
    the same for every run seed (the shapes come from the config and the data)."""
    shapes = [s for enc in result.encoders for s in lsm_shapes(enc["lsm"]["n_inputs"], enc["lsm"]["n_neurons"])]
    return array_cost(cfg.device.resolved, shapes)


def aggregate(cfg: ExperimentConfig, modalities: list[str], results: list[SeedResult]) -> dict:
    """The content of metrics.json (documented in docs/experiments.md)."""
    per_seed = [r.metrics for r in results]
    m: dict = {
        "name": cfg.name,
        "task": cfg.task,
        "seed": cfg.run_seeds[0],
        "seeds": cfg.run_seeds,
        "neurohw_version": neurohw.__version__,
        "modalities": list(modalities),
    }
    m.update(task_of(cfg).summary(cfg, per_seed))
    if results[0].baselines:
        m["baselines"] = _baselines(results)
    e = [r.energy for r in results]
    m["energy"] = {
        "encoder_j_per_sample": mean_std([x.encoder_j for x in e])[0],
        "head_j_per_sample": mean_std([x.head_j for x in e])[0],
        "digital_baseline_j_per_sample": mean_std([x.digital_baseline_j for x in e])[0],
        "mac_j": e[0].mac_j,
        "head_macs_per_sample": e[0].head_macs,
    }
    m["array"] = _array(cfg, results[0])
    m["timing"] = {"features_s": float(sum(r.timing.features_s for r in results)),
                   "train_s": float(sum(r.timing.train_s for r in results))}
    m["per_seed"] = per_seed
    return m
