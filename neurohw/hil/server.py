"""The emulator server: emulated chips behind the HIL protocol, over TCP or a serial port.

:class:`HilServer` listens on ``host:port`` (127.0.0.1 by default), one thread per connection
and one :class:`neurohw.hil.session.Session` (own :class:`neurohw.hil.chip.ChipEmulator`) per
HELLO. What it guarantees against any client (docs/hil-protocol.md, "Robustness"):

- a frame with a bad header check is skipped byte by byte until the next sync byte (a reply
  BAD_CRC is sent when the header names this connection's session); a payload CRC failure gets
  BAD_CRC; a length above ``max_payload`` gets BAD_LENGTH and resynchronisation; an unknown
  opcode UNKNOWN_OPCODE; a frame before HELLO BAD_SESSION; out-of-range blocks and values
  OUT_OF_RANGE (the chip is untouched);
- a frame not completed within ``frame_timeout_s`` of its first byte (a client that sends half
  a frame and stalls) closes that connection (on a serial port: the partial frame is dropped);
  a connection idle for ``idle_timeout_s`` is closed;
- requests are checked in the order of docs/hil-protocol.md ("Header checks"): version,
  REPLY flag, status and reserved bytes, PROGRESS flag, seq 0, payloads of INFO/RESET/STATS/BYE;
- a connection holds at most one session; BYE ends it and its id is never used again; HELLO
  after BYE on the same link opens a new session;
- memory is bounded: connections that have not sent a valid frame within ``hello_timeout_s``
  are closed, and at most ``max_pending`` of them are kept (the oldest closed first); they never
  count toward the limits. At most ``max_connections`` connections holding a session and
  ``max_sessions`` sessions (ended by BYE, or ``session_grace_s`` after their connection went
  away unless resumed), each with a bounded replay window; when full, the first frame of a new
  connection gets BUSY (its own seq) and the connection is closed;
- with a key (``ServerConfig.key``) a session opens only after AUTH (:mod:`neurohw.hil.auth`);
- an exception while handling a request becomes an INTERNAL reply; the server keeps serving.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from neurohw.devices.model import DeviceModel
from neurohw.hil import auth
from neurohw.hil import messages as msg
from neurohw.hil.chip import ChipEmulator
from neurohw.hil.faults import FaultInjector, FaultSpec
from neurohw.hil.protocol import (
    DEFAULT_MAX_PAYLOAD,
    EMPTY,
    MIN_MAX_PAYLOAD,
    VERSIONS,
    BadHeader,
    BadPayload,
    Flag,
    Frame,
    FrameReader,
    Garbage,
    Opcode,
    Oversized,
    Status,
    encode_frame,
    reply_frame,
)
from neurohw.hil.session import ReplayWindow, Session
from neurohw.hil.transport import LinkClosed, SerialTransport, TcpTransport, Transport

log = logging.getLogger("neurohw.hil.server")

CAPABILITIES = msg.CAP_EXACT | msg.CAP_TIME | msg.CAP_ABORT | msg.CAP_STATS


@dataclass(frozen=True)
class ServerConfig:
    """Limits and behaviour of a :class:`HilServer` (see the module doc)."""

    tiles: int = 8
    latency_us: float = 0.0
    faults: FaultSpec = field(default_factory=FaultSpec)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_sessions: int = 8
    max_connections: int = 16
    frame_timeout_s: float = 5.0
    idle_timeout_s: float = 600.0
    #: a session whose connection closed ends this long after unless resumed (s)
    session_grace_s: float = 10.0
    #: a connection that sent no valid frame this long after it opened is closed (s)
    hello_timeout_s: float = 5.0
    #: connections without a session kept at once (the oldest closed first)
    max_pending: int = 64
    tick_s: float = 0.1
    versions: tuple[int, int] = VERSIONS
    cache_entries: int = 64
    cache_bytes: int = 8 * 1024 * 1024
    #: the pre-shared key (None: no authentication); see neurohw.hil.auth
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self):
        if not MIN_MAX_PAYLOAD <= self.max_payload <= 0xFFFFFFFF:
            raise ValueError(f"max_payload must be in [{MIN_MAX_PAYLOAD}, 2^32-1], got {self.max_payload}")
        if self.max_sessions < 1 or self.max_connections < 1 or self.max_pending < 1:
            raise ValueError("max_sessions, max_connections and max_pending must be >= 1")
        if self.key is not None and not self.key:
            raise ValueError("an empty key; give None for no authentication")


class Connection:
    """One client link (a TCP connection or a serial port): reads frames, answers them."""

    def __init__(self, server: "HilServer", transport: Transport, *, serial: bool = False):
        self.server = server
        self.transport = transport
        self.serial = serial
        self.reader = FrameReader(server.config.max_payload)
        self.session: Session | None = None
        self.closed = False
        self._send_lock = threading.Lock()
        self.last_hello: tuple[int, bytes, bytes] | None = None  # (seq, payload, reply) of the HELLO that opened the session
        self.thread: threading.Thread | None = None
        self.opened = time.monotonic()
        self.frames = 0  # valid frames received
        self.hangup = False  # close after the reply being sent (BUSY when full, BAD_AUTH)

    # ------------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        """Send one frame (faults and latency applied); a failed send closes the connection."""
        if self.closed:
            return
        faults = self.server.faults
        delay = self.server.config.latency_us * 1e-6
        if faults is not None:
            if faults.drop_out():
                return
            data = faults.corrupt(data, "corrupted_out")
            delay += faults.delay_s()
        with self._send_lock:
            if delay > 0:
                time.sleep(delay)
            try:
                self.transport.send(data)
            except LinkClosed:
                self.close()

    def _error(self, header, status: int, message: str) -> None:
        self.send(reply_frame(header, status, msg.pack_error(message)))

    # ------------------------------------------------------------------ input

    def run(self) -> None:
        cfg = self.server.config
        last = time.monotonic()
        partial_since: float | None = None
        try:
            while not self.closed and not self.server.stopping:
                try:
                    data = self.transport.recv(None)
                except LinkClosed:
                    break
                now = time.monotonic()
                if data:
                    last = now
                    self.server.count("bytes_in", len(data))
                    for event in self.reader.feed(data):
                        self._event(event, inject=True)
                        if self.closed:
                            break
                if self.reader.pending:
                    partial_since = partial_since or now
                else:
                    partial_since = None
                if partial_since is not None and now - partial_since > cfg.frame_timeout_s:
                    self.server.count("stalled")
                    log.info("%s: partial frame stalled for %.1f s; %s", self.transport.name, now - partial_since, "dropped it" if self.serial else "closing")
                    if not self.serial:
                        break
                    self.reader.clear()
                    partial_since = None
                if not self.serial and not self.reader.pending and now - last > cfg.idle_timeout_s:
                    self.server.count("idle_closed")
                    break
                if not self.serial and self.frames == 0 and now - self.opened > cfg.hello_timeout_s:
                    self.server.count("hello_timeouts")
                    log.info("%s: no valid frame within %.1f s; closing", self.transport.name, cfg.hello_timeout_s)
                    break
        except Exception:  # catch-all on purpose: a connection's failure must not reach the server
            self.server.count("internal_errors")
            log.exception("%s: connection failed", self.transport.name)
        finally:
            self.close()

    def _event(self, event, inject: bool) -> None:
        srv = self.server
        if isinstance(event, Garbage):
            srv.count("garbage_bytes", event.count)
        elif isinstance(event, BadHeader):
            srv.count("bad_header")
            s = self.session
            if s is not None and int.from_bytes(event.raw[8:12], "little") == s.id:
                self.send(
                    encode_frame(
                        event.raw[2], msg.pack_error("header check failed; resend"), seq=event.seq, session=s.id, flags=Flag.REPLY, status=Status.BAD_CRC
                    )
                )
        elif isinstance(event, Oversized):
            srv.count("oversized")
            self._error(event.header, Status.BAD_LENGTH, f"payload of {event.header.length} bytes exceeds max_payload {srv.config.max_payload}")
        elif isinstance(event, BadPayload):
            srv.count("bad_crc")
            self._error(event.header, Status.BAD_CRC, "payload CRC-32 mismatch; resend")
        elif isinstance(event, Frame):
            srv.count("frames_in")
            self.frames += 1
            faults = srv.faults
            if inject and faults is not None:
                if faults.drop_in():
                    return
                if faults.disconnect():
                    self.close()
                    return
                h = event.header
                raw = encode_frame(h.opcode, event.payload, seq=h.seq, session=h.session, flags=h.flags, status=h.status, version=h.version)
                bent = faults.corrupt(raw, "corrupted_in")
                if bent is not raw:
                    scratch = FrameReader(srv.config.max_payload)
                    for e in scratch.feed(bent):
                        self._event(e, inject=False)
                    return
            try:
                self._frame(event)
            except Exception as exc:  # catch-all on purpose: answer INTERNAL, keep serving
                srv.count("internal_errors")
                log.exception("%s: request failed", self.transport.name)
                self._error(event.header, Status.INTERNAL, f"the server failed on this request: {type(exc).__name__}")

    def _header_error(self, h) -> tuple[int, bytes] | None:
        """The header checks of docs/hil-protocol.md ("Header checks"), in order: (status,
        payload) of the error reply, or None when the header is acceptable."""
        vmin, vmax = self.server.config.versions
        if not vmin <= h.version <= vmax:
            return Status.BAD_VERSION, msg.pack_version_error(vmin, vmax, f"frame of protocol version {h.version}; this server speaks {vmin}..{vmax}")
        if h.flags & Flag.REPLY:
            return Status.BAD_REQUEST, msg.pack_error("REPLY flag on a request")
        if h.status != 0 or h.reserved != 0:
            return Status.BAD_REQUEST, msg.pack_error(f"status byte {h.status} and reserved byte {h.reserved} of a request must be 0")
        if h.flags & Flag.PROGRESS:
            return Status.BAD_REQUEST, msg.pack_error("PROGRESS flag on a request")
        if h.seq == 0:
            return Status.BAD_REQUEST, msg.pack_error("seq 0 is never valid; number requests from 1")
        if h.opcode in EMPTY and h.length:
            return Status.BAD_LENGTH, msg.pack_error(f"{Opcode(h.opcode).name} takes no payload; got {h.length} bytes")
        return None

    def _frame(self, frame: Frame) -> None:
        h = frame.header
        if h.is_reply and h.status == Status.BAD_REQUEST:
            # an echo of our own "REPLY flag on a request" answer (a line that echoes): answering
            # it again would ping-pong forever
            self.server.count("unexpected_replies")
            return
        bad = self._header_error(h)
        if bad is not None:
            self.server.count("header_errors")
            self.send(reply_frame(h, bad[0], bad[1]))
            return
        s = self.session
        if s is None and (self.frames == 1 or h.opcode == Opcode.HELLO):
            why = self.server.full(self, frame)
            if why is not None:
                self.send(reply_frame(h, Status.BUSY, msg.pack_error(why), session=0))
                self.hang_up()
                return
        if h.opcode == Opcode.HELLO:
            self.send(self.server.hello(self, frame))
            if self.hangup:
                self.hangup = False
                self.hang_up()
            return
        if s is None:
            self._error(h, Status.BAD_SESSION, "no session on this connection; send HELLO first")
            return
        if h.session != s.id:
            self._error(h, Status.BAD_SESSION, f"frame for session {h.session} on a connection bound to session {s.id}")
            return
        if h.version != s.version:
            self.send(
                reply_frame(
                    h,
                    Status.BAD_VERSION,
                    msg.pack_version_error(*self.server.config.versions, f"frame of version {h.version}; this session speaks {s.version}"),
                )
            )
            return
        if h.opcode == Opcode.BYE:
            self.send(reply_frame(h, Status.OK))
            self.server.end_session(s)
            self.session = None
            self.last_hello = None
            return
        if h.opcode == Opcode.AUTH:
            self.send(self.server.authenticate(self, s, frame))
            if self.hangup:
                self.hangup = False
                self.hang_up()
            return
        if not s.authed:
            self._error(h, Status.BAD_AUTH, "the session is not authenticated; send AUTH with the HMAC of the HELLO challenge first")
            return
        for out in s.handle(frame):
            self.send(out)

    def hang_up(self) -> None:
        """End this link's part after a refusal (server full, BAD_AUTH): a TCP connection is
        closed; a serial port stays open (it is the only way in) and forgets its session."""
        if not self.serial:
            self.close()
            return
        s = self.session
        if s is not None and s.conn is self:
            s.conn = None
            s.last_seen = time.monotonic()
        self.session = None
        self.last_hello = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        s = self.session
        if s is not None and s.conn is self:
            s.conn = None
            s.last_seen = time.monotonic()
        self.transport.close()
        self.server.forget(self)


class HilServer:
    """Emulated chips of ``device`` served on ``host:port`` (port 0: a free one). Use
    :meth:`start` (background threads) and :meth:`stop`, or the context manager."""

    def __init__(self, device: DeviceModel, host: str = "127.0.0.1", port: int = 0, config: ServerConfig | None = None):
        self.device = device
        self.host = host
        self.port = int(port)
        self.config = config or ServerConfig()
        spec = self.config.faults
        self.faults = FaultInjector(spec) if spec.link_faults else None
        self.stopping = False
        self._lock = threading.Lock()
        self._sessions: dict[int, Session] = {}
        self._ids: set[int] = set()  # every session id ever issued: never issued again
        self._conns: set[Connection] = set()
        self._counts: Counter = Counter()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def capabilities(self) -> int:
        return CAPABILITIES | (msg.CAP_AUTH if self.config.key is not None else 0)

    # ------------------------------------------------------------------ counters

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def stats(self) -> dict:
        with self._lock:
            out = dict(self._counts)
            out["connections"] = len(self._conns)
            out["pending_connections"] = sum(1 for c in self._conns if c.session is None)
            out["sessions"] = len(self._sessions)
        if self.faults is not None:
            out["faults"] = dict(self.faults.counts)
        return out

    # ------------------------------------------------------------------ sessions

    def full(self, conn: Connection, frame: Frame) -> str | None:
        """Why a new session (or a resume) cannot be served on ``conn`` now, or None."""
        resume = 0
        if frame.opcode == Opcode.HELLO:
            try:
                resume = msg.Hello.unpack(frame.payload).resume
            except msg.PayloadError:
                resume = 0
        cfg = self.config
        with self._lock:
            self._reap_locked()
            held = [c for c in self._conns if c is not conn and c.session is not None and not c.closed]
            old = self._sessions.get(resume) if resume else None
            if old is not None and old.conn is not None and old.conn in held:
                held.remove(old.conn)  # a resume takes its session's connection over
            if len(held) >= cfg.max_connections:
                self._counts["refused_connections"] += 1
                return f"server full: {len(held)} connections hold sessions, its limit; retry later"
            if old is None and len(self._sessions) >= cfg.max_sessions:
                self._counts["refused_sessions"] += 1
                return f"server full: {len(self._sessions)} sessions open; retry later or end one with BYE"
        return None

    def hello(self, conn: Connection, frame: Frame) -> bytes:
        """Answer a HELLO: version negotiation, a new or resumed session bound to ``conn``."""
        h = frame.header
        held = conn.session
        if held is not None and not held.closed:
            if conn.last_hello is not None and conn.last_hello[:2] == (h.seq, frame.payload):
                return conn.last_hello[2]
            return reply_frame(h, Status.BAD_REQUEST, msg.pack_error(f"this connection holds session {held.id}; send BYE first"))
        try:
            hello = msg.Hello.unpack(frame.payload)
        except msg.PayloadError as exc:
            return reply_frame(h, exc.status, msg.pack_error(str(exc)))
        vmin, vmax = self.config.versions
        lo, hi = max(hello.min_version, vmin), min(hello.max_version, vmax)
        if lo > hi:
            return reply_frame(h, Status.BAD_VERSION, msg.pack_version_error(vmin, vmax, f"this server speaks protocol versions {vmin}..{vmax}"))
        key = self.config.key
        with self._lock:
            if hello.resume:
                s = self._sessions.get(hello.resume)
                if s is None:
                    return reply_frame(
                        h, Status.BAD_SESSION, msg.pack_error(f"session {hello.resume} is not known here (ended, expired or the server restarted)")
                    )
                old = s.conn
                resumed = True
            else:
                self._reap_locked()
                if len(self._sessions) >= self.config.max_sessions:
                    self._counts["refused_sessions"] += 1
                    conn.hangup = True
                    return reply_frame(h, Status.BUSY, msg.pack_error(f"server full: {len(self._sessions)} sessions open; retry later"), session=0)
                sid = 0
                while sid == 0 or sid in self._ids:
                    sid = secrets.randbits(32)
                self._ids.add(sid)
                fs = self.config.faults
                chip = ChipEmulator(
                    self.device, self.config.tiles, hello.chip_seed, extra_stuck=fs.stuck, extra_stuck_kind=fs.stuck_kind, max_payload=self.config.max_payload
                )
                s = Session(sid, chip, window=ReplayWindow(self.config.cache_entries, self.config.cache_bytes), slowop_s=fs.slowop_ms / 1000.0,
                            capabilities=self.capabilities, stale_replay=fs.stale_replay)  # fmt: skip
                s.server_stats = self.stats
                self._sessions[sid] = s
                self._counts["sessions_created"] += 1
                old = None
                resumed = False
        if old is not None and old is not conn:
            old.session = None
            old.hang_up()
        s.version = hi
        s.conn = conn
        s.last_seen = time.monotonic()
        challenge = b""
        if key is not None:
            challenge = auth.new_challenge()
            s.challenge, s.authed, s.auth_mac = challenge, False, b""
        conn.session = s
        body = msg.HelloReply(hi, resumed, s.id, self.config.max_payload, self.capabilities, s.last_seq, challenge).pack()
        out = encode_frame(Opcode.HELLO, body, seq=h.seq, session=s.id, flags=Flag.REPLY, status=Status.OK, version=hi)
        conn.last_hello = (h.seq, frame.payload, out)
        return out

    def authenticate(self, conn: Connection, s: Session, frame: Frame) -> bytes:
        """Answer AUTH: OK and the session opens, or BAD_AUTH, the session ends and the
        connection closes (docs/hil-protocol.md, "Authentication")."""
        h = frame.header
        key = self.config.key
        if key is None:
            return reply_frame(h, Status.BAD_REQUEST, msg.pack_error("this server takes no key; AUTH is not needed"))
        if s.authed and s.auth_mac and frame.payload == s.auth_mac:
            return reply_frame(h, Status.OK)
        if auth.verify(key, s.challenge, s.id, frame.payload):
            s.authed, s.auth_mac = True, bytes(frame.payload)
            self.count("auth_ok")
            return reply_frame(h, Status.OK)
        self.count("auth_failed")
        log.info("%s: AUTH failed for session %d; session ended", conn.transport.name, s.id)
        self.end_session(s)
        conn.session = None
        conn.last_hello = None
        conn.hangup = True
        why = "wrong length" if len(frame.payload) != auth.MAC_SIZE else "wrong key"
        return reply_frame(h, Status.BAD_AUTH, msg.pack_error(f"AUTH refused ({why}); the session is discarded"))

    def end_session(self, s: Session) -> None:
        with self._lock:
            self._sessions.pop(s.id, None)
        s.stop()
        s.conn = None

    def _reap_locked(self) -> None:
        now = time.monotonic()
        for sid, s in list(self._sessions.items()):
            if s.conn is None and s.long_op is None and now - s.last_seen > self.config.session_grace_s:
                del self._sessions[sid]
                s.stop()
                self._counts["sessions_expired"] += 1

    def forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        return f"hil://{self.host}:{self.port}"

    def start(self) -> "HilServer":
        """Bind, listen and serve in background threads; returns self (``port`` is set)."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        sock.settimeout(self.config.tick_s)
        self._listener = sock
        self.port = sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="hil-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def serve_serial(self, url: str, baud: int = 115200) -> "HilServer":
        """Also serve one serial port (a pyserial URL or device) in a background thread."""
        transport = SerialTransport.open(url, baud, tick=self.config.tick_s)
        conn = Connection(self, transport, serial=True)
        with self._lock:
            self._conns.add(conn)
        conn.thread = threading.Thread(target=conn.run, name=f"hil-serial-{url}", daemon=True)
        conn.thread.start()
        self._threads.append(conn.thread)
        return self

    def _accept_loop(self) -> None:
        last_reap = time.monotonic()
        while not self.stopping:
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                sock = None
            except OSError:
                if self.stopping:
                    break
                time.sleep(self.config.tick_s)
                continue
            now = time.monotonic()
            if now - last_reap > 1.0:
                with self._lock:
                    self._reap_locked()
                last_reap = now
            if sock is None:
                continue
            self.count("accepted")
            transport = TcpTransport(sock, f"{addr[0]}:{addr[1]}", tick=self.config.tick_s, send_timeout=max(self.config.frame_timeout_s, 1.0))
            conn = Connection(self, transport)
            with self._lock:
                self._conns.add(conn)
                pending = sorted((c for c in self._conns if c.session is None and not c.serial), key=lambda c: c.opened)
                evict = pending[: max(0, len(pending) - self.config.max_pending)]
                self._counts["pending_evicted"] += len(evict)
            for c in evict:
                c.close()
            conn.thread = threading.Thread(target=conn.run, name=f"hil-conn-{addr[1]}", daemon=True)
            conn.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: close the listener and every connection, end every session."""
        self.stopping = True
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._lock:
            conns = list(self._conns)
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for c in conns:
            c.close()
        for s in sessions:
            s.stop()
        deadline = time.monotonic() + timeout
        for t in self._threads + [c.thread for c in conns if c.thread is not None]:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "HilServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
