"""The trainable spiking-RNN baseline (snntorch, BPTT) on the run's own samples, with its
training time beside the LSM head's (the paper's training-cost comparison)."""

from __future__ import annotations

import numpy as np

from neurohw.experiments.encoding import ModalityReservoir
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.results import ModalityFeatures
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.tasks import task_of
from neurohw.experiments.zero_shot import make_pairs
from neurohw.heads.validation import stratified_split
from neurohw.progress import note


def run_srnn(cfg: ExperimentConfig, reservoirs: list[ModalityReservoir], feats: list[ModalityFeatures], seed: int,
             progress: bool, lsm_train_s: float) -> dict:
    """Train the baseline of the task (classifier or contrastive pair) on the raw rasters of the
    samples the LSM used; its metrics and ``training_cost_ratio`` = its time / the LSM head's."""
    note("training the spiking-RNN baseline (BPTT)", progress)
    rng = np.random.default_rng([seed, 51])
    if task_of(cfg).cross_modal:
        res = _contrastive(cfg, reservoirs, feats, seed, rng)
    else:
        res = _classifier(cfg, reservoirs[0], feats[0], seed, rng)
    res["lsm_head_train_s"] = lsm_train_s
    res["training_cost_ratio"] = res["train_s"] / max(lsm_train_s, 1e-9)
    return res


def _raster_tensor(res: ModalityReservoir, split: str, indices: np.ndarray):
    from neurohw.baselines import spiking_rnn as srnn  # snntorch: loaded only when the spiking-RNN baseline is enabled

    return srnn.stack_rasters(res.rasters(split, indices))


def _classifier(cfg, res: ModalityReservoir, f: ModalityFeatures, seed: int, rng) -> dict:
    from neurohw.baselines import spiking_rnn as srnn  # snntorch: loaded only when the spiking-RNN baseline is enabled

    s = cfg.baselines.srnn
    x_tr, x_te = _raster_tensor(res, "train", f.train_indices), _raster_tensor(res, "test", f.test_indices)
    y_tr, y_te = f.train.labels, f.test.labels
    a, v = stratified_split(y_tr, cfg.head.val_fraction, rng)
    return srnn.train_classifier(x_tr[a], y_tr[a], x_tr[v], y_tr[v], x_te, y_te, len(f.train.classes), s.hidden,
                                 s.beta, s.epochs, s.lr, s.batch_size, seed)


def _contrastive(cfg, reservoirs: list[ModalityReservoir], feats: list[ModalityFeatures], seed: int, rng) -> dict:
    import torch

    from neurohw.baselines import spiking_rnn as srnn  # snntorch: loaded only when the spiking-RNN baseline is enabled

    s, zs = cfg.baselines.srnn, cfg.zero_shot
    seen, unseen = [str(c) for c in zs.seen], [str(c) for c in zs.unseen]
    pool = seen + unseen

    def raster_set(k: int, split: str):
        f = feats[k]
        fs, idx = (f.train, f.train_indices) if split == "train" else (f.test, f.test_indices)
        x = _raster_tensor(reservoirs[k], split, idx)
        return FeatureSet(x.reshape(len(x), -1).numpy(), fs.labels, fs.classes), x.shape[1:]

    (a_tr, sa), (b_tr, sb) = raster_set(0, "train"), raster_set(1, "train")
    (a_te, _), (b_te, _) = raster_set(0, "test"), raster_set(1, "test")
    a_fit, a_val = stratified_split(a_tr.labels, cfg.head.val_fraction, rng)
    b_fit, b_val = stratified_split(b_tr.labels, cfg.head.val_fraction, rng)

    def torch_pairs(p):
        return torch.from_numpy(p.xa.reshape(-1, *sa)), torch.from_numpy(p.xb.reshape(-1, *sb)), p.y

    train_p = make_pairs(a_tr.take(a_fit), b_tr.take(b_fit), pool, seen, None, rng)
    val_p = make_pairs(a_tr.take(a_val), b_tr.take(b_val), pool, seen, None, rng)
    tes = make_pairs(a_te, b_te, pool, seen, zs.test_pairs_per_class, rng)
    teu = make_pairs(a_te, b_te, pool, unseen, zs.test_pairs_per_class, rng)
    xa, xb, y = torch_pairs(train_p)
    return srnn.train_contrastive(xa, xb, y, torch_pairs(val_p), torch_pairs(tes), torch_pairs(teu), s.hidden, s.beta, s.dim,
                                  cfg.head.temperature, s.epochs, s.lr, s.batch_size, seed)
