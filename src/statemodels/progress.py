"""Live progress: what a long run is doing while it runs.

On a terminal, one line per running machine, redrawn in place at most every ``tty_every``
seconds (colours by ``rich``)::

    RelayMachine  2:14 / 20:00  examples 1432  steps 11890  88.6 steps/s  divergences 0  known 1

Anywhere else (a CI log) the same text as a plain line every ``plain_every`` seconds, so a
twenty-minute deep search shows it is alive without flooding the log. Off with
``--statemodels-progress off``.

Driven by :mod:`statemodels.engine.hooks` from the thread that runs the machine (no thread of
its own: nothing to stop, nothing drawing while pytest writes); a step that hangs shows as a
line that stops moving, then as the timeout divergence.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from .engine.budgets import Budget

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Run:
    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.machine = "?"
        self.examples = 0
        self.steps = 0
        self.divergences = 0
        self.known = 0


class Progress:
    """A hooks listener that reports progress through ``write(text, final)``.

    Args:
        write: called with the line; ``redraw`` True means "replace the current line" (tty).
        tty: redraw one line in place (a terminal) instead of printing plain lines.
        plain_every: seconds between plain lines.
        tty_every: seconds between redraws on a terminal.
        clock: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        write: Callable[[str, bool], None],
        *,
        tty: bool,
        plain_every: float = 30.0,
        tty_every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.tty = tty
        self.every = tty_every if tty else plain_every
        self._clock = clock
        self._run: _Run | None = None
        self._last = clock()
        self._shown = False
        self.lines = 0

    # -- hooks --------------------------------------------------------------------------------

    def run_started(self, budget: Budget) -> None:
        self._run = _Run(budget)
        self._run.started = self._clock()
        self._last = self._run.started

    def example_started(self, machine: Any) -> None:
        run = self._current()
        run.machine = machine.name
        run.examples += 1
        self._maybe_show()

    def step_done(self, machine: Any, command: Any, seconds: float) -> None:
        self._current().steps += 1
        self._maybe_show()

    def divergence_seen(self, machine: Any, divergence: Any, known: bool) -> None:
        if known:
            self._current().known += 1

    def divergence_reported(self, divergence: Any, seed: int | None) -> None:
        self._current().divergences += 1

    # -- drawing ------------------------------------------------------------------------------

    def _current(self) -> _Run:
        if self._run is None:
            self._run = _Run(None)
            self._run.started = self._clock()
        return self._run

    def _maybe_show(self) -> None:
        now = self._clock()
        if now - self._last < self.every:
            return
        self._last = now
        self.show(now)

    def line(self, now: float | None = None) -> str:
        run = self._current()
        now = self._clock() if now is None else now
        elapsed = max(now - run.started, 1e-9)
        box = run.budget.minutes if run.budget is not None else None
        when = _clock(elapsed) + (f" / {_clock(box * 60)}" if box else "")
        return (
            f"{run.machine}  {when}  examples {run.examples}  steps {run.steps}  "
            f"{run.steps / elapsed:.1f} steps/s  divergences {run.divergences}  known {run.known}"
        )

    def show(self, now: float | None = None) -> None:
        text = self.line(now)
        self.lines += 1
        if self.tty:
            self._shown = True
            self._write(_colour(text), True)
        else:
            self._write(f"statemodels: {text}", False)

    def clear(self) -> None:
        """Remove the in-place line (the test is over: pytest writes its result next)."""
        if self.tty and self._shown:
            self._shown = False
            self._write("", True)
        self._run = None


def _colour(text: str) -> str:
    """The line with colours (rich), as terminal escape codes."""
    try:
        from rich.console import Console
        from rich.text import Text
    except ImportError:  # rich is a dependency; a stripped install still gets the text
        return text
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=10_000)
    styled = Text(text)
    styled.highlight_regex(r"^\S+", "bold cyan")
    styled.highlight_regex(r"divergences [1-9]\d*", "bold red")
    styled.highlight_regex(r"known [1-9]\d*", "yellow")
    console.print(styled, end="")
    return buffer.getvalue()
