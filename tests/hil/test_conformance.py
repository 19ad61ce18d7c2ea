"""The conformance suite (``neurohw hil conformance``): its own framing against the document's
example frames; every case passing against ``hil serve`` over TCP, over a pty null-modem pair and
over pyserial's socket://; the board skeleton (a stdlib-only subprocess that imports nothing of
neurohw) passing the core cases with and without a key; a planted defect failing exactly the case
it breaks; and the command's exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _hil import device, live_server, pty_null_modem, serve_process

from neurohw.cli import main
from neurohw.hil import conformance as cf
from neurohw.hil.faults import parse_faults

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hil-protocol.md"
SKELETON = ROOT / "docs" / "examples" / "board_skeleton.py"
#: generous per-reply timeout: the tests run on two loaded cores
T = 20.0


def _doc_examples() -> list[bytes]:
    text = DOC.read_text().split("## Example frames", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:\n    [0-9a-f]{2}(?: [0-9a-f]{2})*)+", text)
    return [bytes.fromhex(b.replace("\n", " ")) for b in blocks]


def test_the_suites_own_framing_writes_the_documents_example_frames():
    ex = _doc_examples()
    assert len(ex) >= 4
    rows = [[[0, 3, 8, 9]]]
    assert ex[0] == cf.frame(cf.HELLO, cf.hello_payload(1, 1, 0, 0, b"neurohw"), seq=1, session=0)
    assert ex[1] == cf.frame(cf.INFO, seq=2, session=0x12345678)
    assert ex[2] == cf.frame(cf.MVM, cf.mvm_payload((0, 0, 10, 0, 2), rows, [5]), seq=3, session=0x12345678, flags=cf.F_EXACT)
    # and the published check values of both CRCs
    assert cf.crc16(b"123456789") == 0x29B1


def _outcomes(results) -> dict:
    return {r.name: r.outcome for r in results}


def _failures(results) -> list:
    return [(r.name, r.seen) for r in results if r.outcome == "FAIL"]


@pytest.fixture(scope="module")
def server():
    # slowop: each 64-row chunk of FORM takes >= 50 ms, so BUSY and ABORT are observable
    with live_server(device(), tiles=2, frame_timeout_s=5.0, faults=parse_faults("slowop=50")) as s:
        yield s


def test_every_case_passes_against_the_emulator_over_tcp(server):
    results = cf.run_conformance(server.url, destructive=True, timeout=T)
    assert not _failures(results)
    got = _outcomes(results)
    assert got["long/abort-or-done"] == "pass" and got["replay/seq-reused"] == "pass"
    assert "READ during it: BUSY; ABORTED, nothing applied" in {r.name: r.seen for r in results}["long/abort-or-done"]
    assert all(v == "pass" for k, v in got.items() if not k.startswith("auth/") or k == "auth/unkeyed-server")
    assert {got[k] for k in got if k.startswith("auth/") and k != "auth/unkeyed-server"} == {"n/a"}


def test_over_pyserial_socket_url(server):
    results = cf.run_conformance(f"hil+serial://socket://127.0.0.1:{server.port}?baud=921600", timeout=T)
    assert not _failures(results)
    got = _outcomes(results)
    assert got["sessions/resume"] == "n/a" and got["replay/seq-reused"] == "pass"


def test_over_a_pty_null_modem_pair():
    with pty_null_modem() as (board_tty, host_tty), live_server(device(), tiles=1) as srv:
        srv.serve_serial(board_tty, 115200)
        results = cf.run_conformance(f"hil+serial://{host_tty}?baud=115200", timeout=T)
    assert not _failures(results)
    assert _outcomes(results)["sessions/hello-after-bye"] == "pass"


def test_a_keyed_emulator_passes_the_auth_cases_and_refuses_without_the_key(monkeypatch):
    monkeypatch.delenv("NEUROHW_HIL_KEY_FILE", raising=False)
    with live_server(device(), tiles=1, key=b"bench 7 key") as srv:
        monkeypatch.setenv("NEUROHW_HIL_KEY", "bench 7 key")
        results = cf.run_conformance(srv.url, timeout=T)
        monkeypatch.setenv("NEUROHW_HIL_KEY", "another key")
        with pytest.raises(cf.HilError, match="BAD_AUTH"):
            cf.run_conformance(srv.url, only=["info/"], timeout=T)
        monkeypatch.delenv("NEUROHW_HIL_KEY")
        with pytest.raises(cf.UserError, match="requires a key"):
            cf.run_conformance(srv.url, only=["info/"], timeout=T)
    assert not _failures(results)
    got = _outcomes(results)
    assert {got[k] for k in got if k.startswith("auth/") and k != "auth/unkeyed-server"} == {"pass"}
    assert got["auth/unkeyed-server"] == "n/a"


def test_a_planted_stale_replay_fails_exactly_the_seq_reused_case():
    with live_server(device(), tiles=1, faults=parse_faults("stale_replay=1")) as srv:
        results = cf.run_conformance(srv.url, timeout=T)
    assert [name for name, _ in _failures(results)] == ["replay/seq-reused"]
    assert "SEQ_REUSED" in dict(_failures(results))["replay/seq-reused"]


def test_the_command_prints_a_table_or_json_and_exits_1_on_a_failing_chip(capsys):
    with live_server(device(), tiles=1, faults=parse_faults("stale_replay=1")) as srv:
        assert main(["hil", "conformance", srv.url, "--case", "replay/", "--timeout", str(T)]) == 1
        table = capsys.readouterr().out
        assert re.search(r"replay/seq-reused\s+Sequence numbers and replay\s+FAIL", table)
        assert main(["hil", "conformance", srv.url, "--json", "--case", "header/", "--timeout", str(T)]) == 0
        out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True and {c["case"] for c in out["cases"]} >= {"header/seq-zero", "header/reply-flag"}


@pytest.mark.parametrize("argv", [["hil", "conformance", "http://x"], ["hil", "conformance", "hil://127.0.0.1:9", "--case", "nope/"]])
def test_bad_url_or_case_is_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def test_hil_serve_process_passes_destructive_cases():
    with serve_process("--device", "taox_rram_40nm", "--tiles", "1", "--faults", "slowop=5") as (_, url):
        proc = subprocess.run([sys.executable, "-m", "neurohw", "hil", "conformance", url, "--destructive", "--json", "--timeout", str(T)],
                              capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout)["passed"] is True


# ---------------------------------------------------------------- the board skeleton


def _skeleton(env: dict, script: Path = SKELETON):
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r"hil://127\.0\.0\.1:\d+", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"skeleton did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, m.group(0)


def test_the_skeleton_imports_nothing_of_neurohw():
    text = SKELETON.read_text()
    assert not re.search(r"^\s*(from|import)\s+neurohw", text, re.M)
    assert 200 <= text.count("\n") <= 400


@pytest.mark.parametrize("key", [None, "lab bench key"])
def test_the_board_skeleton_passes_the_core_cases(key, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROHW_HIL_KEY")}
    env["PYTHONPATH"] = ""  # nothing of ours on its path
    if key:
        env["NEUROHW_HIL_KEY"] = key
        monkeypatch.setenv("NEUROHW_HIL_KEY", key)
    else:
        monkeypatch.delenv("NEUROHW_HIL_KEY", raising=False)
    monkeypatch.delenv("NEUROHW_HIL_KEY_FILE", raising=False)
    proc, url = _skeleton(env)
    try:
        results = cf.run_conformance(url, core_only=True, timeout=T)
        if key:  # and a client without the key gets no session: one error line, exit 2
            monkeypatch.delenv("NEUROHW_HIL_KEY")
            with pytest.raises(cf.UserError, match="requires a key"):
                cf.run_conformance(url, core_only=True, timeout=T)
    finally:
        proc.kill()
        proc.wait(10)
    assert not _failures(results)
    got = _outcomes(results)
    core = [r.name for r in results if r.core]
    assert all(got[n] in ("pass", "n/a") for n in core)
    assert sum(got[n] == "pass" for n in core) >= 38
    if key:
        assert {got[n] for n in ("auth/no-key-no-session", "auth/wrong-key", "auth/right-key", "auth/short-mac")} == {"pass"}
    else:
        assert got["auth/unkeyed-server"] == "pass"
    assert all(v == "skipped" for r in results if not r.core for v in [got[r.name]])


def test_a_skeleton_with_a_broken_replay_window_fails_the_replay_cases(tmp_path):
    """The suite is not fooled by a board that forgets executed seqs: a copy of the skeleton
    whose window never answers from its kept replies fails the replay cases."""
    broken = tmp_path / "broken_board.py"
    broken.write_text(SKELETON.read_text().replace("        if seq not in self.kept:\n            return None", "        if True:\n            return None"))
    assert broken.read_text() != SKELETON.read_text()
    proc, url = _skeleton({k: v for k, v in os.environ.items() if not k.startswith("NEUROHW_HIL_KEY")} | {"PYTHONPATH": ""}, broken)
    try:
        results = cf.run_conformance(url, core_only=True, only=["replay/"], timeout=T)
    finally:
        proc.kill()
        proc.wait(10)
    failed = {n for n, _ in _failures(results)}
    assert "replay/seq-reused" in failed and "replay/identical" not in failed


# ---------------------------------------------------------------- the documents


def test_the_conformance_doc_lists_every_case_with_its_section():
    text = (ROOT / "docs" / "hil-conformance.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+/[a-z-]+)` \|([^|]+)\|([^|]*)\|", text, re.M)
    assert [(n, s.strip()) for n, s, _ in rows] == [(c.name, c.section) for c in cf.CASES]
    for (name, _, kind), c in zip(rows, cf.CASES):
        assert ("core" in kind) == c.core and ("--destructive" in kind) == c.destructive and ("TCP only" in kind) == c.tcp_only, name


def test_every_cited_section_is_a_heading_of_the_protocol_document():
    headings = {h.strip() for h in re.findall(r"^#{2,3} (.+)$", DOC.read_text(), re.M)}
    assert {c.section for c in cf.CASES} <= headings, {c.section for c in cf.CASES} - headings


def test_verbose_logs_every_frame(capsys):
    with live_server(device(), tiles=1) as srv:
        assert main(["hil", "conformance", srv.url, "--case", "info/layout", "--verbose", "--timeout", str(T)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"neurohw\.hil\.frames: -> HELLO seq 1 session 0", err) and re.search(r"<- INFO seq \d+ session \d+ flags 0x1 OK", err)


def test_a_full_server_is_waited_out_as_the_driver_does():
    """A server holding its one session answers HELLO with BUSY; the suite waits until it frees."""
    with live_server(device(), tiles=1, max_sessions=1) as srv:
        holder = cf.Suite(cf.parse_address(srv.url), timeout=T)
        held = holder.open()
        threading.Timer(1.5, lambda: holder.bye(held)).start()
        results = cf.run_conformance(srv.url + "?busy_wait=60", only=["info/"], timeout=T)
    assert [r.outcome for r in results] == ["pass", "pass"]
