"""`neurohw data list|show|fetch`: output, PNGs, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tonic
from matplotlib.image import imread

from _event_files import synthetic_nmnist_folder, tonic_shd
from neurohw.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _private_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROHW_DATA", raising=False)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_names_every_dataset(capsys, tmp_path):
    for s in ("train", "test"):
        tonic_shd(tmp_path / "d", s, np.random.default_rng(0))
    rc, out, _ = run(capsys, "data", "list", "--root", str(tmp_path / "d"))
    assert rc == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    for name in ("digits-dvs", "digits-cochlea", "nmnist", "ntidigits", "shd", "dvsgesture"):
        assert name in rows
    assert rows["digits-dvs"][1] == "embedded" and rows["shd"][1] == "files"
    assert rows["shd"][3] == "yes" and rows["shd"][4] == str(tmp_path / "d" / "SHD")
    assert rows["dvsgesture"][3] == "no"


def test_list_through_the_installed_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "neurohw", "data", "list"],
        capture_output=True, text=True, timeout=120,
        env={"NEUROHW_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert all(n in proc.stdout for n in ("digits-dvs", "digits-cochlea", "nmnist", "ntidigits", "shd", "dvsgesture"))


def test_show_camera_frame(capsys, tmp_path, nmnist_small):
    out = tmp_path / "plots" / "frame.png"
    rc, stdout, err = run(capsys, "data", "show", "nmnist-small", "--root", str(nmnist_small), "--index", "3", "--out", str(out))
    assert rc == 0, err
    assert out.read_bytes()[:8] == PNG_MAGIC
    img = imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # a picture, not a blank canvas
    assert "wrote" in stdout and [p.name for p in out.parent.iterdir()] == ["frame.png"]


def test_show_cochleagram(capsys, tmp_path):
    tonic_shd(tmp_path / "d", "test", np.random.default_rng(1))
    out = tmp_path / "c.png"
    rc, _, err = run(capsys, "data", "show", "shd", "--split", "test", "--index", "1", "--root", str(tmp_path / "d"), "--out", str(out))
    assert rc == 0, err
    assert out.read_bytes()[:8] == PNG_MAGIC


def _one_line_error(rc, out, err, *needles):
    assert rc == 2
    assert err.startswith("neurohw: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_unknown_dataset(capsys, tmp_path):
    _one_line_error(*run(capsys, "data", "show", "nmist", "--out", str(tmp_path / "x.png")), "unknown dataset 'nmist'", "did you mean")
    assert not (tmp_path / "x.png").exists()


def test_wrong_root(capsys, tmp_path):
    _one_line_error(*run(capsys, "data", "show", "nmnist", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")),
                    str(tmp_path / "nowhere" / "NMNIST" / "Train"), "neurohw data fetch nmnist")
    _one_line_error(*run(capsys, "data", "show", "nmnist-small", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")),
                    str(tmp_path / "nowhere" / "labels.csv"))


def test_truncated_file_and_label_mismatch(capsys, tmp_path):
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(0))
    with open(root / "train" / "2.bin", "ab") as fh:
        fh.write(b"\x07")
    _one_line_error(*run(capsys, "data", "show", "nmnist", "--root", str(root), "--out", str(tmp_path / "x.png")),
                    str(root / "train" / "2.bin"), "truncated")
    (root / "test" / "9.bin").write_bytes(b"\x01\x01\x00\x00\x01")
    _one_line_error(*run(capsys, "data", "show", "nmnist", "--split", "test", "--root", str(root), "--out", str(tmp_path / "x.png")),
                    str(root / "test" / "9.bin"), "has no row")
    assert not (tmp_path / "x.png").exists()


def test_bad_index_and_out(capsys, tmp_path):
    root, _ = synthetic_nmnist_folder(tmp_path / "f", np.random.default_rng(0))
    _one_line_error(*run(capsys, "data", "show", "nmnist", "--root", str(root), "--index", "3", "--out", str(tmp_path / "x.png")),
                    "--index 3 is out of range", "3 samples")
    for index in ("-1", "-3", "-4"):  # never counted from the end
        _one_line_error(*run(capsys, "data", "show", "nmnist", "--root", str(root), "--index", index, "--out", str(tmp_path / "x.png")),
                        f"--index {index}: a sample index is 0 or more")
    _one_line_error(*run(capsys, "data", "show", "nmnist", "--root", str(root), "--out", str(tmp_path / "x.jpg")), "ending in .png")
    assert list(tmp_path.glob("x*")) == []


def test_debug_shows_the_exception(tmp_path, capsys):
    # --debug adds the traceback and keeps the user error's exit code (2)
    assert main(["--debug", "data", "show", "nope", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "DataError" in err and "unknown dataset" in err


def test_fetch_errors(capsys, tmp_path, monkeypatch):
    _one_line_error(*run(capsys, "data", "fetch", "nmnist-small"), "cannot be fetched")
    _one_line_error(*run(capsys, "data", "fetch", "shdd"), "did you mean 'shd'")
    monkeypatch.setattr(tonic.datasets.SHD, "base_url", "http://127.0.0.1:9/")  # nothing listens there
    rc, out, err = run(capsys, "data", "fetch", "shd", "--root", str(tmp_path / "d"))
    _one_line_error(rc, out, err, "fetching shd", "failed", str(tmp_path / "d" / "SHD"))
    assert list((tmp_path / "d").iterdir()) == []


def test_fetch_present_dataset(capsys, tmp_path):
    for s in ("train", "test"):
        tonic_shd(tmp_path / "d", s, np.random.default_rng(0))
    rc, out, _ = run(capsys, "data", "fetch", "shd", "--root", str(tmp_path / "d"))
    assert rc == 0 and f"ready at {tmp_path / 'd' / 'SHD'}" in out
