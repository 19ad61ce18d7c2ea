"""The classify task's ridge readout: selection on the training split only, its metrics, its
schema keys and their one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohw.errors import ConfigError
from neurohw.experiments.classify import run_ridge
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.schema import HeadSpec, parse_config


def _sets(seed=0, n_train=30, n_test=20, d=25, sigma=2.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    ytr, yte = np.repeat(np.arange(4), n_train), np.repeat(np.arange(4), n_test)
    xtr = centres[ytr] + sigma * rng.normal(size=(len(ytr), d))
    xte = centres[yte] + sigma * rng.normal(size=(len(yte), d))
    classes = ["a", "b", "c", "d"]
    return FeatureSet(xtr, ytr, classes), FeatureSet(xte, yte, classes)


def test_ridge_task_selects_on_training_data_only_and_reports_its_choice():
    tr, te = _sets()
    head = HeadSpec(kind="ridge", features=["rate", "counts"], alphas=[0.01, 10.0, 1000.0], cv_folds=5)
    out = run_ridge(tr, te, head, seed=3)
    m = out.metrics
    assert m["readout"] == "ridge" and m["readout_features"] == ["rate", "counts"]
    assert [s["alpha"] for s in m["cv_scores"]] == [0.01, 10.0, 1000.0]
    best = max(s["accuracy"] for s in m["cv_scores"])
    assert m["cv_accuracy"] == best and m["alpha"] == max(s["alpha"] for s in m["cv_scores"] if s["accuracy"] == best)
    assert m["n_train"] == 120 and m["n_val"] == 0 and m["n_test"] == 80 and m["chance"] == pytest.approx(0.25)
    # the test accuracy is the refitted readout's, recomputed here from its saved weights
    model = out.heads["readout"]
    with torch.no_grad():
        pred = model(torch.tensor(te.x)).argmax(1).numpy()
    assert m["test_accuracy"] == pytest.approx(np.mean(pred == te.labels))
    assert m["test_accuracy"] > 0.6  # separable-ish clusters, chance 0.25
    assert out.matrices["confusion"][0].sum() == 80 and np.trace(out.matrices["confusion"][0]) == round(80 * m["test_accuracy"])
    # the test labels cannot move the choice: scramble them, the selection stays identical
    scrambled = FeatureSet(te.x, np.random.default_rng(9).permutation(te.labels), te.classes)
    m2 = run_ridge(tr, scrambled, head, seed=3).metrics
    assert m2["alpha"] == m["alpha"] and m2["cv_scores"] == m["cv_scores"]


def test_ridge_task_refuses_more_folds_than_a_class_has_samples():
    tr, te = _sets(n_train=3)
    with pytest.raises(ConfigError, match="head.cv_folds=5"):
        run_ridge(tr, te, HeadSpec(kind="ridge", cv_folds=5), seed=0)


_BASE = {
    "task": "classify",
    "data": {"d": {"dataset": "digits-dvs", "binning": {"n_bins": 10}}},
    "reservoir": {"d": {"n_neurons": 8, "target_rate": 0.06}},
}


@pytest.mark.parametrize(
    "head, expect",
    [
        ({"kind": "ridge", "hidden": [8]}, "remove head.hidden"),
        ({"kind": "ridge", "alphas": []}, "key 'head.alphas'"),
        ({"kind": "ridge", "alphas": [1.0, 0.0]}, "positive"),
        ({"kind": "ridge", "cv_folds": 1}, "key 'head.cv_folds'"),
        ({"kind": "ridge", "alpha": 1.0}, "did you mean 'alphas'"),
    ],
)
def test_ridge_schema_errors_are_one_line(head, expect):
    with pytest.raises(ConfigError, match=expect) as exc:
        parse_config({**_BASE, "head": head}, "x.yaml")
    assert "\n" not in str(exc.value)


def test_ridge_schema_accepts_a_ridge_head():
    cfg = parse_config({**_BASE, "head": {"kind": "ridge", "alphas": [1, 10], "cv_folds": 3}}, "x.yaml")
    assert cfg.head_kind == "ridge" and cfg.head.alphas == [1.0, 10.0] and cfg.head.cv_folds == 3
