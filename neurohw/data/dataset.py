"""The dataset object every reader and generator returns.

Like tonic's ``Dataset``: class-level facts (``sensor_size``, ``dtype``) beside the samples.
A dataset yields ``(events, label)``; events are a structured array of ``neurohw.data.events``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EventDataset:
    """A split of an event dataset.

    Samples come either from ``samples`` (events held in memory) or from ``loader(i)`` (read on
    demand, e.g. one file per sample). ``labels[i]`` is the class index into ``classes``.
    """

    name: str
    split: str
    sensor_size: tuple[int, int, int]
    dtype: np.dtype
    classes: list[str]
    labels: np.ndarray
    samples: Sequence[np.ndarray] | None = None
    loader: Callable[[int], np.ndarray] | None = None
    sources: Sequence[str] | None = None  # file name or id of each sample, for messages
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if (self.samples is None) == (self.loader is None):
            raise ValueError("EventDataset needs exactly one of samples= or loader=")
        if self.samples is not None and len(self.samples) != len(self.labels):
            raise ValueError(f"{len(self.samples)} samples but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def events(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {self.name}/{self.split} with {len(self)} samples")
        return self.samples[i] if self.samples is not None else self.loader(int(i) % len(self))

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.events(i), int(self.labels[i])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def is_camera(self) -> bool:
        return self.dtype.names is not None and "y" in self.dtype.names

    def subset(self, indices: Sequence[int]) -> "EventDataset":
        """A view on some samples (same classes, same sensor)."""
        idx = np.asarray(indices, dtype=np.int64)
        parent = self
        return EventDataset(
            name=self.name,
            split=self.split,
            sensor_size=self.sensor_size,
            dtype=self.dtype,
            classes=self.classes,
            labels=self.labels[idx],
            loader=lambda j: parent.events(int(idx[j])),
            sources=None if self.sources is None else [self.sources[k] for k in idx],
            meta=dict(self.meta),
        )
