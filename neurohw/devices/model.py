"""The device model: one YAML file per device/macro in ``device_models/``, validated by a schema.

A :class:`DeviceModel` is a strict (``extra="forbid"``) pydantic tree with one section per
non-ideality; each section is consumed by the module of the same name (``forming``,
``programming``, ``read_noise``, ``drift``, ``stuck``, ``adc``, ``input_encoding``, ``ir_drop``,
``energy``). Units are part of the key names: ``_us`` microsiemens, ``_s`` seconds, ``_j``
joules, ``_ohm`` ohms. Every value in the shipped YAML files carries its source in a comment.

Names: the stems of ``device_models/*.yaml`` found next to the package (the repository root),
plus the folders in the environment variable ``NEUROHW_DEVICE_MODELS`` (``os.pathsep``-separated;
searched first). ``load_device`` also takes a path to a YAML file.

Errors a user can cause (unknown name, malformed YAML, unknown key, value out of range) raise
:class:`neurohw.errors.DeviceError` with one line that names the file, the key path, the bad
value and the allowed range.
"""

from __future__ import annotations

import copy
import os
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

import neurohw
from neurohw.errors import DeviceError, did_you_mean, unwrap_annotation

_STRICT = ConfigDict(extra="forbid", frozen=True)

#: the folder of shipped device models: the repository root next to the package
PACKAGED_MODELS = Path(neurohw.__file__).resolve().parents[1] / "device_models"


# ----------------------------------------------------------------------------- sections


class ArraySpec(BaseModel):
    """One physical array (tile): ``rows`` word lines x ``cols`` bit lines.

    A differential pair takes two adjacent columns, so a tile holds ``cols // 2`` logical outputs.
    """

    model_config = _STRICT
    rows: int = Field(ge=1, description="cells per column = logical inputs per tile")
    cols: int = Field(ge=2, description="cells per row; two per differential pair")
    technology: str = Field("", description="free text: cell type, node")

    @model_validator(mode="after")
    def _even(self) -> "ArraySpec":
        if self.cols % 2:
            raise ValueError(f"array.cols must be even (two columns per differential pair), got {self.cols}")
        return self


class Distribution(BaseModel):
    """A conductance distribution in microsiemens.

    ``gaussian`` / ``lognormal``: ``mean_us`` and ``std_us`` of the conductance itself (the
    lognormal's log-parameters are derived: ``s^2 = ln(1 + std^2/mean^2)``, ``m = ln(mean) - s^2/2``).
    ``histogram``: a measured histogram, ``edges_us`` (increasing, n+1) and ``counts`` (n, >= 0),
    sampled as uniform within each bin.
    """

    model_config = _STRICT
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


class Forming(BaseModel):
    """Stochastic electroforming: each cell forms with ``probability``; formed cells draw their
    conductance from ``formed``; unformed cells sit at ``unformed_us``. Conductances are clipped
    to ``[g_min_us, g_max_us]``."""

    model_config = _STRICT
    probability: float = Field(ge=0.0, le=1.0)
    formed: Distribution
    unformed_us: float = Field(0.0, ge=0.0)
    g_min_us: float = Field(0.0, ge=0.0)
    g_max_us: float = Field(gt=0.0)
    pulses_per_cell: int = Field(1, ge=0, description="forming pulses counted per cell in the energy ledger")


class Levels(BaseModel):
    """Conductance levels: cells sit on multiples of ``step_us`` (null: continuous)."""

    model_config = _STRICT
    step_us: float | None = Field(None, gt=0.0)


class Programming(BaseModel):
    """Programming with write-verify: each pulse lands at ``target + N(0, pulse_std_us)``; with
    ``write_verify`` the cell is re-pulsed until ``|g - target| <= tolerance_us`` or
    ``max_pulses`` is reached. Targets lie in ``[g_min_us, g_max_us]``."""

    model_config = _STRICT
    write_verify: bool = True
    tolerance_us: float = Field(ge=0.0)
    pulse_std_us: float = Field(ge=0.0)
    max_pulses: int = Field(ge=1)
    g_min_us: float = Field(0.0, ge=0.0)
    g_max_us: float = Field(gt=0.0)


class ReadNoise(BaseModel):
    """Per-read noise, fresh on every read: ``w (1 + relative N(0,1)) + scale * additive_us N(0,1)``
    per differential pair read."""

    model_config = _STRICT
    relative: float = Field(0.0, ge=0.0)
    additive_us: float = Field(0.0, ge=0.0)


class Drift(BaseModel):
    """Conductance drift ``G(t) = G0 (t/t0)^-nu`` for ``t > t0``; ``nu ~ N(nu_mean, nu_std)``
    per cell, clipped at 0."""

    model_config = _STRICT
    enabled: bool = False
    t0_s: float = Field(1.0, gt=0.0)
    nu_mean: float = Field(0.0, ge=0.0)
    nu_std: float = Field(0.0, ge=0.0)


class Stuck(BaseModel):
    """Stuck-at cells: a cell is stuck on with ``p_on`` (at ``g_on_us``), off with ``p_off``
    (at ``g_off_us``); stuck cells ignore forming, programming and drift."""

    model_config = _STRICT
    p_on: float = Field(0.0, ge=0.0, le=1.0)
    p_off: float = Field(0.0, ge=0.0, le=1.0)
    g_on_us: float = Field(0.0, ge=0.0)
    g_off_us: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _sum(self) -> "Stuck":
        if self.p_on + self.p_off > 1.0:
            raise ValueError(f"stuck.p_on + stuck.p_off must be <= 1, got {self.p_on + self.p_off}")
        return self


class AdcSpec(BaseModel):
    """The column ADC of a tile: signed ``bits``-bit codes in ``[-(2^(bits-1)-1), 2^(bits-1)-1]``
    over a full scale of ``+-range_us`` (uS of partial sum at unit input), or, with
    ``gain: per_tile``, over each tile's largest possible binary-input partial sum. ``bits: null``
    = no ADC (exact digital partial sums). ``gain_error_std``: relative std of each tile's
    analog gain (a mismatch the digital side does not know)."""

    model_config = _STRICT
    bits: int | None = Field(None, ge=1, le=32)
    range_us: float = Field(1.0, gt=0.0)
    gain: Literal["fixed", "per_tile"] = "fixed"
    gain_error_std: float = Field(0.0, ge=0.0)


class InputSpec(BaseModel):
    """How inputs reach the word lines. ``bits: null``: analog float inputs, exact. ``bits: n``:
    inputs quantised to codes ``0..2^n-1`` (``full_scale: null``: the inputs are the codes
    themselves, rounded and clipped; else ``code = rint(x / full_scale * (2^n - 1))``).
    ``bit_serial``: one read per bit plane, shifted and added digitally; otherwise one read
    with the quantised amplitude. Negative inputs take a second (negated) pass."""

    model_config = _STRICT
    bits: int | None = Field(None, ge=1, le=16)
    full_scale: float | None = Field(None, gt=0.0)
    bit_serial: bool = True


class IrDrop(BaseModel):
    """First-order IR drop along word and bit lines (``wire_resistance_ohm`` per cell pitch)."""

    model_config = _STRICT
    enabled: bool = False
    wire_resistance_ohm: float = Field(0.0, ge=0.0)


class Energy(BaseModel):
    """Energy per counted event, in joules (see :mod:`neurohw.devices.energy`)."""

    model_config = _STRICT
    cell_read_j: float = Field(ge=0.0)
    active_row_j: float = Field(ge=0.0)
    adc_conversion_j: float = Field(ge=0.0)
    programming_pulse_j: float = Field(ge=0.0)


class Timing(BaseModel):
    """Time per array read cycle (drive rows, settle, convert all columns) and per pulse, seconds."""

    model_config = _STRICT
    read_cycle_s: float = Field(ge=0.0)
    programming_pulse_s: float = Field(ge=0.0)


class DigitalBaseline(BaseModel):
    """A digital MAC for comparison: energy per multiply-accumulate and its source."""

    model_config = _STRICT
    mac_j: float = Field(gt=0.0)
    source: str = ""


class DeviceModel(BaseModel):
    """A complete device description (see the module doc and ``device_models/*.yaml``)."""

    model_config = _STRICT
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


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise DeviceError(f"{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceError(f"{path}: cannot read the device model ({exc})") from None
    if not isinstance(raw, dict):
        raise DeviceError(f"{path}: the top level must be a mapping of sections (array, forming, ...)")
    return raw


def _merge(raw: dict, overrides: dict, source: str) -> dict:
    """Merge ``overrides`` (nested dicts or dotted keys) into a copy of ``raw``."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise DeviceError(f"{source}: override '{key}': {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        last = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = _merge(node[last], value, source)
        else:
            node[last] = copy.deepcopy(value)
    return out


def _field_at(loc: tuple) -> tuple[type[BaseModel] | None, Any]:
    """(the model that holds the last key of ``loc``, its FieldInfo or None)."""
    node: Any = DeviceModel
    for i, part in enumerate(loc):
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            return None, None
        field = node.model_fields.get(str(part))
        if field is None:
            return node, None
        if i == len(loc) - 1:
            return node, field
        node = unwrap_annotation(field.annotation)
    return None, None


def allowed_range(loc: tuple) -> str:
    """The allowed range of the field at ``loc`` from its schema constraints, e.g. ``[0, 1]``."""
    _, field = _field_at(loc)
    if field is None:
        return ""
    lo = hi = None
    lo_open = hi_open = False
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    ann = unwrap_annotation(field.annotation)
    if typing.get_origin(ann) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(ann))
    if lo is None and hi is None:
        return ""
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _format(exc: ValidationError, source: str) -> DeviceError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        parent_model, _ = _field_at(loc)
        choices = list(parent_model.model_fields) if parent_model is not None else []
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        allowed = f"; allowed keys: {', '.join(choices)}" if choices else ""
        return DeviceError(f"{source}: unknown key '{key}' in {where}{did_you_mean(loc[-1], choices)}{allowed}")
    if err["type"] == "missing":
        return DeviceError(f"{source}: missing required key '{key}'; add it to the device YAML")
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" = {got!r}"
    rng = allowed_range(loc)
    allowed = f"; allowed {rng}" if rng else ""
    return DeviceError(f"{source}: key '{key or '<top>'}'{shown}: {msg}{allowed}")


def validate_device(raw: dict, source: str = "<device>") -> DeviceModel:
    """Validate a raw mapping into a :class:`DeviceModel`; errors become one DeviceError line."""
    try:
        model = DeviceModel.model_validate(raw)
    except ValidationError as exc:
        raise _format(exc, source) from None
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
    raw = _read_yaml(path)
    source = str(path)
    if overrides:
        if not isinstance(overrides, dict):
            raise DeviceError(f"{source}: overrides must be a mapping, got {type(overrides).__name__}")
        raw = _merge(raw, overrides, source)
        source = f"{path} (with overrides)"
    return validate_device(raw, source)
