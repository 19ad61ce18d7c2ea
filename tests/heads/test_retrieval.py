"""Top-1 cross-modal retrieval on constructed embeddings, where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.heads.retrieval import chance_level, cross_modal_retrieval, retrieval_confusion, top1_accuracy, top1_indices


def test_top1_by_dot_product_not_distance():
    # the query [1, 0] is closer (Euclidean) to [0.5, 0] but has a larger dot product with [3, 3]
    q = np.array([[1.0, 0.0]])
    g = np.array([[0.5, 0.0], [3.0, 3.0]])
    assert top1_indices(q, g).tolist() == [1]


def test_class_match_criterion_counts_any_item_of_the_class():
    # one-hot class embeddings: every query retrieves an item of its own class -> 1.0
    la = np.array([0, 1, 2, 0, 1, 2])
    lb = np.array([2, 2, 1, 1, 0, 0])
    za, zb = np.eye(3)[la], np.eye(3)[lb]
    r = cross_modal_retrieval(za, la, zb, lb)
    assert (r.a_to_b, r.b_to_a) == (1.0, 1.0)


def test_directions_differ_when_the_embeddings_are_asymmetric():
    # A queries: classes 0,1 embedded on e0, e1; B gallery: class 0 at e0, class 1 also at e0*2
    za = np.array([[1.0, 0.0], [0.0, 1.0]])
    la = np.array([0, 1])
    zb = np.array([[1.0, 0.0], [2.0, 0.1]])
    lb = np.array([0, 1])
    # A->B: both queries pick zb[1] (dot 2.0 and 0.1 vs 1.0 and 0.0) -> only class-1 query right
    assert top1_accuracy(za, la, zb, lb) == 0.5
    # B->A: zb[0] picks za[0] (right), zb[1] picks za[0] (wrong) -> 0.5
    assert top1_accuracy(zb, lb, za, la) == 0.5
    r = cross_modal_retrieval(za, la, zb, lb)
    assert r.as_dict() == {"a_to_b": 0.5, "b_to_a": 0.5}


def test_random_embeddings_score_near_chance():
    rng = np.random.default_rng(0)
    la, lb = rng.integers(0, 7, 4000), rng.integers(0, 7, 4000)
    r = cross_modal_retrieval(rng.normal(size=(4000, 16)), la, rng.normal(size=(4000, 16)), lb)
    assert r.chance == pytest.approx(1 / 7, abs=0.01)
    # binomial std of 4000 draws at p = 1/7: 0.0055; allow 5 sigma
    assert abs(r.a_to_b - r.chance) < 0.03 and abs(r.b_to_a - r.chance) < 0.03


def test_chance_level_of_unbalanced_sets():
    assert chance_level(np.array([0, 0, 0, 1]), np.array([0, 1])) == pytest.approx(0.75 * 0.5 + 0.25 * 0.5)


def test_retrieval_confusion_rows():
    za = np.eye(2)[[0, 0, 1]]
    zb = np.eye(2)[[1, 0]]
    m = retrieval_confusion(za, np.array([5, 5, 9]), zb, np.array([9, 5]), [5, 9])
    np.testing.assert_allclose(m, [[1.0, 0.0], [0.0, 1.0]])
    m = retrieval_confusion(za, np.array([5, 9, 9]), zb, np.array([9, 5]), [5, 9])
    np.testing.assert_allclose(m, [[1.0, 0.0], [0.5, 0.5]])
