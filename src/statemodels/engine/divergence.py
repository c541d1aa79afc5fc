"""Divergence: the one failure a machine reports, readable in plain pytest output.

A :class:`Divergence` is an ``AssertionError`` whose text is a short table -- field, model, real --
followed by the journal of every step of the example so far (command, outcome, milliseconds)::

    Divergence in SupervisorMachine at step 3: KillWorker(interface='eth0')
      field  model                          real
      pid    changed from worker:eth0 = ..  ProcessIdentity(pid=4711, ...)   unchanged
    signature: SupervisorMachine/KillWorker/pid:unchanged
    journal:
        #  command                          outcome                      ms
        1  AddRule(rule=...)                ok rule_id='r1'              1.3
        ...

The **signature** is stable across runs and across shrinking (machine, command type, fields and
reasons; never values), so a user can list divergences already known and keep searching past them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["Divergence", "Journal", "JournalEntry", "Mismatch"]


@attrs.frozen
class Mismatch:
    """One field where model and real system disagree."""

    field: str
    model: str
    real: str
    reason: str


@attrs.frozen
class JournalEntry:
    """One executed step: the command, what came back, and how long the real call took."""

    index: int
    command: str
    outcome: str
    seconds: float
    #: The command object itself (``None`` for a check's label): traces store it as data.
    cmd: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.define
class Journal:
    """The steps of one example, in order. Kept small: the reprs, not the objects."""

    entries: list[JournalEntry] = attrs.field(factory=list)

    def record(self, command: Any, outcome: str, seconds: float) -> None:
        text = command if isinstance(command, str) else repr(command)
        obj = None if isinstance(command, str) else command
        self.entries.append(JournalEntry(len(self.entries) + 1, text, outcome, seconds, obj))

    def __len__(self) -> int:
        return len(self.entries)

    def render(self, width: int = 60) -> str:
        if not self.entries:
            return "    (no steps)"
        rows = [("#", "command", "outcome", "ms")]
        rows += [
            (str(e.index), _clip(e.command, width), _clip(e.outcome, 50), f"{e.seconds * 1e3:.1f}")
            for e in self.entries
        ]
        return _table(rows, indent="    ", right_align_last=True)


class Divergence(AssertionError):
    """Model and real system disagree. Hypothesis shrinks the example that raised it.

    Attributes:
        machine: name of the machine class.
        step: 1-based index of the step that diverged (0 for the initial state).
        command: the command's ``repr`` (or ``"invariant: <name>"`` for a view check).
        kind: the command type name, used in the signature.
        mismatches: the fields that disagreed.
        journal: all steps so far.
    """

    def __init__(
        self,
        *,
        machine: str,
        step: int,
        command: str,
        kind: str,
        mismatches: Sequence[Mismatch],
        journal: Journal,
        note: str = "",
    ) -> None:
        self.machine = machine
        self.step = step
        self.command = command
        self.kind = kind
        self.mismatches = tuple(mismatches)
        self.journal = Journal(list(journal.entries))
        self.note = note
        super().__init__(self.render())

    @property
    def signature(self) -> str:
        """Stable name of this kind of divergence: machine/command-type/field:reason,..."""
        fields = ",".join(sorted(f"{m.field}:{m.reason}" for m in self.mismatches))
        return f"{self.machine}/{self.kind}/{fields}"

    @property
    def steps(self) -> int:
        """How many steps the (shrunk) example ran: the length of the repro."""
        return len(self.journal)

    def render(self) -> str:
        head = f"Divergence in {self.machine} at step {self.step}: {_clip(self.command, 200)}"
        rows = [("field", "model", "real", "")]
        rows += [
            (m.field, _clip(m.model, 50), _clip(m.real, 60), m.reason) for m in self.mismatches
        ]
        parts = [head, _table(rows, indent="  ")]
        if self.note:
            parts.append("  " + self.note)
        parts.append(f"signature: {self.signature}")
        parts.append(f"journal ({len(self.journal)} steps):")
        parts.append(self.journal.render())
        return "\n".join(parts)


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], indent: str = "", right_align_last: bool = False) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if right_align_last and i == len(row) - 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)
