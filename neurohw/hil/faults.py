"""Fault injection for the emulator: a flaky link and a defective chip, on purpose.

SPEC (``neurohw hil serve --faults SPEC``): comma-separated ``key=value`` items, e.g.
``drop=0.05,corrupt=0.01,delay=0.01:50,seed=7``:

- ``drop=P``: each frame the server receives is discarded before it is processed with
  probability P, and each reply it sends is discarded with probability P (a lost frame).
- ``corrupt=P``: each received frame has one random bit flipped before it is decoded, and each
  reply likewise, with probability P each (the CRCs catch it).
- ``delay=P:MS``: a reply is held MS milliseconds before it is sent with probability P (it and
  everything behind it on that connection arrive late).
- ``disconnect=P``: after receiving a frame, the server closes that connection with probability
  P (the session survives and can be resumed).
- ``stuck=F`` or ``stuck=F:KIND``: a fraction F of every tile's cells is stuck from manufacture
  (KIND ``off`` (default), ``on`` or ``both``), on top of the device model's stuck cells.
- ``slowop=MS``: each chunk of 64 rows of a FORM or PROGRAM takes at least MS milliseconds
  (a slow board; makes progress reports and ABORT observable).
- ``seed=N``: seeds the fault draws (default 0), so a faulty run is repeatable.
- ``stale_replay=1``: a planted protocol defect, for testing a conformance suite: a state-changing
  request whose seq was already executed is answered with the kept reply whatever its payload
  (the protocol says SEQ_REUSED). ``stale_replay=0``: off (the default).
Probabilities are in [0, 1]; MS in [0, 60000]; a bad SPEC is one :class:`HilError` line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from neurohw.errors import did_you_mean
from neurohw.hil.errors import HilError

KEYS = ("drop", "corrupt", "delay", "disconnect", "stuck", "slowop", "seed", "stale_replay")


@dataclass(frozen=True)
class FaultSpec:
    """Parsed ``--faults`` SPEC (see the module doc); all zero = a clean link."""

    drop: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    delay_ms: float = 0.0
    disconnect: float = 0.0
    stuck: float = 0.0
    stuck_kind: str = "off"
    slowop_ms: float = 0.0
    seed: int = 0
    stale_replay: bool = False

    @property
    def link_faults(self) -> bool:
        return any(v > 0 for v in (self.drop, self.corrupt, self.delay, self.disconnect))


def _prob(key: str, text: str, spec: str) -> float:
    try:
        p = float(text)
    except ValueError:
        p = float("nan")
    if not 0.0 <= p <= 1.0:
        raise HilError(f"--faults {spec!r}: {key}={text} is not a probability; give a number in [0, 1], e.g. {key}=0.05")
    return p


def _ms(key: str, text: str, spec: str) -> float:
    try:
        ms = float(text)
    except ValueError:
        ms = float("nan")
    if not 0.0 <= ms <= 60000.0:
        raise HilError(f"--faults {spec!r}: {key} time {text!r} must be milliseconds in [0, 60000]")
    return ms


def parse_faults(spec: str | None) -> FaultSpec:
    """Parse a SPEC string (None or "" = no faults); errors are one HilError line."""
    if not spec:
        return FaultSpec()
    values: dict = {}
    for item in str(spec).split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not sep or not value:
            raise HilError(f"--faults {spec!r}: item {item!r} is not key=value; e.g. drop=0.05,corrupt=0.01,delay=0.01:50")
        if key not in KEYS:
            raise HilError(f"--faults {spec!r}: unknown fault {key!r}{did_you_mean(key, KEYS)}; known: {', '.join(KEYS)}")
        if key in values or (key == "delay" and "delay_ms" in values) or (key == "stuck" and "stuck_kind" in values):
            raise HilError(f"--faults {spec!r}: {key} is given twice")
        if key in ("drop", "corrupt", "disconnect"):
            values[key] = _prob(key, value, spec)
        elif key == "delay":
            p, colon, ms = value.partition(":")
            if not colon:
                raise HilError(f"--faults {spec!r}: delay needs P:MS (probability and milliseconds), e.g. delay=0.01:50")
            values["delay"] = _prob("delay", p, spec)
            values["delay_ms"] = _ms("delay", ms, spec)
        elif key == "stuck":
            f, colon, kind = value.partition(":")
            values["stuck"] = _prob("stuck", f, spec)
            kind = kind.strip().lower() or "off"
            if kind not in ("off", "on", "both"):
                raise HilError(f"--faults {spec!r}: stuck kind {kind!r} unknown; use off, on or both (e.g. stuck=0.01:on)")
            values["stuck_kind"] = kind
        elif key == "slowop":
            values["slowop_ms"] = _ms("slowop", value, spec)
        elif key == "stale_replay":
            if value not in ("0", "1"):
                raise HilError(f"--faults {spec!r}: stale_replay={value} must be 0 or 1")
            values["stale_replay"] = value == "1"
        else:
            try:
                seed = int(value)
            except ValueError:
                seed = -1
            if not 0 <= seed < 2**63:
                raise HilError(f"--faults {spec!r}: seed={value} must be an integer in [0, 2^63)")
            values["seed"] = seed
    return FaultSpec(**values)


class FaultInjector:
    """The link faults of a :class:`FaultSpec`, drawn from one seeded generator (thread-safe).
    Counts what it injected in ``counts``."""

    def __init__(self, spec: FaultSpec):
        self.spec = spec
        self._rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x4641554C]))
        self._lock = threading.Lock()
        self.counts = {"dropped_in": 0, "dropped_out": 0, "corrupted_in": 0, "corrupted_out": 0, "delayed": 0, "disconnects": 0}

    def _hit(self, p: float, name: str) -> bool:
        if p <= 0:
            return False
        with self._lock:
            hit = bool(self._rng.random() < p)
            if hit:
                self.counts[name] += 1
        return hit

    def drop_in(self) -> bool:
        return self._hit(self.spec.drop, "dropped_in")

    def drop_out(self) -> bool:
        return self._hit(self.spec.drop, "dropped_out")

    def disconnect(self) -> bool:
        return self._hit(self.spec.disconnect, "disconnects")

    def delay_s(self) -> float:
        return self.spec.delay_ms / 1000.0 if self._hit(self.spec.delay, "delayed") else 0.0

    def corrupt(self, data: bytes, name: str) -> bytes:
        """``data`` with one random bit flipped (probability ``corrupt``), else unchanged."""
        if not data or not self._hit(self.spec.corrupt, name):
            return data
        with self._lock:
            bit = int(self._rng.integers(0, 8 * len(data)))
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)
