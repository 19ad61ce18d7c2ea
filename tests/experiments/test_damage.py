"""Damage test of every file kind the run pipeline writes and reads back (docs/reliability.md,
"Storage: damage"): feature blocks, the feature entry's spec file, the embedded dataset file,
and the run-directory files ``neurohw export`` reads.

Each case damages one file at a seeded random offset (1 or 16 bytes of 0x00 or 0xFF) and runs
the CLI on it. A run must either exit 0 with exactly the clean run's metrics (the damage was
found, reported in a warning, and the entry recomputed; or the damage changed no byte) or exit 2
with one error line; never a traceback, a signal or a hang. Most cases run the CLI in-process
(fast); a few per kind run ``python -m neurohw`` in a real process with a timeout, so that a
crash or a hang would be seen. The fast variant runs a few cases per kind; the slow one a few
dozen per kind and value (several hundred in all) and prints the counts.

Full disk: the cache on a small tmpfs, filled up: one line naming a path and "no space left",
exit 2, no run directory and no damaged entry; after the space is freed, the clean metrics. Then
the output folder on the full tmpfs: one line, exit 2, nothing published.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from _sweeps import TINY_BASE, write_yaml
from neurohw.cli import main

CONFIG = {**TINY_BASE, "name": "dmg", "seeds": [0], "plots": False}
KINDS = ("feature-block", "feature-spec", "embedded", "run-dir")
#: the files of a run directory that export reads (manifest.json guards them all)
RUN_FILES = ("config.yaml", "encoders.json", "heads/seed0.safetensors", "manifest.json", "metrics.json")
TIMEOUT_S = 600  # one subprocess run (seconds on an idle machine; generous for a loaded one)


def _strip(d):
    """metrics.json without the timings (measurements of the machine, not results)."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if not (k.endswith("_s") or k in ("timing", "training_cost_ratio"))}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def _runs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


class Clean:
    """A clean cache, run directory, metrics and export, made once per module."""

    def __init__(self, root: Path):
        self.root = root
        self.config = write_yaml(root / "dmg.yaml", CONFIG)
        self.cache = root / "cache"
        out = root / "runs"
        os.environ["NEUROHW_CACHE"] = str(self.cache)
        assert main(["run", str(self.config), "--quiet", "--out", str(out)]) == 0
        (self.run,) = _runs(out)
        self.metrics = _strip(json.loads((self.run / "metrics.json").read_text()))
        assert main(["export", str(self.run), "--format", "head-safetensors", "--out", str(root / "clean.safetensors")]) == 0
        self.export = (root / "clean.safetensors").read_bytes()

    def files(self, kind: str, cache: Path, run: Path) -> list[Path]:
        features = sorted(p for p in (cache / "features").iterdir() if p.is_dir() and not p.name.startswith("."))
        if kind == "feature-block":
            return sorted(f for e in features for f in e.glob("block-*.seal"))
        if kind == "feature-spec":
            return [e / "spec.seal" for e in features]
        if kind == "embedded":
            return sorted((cache / "embedded").glob("*.seal"))
        return [run / rel for rel in RUN_FILES]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    saved = os.environ.get("NEUROHW_CACHE")
    try:
        yield Clean(tmp_path_factory.mktemp("clean"))
    finally:
        if saved is None:
            os.environ.pop("NEUROHW_CACHE", None)
        else:
            os.environ["NEUROHW_CACHE"] = saved


def _damage(path: Path, rng: np.random.Generator, value: int) -> bool:
    """Overwrite 1 or 16 bytes at a random offset with ``value``; whether a byte changed."""
    raw = bytearray(path.read_bytes())
    n = int(rng.choice([1, 16]))
    at = int(rng.integers(0, max(len(raw) - n, 1)))
    before = bytes(raw[at : at + n])
    raw[at : at + n] = bytes([value]) * len(raw[at : at + n])
    path.write_bytes(bytes(raw))
    return bytes(raw[at : at + n]) != before


def _one_case(clean: Clean, work: Path, kind: str, index: int, value: int, rng, subprocess_run: bool) -> str:
    """Copy the clean cache and run, damage one file, run the CLI; the outcome."""
    if work.exists():
        shutil.rmtree(work)
    cache, run, out = work / "cache", work / "run", work / "runs"
    shutil.copytree(clean.cache, cache)
    shutil.copytree(clean.run, run)
    files = clean.files(kind, cache, run)
    changed = _damage(files[index % len(files)], rng, value)
    if kind == "run-dir":
        target = work / "export.safetensors"
        argv = ["export", str(run), "--format", "head-safetensors", "--out", str(target)]
    else:
        argv = ["run", str(clean.config), "--quiet", "--out", str(out)]
    if subprocess_run:
        env = {**os.environ, "NEUROHW_CACHE": str(cache)}
        p = subprocess.run([sys.executable, "-m", "neurohw", *argv], capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        rc, err = p.returncode, p.stderr
    else:
        os.environ["NEUROHW_CACHE"] = str(cache)
        buf_out, buf_err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
            rc = main(argv)
        err = buf_err.getvalue()
    lines = err.strip().splitlines()
    where = f"{kind} {files[index % len(files)].name} value {value:#x}: rc {rc}, stderr {err[-600:]!r}"
    assert "Traceback" not in err, where
    assert rc in (0, 2), where  # a negative rc is a signal (a crash)
    if rc == 2:
        assert len(lines) == 1 and lines[0].startswith("neurohw: error:"), where
        assert not _runs(out) and not (work / "export.safetensors").exists(), where  # nothing published
        return "refused"
    if kind == "run-dir":
        assert (work / "export.safetensors").read_bytes() == clean.export, where
    else:
        (got,) = _runs(out)
        assert _strip(json.loads((got / "metrics.json").read_text())) == clean.metrics, where
    assert all(line.startswith("neurohw: warning:") for line in lines), where
    if changed:
        assert lines, f"{where}: a changed byte went unnoticed"
        return "recomputed"
    return "equal"


def _campaign(clean: Clean, tmp_path: Path, per_kind_and_value: int, in_subprocess: int) -> dict:
    counts: dict[str, Counter] = {}
    rng = np.random.default_rng(17)
    for kind in KINDS:
        counts[kind] = Counter()
        for value in (0x00, 0xFF):
            for i in range(per_kind_and_value):
                outcome = _one_case(clean, tmp_path / "case", kind, i, value, rng, i < in_subprocess)
                counts[kind][outcome] += 1
        c = counts[kind]
        print(f"{kind:14s} damages {sum(c.values()):4d}  recomputed {c['recomputed']:4d}  refused {c['refused']:4d}  equal {c['equal']:4d}",
              flush=True)
    total = sum(counts.values(), Counter())
    print(f"{'all':14s} damages {sum(total.values()):4d}  recomputed {total['recomputed']:4d}  refused {total['refused']:4d}  equal {total['equal']:4d}")
    return counts


def test_damage_quick(clean, tmp_path):
    """Three damages per kind and value, one of each through a real process."""
    counts = _campaign(clean, tmp_path, 3, 1)
    assert all(sum(c.values()) == 6 for c in counts.values())
    assert counts["run-dir"]["refused"] + counts["run-dir"]["equal"] == 6  # an edited run file is never exported


@pytest.mark.slow
def test_damage_campaign(clean, tmp_path):
    """Forty damages per kind and value (320 in all), one of each through a real process (eight;
    with test_damage_quick's eight, sixteen: a real process costs ~4 s of imports, and what it
    adds to an in-process run, a signal or a hang seen from outside, does not depend on where the
    damage is); the counts are printed (``pytest -n0 -s``) for docs/reliability.md."""
    counts = _campaign(clean, tmp_path, 40, 1)
    assert sum(sum(c.values()) for c in counts.values()) == 320


# ----------------------------------------------------------------------------- full disk


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


def _fill(filler: Path) -> None:
    """Fill the file system of ``filler`` to its last byte."""
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_disk_under_the_cache_then_space_freed(clean, tmp_path):
    fs = tmp_path / "fs"
    if not _mount_tmpfs(fs, "16m"):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        cache, out = fs / "cache", tmp_path / "runs"
        shutil.copytree(clean.cache / "embedded", cache / "embedded")  # the dataset is there; the features are not
        filler = fs / "filler"
        _fill(filler)
        env = {**os.environ, "NEUROHW_CACHE": str(cache)}
        cmd = [sys.executable, "-m", "neurohw", "run", str(clean.config), "--quiet", "--out", str(out)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "no space left" in lines[0] and str(cache) in lines[0], p.stderr
        assert not _runs(out)
        from neurohw.storage import read_sealed

        for f in (cache / "features").rglob("*.seal"):  # whatever was published is complete and verifies
            read_sealed(f)
        filler.unlink()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        (run,) = _runs(out)
        assert _strip(json.loads((run / "metrics.json").read_text())) == clean.metrics
        # the output folder full (the cache elsewhere, warm): one line, no run directory
        shutil.rmtree(cache)
        warm = tmp_path / "warm-cache"
        shutil.copytree(clean.cache, warm)
        full_out = fs / "runs"
        full_out.mkdir()
        _fill(fs / "filler")
        cmd = [sys.executable, "-m", "neurohw", "run", str(clean.config), "--quiet", "--out", str(full_out)]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NEUROHW_CACHE": str(warm)}, timeout=TIMEOUT_S)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "no space left" in lines[0] and str(full_out) in lines[0], p.stderr
        assert not list(full_out.iterdir())  # nothing published, no partial folder left
    finally:
        subprocess.run(["umount", "-l", str(fs)], capture_output=True, timeout=30)
