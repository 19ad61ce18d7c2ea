"""The shipped quickstart shrunk to seconds, for tests that run it end to end: small embedded
datasets (their own cache files), tiny reservoirs, one seed, five epochs, no baseline."""

from __future__ import annotations

from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"

#: ``--set`` overrides of the quickstart
TINY = [
    "seeds=[3]",
    "data.audio.options={samples_per_class: 12}",
    "data.image.options={samples_per_class: 12}",
    "data.audio.max_test_per_class=3",
    "reservoir.audio.n_neurons=32",
    "reservoir.image.n_neurons=32",
    "reservoir.audio.calibration_samples=16",
    "reservoir.image.calibration_samples=16",
    "head.epochs=5",
    "batch_size=16",
    "zero_shot.prototypical_baseline=false",
]

#: read noise off in both reservoirs (runs that must equal each other, or a noiseless chip)
NOISE_OFF = ["reservoir.audio.noise=false", "reservoir.image.noise=false"]
