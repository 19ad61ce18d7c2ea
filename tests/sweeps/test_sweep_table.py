"""The sweep's table and plots: metrics flattened without wall times, the CSV's exact text, the
mean and spread over seeds against an independent computation, one PNG per metric and axis."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurohw.sweeps.plots import plot_sweep
from neurohw.sweeps.point import flat_metrics
from neurohw.sweeps.table import read_csv, seed_spread, write_csv


def test_flat_metrics_keep_numbers_drop_wall_times_and_average_seeds():
    metrics = {
        "test_accuracy": 0.5, "timing": {"features_s": 3.0},
        "energy": {"encoder_j_per_sample": 1e-6, "head_j_per_sample": 2e-8, "digital_baseline_j_per_sample": 5e-5, "mac_j": 4.6e-12},
        "per_seed": [
            {"seed": 0, "test_accuracy": 0.9, "cv_accuracy": 0.8, "val_accuracy": None, "readout": "ridge", "cv_scores": [1, 2],
             "zero_shot": {"val_seen": {"a_to_b": 0.6, "b_to_a": 0.8}}, "prototypical_train_s": 9.0,
             "baselines": {"train_s": 1.0, "training_cost_ratio": 17.0, "accuracy": 0.4}, "optimistic": False},
            {"seed": 1, "test_accuracy": 0.7, "cv_accuracy": 0.6, "val_accuracy": None, "readout": "ridge", "cv_scores": [1, 2],
             "zero_shot": {"val_seen": {"a_to_b": 0.4, "b_to_a": 0.6}}, "prototypical_train_s": 9.5,
             "baselines": {"train_s": 2.0, "training_cost_ratio": 15.0, "accuracy": 0.6}, "optimistic": False},
        ],
    }
    row = flat_metrics(metrics)
    assert row == {
        "test_accuracy": pytest.approx(0.8), "cv_accuracy": pytest.approx(0.7), "val_accuracy": None,
        "zero_shot.val_seen.a_to_b": pytest.approx(0.5), "zero_shot.val_seen.b_to_a": pytest.approx(0.7),
        "zero_shot.val_seen.mean": pytest.approx(0.6), "baselines.accuracy": pytest.approx(0.5),
        "energy.encoder_j_per_sample": 1e-6, "energy.head_j_per_sample": 2e-8, "energy.digital_baseline_j_per_sample": 5e-5,
    }


def _records(rng):
    rows = []
    for p, (x, s, o) in enumerate(itertools.product([1.0, 10.0, 100.0], ["a", "b"], [0, 1])):
        for seed in (0, 1, 2):
            rows.append({"point": p, "seed": seed, "values": {"x": x, "s": s, "o": o}, "status": "ok", "error": None,
                         "metrics": {"acc": float(rng.random()), "n": 3}})
    rows[5]["status"], rows[5]["metrics"], rows[5]["error"] = "failed", {}, "ValueError: boom"
    return rows


def test_mean_and_spread_over_seeds_equal_an_independent_computation():
    rows = _records(np.random.default_rng(0))
    lines = seed_spread(rows, "x", "s", "acc")
    assert list(lines) == ['"a"', '"b"']
    for s in ("a", "b"):
        xs, means, stds, counts = lines[f'"{s}"']
        assert xs == [1.0, 10.0, 100.0]
        for x, m, sd, c in zip(xs, means, stds, counts):
            # per seed: the mean over the other axis (o) of the successful points; then mean and std(ddof=1) over seeds
            per_seed = []
            for seed in (0, 1, 2):
                v = [r["metrics"]["acc"] for r in rows if r["status"] == "ok" and r["seed"] == seed
                     and r["values"]["x"] == x and r["values"]["s"] == s]
                per_seed.append(sum(v) / len(v))
            assert c == 3
            assert m == pytest.approx(np.mean(per_seed), rel=1e-12)
            assert sd == pytest.approx(np.std(per_seed, ddof=1), rel=1e-12)


def test_the_csv_text_is_exact_and_reads_back(tmp_path):
    rows = [
        {"point": 0, "seed": 1, "values": {"a.b": 0.1, "c": [1, 2], "d": None}, "status": "ok", "error": None,
         "metrics": {"m": 1 / 3, "z": 5, "empty": None}},
        {"point": 1, "seed": 1, "values": {"a.b": 1e-7, "c": "x", "d": True}, "status": "failed", "error": "ConfigError: bad, really",
         "metrics": {}},
    ]
    path = write_csv(tmp_path / "r.csv", rows, ["a.b", "c", "d"], ["z"])
    assert path.read_text() == (
        "point,seed,a.b,c,d,status,error,z,m\n"
        '0,1,0.1,"[1,2]",,ok,,5,0.3333333333333333\n'
        '1,1,1e-07,x,true,failed,"ConfigError: bad, really",,\n'
    )
    back = read_csv(path)
    assert float(back[0]["m"]) == 1 / 3 and back[1]["error"] == "ConfigError: bad, really"


def test_one_plot_per_metric_and_varied_axis(tmp_path):
    rows = _records(np.random.default_rng(1))
    files = plot_sweep(tmp_path, rows, ["x", "s", "o"], ["acc"], "demo")
    assert sorted(p.name for p in files) == ["acc__vs__o__by__x.png", "acc__vs__s__by__x.png", "acc__vs__x__by__s.png"]
    assert all(p.stat().st_size > 10_000 for p in files)
