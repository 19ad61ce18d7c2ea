"""Every code block of docs/python.md runs, in order, in one namespace (as a reader would paste
them), in a scratch folder; the page's own asserts and prints must hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_page_has_the_promised_examples():
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 5
    joined = "\n".join(blocks)
    for needle in ("nh.LSM(", "nh.RidgeClassifier(", ".transform(", "nh.run(", '"task": "zero_shot"'):
        assert needle in joined, needle


@pytest.mark.slow
def test_every_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for k, block in enumerate(python_blocks(PAGE.read_text())):
        try:
            exec(compile(block, f"docs/python.md block {k + 1}", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            raise AssertionError(f"docs/python.md block {k + 1} failed: {type(exc).__name__}: {exc}") from exc
    out = capsys.readouterr().out
    assert "test accuracy" in out and "seen 1-7" in out
    result = namespace["result"]
    assert result.path.is_dir() and result.path.resolve().parent == (tmp_path / "runs").resolve()
    assert (result.path / "metrics.json").is_file()
