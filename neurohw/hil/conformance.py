"""``neurohw hil conformance URL``: docs/hil-protocol.md as an executable suite.

Every normative rule of the protocol document is one named case ``<group>/<rule>`` citing the
section that states it (docs/hil-conformance.md lists them). The suite speaks the protocol with
its own few lines of framing (stdlib ``struct``, ``zlib``, ``binascii``, ``hmac``), written from
the document, and deliberately imports nothing of neurohw's driver or server: it checks the
document, not our reading of it twice.

Safety on a real chip: by default every case is read-mostly (INFO, READ, STATS, MVM reads,
``TIME`` by small amounts, requests that the chip must refuse without executing them), each
case sends a bounded number of frames (a few dozen, at most ~1 MiB in all) and every wait is
bounded by the reply timeout. FORM, PROGRAM and RESET run only with ``destructive=True``, on
one scratch block of the last tile.

Cases are *core* (what any board must do: framing, header checks, HELLO, sessions and replay,
INFO, MVM, BYE, authentication: the board skeleton passes them) or not (READ, TIME, STATS,
ABORT, resume, long operations). Commands behind a HELLO capability bit (TIME, ABORT, STATS,
EXACT reads) are optional: a chip that does not announce one gets ``n/a`` for its cases.

A case is a function registered with ``@case``; most open a session with ``with s.session() as
p`` (BYE on the way out) and state each rule as one ``p.check(opcode, status, what, payload,
**header)``. A rule that is one refused request is one ``refusal(...)`` line, a header-field rule
one ``header_rule(...)`` line. The ``Info`` layout here repeats neurohw.hil.messages.ChipInfo's
fields on purpose: this client is written from the document alone.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from neurohw.errors import UserError
from neurohw.hil.address import HilAddress, parse_address
from neurohw.hil.errors import HilError

# ---------------------------------------------------------------- the document's numbers
SYNC = 0xA5
VERSION = 1
HEAD = struct.Struct("<BBBBIIIBBH")  # sync version opcode flags seq session length status reserved check
HELLO_REQ = struct.Struct("<BBHIQH")  # min max reserved resume chip_seed n
HELLO_REP = struct.Struct("<BBHIIII")  # version resumed reserved session max_payload caps last_seq
INFO_FIXED = struct.Struct("<HHHBBBBdddddQI")  # 62 bytes (see §INFO)
BLOCK = struct.Struct("<HHHHH")
MVM_HEAD = struct.Struct("<HBB")
MVM_REP = struct.Struct("<HBBH")
HELLO, INFO, FORM, PROGRAM, READ, MVM, TIME, RESET, ABORT, STATS, BYE, AUTH = range(1, 13)
NAMES = {1: "HELLO", 2: "INFO", 3: "FORM", 4: "PROGRAM", 5: "READ", 6: "MVM", 7: "TIME", 8: "RESET", 9: "ABORT", 10: "STATS", 11: "BYE", 12: "AUTH"}
F_REPLY, F_PROGRESS, F_EXACT, F_RETRY = 0x01, 0x02, 0x04, 0x08
CAP_EXACT, CAP_TIME, CAP_ABORT, CAP_STATS, CAP_AUTH = 0x1, 0x2, 0x4, 0x8, 0x10
OK, BAD_CRC, BAD_LENGTH, UNKNOWN_OPCODE, OUT_OF_RANGE, BUSY, ABORTED, BAD_VERSION, BAD_SESSION, STALE, BAD_REQUEST, INTERNAL, SEQ_REUSED, BAD_AUTH = range(14)
STATUS = (
    "OK",
    "BAD_CRC",
    "BAD_LENGTH",
    "UNKNOWN_OPCODE",
    "OUT_OF_RANGE",
    "BUSY",
    "ABORTED",
    "BAD_VERSION",
    "BAD_SESSION",
    "STALE",
    "BAD_REQUEST",
    "INTERNAL",
    "SEQ_REUSED",
    "BAD_AUTH",
)
AUTH_LABEL = b"neurohw-hil-auth-v1"
#: the anti-replay window of §Sessions (sequence numbers last_seq-63 .. last_seq)
WINDOW = 64
#: ``--verbose`` shows every frame on this logger (DEBUG)
FRAMES = logging.getLogger("neurohw.hil.frames")


def status_name(code: int) -> str:
    return STATUS[code] if 0 <= code < len(STATUS) else f"status {code}"


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (§Frames)."""
    return binascii.crc_hqx(data, 0xFFFF)


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    seq: int,
    session: int = 0,
    flags: int = 0,
    version: int = VERSION,
    status: int = 0,
    reserved: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame as §Frames lays it out; every header byte may be set (to break a rule)."""
    n = len(payload) if length is None else length
    head = HEAD.pack(SYNC, version, opcode, flags, seq, session, n, status, reserved, 0)[:18]
    return head + struct.pack("<H", crc16(head)) + payload + struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF)


@dataclass
class Reply:
    opcode: int
    flags: int
    seq: int
    session: int
    status: int
    reserved: int
    version: int
    payload: bytes

    @property
    def progress(self) -> bool:
        return bool(self.flags & F_PROGRESS)

    def text(self) -> str:
        body = self.payload[2:] if self.status == BAD_VERSION else self.payload
        return body.decode("utf-8", "replace")[:80]

    def describe(self) -> str:
        s = status_name(self.status)
        return f"{s} ({self.text()!r})" if self.status != OK and self.payload else s


class Fail(Exception):
    """The chip broke the case's rule; the message is what was seen."""


class NotApplicable(Exception):
    """The case does not apply to this chip or link (an optional capability, a serial link)."""


class Link:
    """Bytes to and from the chip: a TCP connection or a serial port (pyserial)."""

    def __init__(self, address: HilAddress, timeout: float):
        self.address = address
        self.timeout = timeout
        self.serial = address.kind == "serial"
        self._sock = None
        self._port = None
        self.sent = 0
        self.open()

    def open(self) -> None:
        if self.serial:
            import serial

            try:
                self._port = serial.serial_for_url(self.address.serial_port, baudrate=self.address.baud, timeout=0.05)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise HilError(f"{self.address}: cannot open the serial port ({exc})") from None
        else:
            try:
                self._sock = socket.create_connection((self.address.host, self.address.port), timeout=self.timeout)
            except OSError as exc:
                raise HilError(f"{self.address}: cannot connect ({exc.strerror or exc}); is the server running?") from None

    def send(self, data: bytes) -> None:
        self.sent += len(data)
        try:
            if self.serial:
                self._port.write(data)
                self._port.flush()
            else:
                self._sock.sendall(data)
        except OSError as exc:
            raise Fail(f"the link closed while sending ({exc})") from None

    def recv(self, wait: float) -> bytes | None:
        """Up to 64 KiB within ``wait`` seconds: b"" on nothing, None when the peer closed."""
        if self.serial:
            deadline = time.monotonic() + wait
            while True:
                try:
                    data = self._port.read(self._port.in_waiting or 1)
                except Exception:  # pyserial raises its own types for a vanished port
                    return None
                if data or time.monotonic() >= deadline:
                    return data
        self._sock.settimeout(max(0.001, wait))
        try:
            data = self._sock.recv(1 << 16)
        except (TimeoutError, socket.timeout):
            return b""
        except OSError:
            return None
        return data if data else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Peer:
    """A conversation with the chip over one link: frames out, replies in (resynchronising on
    anything that is not a good frame, as §Reading a byte stream says both sides do)."""

    def __init__(self, suite: "Suite", link: Link | None = None):
        self.suite = suite
        self.link = link or suite.new_link()
        self.buf = bytearray()
        self.session = 0
        self.seq = 0
        self.closed = False
        self.held: list[Reply] = []
        self.hello_reply: bytes = b""
        self.caps = 0

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFFFFFF + 1
        return self.seq

    def send(self, opcode: int, payload: bytes = b"", *, seq: int | None = None, session: int | None = None, **kw) -> int:
        seq = self.next_seq() if seq is None else seq
        FRAMES.debug("-> %s seq %d session %d %s", NAMES.get(opcode, f"opcode 0x{opcode:02x}"), seq, self.session if session is None else session, kw or "")
        self.link.send(frame(opcode, payload, seq=seq, session=self.session if session is None else session, **kw))
        return seq

    def _parse(self) -> Reply | None:
        buf = self.buf
        while buf:
            if buf[0] != SYNC:
                i = buf.find(bytes([SYNC]))
                del buf[: len(buf) if i < 0 else i]
                continue
            if len(buf) < 20:
                return None
            if crc16(bytes(buf[:18])) != struct.unpack_from("<H", buf, 18)[0]:
                self.suite.oddities.append("a reply header failed its CRC-16")
                del buf[:1]
                continue
            _, version, opcode, flags, seq, session, n, status, reserved, _ = HEAD.unpack_from(buf)
            if n > (1 << 26):
                self.suite.oddities.append(f"a reply announced {n} payload bytes")
                del buf[:20]
                continue
            if len(buf) < 24 + n:
                return None
            payload = bytes(buf[20 : 20 + n])
            (crc,) = struct.unpack_from("<I", buf, 20 + n)
            del buf[: 24 + n]
            if zlib.crc32(payload) & 0xFFFFFFFF != crc:
                self.suite.oddities.append(f"the reply to seq {seq} failed its payload CRC-32")
                continue
            FRAMES.debug(
                "<- %s seq %d session %d flags 0x%x %s, %d bytes", NAMES.get(opcode, f"opcode 0x{opcode:02x}"), seq, session, flags, status_name(status), n
            )
            return Reply(opcode, flags, seq, session, status, reserved, version, payload)
        return None

    def next_reply(self, wait: float | None = None) -> Reply | None:
        """The next reply frame within ``wait`` s (None: nothing came; sets ``closed`` when the peer hung up)."""
        deadline = time.monotonic() + (self.suite.timeout if wait is None else wait)
        while True:
            r = self._parse()
            if r is not None:
                return r
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            data = self.link.recv(min(left, 0.25))
            if data is None:
                self.closed = True
                return None
            self.buf += data

    def reply(self, seq: int, opcode: int | None = None, *, progress: bool = False, wait: float | None = None) -> Reply:
        """The reply to ``seq`` (the final one, or the first PROGRESS frame with ``progress``);
        replies to other requests met on the way are held for later."""
        for i, r in enumerate(self.held):
            if r.seq == seq and (progress or not r.progress) and (opcode is None or r.opcode == opcode):
                return self.held.pop(i)
        deadline = time.monotonic() + (self.suite.timeout if wait is None else wait)
        while True:
            r = self.next_reply(max(0.0, deadline - time.monotonic()))
            if r is None:
                what = NAMES.get(opcode, "request") if opcode else "request"
                raise Fail(f"no reply to {what} seq {seq}" + (" (the link closed)" if self.closed else f" within {self.suite.timeout:g} s"))
            self.suite.check_reply_header(r, self)
            if r.seq == seq and (opcode is None or r.opcode == opcode) and (progress or not r.progress):
                return r
            if not r.progress:
                self.held.append(r)

    def ask(self, opcode: int, payload: bytes = b"", **kw) -> Reply:
        return self.reply(self.send(opcode, payload, **kw), opcode)

    def expect(self, r: Reply, status: int, what: str) -> Reply:
        if r.status != status:
            raise Fail(f"{what}: got {r.describe()}, the document says {status_name(status)}")
        return r

    def check(self, opcode: int, want: int, what: str, payload: bytes = b"", **header) -> Reply:
        """Send ``opcode`` with ``payload`` (``header``: the fields :meth:`send` takes) and require
        status ``want`` of its reply (Fail naming ``what`` otherwise)."""
        return self.expect(self.ask(opcode, payload, **header), want, what)

    def silence(self, wait: float) -> list[Reply]:
        """Every reply that arrives within ``wait`` s."""
        out = list(self.held)
        self.held = []
        deadline = time.monotonic() + wait
        while (r := self.next_reply(max(0.0, deadline - time.monotonic()))) is not None:
            out.append(r)
        return out

    def close(self) -> None:
        if not self.link.serial:
            self.link.close()


# ---------------------------------------------------------------- payloads


def hello_payload(lo: int = 1, hi: int = 1, resume: int = 0, chip_seed: int = 0, name: bytes = b"neurohw-conformance", reserved: int = 0) -> bytes:
    return HELLO_REQ.pack(lo, hi, reserved, resume, chip_seed, len(name)) + name


def block(tile: int, row0: int, nrows: int, col0: int, ncols: int) -> bytes:
    return BLOCK.pack(tile, row0, nrows, col0, ncols)


def bit_row(bits: list[int], nbits: int) -> bytes:
    """One bit row, LSB-first, padded with zero bits to whole bytes (§Commands, bit array)."""
    out = bytearray((nbits + 7) // 8)
    for i in bits:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def mvm_payload(
    blk: tuple, rows: list[list[list[int]]], nonces: list[int] | None = None, *, reserved: int = 0, batch: int | None = None, planes: int | None = None
) -> bytes:
    """MVM request: ``rows[b][p]`` = the active rows (block-relative) of vector b's plane p."""
    B = len(rows) if batch is None else batch
    P = (len(rows[0]) if rows else 1) if planes is None else planes
    nonces = list(range(len(rows))) if nonces is None else nonces
    body = b"".join(struct.pack("<Q", n) for n in nonces)
    body += b"".join(bit_row(p, blk[2]) for v in rows for p in v)
    return block(*blk) + MVM_HEAD.pack(B, P, reserved) + body


@dataclass
class Info:
    tiles: int
    rows: int
    cols: int
    adc_bits: int
    input_bits: int
    max_planes: int
    flags: int
    lsb_us: float
    level_step_us: float
    g_min_us: float
    g_max_us: float
    clock_s: float
    chip_id: int
    max_payload: int
    tile_lsb: list
    name: str
    facts: dict


def parse_info(p: bytes) -> Info:
    """INFO's payload per §INFO; raises Fail on any layout error."""
    if len(p) < INFO_FIXED.size:
        raise Fail(f"INFO payload {len(p)} bytes, shorter than its 62-byte fixed part")
    v = INFO_FIXED.unpack_from(p)
    tiles = v[0]
    off = INFO_FIXED.size
    need = off + 8 * tiles + 2
    if len(p) < need:
        raise Fail(f"INFO payload {len(p)} bytes: too short for {tiles} per-tile LSBs")
    tile_lsb = list(struct.unpack_from(f"<{tiles}d", p, off))
    off += 8 * tiles
    (n,) = struct.unpack_from("<H", p, off)
    off += 2
    if len(p) < off + n + 4:
        raise Fail("INFO payload too short for its chip name and facts length")
    try:
        name = p[off : off + n].decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("INFO chip name is not UTF-8") from None
    off += n
    (m,) = struct.unpack_from("<I", p, off)
    off += 4
    if len(p) != off + m:
        raise Fail(f"INFO payload is {len(p)} bytes; its layout says {off + m}")
    try:
        facts = json.loads(p[off:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Fail("INFO device facts are not UTF-8 JSON") from None
    if not isinstance(facts, dict):
        raise Fail("INFO device facts are not a JSON object")
    return Info(*v, tile_lsb, name, facts)


def read_key() -> bytes | None:
    """The pre-shared key as the driver takes it: NEUROHW_HIL_KEY (UTF-8 bytes of its value)
    or the bytes of the file NEUROHW_HIL_KEY_FILE names (a trailing newline stripped)."""
    value = os.environ.get("NEUROHW_HIL_KEY")
    path = os.environ.get("NEUROHW_HIL_KEY_FILE")
    if value is not None:
        key = value.encode("utf-8")
        where = "NEUROHW_HIL_KEY"
    elif path:
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise UserError(f"NEUROHW_HIL_KEY_FILE={path}: cannot read it ({exc.strerror or exc})") from None
        key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
        where = f"NEUROHW_HIL_KEY_FILE={path}"
    else:
        return None
    if not key:
        raise UserError(f"{where}: the key is empty; give the board's pre-shared key")
    return key


def auth_mac(key: bytes, challenge: bytes, session: int) -> bytes:
    """HMAC-SHA256(key, "neurohw-hil-auth-v1" + challenge + u32 session) (§Authentication)."""
    return hmac.new(key, AUTH_LABEL + challenge + struct.pack("<I", session), hashlib.sha256).digest()


# ---------------------------------------------------------------- the suite


@dataclass
class Case:
    name: str
    section: str
    fn: object
    core: bool = False
    destructive: bool = False
    tcp_only: bool = False
    cap: int = 0


@dataclass
class Result:
    name: str
    section: str
    outcome: str  # pass, FAIL, n/a, skipped
    seen: str
    core: bool

    def as_dict(self) -> dict:
        return {"case": self.name, "section": self.section, "outcome": self.outcome, "seen": self.seen, "core": self.core}


CASES: list[Case] = []


def case(name: str, section: str, **kw):
    def add(fn):
        CASES.append(Case(name, section, fn, **kw))
        return fn

    return add


@dataclass
class Suite:
    address: HilAddress
    timeout: float = 5.0
    key: bytes | None = None
    destructive: bool = False
    core_only: bool = False
    log: object = None
    oddities: list = field(default_factory=list)
    caps: int = 0
    max_payload: int = 0
    info: Info | None = None
    _serial_link: Link | None = None

    # -- links and sessions
    def new_link(self) -> Link:
        if self.address.kind == "serial":
            if self._serial_link is None:
                self._serial_link = Link(self.address, self.timeout)
            return self._serial_link
        return Link(self.address, self.timeout)

    def check_reply_header(self, r: Reply, peer: Peer) -> None:
        """§Frames: every frame the chip sends has the REPLY flag, version 1 and reserved 0."""
        if not r.flags & F_REPLY:
            raise Fail(f"a reply to seq {r.seq} lacks the REPLY flag")
        if r.reserved != 0:
            raise Fail(f"a reply to seq {r.seq} has reserved byte {r.reserved}")
        if r.version != VERSION and r.status != BAD_VERSION:
            raise Fail(f"a reply to seq {r.seq} has version byte {r.version}")

    def hello(self, peer: Peer, *, auth: bool = True, seq: int | None = None, payload: bytes | None = None, reply: Reply | None = None) -> Reply:
        """HELLO (or its ``reply`` already received) and, when the chip asks for it, AUTH."""
        r = reply or peer.ask(HELLO, hello_payload() if payload is None else payload, seq=seq, session=0)
        peer.expect(r, OK, "HELLO")
        if len(r.payload) < HELLO_REP.size:
            raise Fail(f"HELLO reply payload {len(r.payload)} bytes, the document says 20 (52 with a challenge)")
        version, resumed, _, session, max_payload, caps, last_seq = HELLO_REP.unpack_from(r.payload)
        peer.session, peer.caps, peer.hello_reply = session, caps, r.payload
        if auth and caps & CAP_AUTH:
            if self.key is None:
                raise UserError("the server requires a key: set NEUROHW_HIL_KEY or NEUROHW_HIL_KEY_FILE")
            peer.check(AUTH, OK, "AUTH with the key", auth_mac(self.key, r.payload[20:52], session))
        return r

    def open(self, *, auth: bool = True) -> Peer:
        """A new session (a fresh connection on TCP). A full server answers HELLO with BUSY
        (§Session lifecycle): wait it out as the driver does, 0.1 s doubling to 2 s, for at most
        the URL's ``busy_wait`` seconds (default 60)."""
        deadline = time.monotonic() + self.address.busy_wait_s
        pause = 0.1
        while True:
            peer = Peer(self)
            r = peer.ask(HELLO, hello_payload(), session=0)
            if r.status != BUSY or time.monotonic() + pause > deadline:
                break
            peer.close()
            time.sleep(pause)
            pause = min(2.0, 2 * pause)
        self.hello(peer, auth=auth, reply=r)
        return peer

    @contextmanager
    def session(self, peer: Peer | None = None) -> Iterator[Peer]:
        """``peer`` (by default a new session, :meth:`open`), said BYE to on the way out,
        whatever happens inside."""
        peer = self.open() if peer is None else peer
        try:
            yield peer
        finally:
            self.bye(peer)

    def bye(self, peer: Peer) -> None:
        if peer.closed:
            return
        try:
            seq = peer.send(BYE)
            peer.reply(seq, BYE)
        except Fail:
            pass
        peer.close()

    # -- running
    def prepare(self) -> None:
        peer = self.open()
        try:
            self.caps = peer.caps
            self.max_payload = HELLO_REP.unpack_from(peer.hello_reply)[4]
            r = peer.check(INFO, OK, "INFO")
            self.info = parse_info(r.payload)
        finally:
            self.bye(peer)

    def skip_reason(self, c: Case) -> tuple[str, str] | None:
        if self.core_only and not c.core:
            return "skipped", "not a core case (--core)"
        if c.destructive and not self.destructive:
            return "skipped", "changes the chip: run with --destructive"
        if c.tcp_only and self.address.kind == "serial":
            return "n/a", "needs a second connection (TCP)"
        if c.cap and not self.caps & c.cap:
            names = {CAP_EXACT: "EXACT", CAP_TIME: "TIME", CAP_ABORT: "ABORT", CAP_STATS: "STATS", CAP_AUTH: "AUTH_REQUIRED"}
            return "n/a", f"capability {names[c.cap]} not announced in HELLO"
        return None

    def run(self, only: list[str] | None = None) -> list[Result]:
        self.prepare()
        results = []
        for c in CASES:
            if only and not any(c.name == o or c.name.startswith(o.rstrip("/") + "/") for o in only):
                continue
            skip = self.skip_reason(c)
            if skip:
                results.append(Result(c.name, c.section, skip[0], skip[1], c.core))
                continue
            self.oddities = []
            try:
                seen = c.fn(self) or ""
                outcome = "pass"
                if self.oddities:
                    outcome, seen = "FAIL", "; ".join(self.oddities)
            except NotApplicable as exc:
                outcome, seen = "n/a", str(exc)
            except Fail as exc:
                outcome, seen = "FAIL", str(exc)
            results.append(Result(c.name, c.section, outcome, seen, c.core))
            if self.log:
                self.log(f"{c.name}: {outcome} {seen}")
        if self._serial_link is not None:
            port = self._serial_link._port
            if port is not None:
                port.close()
        return results

    # -- helpers the cases share
    @property
    def pairs(self) -> int:
        return self.info.cols // 2

    def small_block(self, nrows: int = 10, ncols: int = 4, tile: int = 0) -> tuple:
        return (tile, 0, min(nrows, self.info.rows), 0, min(ncols, self.pairs))

    def exact_flag(self) -> int:
        return F_EXACT if self.caps & CAP_EXACT else 0

    def stats(self, peer: Peer) -> dict:
        r = peer.check(STATS, OK, "STATS")
        try:
            out = json.loads(r.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Fail("STATS payload is not UTF-8 JSON") from None
        if not isinstance(out, dict):
            raise Fail("STATS payload is not a JSON object")
        return out


def _mvm_ok(peer: Peer, blk: tuple, rows, seq: int | None = None, nonces=None, flags: int = 0) -> Reply:
    seq = peer.next_seq() if seq is None else seq
    return peer.check(MVM, OK, f"MVM seq {seq}", mvm_payload(blk, rows, nonces), seq=seq, flags=flags)


def _refused(s: Suite, opcode: int, payload: bytes, want: int, what: str) -> str:
    """In a session of its own, ``opcode`` with ``payload`` gets ``want``; seen: its name."""
    with s.session() as p:
        p.check(opcode, want, what, payload)
        return status_name(want)


def refusal(name: str, section: str, opcode: int, want: int, what: str, payload: Callable[[Suite], bytes] = lambda s: b"", **kw) -> None:
    """A case whose rule is one request the chip refuses (:func:`_refused`); ``payload(suite)``
    is built before the session opens. ``kw`` as :func:`case` takes them."""
    case(name, section, **kw)(lambda s: _refused(s, opcode, payload(s), want, what))


def _counter(stats: dict, *path: str) -> int | None:
    node = stats
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node if isinstance(node, int) else None


# ---------------------------------------------------------------- cases: framing

S_FRAMES = "Frames"
S_STREAM = "Reading a byte stream"
S_STATUS = "Status"
S_HEADER = "Header checks"
S_LIFE = "Session lifecycle"
S_REPLAY = "Sequence numbers and replay"
S_LONG = "Long operations"
S_CMDS = "Commands"
S_AUTH = "Authentication"


@case("frames/header-crc", S_STREAM, core=True)
def _header_crc(s: Suite) -> str:
    with s.session() as p:
        bad = bytearray(frame(INFO, seq=p.next_seq(), session=p.session))
        bad[18] ^= 0xFF
        p.link.send(bytes(bad))
        p.check(INFO, OK, "INFO after a frame with a bad header check")
        others = [x for x in p.held if x.seq == p.seq - 1]
        if others and others[0].status != BAD_CRC:
            raise Fail(f"the bad header got {others[0].describe()}; only BAD_CRC (or nothing) is allowed")
        return "bad header dropped, next frame served" + (" (BAD_CRC)" if others else "")


@case("frames/payload-crc", S_STREAM, core=True)
def _payload_crc(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        good = frame(MVM, mvm_payload(blk, [[[0, 1]]]), seq=p.next_seq(), session=p.session)
        bad = bytearray(good)
        bad[-1] ^= 0x5A
        p.link.send(bytes(bad))
        r = p.expect(p.reply(p.seq, MVM), BAD_CRC, "MVM with a wrong payload CRC-32")
        p.link.send(good)  # the same seq again, now intact: executed (the bad one was not)
        r2 = p.expect(p.reply(p.seq, MVM), OK, "the same MVM resent intact")
        return f"BAD_CRC echoing seq {r.seq}, then OK ({len(r2.payload)} bytes)"


@case("frames/resync-garbage", S_STREAM, core=True)
def _garbage(s: Suite) -> str:
    with s.session() as p:
        junk = bytes((i * 37 + 11) % 256 for i in range(300)) + b"\xa5\xa5\x00\xa5"
        p.link.send(junk)
        p.check(INFO, OK, "INFO after 304 garbage bytes (with sync bytes among them)")
        return "INFO served after 304 garbage bytes"


@case("frames/oversized", S_STREAM, core=True)
def _oversized(s: Suite) -> str:
    with s.session() as p:
        big = s.max_payload + 1
        head = frame(READ, b"", seq=p.next_seq(), session=p.session, length=big)[:20]
        bad_seq = p.seq
        follow = frame(INFO, seq=p.next_seq(), session=p.session)
        p.link.send(head + follow)  # the header is trusted and dropped; resync on what follows
        p.expect(p.reply(bad_seq, READ), BAD_LENGTH, f"a header announcing {big} bytes (max_payload {s.max_payload})")
        p.expect(p.reply(p.seq, INFO), OK, "the INFO right behind the oversized header")
        return f"BAD_LENGTH for length {big}, the frame behind it served"


@case("frames/byte-by-byte", S_STREAM, core=True)
def _trickle(s: Suite) -> str:
    with s.session() as p:
        data = frame(INFO, seq=p.next_seq(), session=p.session)
        for i in range(0, len(data), 3):
            p.link.send(data[i : i + 3])
            time.sleep(0.01)
        p.expect(p.reply(p.seq, INFO), OK, "INFO sent in 3-byte pieces")
        return "a frame in 3-byte pieces is served"


# ---------------------------------------------------------------- cases: header checks


@case("header/version", S_HEADER, core=True)
def _version(s: Suite) -> str:
    with s.session() as p:
        r = p.check(INFO, BAD_VERSION, "INFO with version byte 2", version=2)
        if len(r.payload) < 2 or not r.payload[0] <= 1 <= r.payload[1]:
            raise Fail(f"BAD_VERSION payload {r.payload[:2].hex()} does not name a range holding 1")
        q = Peer(s) if not p.link.serial else p
        q.check(HELLO, BAD_VERSION, "HELLO with version byte 2", hello_payload(), session=0, version=2)
        if q is not p:
            q.close()
        return f"BAD_VERSION, range {r.payload[0]}..{r.payload[1]}"


def _header_rule(s: Suite, what: str, want: int, header: dict) -> str:
    with s.session() as p:
        p.check(INFO, want, what, **header)
        p.check(INFO, OK, f"INFO after {what}")
        return f"{status_name(want)}, session still served"


def header_rule(name: str, what: str, want: int, **header) -> None:
    """A core case of §Header checks: INFO with the ``header`` fields set gets ``want`` (``what``
    names the request), and the session still serves a plain INFO after it."""
    case(name, S_HEADER, core=True)(lambda s: _header_rule(s, what, want, header))


header_rule("header/reply-flag", "a request with the REPLY flag", BAD_REQUEST, flags=F_REPLY)
header_rule("header/progress-flag", "a request with the PROGRESS flag", BAD_REQUEST, flags=F_PROGRESS)
header_rule("header/status-byte", "a request with status byte 3", BAD_REQUEST, status=3)
header_rule("header/reserved-byte", "a request with reserved byte 1", BAD_REQUEST, reserved=1)
header_rule("header/unknown-flags", "INFO with unknown flag bits 0xF0 and RETRY", OK, flags=0xF0 | F_RETRY)


@case("header/seq-zero", S_HEADER, core=True)
def _seq_zero(s: Suite) -> str:
    with closing(Peer(s)) as q:
        q.check(HELLO, BAD_REQUEST, "HELLO with seq 0", hello_payload(), seq=0, session=0)
    with s.session() as p:
        p.check(INFO, BAD_REQUEST, "INFO with seq 0", seq=0)
        p.check(MVM, BAD_REQUEST, "MVM with seq 0", mvm_payload(s.small_block(), [[[0]]]), seq=0)
        return "HELLO, INFO and MVM with seq 0: BAD_REQUEST"


@case("header/empty-payloads", S_HEADER, core=True)
def _empty_payloads(s: Suite) -> str:
    with s.session() as p:
        ops = [INFO, BYE] + ([STATS] if s.caps & CAP_STATS else [])
        for op in ops:
            p.check(op, BAD_LENGTH, f"{NAMES[op]} with a 1-byte payload", b"\x00")
        p.check(INFO, OK, "INFO after BYE with a payload (the session must still be open)")
        return ", ".join(NAMES[o] for o in ops) + " with a payload: BAD_LENGTH"


refusal("header/unknown-opcode", S_STATUS, 0x7E, UNKNOWN_OPCODE, "opcode 0x7E", core=True)


@case("header/wrong-session", S_HEADER, core=True)
def _wrong_session(s: Suite) -> str:
    tcp = s.address.kind == "tcp"
    if tcp:
        with closing(Peer(s)) as q:
            q.check(INFO, BAD_SESSION, "INFO before any HELLO", session=0)
    with s.session() as p:
        p.check(INFO, BAD_SESSION, "INFO naming another session", session=p.session ^ 0x5A5A5A5A)
        return "BAD_SESSION" + (" (also before HELLO)" if tcp else "")


# ---------------------------------------------------------------- cases: HELLO and sessions


@case("hello/layout", S_CMDS, core=True)
def _hello_layout(s: Suite) -> str:
    with s.session(Peer(s)) as p:
        r = s.hello(p)
        version, resumed, reserved, session, max_payload, caps, last_seq = HELLO_REP.unpack_from(r.payload)
        want = 52 if caps & CAP_AUTH else 20
        problems = [
            (len(r.payload) == want, f"payload {len(r.payload)} bytes, want {want}"),
            (version == 1, f"version {version}"),
            (resumed == 0, f"resumed {resumed} on a new session"),
            (reserved == 0, f"reserved {reserved}"),
            (session != 0, "session id 0"),
            (last_seq == 0, f"last_seq {last_seq} on a new session"),
            (max_payload >= 20 + INFO_FIXED.size, f"max_payload {max_payload}"),
            (r.session in (0, session), f"reply frame's session field {r.session}"),
        ]
        bad = [t for ok, t in problems if not ok]
        if bad:
            raise Fail("HELLO reply: " + "; ".join(bad))
        return f"session {session}, max_payload {max_payload}, caps 0x{caps:x}"


@case("hello/version-negotiation", S_CMDS, core=True)
def _negotiation(s: Suite) -> str:
    p = Peer(s)
    try:
        r = s.hello(p, payload=hello_payload(1, 9))
        if r.payload[0] != 1:
            raise Fail(f"HELLO 1..9 picked version {r.payload[0]}; this chip speaks 1")
        s.bye(p)
        p = Peer(s)
        r = p.check(HELLO, BAD_VERSION, "HELLO offering only 2..3", hello_payload(2, 3), session=0)
        if len(r.payload) < 2 or not r.payload[0] <= 1 <= r.payload[1]:
            raise Fail(f"BAD_VERSION payload {r.payload[:2].hex()} does not name the chip's range")
        return f"1..9 -> 1; 2..3 -> BAD_VERSION (chip speaks {r.payload[0]}..{r.payload[1]})"
    finally:
        s.bye(p)


@case("sessions/hello-repeated", S_LIFE, core=True)
def _hello_repeat(s: Suite) -> str:
    with s.session(Peer(s)) as p:
        first = s.hello(p, auth=False, seq=1)
        again = p.ask(HELLO, hello_payload(), seq=1, session=0)
        if again.status != OK or again.payload[:20] != first.payload[:20]:
            raise Fail(f"the repeated HELLO got {again.describe()} {again.payload[:20].hex()}, not the first reply")
        if p.caps & CAP_AUTH:
            p.check(AUTH, OK, "AUTH", auth_mac(s.key, first.payload[20:52], p.session))
        p.check(INFO, OK, "INFO after the repeated HELLO")
        return "same reply, same session"


@case("sessions/second-hello", S_LIFE, core=True)
def _second_hello(s: Suite) -> str:
    with s.session() as p:
        held = p.session
        p.check(HELLO, BAD_REQUEST, "a second, different HELLO on a connection holding a session", hello_payload(name=b"other"), session=0)
        p.check(INFO, OK, "INFO on the first session after the refused HELLO", session=held)
        return "BAD_REQUEST, the open session untouched"


@case("sessions/bye", S_LIFE, core=True)
def _bye(s: Suite) -> str:
    p = s.open()
    sid = p.session
    r = p.check(BYE, OK, "BYE")
    if r.payload:
        raise Fail(f"BYE's reply has a {len(r.payload)}-byte payload; the document says empty")
    p.check(INFO, BAD_SESSION, "INFO on the session BYE ended", session=sid)
    p.close()
    return "OK (empty), then BAD_SESSION for its id"


@case("sessions/hello-after-bye", S_LIFE, core=True)
def _hello_after_bye(s: Suite) -> str:
    with s.session(Peer(s)) as p:
        first = s.hello(p, seq=1)
        old = HELLO_REP.unpack_from(first.payload)[3]
        p.check(BYE, OK, "BYE")
        again = s.hello(p, seq=1)  # seq 1 again, same connection: a NEW session
        new = HELLO_REP.unpack_from(again.payload)[3]
        if new == old:
            raise Fail(f"HELLO after BYE returned the ended session {old}")
        p.check(INFO, OK, "INFO on the new session")
        q = Peer(s) if not p.link.serial else p
        if q is not p:
            r = q.ask(HELLO, hello_payload(resume=old), session=0)
        else:
            s.bye(p)
            r = p.ask(HELLO, hello_payload(resume=old), seq=7, session=0)
        q.expect(r, BAD_SESSION, f"HELLO resume={old} (a session BYE ended)")
        if q is not p:
            q.close()
        return f"session {old} ended, {new} opened; resume of {old}: BAD_SESSION"


@case("sessions/resume", S_LIFE, tcp_only=True)
def _resume(s: Suite) -> str:
    p = s.open()
    blk = s.small_block()
    for _ in range(3):
        _mvm_ok(p, blk, [[[0]]])
    sid, top = p.session, p.seq
    p.close()
    with s.session(Peer(s)) as q:
        r = s.hello(q, payload=hello_payload(resume=sid))
        version, resumed, _, session, _, _, last_seq = HELLO_REP.unpack_from(r.payload)
        if (resumed, session, last_seq) != (1, sid, top):
            raise Fail(f"resume gave resumed={resumed}, session={session}, last_seq={last_seq}; want 1, {sid}, {top}")
        q.seq = last_seq
        _mvm_ok(q, blk, [[[1]]])
        return f"resumed with last_seq {top}; the next seq executes"


# ---------------------------------------------------------------- cases: replay


@case("replay/identical", S_REPLAY, core=True)
def _replay_identical(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        before = s.stats(p) if s.caps & CAP_STATS else None
        seq = p.next_seq()
        a = _mvm_ok(p, blk, [[[0, 2, 5]]], seq=seq, nonces=[11])
        b = _mvm_ok(p, blk, [[[0, 2, 5]]], seq=seq, nonces=[11], flags=F_RETRY)
        if a.payload != b.payload:
            raise Fail("the identical retry got a different reply (executed again?)")
        seen = "the kept reply, byte for byte"
        if before is not None:
            after = s.stats(p)
            d_exec = (_counter(after, "executed", "MVM") or 0) - (_counter(before, "executed", "MVM") or 0)
            d_rep = (_counter(after, "replayed") or 0) - (_counter(before, "replayed") or 0)
            if _counter(after, "replayed") is not None and (d_exec, d_rep) != (1, 1):
                raise Fail(f"STATS: executed.MVM +{d_exec}, replayed +{d_rep}; want +1 and +1")
            seen += "; STATS executed +1, replayed +1"
        return seen


@case("replay/seq-reused", S_REPLAY, core=True)
def _replay_reused(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        seq = p.next_seq()
        a = _mvm_ok(p, blk, [[[0, 1]]], seq=seq, nonces=[3])
        p.check(MVM, SEQ_REUSED, f"MVM seq {seq} again with another input", mvm_payload(blk, [[[4, 7, 8]]], [3]), seq=seq)
        again = _mvm_ok(p, blk, [[[0, 1]]], seq=seq, nonces=[3])
        if again.payload != a.payload:
            raise Fail("after SEQ_REUSED, the original request no longer gets its kept reply")
        return "SEQ_REUSED; the original still gets its kept reply"


@case("replay/behind-window", S_REPLAY, core=True)
def _behind(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        _mvm_ok(p, blk, [[[0]]], seq=1)
        top = 1 + WINDOW + 10
        _mvm_ok(p, blk, [[[0]]], seq=top)
        p.check(MVM, STALE, f"a retry of seq 1 after last_seq {top} (executed, behind the window)", mvm_payload(blk, [[[0]]]), seq=1)
        p.check(MVM, STALE, f"seq 5 never sent, behind the window of last_seq {top}", mvm_payload(blk, [[[1]]]), seq=5)
        return f"last_seq {top}: seqs 1 (executed) and 5 (never sent): STALE"


@case("replay/in-window-unseen", S_REPLAY, core=True)
def _in_window(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        _mvm_ok(p, blk, [[[0]]], seq=40)
        r = _mvm_ok(p, blk, [[[1]]], seq=20)  # inside 40-63..40, never executed: executed now
        _mvm_ok(p, blk, [[[1]]], seq=20)  # and a retry of it is a replay, not a reuse
        return f"seq 20 after 40 executed ({len(r.payload)} bytes)"


@case("replay/read-only-any-seq", S_REPLAY, core=True)
def _read_only(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block()
        _mvm_ok(p, blk, [[[0]]], seq=100)
        p.check(INFO, OK, "INFO with seq 3 (behind the window)", seq=3)
        p.check(INFO, OK, "INFO with seq 5100 (far ahead)", seq=100 + 5000)
        p.check(INFO, OK, "INFO repeating seq 5100", seq=100 + 5000)
        _mvm_ok(p, blk, [[[2]]], seq=90)  # INFO did not move last_seq: 90 is still in the window
        return "INFO answered at any seq; the window did not move"


@case("replay/wrap", S_REPLAY, core=True)
def _wrap(s: Suite) -> str:
    p = s.open()
    try:
        blk = s.small_block()
        _mvm_ok(p, blk, [[[0]]], seq=0xFFFFFFFE)
        _mvm_ok(p, blk, [[[1]]], seq=2)  # 0xFFFFFFFE -> 0xFFFFFFFF -> (0 skipped) 1 -> 2: ahead
        _mvm_ok(p, blk, [[[0]]], seq=0xFFFFFFFE)  # still inside the window after the wrap: its kept reply
        far = (2 + (1 << 31) + 5) & 0xFFFFFFFF
        p.check(MVM, STALE, f"seq {far}, 2^31+5 ahead of last_seq 2 (so behind)", mvm_payload(blk, [[[3]]]), seq=far)
        s.bye(p)
        p = s.open()
        _mvm_ok(p, blk, [[[0]]], seq=0xFFFFFFC0)
        _mvm_ok(p, blk, [[[1]]], seq=1)  # 64 ahead on the ring of nonzero seqs
        what = "seq 0xFFFFFFC1 after last_seq 1: 63 behind on the ring of 2^32 - 1 nonzero seqs (inside the window, never executed)"
        p.check(MVM, OK, what, mvm_payload(blk, [[[2]]]), seq=0xFFFFFFC1)
        return "serial-number arithmetic on the ring of nonzero seqs (0xFFFFFFFF -> 1)"
    finally:
        s.bye(p)


# ---------------------------------------------------------------- cases: INFO


@case("info/layout", "INFO", core=True)
def _info_layout(s: Suite) -> str:
    i = s.info
    bad = [
        (i.tiles >= 1, f"tiles {i.tiles}"),
        (i.rows >= 1, f"rows {i.rows}"),
        (i.cols >= 2 and i.cols % 2 == 0, f"cols {i.cols} (must be even: pairs)"),
        (i.max_planes >= 1, f"max_planes {i.max_planes}"),
        (i.adc_bits == 0 or (math.isfinite(i.lsb_us) and i.lsb_us > 0), f"lsb_us {i.lsb_us}"),
        (all(math.isfinite(x) and x > 0 for x in i.tile_lsb) or i.adc_bits == 0, f"per-tile LSB {i.tile_lsb[:4]}"),
        (math.isfinite(i.g_min_us) and math.isfinite(i.g_max_us) and i.g_min_us <= i.g_max_us, f"window {i.g_min_us}..{i.g_max_us}"),
        (math.isfinite(i.clock_s) and i.clock_s >= 0, f"clock {i.clock_s}"),
        (i.level_step_us >= 0, f"level_step_us {i.level_step_us}"),
    ]
    problems = [t for ok, t in bad if not ok]
    if problems:
        raise Fail("INFO: " + "; ".join(problems))
    return f"{i.tiles} x {i.rows} x {i.cols}, ADC {i.adc_bits} bits, {len(i.facts)} facts, name {i.name!r}"


@case("info/limits", "INFO", core=True)
def _info_limits(s: Suite) -> str:
    i = s.info
    if i.max_payload != s.max_payload:
        raise Fail(f"INFO max_payload {i.max_payload} differs from HELLO's {s.max_payload}")
    pairs = [((i.flags & 0x10) != 0, (s.caps & CAP_TIME) != 0, "TIME"), ((i.flags & 0x08) != 0, (s.caps & CAP_EXACT) != 0, "EXACT")]
    for flag, cap, name in pairs:
        if flag != cap:
            raise Fail(f"INFO flag {name} is {int(flag)} but HELLO capability {name} is {int(cap)}")
    return f"max_payload {i.max_payload} as in HELLO; TIME/EXACT flags agree with HELLO"


# ---------------------------------------------------------------- cases: MVM


@case("mvm/layout", "MVM", core=True)
def _mvm_layout(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block(10, 4)
        rows = [[[0, 3, 8, 9]], [[1, 2]], [[]]]
        r = _mvm_ok(p, blk, rows, flags=s.exact_flag())
        B, P, kind, n = MVM_REP.unpack_from(r.payload)
        i = s.info
        want_kind = 0 if i.adc_bits else 1
        size = 4 if kind == 0 else 8
        if (B, P, n, kind) != (3, 1, blk[4], want_kind):
            raise Fail(f"reply header B={B} P={P} ncols={n} kind={kind}; want 3, 1, {blk[4]}, {want_kind}")
        if len(r.payload) != MVM_REP.size + B * P * n * size:
            raise Fail(f"reply payload {len(r.payload)} bytes; the layout says {MVM_REP.size + B * P * n * size}")
        vals = struct.unpack_from(f"<{B * P * n}{'i' if kind == 0 else 'd'}", r.payload, MVM_REP.size)
        if kind == 0:
            top = (1 << (i.adc_bits - 1)) - 1
            if any(abs(v) > top for v in vals):
                raise Fail(f"a code beyond +-{top}: {max(vals, key=abs)}")
        if any(v != 0 for v in vals[2 * n :]):
            raise Fail(f"a vector with no active row read {vals[2 * n:]}; the document says 0")
        return f"codes {list(vals[:n])}...; the empty vector reads 0"


refusal("mvm/batch-zero", "MVM", MVM, OUT_OF_RANGE, "MVM with B = 0", lambda s: mvm_payload(s.small_block(), [], [], batch=0, planes=1), core=True)
refusal("mvm/planes-zero", "MVM", MVM, OUT_OF_RANGE, "MVM with P = 0", lambda s: mvm_payload(s.small_block(), [[]], [0], planes=0), core=True)


@case("mvm/planes-max", "MVM", core=True)
def _mvm_pmax(s: Suite) -> str:
    P = s.info.max_planes + 1
    if P > 255:
        raise NotApplicable("max_planes is 255: no P above it fits the u8")
    return _refused(s, MVM, mvm_payload(s.small_block(), [[[0]] * P], [0]), OUT_OF_RANGE, f"MVM with P = max_planes + 1 = {P}")


@case("mvm/padding-bits", "MVM", core=True)
def _mvm_padding(s: Suite) -> str:
    blk = s.small_block(10, 4)
    if blk[2] % 8 == 0:
        raise NotApplicable("the chip's rows leave no padding bits")
    payload = bytearray(mvm_payload(blk, [[[0]]]))
    payload[-1] |= 0x80  # bit 15 of a 10-bit row: padding
    return _refused(s, MVM, bytes(payload), BAD_REQUEST, "MVM with a non-zero padding bit")


refusal("mvm/reserved", "MVM", MVM, BAD_REQUEST, "MVM with reserved byte 1", lambda s: mvm_payload(s.small_block(), [[[0]]], reserved=1), core=True)


@case("mvm/block-range", S_CMDS, core=True)
def _mvm_block(s: Suite) -> str:
    i = s.info
    with s.session() as p:
        for blk, what in (
            ((i.tiles, 0, 1, 0, 1), f"tile {i.tiles} of {i.tiles}"),
            ((0, i.rows - 1, 2, 0, 1), "rows past the last one"),
            ((0, 0, 1, s.pairs, 1), "pairs past the last one"),
            ((0, 0, 1, 0, 0), "ncols 0"),
        ):
            rows = [[[0]]] if blk[2] else [[[]]]
            payload = block(*blk) + MVM_HEAD.pack(1, 1, 0) + struct.pack("<Q", 0) + bit_row(rows[0][0], max(blk[2], 1))
            p.check(MVM, OUT_OF_RANGE, f"MVM on {what}", payload)
        return "OUT_OF_RANGE for tile, rows, pairs, empty block"


refusal("mvm/length", "MVM", MVM, BAD_LENGTH, "MVM one byte short", lambda s: mvm_payload(s.small_block(), [[[0]]])[:-1], core=True)


@case("mvm/exact-repeatable", "MVM", core=True, cap=CAP_EXACT)
def _mvm_exact(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block(16, 4)
        a = _mvm_ok(p, blk, [[[0, 5, 9]]], nonces=[1], flags=F_EXACT)
        b = _mvm_ok(p, blk, [[[0, 5, 9]]], nonces=[2], flags=F_EXACT)
        if a.payload != b.payload:
            raise Fail("two EXACT reads of the same rows (other nonces, other seqs) differ")
        return "identical"


@case("mvm/planes-independent", "MVM", core=True, cap=CAP_EXACT)
def _mvm_planes(s: Suite) -> str:
    with s.session() as p:
        blk = s.small_block(16, 4)
        if s.info.max_planes < 2:
            raise NotApplicable("max_planes is 1")
        two = _mvm_ok(p, blk, [[[0, 1], [3, 7]]], flags=F_EXACT)
        one = _mvm_ok(p, blk, [[[3, 7]]], flags=F_EXACT)
        n = blk[4]
        size = 4 if MVM_REP.unpack_from(two.payload)[2] == 0 else 8
        if two.payload[MVM_REP.size + n * size :] != one.payload[MVM_REP.size :]:
            raise Fail("plane 1 of a two-plane read differs from the same rows read alone")
        return "plane k reads as its rows alone"


@case("mvm/matches-read", "MVM", cap=CAP_EXACT)
def _mvm_read(s: Suite) -> str:
    i = s.info
    if not i.adc_bits:
        raise NotApplicable("a chip without ADC")
    with s.session() as p:
        blk = s.small_block(16, 4)
        g = _read(p, blk)
        rows = [0, 3, 4, 9, 15]
        r = _mvm_ok(p, blk, [[rows]], flags=F_EXACT)
        codes = struct.unpack_from(f"<{blk[4]}i", r.payload, MVM_REP.size)
        worst = 0.0
        for j in range(blk[4]):
            current = sum(g[k][2 * j] - g[k][2 * j + 1] for k in rows)
            expect = current / i.tile_lsb[0]
            worst = max(worst, abs(codes[j] - expect) - 0.5 - 0.2 * abs(expect))
        if worst > 0:
            raise Fail(f"codes {codes} vs READ sums / LSB: off by more than 1/2 LSB + 20 % (gain)")
        return "codes agree with READ's column sums / tile LSB (within 1/2 LSB and a 20 % gain)"


# ---------------------------------------------------------------- cases: READ


def _read(p: Peer, blk: tuple) -> list[list[float]]:
    r = p.check(READ, OK, "READ", block(*blk))
    n = blk[2] * 2 * blk[4]
    if len(r.payload) != 8 * n:
        raise Fail(f"READ payload {len(r.payload)} bytes; want {8 * n}")
    vals = struct.unpack(f"<{n}d", r.payload)
    w = 2 * blk[4]
    return [list(vals[k * w : (k + 1) * w]) for k in range(blk[2])]


@case("read/layout", "READ")
def _read_layout(s: Suite) -> str:
    with s.session() as p:
        g = _read(p, s.small_block(8, 3))
        if not all(math.isfinite(x) and x >= 0 for row in g for x in row):
            raise Fail("READ returned a negative or non-finite conductance")
        again = _read(p, s.small_block(8, 3))
        if again != g:
            raise Fail("two READs of the same block differ (READ has no read noise)")
        return "8 x 6 cells, finite, >= 0, repeatable"


@case("read/errors", "READ")
def _read_errors(s: Suite) -> str:
    with s.session() as p:
        p.check(READ, OUT_OF_RANGE, "READ of a tile past the last", block(s.info.tiles, 0, 1, 0, 1))
        p.check(READ, BAD_LENGTH, "READ with a 9-byte block", block(0, 0, 1, 0, 1)[:-1])
        return "OUT_OF_RANGE, BAD_LENGTH"


# ---------------------------------------------------------------- cases: TIME, STATS, ABORT


@case("time/advances", "TIME, RESET, STATS", cap=CAP_TIME)
def _time(s: Suite) -> str:
    with s.session() as p:
        c0 = parse_info(p.check(INFO, OK, "INFO").payload).clock_s
        r = p.check(TIME, OK, "TIME 0", struct.pack("<d", 0.0))
        (a,) = struct.unpack("<d", r.payload)
        r = p.check(TIME, OK, "TIME 2.5", struct.pack("<d", 2.5))
        (b,) = struct.unpack("<d", r.payload)
        if not (a >= c0 and b >= a + 2.5 * (1 - 1e-12)):
            raise Fail(f"clock {c0} -> TIME 0 -> {a} -> TIME 2.5 -> {b}: TIME must advance by its argument")
        return f"clock {c0:g} -> {a:g} -> {b:g}"


@case("time/range", "TIME, RESET, STATS", cap=CAP_TIME)
def _time_range(s: Suite) -> str:
    with s.session() as p:
        for v in (-1.0, math.nan, math.inf, 2e12):
            p.check(TIME, OUT_OF_RANGE, f"TIME {v}", struct.pack("<d", v))
        p.check(TIME, BAD_LENGTH, "TIME with 7 bytes", b"\x00" * 7)
        return "negative, NaN, inf, > 1e12: OUT_OF_RANGE; 7 bytes: BAD_LENGTH"


@case("stats/counting", "TIME, RESET, STATS", cap=CAP_STATS)
def _stats(s: Suite) -> str:
    with s.session() as p:
        before = s.stats(p)
        if not isinstance(before.get("executed"), dict):
            raise NotApplicable("STATS has no 'executed' counters (the emulator's names; a board may count otherwise)")
        _mvm_ok(p, s.small_block(), [[[0]], [[]], [[1, 2]]])
        p.check(INFO, OK, "INFO")
        after = s.stats(p)
        d = {k: (_counter(after, "executed", k) or 0) - (_counter(before, "executed", k) or 0) for k in ("MVM", "MVM_VECTORS")}
        if d != {"MVM": 1, "MVM_VECTORS": 2}:
            raise Fail(f"one MVM of 3 vectors (one with no active row): executed {d}; want MVM +1, MVM_VECTORS +2")
        return "MVM +1, MVM_VECTORS +2 (the empty vector not counted)"


@case("abort/nothing-running", S_LONG, cap=CAP_ABORT)
def _abort_none(s: Suite) -> str:
    with s.session() as p:
        p.check(ABORT, OUT_OF_RANGE, "ABORT of seq 12345 (nothing runs)", struct.pack("<I", 12345))
        p.check(ABORT, BAD_LENGTH, "ABORT with 2 bytes", b"\x00\x00")
        return "OUT_OF_RANGE; BAD_LENGTH"


# ---------------------------------------------------------------- cases: long operations (--destructive)


def _scratch(s: Suite, row0: int, nrows: int = 8, ncols: int = 4) -> tuple:
    i = s.info
    if row0 + nrows > i.rows:
        raise NotApplicable(f"the tile has only {i.rows} rows")
    return (i.tiles - 1, row0, nrows, 0, min(ncols, s.pairs))


def _form(p: Peer, blk: tuple, seed: int = 1) -> tuple[Reply, Reply]:
    seq = p.send(FORM, block(*blk) + struct.pack("<QB", seed, 0))
    first = p.reply(seq, FORM, progress=True, wait=p.suite.timeout)
    final = first if not first.progress else p.reply(seq, FORM, wait=max(30.0, p.suite.timeout))
    return first, final


@case("long/form-progress", S_LONG, destructive=True)
def _form_progress(s: Suite) -> str:
    with s.session() as p:
        p.check(RESET, OK, "RESET")
        blk = _scratch(s, 0)
        first, final = _form(p, blk)
        if not first.progress or first.status != OK or len(first.payload) != 8:
            raise Fail(f"FORM's first answer is {first.describe()} flags 0x{first.flags:x}; the document says a PROGRESS frame (done, total)")
        done, total = struct.unpack("<II", first.payload)
        cells = blk[2] * 2 * blk[4]
        if total != cells or done > total:
            raise Fail(f"PROGRESS done={done} total={total}; the block has {cells} cells")
        p.expect(final, OK, "FORM's final reply")
        want = 12 + (cells + 7) // 8
        if len(final.payload) != want:
            raise Fail(f"FORM reply {len(final.payload)} bytes; want {want}")
        formed, stuck, pulses = struct.unpack_from("<III", final.payload)
        return f"PROGRESS {done}/{total}, then OK: {formed} formed, {stuck} stuck"


@case("form/already-formed", "FORM", destructive=True)
def _form_twice(s: Suite) -> str:
    with s.session() as p:
        blk = _scratch(s, 8)
        _, final = _form(p, blk)
        p.expect(final, OK, "FORM")
        g = _read(p, blk)
        _, again = _form(p, blk, seed=2)
        p.expect(again, BAD_REQUEST, "FORM of cells already formed")
        if _read(p, blk) != g:
            raise Fail("the refused FORM changed the block")
        return "BAD_REQUEST, nothing changed"


def _program(p: Peer, blk: tuple, target: float, seed: int = 3) -> Reply:
    cells = blk[2] * 2 * blk[4]
    seq = p.send(PROGRAM, block(*blk) + struct.pack("<Q", seed) + struct.pack(f"<{cells}d", *([target] * cells)))
    return p.reply(seq, PROGRAM, wait=max(30.0, p.suite.timeout))


@case("program/unformed", "PROGRAM", destructive=True)
def _program_unformed(s: Suite) -> str:
    with s.session() as p:
        blk = _scratch(s, 16)
        g = _read(p, blk)
        mid = 0.5 * (s.info.g_min_us + s.info.g_max_us)
        r = p.expect(_program(p, blk, mid), OK, "PROGRAM of unformed cells")
        cells = blk[2] * 2 * blk[4]
        programmed, converged, total = struct.unpack_from("<IIQ", r.payload)
        pulses = struct.unpack_from(f"<{cells}H", r.payload, 16)
        bits = r.payload[16 + 2 * cells :]
        if total or any(pulses) or any(bits) or converged:
            raise Fail(f"unformed cells: {total} pulses, {converged} converged; want 0 and 0")
        if _read(p, blk) != g:
            raise Fail("PROGRAM changed unformed cells")
        return f"0 pulses, 0 converged (programmed={programmed}), values unchanged"


@case("program/range", "PROGRAM", destructive=True)
def _program_range(s: Suite) -> str:
    with s.session() as p:
        blk = _scratch(s, 24)
        p.expect(_program(p, blk, s.info.g_max_us * 2 + 1), OUT_OF_RANGE, "PROGRAM above g_max_us")
        return "OUT_OF_RANGE"


@case("long/abort-or-done", S_LONG, destructive=True, cap=CAP_ABORT)
def _abort(s: Suite) -> str:
    with s.session() as p:
        blk = _scratch(s, 32, nrows=min(64, max(1, s.info.rows - 32)), ncols=s.pairs)
        g = _read(p, blk)
        seq = p.send(FORM, block(*blk) + struct.pack("<QB", 5, 0))
        busy = p.ask(READ, block(*blk))
        a = p.ask(ABORT, struct.pack("<I", seq))
        final = p.reply(seq, FORM, wait=max(30.0, s.timeout))
        if busy.status not in (OK, BUSY):
            raise Fail(f"READ during FORM got {busy.describe()}; want BUSY (or OK once it ended)")
        if a.status == OK:
            p.expect(final, ABORTED, "FORM after its ABORT was accepted")
            if _read(p, blk) != g:
                raise Fail("an aborted FORM changed cells")
            return f"READ during it: {status_name(busy.status)}; ABORTED, nothing applied"
        p.expect(a, OUT_OF_RANGE, "ABORT of a FORM that already ended")
        p.expect(final, OK, "FORM that ended before its ABORT")
        return "FORM ended before ABORT arrived: OUT_OF_RANGE, final OK"


@case("reset/pristine", "TIME, RESET, STATS", destructive=True)
def _reset(s: Suite) -> str:
    with s.session() as p:
        p.check(RESET, OK, "RESET")
        blk = _scratch(s, 40)
        g = _read(p, blk)
        p.expect(_form(p, blk)[1], OK, "FORM")
        p.check(RESET, BAD_LENGTH, "RESET with a payload", b"\x00")
        p.check(RESET, OK, "RESET")
        if _read(p, blk) != g:
            raise Fail("after RESET the block does not read as before FORM")
        clock = parse_info(p.check(INFO, OK, "INFO").payload).clock_s
        if clock != 0:
            raise Fail(f"clock {clock} after RESET; want 0")
        return "pristine again, clock 0"


# ---------------------------------------------------------------- cases: authentication


@case("auth/unkeyed-server", S_AUTH, core=True)
def _auth_unkeyed(s: Suite) -> str:
    if s.caps & CAP_AUTH:
        raise NotApplicable("the server requires a key (the auth/ cases below check it)")
    with s.session() as p:
        p.check(AUTH, BAD_REQUEST, "AUTH on a server without a key", b"\x00" * 32)
        return "no challenge, AUTH: BAD_REQUEST"


@case("auth/no-key-no-session", S_AUTH, core=True, cap=CAP_AUTH)
def _auth_missing(s: Suite) -> str:
    with s.session(Peer(s)) as p:
        s.hello(p, auth=False)
        if len(p.hello_reply) != 52:
            raise Fail(f"HELLO reply {len(p.hello_reply)} bytes with AUTH_REQUIRED; want 52 (with the challenge)")
        for op, payload in ((INFO, b""), (MVM, mvm_payload((0, 0, 1, 0, 1), [[[0]]]))):
            p.check(op, BAD_AUTH, f"{NAMES[op]} before AUTH", payload)
        return "INFO and MVM before AUTH: BAD_AUTH"


@case("auth/wrong-key", S_AUTH, core=True, cap=CAP_AUTH)
def _auth_wrong(s: Suite) -> str:
    p = Peer(s)
    s.hello(p, auth=False)
    sid = p.session
    mac = bytearray(auth_mac(b"not the key" + (s.key or b""), p.hello_reply[20:52], sid))
    p.check(AUTH, BAD_AUTH, "AUTH with a wrong key", bytes(mac))
    seen = "BAD_AUTH"
    if not p.link.serial:
        p.silence(min(2.0, s.timeout))
        if not p.closed:
            raise Fail("BAD_AUTH, but the connection stayed open")
        seen += ", connection closed"
        p.close()
        q = Peer(s)
        r = q.ask(HELLO, hello_payload(resume=sid), session=0)
        q.close()
    else:
        r = p.ask(HELLO, hello_payload(resume=sid), session=0)
    if r.status != BAD_SESSION:
        raise Fail(f"HELLO resume={sid} after a wrong AUTH got {r.describe()}; the session must be discarded (BAD_SESSION)")
    return seen + ", session discarded"


@case("auth/short-mac", S_AUTH, core=True, cap=CAP_AUTH)
def _auth_short(s: Suite) -> str:
    with closing(Peer(s)) as p:
        s.hello(p, auth=False)
        p.check(AUTH, BAD_AUTH, "AUTH with 31 bytes", auth_mac(s.key or b"x", p.hello_reply[20:52], p.session)[:31])
        return "BAD_AUTH"


@case("auth/right-key", S_AUTH, core=True, cap=CAP_AUTH)
def _auth_right(s: Suite) -> str:
    with s.session(Peer(s)) as p:
        s.hello(p, auth=True)
        p.check(INFO, OK, "INFO after AUTH")
        p.check(AUTH, OK, "AUTH repeated after success", auth_mac(s.key, p.hello_reply[20:52], p.session))
        return "session open after AUTH; a repeated AUTH: OK"


@case("auth/resume-new-challenge", S_AUTH, tcp_only=True, cap=CAP_AUTH)
def _auth_resume(s: Suite) -> str:
    p = s.open()
    sid, old = p.session, p.hello_reply[20:52]
    p.close()
    with s.session(Peer(s)) as q:
        s.hello(q, auth=False, payload=hello_payload(resume=sid))
        if q.hello_reply[20:52] == old:
            raise Fail("the resume HELLO repeated the first challenge")
        q.check(INFO, BAD_AUTH, "INFO on a resumed session before a new AUTH")
        q.check(AUTH, OK, "AUTH of the resumed session", auth_mac(s.key, q.hello_reply[20:52], sid))
        q.check(INFO, OK, "INFO after the new AUTH")
        return "new challenge; usable only after a new AUTH"


# ---------------------------------------------------------------- entry point


def run_conformance(
    url: str, *, destructive: bool = False, core_only: bool = False, only: list[str] | None = None, timeout: float | None = None, log=None
) -> list[Result]:
    """Run the suite against the chip behind ``url``; a bad URL or an unreachable chip is a
    :class:`HilError` (exit 2), a non-conforming chip is FAIL results."""
    address = parse_address(url)
    if timeout is None:
        timeout = address.timeout_s if "timeout=" in url else 5.0
    suite = Suite(address, timeout=timeout, key=read_key(), destructive=destructive, core_only=core_only, log=log)
    try:
        return suite.run(only)
    except Fail as exc:
        raise HilError(f"{url}: the suite could not open a session ({exc})") from None


def format_table(results: list[Result]) -> str:
    w1 = max(len("case"), *(len(r.name) for r in results)) if results else 4
    w2 = max(len("section"), *(len(r.section) for r in results)) if results else 7
    lines = [f"{'case':<{w1}}  {'section':<{w2}}  {'result':<7}  seen", f"{'-' * w1}  {'-' * w2}  {'-' * 7}  ----"]
    lines += [f"{r.name:<{w1}}  {r.section:<{w2}}  {r.outcome:<7}  {r.seen}" for r in results]
    counts = {k: sum(r.outcome == k for r in results) for k in ("pass", "FAIL", "n/a", "skipped")}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    return "\n".join(lines)
