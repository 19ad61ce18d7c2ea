"""neurohw: a liquid state machine on a simulated resistive-memory crossbar.

Data flow (one direction): events -> binning -> reservoir (crossbar + LIF) -> features
-> head -> evaluation -> run directory. The names a user needs are here::

    import neurohw as nh
    train, test = nh.load_dataset("digits-dvs", "train"), nh.load_dataset("digits-dvs", "test")
    binning = nh.Binning(n_bins=30, crop=(28, 28), downsample=2)
    lsm = nh.LSM(n_neurons=256, target_rate=0.06)              # on the TaOx RRAM macro model
    readout = nh.RidgeClassifier().fit(lsm.transform(train, binning), train.labels)
    print(readout.score(lsm.transform(test, binning), test.labels))

and ``nh.run("quickstart")`` runs a whole YAML experiment. docs/python.md shows more.
Names are imported on first use, so ``import neurohw`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "load_dataset": "neurohw.data.registry",
    "list_datasets": "neurohw.data.registry",
    "Binning": "neurohw.data.binning",
    "load_device": "neurohw.devices.model",
    "list_devices": "neurohw.devices.model",
    "DeviceModel": "neurohw.devices.model",
    "Crossbar": "neurohw.crossbar",
    "LSMConfig": "neurohw.reservoir.lsm",
    "LSMEncoder": "neurohw.reservoir.lsm",
    "LSM": "neurohw.reservoir.lsm",
    "RidgeClassifier": "neurohw.heads.classifiers",
    "NeuralClassifier": "neurohw.heads.classifiers",
    "run": "neurohw.experiments.runner",
    "RunResult": "neurohw.experiments.run_dir",
    "load_config": "neurohw.experiments.schema",
    "UserError": "neurohw.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'neurohw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
