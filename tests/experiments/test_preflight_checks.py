"""What is refused before any compute, each as one line and exit code 2: an empty
NEUROHW_CACHE, a file where the cache keeps a folder, an output that cannot be written while
the cache is still cold (nothing generated first), a ridge readout's cv_folds above the training
samples of a class (nothing encoded), and a hil:// backend nobody answers at (validate checks it
with a TCP connect; a reachable one is said to be reachable, a serial one not checked)."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys

import pytest

from _sweeps import TINY_BASE, write_yaml
from neurohw.errors import ConfigError
from neurohw.experiments.preflight import check_links
from neurohw.experiments.schema import parse_config
from neurohw.paths import cache_dir


def _cli(args, env_cache, timeout=300):
    env = {**os.environ, "NEUROHW_CACHE": env_cache}
    return subprocess.run([sys.executable, "-m", "neurohw", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _one_line(res, *needles):
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]  # after the progress of a dataset generated on first use, if any
    assert last.startswith("neurohw: error: ") and res.stderr.count("neurohw: error") == 1 and "Traceback" not in res.stderr
    for needle in needles:
        assert needle in last, res.stderr


@pytest.fixture
def tiny(tmp_path):
    return write_yaml(tmp_path / "tiny.yaml", {**copy.deepcopy(TINY_BASE), "name": "tiny", "seeds": [0]})


def test_an_empty_neurohw_cache_is_refused_not_read_as_the_users_cache(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("NEUROHW_CACHE", "")
    with pytest.raises(ConfigError, match="NEUROHW_CACHE is set but empty; unset it"):
        cache_dir()
    monkeypatch.setenv("NEUROHW_CACHE", "   ")
    with pytest.raises(ConfigError, match="set it to a folder"):
        cache_dir(create=False)
    for cmd in (["validate", str(tiny)], ["run", str(tiny), "--out", str(tmp_path / "out")]):
        _one_line(_cli(cmd, ""), "NEUROHW_CACHE is set but empty")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, make", [
    ("features", lambda p: p.write_text("x")),
    ("embedded", lambda p: p.write_text("x")),
    ("datasets", lambda p: p.symlink_to(p.parent / "gone")),
])
def test_a_file_where_the_cache_keeps_a_folder_is_one_line_before_any_compute(tmp_path, tiny, name, make):
    cache = tmp_path / "cache"
    cache.mkdir()
    make(cache / name)
    res = _cli(["run", str(tiny), "--out", str(tmp_path / "out")], str(cache))
    _one_line(res, f"{cache / name} is a", "where neurohw keeps a folder")
    assert sorted(p.name for p in cache.iterdir()) == [name] and not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_is_refused_before_a_cold_cache_generates_data(tmp_path, tiny):
    (tmp_path / "afile").write_text("x")
    cache = tmp_path / "cold"
    for cmd in (["run", str(tiny), "--out", str(tmp_path / "afile" / "out")], ["validate", str(tiny), "--out", str(tmp_path / "afile")]):
        _one_line(_cli(cmd, str(cache)), "is a file, not a folder")
    assert not cache.exists()  # nothing generated, not even the cache folder


def test_cv_folds_above_the_samples_of_a_class_is_refused_before_encoding(tmp_path):
    raw = {**copy.deepcopy(TINY_BASE), "name": "folds", "seeds": [0, 1]}
    raw["data"]["d"]["max_train_per_class"] = 3
    raw["head"]["cv_folds"] = 4
    path = write_yaml(tmp_path / "folds.yaml", raw)
    cache = tmp_path / "cache"
    res = _cli(["run", str(path), "--out", str(tmp_path / "out")], str(cache))
    _one_line(res, "head.cv_folds=4 but class", "has only 3 training samples (data.d at run seed 0)", "lower cv_folds to at most 3")
    assert not (cache / "features").exists() and not (tmp_path / "out").exists()
    raw["head"]["cv_folds"] = 3  # exactly the samples per class: accepted by validate
    res = _cli(["validate", str(write_yaml(tmp_path / "ok.yaml", raw))], str(cache))
    assert res.returncode == 0, res.stderr


def test_validate_checks_that_a_hil_address_answers(tmp_path, tiny):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        cfg = parse_config({**copy.deepcopy(TINY_BASE), "backend": f"hil://127.0.0.1:{port}"}, "x")
        assert check_links(cfg) == [f"hil://127.0.0.1:{port}: reachable"]
    # the port is closed now: nobody answers
    with pytest.raises(ConfigError, match=rf"backend hil://127.0.0.1:{port}: nothing answers at 127.0.0.1:{port} within 3 s"):
        check_links(cfg)
    serial = parse_config({**copy.deepcopy(TINY_BASE), "backend": "hil+serial:///dev/ttyUSB9?baud=115200"}, "x")
    assert check_links(serial) == ["hil+serial:///dev/ttyUSB9?baud=115200: not checked (a serial link is opened only by a run)"]
    res = _cli(["validate", str(tiny), "--set", f"backend=hil://127.0.0.1:{port}"], str(tmp_path / "cache"), timeout=60)
    _one_line(res, "nothing answers", "neurohw hil serve")
