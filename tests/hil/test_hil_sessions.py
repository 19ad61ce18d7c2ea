"""The protocol's decisions on sequence numbers, sessions, header checks, commands, limits and
authentication (docs/hil-protocol.md), one test each, over a raw socket against a live server;
the driver's side of BUSY and of the key. Expected MACs are computed here with the standard
library (hmac, hashlib), not with neurohw's auth module."""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _hil import RawClient, device, live_server

from neurohw.cli import main
from neurohw.hil import messages as msg
from neurohw.hil.errors import HilError
from neurohw.hil.faults import parse_faults
from neurohw.hil.protocol import Flag, Opcode, Status, encode_frame
from neurohw.hil.remote import RemoteMacro

BLOCK = msg.Block(0, 0, 16, 0, 8)
KEY = b"lab key 7"


def _mvm(seed: int, batch: int = 2, planes: int = 1) -> bytes:
    x = (np.random.default_rng(seed).random((batch, planes, BLOCK.nrows)) < 0.5).astype(np.uint8)
    return msg.MvmRequest(BLOCK, x, np.arange(batch)).pack()


def _stats(c: RawClient) -> dict:
    r = c.reply(c.send(Opcode.STATS))
    assert r.status == Status.OK
    return msg.unpack_json(r.payload, "STATS")


def _formed(port: int) -> RawClient:
    c = RawClient(port)
    c.hello()
    assert c.reply(c.send(Opcode.FORM, msg.FormRequest(BLOCK, 1).pack())).status == Status.OK
    return c


def _hmac(key: bytes, challenge: bytes, session: int) -> bytes:
    return hmac.new(key, b"neurohw-hil-auth-v1" + challenge + struct.pack("<I", session), hashlib.sha256).digest()


@pytest.fixture(scope="module")
def server():
    with live_server(device(), tiles=2) as s:
        yield s


# ----------------------------------------------------------------------------- replay


def test_a_seq_reused_by_another_request_never_gets_the_first_reply(server):
    c = _formed(server.port)
    first = c.reply(c.send(Opcode.MVM, _mvm(1), seq=20))
    assert first.status == Status.OK
    other = c.reply(c.send(Opcode.MVM, _mvm(2), seq=20))  # input B with input A's seq
    assert other.status == Status.SEQ_REUSED and other.payload != first.payload
    again = c.reply(c.send(Opcode.MVM, _mvm(1), seq=20, flags=Flag.RETRY))  # a true retransmission
    assert again.status == Status.OK and again.payload == first.payload
    # EXACT is part of the request: the same payload with another flag is another request
    assert c.reply(c.send(Opcode.MVM, _mvm(1), seq=20, flags=Flag.EXACT)).status == Status.SEQ_REUSED
    s = _stats(c)
    assert s["executed"]["MVM"] == 1 and s["replayed"] == 1 and s["seq_reused"] == 2
    c.close()


def test_window_out_of_order_and_behind_it(server):
    c = _formed(server.port)
    t = msg.pack_f64(0.0)
    for seq in range(10, 80):  # executed: 10..79; last_seq 79, window 16..79
        assert c.reply(c.send(Opcode.TIME, t, seq=seq)).status == Status.OK
    assert c.reply(c.send(Opcode.TIME, t, seq=12)).status == Status.STALE  # behind the window
    assert c.reply(c.send(Opcode.TIME, msg.pack_f64(1.0), seq=12)).status == Status.STALE
    assert c.reply(c.send(Opcode.TIME, t, seq=90)).status == Status.OK  # ahead: window 27..90
    late = c.reply(c.send(Opcode.TIME, msg.pack_f64(2.0), seq=85))  # inside, not executed: executed
    assert late.status == Status.OK and msg.unpack_f64(late.payload, "t") == 2.0
    assert c.reply(c.send(Opcode.TIME, msg.pack_f64(3.0), seq=85)).status == Status.SEQ_REUSED
    s = _stats(c)
    assert s["executed"]["TIME"] == 72 and s["clock_s"] == 2.0 and s["stale"] == 2 and s["last_seq"] == 90
    # read-only requests are answered afresh whatever their seq and do not move the window
    assert c.reply(c.send(Opcode.INFO, seq=5)).status == Status.OK
    assert c.reply(c.send(Opcode.INFO, seq=5)).status == Status.OK
    assert _stats(c)["last_seq"] == 90
    c.close()


def test_the_stale_replay_fault_plants_the_defect():
    with live_server(device(), tiles=1, faults=parse_faults("stale_replay=1")) as srv:
        c = _formed(srv.port)
        first = c.reply(c.send(Opcode.MVM, _mvm(1), seq=20))
        wrong = c.reply(c.send(Opcode.MVM, _mvm(2), seq=20))
        assert wrong.status == Status.OK and wrong.payload == first.payload  # what the protocol forbids
        c.close()


def test_seq_zero_is_refused_and_not_executed(server):
    c = RawClient(server.port)
    assert c.reply(c.send(Opcode.HELLO, msg.Hello(1, 1).pack(), seq=0, session=0)).status == Status.BAD_REQUEST
    c.hello()
    assert c.reply(c.send(Opcode.TIME, msg.pack_f64(4.0), seq=0)).status == Status.BAD_REQUEST
    assert c.reply(c.send(Opcode.INFO, seq=0)).status == Status.BAD_REQUEST
    assert _stats(c)["clock_s"] == 0.0
    c.close()


# ----------------------------------------------------------------------------- header checks


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"version": 2}, Status.BAD_VERSION, b"version 2"),
        ({"flags": Flag.REPLY}, Status.BAD_REQUEST, b"REPLY flag"),
        ({"status": 3}, Status.BAD_REQUEST, b"status byte 3"),
        ({"reserved": 1}, Status.BAD_REQUEST, b"reserved byte 1"),
        ({"flags": Flag.PROGRESS}, Status.BAD_REQUEST, b"PROGRESS flag"),
        ({"flags": 0x80}, Status.OK, b""),  # unknown flag bits are ignored
    ],
)
def test_header_checks(server, kwargs, status, words):
    c = RawClient(server.port)
    c.hello()
    seq = c.seq + 1
    c.send_raw(encode_frame(Opcode.INFO, b"", seq=seq, session=c.session, **kwargs))
    r = c.reply(seq)
    assert r.status == status and words in r.payload
    if status == Status.BAD_VERSION:
        assert msg.unpack_version_error(r.payload)[:2] == (1, 1)
    c.close()


def test_hello_with_another_version_byte_is_refused(server):
    c = RawClient(server.port)
    r = c.reply(c.send(Opcode.HELLO, msg.Hello(1, 1).pack(), session=0, version=2))
    assert r.status == Status.BAD_VERSION
    c.sock.close()


@pytest.mark.parametrize("opcode", [Opcode.INFO, Opcode.RESET, Opcode.STATS, Opcode.BYE])
def test_commands_without_payload_refuse_one(server, opcode):
    c = RawClient(server.port)
    c.hello()
    assert c.reply(c.send(opcode, b"\x00")).status == Status.BAD_LENGTH
    assert c.reply(c.send(Opcode.INFO)).status == Status.OK  # (BYE with a payload did not end the session)
    c.close()


# ----------------------------------------------------------------------------- lifecycle


def test_hello_after_bye_on_one_link_opens_a_new_session(server):
    c = RawClient(server.port)
    first = c.hello()
    assert c.reply(c.send(Opcode.BYE)).status == Status.OK
    c.seq = 0  # a new client on the same link numbers from 1 again
    second = c.hello()
    assert second.session != first.session and not second.resumed and second.last_seq == 0
    assert c.reply(c.send(Opcode.INFO)).status == Status.OK
    d = RawClient(server.port)  # the ended session's id is dead for good
    assert d.reply(d.send(Opcode.HELLO, msg.Hello(1, 1, first.session).pack(), session=0)).status == Status.BAD_SESSION
    c.close()
    d.sock.close()


def test_a_second_hello_on_a_connection_is_refused_the_session_untouched(server):
    c = RawClient(server.port)
    payload = msg.Hello(1, 1, 0, 0, "test").pack()
    seq = c.send(Opcode.HELLO, payload, session=0)
    r1 = c.reply(seq)
    c.session = msg.HelloReply.unpack(r1.payload).session
    c.send(Opcode.HELLO, payload, seq=seq, session=0)  # the same HELLO again: the same reply
    assert c.reply(seq).payload == r1.payload
    r = c.reply(c.send(Opcode.HELLO, payload, session=0))
    assert r.status == Status.BAD_REQUEST and f"holds session {c.session}".encode() in r.payload
    assert c.reply(c.send(Opcode.INFO)).status == Status.OK
    c.close()


def test_silent_connections_and_orphaned_sessions_keep_nobody_out_for_long():
    """16 connections that never send and 9 sessions whose clients vanished: a new client gets
    in once the hello timeout and the session grace have passed (here 1 s and 2 s; the
    defaults are 5 s and 10 s, well under a minute), the driver waiting out BUSY meanwhile."""
    with live_server(device(), tiles=1, max_sessions=8, max_connections=16, hello_timeout_s=1.0, session_grace_s=2.0) as srv:
        silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(16)]
        orphans = 0
        for _ in range(9):
            c = RawClient(srv.port)
            r = c.reply(c.send(Opcode.HELLO, msg.Hello(1, 1).pack(), session=0))
            orphans += r.status == Status.OK
            c.sock.close()  # no BYE: the session is left to its grace
        assert orphans == 8  # the ninth found the server full
        t0 = time.monotonic()
        with RemoteMacro(srv.url + "?busy_wait=60") as rm:
            waited = time.monotonic() - t0
            assert rm.info().tiles == 1
        assert waited < 60.0
        stats = srv.stats()
        assert stats["hello_timeouts"] >= 16 and stats["sessions_expired"] >= 1
        for s in silent:
            s.close()


def test_the_driver_waits_out_a_full_server_then_gives_up_in_one_line():
    with live_server(device(), tiles=1, max_sessions=1) as srv:
        holder = RawClient(srv.port)
        holder.hello()
        with pytest.raises(HilError) as e:
            RemoteMacro(srv.url + "?busy_wait=0.5")
        assert "server is full" in str(e.value) and "\n" not in str(e.value)
        threading.Timer(1.0, holder.close).start()  # BYE after a second: room for the driver
        with RemoteMacro(srv.url + "?busy_wait=60") as rm:
            assert rm.counters["busy"] >= 1 and rm.info().tiles == 1


# ----------------------------------------------------------------------------- commands


def test_mvm_refusals(server):
    c = _formed(server.port)
    empty = BLOCK.pack() + msg.MVM.pack(0, 1, 0)
    assert c.reply(c.send(Opcode.MVM, empty)).status == Status.OUT_OF_RANGE
    no_planes = BLOCK.pack() + msg.MVM.pack(1, 0, 0) + struct.pack("<Q", 0)
    assert c.reply(c.send(Opcode.MVM, no_planes)).status == Status.OUT_OF_RANGE
    b10 = msg.Block(0, 0, 10, 0, 8)  # 10 rows: 2 bytes per bit row, 6 padding bits
    row = bytes([0b00000001, 0b00000100])  # bit 10 (padding) set
    r = c.reply(c.send(Opcode.MVM, b10.pack() + msg.MVM.pack(1, 1, 0) + struct.pack("<Q", 0) + row))
    assert r.status == Status.BAD_REQUEST and b"padding" in r.payload
    ok = bytes([0b00000001, 0b00000010])
    assert c.reply(c.send(Opcode.MVM, b10.pack() + msg.MVM.pack(1, 1, 0) + struct.pack("<Q", 0) + ok)).status == Status.OK
    s = _stats(c)
    assert s["executed"]["MVM"] == 1 and s["executed"]["MVM_VECTORS"] == 1
    c.close()


def test_time_advances_the_clock(server):
    c = RawClient(server.port)
    c.hello()
    assert msg.unpack_f64(c.reply(c.send(Opcode.TIME, msg.pack_f64(5.0))).payload, "t") == 5.0
    assert msg.unpack_f64(c.reply(c.send(Opcode.TIME, msg.pack_f64(3.0))).payload, "t") == 8.0
    for bad in (1e13, -1.0, float("nan")):
        assert c.reply(c.send(Opcode.TIME, msg.pack_f64(bad))).status == Status.OUT_OF_RANGE
    assert _stats(c)["clock_s"] == 8.0
    c.close()


def test_form_twice_is_refused_and_program_skips_unformed_cells(server):
    c = _formed(server.port)
    g = c.reply(c.send(Opcode.READ, BLOCK.pack())).payload
    r = c.reply(c.send(Opcode.FORM, msg.FormRequest(BLOCK, 2).pack()))
    assert r.status == Status.BAD_REQUEST and b"RESET the chip first" in r.payload
    assert c.reply(c.send(Opcode.READ, BLOCK.pack())).payload == g
    pristine = msg.Block(1, 0, 4, 0, 4)  # tile 1 was never formed
    r = c.reply(c.send(Opcode.PROGRAM, msg.ProgramRequest(pristine, 1, np.full((4, 8), 10.0)).pack()))
    rep = msg.ProgramReply.unpack(r.payload, pristine)
    assert r.status == Status.OK and rep.programmed == 0 and rep.total_pulses == 0 and not rep.converged.any()
    assert np.all(msg.unpack_read_reply(c.reply(c.send(Opcode.READ, pristine.pack())).payload, pristine) == 0.0)
    c.close()


# ----------------------------------------------------------------------------- authentication


def test_a_keyed_server_opens_a_session_only_after_the_right_hmac():
    with live_server(device(), tiles=1, key=KEY) as srv:
        c = RawClient(srv.port)
        r = c.reply(c.send(Opcode.HELLO, msg.Hello(1, 1).pack(), session=0))
        assert r.status == Status.OK and len(r.payload) == 52
        rep = msg.HelloReply.unpack(r.payload)
        assert rep.capabilities & 0x10 and len(rep.challenge) == 32
        c.session = rep.session
        assert c.reply(c.send(Opcode.INFO)).status == Status.BAD_AUTH
        assert c.reply(c.send(Opcode.AUTH, _hmac(KEY, rep.challenge, rep.session))).status == Status.OK
        assert c.reply(c.send(Opcode.INFO)).status == Status.OK
        # a resume gets a new challenge and needs a new AUTH
        sid = c.session
        c.drop()
        c2 = RawClient(srv.port)
        rep2 = c2.hello(resume=sid)
        assert rep2.resumed and rep2.challenge != rep.challenge
        assert c2.reply(c2.send(Opcode.INFO)).status == Status.BAD_AUTH
        assert c2.reply(c2.send(Opcode.AUTH, _hmac(KEY, rep2.challenge, sid))).status == Status.OK
        assert c2.reply(c2.send(Opcode.INFO)).status == Status.OK
        c2.close()
        # a wrong MAC: BAD_AUTH, the session discarded, the connection closed
        d = RawClient(srv.port)
        rep3 = d.hello()
        assert d.reply(d.send(Opcode.AUTH, _hmac(b"guess", rep3.challenge, rep3.session))).status == Status.BAD_AUTH
        assert d.closed_by_peer(30.0)
        e = RawClient(srv.port)
        assert e.reply(e.send(Opcode.HELLO, msg.Hello(1, 1, rep3.session).pack(), session=0)).status == Status.BAD_SESSION
        e.sock.close()


def test_auth_on_a_server_without_a_key_is_a_bad_request(server):
    c = RawClient(server.port)
    rep = c.hello()
    assert not rep.capabilities & 0x10 and rep.challenge == b""
    assert c.reply(c.send(Opcode.AUTH, bytes(32))).status == Status.BAD_REQUEST
    c.close()


def test_the_driver_takes_the_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROHW_HIL_KEY", raising=False)
    monkeypatch.delenv("NEUROHW_HIL_KEY_FILE", raising=False)
    with live_server(device(), tiles=1, key=KEY) as srv:
        with pytest.raises(HilError, match="the server requires a key: set NEUROHW_HIL_KEY or NEUROHW_HIL_KEY_FILE"):
            RemoteMacro(srv.url)
        monkeypatch.setenv("NEUROHW_HIL_KEY", "not the key")
        with pytest.raises(HilError, match="refused the key") as e:
            RemoteMacro(srv.url)
        assert "\n" not in str(e.value)
        monkeypatch.setenv("NEUROHW_HIL_KEY", KEY.decode())
        with RemoteMacro(srv.url) as rm:
            assert rm.info().tiles == 1
        monkeypatch.delenv("NEUROHW_HIL_KEY")
        path = tmp_path / "key"
        path.write_bytes(KEY + b"\r\n")  # one trailing newline is not part of the key
        monkeypatch.setenv("NEUROHW_HIL_KEY_FILE", str(path))
        with RemoteMacro(srv.url) as rm:
            rm.drop_link()  # a resume authenticates again
            assert rm.info().tiles == 1 and rm.counters["reconnects"] == 1
        stats = srv.stats()
        assert stats["auth_ok"] == 3 and stats["auth_failed"] == 1
    with live_server(device(), tiles=1) as srv:  # a key the server does not ask for is fine
        with RemoteMacro(srv.url) as rm:
            assert rm.info().tiles == 1


def test_serve_refuses_a_non_loopback_bind_without_a_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NEUROHW_HIL_KEY", raising=False)
    # refused before binding: no socket is opened on 0.0.0.0
    assert main(["hil", "serve", "--device", "ideal", "--host", "0.0.0.0", "--port", "0", "--exit-after", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--insecure" in err[0] and "--key-file" in err[0]
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert main(["hil", "serve", "--device", "ideal", "--port", "0", "--exit-after", "0.1", "--key-file", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0]


def test_the_documents_auth_example_is_what_the_encoder_writes():
    doc = Path(__file__).resolve().parents[2] / "docs" / "hil-protocol.md"
    text = doc.read_text().split("## Authentication", 1)[1].split("\n## ", 1)[0]
    blocks = [bytes.fromhex(b.replace("\n", " ")) for b in re.findall(r"(?:\n    [0-9a-f]{2}(?: [0-9a-f]{2})*)+", text)]
    challenge, sid = bytes(range(32)), 0x12345678
    mac = _hmac(b"lab key", challenge, sid)
    assert mac.hex().startswith("068cd45d") and mac.hex().endswith("084f17f7")
    hello = msg.HelloReply(1, False, sid, 4 * 1024 * 1024, 0x1F, 0, challenge).pack()
    assert blocks == [
        encode_frame(Opcode.HELLO, hello, seq=1, session=sid, flags=Flag.REPLY),
        encode_frame(Opcode.AUTH, mac, seq=2, session=sid),
        encode_frame(Opcode.AUTH, b"", seq=2, session=sid, flags=Flag.REPLY),
    ]
