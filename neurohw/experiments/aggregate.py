"""metrics.json: the per-seed results of a run folded into means over seeds (sample std,
``ddof=1``, beside each mean; 0 for one seed), per-seed details kept."""

from __future__ import annotations

import numpy as np

import neurohw
from neurohw.experiments.results import SeedResult
from neurohw.experiments.schema import ExperimentConfig


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _retrieval(items: list[dict]) -> tuple[dict, dict]:
    """Mean and std of ``{seen|unseen: {a_to_b, b_to_a}}`` retrieval dicts."""
    mean: dict = {}
    std: dict = {}
    for s in ("seen", "unseen"):
        mean[s], std[s] = {}, {}
        for d in ("a_to_b", "b_to_a"):
            mean[s][d], std[s][d] = mean_std([it[s][d] for it in items])
    return mean, std


def _zero_shot(cfg: ExperimentConfig, per_seed: list[dict]) -> dict:
    first = per_seed[0]
    m: dict = {}
    m["zero_shot"], m["zero_shot_std"] = _retrieval([p["zero_shot"] for p in per_seed])
    m["chance"] = first["chance"]
    m["classes"] = {"seen": first["seen_classes"], "unseen": first["unseen_classes"]}
    m["selection"] = cfg.zero_shot.selection
    m["optimistic"] = cfg.zero_shot.selection != "validation"
    m["pairing"] = cfg.zero_shot.pairing
    if "zero_shot_prototypical" in first:
        m["zero_shot_prototypical"], m["zero_shot_prototypical_std"] = _retrieval([p["zero_shot_prototypical"] for p in per_seed])
    if first.get("rotations"):
        rots = []
        for k, r in enumerate(first["rotations"]):
            mean, std = _retrieval([p["rotations"][k]["zero_shot"] for p in per_seed])
            rots.append({"unseen_classes": r["unseen_classes"], "zero_shot": mean, "zero_shot_std": std, "chance": r["chance"]})
        m["rotations"] = rots
    if first.get("rotations") or first.get("raw_baseline"):
        m["over_splits"] = _over_splits(per_seed)
    return m


def _over_splits(per_seed: list[dict]) -> dict:
    """Retrieval mean and std over every (seed, class split) - the main split and each rotation -
    per method: ``zero_shot`` (contrastive heads on the reservoir features),
    ``zero_shot_prototypical`` and ``raw_baseline`` (the same heads on binned raw events), with
    the mean chance and the number of (seed, split) values."""
    runs = {"zero_shot": [], "zero_shot_prototypical": [], "raw_baseline": []}
    chance = {"seen": [], "unseen": []}
    for p in per_seed:
        splits = [p] + list(p.get("rotations") or [])
        for sp in splits:
            chance["seen"].append(sp["chance"]["seen"]), chance["unseen"].append(sp["chance"]["unseen"])
            for key in ("zero_shot", "zero_shot_prototypical"):
                if key in sp:
                    runs[key].append(sp[key])
        for sp in p.get("raw_baseline") or []:
            runs["raw_baseline"].append(sp["zero_shot"])
    out: dict = {"chance": {s: float(np.mean(v)) for s, v in chance.items()}}
    for key, items in runs.items():
        if items:
            mean, std = _retrieval(items)
            out[key] = {"mean": mean, "std": std, "n": len(items)}
    return out


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
    from neurohw.devices.array_cost import array_cost, lsm_shapes

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
    if cfg.task in ("classify", "linear_probe"):
        m["test_accuracy"], m["test_accuracy_std"] = mean_std([p["test_accuracy"] for p in per_seed])
        m["chance"] = per_seed[0]["chance"]
    else:
        m.update(_zero_shot(cfg, per_seed))
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
