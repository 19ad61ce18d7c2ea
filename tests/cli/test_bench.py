"""``neurohw bench reservoir --quick --json``: the report's structure (not speed)."""

from __future__ import annotations

import json

from neurohw.cli import main
from neurohw.reservoir.backends import available_backends


def test_bench_reservoir_quick_json(capsys):
    assert main(["bench", "reservoir", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"workload", "results", "not_measured"}
    w = report["workload"]
    assert w["quick"] is True and w["n_inputs"] > 0 and w["scale_per_us"] > 0
    names = {(r["name"], r["noise"]) for r in report["results"]}
    assert {("snntorch", False), ("torch-dense", False), ("neurohw-numpy", False), ("neurohw-cpu", False), ("neurohw-cpu", True)} <= names
    for r in report["results"]:
        assert {"name", "samples_per_s", "peak_rss_mb", "noise", "ratio_to_snntorch"} <= set(r)
        assert r["samples_per_s"] > 0 and r["peak_rss_mb"] > 0 and isinstance(r["noise"], bool)
    snn = next(r for r in report["results"] if r["name"] == "snntorch")
    assert snn["ratio_to_snntorch"] == 1.0
    # the neurohw backends compute the same features on the same weights and inputs
    rates = {r["firing_rate"] for r in report["results"] if r["name"].startswith("neurohw") and not r["noise"]}
    assert len(rates) == 1
    # every backend is either measured or named with the reason it was not (the GPU row)
    measured = {r["name"].removesuffix("-noadc") for r in report["results"] if r["name"].startswith("neurohw")}
    missing = {m["name"] for m in report["not_measured"]}
    assert measured | missing == {"neurohw-numpy", "neurohw-cpu", "neurohw-cupy"} and not measured & missing
    assert all(m["reason"] for m in report["not_measured"])


def test_bench_table_output(capsys):
    assert main(["bench", "reservoir", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "neurohw-cpu" in out and "snntorch" in out
    if "cupy" not in available_backends():
        assert "neurohw-cupy: not measured here" in out
