"""Histories of concurrent operations: what each client asked, when, and what came back.

A **history** is what a linearizability checker judges. Every operation is recorded by the client
that ran it as an *invocation* (before the request leaves) and one *completion* (after the answer
arrived), each with a timestamp from one monotonic clock shared by all threads::

    recorder = HistoryRecorder()
    token = recorder.invoke(client=1, command=Cas("a", None, 1))
    try:
        outcome = driver.run(token.command)
    except TimeoutError:
        recorder.info(token)            # effect unknown: it may have happened, or not
    else:
        recorder.ok(token, outcome)     # it happened, and this is what it answered
    history = recorder.history()

A completion is one of three kinds, as in Jepsen:

- ``ok``: the operation took effect exactly once, at some instant between invocation and
  completion, and returned ``result``;
- ``fail``: the operation certainly took *no* effect (a serialization failure the server reports
  before anything was written). The checker leaves it out;
- ``info``: nobody knows (a timeout, a lost connection). It may have taken effect at any instant
  after its invocation -- even after the end of the history -- or never, and its result is unknown.
  An invocation that never completes is ``info`` too.

Timestamps are taken *before* the act they date (invoke) and *after* the answer (complete), so
clock noise only ever widens an operation's interval: a correct system is never judged by an
instant it could not have met.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable, Iterator
from typing import Any, Literal

import attrs

__all__ = ["History", "HistoryRecorder", "Operation", "Pending", "Status"]

Status = Literal["ok", "fail", "info"]


@attrs.frozen
class Operation:
    """One operation of a history: who ran it, what, when, and what came back.

    Attributes:
        index: position of the invocation in the history (0-based, unique).
        client: the client (thread, connection, Jepsen process) that ran it.
        command: what was asked (a domain command, or any value a spec understands).
        invoked: monotonic nanoseconds, taken before the request left.
        completed: monotonic nanoseconds after the answer arrived; ``None`` for ``info``.
        status: ``ok``, ``fail`` or ``info`` (see the module docstring).
        result: what came back (``None`` for ``info``).
    """

    index: int
    client: Hashable
    command: Any
    invoked: int
    completed: int | None
    status: Status
    result: Any = None

    @property
    def unknown(self) -> bool:
        """The effect of this operation is unknown (``info``)."""
        return self.status == "info"

    def describe(self) -> str:
        """One line: ``client 2: Cas(key='a', expected=None, new=1) -> ok swapped=True``."""
        if self.status == "info":
            tail = "info (effect unknown)"
        elif self.status == "fail":
            tail = "fail (no effect)"
        else:
            summary = getattr(self.result, "summary", None)
            tail = summary() if callable(summary) else f"ok {self.result!r}"
        return f"client {self.client}: {self.command!r} -> {tail}"


def _operations(ops: Iterable[Operation]) -> tuple[Operation, ...]:
    return tuple(ops)


@attrs.frozen
class History:
    """Operations in order of invocation. Immutable; slicing by time gives new histories."""

    operations: tuple[Operation, ...] = attrs.field(converter=_operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    @property
    def clients(self) -> list[Hashable]:
        """Every client, in order of first invocation."""
        return list(dict.fromkeys(op.client for op in self.operations))

    def truncated(self, at: int) -> History:
        """The history as it looked at time ``at`` (exclusive).

        Operations invoked at or after ``at`` vanish; those completed at or after it become
        ``info``, their effect and result unknown then. Linearizability is prefix-closed under
        this cut: a linearizable history stays linearizable however it is truncated.
        """
        kept = []
        for op in self.operations:
            if op.invoked >= at:
                continue
            if op.completed is not None and op.completed >= at:
                op = attrs.evolve(op, completed=None, status="info", result=None)
            kept.append(op)
        return History(kept)

    @classmethod
    def from_operations(cls, ops: Iterable[Operation]) -> History:
        """Sort by invocation time and renumber ``index`` so it is the position."""
        ordered = sorted(ops, key=lambda op: (op.invoked, op.index))
        return cls(attrs.evolve(op, index=i) for i, op in enumerate(ordered))


@attrs.frozen
class Pending:
    """An invocation awaiting its completion; hand it back to the recorder exactly once."""

    number: int
    client: Hashable
    command: Any
    invoked: int


class HistoryRecorder:
    """Collects invocations and completions from many threads at once (one lock, no I/O).

    ``clock`` is ``time.monotonic_ns`` unless a test needs a logical clock.
    """

    def __init__(self, clock: Any = time.monotonic_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, Pending] = {}
        self._done: list[Operation] = []
        self._count = 0

    def invoke(self, client: Hashable, command: Any) -> Pending:
        """Record that ``client`` is about to send ``command``. Call before the request leaves."""
        with self._lock:
            number = self._count
            self._count += 1
            # The clock is read under the lock, so invocation order and time order agree.
            pending = Pending(number, client, command, self._clock())
            self._pending[number] = pending
            return pending

    def ok(self, pending: Pending, result: Any = None) -> Operation:
        """The operation took effect and answered ``result``. Call after the answer arrived."""
        return self._complete(pending, "ok", result)

    def fail(self, pending: Pending, result: Any = None) -> Operation:
        """The operation certainly took no effect (the system said so)."""
        return self._complete(pending, "fail", result)

    def info(self, pending: Pending) -> Operation:
        """Nobody knows whether the operation took effect (timeout, connection lost)."""
        return self._complete(pending, "info", None)

    def _complete(self, pending: Pending, status: Status, result: Any) -> Operation:
        with self._lock:
            if self._pending.pop(pending.number, None) is None:
                raise ValueError(f"{pending!r} was completed twice: complete each invocation once")
            completed = None if status == "info" else self._clock()
            op = Operation(
                pending.number,
                pending.client,
                pending.command,
                pending.invoked,
                completed,
                status,
                result,
            )
            self._done.append(op)
            return op

    def history(self) -> History:
        """Everything recorded so far; invocations still pending count as ``info``."""
        with self._lock:
            ops = list(self._done)
            ops += [
                Operation(p.number, p.client, p.command, p.invoked, None, "info")
                for p in self._pending.values()
            ]
        return History.from_operations(ops)
