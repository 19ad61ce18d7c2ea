"""Zero-shot transfer: the pseudo-unseen validation protocol and normalised-projection retrieval.

Synthetic features with a known structure: every class c has a latent vector u_c (R^k); modality
a sees ``A u_c + noise`` and modality b ``B u_c + noise`` (A, B fixed random matrices). When the
training classes span the latent space, a linear head pair trained on them maps held-out classes
correctly too, so transfer is measurable; rows of classes outside the seen set are NaN, so any use
of them would poison the heads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohw.errors import ConfigError
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.schema import HeadSpec, ZeroShotSpec
from neurohw.experiments.zero_shot import (
    Pairs,
    RelativeEncoder,
    evaluate,
    pseudo_unseen_validation,
    relative_retrieval,
)
from neurohw.heads.projection import ProjectionPair
from neurohw.heads.retrieval import relative_representation

CLASSES = [str(c) for c in range(10)]
SEEN = [1, 2, 3, 4, 5, 6, 7]


def _latent_sets(seed: int = 0, n_per_class: int = 40, k: int = 4, d_a: int = 24, d_b: int = 16, noise: float = 0.3,
                 poison: tuple = ("0", "8", "9")):
    """FeatureSets of both modalities sharing class latents; classes in ``poison`` are all-NaN rows."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(10, k))
    A, B = rng.normal(size=(d_a, k)), rng.normal(size=(d_b, k))
    out = []
    for M in (A, B):
        y = np.repeat(np.arange(10), n_per_class)
        x = u[y] @ M.T + noise * rng.normal(size=(len(y), M.shape[0]))
        x[np.isin(np.asarray(CLASSES)[y], poison)] = np.nan
        out.append(FeatureSet(x, y, CLASSES))
    return out


HEAD = HeadSpec(kind="projection", dim=8, epochs=15, lr=1e-2, batch_size=32, val_fraction=0.2)
ZS = ZeroShotSpec(seen=SEEN, unseen=[8, 9], test_pairs_per_class=30)


def test_protocol_uses_only_seen_rows_and_transfers_shared_structure():
    a, b = _latent_sets()
    res = pseudo_unseen_validation(a, b, HEAD, ZS, seed=0, held_out=[(1, 2), (5, 6)])
    assert [r["held_out"] for r in res] == [["1", "2"], ["5", "6"]]
    for r in res:
        # the rows it used are exactly the seen classes' rows of each modality
        for fs, rows in ((a, r["rows_a"]), (b, r["rows_b"])):
            assert set(fs.names[rows]) == {str(c) for c in SEEN}
            assert np.array_equal(rows, np.flatnonzero(np.isin(fs.labels, SEEN)))
        assert r["chance"] == pytest.approx(0.5)
        assert r["n_pairs"] == 60
        # NaN rows of 0, 8, 9 would make the heads NaN and the retrieval degenerate: it is not
        for side in ("a_to_b", "b_to_a"):
            assert r["pseudo_unseen"][side] > 0.9
            assert r["val_seen"][side] > 0.9


def test_protocol_is_blind_to_rows_outside_the_seen_set():
    """Same numbers whether classes 0, 8, 9 are NaN, random, or absent."""
    a, b = _latent_sets(poison=("0", "8", "9"))
    keep_a, keep_b = np.isin(a.labels, SEEN), np.isin(b.labels, SEEN)
    a2, b2 = FeatureSet(a.x.copy(), a.labels, CLASSES), FeatureSet(b.x.copy(), b.labels, CLASSES)
    rng = np.random.default_rng(5)
    a2.x[~keep_a] = rng.normal(size=a2.x[~keep_a].shape)
    b2.x[~keep_b] = rng.normal(size=b2.x[~keep_b].shape)
    a3, b3 = a.take(np.flatnonzero(keep_a)), b.take(np.flatnonzero(keep_b))
    runs = [pseudo_unseen_validation(x, y, HEAD, ZS, seed=3, held_out=[(3, 7)]) for x, y in ((a, b), (a2, b2), (a3, b3))]
    for r in runs[1:]:
        assert r[0]["pseudo_unseen"] == runs[0][0]["pseudo_unseen"]
        assert r[0]["val_seen"] == runs[0][0]["val_seen"]


def test_protocol_without_shared_structure_has_no_transfer():
    """Independent class latents per modality: held-out classes cannot be aligned, so retrieval
    among them is a coin flip per draw (well-separated classes: each run lands near 0 or 1). Over
    20 independent draws x 3 disjoint held-out pairs the mean stays near chance 0.5; had the
    held-out classes leaked into training, every run would score ~1."""
    accs = []
    for seed in range(20):
        rng = np.random.default_rng([11, seed])
        sets = []
        for d in (20, 12):
            u = rng.normal(size=(10, 6))  # a fresh latent per modality: no shared class structure
            M = rng.normal(size=(d, 6))
            y = np.repeat(np.arange(10), 20)
            sets.append(FeatureSet(u[y] @ M.T + 0.3 * rng.normal(size=(len(y), d)), y, CLASSES))
        head = HEAD.model_copy(update={"epochs": 5})
        for r in pseudo_unseen_validation(*sets, head, ZS, seed=seed, held_out=[(1, 2), (3, 4), (5, 6)]):
            accs.append((r["pseudo_unseen"]["a_to_b"] + r["pseudo_unseen"]["b_to_a"]) / 2)
    # one run's accuracy has sd <= 0.5; 60 runs (pairs of one draw correlated: >= 20 independent)
    # give a mean with sd <= 0.11; a leak would put it near 1
    assert 0.25 < np.mean(accs) < 0.75
    assert np.mean(np.asarray(accs) > 0.9) < 0.8


@pytest.mark.parametrize("bad", [[(8, 9)], [(1, 8)], [(1,)], [(1, 2, 3, 4, 5, 6)]])
def test_protocol_rejects_sets_outside_the_seen_classes(bad):
    a, b = _latent_sets()
    with pytest.raises(ConfigError):
        pseudo_unseen_validation(a, b, HEAD, ZS, seed=0, held_out=bad)


@pytest.mark.parametrize("normalize", [True, False])
def test_projection_retrieval_matches_numpy(normalize):
    """evaluate() == standardise -> linear -> (L2-normalise) -> dot -> argmax -> class match, in numpy."""
    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    xa, xb = rng.normal(2.0, 3.0, size=(50, 7)), rng.normal(-1.0, 0.5, size=(50, 5))
    y = rng.integers(0, 4, size=50)
    pair = ProjectionPair(7, 5, dim=3, normalize=normalize)
    pair.a.norm.fit(xa[:30]), pair.b.norm.fit(xb[:30])
    r = evaluate(pair, Pairs(xa.astype(np.float32), xb.astype(np.float32), y))

    def project(head, x):
        mean, std = head.norm.mean.numpy().astype(np.float64), head.norm.std.numpy().astype(np.float64)
        lin = head.net[0]
        z = ((x - mean) / std) @ lin.weight.detach().numpy().astype(np.float64).T + lin.bias.detach().numpy()
        return z / np.linalg.norm(z, axis=1, keepdims=True) if normalize else z

    # the numpy reference: standardisation statistics recomputed independently (population std)
    assert np.allclose(pair.a.norm.mean.numpy(), xa[:30].mean(0), atol=1e-5)
    assert np.allclose(pair.a.norm.std.numpy(), xa[:30].std(0), atol=1e-5)
    za, zb = project(pair.a, xa), project(pair.b, xb)
    if normalize:
        assert np.allclose(np.linalg.norm(za, axis=1), 1.0)
    sims = za @ zb.T
    want_ab = np.mean(y[sims.argmax(1)] == y)
    want_ba = np.mean(y[sims.T.argmax(1)] == y)
    assert r.a_to_b == pytest.approx(want_ab)
    assert r.b_to_a == pytest.approx(want_ba)


def test_relative_representation_is_the_cosine_to_each_anchor():
    rng = np.random.default_rng(4)
    x, anchors = rng.normal(size=(6, 5)), rng.normal(size=(3, 5))
    want = np.array([[np.dot(xi, ak) / np.sqrt(np.dot(xi, xi) * np.dot(ak, ak)) for ak in anchors] for xi in x])
    assert np.allclose(relative_representation(x, anchors), want)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # a rotation and a uniform scale change nothing
    assert np.allclose(relative_representation(2.5 * x @ q, 2.5 * anchors @ q), want)
    with pytest.raises(ValueError):
        relative_representation(x, anchors[:, :4])


def test_relative_encoder_aligns_modalities_that_differ_by_feature_affine_maps():
    """b = a with its features permuted, scaled and shifted: standardisation + cosine to the class
    prototypes give both the same coordinates, so every held-out query retrieves its own twin."""
    rng = np.random.default_rng(6)
    a, _ = _latent_sets(poison=())
    perm, scale, shift = rng.permutation(a.x.shape[1]), rng.uniform(0.5, 4, a.x.shape[1]), rng.normal(size=a.x.shape[1])
    b = FeatureSet(a.x[:, perm] * scale + shift, a.labels, CLASSES)
    pool = [str(c) for c in SEEN]
    held = np.isin(a.names, ["3", "7"])
    pairs = Pairs(a.x[held], b.x[held], np.asarray([pool.index(n) for n in a.names[held]]))  # twins row by row
    anchors = [c for c in pool if c not in ("3", "7")]
    r = relative_retrieval(a, b, pool, anchors, pairs)
    assert r.a_to_b == 1.0 and r.b_to_a == 1.0
    ks = [pool.index(c) for c in anchors]
    la = np.asarray([pool.index(n) if n in pool else -1 for n in a.names])
    ea, eb = RelativeEncoder(a.x, la, ks), RelativeEncoder(b.x, la, ks)
    assert np.allclose(ea(a.x[held]), eb(b.x[held]))
    assert np.allclose(np.linalg.norm(ea(a.x[held]), axis=1), 1.0)


def test_protocol_relative_objective_uses_only_seen_rows():
    a, b = _latent_sets()  # classes 0, 8, 9 are NaN: any use would make the encodings NaN
    (r,) = pseudo_unseen_validation(a, b, HEAD, ZS, seed=0, held_out=[(2, 6)], objective="relative")
    assert set(a.names[r["rows_a"]]) == {str(c) for c in SEEN}
    assert r["pseudo_unseen"]["a_to_b"] > 0.9 and r["pseudo_unseen"]["b_to_a"] > 0.9  # shared latents transfer
