"""``neurohw devices list`` and ``neurohw devices show``."""

from __future__ import annotations

import pytest

from neurohw.cli import main


def test_list(capsys):
    assert main(["devices", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("taox_rram_40nm", "ideal", "pcm_like"):
        assert name in out
    assert "0.0625 uS" in out and "14-bit" in out


def test_show_writes_png_and_prints_parameters(tmp_path, capsys):
    out = tmp_path / "taox.png"
    assert main(["devices", "show", "taox_rram_40nm", "--out", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "relative: 0.02" in text and "mean_us: 14.25" in text
    line = next(s for s in text.splitlines() if s.startswith("# one 512x512 array"))
    formed = float(line.split("formed ")[1].split(",")[0])
    assert abs(formed - 0.5) < 0.01
    assert not list(tmp_path.glob(".taox.png.*"))  # written atomically, no leftovers


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["devices", "show", "taox_rram_4nm", "--out", "x.png"], "did you mean 'taox_rram_40nm'"),
        (["devices", "show", "ideal", "--out", "x.jpg"], "give a file name ending in .png"),
    ],
)
def test_bad_input_exit_code_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_bad_yaml_value_exit_code_2(tmp_path, capsys):
    import yaml

    from neurohw.devices.model import PACKAGED_MODELS

    raw = yaml.safe_load((PACKAGED_MODELS / "taox_rram_40nm.yaml").read_text())
    raw["read_noise"]["relative"] = -0.02
    bad = tmp_path / "neg.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["devices", "show", str(bad), "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "neg.yaml" in err and "read_noise.relative" in err and "-0.02" in err and "[0.0, inf)" in err
