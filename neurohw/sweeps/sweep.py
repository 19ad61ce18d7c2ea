"""A whole sweep: check everything, then run the points that have no finished record on an
executor, record each as it finishes, and write the table and the plots.

The sweep folder (``--out``, default ``<output>/<name>``) holds ``sweep.json`` (the resolved
sweep: base experiment, axes, seeds, every point's values), ``points/`` (one record per point
and seed, :mod:`.records`), ``runs/`` (each point's run directory), ``results.csv``
(:mod:`.table`) and the plots (:mod:`.plots`). Running the same sweep into the same folder
again resumes it: only points without a finished record run. Progress on stderr shows the
points done, running and failed; a failed point is recorded with its one-line error and the
others go on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from neurohw.paths import atomic_path
from neurohw.progress import Progress, note, warn
from neurohw.sweeps.point import PointTask, one_line, run_point
from neurohw.sweeps.plots import plot_sweep
from neurohw.sweeps.records import RecordStore, config_key, hold_folder
from neurohw.sweeps.spec import Sweep
from neurohw.sweeps.table import write_csv

#: in a long sweep, the table is rewritten at most this often (seconds) while points finish
TABLE_EVERY_S = 10.0


@dataclass(frozen=True)
class SweepResult:
    """A finished (or partly failed) sweep: its folder, table, plots and counts."""

    folder: Path
    table: Path
    plots: list[Path]
    ok: int
    failed: int
    skipped: int  # finished in an earlier session


def sweep_folder(sweep: Sweep, out: str | Path | None) -> Path:
    """``--out`` as given, else ``<output>/<name>``."""
    return Path(out) if out is not None else Path(sweep.output) / sweep.name


def run_sweep(sweep: Sweep, executor, folder: Path, progress: bool = True) -> SweepResult:
    """Run ``sweep`` on ``executor`` into ``folder`` (see the module doc). The folder is held by
    this session (:func:`.records.hold_folder`): a second session into it is refused before
    any point runs."""
    with hold_folder(folder, "sweep", sweep.name):
        return _run_held(sweep, executor, Path(folder), progress)


def _run_held(sweep: Sweep, executor, folder: Path, progress: bool) -> SweepResult:
    store = RecordStore(folder)
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "sweep.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(sweep.describe(), indent=1))
    tasks, meta, records = [], {}, {}
    for p in sweep.points:
        for seed in sweep.seeds:
            tid = sweep.task_id(p.index, seed)
            raw = sweep.point_raw(p, seed)
            key = config_key(raw)
            meta[tid] = {"task": tid, "point": p.index, "seed": seed, "values": p.values, "key": key}
            done = store.finished(tid, meta[tid])
            if done is not None:
                records[tid] = done
            else:
                tasks.append(PointTask(tid, raw, str(runs), sweep.threads))
    skipped = len(records)
    total = len(meta)
    note(f"[bold]sweep {sweep.name}[/bold]: {len(sweep.points)} point{'s' if len(sweep.points) != 1 else ''} x "
         f"{len(sweep.seeds)} seed{'s' if len(sweep.seeds) != 1 else ''} on {executor.describe()}"
         + (f"; {skipped} already done in {folder}" if skipped else f" -> {folder}"), progress)
    failed = 0
    last_table = time.monotonic()
    with Progress(f"sweep {sweep.name}", total=total, completed=skipped, enabled=progress) as bar:
        bar.update(info=f"{min(executor.capacity, len(tasks))} running, 0 failed")
        for n, (task, result) in enumerate(executor.run(run_point, tasks), start=1):
            if isinstance(result, BaseException):
                result = {"status": "failed", "metrics": {}, "error": one_line(result), "run_dir": None, "wall_s": 0.0}
            record = {**meta[task.task], **result}
            store.write(task.task, record)
            records[task.task] = record
            if record["status"] != "ok":
                failed += 1
                warn(f"sweep {sweep.name}: point {task.task} failed: {record['error']}")
            running = min(executor.capacity, len(tasks) - n)
            bar.update(advance=1, info=f"{running} running, {failed} failed")
            if time.monotonic() - last_table > TABLE_EVERY_S:
                _table(sweep, folder, meta, records)
                last_table = time.monotonic()
    table = _table(sweep, folder, meta, records)
    rows = [records[t] for t in meta if t in records]
    plots = plot_sweep(folder, rows, sweep.axes, sweep.metrics, sweep.name)
    ok = sum(1 for r in rows if r["status"] == "ok")
    note(f"sweep {sweep.name}: {ok} of {total} points ok, {total - ok} failed; table {table}, {len(plots)} plot(s)", progress)
    return SweepResult(folder, table, plots, ok, total - ok, skipped)


def _table(sweep: Sweep, folder: Path, meta: dict, records: dict) -> Path:
    rows = [records[t] if t in records else {**meta[t], "status": "missing", "error": None, "metrics": {}} for t in meta]
    return write_csv(folder / "results.csv", rows, sweep.axes, sweep.metrics)
