"""One run seed: encode every modality (through the cache), run the task, the baselines, and
count the energy per test sample. :func:`run_seed` returns a :class:`~.results.SeedResult`."""

from __future__ import annotations

import time

from neurohw.data.registry import instance_ids
from neurohw.experiments.baselines import run_srnn
from neurohw.experiments.encoding import ModalityReservoir
from neurohw.experiments.extraction import extract
from neurohw.experiments.features import FeatureSet, event_count_features
from neurohw.experiments.modalities import Modality
from neurohw.experiments.results import EnergyPerSample, ModalityFeatures, SeedResult, TaskOutput, Timing
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.tasks import task_of
from neurohw.reservoir.lsm import feature_matrix


def encode_modalities(cfg: ExperimentConfig, reservoirs: list[ModalityReservoir], progress: bool) -> tuple[list[ModalityFeatures], float, float, float]:
    """Every modality's head inputs; also the encoder and digital-baseline joules per test
    sample (summed over modalities) and the wall time of it all."""
    t0 = time.perf_counter()
    out, encoder_j, digital_j = [], 0.0, 0.0
    for res in reservoirs:
        sets = {}
        for split in ("train", "test"):
            sf = extract(res, split, cfg.batch_size, progress)
            ds, idx = res.mod.split(split), res.indices(split)
            ids = instance_ids(ds)
            sets[split] = FeatureSet(feature_matrix(sf.features, cfg.head.features), ds.labels[idx], list(ds.classes),
                                     None if ids is None else ids[idx])
            if split == "test":
                encoder_j += sf.energy.analog_j
                digital_j += sf.energy.digital_j
        out.append(ModalityFeatures(res.mod.name, sets["train"], sets["test"], res.indices("train"), res.indices("test")))
    return out, encoder_j, digital_j, time.perf_counter() - t0


def raw_event_features(reservoirs: list[ModalityReservoir], feats: list[ModalityFeatures], n_bins: int) -> list[ModalityFeatures]:
    """The no-reservoir baseline's inputs: the same samples as ``feats``, as event counts in
    ``n_bins`` time bins of each modality's binning (crop, polarity, downsample kept), flattened."""
    out = []
    for res, f in zip(reservoirs, feats):
        binning = res.mod.binning.model_copy(update={"n_bins": n_bins, "bin_width_us": None, "max_bins": None, "mode": "count"})
        sets = {}
        for split, fs, idx in (("train", f.train, f.train_indices), ("test", f.test, f.test_indices)):
            sets[split] = FeatureSet(event_count_features(res.mod.split(split), idx, binning), fs.labels, fs.classes, fs.ids)
        out.append(ModalityFeatures(f.name, sets["train"], sets["test"], f.train_indices, f.test_indices))
    return out


def run_task(cfg: ExperimentConfig, feats: list[ModalityFeatures], seed: int, progress: bool,
             raw: list[ModalityFeatures] | None = None) -> TaskOutput:
    """The configured task on the features of one run seed (:meth:`~.tasks.Task.run`); ``raw``:
    the no-reservoir baseline's features, where the task trains one."""
    return task_of(cfg).run(cfg, feats, seed, progress, raw)


def run_seed(cfg: ExperimentConfig, mods: list[Modality], seed: int, progress: bool, figures: bool = False) -> SeedResult:
    """Encode, train and evaluate run seed ``seed``; with ``figures``, also the conductance
    maps and one test sample's spikes per modality (the run draws them for its first seed)."""
    reservoirs = ModalityReservoir.for_seed(cfg, mods, seed)
    try:
        return _run_seed(cfg, reservoirs, seed, progress, figures)
    finally:
        for res in reservoirs:
            res.close()


def _run_seed(cfg: ExperimentConfig, reservoirs: list[ModalityReservoir], seed: int, progress: bool, figures: bool) -> SeedResult:
    feats, encoder_j, digital_j, features_s = encode_modalities(cfg, reservoirs, progress)
    t0 = time.perf_counter()
    bins = task_of(cfg).raw_baseline_bins(cfg)
    raw = raw_event_features(reservoirs, feats, bins) if bins else None
    output = run_task(cfg, feats, seed, progress, raw)
    task_s = time.perf_counter() - t0
    baselines = None
    if cfg.baselines.srnn.enabled:
        baselines = run_srnn(cfg, reservoirs, feats, seed, progress, output.train_s)
    mac_j = cfg.device.resolved.digital_baseline.mac_j
    head_j = output.head_macs * mac_j
    result = SeedResult(
        seed=seed, output=output, baselines=baselines,
        timing=Timing(features_s=features_s, train_s=output.train_s, task_s=task_s),
        energy=EnergyPerSample(encoder_j=encoder_j, head_j=head_j, digital_baseline_j=digital_j + head_j, mac_j=mac_j,
                               head_macs=output.head_macs),
    )  # fmt: skip
    result.encoders = [res.record() for res in reservoirs]
    if figures:
        for res, f in zip(reservoirs, feats):
            result.maps.extend(res.conductance_maps())
            result.samples.append(res.spike_sample("test", int(f.test_indices[0])))
    return result
