"""One modality's reservoir in one run seed: its derived config, and the encoder, formed and
calibrated on first use (a run whose features are all cached never forms it, unless plots ask).

Read-noise keys (the 32-bit sample word of the Philox counter, :mod:`neurohw.reservoir.rng`): a
training sample's key is its dataset index, a test sample's is its index plus
:data:`~neurohw.reservoir.lsm.EVAL_ID_OFFSET` (2**31), so test samples never reuse a training
sample's noise draws and a sample's features do not depend on how the samples are batched,
selected or resumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurohw.data.binning import dataset_rasters
from neurohw.devices.model import DeviceModel
from neurohw.experiments.modalities import Modality
from neurohw.experiments.results import ConductanceMap, SpikeSample
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.selection import Selection, select
from neurohw.reservoir.lsm import EVAL_ID_OFFSET, LSMConfig, LSMEncoder


@dataclass
class ModalityReservoir:
    """The reservoir of modality ``mod`` in run seed ``run_seed`` (see the module doc)."""

    mod: Modality
    selection: Selection
    lsm: LSMConfig
    device: DeviceModel
    run_seed: int
    _encoder: LSMEncoder | None = field(default=None, repr=False)

    @classmethod
    def for_seed(cls, cfg: ExperimentConfig, mods: list[Modality], run_seed: int) -> list[ModalityReservoir]:
        """One per modality, in the config's order, with the run seed's sample selection."""
        device = cfg.device.resolved
        return [cls(mod, sel, cfg.reservoir[mod.name].lsm_config(mod.n_inputs, run_seed, i, cfg.backend), device, run_seed)
                for i, (mod, sel) in enumerate(zip(mods, select(mods, run_seed)))]

    @property
    def encoder(self) -> LSMEncoder:
        """The encoder, formed on first use; with ``target_rate``, calibrated on the first
        ``calibration_samples`` of the selection's calibration order."""
        if self._encoder is None:
            enc = LSMEncoder(self.lsm, self.device)
            if self.lsm.target_rate is not None:
                enc.calibrate(self.rasters("train", self.calibration_indices))
            self._encoder = enc
        return self._encoder

    @property
    def calibration_indices(self) -> np.ndarray | None:
        """The training samples that set ``target_rate``'s scale (None with a fixed scale)."""
        if self.lsm.target_rate is None:
            return None
        return self.selection.calibration[: self.lsm.calibration_samples]

    def indices(self, split: str) -> np.ndarray:
        """The selected dataset indices of ``split`` ("train" or "test")."""
        return {"train": self.selection.train, "test": self.selection.test}[split]

    def rasters(self, split: str, indices: np.ndarray) -> list[np.ndarray]:
        """The binned rasters of samples ``indices`` of ``split``."""
        return list(dataset_rasters(self.mod.split(split), self.mod.binning, indices))

    @staticmethod
    def noise_ids(split: str, indices: np.ndarray) -> np.ndarray:
        """Read-noise keys of samples ``indices`` of ``split`` (module doc)."""
        return np.asarray(indices, dtype=np.int64) + (EVAL_ID_OFFSET if split == "test" else 0)

    def spike_sample(self, split: str, index: int) -> SpikeSample:
        """Sample ``index`` of ``split``: its raster and the reservoir spikes behind its features
        (the same read-noise key as in the run)."""
        raster = self.rasters(split, np.array([index]))[0]
        res = self.encoder.run_batch([raster], self.noise_ids(split, np.array([index])), record_spikes=True)
        return SpikeSample(self.mod.name, raster, np.asarray(res.spikes[0]))

    def conductance_maps(self) -> list[ConductanceMap]:
        """Both crossbars' conductances (uS), for the run's histogram."""
        xin, xrec = self.encoder.crossbars()
        name = self.mod.name
        return [ConductanceMap(f"{name} input", np.asarray(xin.g_pos), np.asarray(xin.g_neg)),
                ConductanceMap(f"{name} recurrent", np.asarray(xrec.g_pos), np.asarray(xrec.g_neg))]
