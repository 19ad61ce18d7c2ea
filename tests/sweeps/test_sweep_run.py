"""Sweeps as a user runs them: 12 points x 2 seeds on 2 local workers, killed with SIGKILL midway
and restarted (only the missing points run; the table equals an uninterrupted sweep's on 1
worker), the same sweep on a local Ray instance (the same table), a failed point recorded
with its one-line error while the others finish."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _sweeps import TINY_BASE, cli, write_yaml
from neurohw.experiments.schema import parse_config
from neurohw.storage import read_sealed, unseal
from neurohw.sweeps.point import metric_names

#: 12 points: decay (3) x read noise (2) x a zip group moving the size and the rate together (2)
SWEEP = {
    "name": "twelve",
    "base": TINY_BASE,
    "axes": {"reservoir.d.decay": [0.8, 0.9, 0.95], "device.overrides.read_noise.relative": [0.0, 0.1]},
    "zip": [{"reservoir.d.n_neurons": [12, 20], "reservoir.d.target_rate": [0.05, 0.08]}],
    "seeds": [0, 1],
}
N_TASKS = 24


def _records(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in (folder / "points").glob("*.bin")}


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
def test_a_sweep_killed_midway_resumes_only_the_missing_points_and_gives_the_uninterrupted_table(tmp_path):
    spec = write_yaml(tmp_path / "twelve.yaml", SWEEP)
    # uninterrupted, one worker, its own cache
    full = tmp_path / "full"
    res = cli(["sweep", str(spec), "--out", str(full), "--workers", "1"], tmp_path / "cache-a")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(full)
    assert len(_records(full)) == N_TASKS

    # two workers, another cache; SIGKILL once a few points are recorded
    killed = tmp_path / "killed"
    env = {**os.environ, "NEUROHW_CACHE": str(tmp_path / "cache-b")}
    proc = subprocess.Popen([sys.executable, "-m", "neurohw", "sweep", str(spec), "--out", str(killed), "--workers", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    workers: set[int] = set()
    while len(_records(killed)) < 6 and time.monotonic() < deadline and proc.poll() is None:
        workers.update(_children(proc.pid))
        time.sleep(0.2)
    workers.update(_children(proc.pid))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in _records(killed).items()}
    assert 6 <= len(before) < N_TASKS, len(before)
    for _ in range(100):  # the workers die with the sweep (PR_SET_PDEATHSIG)
        if not _pids_alive(workers):
            break
        time.sleep(0.1)
    assert not _pids_alive(workers)
    for data, _ in before.values():  # every record is whole
        assert json.loads(unseal(data))["status"] == "ok"

    res = cli(["sweep", str(spec), "--out", str(killed), "--workers", "2"], tmp_path / "cache-b")
    assert res.returncode == 0, res.stderr
    assert f"{len(before)} already done" in res.stderr
    after = _records(killed)
    assert len(after) == N_TASKS
    for k, (data, mtime) in before.items():  # the points finished before the kill did not run again
        assert after[k].read_bytes() == data and after[k].stat().st_mtime_ns == mtime
    assert (killed / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    assert sorted(p.name for p in killed.glob("*.png")) == sorted(p.name for p in full.glob("*.png"))

    # the metric names the sweep validates against are the ones runs report
    rec = json.loads(read_sealed(next(iter(after.values()))))
    cfg = parse_config({**copy.deepcopy(TINY_BASE)})
    assert metric_names(cfg) <= set(rec["metrics"])

    # the same sweep on a local Ray instance (started and stopped by the sweep): the same table
    ray = tmp_path / "ray"
    res = cli(["sweep", str(spec), "--out", str(ray), "--executor", "ray", "--workers", "2"], tmp_path / "cache-c")
    assert res.returncode == 0, res.stderr
    assert (ray / "results.csv").read_bytes() == (full / "results.csv").read_bytes()


@pytest.mark.slow
def test_a_failed_point_is_recorded_with_its_error_and_the_others_finish(tmp_path):
    """A point that fails only while it runs (50-fold cross-validation with ~5 training samples
    per class passes the schema, then the readout refuses it) is one line in its record and in
    the table, the other point (the same encoder: its features come from the cache) finishes,
    and the sweep exits 1."""
    spec = {**SWEEP, "axes": {"head.cv_folds": [2, 50]}, "zip": [], "seeds": [0]}
    path = write_yaml(tmp_path / "f.yaml", spec)
    out = tmp_path / "out"
    res = cli(["sweep", str(path), "--out", str(out), "--workers", "2"], tmp_path / "cache")
    assert res.returncode == 1, res.stderr
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[1].split(",")[3] == "ok"
    assert ",failed,head.cv_folds=50 but class" in rows[2] and "lower cv_folds" in rows[2]
    assert "point p0001-s0 failed: head.cv_folds=50" in res.stderr
