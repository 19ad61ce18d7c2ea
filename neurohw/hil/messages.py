"""The payloads of the HIL protocol's commands and replies (docs/hil-protocol.md, "Commands").

Each type packs to and unpacks from the payload bytes of one frame, little-endian. Unpacking
checks sizes only (a payload that does not fit its opcode raises :class:`PayloadError` with
status BAD_LENGTH or BAD_REQUEST); ranges (tiles, rows, conductances) are the chip's to check.

Layouts shared by several commands:
- block: ``u16 tile, u16 row0, u16 nrows, u16 col0, u16 ncols``: rows ``row0 .. row0+nrows-1``
  (word lines) and differential pairs ``col0 .. col0+ncols-1`` of one tile; pair ``j`` is the
  physical bit lines ``2j`` (G+) and ``2j+1`` (G-).
- cell arrays (READ, PROGRAM, FORM's formed map): ``nrows x 2 ncols`` values, row-major, the
  two cells of each pair adjacent (G+ then G-): the conductance-map layout of
  :mod:`neurohw.devices.conductance_map`.
- bit arrays: numpy ``packbits(..., bitorder="little")``: element ``i`` of a row is bit
  ``i % 8`` of byte ``i // 8``; every row is padded to whole bytes where stated.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from neurohw.hil.protocol import Status

BLOCK = struct.Struct("<HHHHH")
HELLO = struct.Struct("<BBHIQH")
HELLO_REPLY = struct.Struct("<BBHIIII")
INFO = struct.Struct("<HHHBBBBdddddQI")
FORM = struct.Struct("<QB")
FORM_REPLY = struct.Struct("<III")
PROGRAM = struct.Struct("<Q")
PROGRAM_REPLY = struct.Struct("<IIQ")
MVM = struct.Struct("<HBB")
MVM_REPLY = struct.Struct("<HBBH")
F64 = struct.Struct("<d")
U32 = struct.Struct("<I")
PROGRESS = struct.Struct("<II")
VERSION_PAIR = struct.Struct("<BB")

MAX_NAME = 255
#: bytes of the AUTH challenge in a HELLO reply with CAP_AUTH
CHALLENGE_SIZE = 32

#: HELLO capabilities (u32 bit set)
CAP_EXACT = 0x1  # MVM honours the EXACT flag (an emulator; a physical chip cannot)
CAP_TIME = 0x2  # TIME advances the drift clock
CAP_ABORT = 0x4  # ABORT stops a long operation
CAP_STATS = 0x8  # STATS reports the server's counters
CAP_AUTH = 0x10  # AUTH_REQUIRED: the session opens only after AUTH (the HELLO reply carries a challenge)

#: INFO flags (u8 bit set)
INFO_BIT_SERIAL = 0x01  # multi-bit inputs are read one binary plane at a time
INFO_PER_TILE_GAIN = 0x02  # each tile's ADC LSB is set from its own contents (tile_lsb_us)
INFO_DRIFT = 0x04  # conductances drift with the clock
INFO_EXACT = 0x08  # MVM honours the EXACT flag
INFO_TIME = 0x10  # TIME is supported

#: MVM reply kinds
KIND_CODES = 0  # int32 ADC codes
KIND_ANALOG = 1  # float64 partial sums in uS (a chip without ADC; emulation only)


class PayloadError(ValueError):
    """A payload that does not fit its opcode; ``status`` is the reply status to send."""

    def __init__(self, message: str, status: int = Status.BAD_LENGTH):
        super().__init__(message)
        self.status = int(status)


def _need(payload: bytes, size: int, what: str) -> None:
    if len(payload) != size:
        raise PayloadError(f"{what} payload is {len(payload)} bytes, expected {size}")


def _at_least(payload: bytes, size: int, what: str) -> None:
    if len(payload) < size:
        raise PayloadError(f"{what} payload is {len(payload)} bytes, expected at least {size}")


def _bits(values: np.ndarray) -> bytes:
    return np.packbits(np.asarray(values, dtype=bool), axis=-1, bitorder="little").tobytes()


def _unbits(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """A bool array of ``shape`` from packed bits, the last axis padded to whole bytes."""
    nb = -(-shape[-1] // 8)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(*shape[:-1], nb)
    return np.unpackbits(raw, axis=-1, count=shape[-1], bitorder="little").astype(bool)


# ----------------------------------------------------------------------------- block


@dataclass(frozen=True)
class Block:
    """Rows ``row0 .. row0+nrows-1`` and pairs ``col0 .. col0+ncols-1`` of tile ``tile``."""

    tile: int
    row0: int
    nrows: int
    col0: int
    ncols: int

    def __post_init__(self):
        for name in ("tile", "row0", "nrows", "col0", "ncols"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= 0xFFFF:
                raise ValueError(f"block {name} = {v!r} is not an integer in 0..65535")

    @property
    def rows(self) -> slice:
        return slice(self.row0, self.row0 + self.nrows)

    @property
    def cols(self) -> slice:
        return slice(self.col0, self.col0 + self.ncols)

    @property
    def cells(self) -> int:
        """Physical cells: two per pair."""
        return 2 * self.nrows * self.ncols

    def pack(self) -> bytes:
        return BLOCK.pack(self.tile, self.row0, self.nrows, self.col0, self.ncols)

    @classmethod
    def unpack_from(cls, payload: bytes, what: str) -> "Block":
        _at_least(payload, BLOCK.size, what)
        return cls(*BLOCK.unpack_from(payload))

    def __str__(self) -> str:
        return f"tile {self.tile} rows {self.row0}..{self.row0 + self.nrows - 1} pairs {self.col0}..{self.col0 + self.ncols - 1}"


# ----------------------------------------------------------------------------- HELLO


@dataclass(frozen=True)
class Hello:
    """HELLO request: the versions the client speaks, a session to resume (0: a new one), the
    new chip's seed (emulator: stuck-cell faults, ADC gain mismatch, read-noise key), a name."""

    min_version: int
    max_version: int
    resume: int = 0
    chip_seed: int = 0
    name: str = ""

    def pack(self) -> bytes:
        name = self.name.encode("utf-8")[:MAX_NAME]
        return HELLO.pack(self.min_version, self.max_version, 0, self.resume, self.chip_seed, len(name)) + name

    @classmethod
    def unpack(cls, payload: bytes) -> "Hello":
        _at_least(payload, HELLO.size, "HELLO")
        vmin, vmax, reserved, resume, seed, n = HELLO.unpack_from(payload)
        _need(payload, HELLO.size + n, "HELLO")
        if n > MAX_NAME:
            raise PayloadError(f"HELLO client name of {n} bytes; at most {MAX_NAME}", Status.BAD_REQUEST)
        try:
            name = payload[HELLO.size :].decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("HELLO client name is not UTF-8", Status.BAD_REQUEST) from None
        if reserved:
            raise PayloadError("HELLO reserved field must be 0", Status.BAD_REQUEST)
        return cls(vmin, vmax, resume, seed, name)


@dataclass(frozen=True)
class HelloReply:
    """HELLO's reply: 20 bytes, then (capability CAP_AUTH set) the 32-byte AUTH challenge."""

    version: int
    resumed: bool
    session: int
    max_payload: int
    capabilities: int
    last_seq: int
    challenge: bytes = b""

    def pack(self) -> bytes:
        return HELLO_REPLY.pack(self.version, int(self.resumed), 0, self.session, self.max_payload, self.capabilities, self.last_seq) + self.challenge

    @classmethod
    def unpack(cls, payload: bytes) -> "HelloReply":
        _at_least(payload, HELLO_REPLY.size, "HELLO reply")
        v, resumed, _, session, max_payload, caps, last = HELLO_REPLY.unpack_from(payload)
        _need(payload, HELLO_REPLY.size + (CHALLENGE_SIZE if caps & CAP_AUTH else 0), "HELLO reply")
        return cls(v, bool(resumed), session, max_payload, caps, last, bytes(payload[HELLO_REPLY.size :]))


# ----------------------------------------------------------------------------- INFO


@dataclass(frozen=True)
class ChipInfo:
    """What INFO reports: geometry, ADC, inputs, conductance window, clock, device facts.

    ``cols``: physical bit lines per tile (``cols // 2`` pairs). ``adc_bits`` 0: no ADC (MVM
    returns analog sums). ``lsb_us``: the ADC's nominal LSB in uS of partial sum at unit input
    (``code * lsb_us`` is the column's (G+ - G-) sum); ``tile_lsb_us``: the LSB of each tile
    (equal to ``lsb_us`` unless the gain is set per tile). ``input_bits`` 0: analog inputs.
    ``max_planes``: input planes one MVM may carry. ``level_step_us`` 0: continuous
    conductances. ``g_min_us``/``g_max_us``: PROGRAM's target window. ``facts``: the device
    model as a dict (the emulator sends its YAML's content; a board may send ``{}``).
    """

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
    tile_lsb_us: tuple[float, ...]
    name: str = ""
    facts: dict = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.cols // 2

    @property
    def adc_max_code(self) -> int:
        return max(2 ** (self.adc_bits - 1) - 1, 1) if self.adc_bits else 0

    @property
    def bit_serial(self) -> bool:
        return bool(self.flags & INFO_BIT_SERIAL)

    @property
    def per_tile_gain(self) -> bool:
        return bool(self.flags & INFO_PER_TILE_GAIN)

    @property
    def exact_reads(self) -> bool:
        return bool(self.flags & INFO_EXACT)

    @property
    def drift(self) -> bool:
        return bool(self.flags & INFO_DRIFT)

    @property
    def has_time(self) -> bool:
        return bool(self.flags & INFO_TIME)

    def pack(self) -> bytes:
        name = self.name.encode("utf-8")[:MAX_NAME]
        facts = json.dumps(self.facts, sort_keys=True).encode("utf-8")
        head = INFO.pack(
            self.tiles, self.rows, self.cols, self.adc_bits, self.input_bits, self.max_planes, self.flags,
            self.lsb_us, self.level_step_us, self.g_min_us, self.g_max_us, self.clock_s, self.chip_id, self.max_payload,
        )  # fmt: skip
        lsb = np.asarray(self.tile_lsb_us, dtype="<f8").tobytes()
        return head + lsb + struct.pack("<H", len(name)) + name + U32.pack(len(facts)) + facts

    @classmethod
    def unpack(cls, payload: bytes) -> "ChipInfo":
        _at_least(payload, INFO.size, "INFO reply")
        f = INFO.unpack_from(payload)
        tiles = f[0]
        off = INFO.size
        _at_least(payload, off + 8 * tiles + 2, "INFO reply")
        lsb = tuple(float(v) for v in np.frombuffer(payload, dtype="<f8", count=tiles, offset=off))
        off += 8 * tiles
        (n,) = struct.unpack_from("<H", payload, off)
        off += 2
        _at_least(payload, off + n + 4, "INFO reply")
        name = payload[off : off + n].decode("utf-8", errors="replace")
        off += n
        (m,) = U32.unpack_from(payload, off)
        off += 4
        _need(payload, off + m, "INFO reply")
        try:
            facts = json.loads(payload[off : off + m].decode("utf-8")) if m else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PayloadError("INFO reply facts are not JSON", Status.BAD_REQUEST) from None
        return cls(*f, tile_lsb_us=lsb, name=name, facts=facts if isinstance(facts, dict) else {})


# ----------------------------------------------------------------------------- FORM


@dataclass(frozen=True)
class FormRequest:
    """FORM: electroform the block's cells, seeded; ``mask`` (nrows, ncols) bool: pairs to
    form (None: all); pairs outside it are not touched."""

    block: Block
    seed: int
    mask: np.ndarray | None = None

    def pack(self) -> bytes:
        out = self.block.pack() + FORM.pack(self.seed, 0 if self.mask is None else 1)
        if self.mask is not None:
            out += _bits(np.asarray(self.mask, bool).reshape(-1))
        return out

    @classmethod
    def unpack(cls, payload: bytes) -> "FormRequest":
        block = Block.unpack_from(payload, "FORM")
        _at_least(payload, BLOCK.size + FORM.size, "FORM")
        seed, has_mask = FORM.unpack_from(payload, BLOCK.size)
        off = BLOCK.size + FORM.size
        if has_mask not in (0, 1):
            raise PayloadError(f"FORM has_mask must be 0 or 1, got {has_mask}", Status.BAD_REQUEST)
        if not has_mask:
            _need(payload, off, "FORM")
            return cls(block, seed, None)
        n = block.nrows * block.ncols
        _need(payload, off + -(-n // 8), "FORM")
        mask = _unbits(payload[off:], (n,)).reshape(block.nrows, block.ncols)
        return cls(block, seed, mask)


@dataclass(frozen=True)
class FormReply:
    """FORM's result: cells that formed, cells stuck, forming pulses, and the formed map
    (nrows, 2 ncols) bool, G+/G- interleaved."""

    formed_cells: int
    stuck_cells: int
    pulses: int
    formed: np.ndarray

    def pack(self) -> bytes:
        return FORM_REPLY.pack(self.formed_cells, self.stuck_cells, self.pulses) + _bits(np.asarray(self.formed, bool).reshape(-1))

    @classmethod
    def unpack(cls, payload: bytes, block: Block) -> "FormReply":
        n = block.cells
        _need(payload, FORM_REPLY.size + -(-n // 8), "FORM reply")
        a, b, c = FORM_REPLY.unpack_from(payload)
        formed = _unbits(payload[FORM_REPLY.size :], (n,)).reshape(block.nrows, 2 * block.ncols)
        return cls(a, b, c, formed)


# ----------------------------------------------------------------------------- PROGRAM


@dataclass(frozen=True)
class ProgramRequest:
    """PROGRAM: write-verify ``targets`` (nrows, 2 ncols) float64 uS into the block, seeded;
    NaN leaves a cell as it is."""

    block: Block
    seed: int
    targets: np.ndarray

    def pack(self) -> bytes:
        t = np.ascontiguousarray(self.targets, dtype="<f8")
        return self.block.pack() + PROGRAM.pack(self.seed) + t.tobytes()

    @classmethod
    def unpack(cls, payload: bytes) -> "ProgramRequest":
        block = Block.unpack_from(payload, "PROGRAM")
        off = BLOCK.size + PROGRAM.size
        _need(payload, off + 8 * block.cells, "PROGRAM")
        (seed,) = PROGRAM.unpack_from(payload, BLOCK.size)
        t = np.frombuffer(payload, dtype="<f8", offset=off).reshape(block.nrows, 2 * block.ncols).astype(np.float64)
        return cls(block, seed, t)


@dataclass(frozen=True)
class ProgramReply:
    """PROGRAM's result: cells programmed (targets not NaN), of them converged, total pulses;
    per cell ``pulses`` (nrows, 2 ncols) uint16 and ``converged`` bool."""

    programmed: int
    converged_cells: int
    total_pulses: int
    pulses: np.ndarray
    converged: np.ndarray

    def pack(self) -> bytes:
        p = np.ascontiguousarray(np.minimum(self.pulses, 0xFFFF), dtype="<u2")
        return PROGRAM_REPLY.pack(self.programmed, self.converged_cells, self.total_pulses) + p.tobytes() + _bits(np.asarray(self.converged, bool).reshape(-1))

    @classmethod
    def unpack(cls, payload: bytes, block: Block) -> "ProgramReply":
        n = block.cells
        _need(payload, PROGRAM_REPLY.size + 2 * n + -(-n // 8), "PROGRAM reply")
        a, b, c = PROGRAM_REPLY.unpack_from(payload)
        off = PROGRAM_REPLY.size
        shape = (block.nrows, 2 * block.ncols)
        pulses = np.frombuffer(payload, dtype="<u2", count=n, offset=off).reshape(shape).astype(np.int32)
        conv = _unbits(payload[off + 2 * n :], (n,)).reshape(shape)
        return cls(a, b, c, pulses, conv)


# ----------------------------------------------------------------------------- READ


def pack_read_reply(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def unpack_read_reply(payload: bytes, block: Block) -> np.ndarray:
    _need(payload, 8 * block.cells, "READ reply")
    return np.frombuffer(payload, dtype="<f8").reshape(block.nrows, 2 * block.ncols).astype(np.float64)


def unpack_block_only(payload: bytes, what: str) -> Block:
    _need(payload, BLOCK.size, what)
    return Block.unpack_from(payload, what)


# ----------------------------------------------------------------------------- MVM


@dataclass(frozen=True)
class MvmRequest:
    """MVM: ``planes`` (B, P, nrows) of 0/1 drive the block's rows; plane ``k`` of vector ``b``
    is one array read; ``nonces`` (B,) uint64 key the emulator's read noise per vector (a chip
    ignores them)."""

    block: Block
    planes: np.ndarray
    nonces: np.ndarray

    def pack(self) -> bytes:
        p = np.asarray(self.planes)
        B, P, n = p.shape
        nonces = np.ascontiguousarray(self.nonces, dtype="<u8")
        return self.block.pack() + MVM.pack(B, P, 0) + nonces.tobytes() + _bits(p)

    @staticmethod
    def size(nrows: int, batch: int, planes: int) -> int:
        return BLOCK.size + MVM.size + 8 * batch + batch * planes * -(-nrows // 8)

    @classmethod
    def unpack(cls, payload: bytes) -> "MvmRequest":
        block = Block.unpack_from(payload, "MVM")
        _at_least(payload, BLOCK.size + MVM.size, "MVM")
        B, P, reserved = MVM.unpack_from(payload, BLOCK.size)
        if reserved:
            raise PayloadError("MVM reserved byte must be 0", Status.BAD_REQUEST)
        _need(payload, cls.size(block.nrows, B, P), "MVM")
        if B == 0:
            raise PayloadError("MVM with B = 0 vectors; send at least one", Status.OUT_OF_RANGE)
        if P == 0:
            raise PayloadError("MVM with P = 0 planes per vector; send at least one", Status.OUT_OF_RANGE)
        off = BLOCK.size + MVM.size
        nonces = np.frombuffer(payload, dtype="<u8", count=B, offset=off).astype(np.uint64)
        rows = payload[off + 8 * B :]
        pad = -block.nrows % 8
        if pad and block.nrows:
            last = np.frombuffer(rows, dtype=np.uint8).reshape(B * P, -1)[:, -1]
            if np.any(last >> np.uint8(8 - pad)):
                raise PayloadError(f"MVM bit rows have nonzero padding bits (rows of {block.nrows} bits are padded with {pad} zero bits)", Status.BAD_REQUEST)
        planes = _unbits(rows, (B, P, block.nrows))
        return cls(block, planes, nonces)


@dataclass(frozen=True)
class MvmReply:
    """MVM's result: ``values`` (B, P, ncols): int32 ADC codes (kind 0) or float64 analog sums
    in uS (kind 1, a chip without ADC)."""

    values: np.ndarray

    @property
    def kind(self) -> int:
        return KIND_ANALOG if self.values.dtype.kind == "f" else KIND_CODES

    def pack(self) -> bytes:
        v = self.values
        B, P, n = v.shape
        dt = "<f8" if self.kind == KIND_ANALOG else "<i4"
        return MVM_REPLY.pack(B, P, self.kind, n) + np.ascontiguousarray(v, dtype=dt).tobytes()

    @staticmethod
    def size(ncols: int, batch: int, planes: int, analog: bool) -> int:
        return MVM_REPLY.size + batch * planes * ncols * (8 if analog else 4)

    @classmethod
    def unpack(cls, payload: bytes) -> "MvmReply":
        _at_least(payload, MVM_REPLY.size, "MVM reply")
        B, P, kind, n = MVM_REPLY.unpack_from(payload)
        if kind not in (KIND_CODES, KIND_ANALOG):
            raise PayloadError(f"MVM reply kind {kind} unknown", Status.BAD_REQUEST)
        _need(payload, cls.size(n, B, P, kind == KIND_ANALOG), "MVM reply")
        dt = "<f8" if kind == KIND_ANALOG else "<i4"
        v = np.frombuffer(payload, dtype=dt, offset=MVM_REPLY.size).reshape(B, P, n)
        return cls(v.astype(np.float64 if kind == KIND_ANALOG else np.int32))


# ----------------------------------------------------------------------------- small ones


def pack_f64(value: float) -> bytes:
    return F64.pack(float(value))


def unpack_f64(payload: bytes, what: str) -> float:
    _need(payload, F64.size, what)
    return F64.unpack(payload)[0]


def pack_u32(value: int) -> bytes:
    return U32.pack(int(value))


def unpack_u32(payload: bytes, what: str) -> int:
    _need(payload, U32.size, what)
    return U32.unpack(payload)[0]


def pack_progress(done: int, total: int) -> bytes:
    return PROGRESS.pack(min(int(done), 0xFFFFFFFF), min(int(total), 0xFFFFFFFF))


def unpack_progress(payload: bytes) -> tuple[int, int]:
    _need(payload, PROGRESS.size, "progress")
    return PROGRESS.unpack(payload)


def pack_error(message: str) -> bytes:
    """An error reply's payload: a short UTF-8 message (at most 200 bytes)."""
    return message.encode("utf-8")[:200]


def pack_version_error(vmin: int, vmax: int, message: str) -> bytes:
    return VERSION_PAIR.pack(vmin, vmax) + pack_error(message)


def unpack_version_error(payload: bytes) -> tuple[int, int, str]:
    if len(payload) < VERSION_PAIR.size:
        return 0, 0, payload.decode("utf-8", errors="replace")
    vmin, vmax = VERSION_PAIR.unpack_from(payload)
    return vmin, vmax, payload[VERSION_PAIR.size :].decode("utf-8", errors="replace")


def pack_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def unpack_json(payload: bytes, what: str):
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError(f"{what} payload is not UTF-8 JSON", Status.BAD_REQUEST) from None
