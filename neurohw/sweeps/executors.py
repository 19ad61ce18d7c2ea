"""Where the points of a sweep (and the trials of a search) run. Executors only schedule: every
point is :func:`neurohw.sweeps.point.run_point`, whatever runs it, so the same seeds give the
same numbers on any executor and any number of workers (each point uses the same number of
threads, ``threads``, everywhere).

- :class:`LocalExecutor`: a pool of ``workers`` processes on this machine (started by ``spawn``,
  each limited to ``threads`` threads, so ``workers * threads`` should not exceed the cores; each
  dies with the process that started it (Linux ``PR_SET_PDEATHSIG``), so a killed sweep leaves
  no workers behind).
- :class:`RayExecutor`: Ray, an existing distributed engine (``pip install 'neurohw[ray]'``).
  ``address=None`` starts a local Ray instance bound to 127.0.0.1 and stops it at the end;
  ``"auto"`` joins the cluster running on this machine; ``HOST:PORT`` (or ``ray://HOST:PORT``)
  joins a remote one, checked first with a plain TCP connection so that an unreachable address
  is one line before anything runs. On a cluster of several machines, each point's run
  directory and feature cache stay on the machine that ran it; the sweep's table and plots are
  written where the sweep was started.

Both hand out at most ``capacity`` points at a time and yield each as it finishes:
``run(fn, items)`` -> ``(item, result)`` pairs, ``result`` being ``fn(item)`` or, when the
worker itself died (killed, out of memory), an exception.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from neurohw.errors import ConfigError
from neurohw.progress import warn
from neurohw.sweeps.point import THREAD_VARIABLES


def machine_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(threads: int) -> None:
    """Runs first in every local worker: die with the sweep, and size the thread pools before
    numpy, torch or numba are imported."""
    _die_with_parent()
    # inside: sweeps.point imports numpy, and the thread variables must be set before numpy loads

    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)


class WorkerDied(RuntimeError):
    """The process running a point died (killed, or out of memory) before it reported."""


class LocalExecutor:
    """A pool of worker processes on this machine (see the module doc)."""

    kind = "local"

    def __init__(self, workers: int | None = None, threads: int = 1):
        cores = machine_cores()
        self.threads = int(threads)
        self.workers = int(workers) if workers else max(1, cores // self.threads)
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        if self.workers * self.threads > cores:
            warn(f"{self.workers} workers x {self.threads} thread(s) on {cores} cores: they will slow each other down "
                 f"(--workers {max(1, cores // self.threads)} fits)")
        self._pool = None

    @property
    def capacity(self) -> int:
        return self.workers

    def describe(self) -> str:
        return f"{self.workers} local worker{'s' if self.workers > 1 else ''} x {self.threads} thread{'s' if self.threads > 1 else ''}"

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.threads,))

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queue = list(items)
        queue.reverse()
        running: dict = {}
        while queue or running:
            if self._pool is None:
                self._start()
            while queue and len(running) < self.capacity:
                item = queue.pop()
                running[self._pool.submit(fn, item)] = item
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                item = running.pop(fut)
                try:
                    yield item, fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield item, WorkerDied("the worker process died (killed, or out of memory) while this point ran; run again to retry")
            if broken:  # every point in the broken pool is reported; the rest go to a fresh pool
                for fut, item in list(running.items()):
                    running.pop(fut)
                    yield item, WorkerDied("the worker process died (killed, or out of memory) while this point ran; run again to retry")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self, wait: bool = True) -> None:
        """Stop the workers (``wait``: let running points finish; an interrupted sweep does not)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(wait=exc[0] is None)
        return False


def check_address(address: str) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) must accept a TCP connection within a few
    seconds; otherwise one line, before anything runs."""
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({reason}); start one with "
                          "'ray start --head' or check the host and port") from None


class RayExecutor:
    """Points as Ray tasks of ``threads`` CPUs each (see the module doc)."""

    kind = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1):
        self.address, self.threads = address, int(threads)
        if address is None:  # a local instance: every Ray service on the loopback address only
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'neurohw[ray]'") from None
        self._ray = ray
        self._started = False
        ours = not ray.is_initialized()  # a Ray the caller connected already is left as it is
        n_cpus = (workers or max(1, machine_cores() // self.threads)) * self.threads if address is None else None
        try:
            ray.init(address=address, num_cpus=n_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", ignore_reinit_error=True)
        except Exception as exc:  # catch-all on purpose: any failure to join is the user's address
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = "this machine (--address auto)" if address == "auto" else (address or "a local instance")
            raise ConfigError(f"--executor ray: cannot start or join Ray on {where}: {first}") from None
        self._started = ours
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = int(workers) if workers else max(1, cpus // self.threads)

    @property
    def capacity(self) -> int:
        return self.workers

    def describe(self) -> str:
        where = "local Ray" if self.address is None else f"Ray at {self.address}"
        return f"{where}, {self.workers} task{'s' if self.workers > 1 else ''} at a time x {self.threads} thread{'s' if self.threads > 1 else ''}"

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        ray = self._ray
        remote = ray.remote(num_cpus=self.threads, max_retries=0)(fn)
        queue = list(items)
        queue.reverse()
        running: dict = {}
        while queue or running:
            while queue and len(running) < self.capacity:
                item = queue.pop()
                running[remote.remote(item)] = item
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                item = running.pop(ref)
                try:
                    yield item, ray.get(ref)
                except Exception as exc:  # catch-all on purpose: the worker died; the point is recorded as failed
                    yield item, WorkerDied(f"the Ray worker failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def check_executor(kind: str, workers: int | None = None, address: str | None = None) -> None:
    """The executor's arguments, checked in a moment (a remote address by a TCP connection),
    before anything slower: a bad combination is one line."""
    if kind not in ("local", "ray"):
        raise ConfigError(f"--executor {kind!r}: one of local, ray")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if kind == "local" and address is not None:
        raise ConfigError("--address applies to --executor ray only")
    if kind == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError("--executor ray needs Ray: pip install 'neurohw[ray]'")
        if address not in (None, "auto"):
            check_address(address)


def make_executor(kind: str, workers: int | None = None, address: str | None = None, threads: int = 1):
    """The executor named ``kind`` (``local`` or ``ray``), its arguments checked first."""
    check_executor(kind, workers, address)
    if kind == "local":
        return LocalExecutor(workers, threads)
    return RayExecutor(address, workers, threads)


__all__ = ["LocalExecutor", "RayExecutor", "WorkerDied", "check_executor", "make_executor", "machine_cores", "check_address"]
