"""Resumes through the CLI, as a user runs them: a search run as 3 + 3 trials proposes and
scores exactly the six trials of one run of 6 and writes the same best.yaml; a journal cut
mid-line or damaged is repaired with one warning and the search ends with the same results; an
edited, damaged or wrong-shaped sweep record is rerun with one warning and the table is the
clean one; a second session into a held folder is refused before any point runs."""

from __future__ import annotations

import copy
import json
import random
import shutil

import pytest

from _sweeps import TINY_BASE, cli, write_yaml
from neurohw.storage import read_sealed, seal
from neurohw.sweeps.records import hold_folder

BASE = {**copy.deepcopy(TINY_BASE), "seeds": [0]}
SEARCH = {"name": "s6", "base": BASE, "trials": 6, "seed": 3, "sampler": "tpe",
          "params": {"reservoir.d.decay": {"low": 0.7, "high": 0.99}, "reservoir.d.n_neurons": {"low": 8, "high": 24, "step": 8}}}
SWEEP = {"name": "sw", "base": BASE, "axes": {"reservoir.d.decay": [0.8, 0.9]}, "seeds": [0, 1]}


def _complete(folder) -> list[str]:
    """trials.csv's complete rows without the trial number (an interrupted trial shifts it)."""
    rows = (folder / "trials.csv").read_text().splitlines()
    return [r.split(",", 1)[1] for r in rows[1:] if ",complete," in r]


def _best(folder) -> list[str]:
    return [line for line in (folder / "best.yaml").read_text().splitlines() if not line.startswith("# Run it:")]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


@pytest.mark.slow
def test_a_search_resumed_3_plus_3_is_one_run_of_6_and_a_cut_or_damaged_journal_is_repaired(tmp_path):
    cache = tmp_path / "cache"
    spec = write_yaml(tmp_path / "s6.yaml", SEARCH)
    full, parts = tmp_path / "full", tmp_path / "parts"
    res = cli(["search", str(spec), "--out", str(full), "--workers", "1", "--quiet"], cache)
    assert res.returncode == 0, res.stderr
    for trials in ("3", "6"):
        res = cli(["search", str(spec), "--out", str(parts), "--workers", "1", "--quiet", "--trials", trials], cache)
        assert res.returncode == 0, res.stderr
    assert (parts / "trials.csv").read_text() == (full / "trials.csv").read_text()  # the same six trials, same values
    assert _best(parts) == _best(full) and len(_complete(full)) == 6

    clean = (full / "study.log").read_bytes()
    lines = clean.splitlines(keepends=True)
    # kill -9 in the middle of the append that told trial 4 its value (op 6: set state and values)
    told = [i for i, line in enumerate(lines) if b'"op_code":6' in line]
    cut = b"".join(lines[: told[4]]) + lines[told[4]][:40]
    cases = [("cut", cut)]
    rng = random.Random(5)
    for fill in (0x00, 0xFF):
        for _ in range(2):
            offset = rng.randrange(len(lines[0]), len(clean))
            n = rng.randint(1, 16)
            cases.append((f"{fill:#x}@{offset}", clean[:offset] + bytes([fill]) * n + clean[offset + n:]))
    for name, blob in cases:
        case = tmp_path / f"case-{name}"
        shutil.copytree(full, case)
        (case / "study.log").write_bytes(blob)
        res = cli(["search", str(spec), "--out", str(case), "--workers", "1", "--quiet"], cache)
        assert res.returncode == 0, (name, res.stderr)
        assert "Traceback" not in res.stderr
        warned = _warnings(res.stderr)
        assert len(warned) == 1 and "study.log is damaged" in warned[0] and "verified entries" in warned[0], (name, res.stderr)
        assert _complete(case) == _complete(full) and _best(case) == _best(full), name


@pytest.mark.slow
def test_an_edited_damaged_or_wrong_shaped_sweep_record_is_rerun_and_a_held_folder_refused(tmp_path):
    cache = tmp_path / "cache"
    spec = write_yaml(tmp_path / "sw.yaml", SWEEP)
    full = tmp_path / "full"
    res = cli(["sweep", str(spec), "--out", str(full), "--workers", "1", "--quiet"], cache)
    assert res.returncode == 0, res.stderr
    table = (full / "results.csv").read_bytes()
    records = sorted((full / "points").glob("*.bin"))
    assert len(records) == 4

    def rerun(name, damage):
        case = tmp_path / name
        shutil.copytree(full, case)
        touched = damage(case / "points")
        before = {p.name: p.stat().st_mtime_ns for p in (case / "points").glob("*.bin") if p.name not in touched}
        res = cli(["sweep", str(spec), "--out", str(case), "--workers", "1", "--quiet"], cache)
        assert res.returncode == 0, (name, res.stderr)
        warned = _warnings(res.stderr)
        assert len(warned) == len(touched) and all("is damaged" in w and "runs again" in w for w in warned), (name, res.stderr)
        assert (case / "results.csv").read_bytes() == table, name
        assert {p.name: p.stat().st_mtime_ns for p in (case / "points").glob("*.bin") if p.name in before} == before
        assert len(list((case / "runs").iterdir())) == 4 + len(touched)  # only the refused points ran again
        return res

    def edit_metric(points):  # a metric edited in place: its digest no longer matches
        p = points / "p0001-s0.bin"
        rec = json.loads(read_sealed(p))
        blob = p.read_bytes().replace(json.dumps(rec["metrics"]["test_accuracy"]).encode(), b"0.99", 1)
        p.write_bytes(blob)
        return {p.name}

    def wrong_shape(points):  # valid JSON of the wrong shape, as an older version wrote it
        p = points / "p0000-s1.bin"
        p.write_text(json.dumps({"status": "ok", "metrics": [1.0]}))
        return {p.name}

    def resealed_lie(points):  # sealed again, but the record of another point under this name
        p = points / "p0001-s1.bin"
        p.write_bytes(seal(read_sealed(points / "p0000-s0.bin")))
        return {p.name}

    res = rerun("edited", edit_metric)
    assert "p0001-s0.bin is damaged (length" in res.stderr  # the edit changed its length; same length: its SHA-256
    rerun("shape", wrong_shape)
    rerun("lie", resealed_lie)
    rng = random.Random(11)
    for k in range(3):  # every record damaged at once, at seeded offsets, zeros or 0xFF
        def every(points, fill=(0x00, 0xFF)[k % 2]):
            names = set()
            for p in sorted(points.glob("*.bin")):
                blob = p.read_bytes()
                offset, n = rng.randrange(len(blob)), rng.randint(1, 16)
                p.write_bytes(blob[:offset] + bytes([fill]) * n + blob[offset + n:])
                names.add(p.name)
            return names
        rerun(f"damaged-{k}", every)

    # a second session into a folder another one holds: refused before anything runs
    held = tmp_path / "held"
    with hold_folder(held, "sweep", "sw"):
        res = cli(["sweep", str(spec), "--out", str(held), "--workers", "1", "--quiet"], cache)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "another session of a sweep or search is running in this folder" in res.stderr
    assert not (held / "runs").exists() and not (held / "points").exists()
