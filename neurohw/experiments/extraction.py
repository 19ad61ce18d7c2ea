"""A modality's features through the feature cache (:mod:`.feature_cache`): what keys them, and
how missing batches are encoded, their energy counted by the crossbars."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw.experiments.encoding import ModalityReservoir
from neurohw.experiments.feature_cache import FeatureCache, compute_cached
from neurohw.reservoir.backends import is_url, select_backend
from neurohw.reservoir.lsm import ReadEnergy


@dataclass(frozen=True)
class SplitFeatures:
    """The encoder features of one split's selected samples (``config.features`` by name), the
    mean energy per sample, the encoding time over every session that filled the cache, and the
    cache file."""

    features: dict[str, np.ndarray]
    energy: ReadEnergy
    encode_s: float
    cache_path: Path


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()


def dataset_fingerprint(ds) -> dict:
    """What identifies a dataset's content cheaply: its generator version/model and its labels."""
    meta = {k: v for k, v in ds.meta.items() if k in ("version", "model", "seed", "source", "format") and isinstance(v, (str, int))}
    return {**meta, "labels_sha": _sha(ds.labels)}


def cache_spec(res: ModalityReservoir, split: str) -> dict:
    """Everything that determines ``split``'s features: data, binning, device, reservoir, run
    seed, the samples and calibration samples, the dataset's fingerprint, and for a chip over a
    link its identity."""
    spec, ds, indices = res.mod.spec, res.mod.split(split), res.indices(split)
    cal = res.calibration_indices
    out = {
        "data": {"dataset": spec.dataset, "root": spec.root, "options": spec.options, "split": split},
        "binning": res.mod.binning.model_dump(mode="json"),
        "device": res.device.model_dump(mode="json"),
        "reservoir": res.lsm.model_dump(mode="json", exclude={"backend", "threads"}),
        "seed": res.run_seed,
        "samples": {"n": int(len(ds)), "indices_sha": _sha(indices), "calibration_sha": None if cal is None else _sha(cal)},
        "dataset": dataset_fingerprint(ds),
    }
    # reads after programming (drift) only where they change the features, so runs without drift keep their keys
    t, compensation = res.reads[split]
    t_cal = res.reads["train"][0] if cal is not None else None
    if t is not None or t_cal is not None:
        out["read"] = {"time_s": t, "calibration_time_s": t_cal,
                       "compensation": compensation if t is not None else res.reads["train"][1]}
    source = res.source.spec()  # a NIR graph's or a chip map's file content (sha256), never mixed with forming
    if source:
        out["source"] = source
    chip = backend_identity(res.lsm.backend)
    if chip is not None:  # a chip over a link: its reads, not the config alone, make the features
        out["backend"] = chip
    return out


def backend_identity(name: str) -> dict | None:
    """None for the local backends (bit-identical to each other, so not part of the key); for a
    chip over a link, the link and the chip's INFO."""
    return select_backend(name).identity() if is_url(name) else None


def encode_block(res: ModalityReservoir, split: str, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Features of samples ``indices`` of ``split``, with each sample's encoding energy
    (``_encoder_j``, ``_digital_j``) and the encoder's weight scale (``_scale``: a calibrated
    scale is then known to a run whose features are all cached), stored beside the features."""
    enc = res.encoder_at(split)
    rasters = res.rasters(split, indices)
    out = enc.run_batch(rasters, res.noise_ids(split, indices), record_spikes=True)
    feats = {f: np.asarray(getattr(out, f)) for f in res.lsm.features}
    energy = enc.energies(rasters, out.spikes)
    feats["_encoder_j"] = np.array([e.analog_j for e in energy])
    feats["_digital_j"] = np.array([e.digital_j for e in energy])
    feats["_scale"] = np.full(len(indices), float(enc.scale))  # the (calibrated) scale, for encoders.json
    return feats


def extract(res: ModalityReservoir, split: str, batch_size: int, progress: bool) -> SplitFeatures:
    """The features of ``split``'s selected samples, from the cache or encoded (and cached)."""
    indices = res.indices(split)
    cache = FeatureCache(cache_spec(res, split), len(indices))
    feats, attrs = compute_cached(cache, lambda block: encode_block(res, split, indices[block]), batch_size, progress,
                                  f"features {res.mod.name}/{split}")
    energy = ReadEnergy(float(np.mean(feats.pop("_encoder_j"))), float(np.mean(feats.pop("_digital_j"))))
    scale = feats.pop("_scale", None)
    if scale is not None and len(scale):
        res.recorded_scale = float(scale[0])
    return SplitFeatures(feats, energy, float(attrs.get("encode_s", 0.0)), cache.path)
