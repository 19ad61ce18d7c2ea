"""The experiment schema: what one YAML file may say, its defaults, and how it is checked.

Loading is strict: malformed YAML names the line and column; an unknown key names its path and
the closest allowed key; a wrong type or impossible value names the key path and the rule. Every
problem is one line (a :class:`neurohw.errors.ConfigError`, exit code 2). The sections owned by
other modules are validated by their own models: ``data.<m>.binning`` by
:class:`neurohw.data.binning.Binning`, ``reservoir.<m>`` by
:class:`neurohw.reservoir.lsm.LSMConfig`, ``device`` by :func:`neurohw.devices.model.load_device`.

Documented field by field in docs/experiments.md.
"""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neurohw.errors import ConfigError, UserError, did_you_mean, unwrap_annotation

_STRICT = ConfigDict(extra="forbid")

#: the reservoir keys the runner fills in itself (from the binning and the run's seed)
RESERVOIR_DERIVED = ("n_inputs",)


class DataSpec(BaseModel):
    """One modality: which dataset, where, which samples, how its events are binned."""

    model_config = _STRICT

    dataset: str = Field(description="dataset name (neurohw data list): digits-dvs, digits-cochlea, nmnist, ...")
    root: str | None = Field(None, description="folder of the dataset's files; ${ENV} variables are expanded")
    options: dict[str, Any] = Field(default_factory=dict, description="extra options passed to load_dataset")
    train_split: str = Field("train", description="split used for training (and its validation part)")
    test_split: str = Field("test", description="split used only for the final test numbers")
    max_train_per_class: int | None = Field(None, gt=0, description="keep at most this many training samples per class")
    max_test_per_class: int | None = Field(None, gt=0, description="keep at most this many test samples per class")
    binning: dict[str, Any] = Field(description="neurohw.data.binning.Binning: n_bins | bin_width_us, crop, polarity, ...")

    @field_validator("root")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        if v is None:
            return None
        out = os.path.expandvars(os.path.expanduser(v))
        missing = re.findall(r"\$\{?(\w+)\}?", out)
        if missing:
            raise ValueError(f"environment variable {missing[0]} is not set; export it or pass --set <this key>=PATH")
        return out


class DeviceSpec(BaseModel):
    """The device model: a name from device_models/ or a YAML path, plus overrides of its fields."""

    model_config = _STRICT

    model: str = Field("taox_rram_40nm", description="device_models/<name>.yaml stem or a path to a device YAML")
    overrides: dict[str, Any] = Field(default_factory=dict, description="nested overrides, e.g. {read_noise: {relative: 0.05}}")


class HeadSpec(BaseModel):
    """The trained head and its optimiser."""

    model_config = _STRICT

    kind: Literal["linear", "mlp", "ridge", "projection"] | None = Field(
        None, description="linear | mlp | ridge (classify), projection (zero_shot); default from the task"
    )
    hidden: list[int] = Field(default_factory=list, description="hidden layer widths of an MLP / projection head")
    features: list[Literal["rate", "counts", "membrane"]] = Field(
        default_factory=lambda: ["rate"], description="which encoder features the head reads (concatenated)"
    )
    dim: int = Field(64, gt=0, description="projection dimension (zero_shot); paper: 64")
    temperature: float = Field(1.0, gt=0, description="InfoNCE temperature tau; paper: 1.0")
    normalize: bool = Field(False, description="L2-normalise projections before the dot product")
    epochs: int = Field(100, gt=0, description="training epochs; paper: 100")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate; paper: 1e-3")
    batch_size: int = Field(64, gt=1, description="mini-batch size (pairs for zero_shot)")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay (L2)")
    patience: int | None = Field(None, gt=0, description="early stop after this many epochs without validation gain")
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of training samples held out for model selection")
    alphas: list[float] = Field(
        default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0],
        description="ridge: the regularisation strengths tried; the one with the best k-fold accuracy is kept",
    )
    cv_folds: int = Field(5, ge=2, le=100, description="ridge: k of the stratified k-fold cross-validation on the training split")

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("alphas must list at least one value")
        if any(not (a > 0 and a < float("inf")) for a in v):
            raise ValueError(f"alphas must be positive and finite, got {v}")
        return v

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h <= 0 for h in v):
            raise ValueError(f"hidden widths must be positive, got {v}")
        return v


class ZeroShotSpec(BaseModel):
    """The zero-shot protocol: class split, test pairs, model selection."""

    model_config = _STRICT

    seen: list[int | str] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], description="classes trained on (paper: 1-7)")
    unseen: list[int | str] = Field(default_factory=lambda: [8, 9], description="held-out classes (paper: 8-9)")
    test_pairs_per_class: int = Field(100, gt=0, description="test pairs per class (paper: 100); fewer if a split has fewer")
    rotations: list[list[int | str]] | None = Field(
        None, description="extra held-out class sets; each is evaluated with seen = (seen + unseen) minus it"
    )
    selection: Literal["validation", "test_optimistic"] = Field(
        "validation",
        description="validation: select on seen-class validation data; test_optimistic: the paper's selection on "
        "test accuracy (optimistic, labelled so)",
    )
    targets: Literal["class", "pair"] = Field(
        "class", description="InfoNCE positives: every same-class item in the batch (class) or only the pair (pair)"
    )
    prototypical_baseline: bool = Field(True, description="also train the prototypical-network baseline")

    @model_validator(mode="after")
    def _disjoint(self) -> "ZeroShotSpec":
        seen, unseen = [str(c) for c in self.seen], [str(c) for c in self.unseen]
        if len(set(seen)) < 2:
            raise ValueError("seen needs at least 2 different classes")
        if len(set(unseen)) < 2:
            raise ValueError("unseen needs at least 2 different classes (retrieval among 1 class is trivial)")
        both = sorted(set(seen) & set(unseen))
        if both:
            raise ValueError(f"classes {both} are both seen and unseen; a held-out class must not be trained on")
        pool = set(seen) | set(unseen)
        for rot in self.rotations or []:
            r = {str(c) for c in rot}
            if len(r) < 2 or not r <= pool or len(pool - r) < 2:
                raise ValueError(f"rotation {rot} must name >= 2 classes of seen+unseen and leave >= 2 seen")
        return self


class SRNNSpec(BaseModel):
    """The trainable spiking-RNN baseline (snntorch, BPTT) of the paper."""

    model_config = _STRICT

    enabled: bool = Field(False, description="train the baseline beside the LSM")
    hidden: int = Field(200, gt=0, description="recurrent LIF neurons (the LSM's size in the paper)")
    beta: float = Field(0.9, gt=0, lt=1, description="membrane decay per time bin")
    epochs: int = Field(10, gt=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, gt=1)
    dim: int = Field(64, gt=0, description="projection dimension of the contrastive variant")


class BaselinesSpec(BaseModel):
    model_config = _STRICT

    srnn: SRNNSpec = Field(default_factory=SRNNSpec)


class ExperimentConfig(BaseModel):
    """One experiment: data -> device -> reservoir -> head -> task, with seeds and an output folder."""

    model_config = _STRICT

    name: str | None = Field(None, description="run name (default: the YAML file's stem)")
    task: Literal["classify", "linear_probe", "zero_shot"]
    seed: int = Field(0, ge=0, description="the seed when seeds is not given")
    seeds: list[int] | None = Field(None, description="run once per seed; metrics are mean and std over them")
    output: str = Field("runs", description="parent folder of run directories (--out overrides)")
    backend: Literal["auto", "numpy", "cpu", "cupy"] = Field("auto", description="reservoir backend")
    batch_size: int = Field(64, gt=0, description="samples per feature-extraction batch (one cache write each)")
    data: dict[str, DataSpec] = Field(description="one (classify) or two (zero_shot) named modalities")
    device: DeviceSpec = Field(default_factory=DeviceSpec)
    reservoir: dict[str, dict[str, Any]] = Field(description="LSMConfig per modality (n_inputs is derived)")
    head: HeadSpec = Field(default_factory=HeadSpec)
    zero_shot: ZeroShotSpec = Field(default_factory=ZeroShotSpec)
    baselines: BaselinesSpec = Field(default_factory=BaselinesSpec)
    plots: bool = Field(True, description="draw the report's figures")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("seeds must list at least one seed")
            if len(set(v)) != len(v) or min(v) < 0:
                raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        n = len(self.data)
        if self.task == "zero_shot" and n != 2:
            raise ValueError(f"task zero_shot needs exactly two modalities under data, got {n}")
        if self.task != "zero_shot" and n != 1:
            raise ValueError(f"task {self.task} needs exactly one modality under data, got {n}")
        if set(self.reservoir) != set(self.data):
            raise ValueError(f"reservoir must have one entry per data modality {sorted(self.data)}, got {sorted(self.reservoir)}")
        kind = self.head.kind
        if self.task == "zero_shot" and kind not in (None, "projection"):
            raise ValueError(f"task zero_shot trains projection heads; head.kind {kind!r} does not apply")
        if self.task == "classify" and kind not in (None, "linear", "mlp", "ridge"):
            raise ValueError(f"task classify takes head.kind linear, mlp or ridge, got {kind!r}")
        if kind == "ridge" and self.head.hidden:
            raise ValueError("head.kind ridge is a linear readout: remove head.hidden (or use kind mlp)")
        if self.task == "linear_probe" and (kind not in (None, "linear") or self.head.hidden):
            raise ValueError("task linear_probe is a linear classifier: head.kind linear and no hidden layers")
        return self

    @property
    def modalities(self) -> list[str]:
        """The modality names in file order (the first is 'a', the second 'b')."""
        return list(self.data)

    @property
    def run_seeds(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed]

    @property
    def head_kind(self) -> str:
        if self.head.kind is not None:
            return self.head.kind
        if self.task == "zero_shot":
            return "projection"
        return "mlp" if (self.task == "classify" and self.head.hidden) else "linear"


# ----------------------------------------------------------------------------- loading


def read_yaml(path: str | Path) -> dict:
    """Parse a YAML file into a mapping; malformed YAML -> ConfigError with line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (YAML expected)") from None
    if raw is None:
        raise ConfigError(f"{path}: empty config; see experiments/quickstart.yaml for an example")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Apply ``key.path=value`` overrides (value parsed by yaml.safe_load) to a nested mapping."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {item!r}: empty part in key path {key!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote it") from None
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return raw


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` (the location of an unknown key, without the key)."""
    node: Any = model
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = unwrap_annotation(field.annotation)
        elif typing.get_origin(node) in (dict, list, tuple):
            args = typing.get_args(node)
            node = unwrap_annotation(args[-1] if args else Any)
        else:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str, prefix: tuple = ()) -> ConfigError:
    """The first pydantic error as one line: ``source: key a.b.c: problem``."""
    errors = exc.errors()
    # an unknown key first: a misspelt key usually also makes a required key "missing"
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    path = ".".join(str(p) for p in prefix + loc)
    if err["type"] == "extra_forbidden":
        parent = ".".join(str(p) for p in prefix + loc[:-1]) or "the top level"
        hint = did_you_mean(loc[-1], _allowed_keys(model, loc[:-1]))
        return ConfigError(f"{source}: unknown key '{loc[-1]}' in {parent}{hint}")
    if err["type"] == "missing":
        return ConfigError(f"{source}: missing required key '{path}'")
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    where = f"key '{path}'" if path else "the top level"
    return ConfigError(f"{source}: {where}: {msg}{shown}")


def validate_section(model: type[BaseModel], raw: Any, source: str, prefix: tuple) -> BaseModel:
    """Validate one section with its owner's pydantic model; errors become one ConfigError line."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, model, source, prefix) from None


def parse_config(raw: dict, source: str = "<config>") -> ExperimentConfig:
    """Validate a raw mapping (after overrides) into an :class:`ExperimentConfig`, sections included."""
    cfg = validate_section(ExperimentConfig, raw, source, ())
    check_sections(cfg, source)
    return cfg


def check_sections(cfg: ExperimentConfig, source: str) -> None:
    """Validate the sections that other modules own (binning, reservoir, device)."""
    from neurohw.data.binning import Binning

    for name, spec in cfg.data.items():
        validate_section(Binning, spec.binning, source, ("data", name, "binning"))
    from neurohw.reservoir.lsm import LSMConfig

    for name, res in cfg.reservoir.items():
        for key in RESERVOIR_DERIVED:
            if key in res:
                raise ConfigError(f"{source}: key 'reservoir.{name}.{key}' is derived from the binning; remove it")
        validate_section(LSMConfig, {**res, "n_inputs": 1}, source, ("reservoir", name))
    from neurohw.devices.model import load_device

    try:
        load_device(cfg.device.model, cfg.device.overrides or None)
    except UserError as exc:
        raise type(exc)(f"{source}: device: {exc}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override, validate: the one entry point for ``neurohw run`` and ``neurohw validate``."""
    raw = apply_overrides(read_yaml(path), overrides)
    cfg = parse_config(raw, str(path))
    if cfg.name is None:
        cfg = cfg.model_copy(update={"name": Path(path).stem})
    return cfg


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
