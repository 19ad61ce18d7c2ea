"""Multi-objective (co-design) search: its file checked before anything runs; the front of a
study against a brute-force non-dominated filter written here; and, end to end on the embedded
digits, pareto.csv and the plots, every front member's YAML run by ``neurohw run`` to its
trial's validation score, energy and array cost, and a killed and resumed study ending with
the trials of an uninterrupted one (one worker)."""

from __future__ import annotations

import copy
import csv
import json

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from _sweeps import TINY_BASE, cli, write_yaml
from neurohw.errors import ConfigError
from neurohw.sweeps.front import front, trial_rows
from neurohw.sweeps.search import load_search, sampler_for

BASE = {**copy.deepcopy(TINY_BASE), "seeds": [0]}

SEARCH = {
    "name": "co",
    "base": BASE,
    "params": {"device.overrides.adc.bits": {"low": 3, "high": 8}, "reservoir.d.n_neurons": {"low": 8, "high": 32, "step": 8}},
    "objectives": [{"metric": "validation"}, {"metric": "energy_per_sample"}, {"metric": "array.cells"}],
    "constraints": [{"metric": "validation", "min": 0.3}],
    "trials": 6,
    "sampler": "nsga2",
    "population": 4,
    "seed": 0,
}


def _search(**kw) -> dict:
    return {**copy.deepcopy(SEARCH), **kw}


def test_a_multi_objective_search_is_checked_before_it_runs():
    s = load_search("s.yaml", raw_spec=_search())
    assert s.multi and s.directions == ["maximize", "minimize", "minimize"] and s.sampler == "nsga2"
    assert not load_search("s.yaml", raw_spec={k: v for k, v in SEARCH.items() if k not in ("objectives", "constraints", "sampler", "population")}).multi
    bad = [
        (_search(objective="validation"), r"give objective \(and direction\) for one objective, or objectives for several, not both"),
        (_search(objectives=[{"metric": "validation"}]), r"objectives must list at least two metrics"),
        (_search(objectives=[{"metric": "validation"}, {"metric": "test_accuracy"}]), r"objective 'test_accuracy' is measured on the test split"),
        (_search(objectives=[{"metric": "validation"}, {"metric": "energy_per_sampel"}]), r"not a search metric \(did you mean 'energy_per_sample'\?\)"),
        (_search(objectives=[{"metric": "validation"}, {"metric": "validation"}]), r"objectives name a metric twice"),
        (
            _search(objectives=[{"metric": "val_accuracy"}, {"metric": "array.cells"}]),
            r"'val_accuracy' is not measured by the base's classify task with a ridge head",
        ),
        (_search(constraints=[{"metric": "validation"}]), r"a constraint needs min, max or both"),
        (_search(constraints=[{"metric": "zero_shot.seen.a_to_b", "min": 0.1}]), r"constraint 'zero_shot.seen.a_to_b' is measured on the test split"),
        ({k: v for k, v in _search().items() if k != "objectives"}, r"constraints need objectives"),
        ({**{k: v for k, v in _search().items() if k not in ("objectives", "constraints")}}, r"sampler nsga2 is multi-objective"),
        (_search(objectives=[{"metric": "validation", "direction": "up"}, {"metric": "array.cells"}]), r"'maximize', 'minimize'"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message) as info:
            load_search("s.yaml", raw_spec=spec)
        assert "\n" not in str(info.value)


def _dominates(a, b, dirs):
    ge = all((x >= y) if d == "maximize" else (x <= y) for x, y, d in zip(a, b, dirs))
    gt = any((x > y) if d == "maximize" else (x < y) for x, y, d in zip(a, b, dirs))
    return ge and gt


def test_the_front_of_a_study_equals_a_brute_force_filter():
    search = load_search("s.yaml", raw_spec=_search(constraints=[{"metric": "validation", "min": 0.2}]))
    dists = {"device.overrides.adc.bits": IntDistribution(3, 8), "reservoir.d.n_neurons": IntDistribution(8, 32, step=8)}
    import random

    rng = random.Random(1)
    trials = []
    for n in range(60):
        params = {"device.overrides.adc.bits": rng.randint(3, 8), "reservoir.d.n_neurons": rng.choice([8, 16, 24, 32])}
        metrics = {"validation": rng.choice([0.1, 0.3, 0.5, 0.7]), "energy_per_sample": rng.choice([1e-9, 2e-9, 4e-9]),
                   "array.cells": rng.choice([1000, 2000])}
        t = create_trial(params=params, distributions=dists, values=list(metrics.values()), user_attrs={"metrics": metrics},
                         state=TrialState.COMPLETE)
        trials.append(t)
    for n, t in enumerate(trials):
        t.number = n
    rows = trial_rows(search, trials)
    got = [r.number for r in front(search, rows)]
    # brute force: feasible (validation >= 0.2) trials that no feasible trial dominates; a repeated design once
    dirs = ["maximize", "minimize", "minimize"]
    vals = {t.number: [t.user_attrs["metrics"][k] for k in ("validation", "energy_per_sample", "array.cells")] for t in trials}
    feasible = [t for t in trials if vals[t.number][0] >= 0.2]
    expect, seen = [], set()
    for t in feasible:
        key = tuple(sorted(t.params.items()))
        if not any(_dominates(vals[o.number], vals[t.number], dirs) for o in feasible) and key not in seen:
            seen.add(key)
            expect.append(t.number)
    assert sorted(got) == sorted(expect) and len(got) >= 2
    assert [vals[n][0] for n in got] == sorted((vals[n][0] for n in got), reverse=True)  # best validation first


def _csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _study_trials(folder):
    from neurohw.sweeps.journal import CheckedJournal
    from optuna.storages import JournalStorage

    study = optuna.load_study(study_name="co", storage=JournalStorage(CheckedJournal(folder / "study.log")))
    return study, [(t.params, t.values) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


@pytest.mark.slow
def test_a_codesign_search_writes_its_front_reruns_its_members_and_resumes_to_the_same_trials(tmp_path):
    cache = tmp_path / "cache"
    path = write_yaml(tmp_path / "co.yaml", SEARCH)
    whole = tmp_path / "whole"
    res = cli(["search", str(path), "--out", str(whole), "--workers", "1"], cache)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(whole / "pareto.csv")

    # the front against an independent filter over trials.csv
    trials = [t for t in _csv(whole / "trials.csv") if t["state"] == "complete"]
    assert len(trials) == 6
    cols = ("validation", "energy_per_sample", "array.cells")
    dirs = ("maximize", "minimize", "minimize")
    feasible = [t for t in trials if float(t["validation"]) >= 0.3]
    vals = {t["trial"]: [float(t[c]) for c in cols] for t in feasible}
    nd, seen = set(), set()
    for t in feasible:
        key = (t["device.overrides.adc.bits"], t["reservoir.d.n_neurons"])
        if not any(_dominates(vals[o["trial"]], vals[t["trial"]], dirs) for o in feasible) and key not in seen:
            seen.add(key)
            nd.add(t["trial"])
    pareto = _csv(whole / "pareto.csv")
    assert {p["trial"] for p in pareto} == nd and len(pareto) >= 1
    assert {t["trial"] for t in trials if t["front"] == "1"} == nd
    for png in ["front__energy_per_sample__vs__validation.png", "front__array.cells__vs__validation.png",
                "front__array.cells__vs__energy_per_sample.png", "hypervolume.png"]:
        assert (whole / png).stat().st_size > 10_000, png

    # every front member's YAML runs to its trial's validation score, energy and cells; its test score is the run's
    for p in pareto:
        out = tmp_path / f"rerun-{p['trial']}"
        res = cli(["run", str(whole / p["config"]), "--out", str(out), "--quiet", "--set", "plots=false"], cache)
        assert res.returncode == 0, res.stderr
        m = json.loads((out / res.stdout.strip().split("/")[-1] / "metrics.json").read_text())
        assert m["per_seed"][0]["cv_accuracy"] == float(p["validation"])
        assert m["energy"]["encoder_j_per_sample"] + m["energy"]["head_j_per_sample"] == float(p["energy_per_sample"])
        assert m["array"]["cells"] == int(p["array.cells"]) and m["test_accuracy"] == float(p["test_accuracy"])

    # killed and resumed: 3 trials, a session killed with its 4th trial asked (left RUNNING), then on to 6
    cut = tmp_path / "cut"
    res = cli(["search", str(path), "--out", str(cut), "--workers", "1", "--trials", "3"], cache)
    assert res.returncode == 0, res.stderr
    study, _ = _study_trials(cut)
    search = load_search(path)
    study.sampler = sampler_for(search, 3)  # what the killed session asked for its 4th slot
    study.ask({k: v.distribution() for k, v in search.params.items()})
    res = cli(["search", str(path), "--out", str(cut), "--workers", "1"], cache)
    assert res.returncode == 0, res.stderr
    assert "3 done, 1 interrupted trial(s) to run again" in res.stderr
    _, resumed = _study_trials(cut)
    _, uninterrupted = _study_trials(whole)
    assert resumed == uninterrupted
    def designs(rows):  # the interrupted trial shifts the numbers of the trials after it
        return [{k: v for k, v in r.items() if k not in ("trial", "config")} for r in rows]

    assert designs(_csv(cut / "pareto.csv")) == designs(pareto)
    assert [t["state"] for t in _csv(cut / "trials.csv")].count("interrupted") == 1


def test_the_shipped_codesign_search_is_valid():
    s = load_search("codesign_digits")
    assert s.multi and [o.metric for o in s.objectives] == ["validation", "energy_per_sample", "array.cells"]
    assert s.sampler == "nsga2" and s.constraints[0].min == 0.8 and "device.overrides.adc.bits" in s.params
