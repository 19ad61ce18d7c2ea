"""The public event datasets, read through tonic's classes, never downloaded behind your back.

tonic (1.7) downloads a dataset whenever its class is built and the files are missing. neurohw
checks the files first and builds tonic's class only when they are there (and a subclass whose
``download`` refuses, as a second lock). Downloading happens only in :func:`fetch`
(``neurohw data fetch NAME``).

Where the files live: ``ROOT/<tonic class name>/...``, ROOT being tonic's ``save_to``: the
``root`` argument, else the environment variable ``NEUROHW_DATA``, else
``<cache_dir()>/datasets``. The files each dataset needs (tonic's names, as extracted from its
archives):

=============  ===============================================================================
nmnist         ``NMNIST/Train/<digit>/*.bin``, ``NMNIST/Test/<digit>/*.bin``
ntidigits      ``NTIDIGITS18/n-tidigits.hdf5`` (both splits)
shd            ``SHD/shd_train.h5``, ``SHD/shd_test.h5``
dvsgesture     ``DVSGesture/ibmGestureTrain/user*_*/<label>.npy``, ``.../ibmGestureTest/...``
=============  ===============================================================================
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurohw.data.dataset import EventDataset
from neurohw.data.events import CAMERA_DTYPE, COCHLEA_DTYPE, as_events
from neurohw.data.nmnist import read_nmnist_file
from neurohw.errors import ConfigError, DataError, did_you_mean
from neurohw.paths import cache_dir

#: environment variable naming the folder that holds the datasets (tonic's ``save_to``)
DATA_ENV = "NEUROHW_DATA"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class TonicSet:
    """What neurohw knows about one of tonic's datasets."""

    name: str  # neurohw's name
    tonic_class: str  # the class in tonic.datasets; also the folder under ROOT
    modality: str  # "camera" or "cochlea"
    sensor_size: tuple[int, int, int]  # tonic's (W, H, P)
    files: dict[str, str]  # split -> file or folder under ROOT/<tonic_class>
    pattern: str | None  # for folders: the glob their samples match
    url: str  # where `fetch` downloads from (for messages)
    options: dict = field(default_factory=dict)  # option -> default

    @property
    def dtype(self) -> np.dtype:
        return CAMERA_DTYPE if self.modality == "camera" else COCHLEA_DTYPE

    def folder(self, root: str | os.PathLike | None = None) -> Path:
        """``ROOT/<tonic class>``: where this dataset's files are expected."""
        return data_root(root) / self.tonic_class

    def expected(self, split: str, root=None) -> Path:
        return self.folder(root) / self.files[split]

    def present(self, split: str, root=None) -> bool:
        path = self.expected(split, root)
        if self.pattern is None:
            return path.is_file()
        return path.is_dir() and next(path.glob(self.pattern), None) is not None

    def describe_expected(self, split: str, root=None) -> str:
        path = self.expected(split, root)
        return f"{path}/{self.pattern}" if self.pattern else str(path)


TONIC_SETS: dict[str, TonicSet] = {
    s.name: s
    for s in (
        TonicSet(
            "nmnist", "NMNIST", "camera", (34, 34, 2),
            {"train": "Train", "test": "Test"}, "*/*.bin",
            "https://data.mendeley.com/datasets/468j46mzdv",
            {"first_saccade_only": False, "stabilize": False},
        ),
        TonicSet(
            "ntidigits", "NTIDIGITS18", "cochlea", (64, 1, 1),
            {"train": "n-tidigits.hdf5", "test": "n-tidigits.hdf5"}, None,
            "https://www.dropbox.com/scl/fi/1x4lxt9yyw25sc3tez8oi/n-tidigits.hdf5",
            {"single_digits": True},
        ),
        TonicSet(
            "shd", "SHD", "cochlea", (700, 1, 1),
            {"train": "shd_train.h5", "test": "shd_test.h5"}, None,
            "https://zenkelab.org/datasets/",
        ),
        TonicSet(
            "dvsgesture", "DVSGesture", "camera", (128, 128, 2),
            {"train": "ibmGestureTrain", "test": "ibmGestureTest"}, "*/*.npy",
            "https://figshare.com/ndownloader/files/38022171",
        ),
    )
}

#: N-TIDIGITS single-digit classes in tonic's class_map order: 'o' ("oh") is 0, 'z' ("zero") 10
NTIDIGITS_CLASSES = ["o", "1", "2", "3", "4", "5", "6", "7", "8", "9", "z"]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the datasets: ``root``, else ``$NEUROHW_DATA``, else the cache."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_dir() / "datasets"


def tonic_set(name: str) -> TonicSet:
    """The :class:`TonicSet` called ``name``; :class:`DataError` with a suggestion otherwise."""
    try:
        return TONIC_SETS[name]
    except KeyError:
        raise DataError(f"unknown tonic dataset '{name}'{did_you_mean(name, TONIC_SETS)}; known: {', '.join(TONIC_SETS)}") from None


def _normalise_root(spec: TonicSet, root):
    """Accept ROOT or ROOT/<tonic class> (the folder itself) as ``root``."""
    if root is None:
        return None
    root = Path(root).expanduser()
    if root.name == spec.tonic_class and not (root / spec.tonic_class).exists():
        return root.parent
    return root


def _check_split(spec: TonicSet, split: str) -> None:
    if split not in spec.files:
        raise DataError(f"{spec.name} has no split '{split}'{did_you_mean(split, spec.files)}; splits: {', '.join(spec.files)}")


def _check_options(spec: TonicSet, options: dict) -> dict:
    unknown = set(options) - set(spec.options)
    if unknown:
        bad = sorted(unknown)[0]
        allowed = ", ".join(spec.options) or "none"
        raise ConfigError(f"unknown option '{bad}' for dataset {spec.name}{did_you_mean(bad, spec.options)}; allowed: {allowed}")
    merged = dict(spec.options)
    merged.update(options)
    for key, value in merged.items():
        if not isinstance(value, bool):
            raise ConfigError(f"option '{key}' of dataset {spec.name} must be true or false, got {value!r}")
    return merged


def missing_message(spec: TonicSet, split: str, root=None) -> str:
    """The one line that says which files are missing and how to get them."""
    return (
        f"dataset '{spec.name}' ({split}) not found: expected {spec.describe_expected(split, root)}; "
        f"run `neurohw data fetch {spec.name}` to download it from {spec.url}, "
        f"or put the extracted files there (or pass a root / set {DATA_ENV} to the folder that holds {spec.tonic_class}/)"
        + (" or a root folder with labels.csv (split,file,label) and .bin files" if spec.name == "nmnist" else "")
    )


def _tonic_class(spec: TonicSet, allow_download: bool):
    """tonic's class for ``spec``; without ``allow_download`` a subclass that refuses to download.

    The subclass keeps tonic's class name, which tonic uses as the folder name.
    """
    import tonic.datasets

    base = getattr(tonic.datasets, spec.tonic_class)
    if allow_download:
        return base

    def _split(self) -> str:  # NMNIST, DVSGesture keep `train`; SHD only its file name
        if hasattr(self, "train"):
            return "train" if self.train else "test"
        return "test" if "test" in str(getattr(self, "filename", "")) else "train"

    def _check_exists(self) -> bool:
        return spec.present(_split(self), Path(self.location_on_system).parent)

    def download(self) -> None:
        raise DataError(missing_message(spec, _split(self), Path(self.location_on_system).parent))

    return type(spec.tonic_class, (base,), {"_check_exists": _check_exists, "download": download})


def _labels_and_classes(spec: TonicSet, ds, options: dict) -> tuple[np.ndarray, list[str]]:
    if spec.name == "nmnist":
        return np.asarray(ds.targets, dtype=np.int64), [str(d) for d in range(10)]
    if spec.name == "dvsgesture":
        return np.asarray(ds.targets, dtype=np.int64), list(ds.classes)
    if spec.name == "shd":
        import h5py

        with h5py.File(Path(ds.location_on_system) / ds.data_filename, "r") as fh:
            labels = np.asarray(fh["labels"][()], dtype=np.int64)
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in ds.classes]
        return labels, classes
    if spec.name == "ntidigits":
        names = [s.split("-")[-1] for s in ds._samples]
        if options["single_digits"]:
            return np.array([ds.class_map[n] for n in names], dtype=np.int64), list(NTIDIGITS_CLASSES)
        classes = sorted(set(names))
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[n] for n in names], dtype=np.int64), classes
    raise AssertionError(spec.name)  # pragma: no cover - every TonicSet is handled above


def load_tonic(name: str, split: str, root: str | os.PathLike | None = None, **options) -> EventDataset:
    """A split of one of tonic's datasets whose files are present under ``root``.

    Options: nmnist ``first_saccade_only``, ``stabilize``; ntidigits ``single_digits`` (default
    true: the 11 single-digit classes of the paper). Missing files are a :class:`DataError`
    naming the expected folder and files and ``neurohw data fetch NAME``; nothing downloads.
    """
    spec = tonic_set(name)
    _check_split(spec, split)
    opts = _check_options(spec, options)
    root = _normalise_root(spec, root)
    if not spec.present(split, root):
        raise DataError(missing_message(spec, split, root))
    cls = _tonic_class(spec, allow_download=False)
    kwargs = dict(opts)
    try:
        ds = cls(str(data_root(root)), train=(split == "train"), **kwargs)
        labels, classes = _labels_and_classes(spec, ds, opts)
    except UnicodeDecodeError as exc:
        raise DataError(f"{spec.folder(root)}: unreadable {spec.name} files ({exc}); fetch them again") from None
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{spec.describe_expected(split, root)}: corrupt or incomplete {spec.name} files ({exc}); fetch them again") from None
    where = spec.describe_expected(split, root)

    def loader(i: int) -> np.ndarray:
        if spec.name == "nmnist":  # tonic's __getitem__, with neurohw's checked reader of the file
            return _nmnist_item(ds, i, opts)
        try:
            events, _ = ds[i]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{where}: cannot read sample {i} of {spec.name} ({exc}); the files may be corrupt") from None
        return as_events(np.asarray(events))

    sources = [str(p) for p in ds.data] if ds.data and isinstance(ds.data, list) else None
    return EventDataset(
        name=spec.name,
        split=split,
        sensor_size=spec.sensor_size,
        dtype=spec.dtype,
        classes=classes,
        labels=labels,
        loader=loader,
        sources=sources,
        meta={"root": str(data_root(root)), "format": f"tonic.datasets.{spec.tonic_class}", "options": opts},
    )


def _nmnist_item(ds, i: int, opts: dict) -> np.ndarray:
    """``tonic.datasets.NMNIST.__getitem__`` (same options, same events) reading the file with
    :func:`neurohw.data.nmnist.read_nmnist_file`, which reports truncated or corrupt files."""
    from tonic.datasets.nmnist import stabilize

    events = read_nmnist_file(ds.data[i])
    if opts["first_saccade_only"]:
        events = events[events["t"] < 1e5]
    if opts["stabilize"]:
        events = stabilize(events)
    return events


def fetch(name: str, root: str | os.PathLike | None = None) -> Path:
    """Download ``name`` with tonic (both splits) into ``ROOT/<tonic class>``; return that folder.

    The download goes to a temporary folder beside it, which replaces the final folder only when
    every split has arrived and opens: a failed or interrupted fetch leaves nothing half-written.
    Network or archive failures are a :class:`DataError` saying what to do.
    """
    spec = tonic_set(name)
    root = data_root(_normalise_root(spec, root))
    final = root / spec.tonic_class
    if all(spec.present(s, root) for s in SPLITS):
        return final
    root.mkdir(parents=True, exist_ok=True)
    cls = _tonic_class(spec, allow_download=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{spec.tonic_class}-", dir=root))
    try:
        for split in SPLITS:
            cls(str(tmp), train=(split == "train"))
        missing = [s for s in SPLITS if not spec.present(s, tmp)]
        if missing:
            raise DataError(f"fetching {spec.name} finished but {spec.describe_expected(missing[0], tmp)} is missing; report this")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / spec.tonic_class, final)
    except (OSError, RuntimeError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DataError(
            f"fetching {spec.name} from {spec.url} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"check the network, or download the files by hand into {final}"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
