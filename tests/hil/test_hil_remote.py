"""RemoteMacro against LocalMacro: the same calls give the same numbers over TCP and over a
serial URL; the driver's retries, resume and abort; one clear line for every way the link fails."""

from __future__ import annotations

import os
import select
import socket
import threading
import time

import numpy as np
import pytest
from _hil import device, live_server, port_of

from neurohw.cli import main
from neurohw.hil import messages as msg
from neurohw.hil.errors import HilError, HilStatusError
from neurohw.hil.faults import parse_faults
from neurohw.hil.macro import LocalMacro, MvmCall, bit_planes
from neurohw.hil.messages import Block
from neurohw.hil.protocol import Frame, FrameReader, Opcode, Status, encode_frame
from neurohw.hil.remote import RemoteMacro
from neurohw.hil.server import HilServer, ServerConfig


def _workload(m, rng_seed: int = 0) -> list:
    """A sequence of every Macro call; returns everything they returned."""
    rng = np.random.default_rng(rng_seed)
    out = []
    info = m.info()
    out.append((info.tiles, info.rows, info.cols, info.adc_bits, info.lsb_us, info.chip_id, info.tile_lsb_us, info.facts))
    b = Block(1, 3, 200, 5, 100)
    mask = rng.random((200, 100)) < 0.8
    f = m.form(b, 17, mask)
    out += [f.formed_cells, f.stuck_cells, f.pulses, f.formed, m.read(b)]
    t = np.full((200, 200), np.nan)
    t[:50] = rng.uniform(2, 20, (50, 200))
    p = m.program(b, t, 5)
    out += [p.programmed, p.converged_cells, p.total_pulses, p.pulses, p.converged, m.read(b)]
    x = (rng.random((40, 1, 200)) < 0.1).astype(np.uint8)
    out.append(m.mvm(b, x))  # noisy, the macro's own nonces
    out.append(m.mvm(b, x, exact=True))
    xc = bit_planes(rng.integers(0, 8, (10, 200)))
    calls = [MvmCall(b, x[:5]), MvmCall(Block(1, 3, 200, 5, 100), xc, np.arange(10) + 7), MvmCall(b, x, np.arange(40))]
    out += m.mvm_many(calls)
    out.append(m.time(123.0))
    out.append(m.read(b))
    stats = m.stats()
    out.append({k: v for k, v in stats["executed"].items()})
    out.append(stats["ledger"])
    m.reset()
    out.append(m.read(b))
    return out


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
        else:
            assert x == y


@pytest.mark.parametrize("dev_name", ["taox_rram_40nm", "pcm_like"])
def test_remote_over_tcp_equals_local(dev_name):
    dev = device(dev_name)
    with live_server(dev, tiles=3) as srv:
        local = _workload(LocalMacro(dev, tiles=3, chip_seed=42))
        with RemoteMacro(srv.url, chip_seed=42) as rm:
            remote = _workload(rm)
    _same(local, remote)


def test_remote_over_serial_socket_url_equals_local():
    dev = device()
    with live_server(dev, tiles=2) as srv:
        local = _workload(LocalMacro(dev, tiles=2, chip_seed=3))
        with RemoteMacro(f"hil+serial://socket://127.0.0.1:{srv.port}?baud=921600", chip_seed=3) as rm:
            assert rm.address.kind == "serial"
            remote = _workload(rm)
    _same(local, remote)


def test_server_on_a_pseudo_terminal():
    """``serve --serial`` on a real tty (a pty's slave end); a client writes frames to the master."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    srv = HilServer(device(), "127.0.0.1", 0, ServerConfig(tiles=1)).start()
    try:
        srv.serve_serial(path, 115200)
        reader = FrameReader()

        def ask(frame: bytes, seq: int) -> Frame:
            """The final reply to ``seq`` (PROGRESS frames of a long operation skipped)."""
            os.write(master, frame)
            got: list = []
            deadline = time.monotonic() + 120.0

            def final(e):
                return isinstance(e, Frame) and e.seq == seq and not e.header.is_progress

            while not any(final(e) for e in got):
                assert time.monotonic() < deadline, f"no reply to seq {seq}: {got}"
                if select.select([master], [], [], 1.0)[0]:
                    got += reader.feed(os.read(master, 1 << 16))
            return next(e for e in got if final(e))

        r = ask(encode_frame(Opcode.HELLO, msg.Hello(1, 1, 0, 9).pack(), seq=1), 1)
        sid = msg.HelloReply.unpack(r.payload).session
        b = Block(0, 0, 32, 0, 16)
        assert ask(encode_frame(Opcode.FORM, msg.FormRequest(b, 4).pack(), seq=2, session=sid), 2).status == Status.OK
        planes = (np.random.default_rng(0).random((3, 1, 32)) < 0.4).astype(np.uint8)
        r = ask(encode_frame(Opcode.MVM, msg.MvmRequest(b, planes, np.arange(3)).pack(), seq=3, session=sid), 3)
        lm = LocalMacro(device(), tiles=1, chip_seed=9)
        lm.form(b, 4)
        assert np.array_equal(msg.MvmReply.unpack(r.payload).values, lm.mvm(b, planes, np.arange(3)))
    finally:
        srv.stop()
        os.close(master)
        os.close(slave)


def test_small_max_payload_splits_reads_and_batches():
    dev = device()
    with live_server(dev, tiles=1, max_payload=64 * 1024) as srv:
        lm = LocalMacro(dev, tiles=1, chip_seed=1)
        with RemoteMacro(srv.url, chip_seed=1) as rm:
            assert rm.max_payload == 64 * 1024
            full = Block(0, 0, 512, 0, 256)
            for m in (lm, rm):
                m.form(full, 2)
            assert np.array_equal(lm.read(full), rm.read(full))  # 2 MiB, in 32 READs
            x = (np.random.default_rng(0).random((300, 1, 512)) < 0.05).astype(np.uint8)
            assert np.array_equal(lm.mvm(full, x, np.arange(300)), rm.mvm(full, x, np.arange(300)))
            with pytest.raises(HilError, match="max_payload"):
                rm.program(full, np.full((512, 512), 10.0), 1)  # 2 MiB of targets cannot be split


def test_driver_rides_out_a_bad_link():
    dev = device()
    spec = parse_faults("drop=0.15,corrupt=0.05,delay=0.05:20,disconnect=0.02,seed=3")
    with live_server(dev, tiles=1, faults=spec) as srv:
        lm = LocalMacro(dev, tiles=1, chip_seed=5)
        with RemoteMacro(srv.url + "?timeout=0.2&retries=20", chip_seed=5) as rm:
            b = Block(0, 0, 64, 0, 32)
            assert np.array_equal(lm.form(b, 1).formed, rm.form(b, 1).formed)
            x = (np.random.default_rng(1).random((300, 4, 1, 64)) < 0.3).astype(np.uint8)
            got = rm.mvm_many([MvmCall(b, x[i]) for i in range(300)])
            want = lm.mvm_many([MvmCall(b, x[i]) for i in range(300)])
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
            assert rm.stats()["executed"]["MVM"] == 300
            c = rm.counters
            assert c["retries"] > 0 and c["reconnects"] > 0
            f = srv.stats()["faults"]
            assert f["dropped_in"] and f["dropped_out"] and f["corrupted_in"] + f["corrupted_out"] and f["disconnects"]


def test_a_link_that_breaks_again_while_the_driver_resends_is_ridden_out():
    """The server hangs up after a quarter of the frames it receives, so the link often breaks
    again while the driver re-sends its window after a reconnect (a broken pipe in that re-send
    once escaped as LinkClosed); every MVM still comes back, equal to the local macro's."""
    dev = device()
    with live_server(dev, tiles=1, faults=parse_faults("disconnect=0.25,seed=11")) as srv:
        lm = LocalMacro(dev, tiles=1, chip_seed=5)
        with RemoteMacro(srv.url + "?timeout=0.2&retries=50", chip_seed=5) as rm:
            b = Block(0, 0, 64, 0, 32)
            rm.form(b, 1), lm.form(b, 1)
            x = (np.random.default_rng(2).random((120, 2, 1, 64)) < 0.3).astype(np.uint8)
            got = rm.mvm_many([MvmCall(b, x[i]) for i in range(120)])
            want = lm.mvm_many([MvmCall(b, x[i]) for i in range(120)])
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
            assert rm.counters["reconnects"] >= 5 and srv.stats()["faults"]["disconnects"] >= 5


def test_a_peer_that_hangs_up_before_hello_is_tried_retries_times_then_one_line():
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def hang_up():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(64)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(HilError, match=r"connection closed by the peer, before answering HELLO, 3 times; check that a neurohw HIL server"):
            RemoteMacro(f"hil://127.0.0.1:{port}?retries=3")
        assert len(accepted) == 3
    finally:
        listener.close()


def test_drop_link_resumes_the_session():
    with live_server(device(), tiles=1) as srv:
        with RemoteMacro(srv.url) as rm:
            b = Block(0, 0, 8, 0, 8)
            rm.form(b, 1)
            sid = rm.session
            rm.drop_link()
            assert rm.read(b).shape == (8, 16)
            assert rm.session == sid and rm.counters["reconnects"] == 1
            assert rm.stats()["executed"]["FORM"] == 1


def test_progress_callback_returning_false_aborts():
    with live_server(device(**{"forming.probability": 1.0}), tiles=1, faults=parse_faults("slowop=100")) as srv:
        with RemoteMacro(srv.url) as rm:
            full = Block(0, 0, 512, 0, 256)
            rm.form(full, 3)  # PROGRAM writes formed cells only: form them all first
            g0 = rm.read(full)
            seen = []

            def progress(done, total):
                seen.append((done, total))
                return len(seen) < 2

            with pytest.raises(HilStatusError) as e:
                rm.program(full, np.full((512, 512), 10.0), 1, progress=progress)
            assert e.value.status == Status.ABORTED and "nothing was applied" in str(e.value)
            assert seen[0] == (0, 512 * 512)
            assert np.array_equal(rm.read(full), g0)
            assert rm.stats()["executed"].get("PROGRAM", 0) == 0


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_no_server_is_one_line():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(HilError) as e:
        RemoteMacro(f"hil://127.0.0.1:{port}")
    assert "no HIL server answers" in _one_line(e.value)


def test_server_gone_for_good_is_one_line():
    srv = HilServer(device(), "127.0.0.1", 0, ServerConfig(tiles=1)).start()
    rm = RemoteMacro(srv.url + "?timeout=0.2&retries=3")
    rm.info()
    srv.stop()
    with pytest.raises(HilError) as e:
        rm.read(Block(0, 0, 1, 0, 1))
    assert "lost the link" in _one_line(e.value)


def test_restarted_server_does_not_know_the_session():
    srv = HilServer(device(), "127.0.0.1", 0, ServerConfig(tiles=1)).start()
    port = srv.port
    rm = RemoteMacro(srv.url + "?timeout=0.3&retries=4")
    rm.info()
    srv.stop()
    srv2 = HilServer(device(), "127.0.0.1", port, ServerConfig(tiles=1)).start()
    try:
        with pytest.raises(HilError) as e:
            rm.info()
        assert "no longer knows session" in _one_line(e.value)
    finally:
        srv2.stop()


def test_other_protocol_version_is_one_line():
    with live_server(device(), versions=(2, 3)) as srv:
        with pytest.raises(HilError) as e:
            RemoteMacro(srv.url)
        assert "speaks HIL protocol versions 2..3, this neurohw speaks 1..1" in _one_line(e.value)


def test_not_a_hil_server_is_one_line():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def http():
        conn, _ = lsock.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    t = threading.Thread(target=http, daemon=True)
    t.start()
    try:
        with pytest.raises(HilError) as e:
            RemoteMacro(f"hil://127.0.0.1:{port}?timeout=1")
        assert "not a neurohw HIL server" in _one_line(e.value)
    finally:
        t.join(5)
        lsock.close()


def test_loopback_port_is_recognised():
    with pytest.raises(HilError) as e:
        RemoteMacro("hil+serial://loop://?timeout=0.5")
    assert "sends our own requests back" in _one_line(e.value)


def test_refused_requests_raise_status_errors():
    with live_server(device(), tiles=1) as srv:
        with RemoteMacro(srv.url) as rm:
            with pytest.raises(HilStatusError) as e:
                rm.read(Block(4, 0, 1, 0, 1))
            assert e.value.status == Status.OUT_OF_RANGE and "tile 4 does not exist" in _one_line(e.value)
            with pytest.raises(HilStatusError):
                rm.time(-5)


def test_cli_link_errors_exit_2(capsys):
    assert main(["hil", "info", "hil://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no HIL server answers" in err[0]
    assert main(["hil", "info", "hil://nowhere"]) == 2
    assert main(["hil", "calibrate", "http://x:1", "--out", "/tmp/never"]) == 2
    with live_server(device(), tiles=1) as srv:
        assert main(["hil", "info", srv.url]) == 0
        out = capsys.readouterr().out
        assert "512 rows x 512 columns" in out and "14-bit" in out
        assert port_of(srv.url) > 0
