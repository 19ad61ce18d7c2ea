"""Hyperparameter search: validation objectives only (a test metric is refused), parameters
checked against the experiment schema, and a 20-trial TPE study on the embedded data that
resumes (also after a killed session), beats the base configuration's validation score, and
writes a best.yaml that ``neurohw run`` runs to the same score."""

from __future__ import annotations

import copy
import csv
import json

import pytest

from _sweeps import TINY_BASE, cli, write_yaml
from neurohw.errors import ConfigError
from neurohw.sweeps.search import load_search

BASE = {**copy.deepcopy(TINY_BASE), "seeds": [0]}
BASE["data"]["d"]["options"] = {"samples_per_class": 10}
BASE["head"]["cv_folds"] = 3

SEARCH = {
    "name": "s20",
    "base": BASE,
    "params": {
        "reservoir.d.decay": {"low": 0.7, "high": 0.99},
        "reservoir.d.target_rate": {"low": 0.02, "high": 0.2, "log": True},
        "reservoir.d.v_th": {"low": 2.0, "high": 10.0},
        "reservoir.d.n_neurons": {"low": 8, "high": 32, "step": 8},
        "head.features": {"choices": [["rate"], ["counts"], ["rate", "counts"]]},
    },
    "objective": "validation",
    "trials": 20,
    "sampler": "tpe",
    "seed": 0,
}


def _search(**kw) -> dict:
    return {**copy.deepcopy(SEARCH), **kw}


def test_a_search_is_checked_before_it_runs():
    s = load_search("s.yaml", raw_spec=_search())
    assert s.trials == 20 and s.seeds == [0] and s.params["reservoir.d.n_neurons"].integer
    assert not s.params["reservoir.d.decay"].integer
    bad = [
        (_search(objective="test_accuracy"), r"objective 'test_accuracy' is measured on the test split; a search selects on validation data only"),
        (_search(objective="zero_shot.unseen.a_to_b"), r"is measured on the test split"),
        (
            _search(objective="val_accuracy"),
            r"objective 'val_accuracy' is not measured by the base's classify task with a ridge head; use 'validation' \(cv_accuracy there\)",
        ),
        (
            _search(params={"reservoir.d.decy": {"low": 0.7, "high": 0.9}}),
            r"parameter reservoir\.d\.decy=0\.7: unknown key 'decy' in reservoir\.d \(did you mean 'decay'\?\)",
        ),
        (_search(params={"reservoir.d.decay": {"low": 0.7, "high": 1.5}}), r"parameter reservoir\.d\.decay=1\.5: key 'reservoir\.d\.decay' = 1\.5"),
        (_search(params={"reservoir.d.decay": {"low": 0.9, "high": 0.7}}), r"low must be below high"),
        (_search(params={"reservoir.d.decay": {"low": 0.0, "high": 0.7, "log": True}}), r"a log range needs low > 0"),
        (_search(params={"head.features": {"choices": [["rate"], ["spikes"]]}}), r"parameter head\.features=\['spikes'\]"),
        (_search(params={}), r"params must name at least one key"),
        (_search(sampler="grid"), r"key 'sampler' = 'grid'.*'tpe', 'random'"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message) as info:
            load_search("s.yaml", raw_spec=spec)
        assert "\n" not in str(info.value)


def test_a_test_objective_through_the_cli_is_one_line_exit_2_and_writes_nothing(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", _search(objective="test_accuracy"))
    res = cli(["search", str(path), "--out", str(tmp_path / "out")], tmp_path / "cache", timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "test split" in res.stderr
    assert not (tmp_path / "out").exists()


def _trials(folder) -> list[dict]:
    with open(folder / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_a_20_trial_search_resumes_beats_the_base_and_its_best_config_runs(tmp_path):
    cache = tmp_path / "cache"
    # the baseline: the base configuration itself, on the same validation metric
    base_yaml = write_yaml(tmp_path / "base.yaml", {**BASE, "name": "base"})
    res = cli(["run", str(base_yaml), "--out", str(tmp_path / "runs"), "--quiet", "--set", "plots=false"], cache)
    assert res.returncode == 0, res.stderr
    baseline = json.loads((tmp_path / "runs" / res.stdout.strip().split("/")[-1] / "metrics.json").read_text())
    baseline_cv = baseline["per_seed"][0]["cv_accuracy"]

    path = write_yaml(tmp_path / "s20.yaml", SEARCH)
    out = tmp_path / "search"
    res = cli(["search", str(path), "--out", str(out), "--workers", "2", "--trials", "8"], cache)  # a first session: 8 trials
    assert res.returncode == 0, res.stderr
    first = _trials(out)
    assert len(first) == 8 and all(t["state"] == "complete" for t in first)

    # a session killed with a trial running leaves it RUNNING in the study; it runs again
    import optuna
    from optuna.storages import JournalStorage

    from neurohw.sweeps.journal import CheckedJournal

    study = optuna.load_study(study_name="s20", storage=JournalStorage(CheckedJournal(out / "study.log")))
    stale = study.ask({k: v.distribution() for k, v in load_search("s.yaml", raw_spec=SEARCH).params.items()})

    res = cli(["search", str(path), "--out", str(out), "--workers", "2"], cache)  # resumes to 20
    assert res.returncode == 0, res.stderr
    assert "8 done, 1 interrupted trial(s) to run again" in res.stderr
    trials = _trials(out)
    assert trials[:8] == first  # the first session's trials are kept, not run again
    assert [t["state"] for t in trials].count("complete") == 20 and trials[stale.number]["state"] == "interrupted"
    again = [t for t in trials[9:] if all(t[k] == trials[stale.number][k] for k in SEARCH["params"])]
    assert len(again) == 1 and again[0]["state"] == "complete"  # the interrupted trial's parameters ran again
    scores = [float(t["validation"]) for t in trials if t["state"] == "complete"]
    best = max(scores)
    assert best >= baseline_cv, (best, baseline_cv)
    for png in ("history.png", "params.png"):
        assert (out / png).stat().st_size > 10_000

    # best.yaml is an experiment neurohw run accepts, and it scores what the trial scored
    best_yaml = out / "best.yaml"
    assert res.stdout.strip() == str(best_yaml)
    res = cli(["run", str(best_yaml), "--out", str(tmp_path / "best-runs"), "--quiet"], cache)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "best-runs" / res.stdout.strip().split("/")[-1] / "metrics.json").read_text())
    assert metrics["per_seed"][0]["cv_accuracy"] == best
