"""End to end: YAML in, run directory out, on real (embedded and N-MNIST) data, kept small.

Also the bad-input contract of the CLI: one line on stderr, exit code 2, nothing created; and
the atomic run directory: a run that fails at the last step leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from neurohw.cli import main
from neurohw.experiments.schema import load_config

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"

# the quickstart, shrunk: few samples, tiny reservoirs, one seed, a few epochs
TINY = [
    "seeds=[3]",
    "data.audio.max_train_per_class=12",
    "data.audio.max_test_per_class=6",
    "data.image.max_train_per_class=12",
    "data.image.max_test_per_class=6",
    "reservoir.audio.n_neurons=48",
    "reservoir.image.n_neurons=48",
    "head.epochs=4",
    "batch_size=32",
]


@pytest.fixture()
def cache(session_cache):
    """The session's cache (embedded datasets are generated once there; features are keyed, so shared)."""
    return session_cache


def _only_run_dir(out: Path) -> Path:
    dirs = [p for p in out.iterdir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_quickstart_tiny_end_to_end(tmp_path, cache, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *sum((["--set", s] for s in TINY), [])]) == 0
    run = _only_run_dir(out)
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]) == run  # the path is the last line
    assert not run.name.startswith(".")
    files = {p.name for p in run.iterdir()}
    for f in ("config.yaml", "metrics.json", "report.md", "heads", "conductance_histogram.png", "spike_raster.png",
              "training_curves.png", "retrieval_seen_a_to_b.png", "retrieval_unseen_b_to_a.png", "energy_breakdown.png"):
        assert f in files, f
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "zero_shot" and m["seed"] == 3 and m["seeds"] == [3]
    assert m["chance"]["seen"] == pytest.approx(1 / 7) and m["chance"]["unseen"] == pytest.approx(1 / 2)
    for part in ("seen", "unseen"):
        for d in ("a_to_b", "b_to_a"):
            v = m["zero_shot"][part][d]
            assert 0.0 <= v <= 1.0
            # accuracies are multiples of 1/n_pairs (6 pairs per class)
            n = 7 * 6 if part == "seen" else 2 * 6
            assert math.isclose(v * n, round(v * n), abs_tol=1e-9)
            assert m["zero_shot_std"][part][d] == 0.0  # one seed
    assert m["optimistic"] is False and m["selection"] == "validation"
    assert set(m["energy"]) >= {"encoder_j_per_sample", "head_j_per_sample", "digital_baseline_j_per_sample"}
    assert m["energy"]["head_j_per_sample"] == pytest.approx(m["energy"]["head_macs_per_sample"] * m["energy"]["mac_j"])
    assert m["energy"]["head_macs_per_sample"] == 2 * (48 * 5) * 64  # rate + 4 count bins per neuron, both heads
    assert m["timing"]["features_s"] > 0 and m["timing"]["train_s"] > 0
    # the resolved config is complete and loads again
    cfg = load_config(run / "config.yaml")
    assert cfg.head.epochs == 4 and cfg.data["audio"].max_test_per_class == 6
    # the head weights load with safetensors, both heads and the prototypical baseline
    from safetensors.torch import load_file

    w = load_file(str(run / "heads" / "seed3.safetensors"))
    assert w["contrastive.a.net.0.weight"].shape == (64, 48 * 5)
    assert "prototypical.b.net.0.weight" in w
    report = (run / "report.md").read_text()
    assert "seen-class validation split only" in report and "OPTIMISTIC" not in report


def test_a_second_run_with_another_head_reuses_the_features(tmp_path, cache):
    out = tmp_path / "runs"
    args = ["run", str(QUICKSTART), "--quiet", "--out", str(out), *sum((["--set", s] for s in TINY), []), "--set", "plots=false"]
    assert main(args) == 0
    feats = sorted((cache / "features").glob("*/*.seal"))
    assert len(feats) >= 8  # 2 modalities x 2 splits, a spec file and at least one block each
    stamps = {p: p.stat().st_mtime_ns for p in feats}
    assert main(args + ["--set", "head.dim=16", "--set", "zero_shot.selection=test_optimistic"]) == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((cache / "features").glob("*/*.seal"))} == stamps
    ms = [json.loads((r / "metrics.json").read_text()) for r in sorted(out.iterdir())]
    assert len(ms) == 2
    opt = [x for x in ms if x["optimistic"]]
    assert len(opt) == 1 and opt[0]["selection"] == "test_optimistic"
    assert "OPTIMISTIC" in (next(r for r in out.iterdir() if json.loads((r / "metrics.json").read_text())["optimistic"]) / "report.md").read_text()


def test_failure_at_the_last_step_leaves_nothing(tmp_path, cache, monkeypatch):
    from neurohw.experiments import report

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_report", boom)
    out = tmp_path / "runs"
    with pytest.raises(RuntimeError, match="disk full"):
        main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *sum((["--set", s] for s in TINY), []), "--set", "plots=false"])
    assert list(out.iterdir()) == []  # neither a run directory nor a hidden partial one


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurohw", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "content, overrides, expect",
    [
        ("task: zero_shot\ndata: {a: [1, 2\n", [], "malformed YAML"),
        (None, ["head.epohcs=3"], "did you mean 'epochs'"),
        (None, ["head.epochs=many"], "key 'head.epochs'"),
        (None, ["head.temperature=-1"], "key 'head.temperature'"),
        (None, ["data.image.dataset=nmnist", "data.image.root=/nonexistent/folder"], "data.image"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, content, overrides, expect):
    config = tmp_path / "exp.yaml"
    config.write_text(content if content is not None else QUICKSTART.read_text())
    out = tmp_path / "runs"
    sets = sum((["--set", s] for s in overrides), [])
    for command in ("run", "validate"):
        res = _cli(command, str(config), *sets, *(["--out", str(out)] if command == "run" else []))
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], res.stderr
        assert not out.exists()


def test_validate_reports_the_datasets(cache, capsys):
    assert main(["validate", str(QUICKSTART)]) == 0
    text = capsys.readouterr().out
    assert "valid" in text and "digits-cochlea" in text and "digits-dvs" in text


def test_nmnist_small_classify_end_to_end(tmp_path, cache, nmnist_small):
    out = tmp_path / "runs"
    sets = ["seeds=[1]", "data.digits.max_train_per_class=30", "data.digits.max_test_per_class=10", f"data.digits.root={nmnist_small}",
            "reservoir.digits.n_neurons=64", "head.epochs=15", "batch_size=100"]
    assert main(["run", str(REPO / "experiments" / "nmnist_small.yaml"), "--quiet", "--out", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    run = _only_run_dir(out)
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "classify"
    # 300 real training recordings, 100 test: far above chance (0.1), even for 64 neurons
    assert m["test_accuracy"] > 0.5
    assert (run / "confusion_matrix.png").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["digits"]["root"] == str(nmnist_small)


def test_event_count_features_are_the_per_pixel_counts(nmnist_small):
    """Independent statement: count every event into (bin, polarity, y, x) with a Python loop."""
    from neurohw.data.binning import Binning
    from neurohw.data.registry import load_dataset
    from neurohw.experiments.features import event_count_features

    ds = load_dataset("nmnist-small", "test", root=nmnist_small)
    got = event_count_features(ds, np.array([4, 0]), Binning(n_bins=3, polarity="both", mode="count"))
    assert got.shape == (2, 3 * 2 * 34 * 34) and got.dtype == np.float32
    for row, i in zip(got, (4, 0)):
        ev = ds.events(i)
        t0, span = int(ev["t"].min()), int(ev["t"].max() - ev["t"].min())
        ref = np.zeros((3, 2, 34, 34))
        for x, y, p, t in zip(ev["x"], ev["y"], ev["p"], ev["t"]):
            ref[min((int(t) - t0) * 3 // span, 2), int(p), int(y), int(x)] += 1
        assert np.array_equal(row, np.minimum(ref, 255).reshape(-1))
        assert row.sum() == len(ev)


def test_nmnist_small_shipped_config_beats_raw_counts_and_reaches_093(tmp_path, cache, nmnist_small):
    """The shipped nmnist_small configuration, full data, the config's first reservoir seed:
    test accuracy >= 0.93 (the configuration's target), and its 5-fold CV accuracy on the training split
    beats the same ridge head, same folds and same alpha grid, on the raw per-pixel event counts
    (the dataset README's 0.92-on-test reference features). ~25 s on a cold feature cache."""
    from neurohw.data.binning import Binning
    from neurohw.data.registry import load_dataset
    from neurohw.experiments.classify import cv_folds_for
    from neurohw.experiments.features import event_count_features
    from neurohw.heads.ridge import ridge_cv_accuracy

    config = REPO / "experiments" / "nmnist_small.yaml"
    cfg = load_config(config)
    seed = cfg.run_seeds[0]
    out = tmp_path / "runs"
    sets = [f"seeds=[{seed}]", f"data.digits.root={nmnist_small}", "plots=false"]
    assert main(["run", str(config), "--quiet", "--out", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    run = _only_run_dir(out)
    m = json.loads((run / "metrics.json").read_text())
    p = m["per_seed"][0]
    report = (run / "report.md").read_text()
    assert "5-fold CV accuracy (training split)" in report and "no input-to-readout" in report and f"seed {seed}: {p['alpha']:g}" in report
    assert p["alpha"] in cfg.head.alphas and p["cv_accuracy"] == max(s["accuracy"] for s in p["cv_scores"])
    assert p["readout"] == "ridge" and p["readout_features"] == ["rate", "counts"] and p["n_train"] == 1000 and p["n_test"] == 100
    assert m["test_accuracy"] >= 0.93, m["test_accuracy"]

    train = load_dataset("nmnist-small", "train", root=nmnist_small)
    raw = event_count_features(train, np.arange(len(train)), Binning(n_bins=3, polarity="both", mode="count"))
    folds = cv_folds_for(train.labels, cfg.head.cv_folds, seed)  # the folds the run used
    raw_cv = ridge_cv_accuracy(raw, train.labels, folds, cfg.head.alphas, len(train.classes)).max()
    assert p["cv_accuracy"] > raw_cv + 0.02, (p["cv_accuracy"], raw_cv)  # measured: 0.945 vs 0.89
