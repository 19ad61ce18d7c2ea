"""The experiment schema: what one YAML file may say, its defaults, and how it is checked.

Loading is strict (the shared configuration layer, :mod:`neurohw.config`): malformed YAML names
the line and column; an unknown key names its path and the closest allowed key; a wrong type or
impossible value names the key path, the value and the allowed range. Every problem is one line
(a :class:`neurohw.errors.ConfigError`, exit code 2). Each section is parsed once, into the typed
model of the module that owns it: ``data.<m>.binning`` into
:class:`neurohw.data.binning.Binning`, ``reservoir.<m>`` into :class:`ReservoirSpec` (an
:class:`neurohw.reservoir.lsm.LSMConfig` whose input size, seed and backend the run fills in),
``device`` into a :class:`neurohw.devices.model.DeviceModel` (``DeviceSpec.resolved``).

Documented field by field in docs/experiments.md.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from neurohw.config import Section, apply_overrides, read_yaml, validate
from neurohw.data.binning import Binning
from neurohw.data.registry import instance_source
from neurohw.devices.chip_map import ChipMap, read_chip_map
from neurohw.devices.drift import drifts
from neurohw.devices.model import DeviceModel, load_device
from neurohw.errors import ConfigError, UserError
from neurohw.experiments.task_rules import rules_of
from neurohw.reservoir.backends import check_backend_name, is_url
from neurohw.reservoir.lsm import DEFAULT_DEVICE, LSMConfig
from neurohw.reservoir.nir_reader import ReservoirGraph, programming_scale, read_reservoir
from neurohw.reservoir.target_rate import REFERENCE_SCALE
from neurohw.resources import experiments_dir, shipped_yaml

__all__ = ["ExperimentConfig", "DataSpec", "DeviceSpec", "ReservoirSpec", "HeadSpec", "ZeroShotSpec", "apply_overrides",
           "read_yaml", "parse_config", "load_config", "dump_config"]


def _expanded(v: str) -> str:
    """``~`` and ``${ENV}`` expanded; an unset variable is an error."""
    out = os.path.expandvars(os.path.expanduser(v))
    missing = re.findall(r"\$\{?(\w+)\}?", out)
    if missing:
        raise ValueError(f"environment variable {missing[0]} is not set; export it or pass --set <this key>=PATH")
    return out


def _input_path(v: str | None) -> str | None:
    """A file path a user gives, expanded (:func:`_expanded`) and made absolute so that the
    resolved config names the same file from anywhere."""
    return None if v is None else str(Path(_expanded(v)).absolute())


#: the LSMConfig fields a NIR graph sets (from_nir); giving another value is an error (reset: a
#: graph that cannot say it, snnTorch's recurrent export, takes the config's; rec_scale: set by
#: neurohw's own files, which hold the conductances)
NIR_FIELDS = ("n_neurons", "v_th", "decay", "reset", "rec_scale")


class ReservoirSpec(LSMConfig):
    """``reservoir.<modality>``: an :class:`~neurohw.reservoir.lsm.LSMConfig` whose input size
    comes from the binning, and whose seed and backend default to the run's. With ``from_nir``
    the reservoir is a NIR graph's (its weights programmed onto the device)."""

    seed: int | None = Field(None, ge=0, lt=2**63, description="reservoir seed; default 1000 * run seed + modality index (distinct per modality and run seed)")
    backend: str | None = Field(None, description="default: the experiment's backend")
    from_nir: str | None = Field(
        None, description="a NIR graph (one LIF/CubaLIF population, Linear/Affine weights; e.g. snnTorch's RLeaky export) "
        "that becomes this reservoir: neurohw's own file's conductances are used as they are (the exported run, exactly), "
        "other graphs' weights are programmed onto the device by write-verify (exact on 'ideal'); n_neurons, v_th, decay "
        "and reset come from the graph (snnTorch's recurrent export lacks its reset: give reset); scale defaults to the "
        "file's or the programming scale"
    )

    @field_validator("n_inputs")
    @classmethod
    def _derived(cls, v):
        if v is not None:
            raise ValueError("n_inputs is derived from the binning (the raster's channels); remove it")
        return v

    @field_validator("from_nir")
    @classmethod
    def _nir_path(cls, v):
        v = _input_path(v)
        if v is not None:
            nir_graph_of(v)  # a file that cannot be read fails here, under its own key
        return v

    @model_validator(mode="before")
    @classmethod
    def _from_graph(cls, data):
        """Fill n_neurons, v_th, decay and reset from the graph (a value given that differs is
        an error); read once here, checked against the device and binning by the run."""
        if not isinstance(data, dict) or not isinstance(data.get("from_nir"), str):
            return data
        try:
            graph = nir_graph_of(_input_path(data["from_nir"]))
        except ValueError:
            return data  # reported under from_nir by its field validator
        facts = {"n_neurons": graph.n_neurons, "v_th": graph.v_th, "decay": graph.decay, "reset": graph.reset}
        data = dict(data)
        if graph.reset is None:  # the file cannot say (snnTorch's recurrent export): the config must
            if data.get("reset") is None:
                raise ValueError(graph.reset_unknown)
            facts["reset"] = data["reset"]
        if graph.has_conductances:  # neurohw's own file: its crossbars at their own scales
            facts["rec_scale"] = graph.rec_scale
        for key, value in facts.items():
            if key in data and data[key] is not None and data[key] != value:
                raise ValueError(f"{key} = {data[key]!r} but the graph from_nir sets {value!r}; remove {key} (the graph gives it)")
            data[key] = value
        return data

    @model_validator(mode="after")
    def _scale_xor_target(self) -> "ReservoirSpec":
        if self.scale is not None and self.target_rate is not None:
            raise ValueError(f"give exactly one of 'scale' (weight per uS, reference {REFERENCE_SCALE}) and 'target_rate' (e.g. 0.06)")
        if self.from_nir is None and self.scale is None and self.target_rate is None:
            raise ValueError(f"give exactly one of 'scale' (weight per uS, reference {REFERENCE_SCALE}) and 'target_rate' (e.g. 0.06)")
        return self

    @property
    def nir_graph(self) -> ReservoirGraph | None:
        """The :class:`~neurohw.reservoir.nir_reader.ReservoirGraph` of ``from_nir`` (None without)."""
        return None if self.from_nir is None else nir_graph_of(self.from_nir)

    def lsm_config(self, n_inputs: int, run_seed: int, index: int, backend: str, device: DeviceModel | None = None) -> LSMConfig:
        """The modality's LSMConfig for one run seed: ``n_inputs`` from the binning; seed and
        backend from the run unless this section gives them. With ``from_nir`` (``device``
        needed) and neither ``scale`` nor ``target_rate``, the scale is the graph's programming
        scale on ``device`` (:func:`neurohw.reservoir.nir_reader.programming_scale`)."""
        seed = self.seed if self.seed is not None else 1000 * run_seed + index
        fields = self.model_dump(exclude={"n_inputs", "seed", "backend", "from_nir"})
        graph = self.nir_graph
        if graph is not None:
            if graph.n_inputs != n_inputs:
                raise ConfigError(f"from_nir {self.from_nir}: the graph has {graph.n_inputs} inputs but the binning gives "
                                  f"{n_inputs} channels; bin the data to the graph's input size")
            if self.scale is None and self.target_rate is None and graph.has_conductances:
                fields["scale"] = graph.scale_in  # the exported run's scale: its weights exactly
            elif self.scale is None and self.target_rate is None:
                if device is None:
                    raise ValueError("lsm_config of a from_nir reservoir needs the device (its programming scale)")
                fields["scale"] = programming_scale(graph, device)
        return LSMConfig(**fields, n_inputs=n_inputs, seed=seed, backend=self.backend or backend)


def nir_graph_of(path: str) -> ReservoirGraph:
    """The reservoir of a NIR file (:func:`neurohw.reservoir.nir_reader.read_reservoir`), read once
    per file version; a bad file is a ValueError for the schema's one-line message."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise ValueError(f"{path}: no such NIR file") from None
    return _read_graph(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read_graph(path: str, mtime_ns: int, size: int) -> ReservoirGraph:
    try:
        return read_reservoir(path)
    except UserError as exc:
        raise ValueError(str(exc)) from None


class DataSpec(Section):
    """One modality: which dataset, where, which samples, how its events are binned."""

    dataset: str = Field(description="dataset name (neurohw data list): digits-dvs, digits-cochlea, nmnist, ...")
    root: str | None = Field(None, description="folder of the dataset's files; ${ENV} variables are expanded")
    options: dict[str, Any] = Field(default_factory=dict, description="extra options passed to load_dataset")
    train_split: str = Field("train", description="split used for training (and its validation part)")
    test_split: str = Field("test", description="split used only for the final test numbers")
    max_train_per_class: int | None = Field(None, gt=0, description="keep at most this many training samples per class")
    max_test_per_class: int | None = Field(None, gt=0, description="keep at most this many test samples per class")
    binning: Binning = Field(description="neurohw.data.binning.Binning: n_bins | bin_width_us, crop, polarity, ...")

    @field_validator("root")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return None if v is None else _expanded(v)


class DeviceSpec(Section):
    """The device model: a preset name (``neurohw devices list``) or a YAML path, plus overrides
    of its fields; loaded and validated once, when the config is (``resolved``)."""

    model: str = Field(DEFAULT_DEVICE, description="a device preset name or a path to a device YAML")
    overrides: dict[str, Any] = Field(default_factory=dict, description="nested overrides, e.g. {read_noise: {relative: 0.05}}")
    read_time_s: float | None = Field(
        None, ge=0, description="seconds after programming at which the test split is read (inference); the device's drift "
        "applies; null: at programming")
    train_read_time_s: float | None = Field(
        None, ge=0, description="seconds after programming at which the calibration and the training split are read; "
        "null: at programming")
    drift_compensation: Literal["none", "global", "column"] = Field(
        "none", description="digital gain undoing the mean drift, from reference reads (neurohw.devices.drift_compensation): "
        "none, global (one per crossbar), column (one per output column)")
    conductance_map: str | None = Field(
        None, description="a measured (or exported) chip map - HDF5, tile CSVs (a file or a folder), NPY - whose cells "
        "replace sampled forming: each modality's input then recurrent crossbar on tiles of its own (docs/export.md)"
    )
    _resolved: DeviceModel | None = PrivateAttr(None)
    _chip = PrivateAttr(None)

    @field_validator("conductance_map")
    @classmethod
    def _map_path(cls, v):
        return _input_path(v)

    @model_validator(mode="after")
    def _load(self) -> "DeviceSpec":
        try:
            self._resolved = load_device(self.model, self.overrides or None)
            if self.conductance_map is not None:
                self._chip = read_chip_map(self.conductance_map, self._resolved)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def resolved(self) -> DeviceModel:
        """The validated device model (preset or file, overrides applied)."""
        return self._resolved

    def read(self, split: str) -> tuple[float | None, str]:
        """``(time_s, compensation)`` of the reads of ``split`` ("train" or "test"), reduced to
        what changes them: ``(None, "none")`` when nothing drifts by then (drift off, or the time
        at or before the drift's t0)."""
        t = self.read_time_s if split == "test" else self.train_read_time_s
        return (float(t), self.drift_compensation) if drifts(self.resolved.drift, t) else (None, "none")

    @property
    def chip(self) -> ChipMap | None:
        """The :class:`~neurohw.devices.chip_map.ChipMap` of ``conductance_map`` (None without)."""
        return self._chip


class HeadSpec(Section):
    """The trained head and its optimiser."""

    kind: Literal["linear", "mlp", "ridge", "projection"] | None = Field(
        None, description="linear | mlp | ridge (classify), projection (zero_shot); default from the task"
    )
    hidden: list[int] = Field(default_factory=list, description="hidden layer widths of an MLP / projection head")
    features: list[Literal["rate", "counts", "membrane"]] = Field(
        default_factory=lambda: ["rate"], description="which encoder features the head reads (concatenated)"
    )
    dim: int = Field(64, gt=0, description="projection dimension (zero_shot); paper: 64")
    temperature: float = Field(1.0, gt=0, description="InfoNCE temperature tau (the start value when learned); paper: 1.0")
    learn_temperature: bool = Field(False, description="learn tau with the heads (as CLIP does), kept in [min_temperature, max_temperature]")
    min_temperature: float = Field(0.02, gt=0, description="lower bound of a learned tau (CLIP: 0.01)")
    max_temperature: float = Field(1.0, gt=0, description="upper bound of a learned tau")
    normalize: bool = Field(False, description="L2-normalise projections before the dot product")
    epochs: int = Field(100, gt=0, description="training epochs; paper: 100")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate; paper: 1e-3")
    batch_size: int = Field(64, gt=1, description="mini-batch size (pairs for zero_shot)")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay (L2)")
    patience: int | None = Field(None, gt=0, description="early stop after this many epochs without validation gain")
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear learning-rate warmup (neurohw.heads.training); at most all epochs")
    schedule: Literal["constant", "cosine"] = Field("constant", description="learning rate after warmup: constant or cosine decay to 0")
    clip_grad_norm: float | None = Field(None, gt=0, description="clip the gradient's global L2 norm to this value; null: no clipping")
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

    @model_validator(mode="after")
    def _schedule(self) -> "HeadSpec":
        if self.learn_temperature and not self.min_temperature <= self.temperature <= self.max_temperature:
            raise ValueError(f"a learned temperature starts inside [min_temperature, max_temperature] = "
                             f"[{self.min_temperature}, {self.max_temperature}], got temperature {self.temperature}")
        return self


class ZeroShotSpec(Section):
    """The zero-shot protocol: class split, test pairs, model selection."""

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
    pairing: Literal["class", "instance"] = Field(
        "class", description="how a sample of a is paired with one of b: class (any same-class sample; expected unseen "
        "retrieval is then chance, docs/experiments.md) or instance (the same source sample: datasets recorded from the "
        "same stimuli, e.g. digits-v1 <-> digits-dvs)"
    )
    raw_baseline_bins: int | None = Field(
        None, gt=0, le=64, description="also train the same heads on the binned raw events (event counts in this many "
        "time bins of each modality's binning, no reservoir): the reservoir's share of the transfer; null: off"
    )

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


class SRNNSpec(Section):
    """The trainable spiking-RNN baseline (snntorch, BPTT) of the paper."""

    enabled: bool = Field(False, description="train the baseline beside the LSM")
    hidden: int = Field(200, gt=0, description="recurrent LIF neurons (the LSM's size in the paper)")
    beta: float = Field(0.9, gt=0, lt=1, description="membrane decay per time bin")
    epochs: int = Field(10, gt=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, gt=1)
    dim: int = Field(64, gt=0, description="projection dimension of the contrastive variant")


class BaselinesSpec(Section):
    srnn: SRNNSpec = Field(default_factory=SRNNSpec)


#: the largest run seed: the derived reservoir seeds ``1000 * seed + modality index`` stay below 2**63
MAX_RUN_SEED = (2**63 - 1 - 1) // 1000
#: what a run name may be: a plain file name (it names the run directory)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ExperimentConfig(Section):
    """One experiment: data -> device -> reservoir -> head -> task, with seeds and an output folder."""

    name: str | None = Field(None, description="run name (default: the YAML file's stem); a plain file name")
    task: Literal["classify", "linear_probe", "zero_shot"]  # one of task_rules.RULES (a test checks)
    seed: int = Field(0, ge=0, le=MAX_RUN_SEED, description="the seed when seeds is not given")
    seeds: list[int] | None = Field(None, description="run once per seed; metrics are mean and std over them")
    output: str = Field("runs", description="parent folder of run directories (--out overrides)")
    backend: str = Field(
        "auto", description="reservoir backend: auto, numpy, cpu, cupy, or hil://HOST:PORT / hil+serial://PORT?baud=N (the crossbars on a chip)"
    )

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        return check_backend_name(v)
    batch_size: int = Field(64, gt=0, description="samples per feature-extraction batch (one cache write each)")
    data: dict[str, DataSpec] = Field(description="one (classify) or two (zero_shot) named modalities")
    device: DeviceSpec = Field(default_factory=DeviceSpec)
    reservoir: dict[str, ReservoirSpec] = Field(description="LSMConfig per modality (n_inputs is derived)")
    head: HeadSpec = Field(default_factory=HeadSpec)
    zero_shot: ZeroShotSpec = Field(default_factory=ZeroShotSpec)
    baselines: BaselinesSpec = Field(default_factory=BaselinesSpec)
    plots: bool = Field(True, description="draw the report's figures")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_PATTERN.fullmatch(v):
            raise ValueError("name must be a plain file name: 1-100 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("seeds must list at least one seed")
            if len(set(v)) != len(v) or min(v) < 0:
                raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
            if max(v) > MAX_RUN_SEED:
                raise ValueError(f"seeds must be <= {MAX_RUN_SEED:,} (the reservoir seed 1000 * seed + modality index must stay below 2**63)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        n, task = len(self.data), rules_of(self)
        if n != task.n_modalities:
            need = "exactly two modalities" if task.n_modalities == 2 else "exactly one modality"
            raise ValueError(f"task {self.task} needs {need} under data, got {n}")
        if set(self.reservoir) != set(self.data):
            raise ValueError(f"reservoir must have one entry per data modality {sorted(self.data)}, got {sorted(self.reservoir)}")
        d = self.device
        if (d.read_time_s, d.train_read_time_s, d.drift_compensation) != (None, None, "none"):
            chips = [b for b in [self.backend, *(r.backend for r in self.reservoir.values())] if b and is_url(b)]
            if chips:
                raise ValueError(f"device.read_time_s, train_read_time_s and drift_compensation simulate drift on the model's "
                                 f"crossbars; the chip at {chips[0]} drifts in real time: remove them")
        nir = [m for m, r in self.reservoir.items() if r.from_nir is not None]
        if nir and self.device.conductance_map is not None:
            raise ValueError(f"reservoir.{nir[0]}.from_nir programs a graph's weights, device.conductance_map gives measured cells: "
                             "use one of them")
        if task.cross_modal and self.zero_shot.pairing == "instance":
            self._check_instance_pairing()
        kind = self.head.kind
        if not task.accepts_head(kind, self.head.hidden):
            raise ValueError(task.head_kind_error(kind))
        if kind == "ridge" and self.head.hidden:
            raise ValueError("head.kind ridge is a linear readout: remove head.hidden (or use kind mlp)")
        return self

    def _check_instance_pairing(self) -> None:
        """Instance pairing needs two datasets recorded from the same source samples (the same
        generation options) and the same sample selection on both sides."""
        (ma, a), (mb, b) = self.data.items()
        sa, sb = instance_source(a.dataset), instance_source(b.dataset)
        if sa is None or sa != sb:
            raise ValueError(f"zero_shot.pairing = instance needs two datasets recorded from the same samples (e.g. digits-v1 "
                             f"and digits-dvs); data.{ma} '{a.dataset}' and data.{mb} '{b.dataset}' are paired by class only: "
                             "set zero_shot.pairing: class")
        for key in ("options", "train_split", "test_split", "max_train_per_class", "max_test_per_class"):
            if getattr(a, key) != getattr(b, key):
                raise ValueError(f"zero_shot.pairing = instance: data.{ma}.{key} ({getattr(a, key)!r}) and data.{mb}.{key} "
                                 f"({getattr(b, key)!r}) must be equal so that sample i of one is sample i of the other")

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
        return rules_of(self).default_head_kind(self.head.hidden)


# ----------------------------------------------------------------------------- loading

EXAMPLE = "see the shipped experiments (neurohw run quickstart) for a complete example"


def parse_config(raw: dict, source: str = "<config>") -> ExperimentConfig:
    """Validate a raw mapping (after overrides) into an :class:`ExperimentConfig`, every section
    parsed once into its typed model."""
    return validate(ExperimentConfig, raw, source)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override, validate: the one entry point for ``neurohw run`` and ``neurohw validate``.

    ``path``: a YAML file, or the name of a shipped experiment (``quickstart``, ``nmnist_small``,
    ...; see :func:`experiment_path`)."""
    path = experiment_path(path)
    raw = apply_overrides(read_yaml(path, ConfigError, "config", EXAMPLE), overrides)
    cfg = parse_config(raw, str(path))
    if cfg.name is None:
        stem = Path(path).stem
        if not NAME_PATTERN.fullmatch(stem):
            raise ConfigError(f"{path}: the file name {stem!r} cannot name a run; give 'name:' (letters, digits, '.', '_', '-')")
        cfg = cfg.model_copy(update={"name": stem})
    return cfg


def shipped_experiments() -> list[str]:
    """The names of the experiments that ship with neurohw."""
    return sorted(p.stem for p in experiments_dir().glob("*.yaml"))


def experiment_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, or a shipped experiment's file for a bare name such as
    ``quickstart`` (:func:`neurohw.resources.shipped_yaml`)."""
    return shipped_yaml(name_or_path, "", "experiment", file_kind="config")


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
