"""The sweep file: points as the product of axis groups (zip groups moving together), seeds as
an axis, and every bad input one line with exit code 2 before anything runs or is written."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from _sweeps import TINY_BASE, cli, write_yaml
from neurohw.errors import ConfigError
from neurohw.sweeps.spec import load_sweep


def _spec(**kw) -> dict:
    return {"name": "t", "base": copy.deepcopy(TINY_BASE), "seeds": [0, 1], **kw}


def test_points_are_the_grid_of_axes_and_zip_groups_in_file_order():
    s = load_sweep("t.yaml", raw_spec=_spec(
        axes={"reservoir.d.decay": [0.8, 0.9], "device.overrides.read_noise.relative": [0.0, 0.05, 0.1]},
        zip=[{"reservoir.d.n_neurons": [12, 20], "reservoir.d.target_rate": [0.05, 0.08]}]))
    assert len(s.points) == 2 * 3 * 2 and s.seeds == [0, 1]
    assert s.axes == ["reservoir.d.decay", "device.overrides.read_noise.relative", "reservoir.d.n_neurons", "reservoir.d.target_rate"]
    assert s.points[0].values == {"reservoir.d.decay": 0.8, "device.overrides.read_noise.relative": 0.0,
                                  "reservoir.d.n_neurons": 12, "reservoir.d.target_rate": 0.05}
    assert s.points[1].values["reservoir.d.n_neurons"] == 20 and s.points[1].values["reservoir.d.target_rate"] == 0.08  # zip: together
    assert s.points[2].values["device.overrides.read_noise.relative"] == 0.05  # the last group varies fastest
    assert s.points[-1].values["reservoir.d.decay"] == 0.9
    # what a worker runs: the base with the point's values, one run seed, a plain run name, no figures
    raw = s.point_raw(s.points[1], 1)
    assert raw["reservoir"]["d"]["n_neurons"] == 20 and raw["seeds"] == [1] and raw["plots"] is False
    assert raw["name"] == "t-p0001-s1"
    assert s.configs[1].device.resolved.read_noise.relative == 0.0 and s.configs[3].device.resolved.read_noise.relative == 0.05
    assert s.metrics == ["test_accuracy", "cv_accuracy"]  # the task's test and validation scores by default


def test_seeds_default_to_the_base_and_a_sweep_without_axes_is_one_point():
    base = {**copy.deepcopy(TINY_BASE), "seeds": [3, 4]}
    s = load_sweep("t.yaml", raw_spec={"base": base})
    assert len(s.points) == 1 and s.points[0].values == {} and s.seeds == [3, 4] and s.name == "t"


BAD = [
    ({"axes": {"device.read_tim": [1.0]}}, r"t\.yaml: axis device\.read_tim=1\.0: unknown key 'read_tim' in device \(did you mean 'read_time_s'\?\)"),
    ({"axes": {"reservoir.d.n_neuron": [8]}}, r"unknown key 'n_neuron' in reservoir\.d \(did you mean 'n_neurons'\?\)"),
    (
        {"axes": {"resevoir.d.n_neurons": [8]}},
        r"axis 'resevoir\.d\.n_neurons': unknown key 'resevoir' at the top level of the experiment \(did you mean 'reservoir'\?\)",
    ),
    ({"axes": {"reservoir.d.decay": []}}, r"axis 'reservoir\.d\.decay' is empty; give at least one value"),
    ({"axes": {"reservoir.d.decay": 0.9}}, r"axis 'reservoir\.d\.decay' must be a list of values"),
    ({"axes": {"reservoir.d.decay": [0.9, 1.5]}}, r"axis reservoir\.d\.decay=1\.5: key 'reservoir\.d\.decay' = 1\.5: .*less than or equal to 1"),
    ({"axes": {"device.overrides.adc.bits": [8, 0]}}, r"axis device\.overrides\.adc\.bits=0: .*adc\.bits"),
    ({"axes": {"seeds": [[0], [1]]}}, r"axis 'seeds': seeds is set by the sweep file itself; use its top-level 'seeds:' key"),
    ({"zip": [{"reservoir.d.decay": [0.8, 0.9], "reservoir.d.v_th": [4.0]}]}, r"zip group .*equal lengths, got reservoir\.d\.decay: 2, reservoir\.d\.v_th: 1"),
    ({"axes": {"reservoir.d": [{"decay": 0.8}], "reservoir.d.decay": [0.9]}}, r"axis 'reservoir\.d\.decay' overlaps axis 'reservoir\.d'"),
    ({"axis": {"reservoir.d.decay": [0.8]}}, r"unknown key 'axis' in the top level \(did you mean 'axes'\?\)"),
    ({"metrics": ["test_acuracy"]}, r"metric 'test_acuracy' is not measured by this sweep's runs \(did you mean 'test_accuracy'\?\)"),
    ({"seeds": []}, r"seeds must list distinct non-negative integers"),
    ({"base": "no_such_experiment"}, r"base 'no_such_experiment': no such config file or shipped experiment"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_sweeps_are_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_sweep("t.yaml", raw_spec=_spec(**change))
    assert "\n" not in str(info.value)


def test_bad_input_through_the_cli_is_one_line_exit_2_and_writes_nothing(tmp_path):
    """Each case as a user meets it: one line on stderr, exit code 2, no sweep folder (and for
    the Ray address: no Ray started, the address checked with a plain connection first)."""
    cases = {
        "key": (_spec(axes={"device.read_tim": [1.0]}), [], "did you mean 'read_time_s'"),
        "empty": (_spec(axes={"reservoir.d.decay": []}), [], "is empty"),
        "value": (_spec(axes={"reservoir.d.decay": [0.9, 1.5]}), [], "reservoir.d.decay"),
        "ray": (_spec(axes={"reservoir.d.decay": [0.9]}), ["--executor", "ray", "--address", "127.0.0.1:9"],
                "--address 127.0.0.1:9: no Ray cluster answers there"),
        "address without ray": (_spec(), ["--address", "auto"], "--address applies to --executor ray only"),
        "workers": (_spec(), ["--workers", "0"], "--workers must be >= 1"),
    }
    for name, (spec, extra, message) in cases.items():
        path = write_yaml(tmp_path / f"{name.replace(' ', '_')}.yaml", spec)
        out = tmp_path / f"out-{name.replace(' ', '_')}"
        res = cli(["sweep", str(path), "--out", str(out), *extra], tmp_path / "cache", timeout=120)
        assert res.returncode == 2, (name, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("neurohw: error: ") and message in lines[0], (name, res.stderr)
        assert not out.exists(), name


def test_shipped_sweeps_and_search_load_by_name():
    from neurohw.sweeps.search import load_search

    for name, n_points in (("noise_robustness", 24), ("drift", 21), ("stuck_cells", 18)):
        s = load_sweep(name)
        assert len(s.points) == n_points and len(s.seeds) == 3 and s.task == "classify"
    drift = load_sweep("drift")
    assert {c.device.resolved.name for c in drift.configs.values()} == {"pcm_like"}
    assert load_search("digits_ridge").trials == 20
    with pytest.raises(ConfigError, match=r"no such sweep file or shipped sweep \(did you mean 'drift'\?\)"):
        load_sweep("drfit")


def test_set_changes_the_base_before_the_axes(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", _spec(axes={"reservoir.d.decay": [0.8, 0.9]}))
    s = load_sweep(path, ["reservoir.d.n_neurons=24", "device.model=pcm_like"])
    assert all(c.reservoir["d"].n_neurons == 24 and c.device.resolved.name == "pcm_like" for c in s.configs.values())
    assert Path(s.source) == path


def test_a_folder_holding_another_sweep_or_search_is_refused_and_left_as_it_was(tmp_path):
    """Running a second sweep (or a search) into a sweep's folder would mix two tables there:
    one line, exit 2, the folder byte for byte as it was. Its own folder is accepted (resume)."""
    import json

    from neurohw.sweeps.records import claim_folder

    folder = tmp_path / "sw"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"name": "noise_robustness"}))
    before = sorted(p.name for p in folder.iterdir())
    claim_folder(folder, "sweep", "noise_robustness")  # its own: resumes
    with pytest.raises(ConfigError, match=r"holds the sweep 'noise_robustness', not the sweep 'drift'; give another --out"):
        claim_folder(folder, "sweep", "drift")
    with pytest.raises(ConfigError, match=r"holds the sweep 'noise_robustness', not the search 'digits_ridge'"):
        claim_folder(folder, "search", "digits_ridge")
    claim_folder(tmp_path / "absent", "sweep", "drift")  # a new folder: fine
    res = cli(["sweep", "drift", "--out", str(folder)], tmp_path / "cache", timeout=120)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "holds the sweep 'noise_robustness'" in res.stderr
    res = cli(["search", "digits_ridge", "--out", str(folder)], tmp_path / "cache", timeout=120)
    assert res.returncode == 2 and "not the search 'digits_ridge'" in res.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
