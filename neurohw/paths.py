"""Where neurohw keeps files it makes, and how it writes them so that nobody sees half of one.

- :func:`cache_dir`: the cache of embedded datasets, features and compiled kernels
  (``NEUROHW_CACHE`` overrides the user's cache directory, platformdirs).
- :func:`atomic_path`: a file written under a temporary name and renamed into place.
- :func:`staged_directory`: a folder (a run directory, an export) assembled under a hidden name
  and renamed into place in one step.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The root cache directory (created on demand)."""
    root = os.environ.get("NEUROHW_CACHE")
    path = Path(root) if root else Path(platformdirs.user_cache_dir("neurohw"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(final: Path | str, suffix: str = ""):
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    A killed or failing writer never leaves a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or ".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the final file the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            continue
