"""What travels between the stages of a run, as typed records.

encoding (:mod:`.encoding`) -> :class:`ModalityFeatures` per modality -> task (:mod:`.classify`,
:mod:`.zero_shot`) -> :class:`TaskOutput` -> per seed a :class:`SeedResult` (:mod:`.pipeline`)
-> aggregation over seeds (:mod:`.aggregate`) -> the run directory (:mod:`.run_dir`) ->
a :class:`~.run_dir.RunResult` for the caller. The task metrics inside :class:`TaskOutput` are the
JSON-bound part of metrics.json (its ``per_seed`` entries), documented in docs/experiments.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neurohw.experiments.features import FeatureSet
from neurohw.heads.training import TrainHistory


@dataclass
class ModalityFeatures:
    """One modality's head inputs for one run seed: the training and test features and the
    dataset indices they came from."""

    name: str
    train: FeatureSet
    test: FeatureSet
    train_indices: np.ndarray
    test_indices: np.ndarray


@dataclass
class TaskOutput:
    """What a task hands on: its metrics (JSON-bound), training curves, trained heads, and the
    class-by-class matrices worth plotting."""

    metrics: dict
    curves: dict[str, TrainHistory] = field(default_factory=dict)
    heads: dict[str, nn.Module] = field(default_factory=dict)
    matrices: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    train_s: float = 0.0
    head_macs: int = 0


@dataclass(frozen=True)
class Timing:
    """Wall time of one run seed, seconds: feature extraction (cache reads included), head
    training, the whole task (training, selection, evaluation)."""

    features_s: float
    train_s: float
    task_s: float


@dataclass(frozen=True)
class EnergyPerSample:
    """Energy per test sample of one run seed, joules, and the constants behind the head's."""

    encoder_j: float  # crossbar reads of every modality's encoder (device energy table)
    head_j: float  # head MACs x mac_j
    digital_baseline_j: float  # the same encoders and heads as digital MACs
    mac_j: float  # energy of one digital MAC (device model's digital_baseline)
    head_macs: int


@dataclass(frozen=True)
class ConductanceMap:
    """One crossbar's conductances for the histogram: ``label``, G+ and G- (uS)."""

    label: str
    g_pos: np.ndarray
    g_neg: np.ndarray


@dataclass(frozen=True)
class SpikeSample:
    """One test sample of a modality: its input raster (T, C) and the reservoir spikes (T, n)
    that the run's features were computed from."""

    label: str
    raster: np.ndarray
    spikes: np.ndarray


@dataclass
class SeedResult:
    """Everything one run seed produced."""

    seed: int
    output: TaskOutput
    timing: Timing
    energy: EnergyPerSample
    baselines: dict | None = None
    maps: list[ConductanceMap] = field(default_factory=list)
    samples: list[SpikeSample] = field(default_factory=list)
    encoders: list[dict] = field(default_factory=list)  # per modality: what rebuilds its encoder (encoders.json)

    @property
    def metrics(self) -> dict:
        """This seed's entry of metrics.json's ``per_seed`` list."""
        m = {"seed": self.seed, **self.output.metrics}
        if self.baselines is not None:
            m["baselines"] = self.baselines
        return m


def head_state(heads: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Flat ``name.param -> tensor`` of every head (for safetensors)."""
    return {f"{h}.{k}": v.detach().contiguous().clone() for h, m in heads.items() for k, v in m.state_dict().items()}
