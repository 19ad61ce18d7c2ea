"""Where neurohw keeps files it makes, and how it writes them so that nobody sees half of one.

- :func:`cache_dir`: the cache of embedded datasets, features and compiled kernels
  (``NEUROHW_CACHE`` overrides the user's cache directory, platformdirs).
- :func:`atomic_path`: a file written under a temporary name and renamed into place.
- :func:`staged_directory`: a folder (a run directory, an export) assembled under a hidden name
  and renamed into place in one step.
- :func:`file_lock`: one writer at a time on a cache entry shared by several processes.
- :func:`check_writable_folder`: fail before any compute when an output cannot be written.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from neurohw.errors import ConfigError


#: the folders neurohw makes inside the cache (see :func:`check_cache_layout`)
CACHE_FOLDERS = ("features", "embedded", "datasets", "host_shim")


def cache_dir(create: bool = True) -> Path:
    """The root cache directory (``NEUROHW_CACHE`` or the user cache folder), created on demand
    (``create``); a folder that cannot be created, or ``NEUROHW_CACHE`` set to an empty string
    (which would silently mean the user's cache), is one ConfigError line."""
    root = os.environ.get("NEUROHW_CACHE")
    if root is not None and not root.strip():
        raise ConfigError("NEUROHW_CACHE is set but empty; unset it (to use the user's cache folder "
                          f"{platformdirs.user_cache_dir('neurohw')}) or set it to a folder")
    path = Path(root).expanduser() if root is not None else Path(platformdirs.user_cache_dir("neurohw"))
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cache folder {path}: cannot be created ({exc.strerror or exc}); set NEUROHW_CACHE to a writable folder") from None
    return path


@contextmanager
def atomic_path(final: Path | str, suffix: str = ""):
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    A killed or failing writer never leaves a half-written ``final``. The temporary name
    ``.<final>.tmp-<pid>-<random><suffix>`` names its process, so leftovers of writers that died
    are removed by the next writer in that folder (:func:`remove_stale_temporaries`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-{os.getpid()}-", suffix=suffix or ".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the final file the usual mode
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


_TEMP_PID = re.compile(r"\.tmp-(\d+)-")


def remove_stale_temporaries(folder: Path | str) -> None:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` whose process is dead."""
    for p in Path(folder).glob(".*.tmp-*"):
        m = _TEMP_PID.search(p.name)
        if m and _dead(int(m.group(1))):
            try:
                p.unlink()
            except OSError:
                pass


@contextmanager
def file_lock(path: Path | str, shared: bool = False):
    """Hold an advisory lock (``flock``) on ``<path>.lock`` while the block runs: exclusive for a
    writer, ``shared`` for readers. A process that dies releases its lock (the kernel does)."""
    import fcntl

    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield lock
    finally:
        os.close(fd)  # closing releases the lock


def check_writable_folder(folder: Path | str, what: str) -> Path:
    """Raise a one-line ConfigError unless files can be created in ``folder`` (or, when it does
    not exist yet, in its nearest existing ancestor, where it would be created). Creates
    nothing: a probe file is made and removed in the folder that exists."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ConfigError(f"{what} {folder}: {probe_in} is a file, not a folder; choose another folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".neurohw-write-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{what} {folder}: cannot create files in {probe_in} ({reason}); choose a writable folder") from None
    return folder


def check_cache_layout(root: Path | str) -> None:
    """Each of :data:`CACHE_FOLDERS` under ``root`` must be a folder (or absent): a file, a
    dangling link or a link to a file in its place is one ConfigError line before any compute."""
    for name in CACHE_FOLDERS:
        path = Path(root) / name
        if path.is_dir() or not (path.exists() or path.is_symlink()):
            continue
        what = "a dangling link" if path.is_symlink() and not path.exists() else "a file"
        raise ConfigError(f"cache folder {root}: {path} is {what} where neurohw keeps a folder; move or remove it "
                          "(or set NEUROHW_CACHE to another folder)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StagedDirectory:
    """A folder assembled under a hidden name beside its destination and published by one
    rename, so that nobody ever sees it half-written (see :func:`staged_directory`)."""

    def __init__(self, final: Path):
        self.requested = Path(final)
        self.final: Path | None = None  # where it was published
        token = os.urandom(4).hex()  # two stagings of one name in one process stay apart
        self.path = self.requested.parent / f".{self.requested.name}.partial-{token}-{os.getpid()}"

    def publish(self, unique: bool = False) -> Path:
        """Rename the folder to ``requested`` (or, with ``unique``, to the first free
        ``requested-1``, ``-2``, ... when that name is taken, also by a concurrent process:
        renaming onto a non-empty folder fails atomically)."""
        os.chmod(self.path, 0o777 & ~_umask())
        k = 0
        while True:
            target = self.requested if k == 0 else self.requested.with_name(f"{self.requested.name}-{k}")
            if not target.exists():
                try:
                    os.rename(self.path, target)
                    self.final = target
                    return target
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            if not unique:
                raise FileExistsError(errno.EEXIST, "already exists", str(target))
            k += 1


@contextmanager
def staged_directory(final: Path | str, unique: bool = False):
    """Yield a :class:`StagedDirectory` (write into its ``path``); on success it is published
    as ``final`` (``unique``: a free variant of that name), on any error removed. Leftover
    staging folders of processes that died are removed first (:func:`remove_stale_partials`)."""
    staged = StagedDirectory(Path(final))
    staged.path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(staged.path.parent)
    staged.path.mkdir()
    try:
        yield staged
        staged.publish(unique)
    finally:
        if staged.path.exists():
            shutil.rmtree(staged.path, ignore_errors=True)


def remove_stale_partials(folder: Path) -> None:
    """Remove ``.<name>.partial-<pid>`` folders in ``folder`` whose process no longer runs."""
    for p in Path(folder).glob(".*.partial-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
        except (ValueError, IndexError):
            continue
        if _dead(pid):
            shutil.rmtree(p, ignore_errors=True)
