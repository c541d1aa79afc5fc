"""The three shapes a domain plugs into the engine: :class:`Step`, :class:`Outcome`, and the
:class:`Model` / :class:`Driver` protocols.

- A **command** is any frozen attrs instance (``AddRule(rule=...)``). The engine only needs its
  ``repr`` and its class name.
- A **model** is pure: ``model.apply(cmd)`` returns a :class:`Step` -- the next model and what must
  be observed on the real system. ``model.view()`` says what the real system must look like when
  idle (checked after each step as an invariant, polled until a deadline).
- A **driver** does real I/O: ``driver.run(cmd)`` returns an :class:`Outcome`; ``driver.observe()``
  returns the fields ``view()`` talks about; ``driver.close()`` releases everything. The engine may
  call ``close()`` from another thread while ``run()`` hangs, to unblock it: make it safe for that.

Example::

    @attrs.frozen
    class CounterModel:
        value: int = 0

        def apply(self, cmd):
            match cmd:
                case Incr(by=n):
                    return Step(CounterModel(self.value + n), {"value": self.value + n})
                case Get():
                    return Step(self, {"value": self.value})

        def view(self):
            return {"value": self.value}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from .expect import Expect, expect_map

__all__ = ["MISSING", "Driver", "Model", "Outcome", "Step"]


@attrs.frozen
class Step:
    """The model's answer to one command: its next state and what the real system must show.

    ``expect`` maps an outcome field to an :class:`~statemodels.engine.expect.Expect` (plain values
    are wrapped as ``Eq``). The ``error`` field is special: if the step does not mention it, the
    real call must succeed; ``{"error": Fails("23505")}`` says it must fail with that code.
    Fields the step does not mention are not judged.

    ``parts`` names the inner commands of a composite command, in order, by field prefix
    (``{"op0": "CreateTable", "op1": "DeleteBranch"}`` for fields ``op0.error``, ``op1.error``,
    ...): each part is judged like a command of its own, and a divergence in one is signed with
    the inner command's type, not its position.
    """

    model: Any
    expect: Mapping[str, Expect] = attrs.field(factory=dict, converter=expect_map)
    parts: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Outcome:
    """What a driver saw when it ran one command on the real system.

    ``error`` is a stable code (SQLSTATE, a protocol's error name, ``"timeout"``) or ``None`` on
    success; ``detail`` is the human message that came with it and is shown, never compared.
    """

    values: Mapping[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    detail: str = ""
    skipped: bool = False

    @classmethod
    def ok(cls, **values: Any) -> Outcome:
        return cls(values=values)

    @classmethod
    def failed(cls, code: str, detail: str = "", **values: Any) -> Outcome:
        return cls(values=values, error=code, detail=detail)

    def field(self, name: str) -> Any:
        """The value of one field; ``error`` is a field too."""
        if name == "error":
            return self.error
        return self.values.get(name, MISSING)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def summary(self, limit: int = 70) -> str:
        """One line for the journal."""
        if self.skipped:
            return "skipped (after a known divergence)"
        head = f"error {self.error}" if self.error else "ok"
        if self.detail and self.error:
            head += f" ({self.detail.splitlines()[0][:40]})"
        body = ", ".join(f"{k}={_brief(v)}" for k, v in self.values.items())
        text = f"{head} {body}".strip()
        return text if len(text) <= limit else text[: limit - 1] + "…"


def _brief(value: Any) -> str:
    """A value as the journal shows it: floats (mostly durations) to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: What ``Outcome.field`` returns for a field the driver did not report.
MISSING: Any = _Missing()


@runtime_checkable
class Model(Protocol):
    """A pure reference model. Never does I/O; ``apply`` returns a new model, never mutates."""

    def apply(self, cmd: Any) -> Step: ...

    def view(self) -> Mapping[str, Any]: ...


@runtime_checkable
class Driver(Protocol):
    """Makes commands happen on the real system. Never decides what is correct."""

    def run(self, cmd: Any) -> Outcome: ...

    def observe(self) -> Mapping[str, Any]: ...

    def close(self) -> None: ...
