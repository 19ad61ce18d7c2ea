"""The sklearn-style readouts against scikit-learn and against the experiments' task code."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier as SkRidge
from sklearn.preprocessing import StandardScaler

import neurohw as nh
from neurohw.errors import ConfigError, DataError


def _blobs(seed=0, n=40, d=12, k=3, sigma=1.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    y = np.repeat(np.arange(k), n)
    return centres[y] + sigma * rng.normal(size=(len(y), d)), y


def test_ridge_predictions_equal_sklearn_at_the_chosen_alpha():
    X, y = _blobs()
    Xt, yt = _blobs(seed=1)
    clf = nh.RidgeClassifier(alphas=[0.1, 10.0, 1000.0], cv_folds=4, seed=2).fit(X, y)
    assert clf.alpha_ in (0.1, 10.0, 1000.0) and len(clf.cv_scores_) == 3
    assert clf.cv_accuracy_ == max(clf.cv_scores_)
    scaler = StandardScaler().fit(X)
    ref = SkRidge(alpha=clf.alpha_).fit(scaler.transform(X), y)
    assert np.array_equal(clf.predict(Xt), ref.predict(scaler.transform(Xt)))
    assert clf.score(Xt, yt) == pytest.approx(np.mean(ref.predict(scaler.transform(Xt)) == yt))


def test_any_label_values_come_back_as_given():
    X, y = _blobs()
    names = np.array(["cat", "dog", "eel"])[y]
    a = nh.RidgeClassifier(seed=0).fit(X, y)
    b = nh.RidgeClassifier(seed=0).fit(X, names)
    assert list(b.classes_) == ["cat", "dog", "eel"]
    assert np.array_equal(np.array(["cat", "dog", "eel"])[a.predict(X)], b.predict(X))
    mlp = nh.NeuralClassifier(hidden=(16,), epochs=60, lr=1e-2, seed=0).fit(X, names)
    assert set(mlp.predict(X)) <= {"cat", "dog", "eel"} and mlp.score(X, names) > 0.8
    assert 0 <= mlp.history_.best_epoch < 60 and mlp.n_val_ > 0


def test_neural_classifier_is_the_classify_task_readout():
    """The classify task's linear readout and NeuralClassifier give the same test accuracy."""
    from neurohw.experiments.classify import run_classify
    from neurohw.experiments.features import FeatureSet
    from neurohw.experiments.schema import HeadSpec

    X, y = _blobs(n=30)
    Xt, yt = _blobs(seed=3, n=20)
    head = HeadSpec(kind="linear", epochs=12)
    out = run_classify(FeatureSet(X, y, ["a", "b", "c"]), FeatureSet(Xt, yt, ["a", "b", "c"]), head, [], seed=4)
    clf = nh.NeuralClassifier(epochs=12, seed=4).fit(X, y)
    assert out.metrics["test_accuracy"] == pytest.approx(clf.score(Xt, yt))


def test_bad_inputs_are_one_line_errors():
    X, y = _blobs()
    with pytest.raises(ConfigError, match="not fitted"):
        nh.RidgeClassifier().predict(X)
    with pytest.raises(DataError, match="at least 2 classes"):
        nh.RidgeClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(DataError, match="NaN"):
        nh.RidgeClassifier().fit(np.full_like(X, np.nan), y)
    with pytest.raises(ConfigError, match="cv_folds=50"):
        nh.RidgeClassifier(cv_folds=50).fit(X, y)
    with pytest.raises(ConfigError, match="positive"):
        nh.RidgeClassifier(alphas=[0.0])
    clf = nh.RidgeClassifier().fit(X, y)
    with pytest.raises(DataError, match=r"shape \(N, 12\)"):
        clf.predict(X[:, :5])
