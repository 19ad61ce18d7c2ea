"""Identity: a chip whose device facts differ from the experiment's device model (other than
geometry and ADC, which are refused) is named in one warning line and recorded in metrics.json's
``chip`` and report.md; an identical chip warns nothing."""

from __future__ import annotations

import json
import warnings

import pytest
from _hil import device, live_server, serve_process
from _tiny_quickstart import QUICKSTART, TINY

from neurohw.cli import main
from neurohw.experiments.report import write_report
from neurohw.experiments.tasks import task_of
from neurohw.hil.backend import chip_record, fact_differences
from neurohw.hil.errors import HilError
from neurohw.hil.remote import RemoteMacro
from neurohw.hil.reservoir import TileAllocator, form_crossbar


def test_differing_facts_are_named_in_one_warning_line():
    chip_dev = device(**{"forming.probability": 0.3, "read_noise.relative": 0.01})
    with live_server(chip_dev, tiles=1) as srv:
        with pytest.warns(UserWarning) as caught:
            rec = chip_record(srv.url, device())
    (w,) = [c for c in caught if "differs from device" in str(c.message)]
    text = str(w.message)
    assert "\n" not in text and "forming.probability 0.3 (device 0.5)" in text and "read_noise.relative 0.01 (device 0.02)" in text
    assert rec["facts_differ"] == {"forming.probability": {"chip": 0.3, "device": 0.5}, "read_noise.relative": {"chip": 0.01, "device": 0.02}}
    assert rec["rows"] == 512 and rec["name"] == "taox_rram_40nm" and rec["url"] == srv.url


def test_the_same_device_warns_nothing():
    with live_server(device(), tiles=1) as srv:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rec = chip_record(srv.url, device())
    assert rec["facts_differ"] == {}


def test_a_board_that_states_no_facts_differs_in_nothing_and_text_is_not_compared():
    assert fact_differences({}, device()) == {}
    facts = device().model_dump(mode="json") | {"description": "another text", "name": "board-7"}
    assert fact_differences(facts, device()) == {}
    facts["drift"] = {**facts["drift"], "nu_mean": 0.05}
    facts["extra"] = {"temperature_c": 25}
    assert fact_differences(facts, device()) == {"drift.nu_mean": {"chip": 0.05, "device": 0.0}, "extra.temperature_c": {"chip": 25, "device": None}}


def test_geometry_is_still_refused():
    small = device(**{"array.rows": 256, "array.cols": 256})
    with live_server(small, tiles=2) as srv, RemoteMacro(srv.url) as macro:
        with pytest.raises(HilError, match="use the device model of the chip"):
            form_crossbar(macro, device(), 8, 8, 1.0, 0, TileAllocator(macro.info()))
    assert "array.rows" not in fact_differences(small.model_dump(mode="json"), device())


def test_report_names_the_chip_and_its_differing_facts(tmp_path):
    metrics = {"name": "x", "task": "classify", "seeds": [0], "neurohw_version": "0", "test_accuracy": 0.5, "test_accuracy_std": 0.0, "chance": 0.1,
               "chip": {"url": "hil://h:1", "chip_id": "0x00000000000000ab", "name": "board", "tiles": 2, "rows": 64, "cols": 64,
                        "adc_bits": 8, "lsb_us": 4.0, "device": "taox", "facts_differ": {"read_noise.relative": {"chip": 0.01, "device": 0.02}}}}  # fmt: skip
    write_report(tmp_path / "report.md", metrics, [], "a: 1", task_of("classify").report_section(metrics))
    text = (tmp_path / "report.md").read_text()
    assert "## Chip" in text and "0x00000000000000ab" in text and "| read_noise.relative | 0.01 | 0.02 |" in text


@pytest.mark.slow
def test_a_run_on_another_chip_warns_once_and_records_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))
    with serve_process("--device", "taox_rram_40nm", "--set", "forming.probability=0.45") as (_, url):
        sets = sum((["--set", s] for s in TINY + ["reservoir.audio.noise=false", "reservoir.image.noise=false", f"backend={url}"]), [])
        with pytest.warns(UserWarning, match="forming.probability 0.45 \\(device 0.5\\)") as caught:
            assert main(["run", str(QUICKSTART), "--quiet", "--out", str(tmp_path / "out"), *sets]) == 0
    assert sum("differs from device" in str(c.message) for c in caught) == 1
    (run,) = [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
    chip = json.loads((run / "metrics.json").read_text())["chip"]
    assert chip["facts_differ"] == {"forming.probability": {"chip": 0.45, "device": 0.5}} and chip["url"] == url
    assert "forming.probability | 0.45 | 0.5" in (run / "report.md").read_text()
