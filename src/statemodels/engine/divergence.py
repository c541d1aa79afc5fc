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
It names the **root cause**: a mismatch inside a composite command (the 2nd op of a ``Txn``) is
attributed to the inner command's type and field, ``PggitMachine/DeleteBranch/error:succeeded``,
the same signature the op has at top level -- not to its position (``Txn/op1.error``).

Each signature has its own exception class (:func:`divergence_class`): Hypothesis tells failures
apart by exception type and origin, so with distinct classes one run reports -- and shrinks --
every distinct divergence it met, not only the first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["Divergence", "Journal", "JournalEntry", "Mismatch", "divergence_class", "signature_of"]


@attrs.frozen
class Mismatch:
    """One field where model and real system disagree.

    ``part`` and ``part_kind`` say where inside a composite command the field belongs (``op1``
    of a ``Txn``, a ``DeleteBranch``); the table shows ``field`` in full (``op1.error``), the
    signature only the inner command type and the field within it (``DeleteBranch/error``).
    """

    field: str
    model: str
    real: str
    reason: str
    part: str = ""
    part_kind: str = ""

    @property
    def key(self) -> str:
        """The field within its part: ``error`` for ``op1.error``."""
        if self.part and self.field.startswith(self.part + "."):
            return self.field[len(self.part) + 1 :]
        return self.field


# A reason is vocabulary, never a value: whatever a custom Expect puts in parentheses or quotes,
# and any number, is dropped from the signature (the table keeps it).
_VALUES = re.compile(r"\s*\([^)]*\)|\s*'[^']*'|\s*\"[^\"]*\"|[-+]?\d+(\.\d+)?")


def _reason_word(reason: str) -> str:
    return " ".join(_VALUES.sub("", reason).split()) or "differs"


def signature_of(machine: str, kind: str, mismatches: Sequence[Mismatch]) -> str:
    """``machine/kind/field:reason,...`` with the root cause's inner command type as ``kind``."""
    inner = [m for m in mismatches if m.part_kind]
    if inner:
        kind = inner[0].part_kind
        mismatches = [m for m in inner if m.part == inner[0].part]
    fields = ",".join(sorted({f"{m.key}:{_reason_word(m.reason)}" for m in mismatches}))
    return f"{machine}/{kind}/{fields}"


def legacy_signature_of(machine: str, kind: str, mismatches: Sequence[Mismatch]) -> str:
    """The position form earlier versions wrote (``Txn/op0.error:...``), to recognise old known
    files."""
    fields = ",".join(sorted(f"{m.field}:{_reason_word(m.reason)}" for m in mismatches))
    return f"{machine}/{kind}/{fields}"


@attrs.frozen
class JournalEntry:
    """One executed step: the command, what came back, and how long the real call took."""

    index: int
    command: str
    outcome: str
    seconds: float
    #: The command object itself (commands are data: traces serialise it); not compared.
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
        """Stable name of this kind of divergence: machine/command-type/field:reason,...

        Never holds a value; a mismatch inside a composite command names the inner command.
        """
        return signature_of(self.machine, self.kind, self.mismatches)

    @property
    def legacy_signature(self) -> str:
        """The position form of older versions (``Txn/op0.error:...``): only for known files."""
        return legacy_signature_of(self.machine, self.kind, self.mismatches)

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


_classes: dict[str, type[Divergence]] = {}


def divergence_class(signature: str) -> type[Divergence]:
    """The exception class of one signature (made once, then reused).

    Hypothesis groups failures by exception type and raising line; every divergence is raised on
    the same engine line, so without a class per signature a run would report only one of them.
    """
    cls = _classes.get(signature)
    if cls is None:
        digest = hashlib.sha1(signature.encode()).hexdigest()[:10]
        name = f"Divergence_{digest}"
        cls = type(name, (Divergence,), {"__module__": __name__, "__qualname__": name})
        cls.__doc__ = f"A divergence with signature {signature!r}."
        _classes[signature] = cls
        globals()[name] = cls  # importable by name: picklable, and readable in tracebacks
    return cls


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
