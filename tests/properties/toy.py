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
class Batch:
    """A composite command: its ops run in order, reported as ``op<i>.error`` / ``op<i>.value``."""

    ops: tuple[Add, ...]


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
            case Batch(ops=ops):
                model, fields, parts = self, {}, {}
                for i, op in enumerate(ops):
                    parts[f"op{i}"] = type(op).__name__
                    step = model.apply(op)
                    fields.update({f"op{i}.{k}": v for k, v in step.expect.items()})
                    model = step.model
                return Step(model, fields, parts)
        raise TypeError(cmd)

    def view(self) -> dict[str, Any]:
        return {"value": self.value}


class CounterSystem:
    """The toy 'real' side. ``bugs`` seeds mistakes: 'add-3-twice' (an Add of 3 to 9 adds twice:
    a band, not one value, so that any seed meets it and shrinking must find its edge, 3),
    'no-overflow-check', 'overflow-code' (an overflow fails with another code)."""

    def __init__(self, bugs: frozenset[str] = frozenset()) -> None:
        self.value = 0
        self.bugs = bugs
        self.closed = threading.Event()

    def run(self, cmd: Any) -> Outcome:
        match cmd:
            case Add(n=n):
                if self.value + n > 100 and "no-overflow-check" not in self.bugs:
                    code = "too-big" if "overflow-code" in self.bugs else "overflow"
                    return Outcome.failed(code, "would pass 100")
                self.value += n * 2 if (3 <= n <= 9 and "add-3-twice" in self.bugs) else n
            case Batch(ops=ops):
                values: dict[str, Any] = {}
                for i, op in enumerate(ops):
                    out = self.run(op)
                    values[f"op{i}.error"] = out.error
                    if out.error is None:
                        values[f"op{i}.value"] = out["value"]
                return Outcome.ok(**values)
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
