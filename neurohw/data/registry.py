"""Every dataset neurohw knows, by name: where it is, whether it is there, how to load it.

=================  ========  =====================================================================
name               kind      source
=================  ========  =====================================================================
digits-dvs         embedded  scikit-learn's digits through a DVS/saccade emulator (generated, cached)
digits-cochlea     embedded  spoken digits (espeak-ng) through a cochlea model (generated, cached)
digits-v1          embedded  a simulated V1 recording of the digits-dvs images, instance-paired with them
nmnist             files     tonic's NMNIST layout, or a folder with labels.csv (given as root)
nmnist-small       files     a folder with labels.csv (the layout of ../shared/data/nmnist-small)
ntidigits          files     tonic's NTIDIGITS18 (n-tidigits.hdf5)
shd                files     tonic's SHD (shd_train.h5, shd_test.h5)
dvsgesture         files     tonic's DVSGesture (ibmGestureTrain/, ibmGestureTest/)
=================  ========  =====================================================================
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw.data import nmnist as nmnist_files
from neurohw.data import tonic_sets
from neurohw.data.dataset import EventDataset
from neurohw.errors import ConfigError, DataError, did_you_mean

#: the embedded datasets (their generator lives in neurohw.data.embedded)
EMBEDDED = ("digits-dvs", "digits-cochlea", "digits-v1")
#: the folder-of-N-MNIST-files dataset and the environment variable that points at it
NMNIST_SMALL = "nmnist-small"
NMNIST_SMALL_ENV = "NEUROHW_NMNIST_SMALL"
#: every name, in the order `neurohw data list` shows them
NAMES = (*EMBEDDED, "nmnist", NMNIST_SMALL, "ntidigits", "shd", "dvsgesture")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """One row of ``neurohw data list``."""

    name: str
    kind: str  # "embedded" or "files"
    present: bool
    location: str
    modality: str  # "camera" or "cochlea"
    description: str


_DESCRIPTIONS = {
    "digits-dvs": ("camera", "scikit-learn digits through a DVS saccade emulator, 34x34x2"),
    "digits-cochlea": ("cochlea", "spoken digits (espeak-ng) through a 64-channel cochlea model"),
    "digits-v1": ("neural", "simulated V1 recording (400 Gabor units) of the digits-dvs images, paired by instance"),
    "nmnist": ("camera", "N-MNIST (Orchard et al. 2015), tonic layout or a folder with labels.csv"),
    NMNIST_SMALL: ("camera", "1,000 + 100 real N-MNIST files with labels.csv"),
    "ntidigits": ("cochlea", "N-TIDIGITS18 (Anumula et al. 2018), 64 channels"),
    "shd": ("cochlea", "Spiking Heidelberg Digits (Cramer et al. 2020), 700 channels"),
    "dvsgesture": ("camera", "IBM DVS Gesture (Amir et al. 2017), 128x128x2"),
}


#: datasets recorded from the same source samples: sample i of each (same options, same split)
#: comes from source sample i (instance pairing; every other pair of datasets is paired by class)
INSTANCE_SOURCES = {"digits-dvs": "sklearn-digits", "digits-v1": "sklearn-digits"}


def instance_source(name: str) -> str | None:
    """The source collection whose samples ``name`` records one per sample, or None (a dataset
    that can be paired with others by class only)."""
    return INSTANCE_SOURCES.get(name)


def instance_ids(ds: EventDataset) -> np.ndarray | None:
    """The source sample of every sample of ``ds`` (its index in the generated collection), or
    None when ``ds`` is not instance-paired with anything."""
    if instance_source(ds.name) is None:
        return None
    index = ds.meta.get("index")
    if index is None or len(index) != len(ds):
        return None
    return np.asarray(index, dtype=np.int64)


def _embedded_module():
    """``neurohw.data.embedded``, or None when this checkout does not have it yet."""
    try:
        return importlib.import_module("neurohw.data.embedded")
    except ModuleNotFoundError as exc:
        if exc.name == "neurohw.data.embedded":
            return None
        raise


def nmnist_small_root(root: str | os.PathLike | None = None) -> Path:
    """Where ``nmnist-small`` is read from: ``root``, ``$NEUROHW_NMNIST_SMALL``,
    ``<data root>/nmnist-small``, else ``../shared/data/nmnist-small`` beside a source checkout.

    The first of these that holds ``labels.csv`` wins (an explicit ``root`` always wins).
    """
    if root is not None:
        return Path(root).expanduser()
    candidates = []
    if os.environ.get(NMNIST_SMALL_ENV):
        candidates.append(Path(os.environ[NMNIST_SMALL_ENV]).expanduser())
    candidates.append(tonic_sets.data_root() / NMNIST_SMALL)
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / NMNIST_SMALL)
    for path in candidates:
        if (path / nmnist_files.LABELS_FILE).is_file():
            return path
    return candidates[0]


def list_datasets(root: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Every dataset, embedded or file-based, whether it is present, and where."""
    out = []
    module = _embedded_module()
    for name in NAMES:
        modality, description = _DESCRIPTIONS[name]
        if name in EMBEDDED:
            if module is None:
                present, location = False, "generator not built in this checkout (neurohw.data.embedded)"
            else:
                present, location = module.embedded_status(name)
            out.append(DatasetInfo(name, "embedded", bool(present), str(location), modality, description))
        elif name == NMNIST_SMALL:
            path = nmnist_small_root(root)
            out.append(DatasetInfo(name, "files", (path / nmnist_files.LABELS_FILE).is_file(), str(path), modality, description))
        else:
            spec = tonic_sets.TONIC_SETS[name]
            present = all(spec.present(s, root) for s in tonic_sets.SPLITS)
            out.append(DatasetInfo(name, "files", present, str(spec.folder(root)), modality, description))
    return out


def check_name(name: str) -> str:
    """``name`` if it is a known dataset; :class:`DataError` with a suggestion otherwise."""
    if name not in NAMES:
        raise DataError(f"unknown dataset '{name}'{did_you_mean(name, NAMES)}; known: {', '.join(NAMES)} (see `neurohw data list`)")
    return name


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, progress: bool = True, **options) -> EventDataset:
    """Load one split of a dataset by name (see the module doc for the names).

    ``root``: for file datasets, the folder that holds them (tonic's ``save_to``; for
    ``nmnist`` also a folder with ``labels.csv``; for ``nmnist-small`` the folder itself).
    ``options`` go to the reader (e.g. ``single_digits`` for ntidigits, ``seed`` for the embedded
    generators). ``progress``: show the generation of an embedded dataset on first use. Nothing
    downloads: a missing dataset is a :class:`DataError` that says where its files should be and
    how to fetch them.
    """
    check_name(name)
    if name in EMBEDDED:
        module = _embedded_module()
        if module is None:
            raise DataError(f"dataset '{name}' is embedded, but its generator (neurohw.data.embedded) is not part of this build")
        if root is not None:
            raise ConfigError(f"dataset '{name}' is embedded and takes no root; remove it")
        try:
            inspect.signature(module.load_embedded).bind(name, split, **options)
        except TypeError as exc:
            raise ConfigError(f"bad options for dataset '{name}': {exc}") from None
        return module.load_embedded(name, split, progress=progress, **options)
    if split not in SPLITS:
        raise DataError(f"dataset '{name}' has no split '{split}'{did_you_mean(split, SPLITS)}; splits: {', '.join(SPLITS)}")
    if name == NMNIST_SMALL or (name == "nmnist" and root is not None and (Path(root) / nmnist_files.LABELS_FILE).is_file()):
        if options:
            raise ConfigError(
                f"dataset '{name}' read from a folder with labels.csv takes no options (got {', '.join(sorted(options))})"
            )
        path = nmnist_small_root(root) if name == NMNIST_SMALL else Path(root)
        if name == NMNIST_SMALL and not (path / nmnist_files.LABELS_FILE).is_file():
            raise DataError(
                f"dataset '{NMNIST_SMALL}' not found: expected {path / nmnist_files.LABELS_FILE} and "
                f"{path}/<split>/<id>.bin; pass its folder as root (--root) or set {NMNIST_SMALL_ENV}"
            )
        return nmnist_files.read_nmnist_folder(path, split, name=name)
    return tonic_sets.load_tonic(name, split, root=root, **options)


def fetch_dataset(name: str, root: str | os.PathLike | None = None) -> str:
    """Make ``name`` available: download a tonic dataset, or generate an embedded one.

    Returns where it now is. ``nmnist-small`` cannot be fetched (it is a local folder).
    """
    check_name(name)
    if name in EMBEDDED:
        module = _embedded_module()
        if module is None:
            raise DataError(f"dataset '{name}' is embedded, but its generator (neurohw.data.embedded) is not part of this build")
        for split in SPLITS:
            module.load_embedded(name, split)
        return str(module.embedded_status(name)[1])
    if name == NMNIST_SMALL:
        raise DataError(
            f"'{NMNIST_SMALL}' is a local folder and cannot be fetched; point --root or {NMNIST_SMALL_ENV} at it, "
            f"or fetch the full 'nmnist'"
        )
    return str(tonic_sets.fetch(name, root))
