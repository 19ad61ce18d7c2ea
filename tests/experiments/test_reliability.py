"""Runs never report a wrong number, as a user meets them through the CLI: damaged cache data is
found and recomputed, concurrent runs share a cache and an output folder, every limit is checked
before any compute (one line, exit code 2, in seconds), leftovers of dead processes go away,
identical runs give identical artefacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _tiny_quickstart import QUICKSTART, TINY
from neurohw.cli import main



def _sets(extra=()):
    return sum((["--set", s] for s in [*TINY, *extra]), [])


def _metrics(run: Path) -> dict:
    """metrics.json without the timings (measurements of the machine, not results)."""
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if not (k.endswith("_s") or k in ("timing", "training_cost_ratio"))}
        if isinstance(d, list):
            return [strip(v) for v in d]
        return d

    return strip(json.loads((run / "metrics.json").read_text()))


def _run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith("."))


def test_flipped_bytes_in_a_feature_file_give_a_warning_and_the_clean_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROHW_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]) == 0
    clean = _metrics(_run_dirs(out)[0])
    entries = sorted(p for p in (tmp_path / "cache" / "features").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(entries) == 4  # 2 modalities x 2 splits
    for entry in entries:  # flip bytes inside every entry's first block (its tensor data, not its header)
        path = entry / "block-000000.seal"
        raw = bytearray(path.read_bytes())
        raw[-9] ^= 0xFF
        raw[-3] ^= 0x0F
        path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("neurohw: warning:") and "SHA-256" in line for line in err), err
    assert _metrics(_run_dirs(out)[1]) == clean


@pytest.mark.slow
def test_four_concurrent_runs_on_one_cold_cache_and_one_out_folder(tmp_path):
    """Started together on an empty cache (embedded datasets, features and kernels all to be
    made): all exit 0, four distinct run folders, identical metrics."""
    out = tmp_path / "runs"
    env = {**os.environ, "NEUROHW_CACHE": str(tmp_path / "cold-cache")}
    cmd = [sys.executable, "-m", "neurohw", "run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1][-800:] for o in outs]
    runs = _run_dirs(out)
    assert len(runs) == 4 and {Path(o[0].strip()) for o in outs} == set(runs)
    first = _metrics(runs[0])
    assert all(_metrics(r) == first for r in runs[1:])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial folders left


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], dict, str]]:
    """(extra argv, extra env, expected words) of configs that validate must refuse."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    text = QUICKSTART.read_text()
    # a billion-laughs bomb (10**7 values) nested in an options mapping that the loader accepts
    bombed = tmp_path / "bomb.yaml"
    lines = text.splitlines()
    k = lines.index("  image:                                # modality b")
    nested = ["    options:", "      samples_per_class: 12", "      x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"      x{i}: &x{i} [{', '.join(['*x' + str(i - 1)] * 10)}]" for i in range(1, 7)]
    bombed.write_text("\n".join(lines[: k + 1] + nested + lines[k + 1:]) + "\n")
    twice = tmp_path / "twice.yaml"
    twice.write_text(text.replace("task: zero_shot\n", "task: zero_shot\nbatch_size: 8\nbatch_size: 16\n", 1))
    return [
        (["--set", "name=../../x"], {}, "plain file name"),
        (["--set", "name=a/b"], {}, "plain file name"),
        (["--set", "name=''"], {}, "plain file name"),
        (["--out", str(afile / "x")], {}, "is a file, not a folder"),
        (["--out", "/proc/neurohw-test"], {}, "cannot create files in /proc"),
        ([], {"NEUROHW_CACHE": str(afile / "cache")}, "cache folder"),
        (["--set", "reservoir.image.n_neurons=1000000000"], {}, "lower n_neurons"),
        (["--set", "seeds=[9223372036854775000]"], {}, "below 2**63"),
        (["--set", "seeds=[true]"], {}, "boolean"),
        (["--set", "reservoir.image.v_th=.inf"], {}, "finite"),
        (["--config", str(bombed)], {}, "aliases"),
        (["--config", str(twice)], {}, "given twice"),
    ]


def test_every_bad_case_is_one_line_exit_2_within_seconds_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    for extra, env, words in _bad_cases(tmp_path):
        config = str(QUICKSTART)
        if extra[:1] == ["--config"]:
            config, extra = extra[1], []
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            for command in (["validate", config, *extra], ["run", config, "--quiet", "--out", str(out), *extra]):
                if command[0] == "run" and "--out" in extra:
                    command = ["run", config, "--quiet", *extra]
                t0 = time.perf_counter()
                rc = main(command)
                elapsed = time.perf_counter() - t0
                err = capsys.readouterr().err.strip().splitlines()
                assert rc == 2, (command, err)
                assert len(err) == 1 and words in err[0], (command, err)
                assert elapsed < 5.0, (command, elapsed)  # refused before any compute
        assert not out.exists() or not list(out.iterdir()), extra


def test_leftovers_of_dead_processes_are_removed_by_the_next_run(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEUROHW_CACHE", str(cache))
    out = tmp_path / "runs"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    (cache / "embedded").mkdir(parents=True)
    stale_tmp = cache / "embedded" / f".digits-dvs-v1-seed0-n12.npz.tmp-{pid}-abcd1234.tmp"
    stale_tmp.write_bytes(b"half a file")
    out.mkdir()
    stale_run = out / f".quickstart-20260101-000000.partial-deadbeef-{pid}"
    stale_run.mkdir()
    alive_tmp = cache / "embedded" / f".other.npz.tmp-{os.getpid()}-abcd1234.tmp"  # ours: kept
    alive_tmp.write_bytes(b"in use")
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]) == 0
    assert not stale_tmp.exists() and not stale_run.exists() and alive_tmp.exists()


def test_identical_runs_give_identical_artefacts(tmp_path, monkeypatch):
    out = tmp_path / "runs"
    for _ in range(2):
        assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]) == 0
    a, b = _run_dirs(out)
    for name in ("heads/seed3.safetensors", "config.yaml", "spike_raster.png", "conductance_histogram.png",
                 "retrieval_seen_a_to_b.png", "energy_breakdown.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _metrics(a) == _metrics(b)


def test_debug_works_after_the_command_and_quiet_is_quiet(tmp_path, capsys):
    assert main(["validate", str(QUICKSTART), "--set", "name=../x"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["validate", str(QUICKSTART), "--set", "name=../x", "--debug"]) == 2  # --debug keeps the exit code
    err = capsys.readouterr().err
    assert "Traceback" in err and "plain file name" in err
    out = tmp_path / "runs"
    assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *_sets()]) == 0
    got = capsys.readouterr()
    assert got.err == "" and got.out.strip() == str(_run_dirs(out)[0])  # only the result: its path


def test_export_below_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    run_dir = tmp_path  # the output is checked before the run directory is read
    assert main(["export", str(run_dir), "--format", "bundle", "--out", str(afile / "exp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]
