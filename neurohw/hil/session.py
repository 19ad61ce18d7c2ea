"""One client's session on the emulator: its own chip, its replay window, its long operation.

A :class:`Session` answers the frames of the connection bound to it (HELLO binds; a resumed
session moves to the new connection). Rules (docs/hil-protocol.md, "Sessions, retries"):

- State-changing requests (FORM, PROGRAM, MVM, TIME, RESET) follow the replay rules of
  :class:`ReplayWindow`: a seq ahead of the highest executed one, or inside the 64-seq window
  and not executed yet, is executed; an executed one whose request digest (SHA-256 of opcode,
  flags without RETRY, payload) equals the kept one gets the kept reply again (not a second
  execution); another request with an executed seq gets SEQ_REUSED; an executed seq whose reply
  is no longer kept, or a seq behind the window, gets STALE (never a second execution).
  Refused requests (errors) are not executed and do not count.
- FORM and PROGRAM are long operations: computed at once, then applied chunk by chunk (64 rows)
  with a PROGRESS frame per chunk; ABORT (or the end of the session) stops them and nothing is
  applied; otherwise the whole result is committed at once (a PROGRAM is never half-applied).
  While one runs, other state-changing requests and READ get BUSY; INFO, STATS and ABORT are
  answered.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from neurohw.hil import messages as msg
from neurohw.hil.chip import ChipEmulator, Plan
from neurohw.hil.errors import ChipRangeError
from neurohw.hil.protocol import LONG, MUTATING, REPLAY_WINDOW, Flag, Frame, Opcode, Status, reply_frame, request_digest, seq_ahead

#: rows per chunk of a long operation (one PROGRESS frame each)
CHUNK_ROWS = 64
KNOWN = {int(o) for o in Opcode}


class ReplayWindow:
    """The sequence/replay state of a session (docs/hil-protocol.md, "Sequence numbers and
    replay"): ``last_seq`` (the highest seq executed among state-changing requests), a 64-bit
    bitmap of which of ``last_seq - 63 .. last_seq`` were executed (bit ``k``: ``last_seq - k``,
    as IPsec's anti-replay window), and the kept final replies of executed ones, each with the
    SHA-256 digest of its request, at most ``entries`` replies and ``max_bytes`` bytes (the
    oldest dropped first; a reply whose seq leaves the window is dropped)."""

    def __init__(self, entries: int = REPLAY_WINDOW, max_bytes: int = 8 * 1024 * 1024):
        self.entries = min(int(entries), REPLAY_WINDOW)
        self.max_bytes = int(max_bytes)
        self.last_seq = 0
        self._bits = 0
        self._replies: collections.OrderedDict[int, tuple[bytes, bytes]] = collections.OrderedDict()
        self._bytes = 0

    def judge(self, seq: int) -> str:
        """Where ``seq`` stands: "new" (ahead of last_seq, or in the window and not executed),
        "executed" (in the window, executed) or "behind" (older than the window)."""
        d = seq_ahead(seq, self.last_seq)
        if d > 0:
            return "new"
        if -d >= REPLAY_WINDOW:
            return "behind"
        return "executed" if (self._bits >> -d) & 1 else "new"

    def kept(self, seq: int) -> tuple[bytes, bytes] | None:
        """(request digest, reply frame) kept for ``seq``, or None."""
        return self._replies.get(seq)

    def mark(self, seq: int) -> None:
        """Record ``seq`` as executed (the window slides when it is ahead)."""
        d = seq_ahead(seq, self.last_seq)
        if d > 0:
            self._bits = ((self._bits << d) | 1) & ((1 << REPLAY_WINDOW) - 1) if d < REPLAY_WINDOW else 1
            self.last_seq = seq
            for old in [k for k in self._replies if -seq_ahead(k, seq) >= REPLAY_WINDOW]:
                self._bytes -= len(self._replies.pop(old)[1])
        elif -d < REPLAY_WINDOW:
            self._bits |= 1 << -d

    def keep(self, seq: int, digest: bytes, frame: bytes) -> None:
        """Keep the final reply of executed ``seq`` (bounded by count and bytes)."""
        if self.judge(seq) == "behind":
            return
        old = self._replies.pop(seq, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._replies[seq] = (digest, frame)
        self._bytes += len(frame)
        while self._replies and (len(self._replies) > self.entries or self._bytes > self.max_bytes):
            _, (_, dropped) = self._replies.popitem(last=False)
            self._bytes -= len(dropped)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._replies)


class LongOp:
    """A FORM or PROGRAM in progress."""

    def __init__(self, frame: Frame, plan: Plan, digest: bytes = b""):
        self.frame = frame
        self.plan = plan
        self.digest = digest
        self.abort = threading.Event()
        self.done = 0
        self.total = max(plan.cells, 1)
        self.thread: threading.Thread | None = None

    @property
    def seq(self) -> int:
        return self.frame.seq


class Session:
    """A session: id, chip, replay window, counters, authentication state; ``send`` delivers frames to the connection
    currently bound (set by the server)."""

    def __init__(
        self, sid: int, chip: ChipEmulator, *, window: ReplayWindow | None = None, slowop_s: float = 0.0, capabilities: int = 0, stale_replay: bool = False
    ):
        self.id = int(sid)
        self.chip = chip
        self.window = window if window is not None else ReplayWindow()
        self.slowop_s = float(slowop_s)
        #: a planted defect (fault ``stale_replay=1``): a used seq is answered from the kept
        #: replies whatever the request (what the protocol forbids; the conformance suite must see it)
        self.stale_replay = bool(stale_replay)
        #: authentication: the challenge of the last HELLO reply, and whether AUTH succeeded
        #: (True on a server without a key)
        self.challenge = b""
        self.authed = True
        self.auth_mac = b""
        self.capabilities = capabilities
        self.lock = threading.RLock()
        self.long_op: LongOp | None = None
        self.version = 1
        self.conn = None  # the bound connection (has .send(bytes))
        self.last_seen = time.monotonic()
        self.closed = False
        self.counters = collections.Counter()
        self.server_stats: Callable[[], dict] | None = None  # the server's counters, for STATS

    # ------------------------------------------------------------------ helpers

    def _reply(self, frame: Frame, status: int, payload: bytes = b"", *, progress: bool = False) -> bytes:
        self.counters[f"status_{Status(status).name.lower()}"] += 0 if progress else 1
        return reply_frame(frame.header, status, payload, session=self.id, progress=progress)

    def _error(self, frame: Frame, status: int, message: str) -> bytes:
        return self._reply(frame, status, msg.pack_error(message))

    def send(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None:
            conn.send(data)

    # ------------------------------------------------------------------ dispatch

    def handle(self, frame: Frame) -> list[bytes]:
        """The frames to send now in answer to ``frame`` (a long operation sends more later)."""
        op = frame.opcode
        self.last_seen = time.monotonic()
        if op not in KNOWN or op == Opcode.HELLO:
            if op == Opcode.HELLO:  # the server handles HELLO; here only by mistake
                return [self._error(frame, Status.BAD_REQUEST, "HELLO is handled by the server")]
            return [self._error(frame, Status.UNKNOWN_OPCODE, f"opcode 0x{op:02X} unknown; known: " + ", ".join(f"0x{int(o):02X} {o.name}" for o in Opcode))]
        op = Opcode(op)
        with self.lock:
            if op in MUTATING:
                return self._mutating(op, frame)
            if op == Opcode.INFO:
                return [self._reply(frame, Status.OK, self.chip.info().pack())]
            if op == Opcode.STATS:
                return [self._reply(frame, Status.OK, msg.pack_json(self.stats()))]
            if op == Opcode.ABORT:
                return [self._abort(frame)]
            if op == Opcode.READ:
                if self.long_op is not None:
                    return [self._busy(frame)]
                try:
                    block = msg.unpack_block_only(frame.payload, "READ")
                    return [self._reply(frame, Status.OK, msg.pack_read_reply(self.chip.read(block)))]
                except msg.PayloadError as exc:
                    return [self._error(frame, exc.status, str(exc))]
                except ChipRangeError as exc:
                    return [self._error(frame, exc.status, str(exc))]
        return [self._error(frame, Status.BAD_REQUEST, f"{op.name} is not a session command")]

    def _busy(self, frame: Frame) -> bytes:
        lo = self.long_op
        return self._error(frame, Status.BUSY, f"a {lo.plan.kind.upper()} (seq {lo.seq}) is running; wait for its reply or ABORT it")

    def _abort(self, frame: Frame) -> bytes:
        try:
            target = msg.unpack_u32(frame.payload, "ABORT")
        except msg.PayloadError as exc:
            return self._error(frame, exc.status, str(exc))
        lo = self.long_op
        if lo is None or lo.seq != target:
            return self._error(frame, Status.OUT_OF_RANGE, f"no long operation with seq {target} is running")
        lo.abort.set()
        return self._reply(frame, Status.OK)

    @property
    def last_seq(self) -> int:
        return self.window.last_seq

    def _mutating(self, op: Opcode, frame: Frame) -> list[bytes]:
        seq = frame.seq
        digest = request_digest(frame.opcode, frame.flags, frame.payload)
        lo = self.long_op
        if lo is not None and lo.seq == seq:
            if lo.digest != digest and not self.stale_replay:
                return [self._reused(frame)]
            self.counters["replayed_progress"] += 1
            return [self._reply(frame, Status.OK, msg.pack_progress(lo.done, lo.total), progress=True)]
        where = self.window.judge(seq)
        if where == "behind":
            self.counters["stale"] += 1
            return [
                self._error(
                    frame,
                    Status.STALE,
                    f"seq {seq} is older than the replay window ({REPLAY_WINDOW} below the last executed seq {self.last_seq}); not executed",
                )
            ]
        if where == "executed":
            kept = self.window.kept(seq)
            if kept is None:
                self.counters["stale"] += 1
                return [self._error(frame, Status.STALE, f"request {seq} was executed once and its reply is no longer held; not executed again")]
            if kept[0] != digest and not self.stale_replay:
                return [self._reused(frame)]
            self.counters["replayed"] += 1
            return [kept[1]]
        if lo is not None:
            return [self._busy(frame)]
        try:
            if op in LONG:
                return self._start_long(op, frame, digest)
            payload = self._execute(op, frame)
        except msg.PayloadError as exc:
            return [self._error(frame, exc.status, str(exc))]
        except ChipRangeError as exc:
            return [self._error(frame, exc.status, str(exc))]
        reply = self._reply(frame, Status.OK, payload)
        self.window.mark(seq)
        self.window.keep(seq, digest, reply)
        return [reply]

    def _reused(self, frame: Frame) -> bytes:
        self.counters["seq_reused"] += 1
        return self._error(frame, Status.SEQ_REUSED, f"seq {frame.seq} was used by another request; not executed (number every new request afresh)")

    def _execute(self, op: Opcode, frame: Frame) -> bytes:
        chip = self.chip
        if op == Opcode.MVM:
            req = msg.MvmRequest.unpack(frame.payload)
            chip.check_block(req.block)
            values = chip.mvm(req.block, req.planes, req.nonces, exact=bool(frame.flags & Flag.EXACT))
            return msg.MvmReply(values).pack()
        if op == Opcode.TIME:
            return msg.pack_f64(chip.advance(msg.unpack_f64(frame.payload, "TIME")))
        if op == Opcode.RESET:
            if frame.payload:
                raise msg.PayloadError("RESET takes no payload")
            chip.reset()
            return b""
        raise AssertionError(op)  # pragma: no cover

    def _start_long(self, op: Opcode, frame: Frame, digest: bytes) -> list[bytes]:
        if op == Opcode.FORM:
            req = msg.FormRequest.unpack(frame.payload)
            plan = self.chip.plan_form(req.block, req.seed, req.mask)
        else:
            req = msg.ProgramRequest.unpack(frame.payload)
            plan = self.chip.plan_program(req.block, req.targets, req.seed)
        lo = LongOp(frame, plan, digest)
        self.long_op = lo
        self.window.mark(lo.seq)
        lo.thread = threading.Thread(target=self._run_long, args=(lo,), name=f"hil-{plan.kind}-{self.id}", daemon=True)
        lo.thread.start()
        return [self._reply(frame, Status.OK, msg.pack_progress(0, lo.total), progress=True)]

    def _run_long(self, lo: LongOp) -> None:
        """Apply chunk by chunk (progress, abort), then commit whole; send the final reply."""
        plan = lo.plan
        rows = plan.block.nrows
        per_row = max(plan.cells // max(rows, 1), 1)
        aborted = False
        for start in range(0, rows, CHUNK_ROWS):
            if lo.abort.is_set() or self.closed:
                aborted = True
                break
            if self.slowop_s > 0:
                lo.abort.wait(self.slowop_s)
            lo.done = min(plan.cells, per_row * min(start + CHUNK_ROWS, rows))
            if start + CHUNK_ROWS < rows:
                self.send(self._reply(lo.frame, Status.OK, msg.pack_progress(lo.done, lo.total), progress=True))
        aborted = aborted or lo.abort.is_set()
        with self.lock:
            if aborted:
                final = self._error(
                    lo.frame, Status.ABORTED, f"{plan.kind.upper()} of {plan.block} aborted after {lo.done} of {lo.total} cells; nothing was applied"
                )
            else:
                try:
                    reply = self.chip.commit(plan)
                    final = self._reply(lo.frame, Status.OK, reply.pack())
                except Exception as exc:  # catch-all on purpose: a server never dies of a request
                    final = self._error(lo.frame, Status.INTERNAL, f"{plan.kind.upper()} failed: {exc}")
            self.window.keep(lo.seq, lo.digest, final)
            self.long_op = None
        self.send(final)

    def stop(self) -> None:
        """End the session: abort a running long operation."""
        self.closed = True
        lo = self.long_op
        if lo is not None:
            lo.abort.set()

    def stats(self) -> dict:
        c = self.chip.counters()
        return {
            "session": self.id,
            "executed": c["ops"],
            "ledger": c["ledger"],
            "clock_s": c["clock_s"],
            "replayed": int(self.counters["replayed"]),
            "replayed_progress": int(self.counters["replayed_progress"]),
            "stale": int(self.counters["stale"]),
            "seq_reused": int(self.counters["seq_reused"]),
            "statuses": {k.removeprefix("status_"): int(v) for k, v in self.counters.items() if k.startswith("status_") and v},
            "cache": {"entries": len(self.window), "bytes": self.window.nbytes},
            "last_seq": self.last_seq,
            **({"server": self.server_stats()} if self.server_stats is not None else {}),
        }

