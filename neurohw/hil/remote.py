"""The driver: the :class:`~neurohw.hil.macro.Macro` API over the HIL protocol.

:class:`RemoteMacro` speaks to ``neurohw hil serve`` or a board over TCP (``hil://HOST:PORT``)
or a serial port (``hil+serial://PORT?baud=N``). How it survives a bad link:

- every request has a sequence number; a retry reuses it (RETRY flag set), and the server
  executes a state-changing request once per number (it replays the cached reply), so a retried
  PROGRAM is applied once and a retried MVM counted once;
- up to ``window`` requests are in flight (``mvm_many``: all reads of a time step in one
  exchange); a reply that arrives for a request sent after an earlier one still unanswered
  means the earlier one was lost (the server answers in order): it is resent at once; a request
  with no reply for ``timeout`` seconds is resent, at most ``retries`` attempts in all;
- a reply the server marks BAD_CRC (our frame arrived damaged) is resent at once; one we
  receive damaged is dropped and its request resent; BUSY is retried after a short wait;
- a lost connection is reopened and the session resumed (HELLO with its id), then everything
  in flight is resent (a link that breaks again meanwhile is reopened again); a link that closes
  before the first HELLO's reply is tried again, at most ``retries`` times;
- BUSY (a full server, which closes the connection after answering, or a chip busy with a
  long operation) is waited out with backoff 0.1 s doubling to 2 s, for at most ``busy_wait``
  seconds (URL option, default 60), then one HilError line;
- a server that asks for a key (HELLO capability AUTH_REQUIRED) gets AUTH with the HMAC of its
  challenge (:mod:`neurohw.hil.auth`; the key from ``NEUROHW_HIL_KEY`` or
  ``NEUROHW_HIL_KEY_FILE``), after every HELLO, resumes included;
- sequence numbers are never reused for another request (a retransmission reuses its own);
- PROGRESS frames of a long operation keep its request alive; a progress callback that returns
  False sends ABORT (so does Ctrl-C).
Failures end in one :class:`~neurohw.hil.errors.HilError` line: no server, the server gone
for good, another protocol version, a peer that is no HIL server or echoes our frames, a session
the server no longer knows, a request the chip refused (:class:`HilStatusError`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurohw.hil import auth
from neurohw.hil import messages as msg
from neurohw.hil.address import MAX_WINDOW, HilAddress, parse_address
from neurohw.hil.errors import HilError, HilLinkLost, HilStatusError
from neurohw.hil.macro import Macro, MvmCall, Progress, checked_planes
from neurohw.hil.messages import Block, ChipInfo, FormReply, ProgramReply
from neurohw.hil.protocol import (
    MIN_MAX_PAYLOAD,
    VERSIONS,
    BadPayload,
    Flag,
    Frame,
    FrameReader,
    Opcode,
    Status,
    encode_frame,
)
from neurohw.hil.transport import LinkClosed, SerialTransport, TcpTransport

# every frame sent and received, at DEBUG (`neurohw hil ... --verbose` shows them on stderr)
frame_log = logging.getLogger("neurohw.hil.frames")

#: bytes of non-frames a peer may send before it is judged not to be a HIL server
NOT_A_SERVER_BYTES = 4096
#: BUSY answers are retried after a wait doubling from BUSY_FIRST_S to BUSY_MAX_S (s)
BUSY_FIRST_S = 0.1
BUSY_MAX_S = 2.0


class _ServerFull(HilError):
    """HELLO was answered BUSY: the server is full (it closes the connection)."""


class _KeyRefused(HilError):
    """The server needs a key the driver does not have, or refused the driver's: not worth
    another try."""


@dataclass
class _Pending:
    seq: int
    opcode: int
    payload: bytes
    flags: int
    order: int
    long: bool = False
    progress: Progress | None = None
    sent_at: float = 0.0
    deadline: float = 0.0
    attempts: int = 0
    busy_since: float | None = None
    busy_backoff: float = 0.0


def _op_name(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"opcode {opcode}"


def _status_text(status: int) -> str:
    try:
        return Status(status).name.lower().replace("_", " ")
    except ValueError:
        return f"status {status}"


class RemoteMacro(Macro):
    """A macro behind a link (see the module doc). ``url``: ``hil://HOST:PORT[?options]`` or
    ``hil+serial://PORT?baud=N``; ``chip_seed``: the new session's chip seed; ``timeout``,
    ``retries``, ``window`` override the URL's options."""

    def __init__(
        self,
        url: str | HilAddress,
        chip_seed: int = 0,
        *,
        name: str = "neurohw",
        timeout: float | None = None,
        retries: int | None = None,
        window: int | None = None,
    ):
        super().__init__()
        self.address = url if isinstance(url, HilAddress) else parse_address(url)
        self.where = self.address.url
        self.timeout = float(timeout if timeout is not None else self.address.timeout_s)
        self.retries = int(retries if retries is not None else self.address.retries)
        self.window = int(window if window is not None else self.address.window)
        if not 1 <= self.window <= MAX_WINDOW:
            raise HilError(f"{self.address.url}: window {self.window} must be in 1..{MAX_WINDOW} (the server keeps {MAX_WINDOW} replies for retries)")
        self.busy_wait = float(self.address.busy_wait_s)
        self.key = auth.client_key()
        self.chip_seed = int(chip_seed)
        self.name = name
        self.session = 0
        self.version = VERSIONS[1]
        self.max_payload = MIN_MAX_PAYLOAD
        self.capabilities = 0
        self.counters: Counter = Counter()
        self._seq = itertools.count(1)
        self._order = itertools.count()
        self._transport = None
        self._reader: FrameReader | None = None
        self._valid_frames = 0
        self._refusal: str | None = None
        self._info: ChipInfo | None = None
        self._closed = False
        self._connect()

    def _connect(self) -> None:
        """Open the link and start a new session; a link that closes before HELLO's reply (a
        flaky link) is tried again, at most ``retries`` attempts in all."""
        wait = 0.05
        busy, busy_until = BUSY_FIRST_S, None
        attempt = 0
        while True:
            attempt += 1
            self._open()
            try:
                self._hello(resume=0)
                return
            except _ServerFull as exc:
                self._transport.close()
                now = time.monotonic()
                busy_until = busy_until if busy_until is not None else now + self.busy_wait
                if now + busy > busy_until:
                    raise HilError(f"{exc}, for {self.busy_wait:g} s (busy_wait); retry later, end other sessions or raise ?busy_wait=") from None
                self.counters["busy"] += 1
                time.sleep(busy)
                busy = min(2 * busy, BUSY_MAX_S)
                attempt -= 1  # a full server is not a failed attempt
            except HilLinkLost as exc:
                self._transport.close()
                if attempt >= self.retries:
                    raise HilLinkLost(f"{exc}, before answering HELLO, {attempt} times; check that a neurohw HIL server "
                                      "('neurohw hil serve') or board listens there") from None
                self.counters["reconnects"] += 1
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
            except BaseException:
                self._transport.close()
                raise

    # ------------------------------------------------------------------ link

    def _open(self) -> None:
        a = self.address
        try:
            if a.kind == "tcp":
                self._transport = TcpTransport.connect(a.host, a.port, timeout=max(self.timeout, 1.0))
            else:
                self._transport = SerialTransport.open(a.serial_port, a.baud)
        except LinkClosed as exc:
            raise HilError(f"{a.url}: {exc}") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise HilError(f"{a.url}: no HIL server answers ({reason}); start one with 'neurohw hil serve --port {a.port}' or check the address") from None
        self._reader = FrameReader(0xFFFFFFFF)
        self._valid_frames = 0

    def _next_seq(self) -> int:
        seq = next(self._seq) & 0xFFFFFFFF
        if seq == 0:
            seq = next(self._seq) & 0xFFFFFFFF
        return seq

    def _send(self, p: _Pending, retry: bool) -> None:
        flags = p.flags | (Flag.RETRY if retry else 0)
        session = 0 if p.opcode == Opcode.HELLO else self.session
        data = encode_frame(p.opcode, p.payload, seq=p.seq, session=session, flags=flags, version=self.version)
        now = time.monotonic()
        p.sent_at = now
        p.deadline = now + self.timeout
        p.attempts += 1
        if retry:
            self.counters["retries"] += 1
        frame_log.debug("-> %s seq %d session %d flags 0x%02x, %d payload bytes%s", _opcode_name(p.opcode), p.seq, session, flags,
                        len(p.payload), " (retry)" if retry else "")
        self._transport.send(data)

    def _hello(self, resume: int) -> None:
        payload = msg.Hello(VERSIONS[0], VERSIONS[1], resume, self.chip_seed, self.name).pack()
        frame = self._exchange([(Opcode.HELLO, payload, 0)], reconnect=False)[0]
        a = self.address
        if frame.status == Status.BAD_VERSION:
            vmin, vmax, _ = msg.unpack_version_error(frame.payload)
            raise HilError(
                f"{a.url}: the server speaks HIL protocol versions {vmin}..{vmax}, this neurohw speaks {VERSIONS[0]}..{VERSIONS[1]}; "
                "use matching neurohw versions on both sides"
            )
        if frame.status == Status.BAD_SESSION and resume:
            raise HilError(
                f"{a.url}: the server no longer knows session {resume} (it ended, expired or the server restarted); the chip state is lost, start again"
            )
        if frame.status == Status.BUSY:
            raise _ServerFull(f"{a.url}: the server is full ({frame.payload.decode('utf-8', 'replace')})")
        if frame.status != Status.OK:
            raise HilError(f"{a.url}: HELLO refused ({_status_text(frame.status)}): {frame.payload.decode('utf-8', 'replace')}")
        try:
            reply = msg.HelloReply.unpack(frame.payload)
        except msg.PayloadError as exc:
            raise HilError(f"{a.url}: not a neurohw HIL server (bad HELLO reply: {exc})") from None
        if reply.session == 0 or (resume and reply.session != resume):
            raise HilError(f"{a.url}: the server answered HELLO with session {reply.session}; expected {resume or 'a new one'}")
        self.session = reply.session
        self.version = reply.version
        self.max_payload = max(reply.max_payload, MIN_MAX_PAYLOAD)
        self.capabilities = reply.capabilities
        if reply.capabilities & msg.CAP_AUTH:
            self._authenticate(reply.challenge)

    def _authenticate(self, challenge: bytes) -> None:
        a = self.address
        if self.key is None:
            raise _KeyRefused(f"{a.url}: the server requires a key: set {auth.ENV_KEY} or {auth.ENV_KEY_FILE}")
        frame = self._exchange([(Opcode.AUTH, auth.mac(self.key, challenge, self.session), 0)], reconnect=False)[0]
        if frame.status == Status.BAD_AUTH:
            raise _KeyRefused(f"{a.url}: the server refused the key ({frame.payload.decode('utf-8', 'replace')}); "
                              f"give the server's key in {auth.ENV_KEY} or {auth.ENV_KEY_FILE}")
        if frame.status != Status.OK:
            raise HilError(f"{a.url}: AUTH refused ({_status_text(frame.status)}): {frame.payload.decode('utf-8', 'replace')}")

    def _reconnect(self, reason: str) -> None:
        self.counters["reconnects"] += 1
        if self._transport is not None:
            self._transport.close()
        last = reason
        wait = 0.05
        deadline = time.monotonic() + max(self.timeout * self.retries, 1.0)
        while True:
            try:
                self._open()
                self._hello(resume=self.session)
                return
            except HilError as exc:
                last = str(exc)
                if isinstance(exc, _KeyRefused) or "no longer knows session" in last or "protocol versions" in last:
                    raise
            if time.monotonic() > deadline:
                raise HilError(f"{self.address.url}: lost the link ({reason}) and could not resume session {self.session}: {last}")
            time.sleep(wait)
            wait = min(wait * 2, 1.0)

    # ------------------------------------------------------------------ exchange

    def _exchange(self, requests: Sequence[tuple], *, reconnect: bool = True, long: bool = False, progress: Progress | None = None) -> list[Frame]:
        """Send ``requests`` ((opcode, payload, flags), ...) with up to ``window`` in flight;
        return their final reply frames in order (see the module doc for the retry rules)."""
        if self._closed:
            raise HilError(f"{self.address.url}: the macro is closed")
        items = [_Pending(self._next_seq(), int(op), bytes(pl), int(fl), next(self._order), long=long, progress=progress) for op, pl, fl in requests]
        results: dict[int, Frame] = {}
        pending: dict[int, _Pending] = {}
        next_i = 0
        try:
            while len(results) < len(items):
                try:
                    # the window spans sequence numbers, not requests in flight: the oldest
                    # unanswered request and the newest sent are less than `window` apart, so
                    # a retry always finds its reply in the server's cache (64 replies)
                    while next_i < len(items) and items[next_i].order - min((q.order for q in pending.values()), default=items[next_i].order) < self.window:
                        p = items[next_i]
                        pending[p.seq] = p
                        next_i += 1
                        self._send(p, retry=False)
                    now = time.monotonic()
                    wait = max(0.0, min(q.deadline for q in pending.values()) - now)
                    data = self._transport.recv(wait)
                    events = self._reader.feed(data) if data else []
                except LinkClosed as exc:
                    if not reconnect:
                        if self._refusal is None and self._valid_frames == 0 and self._reader.garbage_bytes:
                            raise HilError(
                                f"{self.address.url}: not a neurohw HIL server "
                                f"(it sent {self._reader.garbage_bytes} bytes that are no HIL frames and closed the link)"
                            ) from None
                        if self._refusal is not None:
                            raise HilError(f"{self.address.url}: {self._refusal}") from None
                        raise HilLinkLost(f"{self.address.url}: {exc}") from None
                    self._reconnect(str(exc))
                    for q in sorted(pending.values(), key=lambda q: q.order):
                        self._resend(q)  # a link that breaks again here is noticed by the next recv
                    continue
                for ev in events:
                    self._event(ev, pending, results)
                self._check_garbage()
                now = time.monotonic()
                for q in sorted(pending.values(), key=lambda q: q.order):
                    if now >= q.deadline:
                        self._expired(q, now)
        except KeyboardInterrupt:
            self._abort_running(pending)
            raise
        return [results[p.seq] for p in items]

    def _resend(self, q: _Pending) -> None:
        try:
            self._send(q, retry=True)
        except LinkClosed:
            pass  # the next recv notices and reconnects

    def _expired(self, q: _Pending, now: float) -> None:
        if q.busy_since is not None:
            if now - q.busy_since > self.busy_wait:
                raise HilError(f"{self.address.url}: the chip stayed busy for {self.busy_wait:g} s (busy_wait; {_op_name(q.opcode)} not accepted); "
                               "retry later or raise ?busy_wait=")
            q.attempts -= 1  # a BUSY wait is not a failed attempt
            self._resend(q)
            return
        if q.attempts >= self.retries:
            what = _op_name(q.opcode)
            raise HilError(
                f"{self.address.url}: no reply to {what} after {q.attempts} attempts of {self.timeout:g} s; "
                "the server or the link is down (raise ?timeout= for a slow link)"
            )
        self.counters["timeouts"] += 1
        self._resend(q)

    def _event(self, ev, pending: dict[int, _Pending], results: dict[int, Frame]) -> None:
        if isinstance(ev, BadPayload):
            q = pending.get(ev.header.seq)
            self.counters["damaged_replies"] += 1
            if q is not None and ev.header.is_reply:
                self._resend(q)
            return
        if not isinstance(ev, Frame):
            return
        frame_log.debug("<- %s seq %d session %d flags 0x%02x status %s, %d payload bytes", _opcode_name(ev.opcode), ev.seq,
                        ev.header.session, ev.header.flags, _status_text(ev.status), len(ev.payload))
        self._valid_frames += 1
        h = ev.header
        if not h.is_reply:
            raise HilError(
                f"{self.address.url}: the peer sends our own requests back (a loopback such as loop://, or an echo), not HIL replies; "
                "connect to 'neurohw hil serve' or a board"
            )
        q = pending.get(h.seq)
        if q is None:
            if h.seq == 0 and h.status == Status.BUSY:
                self._refusal = f"the server refused the connection: {ev.payload.decode('utf-8', 'replace')}"
            self.counters["duplicates"] += 1
            return
        if h.opcode != q.opcode:
            self.counters["mismatched"] += 1
            return
        now = time.monotonic()
        if h.is_progress:
            q.deadline = now + self.timeout
            if q.progress is not None:
                try:
                    done, total = msg.unpack_progress(ev.payload)
                except msg.PayloadError:
                    return
                if q.progress(done, total) is False:
                    self._send_abort(q)
            return
        if h.status == Status.BAD_CRC:
            self.counters["bad_crc_reported"] += 1
            self._resend(q)
            return
        if h.status == Status.BUSY and q.opcode != Opcode.HELLO:
            self.counters["busy"] += 1
            q.busy_since = q.busy_since or now
            q.busy_backoff = min(2 * q.busy_backoff, BUSY_MAX_S) if q.busy_backoff else BUSY_FIRST_S
            q.deadline = now + q.busy_backoff
            return
        results[h.seq] = ev
        del pending[h.seq]
        # the server answers in order: an earlier request sent before this one's last
        # transmission and still unanswered was lost (or its reply was)
        for r in pending.values():
            if r.order < q.order and r.sent_at < q.sent_at and not r.long and r.busy_since is None:
                self.counters["fast_retransmits"] += 1
                self._resend(r)

    def _check_garbage(self) -> None:
        if self._valid_frames == 0 and self._reader.garbage_bytes > NOT_A_SERVER_BYTES:
            raise HilError(f"{self.address.url}: not a neurohw HIL server (it sent {self._reader.garbage_bytes} bytes that are no HIL frames)")

    def _send_abort(self, q: _Pending) -> None:
        frame = encode_frame(Opcode.ABORT, msg.pack_u32(q.seq), seq=self._next_seq(), session=self.session, version=self.version)
        try:
            self._transport.send(frame)
        except LinkClosed:
            pass

    def _abort_running(self, pending: dict[int, _Pending]) -> None:
        for q in pending.values():
            if q.long:
                self._send_abort(q)

    def _checked(self, frame: Frame, what: str) -> bytes:
        if frame.status != Status.OK:
            text = frame.payload.decode("utf-8", "replace")
            raise HilStatusError(f"{self.address.url}: {what} refused ({_status_text(frame.status)}): {text}", frame.status)
        return frame.payload

    # ------------------------------------------------------------------ Macro API

    def info(self) -> ChipInfo:
        frame = self._exchange([(Opcode.INFO, b"", 0)])[0]
        try:
            info = ChipInfo.unpack(self._checked(frame, "INFO"))
        except msg.PayloadError as exc:
            raise HilError(f"{self.address.url}: malformed INFO reply ({exc})") from None
        self._info = info
        return info

    def _geometry(self) -> ChipInfo:
        return self._info if self._info is not None else self.info()

    def _fits(self, size: int, what: str) -> None:
        if size > self.max_payload:
            raise HilError(f"{self.address.url}: {what} needs {size} bytes, above the link's max_payload {self.max_payload}; use a smaller block")

    def form(self, block: Block, seed: int, mask: np.ndarray | None = None, progress: Progress | None = None) -> FormReply:
        req = msg.FormRequest(block, int(seed), None if mask is None else np.asarray(mask, bool))
        payload = req.pack()
        self._fits(len(payload), "FORM")
        self._fits(msg.FORM_REPLY.size + -(-block.cells // 8), "FORM's reply")
        frame = self._exchange([(Opcode.FORM, payload, 0)], long=True, progress=progress)[0]
        try:
            return FormReply.unpack(self._checked(frame, f"FORM of {block}"), block)
        except msg.PayloadError as exc:
            raise HilError(f"{self.address.url}: malformed FORM reply ({exc})") from None

    def program(self, block: Block, targets: np.ndarray, seed: int, progress: Progress | None = None) -> ProgramReply:
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (block.nrows, 2 * block.ncols):
            raise ValueError(f"PROGRAM targets must have shape {(block.nrows, 2 * block.ncols)}, got {targets.shape}")
        payload = msg.ProgramRequest(block, int(seed), targets).pack()
        self._fits(len(payload), "PROGRAM")
        self._fits(msg.PROGRAM_REPLY.size + 2 * block.cells + -(-block.cells // 8), "PROGRAM's reply")
        frame = self._exchange([(Opcode.PROGRAM, payload, 0)], long=True, progress=progress)[0]
        try:
            return ProgramReply.unpack(self._checked(frame, f"PROGRAM of {block}"), block)
        except msg.PayloadError as exc:
            raise HilError(f"{self.address.url}: malformed PROGRAM reply ({exc})") from None

    def read(self, block: Block) -> np.ndarray:
        per_row = 16 * block.ncols
        rows = max(1, min(block.nrows, self.max_payload // per_row))
        parts = [Block(block.tile, block.row0 + r, min(rows, block.nrows - r), block.col0, block.ncols) for r in range(0, block.nrows, rows)]
        frames = self._exchange([(Opcode.READ, b.pack(), 0) for b in parts])
        out = []
        for b, f in zip(parts, frames):
            try:
                out.append(msg.unpack_read_reply(self._checked(f, f"READ of {b}"), b))
            except msg.PayloadError as exc:
                raise HilError(f"{self.address.url}: malformed READ reply ({exc})") from None
        return np.concatenate(out, axis=0)

    def mvm_many(self, calls: Sequence[MvmCall], exact: bool = False) -> list[np.ndarray]:
        analog = self._geometry().adc_bits == 0
        requests, pieces = [], []
        empty: dict[int, np.ndarray] = {}
        for i, call in enumerate(calls):
            planes = checked_planes(call.planes)
            nonces = self._nonces_for(call)
            B, P, n = planes.shape
            if n != call.block.nrows:
                raise ValueError(f"MVM planes have {n} rows, the block {call.block.nrows}")
            if B == 0:  # nothing to read (the protocol refuses B = 0)
                empty[i] = np.zeros((0, P, call.block.ncols), dtype=np.float64 if analog else np.int32)
                continue
            per_vec = max(
                msg.MvmRequest.size(n, 1, P) - msg.MvmRequest.size(n, 0, P),
                msg.MvmReply.size(call.block.ncols, 1, P, analog) - msg.MvmReply.size(0, 0, P, analog),
                1,
            )
            step = max(1, min(B or 1, (self.max_payload - 64) // per_vec, 0xFFFF))
            for b0 in range(0, max(B, 1), step):
                req = msg.MvmRequest(call.block, planes[b0 : b0 + step], nonces[b0 : b0 + step])
                requests.append((Opcode.MVM, req.pack(), Flag.EXACT if exact else 0))
                pieces.append(i)
        frames = self._exchange(requests)
        parts: list[list[np.ndarray]] = [[empty[i]] if i in empty else [] for i in range(len(calls))]
        for i, f in zip(pieces, frames):
            try:
                parts[i].append(msg.MvmReply.unpack(self._checked(f, f"MVM on {calls[i].block}")).values)
            except msg.PayloadError as exc:
                raise HilError(f"{self.address.url}: malformed MVM reply ({exc})") from None
        return [np.concatenate(p, axis=0) for p in parts]

    def time(self, seconds: float) -> float:
        frame = self._exchange([(Opcode.TIME, msg.pack_f64(seconds), 0)])[0]
        return msg.unpack_f64(self._checked(frame, "TIME"), "TIME reply")

    def reset(self) -> None:
        self._checked(self._exchange([(Opcode.RESET, b"", 0)])[0], "RESET")

    def stats(self) -> dict:
        frame = self._exchange([(Opcode.STATS, b"", 0)])[0]
        return msg.unpack_json(self._checked(frame, "STATS"), "STATS reply")

    def close(self) -> None:
        """End the session (BYE, best effort) and close the link."""
        if self._closed:
            return
        try:
            if self._transport is not None and not getattr(self._transport, "closed", False):
                bye = encode_frame(Opcode.BYE, b"", seq=self._next_seq(), session=self.session, version=self.version)
                self._transport.send(bye)
        except (LinkClosed, OSError):
            pass
        finally:
            self._closed = True
            if self._transport is not None:
                self._transport.close()

    def drop_link(self) -> None:
        """Close the connection without ending the session (the next request resumes it)."""
        if self._transport is not None:
            self._transport.close()


class _SerialLink:
    """One serial port's session, shared by the :class:`SharedSerialMacro` s of this process.

    A serial line is one connection and the protocol gives a connection one session (and a
    tty read by two file descriptors splits the replies between them), so the macros that
    ``connect`` opens on one port at the same time (a run's encoders, one per modality) share
    one session, hence one chip: each gets the chip's tiles as it first uses them (its tile
    ``t`` is the next free physical tile). The session ends (BYE) when the last one closes."""

    _links: dict[str, "_SerialLink"] = {}
    _lock = threading.Lock()

    def __init__(self, macro: RemoteMacro):
        self.macro = macro
        self.users = 0
        self.owner: dict[int, object] = {}  # physical tile -> the SharedSerialMacro using it

    @classmethod
    def join(cls, address: HilAddress, chip_seed: int, kwargs: dict) -> "_SerialLink":
        with cls._lock:
            link = cls._links.get(address.serial_port)
            if link is None or link.macro._closed:
                link = cls(RemoteMacro(address, chip_seed, **kwargs))
                cls._links[address.serial_port] = link
            link.users += 1
            return link

    def leave(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            if self._links.get(self.macro.address.serial_port) is self:
                del self._links[self.macro.address.serial_port]
        self.macro.close()


class SharedSerialMacro(Macro):
    """A macro on a serial link shared with other macros of this process (see
    :class:`_SerialLink`): the :class:`Macro` API with its own tile numbering. ``reset`` is
    refused while another macro shares the chip; ``time`` advances the one chip's clock."""

    def __init__(self, link: _SerialLink):
        super().__init__()
        self._link = link
        self._tiles: dict[int, int] = {}  # this macro's tile -> the chip's
        self._closed = False
        self.where = link.macro.where

    @property
    def _m(self) -> RemoteMacro:
        if self._closed:
            raise HilError(f"{self.where}: the macro is closed")
        return self._link.macro

    def _tile(self, t: int) -> int:
        if t in self._tiles:
            return self._tiles[t]
        info = self._m._geometry()
        if not 0 <= t < info.tiles:
            return t  # out of range: the chip refuses it with its own message
        with _SerialLink._lock:
            free = [p for p in range(info.tiles) if p not in self._link.owner]
            if not free:
                raise HilError(f"{self.where}: all {info.tiles} tiles of the chip are in use by the macros sharing this serial link; "
                               "use fewer or smaller crossbars, or a TCP link (one chip per session)")
            self._link.owner[free[0]] = self
            self._tiles[t] = free[0]
        return free[0]

    def _block(self, b: Block) -> Block:
        return Block(self._tile(b.tile), b.row0, b.nrows, b.col0, b.ncols)

    def info(self) -> ChipInfo:
        info = self._m.info()
        lsb = tuple(info.tile_lsb_us[self._tiles[t]] if t in self._tiles else info.lsb_us for t in range(info.tiles))
        return dataclasses.replace(info, tile_lsb_us=lsb)

    def form(self, block: Block, seed: int, mask: np.ndarray | None = None, progress: Progress | None = None) -> FormReply:
        return self._m.form(self._block(block), seed, mask, progress)

    def program(self, block: Block, targets: np.ndarray, seed: int, progress: Progress | None = None) -> ProgramReply:
        return self._m.program(self._block(block), targets, seed, progress)

    def read(self, block: Block) -> np.ndarray:
        return self._m.read(self._block(block))

    def mvm_many(self, calls: Sequence[MvmCall], exact: bool = False) -> list[np.ndarray]:
        mapped = [MvmCall(self._block(c.block), c.planes, self._nonces_for(c)) for c in calls]
        return self._m.mvm_many(mapped, exact=exact)

    def time(self, seconds: float) -> float:
        return self._m.time(seconds)

    def reset(self) -> None:
        if self._link.users > 1:
            raise HilError(f"{self.where}: RESET would wipe the tiles of the other macros sharing this serial link; close them first")
        self._m.reset()
        with _SerialLink._lock:
            for p in self._tiles.values():
                self._link.owner.pop(p, None)
            self._tiles.clear()

    def stats(self) -> dict:
        return self._m.stats()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._link.leave()


def connect(url: str, chip_seed: int = 0, **kwargs) -> Macro:
    """A macro on ``url``: a :class:`RemoteMacro` (its own session) on ``hil://``; on
    ``hil+serial://`` a :class:`SharedSerialMacro`: the macros open on one serial port share
    its one session (the first one's ``chip_seed``) and take the chip's tiles in turn."""
    address = parse_address(url)
    if address.kind != "serial":
        return RemoteMacro(address, chip_seed, **kwargs)
    return SharedSerialMacro(_SerialLink.join(address, chip_seed, kwargs))


def _opcode_name(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"opcode 0x{opcode:02x}"
