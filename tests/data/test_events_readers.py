"""Readers: N-MNIST files and folders, tonic's datasets, the registry; good files and bad ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tonic

from _event_files import (
    copy_nmnist_subset,
    encode_nmnist,
    random_nmnist_bytes,
    synthetic_nmnist_folder,
    tonic_dvsgesture,
    tonic_nmnist,
    tonic_ntidigits,
    tonic_shd,
)
from neurohw.data import registry, tonic_sets
from neurohw.data.events import CAMERA_DTYPE, COCHLEA_DTYPE, as_events, camera_events, cochlea_events, duration_us
from neurohw.data.nmnist import SENSOR_SIZE, decode_nmnist, read_label_list, read_nmnist_file, read_nmnist_folder
from neurohw.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _private_data_root(tmp_path, monkeypatch):
    """Every test sees an empty cache and data root of its own."""
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROHW_DATA", raising=False)


# -- events ------------------------------------------------------------------------------------


def test_event_constructors_and_conversion():
    ev = camera_events([1, 2], [3, 4], [10, 30], [0, 1])
    assert ev.dtype == CAMERA_DTYPE and ev["y"].tolist() == [3, 4] and duration_us(ev) == 20
    co = cochlea_events([5, 6, 9], [63, 0, 1])
    assert co.dtype == COCHLEA_DTYPE and co["p"].tolist() == [1, 1, 1]
    gesture = np.zeros(2, dtype=tonic.datasets.DVSGesture.dtype)  # int16 x/y, bool p
    gesture["x"], gesture["y"], gesture["p"], gesture["t"] = [127, 5], [0, 9], [True, False], [1000, 2000]
    conv = as_events(gesture)
    assert conv.dtype == CAMERA_DTYPE and conv["p"].tolist() == [1, 0] and conv["x"].tolist() == [127, 5]
    with pytest.raises(ValueError, match="lack the fields"):
        as_events(np.zeros(1, dtype=[("x", "<i8"), ("t", "<i8")]))


# -- N-MNIST binary files ------------------------------------------------------------------------


def test_decode_matches_an_independent_encoder():
    rng = np.random.default_rng(0)
    raw, f = random_nmnist_bytes(rng, n=500)
    ev = decode_nmnist(raw)
    assert ev.dtype == CAMERA_DTYPE
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ev[name], f[name])


def test_overflow_markers_match_tonic(tmp_path):
    # y == 240 marks a timestamp overflow: later timestamps grow by 2**13 (tonic, MATLAB reader)
    x = [1, 0, 2, 0, 3, 4]
    y = [1, 240, 2, 240, 3, 33]
    t = [100, 0, 50, 0, 60, 70]
    p = [0, 0, 1, 0, 1, 0]
    path = tmp_path / "ovf.bin"
    path.write_bytes(encode_nmnist(x, y, t, p))
    ours = read_nmnist_file(path)
    ref = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    assert ours["t"].tolist() == [100, 50 + 2**13, 60 + 2**14, 70 + 2**14]
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ours[name], ref[name])


def test_nmnist_small_equals_tonic_field_by_field(nmnist_small):
    train = read_nmnist_folder(nmnist_small, "train")
    test = read_nmnist_folder(nmnist_small, "test")
    assert (len(train), len(test)) == (1000, 100)
    assert train.sensor_size == SENSOR_SIZE == (34, 34, 2) and train.classes == [str(d) for d in range(10)]
    rows = [line.split(",") for line in (nmnist_small / "labels.csv").read_text().split()[1:]]
    for ds in (train, test):
        expected = [(Path(nmnist_small) / f, int(lab)) for s, f, lab in rows if s == ds.split]
        assert [Path(s) for s in ds.sources] == [p for p, _ in expected]
        np.testing.assert_array_equal(ds.labels, [lab for _, lab in expected])
        for i in range(len(ds)):
            ours, label = ds[i]
            ref = tonic.io.read_mnist_file(ds.sources[i], dtype=tonic.datasets.NMNIST.dtype)
            assert ours.dtype == ref.dtype and len(ours) == len(ref) > 0
            for name in ("x", "y", "t", "p"):
                np.testing.assert_array_equal(ours[name], ref[name], err_msg=f"{ds.sources[i]} field {name}")
    assert len(set(train.labels.tolist())) == 10


def test_nmnist_small_through_the_registry(nmnist_small):
    ds = registry.load_dataset("nmnist-small", "test", root=nmnist_small)
    also = registry.load_dataset("nmnist", "test", root=nmnist_small)  # `nmnist` with a labels.csv root
    assert len(ds) == len(also) == 100
    np.testing.assert_array_equal(ds[7][0], also[7][0])
    assert ds.name == "nmnist-small" and also.name == "nmnist"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"\x01\x02\x03\x04\x05\x06\x07", "not a multiple of 5"),
        (encode_nmnist([3, 34], [3, 3], [1, 2], [0, 1]), r"x=34, y=3\) lies outside the 34x34"),
        (encode_nmnist([3, 3], [3, 200], [1, 2], [0, 1]), "outside the 34x34"),
    ],
    ids=["empty", "truncated", "x-out", "y-out"],
)
def test_bad_nmnist_files(tmp_path, content, problem):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        read_nmnist_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_real_file_is_named(nmnist_small, tmp_path):
    good = (nmnist_small / "train" / "1.bin").read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(good[:-2])
    with pytest.raises(DataError, match="cut.bin.*truncated"):
        read_nmnist_file(path)


def test_missing_file_and_folder_path(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_nmnist_file(tmp_path / "nope.bin")
    with pytest.raises(DataError, match="folder, not an N-MNIST file"):
        read_nmnist_file(tmp_path)
    with pytest.raises(DataError, match="N-MNIST folder not found"):
        read_nmnist_folder(tmp_path / "nowhere", "train")


def test_synthetic_folder_reads_back(tmp_path):
    root, truth = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(4))
    for split in ("train", "test"):
        ds = read_nmnist_folder(root, split)
        assert len(ds) == 3
        for i, src in enumerate(ds.sources):
            f = truth[os.path.relpath(src, root)]
            ev, label = ds[i]
            assert label == f["label"]
            np.testing.assert_array_equal(ev["t"], f["t"])
            np.testing.assert_array_equal(ev["x"], f["x"])


def _edit_labels(root: Path, fn):
    path = root / "labels.csv"
    path.write_text(fn(path.read_text()))


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda r: _edit_labels(r, lambda s: s.replace("split,file,label", "file,label,split")), "header must be"),
        (lambda r: _edit_labels(r, lambda s: s + "train,train/99.bin,3\n"), r"train/99.bin is listed but .* does not exist"),
        (lambda r: (r / "train" / "77.bin").write_bytes(encode_nmnist([1], [1], [1], [1])), r"77.bin has no row"),
        (lambda r: _edit_labels(r, lambda s: s.replace(",train/2.bin,", ",train/1.bin,")), "listed twice"),
        (lambda r: _edit_labels(r, lambda s: s.replace("train/1.bin,", "train/1.bin,x").replace(",x", ",11", 1)), "not a digit 0-9"),
        (lambda r: _edit_labels(r, lambda s: s.replace("test/1.bin,", "test/1.bin,1,")), "expected 3 fields"),
        (lambda r: (r / "labels.csv").unlink(), "label list not found"),
        (lambda r: _edit_labels(r, lambda s: s + "train,../outside.bin,1\n"), "points outside"),
    ],
    ids=["header", "listed-missing", "unlisted", "duplicate", "label", "fields", "no-labels", "escape"],
)
def test_label_list_mismatches(tmp_path, mutate, problem):
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(1))
    (tmp_path / "outside.bin").write_bytes(encode_nmnist([1], [1], [1], [1]))
    mutate(root)
    with pytest.raises(DataError, match=problem) as info:
        read_nmnist_folder(root, "train")
    assert "\n" not in str(info.value)


def test_truncated_file_in_a_folder_is_reported_at_load(tmp_path):
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(2))
    with open(root / "test" / "2.bin", "ab") as fh:
        fh.write(b"\x00\x01")
    read_nmnist_folder(root, "train")  # the other split is fine
    with pytest.raises(DataError, match=r"test/2.bin: truncated"):
        read_nmnist_folder(root, "test")


def test_unknown_split_in_folder(tmp_path):
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(3))
    with pytest.raises(DataError, match="no samples for split 'val'; splits present: test, train"):
        read_nmnist_folder(root, "val")
    assert len(read_label_list(root)) == 6


def test_real_subset_copy(nmnist_small, tmp_path):
    root = copy_nmnist_subset(nmnist_small, tmp_path / "s", per_split=3)
    ds = read_nmnist_folder(root, "train")
    ref = read_nmnist_folder(nmnist_small, "train")
    np.testing.assert_array_equal(ds.labels, ref.labels[:3])
    np.testing.assert_array_equal(ds[2][0], ref[2][0])


# -- tonic's datasets ----------------------------------------------------------------------------


@pytest.fixture
def no_download(monkeypatch):
    """Records any call of tonic's download machinery (and stops it)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("tonic tried to download")

    import tonic.dataset
    import tonic.datasets.ntidigits18

    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.datasets.ntidigits18.NTIDIGITS18, "download", refuse)
    return calls


def test_tonic_nmnist_layout(tmp_path, no_download):
    truth = tonic_nmnist(tmp_path, np.random.default_rng(5))
    for split, folder in (("train", "Train"), ("test", "Test")):
        ds = registry.load_dataset("nmnist", split, root=tmp_path)
        assert len(ds) == 6 and ds.sensor_size == (34, 34, 2) and ds.dtype == CAMERA_DTYPE
        for i, src in enumerate(ds.sources):
            assert f"/{folder}/" in src
            fields, digit = truth[src]
            ev, label = ds[i]
            assert label == digit and ev.dtype == CAMERA_DTYPE
            for name in ("x", "y", "t", "p"):
                np.testing.assert_array_equal(ev[name], fields[name])
    first = registry.load_dataset("nmnist", "train", root=tmp_path, first_saccade_only=True)
    ev, _ = first[0]
    assert (ev["t"] < 100_000).all()
    assert no_download == []


def test_tonic_shd(tmp_path, no_download):
    truth = {s: tonic_shd(tmp_path, s, np.random.default_rng(i)) for i, s in enumerate(("train", "test"))}
    for split in ("train", "test"):
        ds = registry.load_dataset("shd", split, root=tmp_path)
        t = truth[split]
        assert len(ds) == 4 and ds.sensor_size == (700, 1, 1) and ds.dtype == COCHLEA_DTYPE
        assert ds.classes[3] == "digit-3" and len(ds.classes) == 20
        np.testing.assert_array_equal(ds.labels, t["labels"].astype(np.int64))
        for i in range(len(ds)):
            ev, label = ds[i]
            # SHD stores seconds as float; tonic: int(seconds * 1e6)
            expected_t = (t["times"][i].astype(np.float32).astype(np.float64) * 1e6).astype(np.int64)
            np.testing.assert_array_equal(ev["t"], expected_t)
            np.testing.assert_allclose(ev["t"], np.round(t["times"][i] * 1e6), atol=1)
            np.testing.assert_array_equal(ev["x"], t["units"][i])
            assert (ev["p"] == 1).all() and label == t["labels"][i]
    # the class folder itself is accepted as root
    assert len(registry.load_dataset("shd", "test", root=tmp_path / "SHD")) == 4
    assert no_download == []


def test_tonic_ntidigits(tmp_path, no_download):
    truth = tonic_ntidigits(tmp_path, np.random.default_rng(6))
    ds = registry.load_dataset("ntidigits", "train", root=tmp_path)
    assert ds.classes == ["o", "1", "2", "3", "4", "5", "6", "7", "8", "9", "z"]
    assert ds.labels.tolist() == [1, 0, 10]  # man-ae-1, woman-bf-o, boy-ef-z; the 2-digit one is left out
    for i, sid in enumerate(["man-ae-1", "woman-bf-o", "boy-ef-z"]):
        t, x = truth[("train", sid)]
        ev, _ = ds[i]
        np.testing.assert_array_equal(ev["t"], (t * 1e6).astype(np.int64))
        np.testing.assert_array_equal(ev["x"], x)
    every = registry.load_dataset("ntidigits", "train", root=tmp_path, single_digits=False)
    assert every.classes == ["1", "12z", "o", "z"] and len(every) == 4
    test = registry.load_dataset("ntidigits", "test", root=tmp_path)
    assert len(test) == 1 and test.labels.tolist() == [9]
    assert no_download == []


def test_tonic_dvsgesture(tmp_path, no_download):
    truth = tonic_dvsgesture(tmp_path, np.random.default_rng(7))
    ds = registry.load_dataset("dvsgesture", "test", root=tmp_path)
    assert len(ds) == 4 and ds.sensor_size == (128, 128, 2) and len(ds.classes) == 11
    for i, src in enumerate(ds.sources):
        arr, label = truth[src]
        ev, lab = ds[i]
        assert ev.dtype == CAMERA_DTYPE and lab == label
        np.testing.assert_array_equal(ev["x"], arr[:, 0])
        np.testing.assert_array_equal(ev["p"], arr[:, 2])
        np.testing.assert_array_equal(ev["t"], arr[:, 3] * 1000)  # ms -> us
    assert no_download == []


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nmnist", "NMNIST/Train/*/*.bin"),
        ("shd", "SHD/shd_train.h5"),
        ("ntidigits", "NTIDIGITS18/n-tidigits.hdf5"),
        ("dvsgesture", "DVSGesture/ibmGestureTrain/*/*.npy"),
    ],
)
def test_missing_dataset_names_files_and_fetch_and_downloads_nothing(tmp_path, no_download, name, expected):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError) as info:
        registry.load_dataset(name, "train", root=root)
    msg = str(info.value)
    assert str(root / expected) in msg and f"neurohw data fetch {name}" in msg and "\n" not in msg
    assert list(root.iterdir()) == [] and no_download == []


def test_default_root_comes_from_env_then_cache(tmp_path, monkeypatch, no_download):
    with pytest.raises(DataError, match=str(tmp_path / "cache" / "datasets" / "SHD" / "shd_train.h5")):
        registry.load_dataset("shd", "train")
    monkeypatch.setenv("NEUROHW_DATA", str(tmp_path / "mine"))
    tonic_shd(tmp_path / "mine", "train", np.random.default_rng(0))
    assert len(registry.load_dataset("shd", "train")) == 4
    assert no_download == []


def test_corrupt_hdf5_is_a_data_error(tmp_path, no_download):
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_train.h5").write_bytes(b"this is not hdf5")
    with pytest.raises(DataError, match="shd_train.h5: corrupt or incomplete shd files"):
        registry.load_dataset("shd", "train", root=tmp_path)


def test_fetch_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    # an address where nothing listens: the download fails at once, without the internet
    monkeypatch.setattr(tonic.datasets.SHD, "base_url", "http://127.0.0.1:9/")
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"fetching shd from .* failed .*download the files by hand into"):
        tonic_sets.fetch("shd", root=root)
    assert list(root.iterdir()) == []
    with pytest.raises(DataError, match="cannot be fetched"):
        registry.fetch_dataset("nmnist-small")


def test_fetch_is_a_no_op_when_present(tmp_path, no_download):
    for s in ("train", "test"):
        tonic_shd(tmp_path, s, np.random.default_rng(0))
    assert tonic_sets.fetch("shd", root=tmp_path) == tmp_path / "SHD"


# -- registry ------------------------------------------------------------------------------------


def test_list_names_every_dataset(tmp_path):
    infos = {i.name: i for i in registry.list_datasets(root=tmp_path)}
    assert {"digits-dvs", "digits-cochlea", "digits-v1", "nmnist", "ntidigits", "shd", "dvsgesture", "nmnist-small"} == set(infos)
    assert infos["digits-dvs"].kind == infos["digits-cochlea"].kind == "embedded"
    assert infos["shd"].kind == "files" and not infos["shd"].present and infos["shd"].location == str(tmp_path / "SHD")
    for s in ("train", "test"):
        tonic_shd(tmp_path, s, np.random.default_rng(0))
    assert {i.name: i for i in registry.list_datasets(root=tmp_path)}["shd"].present


def test_list_without_the_embedded_generator(monkeypatch):
    monkeypatch.setitem(sys.modules, "neurohw.data.embedded", None)
    infos = {i.name: i for i in registry.list_datasets()}
    assert infos["digits-dvs"].kind == "embedded" and not infos["digits-dvs"].present
    with pytest.raises(DataError, match="embedded.*not part of this build"):
        registry.load_dataset("digits-dvs", "train")


def test_unknown_name_split_and_option():
    with pytest.raises(DataError, match="unknown dataset 'nmnst' \\(did you mean 'nmnist'\\?\\)"):
        registry.load_dataset("nmnst", "train")
    with pytest.raises(DataError, match="no split 'tset' \\(did you mean 'test'\\?\\)"):
        registry.load_dataset("shd", "tset")
    with pytest.raises(ConfigError, match="unknown option 'single_digit' .*did you mean 'single_digits'"):
        registry.load_dataset("ntidigits", "train", single_digit=True)
    with pytest.raises(ConfigError, match="must be true or false"):
        registry.load_dataset("nmnist", "train", stabilize="yes")


def test_nmnist_small_missing_names_folder(tmp_path):
    with pytest.raises(DataError, match=f"expected {tmp_path / 'labels.csv'}.*--root"):
        registry.load_dataset("nmnist-small", "train", root=tmp_path)
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="takes no options"):
        registry.load_dataset("nmnist-small", "train", root=root, stabilize=True)


def test_embedded_through_the_registry_bins_like_nmnist(tmp_path):
    pytest.importorskip("neurohw.data.embedded")
    ds = registry.load_dataset("digits-dvs", "train", samples_per_class=1, progress=False)
    assert ds.sensor_size == (34, 34, 2) and ds.dtype == CAMERA_DTYPE and len(ds) > 0
    from neurohw.data.binning import Binning, to_raster

    raster = to_raster(ds[0][0], ds.sensor_size, Binning(n_bins=50, crop=(16, 16), polarity=0))
    assert raster.shape == (50, 256) and raster.any()
    with pytest.raises(ConfigError, match="bad options for dataset 'digits-dvs'"):
        registry.load_dataset("digits-dvs", "train", sample_per_class=1)
    with pytest.raises(ConfigError, match="takes no root"):
        registry.load_dataset("digits-dvs", "train", root=tmp_path)


def test_tonic_nmnist_options_equal_tonic_getitem(tmp_path, nmnist_small):
    # real files in tonic's layout: NMNIST/Test/<digit>/<id>.bin
    for file in ("test/60001.bin", "test/60002.bin"):
        d = tmp_path / "NMNIST" / "Test" / "7"
        d.mkdir(parents=True, exist_ok=True)
        (d / Path(file).name).write_bytes((nmnist_small / file).read_bytes())
    for opts in (dict(), dict(first_saccade_only=True), dict(stabilize=True)):
        ours = registry.load_dataset("nmnist", "test", root=tmp_path, **opts)
        # tonic's own __getitem__ on the same files (its __init__ would download: it wants 10,000 files)
        ref = tonic.datasets.NMNIST.__new__(tonic.datasets.NMNIST)
        ref.data, ref.targets = list(ours.sources), [7, 7]
        ref.first_saccade_only = opts.get("first_saccade_only", False)
        ref.stabilize = opts.get("stabilize", False)
        ref.transform = ref.target_transform = ref.transforms = None
        assert len(ours) == len(ref) == 2
        for i in range(2):
            ev, label = ours[i]
            ref_ev, ref_label = ref[i]
            assert label == ref_label == 7
            for name in ("x", "y", "t", "p"):
                np.testing.assert_array_equal(ev[name], ref_ev[name])


@pytest.mark.parametrize("name", ["nmnist", "ntidigits", "dvsgesture"])
def test_corrupt_tonic_files(tmp_path, no_download, name):
    if name == "nmnist":
        d = tmp_path / "NMNIST" / "Train" / "1"
        d.mkdir(parents=True)
        (d / "00001.bin").write_bytes(b"\x01\x02\x03")
        ds = registry.load_dataset(name, "train", root=tmp_path)
        with pytest.raises(DataError, match="00001.bin: truncated"):
            ds[0]
    elif name == "ntidigits":
        (tmp_path / "NTIDIGITS18").mkdir()
        with h5py.File(tmp_path / "NTIDIGITS18" / "n-tidigits.hdf5", "w") as fh:
            fh["something_else"] = np.zeros(3)
        with pytest.raises(DataError, match="corrupt or incomplete ntidigits files"):
            registry.load_dataset(name, "train", root=tmp_path)
    else:
        d = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led"
        d.mkdir(parents=True)
        (d / "3.npy").write_bytes(b"not a numpy file")
        ds = registry.load_dataset(name, "train", root=tmp_path)
        assert ds.labels.tolist() == [3]
        with pytest.raises(DataError, match="cannot read sample 0 of dvsgesture"):
            ds[0]
