"""Whole experiments over the link: `neurohw run ... --set backend=hil://...` against
`neurohw hil serve`, as a user runs them. With read noise off, the metrics equal the local run's
(TCP and pyserial's socket URL); with noise on, the chip's own noise gives the local statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _hil import pty_null_modem, serve_process
from _tiny_quickstart import NOISE_OFF, QUICKSTART, TINY
from neurohw.cli import main


def _run(out: Path, sets: list[str], config: Path = QUICKSTART) -> dict:
    assert main(["run", str(config), "--quiet", "--out", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return _metrics(run)


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    # "chip": the chip a run over a link ran on (tests/hil/test_hil_identity.py); the rest must be equal
    return {k: v for k, v in m.items() if k not in ("timing", "per_seed", "chip")} | {"per_seed": [
        {k: v for k, v in p.items() if not k.endswith("_s")} for p in m["per_seed"]]}


@pytest.mark.slow
def test_quickstart_over_tcp_and_serial_equals_the_local_run_with_noise_off(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))  # no features shared with the local run
    local = _metrics(tiny_run)  # the local noise-off run, run once per session (tests/conftest.py)
    with serve_process("--device", "taox_rram_40nm") as (_, url):
        over_tcp = _run(tmp_path / "tcp", TINY + NOISE_OFF + [f"backend={url}"])
        serial = "hil+serial://socket://" + url.removeprefix("hil://")
        over_serial = _run(tmp_path / "serial", TINY + NOISE_OFF + [f"backend={serial}"])
    assert over_tcp == local
    assert over_serial == local
    assert local["energy"]["encoder_j_per_sample"] > 0


@pytest.mark.slow
def test_two_quickstart_runs_in_a_row_over_one_pty_null_modem(tiny_run, tmp_path, monkeypatch):
    """A real serial line (two ptys back to back), one server, two runs one after the other:
    each run opens and ends several sessions on the one link (HELLO after BYE), and both give
    the local noise-off metrics."""
    local = _metrics(tiny_run)  # the local noise-off run, run once per session (tests/conftest.py)
    with pty_null_modem() as (server_end, client_end):
        with serve_process("--device", "taox_rram_40nm", "--serial", server_end) as (_, url):
            for i in range(2):
                monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / f"cache{i}"))  # the chip does every read
                got = _run(tmp_path / f"pty{i}", TINY + NOISE_OFF + [f"backend=hil+serial://{client_end}?baud=115200"])
                assert got == local, i


@pytest.mark.slow
def test_quickstart_with_a_key_equals_the_run_without(tiny_run, tmp_path, monkeypatch, capsys):
    """A server that requires a key, the driver holding it: the same metrics as the local
    noise-off run (hence as the run over hil:// without authentication, tested above)."""
    local = _metrics(tiny_run)  # the local noise-off run, run once per session (tests/conftest.py)
    key_file = tmp_path / "hil.key"
    key_file.write_text("a shared lab key\n")
    with serve_process("--device", "taox_rram_40nm", "--key-file", str(key_file)) as (_, url):
        monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache-keyed"))
        monkeypatch.setenv("NEUROHW_HIL_KEY_FILE", str(key_file))
        keyed = _run(tmp_path / "keyed", TINY + NOISE_OFF + [f"backend={url}"])
        monkeypatch.delenv("NEUROHW_HIL_KEY_FILE")
        capsys.readouterr()
        assert main(["run", str(QUICKSTART), "--quiet", "--out", str(tmp_path / "nokey"),
                     *sum((["--set", s] for s in TINY + NOISE_OFF + [f"backend={url}"]), [])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "the server requires a key" in err[0], err
    assert keyed == local


@pytest.mark.slow
def test_noisy_reads_on_the_chip_give_the_local_statistics(tmp_path, monkeypatch):
    """Classification on digits-dvs, 4 seeds: the chip draws its own read noise, so the numbers
    differ from the local run's, but the mean accuracy stays within the local seed-to-seed std."""
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "digits.yaml"
    config.write_text(
        "name: digits\ntask: classify\nseeds: [0, 1, 2, 3]\nplots: false\n"
        "data:\n  d:\n    dataset: digits-dvs\n    options: {samples_per_class: 40}\n"
        "    binning: {n_bins: 20, crop: [28, 28], downsample: 2}\n"
        "reservoir:\n  d: {n_neurons: 64, target_rate: 0.06, features: [rate, counts], calibration_samples: 32}\n"
        "head: {kind: ridge, features: [rate, counts], cv_folds: 4}\n"
    )
    local = _run(tmp_path / "local", [], config)
    with serve_process("--device", "taox_rram_40nm") as (_, url):
        chip = _run(tmp_path / "chip", [f"backend={url}"], config)
    acc_local = [p["test_accuracy"] for p in local["per_seed"]]
    acc_chip = [p["test_accuracy"] for p in chip["per_seed"]]
    assert acc_local != acc_chip  # the chip's noise is its own
    assert abs(np.mean(acc_chip) - np.mean(acc_local)) <= max(np.std(acc_local, ddof=1), 0.02), (acc_local, acc_chip)


def test_a_bad_link_url_is_one_line(capsys):
    for url, words in (("hil://127.0.0.1", "no port"), ("hil://127.0.0.1:99999", "1..65535"), ("hlo://x:1", "unknown scheme"),
                       ("hil://127.0.0.1:9?timout=1", "did you mean 'timeout'")):
        assert main(["validate", str(QUICKSTART), "--set", f"backend={url}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


def test_a_server_that_is_not_there_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(tmp_path / "runs"),
                 *sum((["--set", s] for s in TINY + [f"backend=hil://127.0.0.1:{port}?timeout=0.5&retries=2"]), [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0], err
