"""Zero-shot transfer study, two head variants that were tried and NOT adopted:

- ``zca``: ZCA whitening (eps 0.1 on standardised features, training rows) before the linear
  projection, in place of per-feature standardisation alone;
- ``aux<w>``: an auxiliary within-modality supervised InfoNCE (a second same-class sample of the
  same modality as the positive), weight ``w``, added to the cross-modal loss.

Both are scored by the same pseudo-unseen protocol as benchmarks/zero_shot_transfer.py (seeds 0-2,
its 7 held-out pairs, training split of the seen classes only). They replace
``neurohw.experiments.zero_shot.train_pair`` in this process only, because they did not earn a
config field. Run: ``python benchmarks/zero_shot_transfer_variants.py zca`` (or ``aux1.0``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
import neurohw.experiments.zero_shot as zsm
from neurohw.heads.losses import symmetric_info_nce
from neurohw.heads.training import TrainSettings, train
from zero_shot_transfer import quickstart_config, training_features, PSEUDO_PAIRS
from neurohw.experiments.features import FeatureSet
from neurohw.reservoir.lsm import feature_matrix

VAR = sys.argv[1]
def zca(x, eps=1e-1):
    mu = x.mean(0); xc = x - mu; sd = xc.std(0); sd[sd < 1e-6] = 1; xc = xc / sd
    c = xc.T @ xc / len(xc); w, v = np.linalg.eigh(c)
    W = v @ np.diag(1 / np.sqrt(w + eps)) @ v.T
    return mu, sd, W

def train_pair(a_tr, b_tr, pool, seen, head, zs, objective, score_fn, seed, progress):
    rng = np.random.default_rng([seed, 23, 0]); torch.manual_seed(seed)
    la, lb = zsm._pool_labels(a_tr, pool), zsm._pool_labels(b_tr, pool)
    seen_k = [pool.index(c) for c in seen]
    ia = np.flatnonzero(np.isin(la, seen_k)); by_b = {k: np.flatnonzero(lb == k) for k in seen_k}
    ib = np.concatenate(list(by_b.values()))
    xa, xb = torch.tensor(a_tr.x), torch.tensor(b_tr.x)
    pair = zsm.ProjectionPair(a_tr.x.shape[1], b_tr.x.shape[1], head.dim, head.hidden, head.normalize)
    pair.a.norm.fit(a_tr.x[ia]); pair.b.norm.fit(b_tr.x[ib])
    if VAR == "zca":
        for h, x in ((pair.a, a_tr.x[ia]), (pair.b, b_tr.x[ib])):
            mu, sd, W = zca(x.astype(np.float64))
            lin = torch.nn.Linear(x.shape[1], x.shape[1], bias=False); lin.weight.data = torch.tensor(W, dtype=torch.float32)  # W symmetric: y = x W; lin.requires_grad_(False)
            h.net = torch.nn.Sequential(lin, *h.net)
    def loss(idx):
        qa = ia[idx]; y = la[qa]
        qb = np.array([rng.choice(by_b[k]) for k in y])
        za, zb = pair(xa[qa], xb[qb]); yt = torch.tensor(y)
        L = symmetric_info_nce(za, zb, head.temperature, yt)
        if VAR.startswith("aux"):
            qa2 = np.array([rng.choice(ia[la[ia] == k]) for k in y]); qb2 = np.array([rng.choice(by_b[k]) for k in y])
            za2, zb2 = pair(xa[qa2], xb[qb2])
            L = L + float(VAR[3:]) * (symmetric_info_nce(za, za2, head.temperature, yt) + symmetric_info_nce(zb, zb2, head.temperature, yt)) / 2
        return L
    s = TrainSettings(head.epochs, head.lr, head.batch_size, head.weight_decay, head.patience)
    return pair, train(pair, loss, len(ia), lambda: score_fn(pair), s, rng, False, "")
zsm.train_pair = train_pair
cfg = quickstart_config()
ab, ba, vab, vba = [], [], [], []
for seed in [0, 1, 2]:
    fa, fb = training_features(cfg, seed)
    a = FeatureSet(feature_matrix(fa, cfg.head.features), fa["_labels"], fa["_classes"]); b = FeatureSet(feature_matrix(fb, cfg.head.features), fb["_labels"], fb["_classes"])
    for r in zsm.pseudo_unseen_validation(a, b, cfg.head, cfg.zero_shot, seed, PSEUDO_PAIRS):
        ab.append(r["pseudo_unseen"]["a_to_b"]); ba.append(r["pseudo_unseen"]["b_to_a"]); vab.append(r["val_seen"]["a_to_b"]); vba.append(r["val_seen"]["b_to_a"])
print(f"{VAR:<22} {np.mean(ab):.3f} ± {np.std(ab, ddof=1):.3f}  {np.mean(ba):.3f} ± {np.std(ba, ddof=1):.3f}  mean {np.mean(ab+ba):.3f}  val {np.mean(vab):.3f} {np.mean(vba):.3f}", flush=True)
