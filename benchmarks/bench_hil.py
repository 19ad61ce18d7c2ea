"""HIL link throughput: MVM frames/s and rows/s over loopback TCP, beside the in-process macro.

Workload: one full tile of the reference macro (taox_rram_40nm: 512 rows x 256 differential
pairs, formed), binary input rows with 5 % of the rows active (seeded), read noise on. Each
contender reads the same frames:
- ``local``: :class:`neurohw.hil.macro.LocalMacro`, the chip emulator in this process (the
  baseline: the same arithmetic with no link);
- ``tcp``: :class:`neurohw.hil.remote.RemoteMacro` to ``neurohw hil serve`` in another process
  over loopback TCP, one frame per round trip;
- ``tcp-pipelined``: the same, ``window`` frames in flight per exchange (``mvm_many``, what the
  reservoir does with the reads of one time step).
at batch sizes 1 and 64 (vectors per frame). ``rows/s`` = input vectors read per second;
``ratio_to_local`` = frames/s over the local macro's at the same batch size.

``--quickstart`` adds the whole quickstart (``neurohw run quickstart``) timed twice in the same
run: locally (the ``cpu`` backend) and with ``backend: hil://...`` against a fresh ``neurohw hil
serve`` over loopback; each from an empty feature cache (the embedded datasets are made once
beforehand and copied, so their generation is timed in neither); the ratio is the hil wall
time over the local one, beside both runs' retrieval numbers.

Run: ``neurohw bench hil [--json] [--quick] [--quickstart]`` or ``python benchmarks/bench_hil.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

WORKLOAD = {"device": "taox_rram_40nm", "rows": 512, "pairs": 256, "density": 0.05, "batches": [1, 64], "window": 32, "seconds": 2.0, "seed": 0}
QUICK = dict(WORKLOAD, seconds=0.2)


def _inputs(w: dict, batch: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(w["seed"])
    return [(rng.random((batch, 1, w["rows"])) < w["density"]).astype(np.uint8) for _ in range(n)]


def _start_server(w: dict, tiles: int = 1) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "neurohw", "hil", "serve", "--device", w["device"], "--port", "0", "--tiles", str(tiles), "--exit-after", "3600"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = proc.stdout.readline()
    m = re.search(r"hil://[\w.]+:\d+", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"the HIL server did not start: {line}{proc.stderr.read()[-2000:]}")
    return proc, m.group(0)


def _time(macro, block, frames: list[np.ndarray], seconds: float, window: int | None) -> tuple[float, int]:
    """(frames per second, frames read) over at least ``seconds``."""
    from neurohw.hil.macro import MvmCall

    done = 0
    t0 = time.perf_counter()
    while True:
        if window is None:
            for x in frames:
                macro.mvm(block, x)
            done += len(frames)
        else:
            for i in range(0, len(frames), window):
                macro.mvm_many([MvmCall(block, x) for x in frames[i : i + window]])
            done += len(frames)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return done / dt, done


def run(quick: bool = False) -> dict:
    """The whole benchmark (see the module doc)."""
    from threadpoolctl import threadpool_limits

    from neurohw.hil.macro import LocalMacro
    from neurohw.hil.messages import Block
    from neurohw.hil.remote import RemoteMacro

    w = dict(QUICK if quick else WORKLOAD)
    block = Block(0, 0, w["rows"], 0, w["pairs"])
    proc, url = _start_server(w)
    results = []
    try:
        with threadpool_limits(1):
            local = LocalMacro(w["device"], tiles=1, chip_seed=w["seed"])
            remote = RemoteMacro(url, chip_seed=w["seed"], window=w["window"])
            for m in (local, remote):
                m.form(block, w["seed"])
            for batch in w["batches"]:
                frames = _inputs(w, batch, 64)
                a = local.mvm(block, frames[0], nonces=np.arange(batch))
                b = remote.mvm(block, frames[0], nonces=np.arange(batch))
                same = bool(np.array_equal(a, b))
                for name, macro, window in (("local", local, None), ("tcp", remote, None), ("tcp-pipelined", remote, w["window"])):
                    fps, n = _time(macro, block, frames, w["seconds"], window)
                    results.append(
                        {
                            "name": name,
                            "batch": batch,
                            "frames_per_s": round(fps, 1),
                            "rows_per_s": round(fps * batch, 1),
                            "frames": n,
                            "same_codes_as_local": same,
                        }
                    )
            remote.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    for r in results:
        base = next(x["frames_per_s"] for x in results if x["name"] == "local" and x["batch"] == r["batch"])
        r["ratio_to_local"] = round(r["frames_per_s"] / base, 3)
    return {"workload": dict(w, url=url, quick=quick), "results": results}


def quickstart(sets: tuple[str, ...] = ()) -> dict:
    """Wall time of the quickstart, local and over hil:// (see the module doc)."""
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="neurohw-bench-hil-"))
    try:
        data_env = dict(os.environ, NEUROHW_CACHE=str(root / "data"))
        subprocess.run([sys.executable, "-c", "import neurohw as nh; [nh.load_dataset(n, 'train', progress=False) "
                        "for n in ('digits-dvs', 'digits-cochlea')]"], env=data_env, check=True)
        out = {}
        for name in ("local", "hil"):
            cache = root / name
            shutil.copytree(root / "data" / "embedded", cache / "embedded")
            env = dict(os.environ, NEUROHW_CACHE=str(cache))
            extra = list(sets)
            proc = None
            if name == "hil":
                proc, url = _start_server({"device": "taox_rram_40nm"}, tiles=8)
                extra.append(f"backend={url}")
            try:
                cmd = [sys.executable, "-m", "neurohw", "run", "quickstart", "--quiet", "--out", str(root / "runs" / name)]
                cmd += sum((["--set", x] for x in extra), [])
                t0 = time.perf_counter()
                res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - t0
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
            if res.returncode != 0:
                raise RuntimeError(f"quickstart ({name}) failed: {res.stderr[-2000:]}")
            metrics = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
            out[name] = {"wall_s": round(wall, 2), "zero_shot": metrics["zero_shot"], "zero_shot_std": metrics["zero_shot_std"]}
        out["ratio_hil_to_local"] = round(out["hil"]["wall_s"] / out["local"]["wall_s"], 3)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def format_table(report: dict) -> str:
    w = report["workload"]
    lines = [
        f"hil: one {w['rows']} x {w['pairs']}-pair tile of {w['device']}, {w['density']:.0%} active rows, read noise on; "
        f"remote = neurohw hil serve over loopback TCP ({w['url']}), pipelined window {w['window']}",
        f"{'name':<16}{'batch':>6}{'frames/s':>11}{'rows/s':>12}{'x local':>9}",
    ]
    for r in report["results"]:
        lines.append(f"{r['name']:<16}{r['batch']:>6}{r['frames_per_s']:>11.1f}{r['rows_per_s']:>12.1f}{r['ratio_to_local']:>9.3f}")
    q = report.get("quickstart")
    if q:
        lines.append(f"quickstart wall time: local {q['local']['wall_s']:.1f} s, over hil:// {q['hil']['wall_s']:.1f} s "
                     f"(ratio {q['ratio_hil_to_local']:.2f}, target <= 3)")
        for name in ("local", "hil"):
            z = q[name]["zero_shot"]
            lines.append(
                f"  {name:<6} seen {z['seen']['a_to_b']:.3f} / {z['seen']['b_to_a']:.3f}, unseen {z['unseen']['a_to_b']:.3f} / {z['unseen']['b_to_a']:.3f}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="HIL link throughput against the in-process macro")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--quickstart", action="store_true", help="also time the quickstart, local and over hil://")
    a = p.parse_args(argv)
    report = run(quick=a.quick)
    if a.quickstart:
        report["quickstart"] = quickstart()
    print(json.dumps(report) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
