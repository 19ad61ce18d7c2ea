"""docs/export.md's minimal reproductions of the snnTorch and Norse importer bugs run as
written and still show what the page says (when an upstream fix lands, this fails: update the
page and the workarounds)."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "export.md"


def _block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (code,) = [b for b in blocks if b.startswith(f"# reproduction: {marker}")]
    return code


def _run(code: str) -> list[str]:
    out = io.StringIO()
    logging.disable(logging.WARNING)  # Norse warns about r; its warning is the bug, not the output
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), {"__name__": "__doc__"})
    finally:
        logging.disable(logging.NOTSET)
    return out.getvalue().splitlines()


def test_snntorch_reproduction_as_documented():
    pytest.importorskip("snntorch")
    printed = [line for line in _run(_block("snntorch")) if line.startswith("[")]  # snnTorch prints notes too
    assert printed == ["[0, 0]", "[1, 0]"]  # the bug, then the workaround


def test_norse_reproduction_as_documented():
    pytest.importorskip("norse")
    assert _run(_block("norse"))[-1:] == ["0"]
