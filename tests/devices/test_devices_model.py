"""Device YAML schema: presets load, names resolve, bad values give one DeviceError line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from neurohw.devices.model import PACKAGED_MODELS, list_devices, load_device
from neurohw.errors import DeviceError, UserError

PRESETS = ("taox_rram_40nm", "ideal", "pcm_like")


def test_presets_are_listed_and_load():
    names = list_devices()
    for name in PRESETS:
        assert name in names
        dev = load_device(name)
        assert dev.name == name
        assert dev.source_path.endswith(f"{name}.yaml")


def test_reference_macro_facts():
    d = load_device("taox_rram_40nm")
    assert (d.array.rows, d.array.cols) == (512, 512)
    assert d.forming.formed.mean_us == 14.25 and d.forming.formed.std_us == 2.46
    assert d.read_noise.relative == 0.02
    assert d.adc.bits == 14
    # the level step is the 14-bit ADC's LSB over +-range_us (documented in the YAML)
    assert d.levels.step_us == 2 * d.adc.range_us / 2**d.adc.bits
    assert load_device("pcm_like").drift.enabled


def test_every_preset_value_has_a_comment():
    """Every value line of the shipped YAML carries its own comment (unit and source)."""
    for name in PRESETS:
        lines = (PACKAGED_MODELS / f"{name}.yaml").read_text().splitlines()
        for i, line in enumerate(lines):
            body = line.split("#")[0].rstrip()
            if not body or body.endswith(":") or body.lstrip().startswith(("name:", "description:", "source:", "kind:", "technology:")):
                continue
            assert "#" in line, f"{name}.yaml:{i + 1} has no source/unit comment: {line!r}"


def test_overrides_nested_and_dotted():
    d = load_device("taox_rram_40nm", {"read_noise": {"relative": 0.05}, "adc.bits": 8})
    assert d.read_noise.relative == 0.05 and d.adc.bits == 8
    assert d.read_noise.additive_us == 0.0  # untouched sibling kept


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert isinstance(exc.value, UserError) and exc.value.exit_code == 2
    return msg


@pytest.mark.parametrize(
    "override, needles",
    [
        ({"read_noise": {"relativ": 0.1}}, ["unknown key 'relativ' in read_noise", "did you mean 'relative'"]),
        ({"forming": {"formed": {"std_us": -1.0}}}, ["forming.formed.std_us", "-1.0", "[0.0, inf)"]),
        ({"forming": {"probability": 1.5}}, ["forming.probability", "1.5", "[0.0, 1.0]"]),
        ({"stuck": {"p_off": -0.1}}, ["stuck.p_off", "[0.0, 1.0]"]),
        ({"adc": {"bits": 0}}, ["adc.bits", "= 0", "[1, 32]"]),
        ({"adc": {"gain": "auto"}}, ["adc.gain", "'fixed'", "'per_tile'"]),
        ({"arrray": {}}, ["unknown key 'arrray'", "did you mean 'array'"]),
    ],
)
def test_bad_values_name_file_key_and_range(override, needles):
    with pytest.raises(DeviceError) as exc:
        load_device("taox_rram_40nm", override)
    msg = _one_line(exc)
    assert "taox_rram_40nm.yaml" in msg
    for needle in needles:
        assert needle in msg, msg


def test_unknown_device_name_suggests():
    with pytest.raises(DeviceError) as exc:
        load_device("taox_rram_40")
    msg = _one_line(exc)
    assert "did you mean 'taox_rram_40nm'" in msg


def test_env_search_path_and_file_path(tmp_path, monkeypatch):
    raw = yaml.safe_load((PACKAGED_MODELS / "ideal.yaml").read_text())
    raw["name"] = "my_chip"
    raw["read_noise"] = {"relative": 0.1}
    (tmp_path / "my_chip.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("NEUROHW_DEVICE_MODELS", str(tmp_path))
    assert "my_chip" in list_devices()
    assert load_device("my_chip").read_noise.relative == 0.1
    assert load_device(tmp_path / "my_chip.yaml").name == "my_chip"


def test_malformed_yaml_and_inconsistent_window(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("array: [1, 2\n")
    with pytest.raises(DeviceError, match="bad.yaml:.*malformed YAML"):
        load_device(bad)
    shutil.copy(PACKAGED_MODELS / "ideal.yaml", tmp_path / "x.yaml")
    with pytest.raises(DeviceError, match="programming.g_min_us"):
        load_device(tmp_path / "x.yaml", {"programming": {"g_min_us": 200.0}})
    with pytest.raises(DeviceError, match="array.cols must be even"):
        load_device(tmp_path / "x.yaml", {"array": {"cols": 511}})
    with pytest.raises(DeviceError, match="histogram"):
        load_device(tmp_path / "x.yaml", {"forming": {"formed": {"kind": "histogram", "edges_us": [0, 1], "counts": [1, 2]}}})
    assert Path(load_device(tmp_path / "x.yaml").source_path).name == "x.yaml"
