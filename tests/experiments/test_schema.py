"""The experiment schema: defaults, overrides, and one-line errors for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neurohw.errors import ConfigError, UserError
from neurohw.experiments.schema import apply_overrides, dump_config, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def _minimal(**extra) -> dict:
    return {
        "task": "classify",
        "data": {"img": {"dataset": "digits-dvs", "binning": {"n_bins": 10}}},
        "reservoir": {"img": {"n_neurons": 32, "scale": 0.07}},
        **extra,
    }


def _write(tmp_path, obj, name="exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    return p


def test_defaults_are_the_paper_protocol(tmp_path):
    cfg = load_config(_write(tmp_path, _minimal()))
    assert cfg.name == "exp"
    assert (cfg.head.dim, cfg.head.temperature, cfg.head.lr, cfg.head.epochs) == (64, 1.0, 1e-3, 100)
    assert cfg.zero_shot.seen == [1, 2, 3, 4, 5, 6, 7] and cfg.zero_shot.unseen == [8, 9]
    assert cfg.zero_shot.selection == "validation"
    assert cfg.run_seeds == [0] and cfg.head_kind == "linear"
    # the resolved config round-trips
    again = parse_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_set_overrides_parse_yaml_values(tmp_path):
    cfg = load_config(
        _write(tmp_path, _minimal()),
        ["head.epochs=7", "seeds=[1, 2]", "head.hidden=[16]", "data.img.binning.polarity=both", "zero_shot.selection=test_optimistic"],
    )
    assert cfg.head.epochs == 7 and cfg.run_seeds == [1, 2] and cfg.head_kind == "mlp"
    assert cfg.zero_shot.selection == "test_optimistic"


def test_set_override_errors():
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["head.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"task": "classify"}, ["task.x=1"])


def _error(tmp_path, obj, overrides=None) -> str:
    with pytest.raises(UserError) as info:
        load_config(_write(tmp_path, obj), overrides)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_malformed_yaml_names_line_and_column(tmp_path):
    msg = _error(tmp_path, "task: classify\ndata:\n  img: {dataset: x\n  bad: [\n")
    assert "exp.yaml:" in msg and "malformed YAML" in msg
    assert ":4:" in msg or ":3:" in msg


def test_unknown_key_did_you_mean(tmp_path):
    raw = _minimal()
    raw["data"]["img"]["binnig"] = raw["data"]["img"].pop("binning")
    msg = _error(tmp_path, raw)
    assert "unknown key 'binnig' in data.img" in msg and "did you mean 'binning'" in msg
    msg = _error(tmp_path, _minimal(seeeds=[1]))
    assert "did you mean 'seeds'" in msg
    msg = _error(tmp_path, _minimal(), ["head.temprature=0.5"])
    assert "unknown key 'temprature' in head" in msg and "'temperature'" in msg


def test_unknown_key_in_owned_sections(tmp_path):
    raw = _minimal()
    raw["data"]["img"]["binning"]["n_bin"] = 3
    msg = _error(tmp_path, raw)
    assert "data.img.binning" in msg
    raw = _minimal()
    raw["reservoir"]["img"]["n_neuron"] = 3
    msg = _error(tmp_path, raw)
    assert "reservoir.img" in msg and "n_neuron" in msg


def test_wrong_type_and_impossible_values(tmp_path):
    msg = _error(tmp_path, _minimal(), ["head.epochs=lots"])
    assert "key 'head.epochs'" in msg and "'lots'" in msg
    msg = _error(tmp_path, _minimal(), ["head.temperature=0"])
    assert "key 'head.temperature'" in msg and "greater than 0" in msg
    msg = _error(tmp_path, _minimal(task="clasify"))
    assert "key 'task'" in msg
    msg = _error(tmp_path, _minimal(), ["zero_shot.unseen=[7, 8]"])
    assert "both seen and unseen" in msg
    msg = _error(tmp_path, _minimal(), ["seeds=[1, 1]"])
    assert "distinct" in msg


def test_task_and_modalities_must_agree(tmp_path):
    msg = _error(tmp_path, _minimal(task="zero_shot"))
    assert "exactly two modalities" in msg
    raw = _minimal()
    raw["reservoir"] = {"image": {"n_neurons": 8, "scale": 0.07}}
    assert "one entry per data modality" in _error(tmp_path, raw)
    assert "linear_probe" in _error(tmp_path, _minimal(task="linear_probe"), ["head.hidden=[8]"])


def test_missing_required_key_and_empty_file(tmp_path):
    raw = _minimal()
    del raw["task"]
    assert "missing required key 'task'" in _error(tmp_path, raw)
    assert "empty config" in _error(tmp_path, "")
    assert "top level must be a mapping" in _error(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_env_variable_in_root(tmp_path, monkeypatch):
    raw = _minimal()
    raw["data"]["img"]["root"] = "${NEUROHW_TEST_ROOT_XYZ}/n"
    monkeypatch.delenv("NEUROHW_TEST_ROOT_XYZ", raising=False)
    assert "NEUROHW_TEST_ROOT_XYZ is not set" in _error(tmp_path, raw)
    monkeypatch.setenv("NEUROHW_TEST_ROOT_XYZ", "/data")
    assert load_config(_write(tmp_path, raw)).data["img"].root == "/data/n"


def test_bad_device_override_is_one_line(tmp_path):
    msg = _error(tmp_path, _minimal(), ["device.overrides.read_noise.relativ=0.1"])
    assert "device" in msg and "relativ" in msg


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_validate(path, monkeypatch):
    monkeypatch.setenv("NEUROHW_NMNIST_SMALL", "/tmp/nmnist-small")
    monkeypatch.setenv("NEUROHW_NMNIST", "/tmp/nmnist")
    monkeypatch.setenv("NEUROHW_NTIDIGITS", "/tmp/ntidigits")
    cfg = load_config(path)
    resolved = cfg.model_dump(mode="json")
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    # every value the YAML writes (data, device, reservoir, head, ... down to each leaf) is the
    # value the resolved config holds: no validator drops, renames or rewrites what was asked for
    for keys, value in _leaves(written):
        node = resolved
        for key in keys:
            assert isinstance(node, dict) and key in node, f"{path.name}: {'.'.join(keys)} is not in the resolved config"
            node = node[key]
        assert node == value, f"{path.name}: {'.'.join(keys)} = {value!r} resolves to {node!r}"
    assert set(cfg.reservoir) == set(cfg.data), f"{path.name}: one reservoir section per modality"
    # and the resolved config, written out with every default, reads back to the same config
    assert parse_config(yaml.safe_load(dump_config(cfg)), path.name) == cfg


def _leaves(node, keys=()):
    """(key path, value) of every leaf of a nested mapping (lists are values)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*keys, key))
    else:
        yield keys, node
