"""``neurohw bench reservoir --quick --json``: the report's structure (not speed)."""

from __future__ import annotations

import json

from neurohw.cli import main


def test_bench_reservoir_quick_json(capsys):
    assert main(["bench", "reservoir", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"workload", "results"}
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


def test_bench_table_output(capsys):
    assert main(["bench", "reservoir", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "neurohw-cpu" in out and "snntorch" in out
