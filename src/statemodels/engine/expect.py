"""Expectations: what the model says about a real value it cannot know exactly.

A model knows relations, not real values. It does not know the PID the OS will hand a new worker,
but it knows the worker's identity must *change*; it does not know a Trinity ID, but it knows the ID
must be *fresh* and *match* a format. Each :class:`Expect` checks one real value against such a
relation::

    Step(model=next_model, expect={
        "error": Fails("23505"),            # the call must fail with this code
        "pid": Changed("worker:eth0"),      # differs from that slot's value, then rebinds it
        "trinity_id": Fresh("trinity"),     # never seen before in this run, in that pool
        "took": Within(0.0, 0.5),           # a duration in seconds
    })

Checking is two-phase: :meth:`Expect.check` only reads the :class:`Bindings`; :meth:`Expect.bind`
records what a passing value teaches (a slot's new value, a value now seen). The engine binds only
after *every* field of a step passed, so a failing step never half-updates the bindings.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "AnyOf",
    "Anything",
    "Bind",
    "Bindings",
    "Changed",
    "EachIn",
    "Eq",
    "Expect",
    "Fails",
    "Fresh",
    "Latency",
    "Matches",
    "Renewed",
    "Same",
    "Within",
    "as_expect",
    "expect_map",
    "succeeds",
]


@attrs.define
class Bindings:
    """What the engine has learned about real values during one example (one run of a machine).

    ``slots`` maps a symbolic name (``"worker:eth0"``) to the real value last bound to it;
    ``seen`` maps a pool name (``"trinity"``) to every real value seen in that pool.
    """

    slots: dict[str, Any] = attrs.field(factory=dict)
    seen: dict[str, set[Hashable]] = attrs.field(factory=dict)
    #: Seconds the current call may have waited for a CPU (see :mod:`statemodels.engine.load`);
    #: set by the engine around each driver call, read by :class:`Latency`.
    stalled: float = 0.0

    def get(self, slot: str) -> Any:
        return self.slots.get(slot, _UNBOUND)

    def forget(self, slot: str) -> None:
        """Unbind a slot, e.g. when the model says the thing it named no longer exists."""
        self.slots.pop(slot, None)


class _Unbound:
    def __repr__(self) -> str:
        return "<unbound>"


_UNBOUND: Any = _Unbound()


class Expect:
    """Base of all expectations. Subclasses are frozen attrs classes with a readable ``repr``."""

    def check(self, real: Any, bindings: Bindings) -> str | None:
        """Return ``None`` if ``real`` satisfies this expectation, else a short reason."""
        raise NotImplementedError

    def bind(self, real: Any, bindings: Bindings) -> None:
        """Record what a passing ``real`` value teaches. Default: nothing."""

    def describe(self, bindings: Bindings) -> str:
        """What the model column of a divergence table shows."""
        return repr(self)


def as_expect(value: Any) -> Expect:
    """Wrap a plain value as ``Eq(value)``; pass an :class:`Expect` through unchanged."""
    return value if isinstance(value, Expect) else Eq(value)


def expect_map(fields: Mapping[str, Any]) -> dict[str, Expect]:
    """Normalise a field → expectation mapping: plain values become ``Eq``, and a ``Fresh()``
    without a pool gets the field's own name as its pool."""
    out: dict[str, Expect] = {}
    for name, value in fields.items():
        expect = as_expect(value)
        if isinstance(expect, Fresh) and expect.pool is None:
            expect = Fresh(str(name))
        out[str(name)] = expect
    return out


@attrs.frozen
class Eq(Expect):
    """The real value must equal ``value``."""

    value: Any

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None if real == self.value else "differs"

    def describe(self, bindings: Bindings) -> str:
        return _short(self.value)


@attrs.frozen
class Anything(Expect):
    """Any value passes: the field is reported in the journal but not judged."""

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None

    def describe(self, bindings: Bindings) -> str:
        return "anything"


@attrs.frozen
class Fresh(Expect):
    """Never seen before in this run, within ``pool`` (default: the field's name, so two fields
    never share a pool by accident)."""

    pool: str | None = None

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if real in bindings.seen.get(self._pool(), ()):
            return "seen before in this run"
        return None

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.seen.setdefault(self._pool(), set()).add(real)

    def _pool(self) -> str:
        return self.pool or "<unnamed>"

    def describe(self, bindings: Bindings) -> str:
        return f"fresh in {self._pool()!r}"


@attrs.frozen
class Bind(Expect):
    """Any value passes and becomes the value of ``slot`` (first sight of a thing)."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return None

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"bind {self.slot}"


@attrs.frozen
class Same(Expect):
    """Equal to the value bound to ``slot``. An unbound slot is bound to the real value."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        bound = bindings.get(self.slot)
        if bound is _UNBOUND or bound == real:
            return None
        # The reason goes into signatures: no values (the table shows what it was).
        return "changed"

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"same as {self.slot} = {_short(bindings.get(self.slot))}"


@attrs.frozen
class Changed(Expect):
    """Different from the value bound to ``slot``; then ``slot`` is rebound to the real value.

    An unbound slot passes (nothing to be unchanged from) and is bound.
    """

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        return "unchanged" if bindings.get(self.slot) == real else None

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"changed from {self.slot} = {_short(bindings.get(self.slot))}"


@attrs.frozen
class Renewed(Expect):
    """A new thing (a process identity): never seen before in this run, in ``pool``, and not the
    value ``slot`` holds; it becomes that value. A restart must yield a new process, not the old
    one and not one seen earlier (pids are reused, identities are not)."""

    slot: str
    pool: str = "process-identity"

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if real is None:
            return "no process"
        if real == bindings.get(self.slot) or real in bindings.seen.get(self.pool, ()):
            return "not a new process"
        return None

    def bind(self, real: Any, bindings: Bindings) -> None:
        seen: set[Hashable] = bindings.seen.setdefault(self.pool, set())
        seen.add(real)
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"a new process (not {bindings.get(self.slot)!r})"


@attrs.frozen
class Matches(Expect):
    """``str(real)`` must match ``pattern`` in full (``re.fullmatch``)."""

    pattern: str = attrs.field()

    @pattern.validator
    def _compiles(self, attribute: attrs.Attribute[str], value: str) -> None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"Matches({value!r}): not a regular expression ({exc})") from None

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if isinstance(real, str) and re.fullmatch(self.pattern, real):
            return None
        return "does not match"

    def describe(self, bindings: Bindings) -> str:
        return f"matches /{self.pattern}/"


@attrs.frozen
class Within(Expect):
    """A number (usually a duration in seconds) in the closed interval ``[lo, hi]``."""

    lo: float
    hi: float = attrs.field()

    @hi.validator
    def _ordered(self, attribute: attrs.Attribute[float], value: float) -> None:
        if value < self.lo:
            raise ValueError(f"Within(lo={self.lo!r}, hi={value!r}): hi must be >= lo")

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if isinstance(real, int | float) and self.lo <= real <= self.hi:
            return None
        return "out of range"

    def describe(self, bindings: Bindings) -> str:
        return f"within [{self.lo:g}, {self.hi:g}]"


@attrs.frozen
class Latency(Expect):
    """A duration in seconds of at most ``hi``, judged one-sidedly against the machine's load.

    A wall-clock bound on a loaded machine measures the machine, not the system: a correct server
    whose answer waited 150 ms for a CPU is not slow. The engine measures, around each call, how
    long runnable tasks waited for a CPU (``Bindings.stalled``, from the kernel's pressure
    stall information); a duration over ``hi`` passes if what is left after taking that wait away
    is within ``hi``. So a real latency bug shows on an idle machine every time, and load never
    turns a correct system red.
    """

    hi: float = attrs.field()

    @hi.validator
    def _positive(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"Latency(hi={value!r}): hi must be > 0 seconds")

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if not isinstance(real, int | float) or real < 0:
            return "not a duration"
        if real <= self.hi or real - bindings.stalled <= self.hi:
            return None
        return "too slow"

    def describe(self, bindings: Bindings) -> str:
        excuse = f" (+{bindings.stalled:.3g}s cpu wait)" if bindings.stalled else ""
        return f"at most {self.hi:g}s{excuse}"


@attrs.frozen
class Fails(Expect):
    """For the ``error`` field: the call must fail with error code ``code``.

    ``Fails()`` with no code accepts any failure.
    """

    code: str | None = None

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if real is None:
            return "succeeded"
        if self.code is not None and real != self.code:
            return "wrong error"
        return None

    def describe(self, bindings: Bindings) -> str:
        return f"fails with {self.code}" if self.code else "fails"


@attrs.frozen(init=False)
class AnyOf(Expect):
    """Passes if any alternative passes; binds through the first alternative that passed."""

    options: tuple[Expect, ...]

    def __init__(self, *options: Any) -> None:
        if not options:
            raise ValueError("AnyOf() needs at least one alternative")
        self.__attrs_init__(tuple(as_expect(o) for o in options))

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if any(o.check(real, bindings) is None for o in self.options):
            return None
        return "matches no alternative"

    def bind(self, real: Any, bindings: Bindings) -> None:
        for option in self.options:
            if option.check(real, bindings) is None:
                option.bind(real, bindings)
                return

    def describe(self, bindings: Bindings) -> str:
        return " | ".join(o.describe(bindings) for o in self.options)


@attrs.frozen(init=False)
class EachIn(Expect):
    """Every element of a real collection is one of ``allowed``; an empty collection passes.

    For what was observed over a stretch of time: every backoff a supervisor reported during
    one restart must be one its policy plans, e.g. ``EachIn({100, 200})``.
    """

    allowed: frozenset[Any]

    def __init__(self, allowed: Iterable[Any]) -> None:
        self.__attrs_init__(frozenset(allowed))

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if isinstance(real, str | bytes) or not isinstance(real, Iterable):
            return "not a collection"
        # The reason goes into divergence signatures: keep it free of values (the table has them).
        return "unexpected members" if any(v not in self.allowed for v in real) else None

    def describe(self, bindings: Bindings) -> str:
        return f"each in {{{', '.join(map(repr, sorted(self.allowed, key=repr)))}}}"


#: The expectation the engine applies to the ``error`` field when a step says nothing about it.
succeeds = Eq(None)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
