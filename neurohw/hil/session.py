"""One client's session on the emulator: its own chip, its reply cache, its long operation.

A :class:`Session` answers the frames of the connection bound to it (HELLO binds; a resumed
session moves to the new connection). Rules (docs/hil-protocol.md, "Sessions, retries"):

- State-changing requests (FORM, PROGRAM, MVM, TIME, RESET) are executed once per sequence
  number. Their final replies are kept in a :class:`ReplyCache` (the last ``entries`` replies,
  at most ``max_bytes`` bytes); a request whose sequence number is in the cache gets the cached
  reply again, not a second execution. A retry of a request executed so long ago that its reply
  was dropped gets STALE (never a second execution).
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
from neurohw.hil.protocol import LONG, MUTATING, Flag, Frame, Opcode, Status, reply_frame

#: rows per chunk of a long operation (one PROGRESS frame each)
CHUNK_ROWS = 64
KNOWN = {int(o) for o in Opcode}


class ReplyCache:
    """The last replies of state-changing requests, by sequence number, bounded by count and
    bytes; remembers the sequence numbers of the last ``remember`` executed requests."""

    def __init__(self, entries: int = 64, max_bytes: int = 8 * 1024 * 1024, remember: int = 65536):
        self.entries = int(entries)
        self.max_bytes = int(max_bytes)
        self._replies: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._bytes = 0
        self._executed: collections.deque[int] = collections.deque(maxlen=int(remember))
        self._executed_set: set[int] = set()

    def get(self, seq: int) -> bytes | None:
        return self._replies.get(seq)

    def executed(self, seq: int) -> bool:
        return seq in self._executed_set

    def put(self, seq: int, frame: bytes) -> None:
        if len(self._executed) == self._executed.maxlen:
            self._executed_set.discard(self._executed[0])
        self._executed.append(seq)
        self._executed_set.add(seq)
        old = self._replies.pop(seq, None)
        if old is not None:
            self._bytes -= len(old)
        self._replies[seq] = frame
        self._bytes += len(frame)
        while self._replies and (len(self._replies) > self.entries or self._bytes > self.max_bytes):
            _, dropped = self._replies.popitem(last=False)
            self._bytes -= len(dropped)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._replies)


class LongOp:
    """A FORM or PROGRAM in progress."""

    def __init__(self, frame: Frame, plan: Plan):
        self.frame = frame
        self.plan = plan
        self.abort = threading.Event()
        self.done = 0
        self.total = max(plan.cells, 1)
        self.thread: threading.Thread | None = None

    @property
    def seq(self) -> int:
        return self.frame.seq


class Session:
    """A session: id, chip, reply cache, counters; ``send`` delivers frames to the connection
    currently bound (set by the server)."""

    def __init__(self, sid: int, chip: ChipEmulator, *, cache: ReplyCache | None = None, slowop_s: float = 0.0, capabilities: int = 0):
        self.id = int(sid)
        self.chip = chip
        self.cache = cache if cache is not None else ReplyCache()
        self.slowop_s = float(slowop_s)
        self.capabilities = capabilities
        self.lock = threading.RLock()
        self.long_op: LongOp | None = None
        self.version = 1
        self.conn = None  # the bound connection (has .send(bytes))
        self.last_seen = time.monotonic()
        self.last_seq = 0
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
                    return [self._error(frame, Status.OUT_OF_RANGE, str(exc))]
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

    def _mutating(self, op: Opcode, frame: Frame) -> list[bytes]:
        seq = frame.seq
        cached = self.cache.get(seq)
        if cached is not None:
            self.counters["replayed"] += 1
            return [cached]
        lo = self.long_op
        if lo is not None and lo.seq == seq:
            self.counters["replayed_progress"] += 1
            return [self._reply(frame, Status.OK, msg.pack_progress(lo.done, lo.total), progress=True)]
        if self.cache.executed(seq):
            self.counters["stale"] += 1
            return [self._error(frame, Status.STALE, f"request {seq} was applied once and its reply is no longer held; not applied again")]
        if lo is not None:
            return [self._busy(frame)]
        try:
            if op in LONG:
                return self._start_long(op, frame)
            payload = self._execute(op, frame)
        except msg.PayloadError as exc:
            return [self._error(frame, exc.status, str(exc))]
        except ChipRangeError as exc:
            return [self._error(frame, Status.OUT_OF_RANGE, str(exc))]
        reply = self._reply(frame, Status.OK, payload)
        self.cache.put(seq, reply)
        self.last_seq = seq
        return [reply]

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

    def _start_long(self, op: Opcode, frame: Frame) -> list[bytes]:
        if op == Opcode.FORM:
            req = msg.FormRequest.unpack(frame.payload)
            plan = self.chip.plan_form(req.block, req.seed, req.mask)
        else:
            req = msg.ProgramRequest.unpack(frame.payload)
            plan = self.chip.plan_program(req.block, req.targets, req.seed)
        lo = LongOp(frame, plan)
        self.long_op = lo
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
                final = self._error(lo.frame, Status.ABORTED, f"{plan.kind.upper()} of {plan.block} aborted after {lo.done} of {lo.total} cells; nothing was applied")
            else:
                try:
                    reply = self.chip.commit(plan)
                    final = self._reply(lo.frame, Status.OK, reply.pack())
                except Exception as exc:  # noqa: BLE001 - a server never dies of a request
                    final = self._error(lo.frame, Status.INTERNAL, f"{plan.kind.upper()} failed: {exc}")
            self.cache.put(lo.seq, final)
            self.last_seq = lo.seq
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
            "statuses": {k.removeprefix("status_"): int(v) for k, v in self.counters.items() if k.startswith("status_") and v},
            "cache": {"entries": len(self.cache), "bytes": self.cache.nbytes},
            **({"server": self.server_stats()} if self.server_stats is not None else {}),
        }

