"""Expectations only a pgGit model needs: Trinity IDs and branch heads.

The model never knows a real Trinity ID; it knows the relations one must satisfy. These
:class:`~statemodels.engine.Expect` subclasses check them against the engine's bindings:

- :class:`TrinityId` -- one ID: exact format, never seen before in the run (pool ``trinity``),
  sequence field above the last one this session produced; binds a ``commit:<n>`` slot.
- :class:`TrinityIds` -- a tuple of them (some positions may be expected to have failed).
- :class:`CustomId` -- a custom ID comes back exactly as sent.
- :class:`Heads` -- ``{branch: head hash}`` equals the commits bound to the model's slots.

Example::

    Step(model, {"trinity_id": TrinityId(slot="commit:3", session="main")})
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

import attrs

from ..engine import Bindings, Expect

__all__ = [
    "NO_ID",
    "NO_SLOT",
    "POOL",
    "TRINITY_RE",
    "Chain",
    "CustomId",
    "Heads",
    "Rows",
    "TrinityId",
    "TrinityIds",
]

#: The contract's format: 20-digit UTC timestamp, 6-digit sequence, 8 lowercase hex digits.
TRINITY_RE = re.compile(r"[0-9]{20}-[0-9]{6}-[0-9a-f]{8}")
#: The pool of every Trinity ID the run has seen (generated ones only; custom ones are chosen).
POOL = "trinity"
#: In :class:`TrinityIds`: a position that must hold an ID, bound to no slot.
NO_SLOT = ""
#: In :class:`TrinityIds`: a position whose call must have failed (value ``None``).
NO_ID = "-"


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _slot_pairs(value: Iterable[tuple[str, str | None]]) -> tuple[tuple[str, str | None], ...]:
    return tuple(value)


def _seq(trinity: str) -> int:
    return int(trinity[21:27])


def _session_slot(session: str) -> str:
    return f"trinity-seq:{session}"


def _check_ids(ids: list[str], session: str | None, bindings: Bindings) -> str | None:
    seen = bindings.seen.get(POOL, set())
    for tid in ids:
        if not isinstance(tid, str) or not TRINITY_RE.fullmatch(tid):
            return "malformed"
        if tid in seen:
            return "repeated"
    if len(set(ids)) != len(ids):
        return "repeated"
    if session is not None and ids:
        last = bindings.slots.get(_session_slot(session))
        seqs = [_seq(t) for t in ids]
        if last is not None:
            seqs.insert(0, last)
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            return "sequence not increasing"
    return None


def _bind_ids(ids: list[str], session: str | None, bindings: Bindings) -> None:
    bindings.seen.setdefault(POOL, set()).update(ids)
    if session is not None and ids:
        bindings.slots[_session_slot(session)] = _seq(ids[-1])


@attrs.frozen
class TrinityId(Expect):
    """A fresh, well-formed Trinity ID, bound to ``slot``; ``session`` checks the sequence."""

    slot: str | None = None
    session: str | None = None

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return _check_ids([real], self.session, bindings)

    def bind(self, real: Any, bindings: Bindings) -> None:
        _bind_ids([real], self.session, bindings)
        if self.slot:
            bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        where = f", session {self.session}" if self.session else ""
        return f"fresh trinity id{where}" + (f" -> {self.slot}" if self.slot else "")


@attrs.frozen
class TrinityIds(Expect):
    """A tuple of Trinity IDs: each position a slot, :data:`NO_SLOT` or :data:`NO_ID`."""

    slots: tuple[str, ...] = attrs.field(converter=_str_tuple)
    session: str | None = None

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if not isinstance(real, tuple | list) or len(real) != len(self.slots):
            return "wrong count"
        for slot, value in zip(self.slots, real, strict=True):
            if (slot == NO_ID) != (value is None):
                return "failed" if value is None else "succeeded"
        return _check_ids(self._ids(real), self.session, bindings)

    def bind(self, real: Any, bindings: Bindings) -> None:
        _bind_ids(self._ids(real), self.session, bindings)
        for slot, value in zip(self.slots, real, strict=True):
            if slot not in (NO_SLOT, NO_ID):
                bindings.slots[slot] = value

    def _ids(self, real: Any) -> list[str]:
        return [v for s, v in zip(self.slots, real, strict=True) if s != NO_ID]

    def describe(self, bindings: Bindings) -> str:
        return f"fresh trinity ids {list(self.slots)!r}"


@attrs.frozen
class CustomId(Expect):
    """A custom Trinity ID: returned exactly as given, then bound to ``slot``."""

    value: str
    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None if real == self.value else "differs"

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"{self.value!r} -> {self.slot}"


@attrs.frozen
class Heads(Expect):
    """``{branch name: head hash or None}`` equals the model's heads, read through the slots."""

    slots: tuple[tuple[str, str | None], ...] = attrs.field(converter=_slot_pairs)

    def _wanted(self, bindings: Bindings) -> dict[str, Any]:
        return {name: (bindings.get(s) if s else None) for name, s in self.slots}

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None if real == self._wanted(bindings) else "differs"

    def describe(self, bindings: Bindings) -> str:
        return repr({name: s for name, s in self.slots})


@attrs.frozen
class Rows(Expect):
    """Rows ``(status, head hash)`` equal to the model's, each head read through its slot."""

    rows: tuple[tuple[str, str | None], ...] = attrs.field(converter=_slot_pairs)

    def _wanted(self, bindings: Bindings) -> tuple[tuple[str, Any], ...]:
        return tuple((status, bindings.get(s) if s else None) for status, s in self.rows)

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None if tuple(map(tuple, real)) == self._wanted(bindings) else "differs"

    def describe(self, bindings: Bindings) -> str:
        return repr(list(self.rows))


@attrs.frozen
class Chain(Expect):
    """Trinity IDs from a head back to the first commit, each read through its slot."""

    slots: tuple[str, ...] = attrs.field(converter=_str_tuple)

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None if tuple(real) == tuple(bindings.get(s) for s in self.slots) else "differs"

    def describe(self, bindings: Bindings) -> str:
        return " <- ".join(self.slots) or "no commits"
