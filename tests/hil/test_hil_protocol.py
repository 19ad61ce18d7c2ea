"""HIL framing and payloads: checksums against their published check values, the example frames
of docs/hil-protocol.md against the encoder, the stream reader's resynchronisation and bounds,
and every payload's round trip."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from neurohw.hil import messages as msg
from neurohw.hil.protocol import (
    HEADER_SIZE,
    BadHeader,
    BadPayload,
    Flag,
    Frame,
    FrameReader,
    Garbage,
    Opcode,
    Oversized,
    Status,
    crc16,
    crc32,
    encode_frame,
    parse_header,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "hil-protocol.md"


def _crc16_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE from its definition (poly 0x1021, init 0xFFFF, MSB first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_checksums_check_values_and_definition():
    assert crc16(b"123456789") == 0x29B1
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"") == 0
    rng = np.random.default_rng(0)
    for n in (0, 1, 18, 100):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc16(data) == _crc16_bitwise(data)
        assert crc32(data) == zlib.crc32(data)


def test_frame_layout_matches_the_table():
    f = encode_frame(Opcode.MVM, b"abc", seq=0x01020304, session=0xA0B0C0D0, flags=Flag.EXACT | Flag.RETRY, status=0)
    assert len(f) == HEADER_SIZE + 3 + 4
    assert f[0] == 0xA5 and f[1] == 1 and f[2] == 0x06 and f[3] == 0x0C
    assert struct.unpack_from("<III", f, 4) == (0x01020304, 0xA0B0C0D0, 3)
    assert f[16] == 0 and f[17] == 0
    assert struct.unpack_from("<H", f, 18)[0] == crc16(f[:18])
    assert f[20:23] == b"abc" and struct.unpack_from("<I", f, 23)[0] == zlib.crc32(b"abc")
    h = parse_header(f)
    assert (h.opcode, h.seq, h.session, h.length, h.flags) == (6, 0x01020304, 0xA0B0C0D0, 3, 0x0C)


def _doc_examples() -> list[bytes]:
    text = DOC.read_text().split("## Example frames", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:\n    [0-9a-f]{2}(?: [0-9a-f]{2})*)+", text)
    return [bytes.fromhex(b.replace("\n", " ")) for b in blocks]


def test_doc_example_frames_are_what_the_encoder_writes():
    ex = _doc_examples()
    assert len(ex) == 5
    want = [
        encode_frame(Opcode.HELLO, msg.Hello(1, 1, 0, 0, "neurohw").pack(), seq=1, session=0),
        encode_frame(Opcode.INFO, b"", seq=2, session=0x12345678),
        encode_frame(
            Opcode.MVM,
            msg.MvmRequest(msg.Block(0, 0, 10, 0, 2), np.array([[[1, 0, 0, 1, 0, 0, 0, 0, 1, 1]]]), np.array([5])).pack(),
            seq=3,
            session=0x12345678,
            flags=Flag.EXACT,
        ),
        encode_frame(Opcode.MVM, msg.MvmReply(np.array([[[-3, 120]]], np.int32)).pack(), seq=3, session=0x12345678, flags=Flag.REPLY),
        encode_frame(Opcode.MVM, b"", seq=7, session=0x12345678, flags=Flag.REPLY, status=Status.BAD_CRC),
    ]
    assert ex == want
    for data in ex:
        (ev,) = FrameReader().feed(data)
        assert isinstance(ev, Frame)


def test_reader_byte_by_byte_and_in_one_chunk():
    frames = [encode_frame(Opcode.INFO, bytes(i % 256 for i in range(n)), seq=n + 1, session=9) for n in (0, 1, 7, 300)]
    stream = b"".join(frames)
    r = FrameReader()
    got = []
    for i in range(len(stream)):
        got += r.feed(stream[i : i + 1])
    assert [e.payload for e in got] == [bytes(i % 256 for i in range(n)) for n in (0, 1, 7, 300)]
    assert [e.seq for e in FrameReader().feed(stream)] == [1, 2, 8, 301]
    assert r.pending == 0


def test_reader_resynchronises_after_garbage_and_bad_headers():
    good = encode_frame(Opcode.INFO, b"x", seq=5, session=1)
    bent = bytearray(good)
    bent[6] ^= 0x10  # inside seq: header check fails
    events = FrameReader().feed(b"\x00\x01\xa5" + bytes(bent) + b"junk" + good)
    frames = [e for e in events if isinstance(e, Frame)]
    assert [f.seq for f in frames] == [5]
    assert any(isinstance(e, BadHeader) for e in events) and any(isinstance(e, Garbage) for e in events)


def test_reader_reports_bad_payload_and_keeps_framing():
    a = bytearray(encode_frame(Opcode.READ, b"0123456789", seq=1))
    a[25] ^= 1  # a payload byte
    b = encode_frame(Opcode.READ, b"ok", seq=2)
    events = FrameReader().feed(bytes(a) + b)
    assert isinstance(events[0], BadPayload) and events[0].header.seq == 1
    assert isinstance(events[1], Frame) and events[1].seq == 2


def test_reader_oversized_length_is_reported_and_memory_stays_bounded():
    r = FrameReader(max_payload=1000)
    head = encode_frame(Opcode.PROGRAM, b"", seq=3)[:HEADER_SIZE]
    # forge a valid header announcing 2 GB
    h = bytearray(head)
    h[12:16] = struct.pack("<I", 2_000_000_000)
    h[18:20] = struct.pack("<H", crc16(bytes(h[:18])))
    events = r.feed(bytes(h) + b"\x00" * 5000)
    assert isinstance(events[0], Oversized) and events[0].header.length == 2_000_000_000
    assert r.pending == 0
    # a valid header just under the bound waits for its payload, and holds no more than it
    ok = encode_frame(Opcode.READ, b"\x01" * 1000, seq=4)
    r.feed(ok[:-10])
    assert r.pending == len(ok) - 10
    assert isinstance(r.feed(ok[-10:])[0], Frame)


def test_payload_round_trips():
    rng = np.random.default_rng(1)
    b = msg.Block(3, 10, 37, 5, 19)
    assert msg.Block.unpack_from(b.pack(), "x") == b
    h = msg.Hello(1, 2, 77, 2**64 - 1, "héllo")
    assert msg.Hello.unpack(h.pack()) == h
    mask = rng.random((37, 19)) < 0.5
    fr = msg.FormRequest.unpack(msg.FormRequest(b, 12345, mask).pack())
    assert fr.seed == 12345 and np.array_equal(fr.mask, mask)
    assert msg.FormRequest.unpack(msg.FormRequest(b, 1).pack()).mask is None
    formed = rng.random((37, 38)) < 0.5
    rep = msg.FormReply.unpack(msg.FormReply(1, 2, 3, formed).pack(), b)
    assert np.array_equal(rep.formed, formed) and (rep.formed_cells, rep.stuck_cells, rep.pulses) == (1, 2, 3)
    t = rng.random((37, 38)) * 40
    t[0, 0] = np.nan
    pr = msg.ProgramRequest.unpack(msg.ProgramRequest(b, 9, t).pack())
    assert np.array_equal(pr.targets, t, equal_nan=True)
    pulses = rng.integers(0, 70000, (37, 38))
    conv = rng.random((37, 38)) < 0.9
    prr = msg.ProgramReply.unpack(msg.ProgramReply(5, 4, 3, pulses, conv).pack(), b)
    assert np.array_equal(prr.pulses, np.minimum(pulses, 65535)) and np.array_equal(prr.converged, conv)
    planes = (rng.random((4, 3, 37)) < 0.3).astype(np.uint8)
    nonces = rng.integers(0, 2**63, 4, dtype=np.uint64)
    mv = msg.MvmRequest.unpack(msg.MvmRequest(b, planes, nonces).pack())
    assert np.array_equal(mv.planes, planes) and np.array_equal(mv.nonces, nonces)
    codes = rng.integers(-8191, 8192, (4, 3, 19)).astype(np.int32)
    assert np.array_equal(msg.MvmReply.unpack(msg.MvmReply(codes).pack()).values, codes)
    analog = rng.normal(size=(2, 1, 19))
    assert np.array_equal(msg.MvmReply.unpack(msg.MvmReply(analog).pack()).values, analog)
    info = msg.ChipInfo(2, 512, 512, 14, 6, 6, 0x1B, 0.0625, 0.0625, 0.0, 40.0, 12.5, 2**63 + 5, 4 << 20, (0.0625, 0.125), "chip", {"a": [1, 2]})
    assert msg.ChipInfo.unpack(info.pack()) == info


@pytest.mark.parametrize(
    "cls, payload",
    [
        (msg.Hello, b"\x01"),
        (msg.Hello, msg.Hello(1, 1).pack() + b"extra"),
        (msg.FormRequest, msg.Block(0, 0, 4, 0, 4).pack() + struct.pack("<QB", 1, 1)),  # mask missing
        (msg.ProgramRequest, msg.Block(0, 0, 2, 0, 2).pack() + b"\x00" * 8 + b"\x00" * 7),
        (msg.MvmRequest, msg.Block(0, 0, 9, 0, 2).pack() + struct.pack("<HBB", 2, 1, 0) + b"\x00" * 16 + b"\x00" * 3),
    ],
)
def test_payloads_that_do_not_fit_raise_bad_length(cls, payload):
    with pytest.raises(msg.PayloadError) as e:
        cls.unpack(payload)
    assert e.value.status == Status.BAD_LENGTH


def test_malformed_fields_raise_bad_request():
    bad = bytearray(msg.Hello(1, 1, 0, 0, "x").pack())
    bad[2] = 1  # reserved
    with pytest.raises(msg.PayloadError) as e:
        msg.Hello.unpack(bytes(bad))
    assert e.value.status == Status.BAD_REQUEST
    raw = msg.MvmRequest(msg.Block(0, 0, 8, 0, 1), np.zeros((1, 1, 8)), np.zeros(1)).pack()
    raw = raw[:13] + b"\x07" + raw[14:]  # reserved byte of MVM
    with pytest.raises(msg.PayloadError) as e:
        msg.MvmRequest.unpack(raw)
    assert e.value.status == Status.BAD_REQUEST
    with pytest.raises(ValueError):
        msg.Block(70000, 0, 1, 0, 1)
