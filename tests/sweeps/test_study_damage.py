"""Damage to the files a sweep or search reads back, at seeded random offsets (runs of zeros
and of 0xFF bytes): a point record and the search journal are either read back exactly as
written or refused (quarantined with one warning line, the point or the lost trials run
again); never another record, never an exception. The readers are checked here on every
damage in-process (fast); tests/sweeps/test_study_resume.py runs damaged folders through the
CLI end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage

from neurohw.storage import seal
from neurohw.sweeps.journal import HEADER, CheckedJournal, entry_line, verified_entries
from neurohw.sweeps.records import RecordStore, config_key, shape_problem

#: damages per file kind and pattern (zeros, 0xFF): 2 x 200 per kind
N_DAMAGES = 200


def damages(size: int, seed: int, n: int = N_DAMAGES):
    """``n`` damages of a ``size``-byte file per pattern: (offset, bytes), 1-16 bytes each,
    at seeded uniform offsets."""
    rng = random.Random(seed)
    for fill in (0x00, 0xFF):
        for _ in range(n):
            offset = rng.randrange(size)
            yield offset, bytes([fill]) * rng.randint(1, 16)


def damaged(blob: bytes, offset: int, patch: bytes) -> bytes:
    return blob[:offset] + patch[: len(blob) - offset] + blob[offset + len(patch):]


META = {"task": "p0001-s0", "point": 1, "seed": 0, "values": {"reservoir.d.decay": 0.9, "head.features": ["rate"]},
        "key": config_key({"task": "classify", "x": 1})}
RECORD = {**META, "status": "ok", "error": None, "run_dir": "/runs/x-p0001-s0", "wall_s": 1.25,
          "metrics": {"test_accuracy": 0.8166666666666667, "cv_accuracy": 0.75, "alpha": 100.0, "chance": 0.1,
                      "energy.encoder_j_per_sample": 3.1e-09, "zero_shot.seen.a_to_b": None}}


def test_a_damaged_point_record_is_read_back_exactly_or_refused_never_changed(tmp_path, capsys):
    store = RecordStore(tmp_path)
    store.write(META["task"], RECORD)
    clean = store.file(META["task"]).read_bytes()
    assert store.finished(META["task"], META) == RECORD
    counts = {"equal": 0, "refused": 0}
    for offset, patch in damages(len(clean), seed=17):
        bad = damaged(clean, offset, patch)
        store.file(META["task"]).write_bytes(bad)
        got = store.finished(META["task"], META)
        if got is None:
            assert bad != clean and not store.file(META["task"]).exists()  # quarantined
            counts["refused"] += 1
        else:
            assert got == RECORD and bad == clean  # only bytes that were already there read back
            counts["equal"] += 1
    assert counts["refused"] + counts["equal"] == 2 * N_DAMAGES and counts["refused"] > 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == counts["refused"] and all("is damaged" in w and "runs again" in w for w in warnings)
    assert len(list((store.path / ".quarantine").iterdir())) == counts["refused"]
    print(f"point records: {counts}")


@pytest.mark.parametrize("change, why", [
    (lambda r: {**r, "metrics": [0.9]}, "'metrics' is a list"),
    (lambda r: {**r, "status": "done"}, "status 'done'"),
    (lambda r: {k: v for k, v in r.items() if k != "key"}, "no 'key'"),
    (lambda r: {**r, "metrics": {"test_accuracy": "0.9"}}, "metrics that are not numbers"),
    (lambda r: {**r, "metrics": {"test_accuracy": True}}, "metrics that are not numbers"),
    (lambda r: {**r, "point": True}, "'point' is a bool"),
    (lambda r: {**r, "run_dir": None}, "an ok record without its run directory"),
    (lambda r: [r], "a list, not a record"),
    (lambda r: {**r, "task": "p0002-s0"}, "the record of p0002-s0, not of p0001-s0"),
])
def test_a_sealed_record_of_the_wrong_shape_is_refused_with_one_warning(tmp_path, capsys, change, why):
    store = RecordStore(tmp_path)
    store.path.mkdir(parents=True)
    store.file(META["task"]).write_bytes(seal(json.dumps(change(dict(RECORD))).encode()))
    assert store.finished(META["task"], META) is None
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and why in err and "p0001-s0 runs again" in err
    assert not store.file(META["task"]).exists()


def test_a_record_of_another_point_seed_or_config_is_not_trusted(tmp_path, capsys):
    store = RecordStore(tmp_path)
    store.write(META["task"], RECORD)
    assert store.finished(META["task"], {**META, "key": "0" * 64}) is None  # the config changed: rerun, no warning
    assert capsys.readouterr().err == "" and store.file(META["task"]).exists()
    assert store.finished(META["task"], {**META, "values": {"reservoir.d.decay": 0.8, "head.features": ["rate"]}}) is None
    assert "values are not those of p0001-s0" in capsys.readouterr().err
    store.write(META["task"], {**RECORD, "status": "failed", "error": "x", "metrics": {}})
    assert store.finished(META["task"], META) is None  # a failed point is retried
    store.file(META["task"]).write_text(json.dumps(RECORD))  # the format before sealing: plain JSON
    assert store.finished(META["task"], META) is None and "bad magic" in capsys.readouterr().err
    assert shape_problem(RECORD) is None


def _journal(folder: Path, trials: int = 6) -> Path:
    """A real Optuna study (random sampler, closed-form objective) on the checked journal."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = folder / "study.log"
    study = optuna.create_study(study_name="j", storage=JournalStorage(CheckedJournal(path)),
                                sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 0.5) ** 2 + t.suggest_int("n", 1, 4), n_trials=trials)
    return path


def _trials(path: Path):
    study = optuna.load_study(study_name="j", storage=JournalStorage(CheckedJournal(path)))
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


def test_a_damaged_search_journal_keeps_exactly_a_prefix_of_its_entries(tmp_path, capsys):
    path = _journal(tmp_path)
    clean = path.read_bytes()
    entries, end, reason = verified_entries(clean)
    assert reason is None and end == len(clean) and clean.startswith(HEADER)
    assert b"".join(entry_line(e) for e in entries) == clean[len(HEADER):]
    full = _trials(path)
    assert len(full) == 6 and all(state == "COMPLETE" for _, state, _, _ in full)
    counts = {"equal": 0, "cut": 0}
    case = tmp_path / "case"
    case.mkdir()
    for offset, patch in damages(len(clean), seed=29):
        bad = damaged(clean, offset, patch)
        target = case / "study.log"
        target.write_bytes(bad)
        kept, _, why = verified_entries(bad)
        assert kept == entries[: len(kept)]  # never an entry that was not written
        try:
            got = _trials(target)
        except KeyError:  # the study's creation itself was lost: the search starts it afresh
            assert len(kept) == 0
            got = []
        if bad == clean:
            assert got == full
            counts["equal"] += 1
            continue
        counts["cut"] += 1
        assert why is not None and len(kept) < len(entries)
        finished = [t for t in got if t[1] == "COMPLETE"]
        assert finished == full[: len(finished)]  # the trials kept are the clean ones, values included
        assert target.read_bytes() == clean[: len(HEADER) + sum(len(entry_line(e)) for e in kept)]  # rewritten, cut
        for q in (case / ".quarantine").iterdir():
            q.unlink()
    assert counts["equal"] + counts["cut"] == 2 * N_DAMAGES and counts["cut"] > 0
    warnings = [w for w in capsys.readouterr().err.splitlines() if w.strip()]
    assert len(warnings) == counts["cut"] and all("study.log is damaged" in w and "verified entries" in w for w in warnings)
    print(f"journal: {counts}")


def test_a_journal_cut_mid_line_resumes_from_its_last_complete_entry(tmp_path, capsys):
    path = _journal(tmp_path, trials=3)
    clean = path.read_bytes()
    last = clean.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(clean[: last + 30])  # kill -9 in the middle of an append
    got = _trials(path)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is cut short (no line end)" in err
    assert path.read_bytes() == clean[:last]
    full = _trials_of(clean, tmp_path)
    assert got[:2] == full[:2] and got[2][1] == "RUNNING" and got[2][2] == full[2][2]  # its tell was cut: left running
    path.write_bytes(b"garbage\n" + clean)  # not a journal of ours: quarantined, started afresh
    with pytest.raises(KeyError):
        _trials(path)
    assert "not a neurohw journal" in capsys.readouterr().err and path.read_bytes() == HEADER


def _trials_of(blob: bytes, tmp_path: Path):
    other = tmp_path / "clean"
    other.mkdir(exist_ok=True)
    (other / "study.log").write_bytes(blob)
    return _trials(other / "study.log")
