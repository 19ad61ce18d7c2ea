"""The device model: one YAML file per device/macro in ``device_models/``, validated by a schema.

A :class:`DeviceModel` is a strict (``extra="forbid"``) pydantic tree with one section per
non-ideality; each section is consumed by the module of the same name (``forming``,
``programming``, ``read_noise``, ``drift``, ``stuck``, ``adc``, ``input_encoding``, ``ir_drop``,
``energy``). Units are part of the key names: ``_us`` microsiemens, ``_s`` seconds, ``_j``
joules, ``_ohm`` ohms. Every value in the shipped YAML files carries its source in a comment.

Names: the stems of the shipped presets (``device_models/*.yaml``, installed with the package),
plus the folders in the environment variable ``NEUROHW_DEVICE_MODELS`` (``os.pathsep``-separated;
searched first). ``load_device`` also takes a path to a YAML file.

Errors a user can cause (unknown name, malformed YAML, unknown key, value out of range) raise
:class:`neurohw.errors.DeviceError` with one line that names the file, the key path, the bad
value and the allowed range (the shared configuration layer, :mod:`neurohw.config`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from neurohw.config import Section, merge, read_yaml, validate
from neurohw.errors import DeviceError, did_you_mean
from neurohw.resources import device_models_dir


class DeviceSection(Section):
    """A device section: strict like every schema section, and immutable once loaded."""

    model_config = ConfigDict(frozen=True)


#: the folder of shipped device models (installed with the package, neurohw.resources)
PACKAGED_MODELS = device_models_dir()


# ----------------------------------------------------------------------------- sections


class ArraySpec(DeviceSection):
    """One physical array (tile): ``rows`` word lines x ``cols`` bit lines.

    A differential pair takes two adjacent columns, so a tile holds ``cols // 2`` logical outputs.
    """

    rows: int = Field(ge=1, description="cells per column = logical inputs per tile")
    cols: int = Field(ge=2, description="cells per row; two per differential pair")
    technology: str = Field("", description="free text: cell type, node")

    @model_validator(mode="after")
    def _even(self) -> "ArraySpec":
        if self.cols % 2:
            raise ValueError(f"array.cols must be even (two columns per differential pair), got {self.cols}")
        return self


class Distribution(DeviceSection):
    """A conductance distribution in microsiemens.

    ``gaussian`` / ``lognormal``: ``mean_us`` and ``std_us`` of the conductance itself (the
    lognormal's log-parameters are derived: ``s^2 = ln(1 + std^2/mean^2)``, ``m = ln(mean) - s^2/2``).
    ``histogram``: a measured histogram, ``edges_us`` (increasing, n+1) and ``counts`` (n, >= 0),
    sampled as uniform within each bin.
    """

    kind: Literal["gaussian", "lognormal", "histogram"] = "gaussian"
    mean_us: float | None = Field(None, ge=0.0)
    std_us: float | None = Field(None, ge=0.0)
    edges_us: list[float] | None = None
    counts: list[float] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "Distribution":
        if self.kind in ("gaussian", "lognormal"):
            if self.mean_us is None or self.std_us is None:
                raise ValueError(f"a {self.kind} distribution needs mean_us and std_us")
            if self.kind == "lognormal" and self.mean_us <= 0:
                raise ValueError("a lognormal distribution needs mean_us > 0")
        else:
            e, c = self.edges_us, self.counts
            if e is None or c is None:
                raise ValueError("a histogram distribution needs edges_us and counts")
            if len(e) != len(c) + 1 or len(c) < 1:
                raise ValueError(f"histogram: len(edges_us) must be len(counts) + 1, got {len(e)} and {len(c)}")
            if any(b <= a for a, b in zip(e[:-1], e[1:])) or e[0] < 0:
                raise ValueError("histogram: edges_us must be >= 0 and strictly increasing")
            if any(x < 0 for x in c) or sum(c) <= 0:
                raise ValueError("histogram: counts must be >= 0 with a positive sum")
        return self


class Forming(DeviceSection):
    """Stochastic electroforming: each cell forms with ``probability``; formed cells draw their
    conductance from ``formed``; unformed cells sit at ``unformed_us``. Conductances are clipped
    to ``[g_min_us, g_max_us]``."""

    probability: float = Field(ge=0.0, le=1.0)
    formed: Distribution
    unformed_us: float = Field(0.0, ge=0.0)
    g_min_us: float = Field(0.0, ge=0.0)
    g_max_us: float = Field(gt=0.0)
    pulses_per_cell: int = Field(1, ge=0, description="forming pulses counted per cell in the energy ledger")


class Levels(DeviceSection):
    """Conductance levels: cells sit on multiples of ``step_us`` (null: continuous)."""

    step_us: float | None = Field(None, gt=0.0)


class Programming(DeviceSection):
    """Programming with write-verify: each pulse lands at ``target + N(0, pulse_std_us)``; with
    ``write_verify`` the cell is re-pulsed until ``|g - target| <= tolerance_us`` or
    ``max_pulses`` is reached. Targets lie in ``[g_min_us, g_max_us]``."""

    write_verify: bool = True
    tolerance_us: float = Field(ge=0.0)
    pulse_std_us: float = Field(ge=0.0)
    max_pulses: int = Field(ge=1)
    g_min_us: float = Field(0.0, ge=0.0)
    g_max_us: float = Field(gt=0.0)


class ReadNoise(DeviceSection):
    """Per-read noise, fresh on every read: ``w (1 + relative N(0,1)) + scale * additive_us N(0,1)``
    per differential pair read."""

    relative: float = Field(0.0, ge=0.0)
    additive_us: float = Field(0.0, ge=0.0)


class Drift(DeviceSection):
    """Conductance drift ``G(t) = G0 (t/t0)^-nu`` for ``t > t0``; ``nu ~ N(nu_mean, nu_std)``
    per cell, clipped at 0."""

    enabled: bool = False
    t0_s: float = Field(1.0, gt=0.0)
    nu_mean: float = Field(0.0, ge=0.0)
    nu_std: float = Field(0.0, ge=0.0)


class Stuck(DeviceSection):
    """Stuck-at cells: a cell is stuck on with ``p_on`` (at ``g_on_us``), off with ``p_off``
    (at ``g_off_us``); stuck cells ignore forming, programming and drift."""

    p_on: float = Field(0.0, ge=0.0, le=1.0)
    p_off: float = Field(0.0, ge=0.0, le=1.0)
    g_on_us: float = Field(0.0, ge=0.0)
    g_off_us: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _sum(self) -> "Stuck":
        if self.p_on + self.p_off > 1.0:
            raise ValueError(f"stuck.p_on + stuck.p_off must be <= 1, got {self.p_on + self.p_off}")
        return self


class AdcSpec(DeviceSection):
    """The column ADC of a tile: signed ``bits``-bit codes in ``[-(2^(bits-1)-1), 2^(bits-1)-1]``
    over a full scale of ``+-range_us`` (uS of partial sum at unit input), or, with
    ``gain: per_tile``, over each tile's largest possible binary-input partial sum. ``bits: null``
    = no ADC (exact digital partial sums). ``gain_error_std``: relative std of each tile's
    analog gain (a mismatch the digital side does not know)."""

    bits: int | None = Field(None, ge=1, le=32)
    range_us: float = Field(1.0, gt=0.0)
    gain: Literal["fixed", "per_tile"] = "fixed"
    gain_error_std: float = Field(0.0, ge=0.0)


class InputSpec(DeviceSection):
    """How inputs reach the word lines. ``bits: null``: analog float inputs, exact. ``bits: n``:
    inputs quantised to codes ``0..2^n-1`` (``full_scale: null``: the inputs are the codes
    themselves, rounded and clipped; else ``code = rint(x / full_scale * (2^n - 1))``).
    ``bit_serial``: one read per bit plane, shifted and added digitally; otherwise one read
    with the quantised amplitude. Negative inputs take a second (negated) pass."""

    bits: int | None = Field(None, ge=1, le=16)
    full_scale: float | None = Field(None, gt=0.0)
    bit_serial: bool = True


class IrDrop(DeviceSection):
    """First-order IR drop along word and bit lines (``wire_resistance_ohm`` per cell pitch)."""

    enabled: bool = False
    wire_resistance_ohm: float = Field(0.0, ge=0.0)


class Energy(DeviceSection):
    """Energy per counted event, in joules (see :mod:`neurohw.devices.energy`).
    ``adc_conversion_bits``: the ADC resolution ``adc_conversion_j`` is given for; with it, a
    conversion at the device's ``adc.bits`` costs ``adc_conversion_j * 2^(adc.bits -
    adc_conversion_bits)`` (a constant Walden figure of merit); without it, ``adc_conversion_j``
    whatever the bits."""

    cell_read_j: float = Field(ge=0.0)
    active_row_j: float = Field(ge=0.0)
    adc_conversion_j: float = Field(ge=0.0)
    adc_conversion_bits: int | None = Field(None, ge=1, le=32)
    programming_pulse_j: float = Field(ge=0.0)


class Timing(DeviceSection):
    """Time per array read cycle (drive rows, settle, convert all columns) and per pulse, seconds."""

    read_cycle_s: float = Field(ge=0.0)
    programming_pulse_s: float = Field(ge=0.0)


class DigitalBaseline(DeviceSection):
    """A digital MAC for comparison: energy per multiply-accumulate and its source."""

    mac_j: float = Field(gt=0.0)
    source: str = ""


class DeviceModel(DeviceSection):
    """A complete device description (see the module doc and ``device_models/*.yaml``)."""

    name: str
    description: str = ""
    source: str = ""
    array: ArraySpec
    forming: Forming
    levels: Levels = Field(default_factory=Levels)
    programming: Programming
    read_noise: ReadNoise = Field(default_factory=ReadNoise)
    drift: Drift = Field(default_factory=Drift)
    stuck: Stuck = Field(default_factory=Stuck)
    adc: AdcSpec = Field(default_factory=AdcSpec)
    input: InputSpec = Field(default_factory=InputSpec)
    ir_drop: IrDrop = Field(default_factory=IrDrop)
    energy: Energy
    timing: Timing
    digital_baseline: DigitalBaseline
    _source_path: str = PrivateAttr("")

    @property
    def tile_rows(self) -> int:
        """Logical inputs per tile (word lines)."""
        return self.array.rows

    @property
    def tile_cols(self) -> int:
        """Logical outputs per tile (differential pairs per row)."""
        return self.array.cols // 2

    @property
    def source_path(self) -> str:
        """The file this model was loaded from ("" when built in code)."""
        return self._source_path


# ----------------------------------------------------------------------------- search and load


def search_paths() -> list[Path]:
    """Folders searched for ``<name>.yaml``: ``NEUROHW_DEVICE_MODELS`` entries, then the packaged folder."""
    extra = [Path(p) for p in os.environ.get("NEUROHW_DEVICE_MODELS", "").split(os.pathsep) if p]
    return [*extra, PACKAGED_MODELS]


def list_devices() -> list[str]:
    """The device names found on the search path (sorted, first occurrence wins)."""
    names: set[str] = set()
    for folder in search_paths():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def device_path(name_or_path: str | Path) -> Path:
    """Resolve a device name or a YAML path to a file; unknown names -> DeviceError with a hint."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text:
        if not path.is_file():
            raise DeviceError(f"{path}: no such device model file")
        return path
    for folder in search_paths():
        cand = folder / f"{text}.yaml"
        if cand.is_file():
            return cand
    names = list_devices()
    raise DeviceError(
        f"unknown device model '{text}'{did_you_mean(text, names)}; known: {', '.join(names) or 'none'}"
        " (names are device_models/*.yaml stems; NEUROHW_DEVICE_MODELS adds folders)"
    )


def validate_device(raw: dict, source: str = "<device>") -> DeviceModel:
    """Validate a raw mapping into a :class:`DeviceModel`; errors become one DeviceError line."""
    model = validate(DeviceModel, raw, source, error=DeviceError)
    _check_consistency(model, source)
    model._source_path = source
    return model


def _check_consistency(m: DeviceModel, source: str) -> None:
    if m.forming.g_min_us > m.forming.g_max_us:
        raise DeviceError(f"{source}: key 'forming.g_min_us' = {m.forming.g_min_us} exceeds forming.g_max_us = {m.forming.g_max_us}")
    if m.programming.g_min_us >= m.programming.g_max_us:
        raise DeviceError(
            f"{source}: key 'programming.g_min_us' = {m.programming.g_min_us} must be < programming.g_max_us = {m.programming.g_max_us}"
        )


def load_device(name_or_path: str | Path, overrides: dict | None = None) -> DeviceModel:
    """Load and validate a device model by name (``device_models/<name>.yaml``) or path.

    ``overrides``: nested dicts or dotted keys, e.g. ``{"read_noise": {"relative": 0.05}}`` or
    ``{"read_noise.relative": 0.05}``, merged before validation (so they are validated too).
    """
    path = device_path(name_or_path)
    raw = read_yaml(path, DeviceError, "device model")
    source = str(path)
    if overrides:
        if not isinstance(overrides, dict):
            raise DeviceError(f"{source}: overrides must be a mapping, got {type(overrides).__name__}")
        raw = merge(raw, overrides, source, DeviceError)
        source = f"{path} (with overrides)"
    return validate_device(raw, source)
