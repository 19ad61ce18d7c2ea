"""The HIL link's framing: constants, the frame header, encoding, and a sans-IO frame reader.

The byte-level specification is docs/hil-protocol.md; this module is its executable form (the
document's example frames are checked against :func:`encode_frame` in the tests). All integers
are little-endian. A frame is

    offset  size  field
    0       1     sync byte 0xA5
    1       1     protocol version (1)
    2       1     opcode
    3       1     flags (REPLY, PROGRESS, EXACT, RETRY)
    4       4     sequence number, u32 (a reply echoes its request's)
    8       4     session id, u32 (0 before HELLO)
    12      4     payload length N, u32, at most the max_payload the server announces
    16      1     status (requests: 0; replies: OK, BAD_CRC, ...)
    17      1     reserved, 0
    18      2     header check: CRC-16/CCITT-FALSE of bytes 0..17
    20      N     payload
    20+N    4     CRC-32 (ISO-HDLC, zlib.crc32) of the payload

CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR
(``binascii.crc_hqx(data, 0xFFFF)``; check value of b"123456789" is 0x29B1).
CRC-32: zlib's (polynomial 0x04C11DB7 reflected, init and final XOR 0xFFFFFFFF; check
value 0xCBF43926); the CRC of an empty payload is 0.

:class:`FrameReader` turns a byte stream (TCP or serial, chunked arbitrarily) into events:
whole frames, payload-CRC failures with a trusted header, bad headers (resynchronised by
scanning for the next sync byte) and oversized lengths. Its buffer never holds more than one
frame of ``max_payload`` bytes plus one chunk, whatever the peer sends.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag

SYNC = 0xA5
VERSION = 1
#: protocol versions this implementation speaks (HELLO negotiates within them)
VERSIONS = (1, 1)

HEADER = struct.Struct("<BBBBIIIBBH")
HEADER_SIZE = HEADER.size  # 20
CRC_SIZE = 4
#: the header check covers bytes 0..17
CHECKED = HEADER_SIZE - 2

#: the largest payload a server announces by default (a full 512 x 512 READ is 2 MiB)
DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024
#: the smallest max_payload a server may announce (every fixed-size reply fits)
MIN_MAX_PAYLOAD = 64 * 1024
#: u32 field ceiling
U32 = 0xFFFFFFFF


class Opcode(IntEnum):
    HELLO = 0x01
    INFO = 0x02
    FORM = 0x03
    PROGRAM = 0x04
    READ = 0x05
    MVM = 0x06
    TIME = 0x07
    RESET = 0x08
    ABORT = 0x09
    STATS = 0x0A
    BYE = 0x0B
    AUTH = 0x0C


#: requests that change the chip's state: subject to the sequence/replay rules (docs/hil-protocol.md,
#: "Sequence numbers and replay"): executed once per sequence number, a retry with the same
#: number and the same request gets the kept reply, another request with a used number gets
#: SEQ_REUSED
MUTATING = frozenset({Opcode.FORM, Opcode.PROGRAM, Opcode.MVM, Opcode.TIME, Opcode.RESET})
#: asynchronous requests: progress frames, then a final reply; ABORT stops them
LONG = frozenset({Opcode.FORM, Opcode.PROGRAM})
#: requests that must carry an empty payload (else BAD_LENGTH)
EMPTY = frozenset({Opcode.INFO, Opcode.RESET, Opcode.STATS, Opcode.BYE})
#: nonzero sequence numbers: the ring the serial-number arithmetic runs on (0 is never used)
SEQ_RING = 0xFFFFFFFF
#: sequence numbers a state-changing request may be behind the highest executed one and still
#: be judged (the anti-replay window: last_seq - 63 .. last_seq)
REPLAY_WINDOW = 64


class Status(IntEnum):
    OK = 0
    BAD_CRC = 1  # header check or payload CRC-32 wrong; the request was not executed
    BAD_LENGTH = 2  # length above max_payload, or a payload size that does not fit the opcode
    UNKNOWN_OPCODE = 3
    OUT_OF_RANGE = 4  # tile, rows, columns, batch, planes or a value outside what the chip has
    BUSY = 5  # a long operation runs on this session, or the server is full; retry later
    ABORTED = 6  # the long operation was aborted; nothing of it was applied
    BAD_VERSION = 7  # no common protocol version / a frame of a version not negotiated
    BAD_SESSION = 8  # no HELLO yet on this connection, or an unknown session id
    STALE = 9  # a retry of a request applied long ago whose reply is no longer held
    BAD_REQUEST = 10  # a malformed field (e.g. a reserved byte not 0, a bad name)
    INTERNAL = 11  # the server failed; the request was not applied
    SEQ_REUSED = 12  # a sequence number already used by another request; not executed
    BAD_AUTH = 13  # the session is not authenticated, or AUTH's HMAC is wrong


class Flag(IntFlag):
    NONE = 0
    REPLY = 0x01  # set on every frame the server sends
    PROGRESS = 0x02  # an intermediate report of a long operation (not its final reply)
    EXACT = 0x04  # MVM: read without read noise (emulator capability CAP_EXACT)
    RETRY = 0x08  # informational: this request is a retransmission (same sequence number)


def request_digest(opcode: int, flags: int, payload: bytes) -> bytes:
    """SHA-256 of what makes a request this request: ``u8 opcode, u8 flags without RETRY,
    payload`` (a retransmission has the same digest; another request with the same sequence
    number has another)."""
    return hashlib.sha256(bytes([int(opcode) & 0xFF, int(flags) & ~int(Flag.RETRY) & 0xFF]) + bytes(payload)).digest()


STATUS_TEXT = {
    Status.OK: "ok",
    Status.BAD_CRC: "bad CRC",
    Status.BAD_LENGTH: "bad length",
    Status.UNKNOWN_OPCODE: "unknown opcode",
    Status.OUT_OF_RANGE: "out of range",
    Status.BUSY: "busy",
    Status.ABORTED: "aborted",
    Status.BAD_VERSION: "bad version",
    Status.BAD_SESSION: "bad session",
    Status.STALE: "stale",
    Status.BAD_REQUEST: "bad request",
    Status.INTERNAL: "internal error",
    Status.SEQ_REUSED: "sequence number reused",
    Status.BAD_AUTH: "bad authentication",
}


def seq_ahead(seq: int, last: int) -> int:
    """How far ``seq`` is ahead of ``last`` (negative: behind), by serial-number arithmetic
    (RFC 1982) on the ring of the 2^32 - 1 nonzero sequence numbers (a client skips 0 when it
    wraps, so 0xFFFFFFFF is followed by 1). Result in -2^31 .. 2^31 - 1; ``last`` 0 (nothing
    executed yet): every ``seq`` is ahead by ``seq``."""
    if last == 0:
        return int(seq)
    d = (int(seq) - int(last)) % SEQ_RING
    return d if d < 2**31 else d - SEQ_RING


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC as zlib computes it."""
    return zlib.crc32(data) & U32


@dataclass(frozen=True)
class Header:
    """A frame header (see the module doc)."""

    version: int
    opcode: int
    flags: int
    seq: int
    session: int
    length: int
    status: int = 0
    reserved: int = 0

    @property
    def is_reply(self) -> bool:
        return bool(self.flags & Flag.REPLY)

    @property
    def is_progress(self) -> bool:
        return bool(self.flags & Flag.PROGRESS)


@dataclass(frozen=True)
class Frame:
    """A whole, checked frame."""

    header: Header
    payload: bytes

    @property
    def opcode(self) -> int:
        return self.header.opcode

    @property
    def seq(self) -> int:
        return self.header.seq

    @property
    def status(self) -> int:
        return self.header.status

    @property
    def flags(self) -> int:
        return self.header.flags


def encode_frame(
    opcode: int, payload: bytes = b"", *, seq: int, session: int = 0, flags: int = 0, status: int = 0, version: int = VERSION, reserved: int = 0
) -> bytes:
    """The bytes of one frame (header, payload, CRC-32). ``reserved`` is 0 in every valid
    frame (a test may set it to check that a peer refuses it)."""
    payload = bytes(payload)
    for name, value, top in (
        ("seq", seq, U32),
        ("session", session, U32),
        ("opcode", opcode, 0xFF),
        ("flags", flags, 0xFF),
        ("status", status, 0xFF),
        ("version", version, 0xFF),
        ("reserved", reserved, 0xFF),
    ):
        if not 0 <= int(value) <= top:
            raise ValueError(f"frame field {name} = {value} out of range 0..{top}")
    head = HEADER.pack(SYNC, version, int(opcode), int(flags), int(seq), int(session), len(payload), int(status), int(reserved), 0)
    check = crc16(head[:CHECKED])
    head = head[:CHECKED] + struct.pack("<H", check)
    return head + payload + struct.pack("<I", crc32(payload))


def reply_frame(request: Header, status: int, payload: bytes = b"", *, session: int | None = None, progress: bool = False) -> bytes:
    """A reply to ``request``: same opcode, sequence number and version, REPLY flag set."""
    flags = Flag.REPLY | (Flag.PROGRESS if progress else 0)
    return encode_frame(
        request.opcode, payload, seq=request.seq, session=request.session if session is None else session,
        flags=flags, status=status, version=request.version,
    )  # fmt: skip


def parse_header(data: bytes) -> Header | None:
    """The header of ``data[:20]`` if its sync byte and header check are right, else None."""
    if len(data) < HEADER_SIZE or data[0] != SYNC:
        return None
    sync, version, opcode, flags, seq, session, length, status, reserved, check = HEADER.unpack_from(data)
    if crc16(bytes(data[:CHECKED])) != check:
        return None
    return Header(version, opcode, flags, seq, session, length, status, reserved)


# ----------------------------------------------------------------------------- reader events


@dataclass(frozen=True)
class Garbage:
    """``count`` bytes that did not start a frame were skipped (resynchronisation)."""

    count: int


@dataclass(frozen=True)
class BadHeader:
    """A sync byte whose header check failed; the byte was skipped. ``seq`` is the (untrusted)
    sequence number found there, for an error reply."""

    seq: int
    raw: bytes


@dataclass(frozen=True)
class Oversized:
    """A valid header announced more than ``max_payload`` bytes; the header was skipped and
    the reader resynchronises on what follows."""

    header: Header


@dataclass(frozen=True)
class BadPayload:
    """A frame whose payload CRC-32 failed; its header is trusted (length, sequence number)."""

    header: Header


class FrameReader:
    """Sans-IO decoder: :meth:`feed` bytes, get events (see the module doc).

    ``max_payload``: frames announcing more are :class:`Oversized`. The buffer holds at most one
    incomplete frame (``20 + max_payload + 4`` bytes) plus the chunk being fed.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.max_payload = int(max_payload)
        self._buf = bytearray()
        self.garbage_bytes = 0

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete (0: idle, between frames)."""
        return len(self._buf)

    def clear(self) -> None:
        """Drop what is held (a stalled partial frame)."""
        self._buf.clear()

    def feed(self, data: bytes) -> list:
        """Add bytes; return the events they complete, in order."""
        if data:
            self._buf += data
        events: list = []
        buf = self._buf
        while buf:
            if buf[0] != SYNC:
                nxt = buf.find(SYNC)
                skip = len(buf) if nxt < 0 else nxt
                del buf[:skip]
                self.garbage_bytes += skip
                events.append(Garbage(skip))
                continue
            if len(buf) < HEADER_SIZE:
                break
            header = parse_header(buf)
            if header is None:
                seq = int.from_bytes(buf[4:8], "little")
                events.append(BadHeader(seq, bytes(buf[:HEADER_SIZE])))
                del buf[:1]
                self.garbage_bytes += 1
                continue
            if header.length > self.max_payload:
                events.append(Oversized(header))
                del buf[:HEADER_SIZE]
                continue
            total = HEADER_SIZE + header.length + CRC_SIZE
            if len(buf) < total:
                break
            payload = bytes(buf[HEADER_SIZE : HEADER_SIZE + header.length])
            (crc,) = struct.unpack_from("<I", buf, HEADER_SIZE + header.length)
            del buf[:total]
            if crc32(payload) != crc:
                events.append(BadPayload(header))
            else:
                events.append(Frame(header, payload))
        return events
