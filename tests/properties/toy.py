"""An in-process toy system for testing the engine itself (not a stand-in for a real system).

The engine's own properties -- shrinking, timeouts, known divergences -- are checked against this
deliberately tiny "real" side, so they run in milliseconds with no servers. Real systems are
exercised in ``tests/stateful``.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import rule

from statemodels.engine import Fails, ModelMachine, Outcome, Step


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Read:
    pass


@attrs.frozen
class Nap:
    seconds: float


@attrs.frozen
class CounterModel:
    value: int = 0

    def apply(self, cmd: Any) -> Step:
        match cmd:
            case Add(n=n) if self.value + n > 100:
                return Step(self, {"error": Fails("overflow")})
            case Add(n=n):
                return Step(CounterModel(self.value + n), {"value": self.value + n})
            case Read() | Nap():
                return Step(self, {"value": self.value})
        raise TypeError(cmd)

    def view(self) -> dict[str, Any]:
        return {"value": self.value}


class CounterSystem:
    """The toy 'real' side. ``bugs`` seeds mistakes: 'add-3-twice', 'no-overflow-check'."""

    def __init__(self, bugs: frozenset[str] = frozenset()) -> None:
        self.value = 0
        self.bugs = bugs
        self.closed = threading.Event()

    def run(self, cmd: Any) -> Outcome:
        match cmd:
            case Add(n=n):
                if self.value + n > 100 and "no-overflow-check" not in self.bugs:
                    return Outcome.failed("overflow", "would pass 100")
                self.value += n * 2 if (n == 3 and "add-3-twice" in self.bugs) else n
            case Nap(seconds=s):
                # Wakes early when the engine tears the system down after a timeout.
                self.closed.wait(s)
        return Outcome.ok(value=self.value)

    def observe(self) -> dict[str, Any]:
        return {"value": self.value}

    def close(self) -> None:
        self.closed.set()


class CounterMachine(ModelMachine):
    def __init__(self, system: CounterSystem, step_timeout: float | None = None) -> None:
        super().__init__(system, CounterModel(), step_timeout=step_timeout)

    @rule(n=st.integers(0, 40))
    def add(self, n: int) -> None:
        self.execute(Add(n))

    @rule()
    def read(self) -> None:
        self.execute(Read())
