"""Task ``zero_shot``: two modalities, a projection head each, trained contrastively on the
seen classes only; top-1 cross-modal retrieval on seen and unseen classes.

Protocol (Lin et al., Nat. Comput. Sci. 5:37-47, 2025): samples of modality A and B are paired by class;
the heads are trained on the seen classes with the symmetric InfoNCE loss (paper: temperature 1.0,
dimension 64, Adam lr 1e-3, 100 epochs; the temperature may be learned within bounds, the
learning rate warmed up and decayed, see :mod:`neurohw.heads.training`); the test uses up to
``test_pairs_per_class`` samples of each modality per class; a query is correct when its top-1
(dot product) retrieval has its class.

Pairing (``zero_shot.pairing``): ``class`` pairs a sample with a random same-class sample of the
other modality (fresh every epoch); nothing in the seen-class data then tells the true assignment
of the unseen classes from a permutation of them, so the expected unseen retrieval is chance.
``instance`` pairs a sample with the other modality's recording of the same source sample
(datasets recorded from the same stimuli, :func:`neurohw.data.registry.instance_source`; rows are
matched by :func:`align_instances`): the content shared by each pair can carry a projection
learned on seen classes over to unseen ones.

Honest selection (the default): the epoch kept is the one with the best retrieval on a
validation split of the SEEN classes' training data; neither test data nor unseen classes are
looked at before the final evaluation. ``selection: test_optimistic`` reproduces the reference
code, which kept checkpoints by test accuracy (seen and unseen); its numbers are labelled
optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurohw.errors import ConfigError, DataError
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.results import TaskOutput
from neurohw.experiments.schema import HeadSpec, ZeroShotSpec
from neurohw.heads.losses import Temperature, symmetric_info_nce
from neurohw.heads.projection import ProjectionPair
from neurohw.heads.prototypical import cross_modal_prototypical_loss
from neurohw.heads.retrieval import cross_modal_retrieval, relative_representation, retrieval_confusion
from neurohw.heads.training import TrainSettings, train
from neurohw.heads.validation import stratified_split


@dataclass
class Pairs:
    """Aligned samples of both modalities of one set of classes (row i of a and b: same class)."""

    xa: np.ndarray
    xb: np.ndarray
    y: np.ndarray  # class position in the pool

    def __len__(self):
        return len(self.y)


def class_pool(a: FeatureSet, b: FeatureSet, wanted: list[str]) -> list[str]:
    """The wanted class names, checked to exist in both modalities."""
    for fs, which in ((a, "a"), (b, "b")):
        missing = [c for c in wanted if c not in fs.classes]
        if missing:
            raise ConfigError(
                f"zero_shot: classes {missing} are not in modality {which}'s classes {fs.classes}; use names from that list"
            )
    return list(wanted)


def _pool_labels(fs: FeatureSet, pool: list[str]) -> np.ndarray:
    """Position of each sample's class in ``pool`` (-1 when not in it)."""
    pos = {c: i for i, c in enumerate(pool)}
    return np.array([pos.get(n, -1) for n in fs.names], dtype=np.int64)


def align_instances(a: FeatureSet, b: FeatureSet, which: str = "") -> tuple[FeatureSet, FeatureSet]:
    """The rows of ``a`` and ``b`` recorded from the same source samples, in ``a``'s order: row k
    of both outputs comes from one source sample (instance pairing). Sources present on one side
    only are dropped; a :class:`~neurohw.errors.DataError` when the features carry no instance
    ids or a pair disagrees on its class."""
    if a.ids is None or b.ids is None:
        raise DataError(f"zero_shot: pairing instance needs datasets paired by instance (e.g. digits-v1 and digits-dvs); "
                        f"the {which or 'given'} features carry no instance ids: set zero_shot.pairing: class")
    pos_b = {int(i): k for k, i in enumerate(b.ids)}
    ra = np.array([k for k, i in enumerate(a.ids) if int(i) in pos_b], dtype=np.int64)
    rb = np.array([pos_b[int(a.ids[k])] for k in ra], dtype=np.int64)
    if np.any(np.asarray(a.classes)[a.labels[ra]] != np.asarray(b.classes)[b.labels[rb]]):
        raise DataError(f"zero_shot: the {which or 'given'} features pair samples of different classes under one instance id; "
                        "the two datasets are not recorded from the same samples")
    return a.take(ra), b.take(rb)


def make_pairs(a: FeatureSet, b: FeatureSet, pool: list[str], classes: list[str], per_class: int | None, rng,
               instance: bool = False) -> Pairs:
    """Up to ``per_class`` pairs per class: min(per_class, n_a(c), n_b(c)) random samples of each
    side (class pairing), or, with ``instance`` (``a`` and ``b`` row-aligned by
    :func:`align_instances`), up to ``per_class`` random rows of the class taken from both sides."""
    la, lb = _pool_labels(a, pool), _pool_labels(b, pool)
    ia, ib, ys = [], [], []
    for c in classes:
        k = pool.index(c)
        ca = rng.permutation(np.flatnonzero(la == k))
        cb = ca if instance else rng.permutation(np.flatnonzero(lb == k))
        n = min(len(ca), len(cb), per_class or len(ca) + len(cb))
        ia.append(ca[:n]), ib.append(cb[:n]), ys.append(np.full(n, k))
    ia, ib, y = np.concatenate(ia), np.concatenate(ib), np.concatenate(ys)
    return Pairs(a.x[ia], b.x[ib], y)


def _embed(pair: ProjectionPair, p: Pairs) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        za, zb = pair(torch.tensor(p.xa), torch.tensor(p.xb))
    return za.numpy(), zb.numpy()


def evaluate(pair: ProjectionPair, p: Pairs):
    za, zb = _embed(pair, p)
    return cross_modal_retrieval(za, p.y, zb, p.y)


def train_pair(
    a_tr: FeatureSet, b_tr: FeatureSet, pool: list[str], seen: list[str], head: HeadSpec, zs: ZeroShotSpec,
    objective: str, score_fn, seed: int, progress: bool,
) -> tuple[ProjectionPair, object]:
    """Train a projection pair on seen-class pairs (resampled every epoch); ``score_fn(pair)`` selects."""
    rng = np.random.default_rng([seed, 23, 0 if objective == "contrastive" else 1])
    torch.manual_seed(seed)
    la, lb = _pool_labels(a_tr, pool), _pool_labels(b_tr, pool)
    seen_k = [pool.index(c) for c in seen]
    ia = np.flatnonzero(np.isin(la, seen_k))
    by_class_b = {k: np.flatnonzero(lb == k) for k in seen_k}
    xa, xb = torch.tensor(a_tr.x), torch.tensor(b_tr.x)
    pair = ProjectionPair(a_tr.x.shape[1], b_tr.x.shape[1], head.dim, head.hidden, head.normalize)
    tau = Temperature(head.temperature, (head.min_temperature, head.max_temperature) if head.learn_temperature else None)
    pair.a.norm.fit(a_tr.x[ia])
    pair.b.norm.fit(b_tr.x[np.concatenate(list(by_class_b.values()))])

    instance = zs.pairing == "instance"

    def loss(idx):
        qa = ia[idx]
        y = la[qa]
        # the row recorded from the same source (instance pairing), else a random same-class partner
        qb = qa if instance else np.array([rng.choice(by_class_b[k]) for k in y])
        za, zb = pair(xa[qa], xb[qb])
        yt = torch.tensor(y)
        if objective == "contrastive":
            return symmetric_info_nce(za, zb, tau(), yt if zs.targets == "class" else None)
        return cross_modal_prototypical_loss(za, zb, yt)

    settings = TrainSettings(head.epochs, head.lr, head.batch_size, head.weight_decay, head.patience,
                             head.warmup_epochs, head.schedule, head.clip_grad_norm)
    trained = nn.ModuleDict({"pair": pair, "tau": tau})  # the heads and a learned temperature, selected together
    hist = train(trained, loss, len(ia), lambda: score_fn(pair), settings, rng, progress, f"training {objective} heads")
    hist.temperature = float(tau().detach()) if objective == "contrastive" else None  # the prototypical loss has none
    return pair, hist


def run_zero_shot(
    a_train: FeatureSet, b_train: FeatureSet, a_test: FeatureSet, b_test: FeatureSet, head: HeadSpec,
    zs: ZeroShotSpec, seed: int, progress: bool = False, unseen: list[str] | None = None,
    objectives: tuple[str, ...] = ("contrastive",),
) -> TaskOutput:
    """Train on the seen classes, evaluate seen and unseen retrieval in both directions."""
    unseen = [str(c) for c in (unseen if unseen is not None else zs.unseen)]
    all_classes = [str(c) for c in zs.seen] + [str(c) for c in zs.unseen]
    seen = [c for c in all_classes if c not in unseen]
    pool = class_pool(a_train, b_train, seen + unseen)
    class_pool(a_test, b_test, seen + unseen)
    rng = np.random.default_rng([seed, 31])
    instance = zs.pairing == "instance"
    if instance:  # row k of a and of b: one source sample
        a_train, b_train = align_instances(a_train, b_train, "training")
        a_test, b_test = align_instances(a_test, b_test, "test")

    # validation: a stratified part of the SEEN classes' training samples of each modality
    a_tr_idx, a_va_idx = stratified_split(a_train.labels, head.val_fraction, rng)
    b_tr_idx, b_va_idx = (a_tr_idx, a_va_idx) if instance else stratified_split(b_train.labels, head.val_fraction, rng)
    a_tr, b_tr = a_train.take(a_tr_idx), b_train.take(b_tr_idx)
    val = make_pairs(a_train.take(a_va_idx), b_train.take(b_va_idx), pool, seen, None, rng, instance)
    test_seen = make_pairs(a_test, b_test, pool, seen, zs.test_pairs_per_class, rng, instance)
    test_unseen = make_pairs(a_test, b_test, pool, unseen, zs.test_pairs_per_class, rng, instance)
    if min(len(val), len(test_seen), len(test_unseen)) == 0:
        raise DataError("zero_shot: a validation or test set has no pairs; give more samples per class")

    def score_validation(pair):
        r = evaluate(pair, val)
        return (r.a_to_b + r.b_to_a) / 2

    def score_test_optimistic(pair):  # the reference code's selection: looks at test data, seen and unseen
        rs, ru = evaluate(pair, test_seen), evaluate(pair, test_unseen)
        return (rs.a_to_b + rs.b_to_a + ru.a_to_b + ru.b_to_a) / 4

    score = score_validation if zs.selection == "validation" else score_test_optimistic
    metrics: dict = {
        "seen_classes": seen,
        "unseen_classes": unseen,
        "selection": zs.selection,
        "optimistic": zs.selection != "validation",
        "pairing": zs.pairing,
        "n_val_pairs": len(val),
        "n_test_pairs": {"seen": len(test_seen), "unseen": len(test_unseen)},
    }
    out = TaskOutput(metrics=metrics)
    for objective in objectives:
        pair, hist = train_pair(a_tr, b_tr, pool, seen, head, zs, objective, score, seed, progress)
        _record(out, objective, pair, hist, val, test_seen, test_unseen, pool, seen, unseen)
    return out


def _record(out: TaskOutput, objective: str, pair: ProjectionPair, hist, val: Pairs, test_seen: Pairs, test_unseen: Pairs,
            pool: list[str], seen: list[str], unseen: list[str]) -> None:
    """Evaluate a trained pair on validation and test pairs and put it into ``out`` (metrics
    under ``zero_shot`` or ``zero_shot_prototypical``; curves, heads; for the contrastive pair
    also its training time, MACs and the retrieval matrices)."""
    rs, ru, vs = evaluate(pair, test_seen), evaluate(pair, test_unseen), evaluate(pair, val)
    key = "zero_shot" if objective == "contrastive" else "zero_shot_prototypical"
    out.metrics[key] = {"seen": rs.as_dict(), "unseen": ru.as_dict(), "val_seen": vs.as_dict(), "temperature": hist.temperature}
    out.metrics["chance"] = {"seen": rs.chance, "unseen": ru.chance}
    out.curves[objective] = hist
    out.heads[objective] = pair
    if objective != "contrastive":
        out.metrics["prototypical_train_s"] = hist.train_s
        return
    out.train_s = hist.train_s
    out.head_macs = pair.a.macs_per_sample() + pair.b.macs_per_sample()
    for name, p, cls in (("seen", test_seen, seen), ("unseen", test_unseen, unseen)):
        za, zb = _embed(pair, p)
        ks = [pool.index(c) for c in cls]
        out.matrices[f"retrieval_{name}_a_to_b"] = (retrieval_confusion(za, p.y, zb, p.y, ks), cls)
        out.matrices[f"retrieval_{name}_b_to_a"] = (retrieval_confusion(zb, p.y, za, p.y, ks), cls)


class RelativeEncoder:
    """A training-free shared space (Moschella et al. 2023): standardise one modality's features
    with its anchor classes' statistics, take the cosine to each anchor class's prototype (class
    mean), then standardise those K coordinates with the anchor rows' statistics. Both modalities
    map to the same K anchor-class coordinates, so retrieval works across them by dot product of
    the L2-normalised results (it can only transfer if the two modalities' class-similarity
    structures agree)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, anchor_labels: list[int]):
        rows = np.isin(y, anchor_labels)
        if not all(np.any(y == k) for k in anchor_labels):
            raise ValueError("every anchor class needs training rows")
        x = np.asarray(x, dtype=np.float64)
        self.mean, self.std = x[rows].mean(0), x[rows].std(0)
        self.std[self.std < 1e-9] = 1.0
        z = (x - self.mean) / self.std
        self.anchors = np.stack([z[y == k].mean(0) for k in anchor_labels])
        r = relative_representation(z[rows], self.anchors)
        self.r_mean, self.r_std = r.mean(0), np.maximum(r.std(0), 1e-9)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        r = (relative_representation((np.asarray(x, dtype=np.float64) - self.mean) / self.std, self.anchors) - self.r_mean) / self.r_std
        return r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)


def relative_retrieval(a_tr: FeatureSet, b_tr: FeatureSet, pool: list[str], anchors: list[str], query: Pairs):
    """Cross-modal retrieval of ``query`` through :class:`RelativeEncoder` s fitted on the anchor
    classes' rows of ``a_tr`` / ``b_tr`` (no training, no look at the query classes' labels)."""
    ks = [pool.index(c) for c in anchors]
    ea = RelativeEncoder(a_tr.x, _pool_labels(a_tr, pool), ks)
    eb = RelativeEncoder(b_tr.x, _pool_labels(b_tr, pool), ks)
    return cross_modal_retrieval(ea(query.xa), query.y, eb(query.xb), query.y)


def pseudo_unseen_validation(
    a_train: FeatureSet, b_train: FeatureSet, head: HeadSpec, zs: ZeroShotSpec, seed: int,
    held_out: list[tuple], objective: str = "contrastive",
) -> list[dict]:
    """Transfer validation inside the seen classes: for each held-out set (e.g. a pair) of SEEN
    classes, train on the remaining seen classes and measure retrieval among the held-out ones.

    Only training-split samples of ``zs.seen`` are used (the rows are filtered first; the real
    unseen classes and the test split are never passed in or looked at). Per held-out set the
    heads are trained by :func:`run_zero_shot` with seen = ``zs.seen`` minus the set and epoch
    selection on a validation split of those training classes (``selection`` is forced to
    ``validation``); the held-out classes' training-split samples, never trained on, are the
    pseudo-unseen retrieval set (up to ``zs.test_pairs_per_class`` pairs per class). Returns one
    dict per set: ``held_out``, ``pseudo_unseen`` / ``val_seen`` ({a_to_b, b_to_a}), ``chance``,
    ``n_pairs``, and ``rows_a`` / ``rows_b`` (the indices of ``a_train`` / ``b_train`` used).
    ``objective``: ``contrastive`` (the projection heads as configured by ``head`` / ``zs``),
    ``prototypical`` (the baseline's loss), or ``relative`` (no training: the relative
    representation of :class:`RelativeEncoder` with the training classes as anchors; its
    ``val_seen`` is in-sample: the anchor classes' own rows).
    """
    seen = [str(c) for c in zs.seen]
    sets = [[str(c) for c in h] for h in held_out]
    for h in sets:
        if len(set(h)) < 2 or not set(h) <= set(seen) or len(set(seen) - set(h)) < 2:
            raise ConfigError(f"pseudo-unseen set {h} must name >= 2 seen classes {seen} and leave >= 2 to train on")
    rows_a = np.flatnonzero(np.isin(a_train.names, seen))
    rows_b = np.flatnonzero(np.isin(b_train.names, seen))
    a, b = a_train.take(rows_a), b_train.take(rows_b)
    out = []
    for h in sets:
        train_classes = [c for c in seen if c not in h]
        if objective == "relative":
            rng = np.random.default_rng([seed, 37])
            pool = seen
            q_unseen = make_pairs(a, b, pool, h, zs.test_pairs_per_class, rng)
            q_seen = make_pairs(a, b, pool, train_classes, zs.test_pairs_per_class, rng)
            ru, rs = (relative_retrieval(a, b, pool, train_classes, q) for q in (q_unseen, q_seen))
            out.append({"held_out": h, "pseudo_unseen": ru.as_dict(), "val_seen": rs.as_dict(), "chance": ru.chance,
                        "n_pairs": len(q_unseen), "rows_a": rows_a, "rows_b": rows_b})
            continue
        spec = zs.model_copy(update={"seen": train_classes, "unseen": h, "rotations": None, "selection": "validation"})
        # the "test" sets are the same seen-only training rows: only their held-out classes are scored
        r = run_zero_shot(a, b, a, b, head, spec, seed, unseen=h, objectives=(objective,))
        key = "zero_shot" if objective == "contrastive" else "zero_shot_prototypical"
        out.append({
            "held_out": h,
            "pseudo_unseen": r.metrics[key]["unseen"],
            "val_seen": r.metrics[key]["val_seen"],
            "chance": r.metrics["chance"]["unseen"],
            "n_pairs": r.metrics["n_test_pairs"]["unseen"],
            "rows_a": rows_a,
            "rows_b": rows_b,
        })
    return out
