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

Run: ``neurohw bench hil [--json] [--quick]`` or ``python benchmarks/bench_hil.py``.
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


def _start_server(w: dict) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "neurohw", "hil", "serve", "--device", w["device"], "--port", "0", "--tiles", "1", "--exit-after", "600"]
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
                    results.append({"name": name, "batch": batch, "frames_per_s": round(fps, 1), "rows_per_s": round(fps * batch, 1), "frames": n, "same_codes_as_local": same})
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


def format_table(report: dict) -> str:
    w = report["workload"]
    lines = [
        f"hil: one {w['rows']} x {w['pairs']}-pair tile of {w['device']}, {w['density']:.0%} active rows, read noise on; "
        f"remote = neurohw hil serve over loopback TCP ({w['url']}), pipelined window {w['window']}",
        f"{'name':<16}{'batch':>6}{'frames/s':>11}{'rows/s':>12}{'x local':>9}",
    ]
    for r in report["results"]:
        lines.append(f"{r['name']:<16}{r['batch']:>6}{r['frames_per_s']:>11.1f}{r['rows_per_s']:>12.1f}{r['ratio_to_local']:>9.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="HIL link throughput against the in-process macro")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    report = run(quick=a.quick)
    print(json.dumps(report) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
