"""Instance pairing: the schema refuses it for datasets recorded from different samples, the task
refuses features without instance ids, pairs are aligned by source sample, and a reduced
zero_shot_paired run retrieves unseen classes above chance by a statistical margin."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurohw.cli import main
from neurohw.errors import ConfigError, DataError
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.schema import load_config
from neurohw.experiments.zero_shot import align_instances, make_pairs, run_zero_shot

REPO = Path(__file__).resolve().parents[2]
PAIRED = REPO / "experiments" / "zero_shot_paired.yaml"
CLASSES = [str(d) for d in range(10)]


def test_instance_pairing_is_refused_for_class_paired_datasets_in_one_line():
    with pytest.raises(ConfigError) as exc:
        load_config("quickstart", ["zero_shot.pairing=instance"])
    msg = str(exc.value)
    assert "\n" not in msg and "paired by class only" in msg and "zero_shot.pairing: class" in msg
    cfg = load_config("quickstart")
    assert cfg.zero_shot.pairing == "class"


def test_instance_pairing_needs_the_same_options_and_selection_on_both_sides():
    assert load_config(PAIRED).zero_shot.pairing == "instance"
    with pytest.raises(ConfigError, match="must be equal"):
        load_config(PAIRED, ["data.neural.options={samples_per_class: 5}"])
    with pytest.raises(ConfigError, match="max_train_per_class"):
        load_config(PAIRED, ["data.image.max_train_per_class=10"])


def test_cli_refusal_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "quickstart", "--set", "zero_shot.pairing=instance", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pairing" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _fs(x, labels, ids=None):
    return FeatureSet(np.asarray(x, dtype=np.float32).reshape(len(labels), -1), np.asarray(labels), CLASSES, ids)


def test_align_instances_matches_rows_by_source_sample_and_checks_classes():
    a = _fs(np.arange(5), [0, 1, 1, 2, 2], ids=[10, 11, 12, 13, 14])
    b = _fs(np.arange(4) * 100, [2, 1, 0, 1], ids=[13, 12, 10, 99])  # 11 and 14 missing, 99 extra
    a2, b2 = align_instances(a, b)
    assert a2.ids.tolist() == b2.ids.tolist() == [10, 12, 13]
    assert a2.x.ravel().tolist() == [0, 2, 3] and b2.x.ravel().tolist() == [200, 100, 0]
    pairs = make_pairs(a2, b2, CLASSES, ["0", "1", "2"], None, np.random.default_rng(0), instance=True)
    assert sorted(zip(pairs.xa.ravel().tolist(), pairs.xb.ravel().tolist())) == [(0, 200), (2, 100), (3, 0)]
    with pytest.raises(DataError, match="different classes"):
        align_instances(a, _fs([1.0], [0], ids=[11]))
    with pytest.raises(DataError, match="no instance ids"):
        align_instances(a, _fs([1.0], [0]))


def test_the_task_refuses_instance_pairing_on_features_without_ids():
    cfg = load_config(PAIRED, ["seeds=[0]", "head.epochs=2"])
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 6)
    fa, fb = _fs(rng.normal(size=(60, 4)), y), _fs(rng.normal(size=(60, 4)), y)
    with pytest.raises(DataError, match="pairing instance"):
        run_zero_shot(fa, fb, fa, fb, cfg.head, cfg.zero_shot, 0)


def test_instance_pairs_transfer_to_unseen_classes_on_a_shared_latent():
    """Features of both modalities are noisy linear maps of one per-instance latent: instance
    pairing teaches the map from seen classes, so unseen classes are retrieved far above chance."""
    rng = np.random.default_rng(4)
    n_per, n_cls, d = 40, 10, 8
    y = np.repeat(np.arange(n_cls), n_per)
    centres = rng.normal(size=(n_cls, d)) * 1.5
    z = centres[y] + rng.normal(size=(len(y), d))
    xa = z @ rng.normal(size=(d, 24)) + 0.1 * rng.normal(size=(len(y), 24))
    xb = z @ rng.normal(size=(d, 30)) + 0.1 * rng.normal(size=(len(y), 30))
    ids = np.arange(len(y))
    test = rng.random(len(y)) < 0.3
    a_tr, b_tr = _fs(xa[~test], y[~test], ids[~test]), _fs(xb[~test], y[~test], ids[~test])
    a_te, b_te = _fs(xa[test], y[test], ids[test]), _fs(xb[test], y[test], ids[test])
    cfg = load_config(PAIRED, ["head.epochs=15", "zero_shot.prototypical_baseline=false"])
    r = run_zero_shot(a_tr, b_tr, a_te, b_te, cfg.head, cfg.zero_shot, 0)
    u, chance = r.metrics["zero_shot"]["unseen"], r.metrics["chance"]["unseen"]
    assert r.metrics["pairing"] == "instance" and chance == pytest.approx(1 / 3, abs=0.05)
    assert u["a_to_b"] > chance + 0.3 and u["b_to_a"] > chance + 0.3


#: zero_shot_paired shrunk: 60 images per class, small reservoirs, one seed, few epochs
TINY_PAIRED = [
    "seeds=[0]",
    "data.neural.options={samples_per_class: 60}",
    "data.image.options={samples_per_class: 60}",
    "reservoir.neural.n_neurons=128",
    "reservoir.image.n_neurons=128",
    "reservoir.neural.calibration_samples=32",
    "reservoir.image.calibration_samples=32",
    "head.epochs=12",
    "zero_shot.prototypical_baseline=false",
]


@pytest.mark.slow
def test_reduced_zero_shot_paired_retrieves_unseen_classes_above_chance(tmp_path):
    out = tmp_path / "runs"
    args = ["run", str(PAIRED), "--quiet", "--out", str(out), *sum((["--set", s] for s in TINY_PAIRED), [])]
    assert main(args) == 0
    (run,) = list(out.iterdir())
    m = json.loads((run / "metrics.json").read_text())
    assert m["pairing"] == "instance" and m["per_seed"][0]["pairing"] == "instance"
    o = m["over_splits"]
    assert o["zero_shot"]["n"] == 4 and o["raw_baseline"]["n"] == 4  # unseen 7-9 and three rotations
    chance = o["chance"]["unseen"]
    assert chance == pytest.approx(1 / 3, abs=0.02)
    # 4 splits x 3 unseen classes x 12 test pairs per direction; a binomial margin of 3 standard
    # errors over chance (the splits share a reservoir, so this is generous, not strict)
    n_queries = 4 * 3 * 12
    margin = 3 * math.sqrt(chance * (1 - chance) / n_queries)
    for d in ("a_to_b", "b_to_a"):
        assert o["zero_shot"]["mean"]["unseen"][d] > chance + margin, (d, o["zero_shot"])
    report = (run / "report.md").read_text()
    assert "Pairing: `instance`" in report and "binned raw events" in report


def test_head_schedule_keys_are_checked_at_the_boundary():
    with pytest.raises(ConfigError, match="learned temperature starts inside"):
        load_config(PAIRED, ["head.temperature=2.0"])
    with pytest.raises(ConfigError, match="head.schedule"):
        load_config(PAIRED, ["head.schedule=linear"])
    with pytest.raises(ConfigError, match="head.clip_grad_norm"):
        load_config(PAIRED, ["head.clip_grad_norm=0"])
    cfg = load_config(PAIRED, ["head.epochs=1"])  # a warmup longer than the run is cut to it
    assert (cfg.head.epochs, cfg.head.warmup_epochs) == (1, 2)
