"""Judging what each socket received against what the model says it is owed.

The real value is ``{sock: (frames, close_code[, starved])}``: ``frames`` is every non-ping
frame in order, as ``("status", data)``, ``("hangup", "")`` or ``("other", raw)``;
``close_code`` is ``None`` while the socket is open; ``starved`` (optional) says our own client
loop stalled so long before a hangup that the cut was the service's right (the driver's
``starved``): such a socket may end there. The model's value is
``{sock: (entries, close_code)}``, where an :class:`Entry` may be optional (published inside
an outage or resubscribe window: pub/sub may lose it there, and only there).

Two expectations share that value, so that :meth:`ModelMachine.check_eventually` can tell what
waiting may fix from what it cannot:

- :class:`Sound` -- nothing wrong has arrived: no lost, reordered, duplicated, mutated,
  cross-channel or unknown frame, no close that was not owed. Final: cannot come right.
- :class:`Complete` -- everything owed has arrived (required entries, the close code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..engine import Bindings, Expect

__all__ = ["Complete", "Entry", "Sound", "judge"]


@attrs.frozen
class Entry:
    """One frame a socket is owed: ``("status", data)`` or ``("hangup", "")``."""

    kind: str
    data: str = ""
    required: bool = True

    @property
    def frame(self) -> tuple[str, str]:
        return (self.kind, self.data)


Frames = Sequence[tuple[str, str]]


def judge(
    entries: Sequence[Entry],
    close: int | None,
    frames: Frames,
    real_close: int | None,
    foreign: frozenset[str] = frozenset(),
) -> tuple[str | None, str | None]:
    """Return ``(bad, pending)`` for one socket: the reason something wrong arrived (or None)
    and the reason something owed has not arrived yet (or None). Reasons carry no values.

    Frames are matched in order; an optional entry may be skipped, a required one may not.
    ``foreign`` holds payloads published to other channels (to name cross-channel delivery).
    """
    # Which entry positions can we be at after the frames so far? (An optional entry may be
    # skipped, so one frame can match several entries: "gap" then "gap" again is ambiguous.)
    positions = {0}
    for n, frame in enumerate(frames):
        after = {j + 1 for i in positions for j in _matches(entries, i, frame)}
        if not after:
            return _why_unmatched(entries, min(positions), frame, frames[n + 1 :], foreign), None
        positions = after
    if close is None and real_close is not None:
        return "unexpected-close", None
    if close is not None and real_close is not None and real_close != close:
        return "close-code", None
    if all(any(e.required for e in entries[i:]) for i in positions):
        return None, "missing-frames"
    if close is not None and real_close is None:
        return None, "not-closed"
    return None, None


def _matches(entries: Sequence[Entry], start: int, frame: tuple[str, str]) -> list[int]:
    """Entries from ``start`` that ``frame`` can be, skipping only optional ones."""
    out = []
    for j in range(start, len(entries)):
        if entries[j].frame == frame:
            out.append(j)
        if entries[j].required:
            break
    return out


def _why_unmatched(
    entries: Sequence[Entry],
    i: int,
    frame: tuple[str, str],
    later: Frames,
    foreign: frozenset[str],
) -> str:
    kind, data = frame
    if kind == "hangup":
        return "unexpected-hangup"
    if kind != "status":
        return "unknown-frame"
    if any(e.frame == frame for e in entries[:i]):
        return "duplicated"
    if any(e.frame == frame for e in entries[i:]):
        skipped = next(e for e in entries[i:] if e.required)
        return "reordered" if skipped.frame in later else "lost"
    if data in foreign:
        return "cross-channel"
    return "mutated"


def _starved_cut(
    entries: Sequence[Entry], frames: Frames, real_close: int | None, foreign: frozenset[str]
) -> tuple[None, None] | None:
    """``(None, None)`` if a cut we starved (the driver's third field) explains the frames:
    they end in hangup + 1000, and everything before the hangup is sound. What was owed after
    the cut is lost with the socket, so every entry becomes optional."""
    if real_close != 1000 or not frames or frames[-1] != ("hangup", ""):
        return None
    optional = [attrs.evolve(e, required=False) for e in entries]
    bad, _ = judge(optional, None, frames[:-1], None, foreign)
    return (None, None) if bad is None else None


Owed = Mapping[int, tuple[tuple[Entry, ...], int | None]]
Seen = Mapping[int, tuple[Frames, int | None]]


@attrs.frozen
class _Streams(Expect):
    owed: Owed
    foreign: Mapping[int, frozenset[str]] = attrs.field(factory=dict)

    def _results(self, real: Any) -> list[tuple[str | None, str | None]]:
        if not isinstance(real, Mapping):
            return [("not-a-mapping", None)]
        out: list[tuple[str | None, str | None]] = []
        for sock, (entries, close) in sorted(self.owed.items()):
            if sock not in real:
                out.append(("socket-missing", None))
                continue
            frames, real_close, *rest = real[sock]
            foreign = self.foreign.get(sock, frozenset())
            result = judge(entries, close, frames, real_close, foreign)
            if result != (None, None) and rest and rest[0]:
                result = _starved_cut(entries, frames, real_close, foreign) or result
            out.append(result)
        return out

    def describe(self, bindings: Bindings) -> str:
        parts = []
        for sock, (entries, close) in sorted(self.owed.items()):
            need = sum(e.required for e in entries)
            parts.append(f"s{sock}: {need}+{len(entries) - need}? close={close}")
        return "; ".join(parts) or "no sockets"


@attrs.frozen
class Sound(_Streams):
    """Nothing wrong arrived on any socket (see :func:`judge`)."""

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return next((bad for bad, _ in self._results(real) if bad), None)


@attrs.frozen
class Complete(_Streams):
    """Everything owed arrived on every socket (see :func:`judge`)."""

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return next((pending for _, pending in self._results(real) if pending), None)
