"""Every bad input against a live emulator server, byte by byte over a raw socket: it answers
with an error frame or drops that connection, changes nothing, and keeps serving others."""

from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest
from _hil import RawClient, device, live_server

from neurohw.hil import messages as msg
from neurohw.hil.faults import parse_faults
from neurohw.hil.protocol import HEADER_SIZE, Flag, Frame, Opcode, Status, crc16, encode_frame

BLOCK = msg.Block(0, 0, 16, 0, 8)


def _mvm_payload(seed: int = 0, block: msg.Block = BLOCK, batch: int = 2) -> bytes:
    rng = np.random.default_rng(seed)
    planes = (rng.random((batch, 1, block.nrows)) < 0.5).astype(np.uint8)
    return msg.MvmRequest(block, planes, np.arange(batch)).pack()


def _stats(c: RawClient) -> dict:
    r = c.reply(c.send(Opcode.STATS))
    assert r.status == Status.OK
    return msg.unpack_json(r.payload, "STATS")


def _formed_client(port: int) -> RawClient:
    c = RawClient(port)
    c.hello()
    r = c.reply(c.send(Opcode.FORM, msg.FormRequest(BLOCK, 1).pack()))
    assert r.status == Status.OK
    return c


@pytest.fixture(scope="module")
def server():
    with live_server(device(), frame_timeout_s=0.5, idle_timeout_s=30.0, tiles=2) as s:
        yield s


def test_garbage_then_hello_is_served(server):
    c = RawClient(server.port)
    c.send_raw(bytes(range(256)) * 4 + b"\xa5\xa5\xa5")  # includes sync bytes with bad headers
    rep = c.hello()
    assert rep.session != 0 and rep.version == 1 and rep.max_payload == server.config.max_payload
    c.close()


def test_bad_header_check_is_skipped_and_reported_for_its_session(server):
    c = RawClient(server.port)
    c.hello()
    good = bytearray(encode_frame(Opcode.INFO, b"", seq=40, session=c.session))
    good[17] = 1  # reserved byte: the header check no longer matches
    c.send_raw(bytes(good))
    r = c.reply(40)
    assert r.status == Status.BAD_CRC
    assert c.reply(c.send(Opcode.INFO)).status == Status.OK
    c.close()


def test_oversized_length_gets_bad_length_and_resyncs(server):
    c = RawClient(server.port)
    c.hello()
    h = bytearray(encode_frame(Opcode.READ, b"", seq=50, session=c.session)[:HEADER_SIZE])
    h[12:16] = struct.pack("<I", 0xFFFFFFF0)
    h[18:20] = struct.pack("<H", crc16(bytes(h[:18])))
    c.send_raw(bytes(h) + b"\x00" * 1000)
    r = c.reply(50)
    assert r.status == Status.BAD_LENGTH and b"max_payload" in r.payload
    assert c.reply(c.send(Opcode.INFO)).status == Status.OK
    c.close()


def test_bad_payload_crc_is_not_executed(server):
    c = _formed_client(server.port)
    f = bytearray(encode_frame(Opcode.MVM, _mvm_payload(), seq=60, session=c.session))
    f[HEADER_SIZE + 3] ^= 0x40
    c.send_raw(bytes(f))
    assert c.reply(60).status == Status.BAD_CRC
    assert _stats(c)["executed"].get("MVM", 0) == 0
    # the resent, intact request runs once
    c.send(Opcode.MVM, _mvm_payload(), seq=60)
    assert c.reply(60).status == Status.OK
    assert _stats(c)["executed"]["MVM"] == 1
    c.close()


def test_unknown_opcode_and_frames_before_hello(server):
    c = RawClient(server.port)
    r = c.reply(c.send(Opcode.INFO))
    assert r.status == Status.BAD_SESSION and b"HELLO" in r.payload
    c.hello()
    r = c.reply(c.send(0x7E))
    assert r.status == Status.UNKNOWN_OPCODE and b"0x7E" in r.payload
    r = c.reply(c.send(Opcode.INFO, session=c.session ^ 1))
    assert r.status == Status.BAD_SESSION
    c.close()


def test_version_mismatch(server):
    c = RawClient(server.port)
    seq = c.send(Opcode.HELLO, msg.Hello(2, 5).pack(), version=2)
    r = c.reply(seq)
    assert r.status == Status.BAD_VERSION
    assert msg.unpack_version_error(r.payload)[:2] == (1, 1)
    c.hello()
    r = c.reply(c.send(Opcode.INFO, version=3))
    assert r.status == Status.BAD_VERSION
    c.close()


@pytest.mark.parametrize(
    "opcode, payload, status",
    [
        (Opcode.READ, msg.Block(9, 0, 1, 0, 1).pack(), Status.OUT_OF_RANGE),
        (Opcode.READ, msg.Block(0, 510, 5, 0, 1).pack(), Status.OUT_OF_RANGE),
        (Opcode.READ, msg.Block(0, 0, 1, 255, 2).pack(), Status.OUT_OF_RANGE),
        (Opcode.PROGRAM, msg.ProgramRequest(BLOCK, 1, np.full((16, 16), 99.0)).pack(), Status.OUT_OF_RANGE),
        (Opcode.PROGRAM, msg.ProgramRequest(BLOCK, 1, np.full((16, 16), -0.5)).pack(), Status.OUT_OF_RANGE),
        (Opcode.FORM, msg.FormRequest(msg.Block(0, 0, 600, 0, 1), 1).pack(), Status.OUT_OF_RANGE),
        (Opcode.MVM, _mvm_payload(block=msg.Block(5, 0, 16, 0, 8)), Status.OUT_OF_RANGE),
        (Opcode.TIME, msg.pack_f64(-1.0), Status.OUT_OF_RANGE),
        (Opcode.TIME, msg.pack_f64(float("inf")), Status.OUT_OF_RANGE),
        (Opcode.TIME, b"\x00" * 7, Status.BAD_LENGTH),
        (Opcode.READ, msg.Block(0, 0, 1, 0, 1).pack() + b"x", Status.BAD_LENGTH),
        (Opcode.MVM, _mvm_payload()[:-1], Status.BAD_LENGTH),
        (Opcode.PROGRAM, b"\x00" * 3, Status.BAD_LENGTH),
        (Opcode.RESET, b"\x01", Status.BAD_LENGTH),
        (Opcode.ABORT, msg.pack_u32(12345), Status.OUT_OF_RANGE),
        (Opcode.HELLO, b"\x01\x01", Status.BAD_REQUEST),  # any HELLO on a connection holding a session
    ],
)
def test_bad_requests_are_refused_and_change_nothing(server, opcode, payload, status):
    c = _formed_client(server.port)
    before = c.reply(c.send(Opcode.READ, BLOCK.pack())).payload
    r = c.reply(c.send(opcode, payload))
    assert r.status == status and r.header.is_reply and len(r.payload) <= 200
    if opcode != Opcode.HELLO:
        assert c.reply(c.send(Opcode.READ, BLOCK.pack())).payload == before
        s = _stats(c)
        assert s["clock_s"] == 0.0 and s["executed"].get("PROGRAM", 0) == 0 and s["executed"].get("MVM", 0) == 0
    c.close()


def test_a_stalled_half_frame_is_dropped_while_others_are_served(server):
    staller = RawClient(server.port)
    staller.hello()
    frame = encode_frame(Opcode.MVM, _mvm_payload(), seq=1, session=staller.session)
    staller.send_raw(frame[: len(frame) // 2])
    other = _formed_client(server.port)
    t0 = time.monotonic()
    served = 0
    while time.monotonic() - t0 < 1.2:  # the stall limit is 0.5 s
        r = other.reply(other.send(Opcode.MVM, _mvm_payload(served)))
        assert r.status == Status.OK
        served += 1
    assert staller.closed_by_peer(30.0)
    assert served > 5
    assert server.stats()["stalled"] >= 1
    other.close()


def test_a_repeated_sequence_number_is_executed_once(server):
    c = _formed_client(server.port)
    seq = c.send(Opcode.MVM, _mvm_payload(3))
    first = c.reply(seq)
    c.send(Opcode.MVM, _mvm_payload(3), seq=seq, flags=Flag.RETRY)
    second = c.reply(seq)
    assert first.status == Status.OK and first.payload == second.payload
    s = _stats(c)
    assert s["executed"]["MVM"] == 1 and s["replayed"] == 1
    # TIME too: applied once
    seq = c.send(Opcode.TIME, msg.pack_f64(10.0))
    assert msg.unpack_f64(c.reply(seq).payload, "t") == 10.0
    c.send(Opcode.TIME, msg.pack_f64(10.0), seq=seq)
    assert msg.unpack_f64(c.reply(seq).payload, "t") == 10.0
    assert _stats(c)["clock_s"] == 10.0
    c.close()


def test_a_retry_older_than_the_cache_is_stale_not_reapplied():
    with live_server(device(), cache_entries=2) as srv:
        c = _formed_client(srv.port)
        seqs = [c.send(Opcode.MVM, _mvm_payload(i)) for i in range(3)]
        for s in seqs:
            assert c.reply(s).status == Status.OK
        c.send(Opcode.MVM, _mvm_payload(0), seq=seqs[0])
        assert c.reply(seqs[0]).status == Status.STALE
        assert _stats(c)["executed"]["MVM"] == 3
        c.close()


def test_long_operation_progress_busy_abort():
    with live_server(device(), faults=parse_faults("slowop=150")) as srv:
        c = RawClient(srv.port)
        c.hello()
        full = msg.Block(0, 0, 512, 0, 256)
        formed = msg.FormReply.unpack(c.reply(c.send(Opcode.FORM, msg.FormRequest(full, 1).pack()), timeout=60.0).payload, full)
        n_formed = int(formed.formed.sum())  # PROGRAM writes only formed cells
        g0 = msg.unpack_read_reply(c.reply(c.send(Opcode.READ, BLOCK.pack())).payload, BLOCK)
        prog = msg.ProgramRequest(full, 5, np.full((512, 512), 20.0)).pack()
        seq = c.send(Opcode.PROGRAM, prog)
        first = c.reply(seq, final=False)
        assert first.header.is_progress and msg.unpack_progress(first.payload) == (0, n_formed)
        r = c.reply(c.send(Opcode.MVM, _mvm_payload()))
        assert r.status == Status.BUSY and b"PROGRAM" in r.payload
        assert c.reply(c.send(Opcode.READ, BLOCK.pack())).status == Status.BUSY
        assert c.reply(c.send(Opcode.INFO)).status == Status.OK
        c.send(Opcode.PROGRAM, prog, seq=seq, flags=Flag.RETRY)  # a retry of the running operation: its progress
        assert c.reply(seq, final=False).header.is_progress
        c.send(Opcode.PROGRAM, b"", seq=seq)  # another request with its seq: refused, the operation runs on
        assert c.reply(seq, final=False).status == Status.SEQ_REUSED
        assert c.reply(c.send(Opcode.ABORT, msg.pack_u32(seq))).status == Status.OK
        final = c.reply(seq)
        assert final.status == Status.ABORTED and b"nothing was applied" in final.payload
        g = msg.unpack_read_reply(c.reply(c.send(Opcode.READ, BLOCK.pack())).payload, BLOCK)
        assert np.array_equal(g, g0)
        assert _stats(c)["executed"].get("PROGRAM", 0) == 0
        # not aborted: progress frames, then the whole result at once
        seq = c.send(Opcode.PROGRAM, msg.ProgramRequest(full, 5, np.full((512, 512), 20.0)).pack())
        evs = c.events(60.0, lambda e: any(isinstance(x, Frame) and x.seq == seq and not x.header.is_progress for x in e))
        frames = [e for e in evs if isinstance(e, Frame) and e.seq == seq]
        assert len(frames) >= 8 and all(f.header.is_progress for f in frames[:-1]) and frames[-1].status == Status.OK
        done = [msg.unpack_progress(f.payload)[0] for f in frames[:-1]]
        assert done == sorted(done)
        rep = msg.ProgramReply.unpack(frames[-1].payload, full)
        assert rep.programmed == n_formed and rep.converged_cells > 0.99 * n_formed
        c.close()


def test_sessions_are_isolated_and_resumable(server):
    a = _formed_client(server.port)
    b = RawClient(server.port)
    b.hello()
    c_read = ga = a.reply(a.send(Opcode.READ, BLOCK.pack())).payload
    gb = b.reply(b.send(Opcode.READ, BLOCK.pack())).payload
    assert ga != gb and np.all(np.frombuffer(gb, "<f8") == 0.0)
    # b cannot speak for a's session
    assert b.reply(b.send(Opcode.READ, BLOCK.pack(), session=a.session)).status == Status.BAD_SESSION
    # a's link drops; a new connection resumes the session with its chip and its reply cache
    seq = a.send(Opcode.TIME, msg.pack_f64(3.0))
    assert a.reply(seq).status == Status.OK
    sid, last = a.session, a.seq
    a.drop()
    a2 = RawClient(server.port)
    rep = a2.hello(resume=sid)
    assert rep.resumed and rep.session == sid and rep.last_seq == seq
    a2.seq = last
    assert a2.reply(a2.send(Opcode.READ, BLOCK.pack())).payload == c_read
    a2.send(Opcode.TIME, msg.pack_f64(3.0), seq=seq)
    assert msg.unpack_f64(a2.reply(seq).payload, "t") == 3.0
    assert _stats(a2)["clock_s"] == 3.0
    d = RawClient(server.port)
    r = d.reply(d.send(Opcode.HELLO, msg.Hello(1, 1, 0xDEAD, 0).pack(), session=0))
    assert r.status == Status.BAD_SESSION
    for c in (a2, b, d):
        c.close()


def test_session_and_connection_limits():
    with live_server(device(), max_sessions=2, max_connections=3) as srv:
        c1, c2 = RawClient(srv.port), RawClient(srv.port)
        c1.hello()
        c2.hello()
        c3 = RawClient(srv.port)
        seq = c3.send(Opcode.HELLO, msg.Hello(1, 1).pack(), seq=41, session=0)
        r = c3.reply(seq)  # the server full: BUSY to the request's own seq, session 0, then closed
        assert r.status == Status.BUSY and r.seq == 41 and r.header.session == 0 and b"server full: 2 sessions open" in r.payload
        assert c3.closed_by_peer(30.0)
        c2.send(Opcode.BYE)  # ends c2's session: room for another
        assert c2.reply(c2.seq).status == Status.OK
        c4 = RawClient(srv.port)
        c4.hello()
        for c in (c1, c2, c4):
            c.close()
    with live_server(device(), max_sessions=4, max_connections=1) as srv:
        c1 = RawClient(srv.port)
        c1.hello()
        c2 = RawClient(srv.port)
        r = c2.reply(c2.send(Opcode.INFO, session=0))  # whatever the first frame, it gets BUSY
        assert r.status == Status.BUSY and b"connections" in r.payload
        assert c2.closed_by_peer(30.0)
        assert srv.stats()["refused_connections"] == 1
        c1.close()


def test_frames_flagged_as_replies_are_refused(server):
    c = RawClient(server.port)
    c.hello()
    r = c.reply(c.send(Opcode.INFO, flags=Flag.REPLY, seq=77))
    assert r.status == Status.BAD_REQUEST and b"REPLY flag" in r.payload
    # an echo of that very answer (a line that echoes) is dropped, not answered again
    c.send_raw(encode_frame(Opcode.INFO, r.payload, seq=77, session=c.session, flags=Flag.REPLY, status=Status.BAD_REQUEST))
    seq = c.send(Opcode.INFO)
    evs = c.events(5.0, lambda e: any(isinstance(x, Frame) and x.seq == seq for x in e))
    assert [x.seq for x in evs if isinstance(x, Frame)] == [seq]
    c.close()


def test_many_clients_at_once(server):
    errors = []

    def client(i):
        try:
            c = RawClient(server.port)
            c.hello(chip_seed=i)
            for k in range(20):
                assert c.reply(c.send(Opcode.INFO)).status == Status.OK
            c.close()
        except Exception as exc:  # any failure of a client thread is collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
