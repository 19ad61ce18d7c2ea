"""Zero-shot transfer study: pseudo-unseen validation of head configurations.

Nothing here looks at test data or at the real unseen classes (8, 9): the features of the
quickstart's encoders are extracted (through the feature cache) for the training split only,
and every configuration is scored by :func:`neurohw.experiments.zero_shot.pseudo_unseen_validation`
(2 of the 7 seen classes held out as pseudo-unseen, trained on the other 5, retrieval among the
held-out 2 measured on their training-split samples). The real split is run afterwards with
``neurohw run experiments/quickstart.yaml --set zero_shot.rotations=...``.

Run: ``python benchmarks/zero_shot_transfer.py [--seeds 0 1 2] [--only NAME ...]``; prints one
table row per configuration (mean +- std over seeds x held-out pairs, chance 0.5).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

#: held-out pseudo-unseen pairs: every seen class held out exactly twice (7 pairs of the 21)
PSEUDO_PAIRS = [(1, 2), (3, 4), (5, 6), (7, 1), (2, 3), (4, 5), (6, 7)]

#: head configurations tried (overrides of the quickstart's head / zero_shot / reservoir sections)
CONFIGS: dict[str, dict] = {
    "paper": {},  # the paper's defaults: tau 1.0, dim 64, lr 1e-3, 100 epochs, linear, raw dot product
    "pair_targets": {"zero_shot": {"targets": "pair"}},
    "norm_tau0.1": {"head": {"normalize": True, "temperature": 0.1}},
    "norm_tau0.05": {"head": {"normalize": True, "temperature": 0.05}},
    "norm_tau0.3": {"head": {"normalize": True, "temperature": 0.3}},
    "dim8": {"head": {"dim": 8}},
    "dim8_norm_tau0.1": {"head": {"dim": 8, "normalize": True, "temperature": 0.1}},
    "wd1e-2": {"head": {"weight_decay": 1e-2}},
    "wd1e-1": {"head": {"weight_decay": 1e-1}},
    "epochs10": {"head": {"epochs": 10}},
    "mlp128": {"head": {"hidden": [128]}},
    "rate_only": {"head": {"features": ["rate"]}},
    "with_membrane": {"head": {"features": ["rate", "counts", "membrane"]},
                      "reservoir": {"features": ["rate", "counts", "membrane"]}},
    "reservoir512": {"reservoir": {"n_neurons": 512}},
    "prototypical": {"objective": "prototypical"},
    "relative_rep": {"objective": "relative"},  # no training: cosine to the training classes' prototypes
}


def quickstart_config(overrides: dict | None = None):
    """The quickstart's config with nested ``overrides`` applied, validated."""
    from neurohw.experiments.schema import experiment_path, parse_config, read_yaml

    raw = read_yaml(experiment_path("quickstart"))
    for section, values in (overrides or {}).items():
        if section == "reservoir":
            for m in raw["reservoir"]:
                raw["reservoir"][m].update(values)
        else:
            raw.setdefault(section, {}).update(values)
    return parse_config(raw, "quickstart.yaml")


def training_features(cfg, seed: int):
    """Training-split FeatureSets of both modalities for ``seed`` (the runner's sample selection and
    encoders, through the feature cache). The test split is never encoded or read here."""
    from neurohw.experiments.encoding import ModalityReservoir
    from neurohw.experiments.extraction import extract
    from neurohw.experiments.modalities import resolve_modalities

    out = []
    for res in ModalityReservoir.for_seed(cfg, resolve_modalities(cfg), seed):  # the run's samples and encoders
        feats = extract(res, "train", cfg.batch_size, False).features
        train_idx = res.indices("train")
        out.append({k: v for k, v in feats.items()} | {"_labels": res.mod.train.labels[train_idx], "_classes": list(res.mod.train.classes)})
    return out


def main(argv=None) -> None:
    from neurohw.experiments.features import FeatureSet
    from neurohw.experiments.zero_shot import pseudo_unseen_validation
    from neurohw.reservoir.lsm import feature_matrix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", default=None, help="configuration names (default: all)")
    ap.add_argument("--all-pairs", action="store_true", help="hold out each of the 21 seen pairs (confirmation round)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    names = args.only or list(CONFIGS)
    held = [(i, j) for i in range(1, 8) for j in range(i + 1, 8)] if args.all_pairs else PSEUDO_PAIRS
    feats: dict = {}
    rows = []
    print(f"pseudo-unseen validation: seen 1-7 only, held-out pairs {held}, seeds {args.seeds}; chance 0.5")
    print(f"{'config':<22} {'pseudo-unseen a->b':>20} {'b->a':>16} {'mean':>6} {'val-seen a->b':>14} {'b->a':>6}  s")
    for name in names:
        over = dict(CONFIGS[name])
        objective = over.pop("objective", "contrastive")
        cfg = quickstart_config(over)
        res_key = json.dumps({k: v.model_dump(mode='json') for k, v in cfg.reservoir.items()}, sort_keys=True)
        t0 = time.perf_counter()
        ab, ba, vab, vba, per_seed = [], [], [], [], []
        for seed in args.seeds:
            key = (res_key, seed)
            if key not in feats:
                feats[key] = training_features(cfg, seed)
            fa, fb = feats[key]
            a = FeatureSet(feature_matrix(fa, cfg.head.features), fa["_labels"], fa["_classes"])
            b = FeatureSet(feature_matrix(fb, cfg.head.features), fb["_labels"], fb["_classes"])
            for r in pseudo_unseen_validation(a, b, cfg.head, cfg.zero_shot, seed, held, objective):
                ab.append(r["pseudo_unseen"]["a_to_b"]), ba.append(r["pseudo_unseen"]["b_to_a"])
                vab.append(r["val_seen"]["a_to_b"]), vba.append(r["val_seen"]["b_to_a"])
            k = len(held)
            per_seed.append(float(np.mean(ab[-k:] + ba[-k:])))
        row = {
            "config": name, "n": len(ab),
            "pseudo_unseen": {"a_to_b": [float(np.mean(ab)), float(np.std(ab, ddof=1))],
                              "b_to_a": [float(np.mean(ba)), float(np.std(ba, ddof=1))]},
            "mean": float(np.mean(ab + ba)),
            "per_seed_mean": per_seed,
            "val_seen": {"a_to_b": float(np.mean(vab)), "b_to_a": float(np.mean(vba))},
            "s": time.perf_counter() - t0,
        }
        rows.append(row)
        pu = row["pseudo_unseen"]
        print(f"{name:<22} {pu['a_to_b'][0]:>12.3f} ± {pu['a_to_b'][1]:.3f} {pu['b_to_a'][0]:>8.3f} ± {pu['b_to_a'][1]:.3f} "
              f"{row['mean']:>6.3f} {row['val_seen']['a_to_b']:>14.3f} {row['val_seen']['b_to_a']:>6.3f}  {row['s']:.0f}  "
              f"per seed {' '.join(f'{m:.3f}' for m in per_seed)}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
