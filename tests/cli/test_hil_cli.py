"""``neurohw hil serve`` as a process (address line, faults, stops by itself), its bad flags as
one line and exit 2, and ``neurohw bench hil --quick --json``'s report."""

from __future__ import annotations

import json
import socket
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _hil import serve_process

from neurohw.cli import main
from neurohw.devices.model import load_device
from neurohw.hil.macro import LocalMacro
from neurohw.hil.messages import Block
from neurohw.hil.remote import RemoteMacro


def test_serve_process_with_overrides_and_faults():
    args = ("--device", "taox_rram_40nm", "--tiles", "2", "--set", "read_noise.relative=0", "--faults", "drop=0.1,seed=2", "--latency-us", "100")
    with serve_process(*args, exit_after=120.0) as (proc, url):
        # drop=0.1 loses frames on purpose: each loss costs one timeout; 3 s per attempt leaves
        # room for a FORM on two loaded cores (its progress frames keep it alive)
        with RemoteMacro(url + "?timeout=3&retries=30", chip_seed=1) as rm:
            info = rm.info()
            assert info.tiles == 2 and info.facts["read_noise"]["relative"] == 0.0
            b = Block(1, 0, 40, 0, 20)
            rm.form(b, 3)
            x = (np.random.default_rng(0).random((8, 1, 40)) < 0.3).astype(np.uint8)
            got = rm.mvm(b, x)
        local = LocalMacro(load_device("taox_rram_40nm", {"read_noise.relative": 0}), tiles=2, chip_seed=1)
        local.form(b, 3)
        assert got.shape == (8, 1, 20) and np.array_equal(got, local.mvm(b, x, exact=True))


def test_serve_stops_by_itself():
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurohw", "hil", "serve", "--device", "ideal", "--port", "0", "--exit-after", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving ideal" in proc.stdout.readline()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# nine nested lists of nine aliases: 9**8 = 43 million values once the aliases are followed
ALIAS_BOMB = "{a0: &a0 [x,x,x,x,x,x,x,x,x], " + ", ".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)) + "}"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["hil", "serve", "--device", "no_such_device"], "unknown device model"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--faults", "drop=2"], "not a probability"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--faults", "jitter=0.1"], "unknown fault"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--tiles", "0"], "--tiles"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--set", "read_noise.relativ=0"], "unknown key"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--set", "read_noise.relative=[0"], "not valid YAML"),
        # the one configuration layer's limits: an alias bomb and a NUL byte are refused, not expanded or read
        (["hil", "serve", "--device", "taox_rram_40nm", "--set", "read_noise.relative=" + ALIAS_BOMB], "not valid YAML"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--set", "read_noise.relative=0\x00"], "not valid YAML"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--set", "read_noise"], "key.path=value"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--max-payload", "10"], "--max-payload"),
        (["hil", "serve", "--device", "taox_rram_40nm", "--serial", "/dev/does-not-exist", "--port", "0", "--exit-after", "1"], "--serial"),
    ],
)
def test_bad_serve_flags_are_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_busy_port_is_one_line(capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        assert main(["hil", "serve", "--device", "taox_rram_40nm", "--port", str(s.getsockname()[1])]) == 2
        assert "cannot listen" in capsys.readouterr().err
    finally:
        s.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_exits_cleanly_on_interrupt(signum):
    """Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop the server with exit 0 well before
    ``--exit-after``. The child (``python -m neurohw`` by runpy) handles SIGINT as Python does when
    started from a terminal: a shell without job control (CI, ``cmd &``) starts children with
    SIGINT ignored, and a process started that way keeps ignoring it, as it should."""
    as_from_a_terminal = "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); runpy.run_module('neurohw', run_name='__main__')"
    proc = subprocess.Popen(
        [sys.executable, "-c", as_from_a_terminal, "hil", "serve", "--device", "ideal", "--port", "0", "--exit-after", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving ideal" in proc.stdout.readline()
        time.sleep(0.3)
        proc.send_signal(signum)
        assert proc.wait(300) == 0  # generous: a loaded machine may take long to stop the threads; far below --exit-after
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bench_hil_quick_json(capsys):
    assert main(["bench", "hil", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"workload", "results"} and report["workload"]["quick"] is True
    names = {(r["name"], r["batch"]) for r in report["results"]}
    assert names == {(n, b) for n in ("local", "tcp", "tcp-pipelined") for b in (1, 64)}
    for r in report["results"]:
        # both are rounded to 0.1: on a loaded machine (a few frames/s) that is more than 0.1 %
        assert r["frames_per_s"] > 0 and r["rows_per_s"] == pytest.approx(r["frames_per_s"] * r["batch"], abs=0.05 * r["batch"] + 0.05)
        assert r["same_codes_as_local"] is True
        if r["name"] == "local":
            assert r["ratio_to_local"] == 1.0


def test_info_verbose_logs_every_frame(capsys):
    from _hil import live_server

    with live_server() as server:
        rc = main(["hil", "info", f"hil://127.0.0.1:{server.port}", "--verbose"])
    assert rc in (0, None)
    err = capsys.readouterr().err
    sent = [ln for ln in err.splitlines() if "-> " in ln]
    got = [ln for ln in err.splitlines() if "<- " in ln]
    assert any("HELLO seq 1" in ln for ln in sent) and any("INFO" in ln for ln in sent)
    assert any("HELLO" in ln and "status ok" in ln for ln in got) and any("INFO" in ln for ln in got)
