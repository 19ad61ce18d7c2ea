"""Progress of long work, on stderr: a live bar on a terminal, a few plain lines elsewhere.

On a terminal (rich decides: a TTY, or FORCE_COLOR / TTY_COMPATIBLE set) a :class:`Progress`
is a rich bar that disappears when the job ends. In a log file or CI it writes plain lines
only: at each quarter reached at least :data:`QUIET_S` seconds after the previous line (or
the start), and one line when it ends, so a log stays short and readable. ``enabled=False``
writes nothing (``--quiet``). :func:`note` writes one line (a stage, a result) under the same
rules; :func:`warn` writes a warning line whatever the settings.
"""

from __future__ import annotations

import time

#: in a non-terminal, the least time between two progress lines of one job, seconds
QUIET_S = 5.0


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def note(message: str, enabled: bool = True) -> None:
    """One line on stderr (rich markup such as ``[bold]`` is rendered on a terminal, dropped
    elsewhere)."""
    if not enabled:
        return
    console = _console()
    if console.is_terminal:
        console.print(message)
    else:
        from rich.text import Text

        console.print(Text.from_markup(message).plain)


def warn(message: str) -> None:
    """A one-line warning on stderr, shown even with ``--quiet`` (something was wrong and was
    handled, e.g. a damaged cache block encoded again)."""
    import sys

    print(f"neurohw: warning: {message}", file=sys.stderr, flush=True)


class Progress:
    """Progress of one counted job (see the module doc); a context manager.

    ``update(advance=n)`` or ``update(completed=n)``; ``total`` may be set late (None: unknown);
    ``info`` is a short status shown beside the bar (e.g. the loss) and in plain lines.
    """

    def __init__(self, description: str, total: int | None = None, enabled: bool = True, completed: int = 0):
        self.description, self.total, self.completed, self.enabled = description, total, int(completed), enabled
        self.info = ""
        self._bar = None
        self._task = None
        self._t0 = time.perf_counter()
        self._last_line = float("-inf")
        self._last_quarter = -1

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        console = _console()
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.completed, info="")
        else:
            self._last_line = self._t0
        return self

    def update(self, advance: int = 0, completed: int | None = None, total: int | None = None,
               description: str | None = None, info: str | None = None) -> None:
        self.completed = int(completed) if completed is not None else self.completed + int(advance)
        if total is not None:
            self.total = int(total)
        if description is not None:
            self.description = description
        if info is not None:
            self.info = info
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, description=self.description, info=self.info)
        else:
            self._line()

    def __exit__(self, *exc) -> bool:
        if not self.enabled:
            return False
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif exc[0] is None:
            elapsed = time.perf_counter() - self._t0
            done = f"{self.completed}/{self.total}" if self.total else f"{self.completed}"
            note(f"{self.description}: {done} done in {elapsed:.1f} s" + (f" ({self.info})" if self.info else ""))
        return False

    def _line(self) -> None:
        """A plain line when a new quarter is reached and the last line (or the start) is
        QUIET_S old: a short job writes only its final line."""
        now = time.perf_counter()
        quarter = int(4 * self.completed / self.total) if self.total else 0
        if quarter <= self._last_quarter or now - self._last_line < QUIET_S:
            return
        self._last_quarter, self._last_line = quarter, now
        shown = f"{self.completed}/{self.total}" if self.total else f"{self.completed}"
        note(f"{self.description}: {shown}" + (f" ({self.info})" if self.info else ""))
