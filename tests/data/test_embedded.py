"""The embedded datasets: determinism, cache, splits, validation, and that the data carry the class.

The ``slow`` tests generate both full datasets once (into a private cache) and check their size,
their event statistics and that a plain logistic regression on 3-time-bin event counts learns
each of them.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from neurohw.data import embedded
from neurohw.data.embedded import EMBEDDED_NAMES, cache_path, embedded_status, generate_embedded, load_embedded
from neurohw.data.events import CAMERA_DTYPE, COCHLEA_DTYPE
from neurohw.data.speech import Espeak, Utterance, synthesize
from neurohw.errors import DataError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path))
    return tmp_path


def _all_events(name, seed, per_class):
    out = []
    for split in ("train", "test"):
        ds = load_embedded(name, split, seed=seed, samples_per_class=per_class, progress=False)
        out += [(int(i), ds[j][0], ds[j][1]) for j, i in enumerate(ds.meta["index"])]
    return [(e, label) for _, e, label in sorted(out, key=lambda r: r[0])]


@pytest.mark.parametrize("name", EMBEDDED_NAMES)
def test_same_seed_gives_byte_identical_events_and_another_seed_differs(name, tmp_path, monkeypatch):
    runs = {}
    for tag, seed in (("a", 0), ("b", 0), ("c", 1)):
        monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / tag))
        runs[tag] = _all_events(name, seed, per_class=2)
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert len(a) == len(b) == len(c) == 20
    for (ea, la), (eb, lb) in zip(a, b):
        assert la == lb and ea.tobytes() == eb.tobytes()
    assert any(ea.tobytes() != ec.tobytes() for (ea, _), (ec, _) in zip(a, c))


@pytest.mark.parametrize("name,dtype,sensor", [("digits-dvs", CAMERA_DTYPE, (34, 34, 2)), ("digits-cochlea", COCHLEA_DTYPE, (64, 1, 1))])
def test_small_generation_is_cached_split_and_well_formed(name, dtype, sensor, cache):
    per_class = 5
    path = cache_path(name, 0, per_class)
    assert path == cache / "embedded" / f"{name}-v{embedded._SPECS[name].version}-seed0-n5.seal" and not path.exists()
    train = load_embedded(name, "train", samples_per_class=per_class, progress=False)
    # no temporary left (the lock file that serialises concurrent generations stays, empty)
    assert path.is_file() and [p.name for p in path.parent.iterdir() if p.suffix != ".lock"] == [path.name]
    test = load_embedded(name, "test", samples_per_class=per_class, progress=False)
    assert (train.sensor_size, train.dtype, train.classes) == (sensor, dtype, [str(d) for d in range(10)])
    # stratified 80/20: 1 of 5 per class in test, disjoint, together all
    assert np.array_equal(np.bincount(test.labels, minlength=10), np.ones(10))
    assert np.array_equal(np.bincount(train.labels, minlength=10), 4 * np.ones(10))
    assert not set(train.meta["index"]) & set(test.meta["index"])
    assert sorted(set(train.meta["index"]) | set(test.meta["index"])) == list(range(50))
    for ds in (train, test):
        for i in range(len(ds)):
            ev, label = ds[i]
            assert ev.dtype == dtype and len(ev) > 100 and np.all(np.diff(ev["t"]) >= 0)
            assert 0 <= ev["x"].min() and ev["x"].max() < sensor[0]
            if dtype == CAMERA_DTYPE:
                assert ev["y"].max() < sensor[1] and set(np.unique(ev["p"])) == {0, 1}
                assert ev["t"].min() >= 0 and ev["t"].max() <= 300_000
            else:
                assert np.all(ev["p"] == 1)
    # a second load reads the same file back (no regeneration: the file is untouched)
    mtime = path.stat().st_mtime_ns
    again = load_embedded(name, "train", samples_per_class=per_class, progress=False)
    assert path.stat().st_mtime_ns == mtime and again[0][0].tobytes() == train[0][0].tobytes()


def test_status_reports_the_full_cache_file(cache):
    present, location = embedded_status("digits-dvs")
    assert not present and location == str(cache / "embedded" / f"digits-dvs-v{embedded._SPECS['digits-dvs'].version}-seed0.seal")
    present, location = embedded_status("digits-cochlea", seed=3)
    assert not present and location.endswith(f"digits-cochlea-v{embedded._SPECS['digits-cochlea'].version}-seed3.seal")
    generate_embedded("digits-dvs", 0, 1, progress=False)  # a small one is not the full dataset
    assert not embedded_status("digits-dvs")[0]


def test_bad_names_splits_and_options_are_user_errors(cache):
    with pytest.raises(DataError, match="did you mean 'digits-dvs'"):
        load_embedded("digits-dsv", "train")
    with pytest.raises(DataError, match="unknown split 'tset'.*did you mean 'test'"):
        load_embedded("digits-dvs", "tset")
    for seed in (-1, 1.5, "0", True):
        with pytest.raises(DataError, match="seed must be an integer >= 0"):
            load_embedded("digits-dvs", "train", seed=seed)
    with pytest.raises(DataError, match="samples_per_class"):
        load_embedded("digits-cochlea", "train", samples_per_class=0)
    assert not (cache / "embedded").exists() or not any((cache / "embedded").iterdir())


def test_a_damaged_cache_file_is_reported_and_generated_again(cache, capsys):
    """Unreadable, cut, or with bytes flipped inside its data: the digest of the bytes fails
    before numpy parses them; one warning line, the file is moved aside and generated again,
    and the events equal a clean generation's (never a silent use)."""
    from neurohw.storage import pack_arrays, read_sealed, unpack_arrays, write_sealed

    path = cache_path("digits-dvs", 0, 1)
    clean = load_embedded("digits-dvs", "train", samples_per_class=1, progress=False)
    reference = [clean.events(i).copy() for i in range(len(clean))]
    good = path.read_bytes()

    def damaged_then_loaded(damage) -> str:
        damage()
        capsys.readouterr()
        ds = load_embedded("digits-dvs", "train", samples_per_class=1, progress=False)
        assert all(np.array_equal(ds.events(i), ref) for i, ref in enumerate(reference))
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neurohw: warning:"), err
        assert path.read_bytes() == good  # generated again, byte for byte
        return err[0]

    assert "bad magic" in damaged_then_loaded(lambda: path.write_bytes(b"not a sealed file " * 4))
    assert "truncated" in damaged_then_loaded(lambda: path.write_bytes(good[:20]))
    assert "length" in damaged_then_loaded(lambda: path.write_bytes(good[:-100]))

    def flip():  # one byte inside the event data
        raw = bytearray(good)
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(raw))

    assert "SHA-256" in damaged_then_loaded(flip)
    assert len(list((path.parent / ".quarantine").iterdir())) == 4  # each moved aside, never patched
    arrays, strings = unpack_arrays(read_sealed(path))

    def inconsistent():  # correctly sealed, but its arrays disagree
        write_sealed(path, pack_arrays({**arrays, "offsets": arrays["offsets"][:-1]}, strings))

    assert "inconsistent" in damaged_then_loaded(inconsistent)


def test_a_file_generated_for_other_parameters_is_generated_again_with_a_warning(cache, capsys):
    """A (valid) file of another seed or samples_per_class under this request's name."""
    import shutil

    want = load_embedded("digits-dvs", "train", seed=0, samples_per_class=2, progress=False)
    reference = [want.events(i).copy() for i in range(len(want))]
    good = cache_path("digits-dvs", 0, 2).read_bytes()
    for seed, per_class in ((1, 2), (0, 1)):
        generate_embedded("digits-dvs", seed, per_class, progress=False)
        shutil.copyfile(cache_path("digits-dvs", seed, per_class), cache_path("digits-dvs", 0, 2))
        capsys.readouterr()
        ds = load_embedded("digits-dvs", "train", seed=0, samples_per_class=2, progress=False)
        assert len(ds) == len(reference) and all(np.array_equal(ds.events(i), r) for i, r in enumerate(reference))
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "generated for" in err[0] and "generating it again" in err[0], err
        assert cache_path("digits-dvs", 0, 2).read_bytes() == good


def test_espeak_keeps_state_in_process_but_a_fresh_process_per_list_is_deterministic():
    # +f2 draws from espeak-ng's random generator, which the library seeds from the clock (in
    # seconds): the utterance's own seed must replace it, so synthesise again a second later
    utts = [Utterance("seven", "en-us+m3", 170, 50), Utterance("two", "en-gb-scotland+klatt", 140, 30), Utterance("six", "en+f2", 170, 50, seed=5)]
    fs1, w1 = synthesize(utts)
    time.sleep(1.1)
    fs2, w2 = synthesize(utts)
    assert fs1 == fs2 == 22050
    assert all(a.tobytes() == b.tobytes() for a, b in zip(w1, w2))
    _, (seed5,) = synthesize([Utterance("six", "en+f2", 170, 50, seed=5)])
    _, (seed6,) = synthesize([Utterance("six", "en+f2", 170, 50, seed=6)])
    assert len(seed5) == len(seed6) and seed5.tobytes() != seed6.tobytes()
    assert all(0.2 * fs1 < len(w) < 1.5 * fs1 and np.abs(w).max() > 1000 for w in w1)
    # why the child process: in one process the same utterance twice differs (flutter state)
    espeak = Espeak.get()
    first, second = espeak.say(utts[0]), espeak.say(utts[0])
    assert first.tobytes() != second.tobytes()
    with pytest.raises(ValueError, match="no voice"):
        espeak.say(Utterance("one", "xx-nonexistent"))


# --- the full datasets -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full(session_cache):
    """Every full embedded dataset (train and test splits), from the session's cache: generated
    once there for this module and for the tests that run the shipped experiments."""
    assert os.environ["NEUROHW_CACHE"] == str(session_cache)  # a module fixture: no test's own cache is set yet
    return {name: (load_embedded(name, "train", progress=False), load_embedded(name, "test", progress=False)) for name in EMBEDDED_NAMES}


def _three_bin_counts(ds) -> np.ndarray:
    """Event counts per (time third of the sample, polarity, y, x) or (time third, channel)."""
    w, h, p = ds.sensor_size
    n_ch = w * h * p if ds.is_camera else w
    X = np.zeros((len(ds), 3 * n_ch))
    for i in range(len(ds)):
        ev = ds.events(i)
        t = ev["t"] - ev["t"].min()
        b = np.minimum(3 * t // (t.max() + 1), 2)
        ch = (ev["p"] * h + ev["y"]) * w + ev["x"] if ds.is_camera else ev["x"]
        X[i] = np.bincount(b * n_ch + ch, minlength=3 * n_ch)
    return X


def _logistic_test_accuracy(train, test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    clf.fit(_three_bin_counts(train), train.labels)
    return float(clf.score(_three_bin_counts(test), test.labels))


@pytest.mark.slow
@pytest.mark.parametrize("name,minimum", [("digits-dvs", 0.80), ("digits-cochlea", 0.70), ("digits-v1", 0.80)])
def test_logistic_regression_on_three_bin_counts_learns_each_dataset(full, name, minimum):
    train, test = full[name]
    acc = _logistic_test_accuracy(train, test)
    print(f"{name}: logistic regression on 3-bin counts, test accuracy {acc:.3f}")
    assert acc > minimum


@pytest.mark.slow
def test_full_datasets_have_their_size_balance_and_event_statistics(full):
    train, test = full["digits-dvs"]
    assert len(train) + len(test) == 1797 and len(test) == 359  # all of sklearn's digits
    counts = np.array([len(train.events(i)) for i in range(len(train))])
    p5, p50, p95 = np.percentile(counts, [5, 50, 95])
    print(f"digits-dvs events/sample: mean {counts.mean():.0f}, p5 {p5:.0f}, median {p50:.0f}, p95 {p95:.0f}")
    assert 2300 < p5 and p95 < 6000  # real N-MNIST (nmnist-small): p5-p95 2.3k-6.0k
    train, test = full["digits-cochlea"]
    labels = np.concatenate([train.labels, test.labels])
    assert np.array_equal(np.bincount(labels), 300 * np.ones(10))
    assert np.array_equal(np.bincount(test.labels), 60 * np.ones(10))
    counts = np.array([len(train.events(i)) for i in range(len(train))])
    p5, p50, p95 = np.percentile(counts, [5, 50, 95])
    print(f"digits-cochlea events/sample: mean {counts.mean():.0f}, p5 {p5:.0f}, median {p50:.0f}, p95 {p95:.0f}")
    assert 300 < p5 and 1000 < p50 < 4000 and p95 < 8000
    durations = np.array([train.events(i)["t"].max() for i in range(len(train))])
    assert 0.3e6 < np.median(durations) < 1.5e6  # one spoken word, microseconds


def test_module_names_match_the_contract():
    assert EMBEDDED_NAMES == ("digits-dvs", "digits-cochlea", "digits-v1")
    assert embedded.CLASSES == [str(d) for d in range(10)]
