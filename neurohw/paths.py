"""Where neurohw keeps files it makes: the cache of embedded datasets and features.

``NEUROHW_CACHE`` overrides the user's cache directory (platformdirs).
"""

from __future__ import annotations

import os
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
