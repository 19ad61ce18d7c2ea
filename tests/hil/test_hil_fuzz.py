"""Fuzz: random and mutated frames (a seeded generator) against ``neurohw hil serve`` in its own
process, while a second client runs MVMs and checks every result against the in-process macro.
The server never dies, its memory stays bounded, and the second client is served correctly
throughout. 100,000 frames are marked slow; 10,000 always run."""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest
from _hil import device, port_of, rss_mb, serve_process

from neurohw.hil import messages as msg
from neurohw.hil.macro import LocalMacro
from neurohw.hil.messages import Block
from neurohw.hil.protocol import HEADER_SIZE, Opcode, crc16, crc32, encode_frame
from neurohw.hil.remote import RemoteMacro

GOOD_BLOCK = Block(0, 0, 64, 0, 32)


def _valid_payload(rng: np.random.Generator, op: int) -> bytes:
    """A plausible payload for ``op`` (small blocks, sometimes out of range)."""
    def block():
        return Block(int(rng.integers(0, 3)), int(rng.integers(0, 520)), int(rng.integers(0, 40)), int(rng.integers(0, 260)), int(rng.integers(0, 20)))

    if op == Opcode.HELLO:
        return msg.Hello(
            int(rng.integers(0, 3)), int(rng.integers(0, 3)), int(rng.integers(0, 2)) * int(rng.integers(0, 2**32)), int(rng.integers(0, 2**62)), "fuzz"
        ).pack()
    if op == Opcode.FORM:
        b = block()
        mask = rng.random((b.nrows, b.ncols)) < 0.5 if rng.random() < 0.3 else None
        return msg.FormRequest(b, int(rng.integers(0, 1000)), mask).pack()
    if op == Opcode.PROGRAM:
        b = block()
        return msg.ProgramRequest(b, 1, rng.uniform(-5, 45, (b.nrows, 2 * b.ncols))).pack()
    if op == Opcode.READ:
        return block().pack()
    if op == Opcode.MVM:
        b = block()
        B, P = int(rng.integers(0, 5)), int(rng.integers(0, 9))
        return msg.MvmRequest(b, (rng.random((B, P, b.nrows)) < 0.3).astype(np.uint8), rng.integers(0, 2**63, B, dtype=np.uint64)).pack()
    if op == Opcode.TIME:
        return msg.pack_f64(float(rng.choice([1.0, -1.0, np.inf, np.nan, 1e20, 0.5])))
    if op == Opcode.ABORT:
        return msg.pack_u32(int(rng.integers(0, 100)))
    return rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()


def _fix(frame: bytearray) -> bytes:
    """Recompute both checksums of a (mutated) frame so that it reaches the payload parsers."""
    if len(frame) >= HEADER_SIZE:
        n = struct.unpack_from("<I", frame, 12)[0]
        frame[18:20] = struct.pack("<H", crc16(bytes(frame[:18])))
        if len(frame) >= HEADER_SIZE + n + 4:
            frame[HEADER_SIZE + n : HEADER_SIZE + n + 4] = struct.pack("<I", crc32(bytes(frame[HEADER_SIZE : HEADER_SIZE + n])))
    return bytes(frame)


def fuzz_frames(rng: np.random.Generator, session: int):
    """Yield random and mutated frames forever."""
    ops = [int(o) for o in Opcode] + [0, 0x0C, 0x7F, 0xFF]
    seq = 0
    while True:
        seq += 1
        kind = rng.random()
        if kind < 0.25:  # random bytes, sometimes starting with the sync byte
            data = rng.integers(0, 256, int(rng.integers(1, 120)), dtype=np.uint8).tobytes()
            yield (b"\xa5" + data) if rng.random() < 0.5 else data
            continue
        op = int(rng.choice(ops))
        payload = _valid_payload(rng, op)
        sess = session if rng.random() < 0.7 else int(rng.integers(0, 2**32))
        flags = int(rng.integers(0, 16)) & (0xFF if rng.random() < 0.2 else 0xFE)  # mostly not flagged as a reply
        frame = bytearray(encode_frame(op, payload, seq=seq, session=sess, flags=flags))
        if kind < 0.55:  # valid frame with a plausible payload
            yield bytes(frame)
            continue
        m = rng.random()
        if m < 0.3:  # flip bits anywhere, then (half the time) fix the checksums
            for _ in range(int(rng.integers(1, 6))):
                i = int(rng.integers(0, len(frame)))
                frame[i] ^= 1 << int(rng.integers(0, 8))
            yield _fix(frame) if rng.random() < 0.5 else bytes(frame)
        elif m < 0.5:  # a lying length field with a valid header check
            frame[12:16] = struct.pack("<I", int(rng.choice([0, 1, 7, 300, 65537, 2**22, 2**32 - 1])))
            yield _fix(frame)
        elif m < 0.7:  # truncated
            yield bytes(frame[: int(rng.integers(1, len(frame)))])
        elif m < 0.85:  # payload bytes replaced by noise, checksums fixed
            noise = rng.integers(0, 256, len(frame) - HEADER_SIZE - 4, dtype=np.uint8).tobytes()
            yield _fix(bytearray(frame[:HEADER_SIZE] + noise + frame[-4:]))
        else:  # another version byte or opcode, fixed up
            frame[1 if rng.random() < 0.5 else 2] = int(rng.integers(0, 256))
            yield _fix(frame)


MARK = 0xFFFFFFFF


class _Drain(threading.Thread):
    """Reads the server's replies on a fuzzing connection: the session its HELLO got, and the
    reply to the end marker (everything before it has been read by the server)."""

    def __init__(self, sock: socket.socket):
        super().__init__(daemon=True)
        self.sock = sock
        self.stop = threading.Event()
        self.hello = threading.Event()
        self.marked = threading.Event()
        self.session = 0

    def run(self) -> None:
        from neurohw.hil.protocol import Frame, FrameReader

        reader = FrameReader(1 << 30)
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for e in reader.feed(data):
                if isinstance(e, Frame) and e.seq == 1 and e.opcode == Opcode.HELLO and not self.hello.is_set():
                    if e.status == 0:
                        self.session = msg.HelloReply.unpack(e.payload).session
                    self.hello.set()
                if isinstance(e, Frame) and e.seq == MARK:
                    self.marked.set()
        self.hello.set()
        self.marked.set()


def _end_marker(session: int) -> bytes:
    """BYE (ends the fuzzing session), zeros that complete any frame a lying length left open
    (max payload 64 KiB), then an INFO whose reply shows that the server read everything."""
    return encode_frame(Opcode.BYE, b"", seq=MARK - 1, session=session) + bytes(70 * 1024) + encode_frame(Opcode.INFO, b"", seq=MARK, session=session)


@pytest.mark.parametrize("n_frames", [pytest.param(10_000, id="10k"), pytest.param(100_000, id="100k", marks=pytest.mark.slow)])
def test_fuzzed_server_survives_and_keeps_serving(n_frames):
    dev = device()
    args = (
        "--device",
        "taox_rram_40nm",
        "--tiles",
        "3",
        "--frame-timeout-s",
        "2",
        "--max-sessions",
        "6",
        "--max-connections",
        "12",
        "--max-payload",
        "65536",
        "--session-ttl-s",
        "1",
    )
    with serve_process(*args) as (proc, url):
        good = RemoteMacro(url, chip_seed=77)
        local = LocalMacro(dev, tiles=3, chip_seed=77)
        for m in (good, local):
            m.form(GOOD_BLOCK, 3)
        rng = np.random.default_rng(2024)
        x_rng = np.random.default_rng(1)
        sent = 0
        rss = []
        checks = 0
        base = rss_mb(proc.pid)
        t0 = time.monotonic()
        while sent < n_frames:
            sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=5)
            drain = _Drain(sock)
            drain.start()
            try:
                sock.sendall(encode_frame(Opcode.HELLO, msg.Hello(1, 1, 0, 1, "fuzz").pack(), seq=1))
                drain.hello.wait(10)
                gen = fuzz_frames(rng, session=drain.session)
                burst = []
                for _ in range(min(2000, n_frames - sent)):
                    burst.append(next(gen))
                    sent += 1
                sock.sendall(b"".join(burst) + _end_marker(drain.session))
                drain.marked.wait(30)
            except OSError:
                pass  # the server may close a fuzzing connection; that is allowed
            finally:
                drain.stop.set()
                sock.close()
                drain.join(5)
            # the other client is served correctly throughout
            x = (x_rng.random((4, 1, 64)) < 0.3).astype(np.uint8)
            assert np.array_equal(good.mvm(GOOD_BLOCK, x), local.mvm(GOOD_BLOCK, x))
            checks += 1
            assert proc.poll() is None, "the server died"
            rss.append(rss_mb(proc.pid))
        stats = good.stats()
        srv_counts = stats["server"]
        decoded = sum(srv_counts.get(k, 0) for k in ("frames_in", "bad_crc", "bad_header", "oversized"))
        good.close()
        elapsed = time.monotonic() - t0
    assert proc.returncode is None or proc.returncode in (0, -15)
    srv = stats["server"]
    assert stats["executed"]["MVM"] == checks
    assert decoded > 0.6 * n_frames  # most frames reached the server's decoder
    assert srv.get("internal_errors", 0) == 0
    assert srv["bad_crc"] > 0 and srv["bad_header"] > 0 and srv["oversized"] > 0 and srv["garbage_bytes"] > 0
    # bounded memory: a few chips, bounded caches and buffers, whatever was sent
    assert max(rss) - base < 200, (base, rss)
    print(f"fuzz: {sent} frames in {elapsed:.1f} s, {checks} checks, server RSS {base:.0f} -> max {max(rss):.0f} MB; {srv}")
