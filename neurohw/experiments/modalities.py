"""The modalities of an experiment: each one's dataset splits and binning, opened and checked
before anything runs (a missing dataset file is a one-line error naming the modality)."""

from __future__ import annotations

from dataclasses import dataclass

from neurohw.data.binning import Binning, dataset_channels
from neurohw.data.dataset import EventDataset
from neurohw.data.registry import load_dataset
from neurohw.errors import ConfigError, DataError
from neurohw.experiments.schema import DataSpec, ExperimentConfig


@dataclass(frozen=True)
class Modality:
    """One modality's datasets and binning; ``n_inputs``: the raster channels (the reservoir's
    input size)."""

    name: str
    spec: DataSpec
    train: EventDataset
    test: EventDataset
    binning: Binning
    n_inputs: int

    def split(self, which: str) -> EventDataset:
        """The ``"train"`` or ``"test"`` dataset."""
        return {"train": self.train, "test": self.test}[which]


def resolve_modalities(cfg: ExperimentConfig, progress: bool = True) -> list[Modality]:
    """Open every dataset split (missing files raise DataError) and compute input sizes;
    ``progress``: show the generation of an embedded dataset on first use."""
    out = []
    for name, spec in cfg.data.items():
        splits = []
        for split in (spec.train_split, spec.test_split):
            try:
                splits.append(load_dataset(spec.dataset, split, root=spec.root, progress=progress, **spec.options))
            except (ConfigError, DataError) as exc:
                raise type(exc)(f"data.{name}: {exc}") from None
        try:
            n_in = dataset_channels(splits[0], spec.binning)
        except ConfigError as exc:
            raise ConfigError(f"data.{name}.binning: {exc}") from None
        out.append(Modality(name, spec, splits[0], splits[1], spec.binning, n_in))
    return out
