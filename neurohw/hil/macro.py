"""One API for an in-memory-computing macro, in process or over a link.

:class:`Macro` is what the host sees of a chip: ``info``, ``form``, ``program``, ``read``,
``mvm`` (and ``mvm_many``: several reads in one exchange), ``time``, ``reset``, ``stats``.
Two implementations behave the same, as Rockpool pairs XyloSim with XyloSamna:

- :class:`LocalMacro`: the chip emulator (:class:`neurohw.hil.chip.ChipEmulator`, i.e.
  neurohw's crossbar and device models) in this process;
- :class:`neurohw.hil.remote.RemoteMacro`: the HIL protocol over TCP or a serial port, to the
  emulator (``neurohw hil serve``) or to a board.
Given the same device, chip seed and calls, both return the same numbers, bit for bit (the
emulator's read noise is keyed by each vector's nonce, not by timing or transport).

Blocks (:class:`neurohw.hil.messages.Block`) address rows and differential pairs of one tile.
Cell arrays are ``(nrows, 2 ncols)`` in uS, G+ and G- interleaved (the conductance-map
layout). MVM inputs are binary planes ``(B, P, nrows)``; :func:`bit_planes` makes them from
integer inputs. Results are raw ADC codes ``(B, P, ncols)``; the host converts them:
``value = sum_k 2^k code_k * tile_lsb_us[tile]`` uS (:func:`codes_to_microsiemens`), times the
crossbar's scale for weight units. A refused request raises
:class:`neurohw.hil.errors.HilStatusError` (one line, with the status).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from neurohw.devices.model import DeviceModel, load_device
from neurohw.hil.chip import ChipEmulator
from neurohw.hil.errors import ChipRangeError, HilStatusError
from neurohw.hil.messages import Block, ChipInfo, FormReply, ProgramReply
from neurohw.hil.protocol import Status
from neurohw.hil.session import CHUNK_ROWS

#: progress callback of long operations: (done cells, total cells) -> False to abort
Progress = Callable[[int, int], "bool | None"]
#: default nonces start here (the reservoir keys its own nonces by sample and step, below 2^63)
NONCE_BASE = 1 << 63


class MvmCall(NamedTuple):
    """One MVM of a batch: ``planes`` (B, P, nrows) 0/1 on ``block``; ``nonces`` (B,) uint64
    (None: the macro's own counter)."""

    block: Block
    planes: np.ndarray
    nonces: np.ndarray | None = None


def bit_planes(x: np.ndarray, n_planes: int | None = None) -> np.ndarray:
    """Integer inputs ``x`` (B, n) >= 0 as binary planes (B, P, n), plane ``k`` = bit ``k``
    (least significant first); ``n_planes`` None: as many as the largest value needs (>= 1)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"inputs must be (batch, rows), got shape {x.shape}")
    if x.size and (x.min() < 0 or not np.all(np.mod(x, 1) == 0)):
        raise ValueError("inputs must be non-negative integers (codes); quantise them first")
    xi = x.astype(np.int64)
    top = int(xi.max(initial=0))
    need = max(1, top.bit_length())
    P = need if n_planes is None else int(n_planes)
    if P < need:
        raise ValueError(f"inputs up to {top} need {need} planes, got n_planes={P}")
    shifts = np.arange(P, dtype=np.int64)
    return ((xi[:, None, :] >> shifts[None, :, None]) & 1).astype(np.uint8)


def combine_planes(values: np.ndarray) -> np.ndarray:
    """Shift-and-add of per-plane results (B, P, n) -> (B, n): ``sum_k 2^k v_k`` (int64 for
    codes, float64 for analog sums)."""
    v = np.asarray(values)
    weights = (1 << np.arange(v.shape[1], dtype=np.int64)).astype(np.int64 if v.dtype.kind in "iu" else np.float64)
    return np.einsum("bpn,p->bn", v.astype(weights.dtype), weights)


def codes_to_microsiemens(info: ChipInfo, tile: int, values: np.ndarray) -> np.ndarray:
    """Per-plane MVM results (B, P, ncols) of ``tile`` as column sums in uS (B, ncols):
    ``sum_k 2^k code_k * tile_lsb_us[tile]`` (analog results are already uS)."""
    total = combine_planes(values)
    if info.adc_bits == 0:
        return total.astype(np.float64)
    return total.astype(np.float64) * info.tile_lsb_us[tile]


class Macro(ABC):
    """The host's view of an in-memory-computing macro (see the module doc)."""

    #: where the macro is: "local" or the link's URL
    where: str = "macro"

    def __init__(self):
        self._nonce = NONCE_BASE

    def next_nonces(self, n: int) -> np.ndarray:
        """``n`` fresh nonces from the macro's own counter."""
        out = np.arange(self._nonce, self._nonce + n, dtype=np.uint64)
        self._nonce += n
        return out

    @abstractmethod
    def info(self) -> ChipInfo:
        """Geometry, ADC, inputs, conductance window, clock, device facts."""

    @abstractmethod
    def form(self, block: Block, seed: int, mask: np.ndarray | None = None, progress: Progress | None = None) -> FormReply:
        """Electroform the block's pairs (``mask`` (nrows, ncols): which ones; None: all)."""

    @abstractmethod
    def program(self, block: Block, targets: np.ndarray, seed: int, progress: Progress | None = None) -> ProgramReply:
        """Write-verify ``targets`` (nrows, 2 ncols) uS; NaN leaves a cell."""

    @abstractmethod
    def read(self, block: Block) -> np.ndarray:
        """Conductances (nrows, 2 ncols) uS at the chip's clock."""

    def mvm(self, block: Block, planes: np.ndarray, nonces: np.ndarray | None = None, exact: bool = False) -> np.ndarray:
        """One batch of reads: ``planes`` (B, P, nrows) -> (B, P, ncols) codes (or uS sums)."""
        return self.mvm_many([MvmCall(block, planes, nonces)], exact=exact)[0]

    @abstractmethod
    def mvm_many(self, calls: Sequence[MvmCall], exact: bool = False) -> list[np.ndarray]:
        """Several MVMs in one exchange (pipelined over a link); results in order."""

    @abstractmethod
    def time(self, seconds: float) -> float:
        """Advance the drift clock by ``seconds``; returns the clock."""

    @abstractmethod
    def reset(self) -> None:
        """All tiles back to pristine, clock 0."""

    @abstractmethod
    def stats(self) -> dict:
        """The chip's counters (executed operations, energy ledger counts, ...)."""

    def close(self) -> None:
        """Release the macro (a link ends its session)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _nonces_for(self, call: MvmCall) -> np.ndarray:
        B = np.shape(call.planes)[0]
        if call.nonces is None:
            return self.next_nonces(B)
        nonces = np.asarray(call.nonces, dtype=np.uint64).reshape(-1)
        if len(nonces) != B:
            raise ValueError(f"MVM needs one nonce per vector ({B}), got {len(nonces)}")
        return nonces


def checked_planes(planes) -> np.ndarray:
    """MVM input planes ``(batch, planes, rows)`` of 0/1, checked, as uint8."""
    p = np.asarray(planes)
    if p.ndim != 3:
        raise ValueError(f"MVM planes must be (batch, planes, rows), got shape {p.shape}")
    if p.size and np.any((p != 0) & (p != 1)):
        raise ValueError("MVM planes must hold 0 or 1 (use bit_planes for integer inputs)")
    return p.astype(np.uint8, copy=False)


class LocalMacro(Macro):
    """The chip emulator in this process: ``device`` (a DeviceModel, name or path), ``tiles``,
    ``chip_seed`` (as HELLO's), ``extra_stuck`` (as the ``stuck=`` fault)."""

    where = "local macro"

    def __init__(
        self, device: DeviceModel | str = "taox_rram_40nm", tiles: int = 8, chip_seed: int = 0, *, extra_stuck: float = 0.0, extra_stuck_kind: str = "off"
    ):
        super().__init__()
        device = device if isinstance(device, DeviceModel) else load_device(device)
        self.chip = ChipEmulator(device, tiles, chip_seed, extra_stuck=extra_stuck, extra_stuck_kind=extra_stuck_kind)
        self.device = device

    def _refused(self, op: str, exc: Exception, status: int | None = None) -> HilStatusError:
        status = getattr(exc, "status", Status.OUT_OF_RANGE) if status is None else status
        return HilStatusError(f"{self.where}: {op} refused ({Status(status).name.lower().replace('_', ' ')}): {exc}", status)

    def info(self) -> ChipInfo:
        return self.chip.info()

    def _long(self, op: str, plan, progress: Progress | None):
        rows = plan.block.nrows
        per_row = max(plan.cells // max(rows, 1), 1)
        if progress is not None:
            for start in range(0, rows, CHUNK_ROWS):
                done = min(plan.cells, per_row * min(start + CHUNK_ROWS, rows))
                if progress(done, max(plan.cells, 1)) is False:
                    raise HilStatusError(f"{self.where}: {op} of {plan.block} aborted after {done} of {plan.cells} cells; nothing was applied", Status.ABORTED)
        return self.chip.commit(plan)

    def form(self, block: Block, seed: int, mask: np.ndarray | None = None, progress: Progress | None = None) -> FormReply:
        try:
            plan = self.chip.plan_form(block, seed, mask)
        except ChipRangeError as exc:
            raise self._refused("FORM", exc) from None
        return self._long("FORM", plan, progress)

    def program(self, block: Block, targets: np.ndarray, seed: int, progress: Progress | None = None) -> ProgramReply:
        try:
            plan = self.chip.plan_program(block, targets, seed)
        except ChipRangeError as exc:
            raise self._refused("PROGRAM", exc) from None
        return self._long("PROGRAM", plan, progress)

    def read(self, block: Block) -> np.ndarray:
        try:
            return self.chip.read(block)
        except ChipRangeError as exc:
            raise self._refused("READ", exc) from None

    def mvm_many(self, calls: Sequence[MvmCall], exact: bool = False) -> list[np.ndarray]:
        out = []
        for call in calls:
            planes = checked_planes(call.planes)
            nonces = self._nonces_for(call)
            try:
                out.append(self.chip.mvm(call.block, planes, nonces, exact=exact))
            except ChipRangeError as exc:
                raise self._refused("MVM", exc) from None
        return out

    def time(self, seconds: float) -> float:
        try:
            return self.chip.advance(seconds)
        except ChipRangeError as exc:
            raise self._refused("TIME", exc) from None

    def reset(self) -> None:
        self.chip.reset()

    def stats(self) -> dict:
        c = self.chip.counters()
        return {"executed": c["ops"], "ledger": c["ledger"], "clock_s": c["clock_s"]}
