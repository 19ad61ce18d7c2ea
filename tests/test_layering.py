"""The layering rule and the lint, run as tests so a violation fails CI (docs/internals.md, "Layers").

`lint-imports` checks the import-linter contracts of pyproject.toml ([tool.importlinter]: each
package imports only from the floors below it); `ruff check` the lint of [tool.ruff]. Each check
is also run once on a copy of the sources with one deliberate violation, so a passing check is
known to be able to fail. Skipped only where the tool is not installed (`pip install -e .[test]`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    """The tool's executable: on PATH, or beside this interpreter (a virtual environment not activated)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the [test] extra: pip install -e .[test])")
    return found


def _run(args: list[str], cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _copy(tmp_path: Path) -> Path:
    """The package's sources and pyproject.toml, copied: the deliberate violation goes there."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "neurohw", root / "neurohw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_floors():
    done = _run([_tool("lint-imports"), "--no-cache"], REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_import_that_runs_back_up_breaks_the_contract(tmp_path):
    lint_imports = _tool("lint-imports")
    root = _copy(tmp_path)
    errors = root / "neurohw" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport neurohw.crossbar  # the ground floor reaching up\n")
    done = _run([lint_imports, "--no-cache"], root, pythonpath=root)
    assert done.returncode != 0
    assert "neurohw.errors is not allowed to import neurohw.crossbar" in done.stdout


def test_ruff_passes():
    done = _run([_tool("ruff"), "check", "--no-cache", "."], REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_an_unused_import(tmp_path):
    ruff = _tool("ruff")
    root = _copy(tmp_path)
    (root / "neurohw" / "unused.py").write_text("import os\n")
    done = _run([ruff, "check", "--no-cache", "--output-format", "concise", "."], root)
    assert done.returncode != 0
    assert "neurohw/unused.py:1:8: F401" in done.stdout
