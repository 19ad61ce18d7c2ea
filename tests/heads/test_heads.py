"""Heads: InfoNCE against an independent numpy computation, prototypical nets on Gaussian
clusters, readouts and the training loop's validation-based selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurohw.heads.losses import symmetric_info_nce
from neurohw.heads.projection import ProjectionPair
from neurohw.heads.prototypical import class_prototypes, cross_modal_prototypical_loss, prototype_classify
from neurohw.heads.readout import Readout
from neurohw.heads.retrieval import cross_modal_retrieval
from neurohw.heads.training import TrainSettings, train


def _numpy_info_nce(za, zb, tau, labels=None):
    """Independent statement: per-row log-softmax by explicit logsumexp, loops over rows."""
    b = len(za)
    logits = za @ zb.T / tau

    def ce(lg, lab):
        out = 0.0
        for i in range(b):
            m = lg[i].max()
            lse = m + math.log(np.exp(lg[i] - m).sum())
            if lab is None:
                out += lse - lg[i, i]
            else:
                pos = [j for j in range(b) if lab[j] == lab[i]]
                out += sum(lse - lg[i, j] for j in pos) / len(pos)
        return out / b

    return (ce(logits, labels) + ce(logits.T, labels)) / 2


def test_info_nce_by_hand_two_pairs():
    # za = [[1,0],[0,1]], zb = za, tau = 1: logits = I; each row loss = log(e + 1) - 1
    z = torch.eye(2)
    expected = math.log(math.e + 1) - 1
    assert float(symmetric_info_nce(z, z, 1.0)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("with_labels", [False, True])
def test_info_nce_matches_numpy(tau, with_labels):
    rng = np.random.default_rng(3)
    za, zb = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    labels = rng.integers(0, 4, 12) if with_labels else None
    got = symmetric_info_nce(
        torch.tensor(za), torch.tensor(zb), tau, None if labels is None else torch.tensor(labels)
    )
    assert float(got) == pytest.approx(_numpy_info_nce(za, zb, tau, labels), rel=1e-10)


def test_info_nce_identity_targets_equal_torch_cross_entropy():
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g)
    logits = za @ zb.T / 0.5
    ref = (torch.nn.functional.cross_entropy(logits, torch.arange(9)) + torch.nn.functional.cross_entropy(logits.T, torch.arange(9))) / 2
    assert float(symmetric_info_nce(za, zb, 0.5)) == pytest.approx(float(ref), rel=1e-6)


def test_info_nce_rejects_bad_input():
    with pytest.raises(ValueError):
        symmetric_info_nce(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError):
        symmetric_info_nce(torch.zeros(3, 2), torch.zeros(3, 2), temperature=0)


def _clusters(rng, n_per, centres, sigma):
    x = np.concatenate([c + sigma * rng.normal(size=(n_per, len(c))) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    return x.astype(np.float32), y


def test_prototypes_are_class_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [7.0, 9.0], [1.0, 3.0]])
    y = torch.tensor([3, 3, 1, 1, 3])
    classes, protos = class_prototypes(z, y)
    assert classes.tolist() == [1, 3]
    np.testing.assert_allclose(protos.numpy(), [[6.0, 7.0], [1.0, 1.0]])


def test_prototype_classifier_on_separable_clusters():
    rng = np.random.default_rng(1)
    centres = 6.0 * np.eye(4)
    xs, ys = _clusters(rng, 20, centres, 0.5)
    xq, yq = _clusters(rng, 50, centres, 0.5)
    assert np.mean(prototype_classify(xq, xs, ys) == yq) == 1.0


def test_cross_modal_heads_learn_on_gaussian_clusters():
    """Two modalities whose class clusters sit in unrelated random directions: both the contrastive
    and the prototypical objective must align them (retrieval far above chance 1/4)."""
    rng = np.random.default_rng(2)
    ca, cb = 4.0 * rng.normal(size=(4, 10)), 4.0 * rng.normal(size=(4, 6))
    xa, y = _clusters(rng, 40, ca, 1.0)
    xb, _ = _clusters(rng, 40, cb, 1.0)
    ta, tb = _clusters(rng, 30, ca, 1.0)[0], _clusters(rng, 30, cb, 1.0)[0]
    ty = np.repeat(np.arange(4), 30)
    for objective in ("contrastive", "prototypical"):
        torch.manual_seed(0)
        pair = ProjectionPair(10, 6, dim=8)
        pair.a.norm.fit(xa), pair.b.norm.fit(xb)
        a_t, b_t, y_t = torch.tensor(xa), torch.tensor(xb), torch.tensor(y)

        def loss(idx, objective=objective):
            za, zb = pair(a_t[idx], b_t[idx])
            if objective == "contrastive":
                return symmetric_info_nce(za, zb, 0.1, y_t[idx])
            return cross_modal_prototypical_loss(za, zb, y_t[idx])

        train(pair, loss, len(y), None, TrainSettings(epochs=30, lr=1e-2, batch_size=32), np.random.default_rng(0))
        with torch.no_grad():
            za, zb = pair(torch.tensor(ta), torch.tensor(tb))
        r = cross_modal_retrieval(za.numpy(), ty, zb.numpy(), ty)
        assert r.chance == pytest.approx(0.25)
        assert r.a_to_b > 0.9 and r.b_to_a > 0.9, (objective, r)


@pytest.mark.parametrize("hidden", [None, [16]])
def test_readout_learns_separable_clusters(hidden):
    rng = np.random.default_rng(4)
    centres = 3.0 * rng.normal(size=(3, 7))
    x, y = _clusters(rng, 60, centres, 1.0)
    xt, yt = _clusters(rng, 60, centres, 1.0)
    torch.manual_seed(0)
    model = Readout(7, 3, hidden)
    model.norm.fit(x)
    xt_t = torch.tensor(xt)
    x_t, y_t = torch.tensor(x), torch.tensor(y)
    hist = train(
        model, lambda idx: torch.nn.functional.cross_entropy(model(x_t[idx]), y_t[idx]), len(y),
        lambda: float((model(xt_t).argmax(1).numpy() == yt).mean()), TrainSettings(epochs=20, lr=1e-2, batch_size=32),
        np.random.default_rng(0),
    )
    with torch.no_grad():
        acc = float((model(xt_t).argmax(1).numpy() == yt).mean())
    assert acc > 0.95
    assert acc == pytest.approx(hist.best_score)  # the selected state is the one that scored best
    assert model.macs_per_sample() == (7 * 3 if not hidden else 7 * 16 + 16 * 3)


def test_training_restores_the_best_validation_epoch():
    """A validation score that peaks at epoch 2 must leave the epoch-2 weights loaded."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    seen = []

    def val():
        seen.append(float(model.weight.detach()))
        return [0.1, 0.5, 0.9, 0.2, 0.3][len(seen) - 1]

    x = torch.ones(4, 1)
    hist = train(model, lambda idx: ((model(x[idx]) - 5.0) ** 2).mean(), 4, val, TrainSettings(epochs=5, lr=0.1, batch_size=4), np.random.default_rng(0))
    assert hist.best_epoch == 2
    assert float(model.weight.detach()) == pytest.approx(seen[2])
    assert seen[2] != pytest.approx(seen[4])


def test_early_stopping_stops_after_patience():
    model = torch.nn.Linear(1, 1)
    x = torch.ones(4, 1)
    hist = train(model, lambda idx: model(x[idx]).mean(), 4, lambda: 0.0, TrainSettings(epochs=50, batch_size=4, patience=3), np.random.default_rng(0))
    assert len(hist.train_loss) == 5  # epoch 0 sets the best, epochs 1-4 do not improve, stop after 4 > 3


# ----------------------------------------------------------------------------- ridge readout


@pytest.mark.parametrize("n, d", [(40, 120), (150, 25)])  # dual (N <= d) and primal (N > d) forms
def test_ridge_path_equals_sklearn_ridge(n, d):
    from sklearn.linear_model import Ridge

    from neurohw.heads.ridge import RidgePath, one_hot

    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)
    y = one_hot(rng.integers(0, 4, n), 4)
    xe = rng.normal(size=(9, d))
    alphas = [0.3, 7.0, 400.0]
    path = RidgePath(x, y)
    scores = path.predict(xe, alphas)
    for a, (w, b), s in zip(alphas, path.weights(alphas), scores):
        ref = Ridge(alpha=a).fit(x, y)
        np.testing.assert_allclose(w, ref.coef_.T, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b, ref.intercept_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(s, ref.predict(xe), rtol=1e-8, atol=1e-10)


def test_ridge_readout_predicts_like_sklearn_ridge_classifier_on_standardised_features():
    from sklearn.linear_model import RidgeClassifier

    from neurohw.heads.ridge import RidgeReadout

    rng = np.random.default_rng(6)
    centres = 2.0 * rng.normal(size=(5, 30))
    x, y = _clusters(rng, 20, centres, 2.0)
    xt, _ = _clusters(rng, 20, centres, 2.0)
    model = RidgeReadout(30, 5).fit(x, y, alpha=3.0)
    mean, std = x.astype(np.float64).mean(0), x.astype(np.float64).std(0)
    ref = RidgeClassifier(alpha=3.0).fit((x - mean) / std, y)
    with torch.no_grad():
        got = model(torch.tensor(xt)).argmax(1).numpy()
    assert np.array_equal(got, ref.predict((xt - mean) / std))
    assert model.macs_per_sample() == 30 * 5


def test_ridge_cv_accuracy_equals_an_explicit_fold_loop_with_sklearn():
    """Independent statement: per fold, standardise on the other folds, sklearn RidgeClassifier, score."""
    from sklearn.linear_model import RidgeClassifier

    from neurohw.heads.validation import stratified_folds
    from neurohw.heads.ridge import choose_alpha, ridge_cv_accuracy

    rng = np.random.default_rng(7)
    centres = 1.0 * rng.normal(size=(3, 40))
    x, y = _clusters(rng, 25, centres, 2.5)
    folds = stratified_folds(y, 5, np.random.default_rng(0))
    alphas = [0.01, 1.0, 100.0, 1e4]
    got = ridge_cv_accuracy(x, y, folds, alphas, 3)
    for a, g in zip(alphas, got):
        accs = []
        for j in range(5):
            tr, va = folds != j, folds == j
            m, s = x[tr].astype(np.float64).mean(0), x[tr].astype(np.float64).std(0)
            clf = RidgeClassifier(alpha=a).fit((x[tr] - m) / s, y[tr])
            accs.append(np.mean(clf.predict((x[va] - m) / s) == y[va]))
        assert g == pytest.approx(np.mean(accs), abs=1e-12)
    assert 0.4 < got.max() <= 1.0  # informative features: far above chance 1/3
    assert choose_alpha([1.0, 10.0, 100.0], np.array([0.8, 0.9, 0.9])) == 100.0  # ties: the most regularised
    assert choose_alpha([1.0, 10.0, 100.0], np.array([0.95, 0.9, 0.9])) == 1.0


def test_ridge_rejects_bad_input():
    from neurohw.heads.ridge import RidgePath, one_hot

    with pytest.raises(ValueError):
        RidgePath(np.zeros((3, 2)), np.zeros((3, 2))).weights([0.0])
    with pytest.raises(ValueError):
        one_hot(np.array([0, 5]), 3)
    with pytest.raises(ValueError):
        RidgePath(np.zeros((3, 2)), np.zeros((4, 2)))


def test_stratified_folds_balance_classes_and_sizes():
    from neurohw.heads.validation import stratified_folds

    labels = np.repeat(np.arange(4), [23, 17, 5, 31])
    folds = stratified_folds(labels, 5, np.random.default_rng(1))
    assert set(folds.tolist()) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    for c, n in zip(range(4), [23, 17, 5, 31]):
        per = np.bincount(folds[labels == c], minlength=5)
        assert per.min() == n // 5 and per.max() == -(-n // 5)
    # reproducible from the generator's seed, and another seed deals differently
    assert np.array_equal(folds, stratified_folds(labels, 5, np.random.default_rng(1)))
    assert not np.array_equal(folds, stratified_folds(labels, 5, np.random.default_rng(2)))
    with pytest.raises(ValueError):
        stratified_folds(labels, 1, np.random.default_rng(0))
