"""``ModelMachine``: a ``RuleBasedStateMachine`` running a pure model and a real system in lockstep.

A domain machine defines rules that build commands and hand them to :meth:`ModelMachine.execute`;
the engine does the rest::

    class CounterMachine(ModelMachine):
        def __init__(self, driver):
            super().__init__(driver, CounterModel())

        @rule(n=st.integers(-5, 5))
        def incr(self, n):
            self.execute(Incr(by=n))

For every command: the model answers with a :class:`~statemodels.engine.protocol.Step` (next model
and expectations), the driver runs the command on the real system under a per-step timeout, and
the outcome is checked field by field. A mismatch raises a
:class:`~statemodels.engine.divergence.Divergence`, which Hypothesis shrinks. After each step an
invariant compares ``model.view()`` with ``driver.observe()``, polled for ``view_within`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from hypothesis.stateful import RuleBasedStateMachine, invariant

from . import budgets, hooks, stats
from .divergence import Journal, Mismatch, divergence_class, signature_of
from .eventually import EventuallyTimeout, eventually
from .expect import Bindings, Expect, expect_map, succeeds
from .load import StallMeter
from .protocol import MISSING, Driver, Model, Outcome
from .watchdog import StepTimeout, Watchdog

__all__ = ["ModelMachine", "compare"]

log = logging.getLogger(__name__)


class _MissingField(AssertionError):
    """Carries the mismatches of one failed observation out of an ``eventually`` attempt."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        super().__init__("; ".join(f"{m.field}: {m.reason}" for m in mismatches))


class _Settled(Exception):
    """A ``final`` field failed: waiting longer cannot help (not an AssertionError, so
    ``eventually`` lets it through at once)."""

    def __init__(self, mismatches: list[Mismatch], attempts: int) -> None:
        self.mismatches = mismatches
        self.attempts = attempts


def compare(
    expect: Mapping[str, Expect],
    get: Callable[[str], Any],
    bindings: Bindings,
    *,
    has_error: bool,
    parts: Mapping[str, str] | None = None,
) -> list[Mismatch]:
    """Check every expected field of one outcome or observation; return the mismatches.

    With ``has_error`` (a command's outcome), the ``error`` field is judged first, defaulting to
    "must succeed"; if it fails, the other fields are not judged -- a failed call has no results.

    ``parts`` (``{"op0": "CreateTable", "op1": "DeleteBranch"}``, in order) names the inner
    commands of a composite one. Each part is judged like a command of its own -- its
    ``<part>.error`` first, its other fields only if it succeeded -- and the first part that
    diverges is the root cause: later parts and the composite's own fields are knock-on effects
    and are not judged. Its mismatches carry the part, so the signature names the inner command.
    """
    if has_error:
        error_expect = expect.get("error", succeeds)
        real_error = get("error")
        reason = error_expect.check(real_error, bindings)
        if reason is not None:
            return [Mismatch("error", error_expect.describe(bindings), repr(real_error), reason)]
    in_part: set[str] = set()
    for prefix, kind in (parts or {}).items():
        names = [n for n in expect if n.startswith(prefix + ".")]
        in_part.update(names)
        found = _compare_part(prefix, kind, names, expect, get, bindings)
        if found:
            return found
    out = []
    for name, exp in expect.items():
        if (name == "error" and has_error) or name in in_part:
            continue
        mismatch = _judge(name, exp, get(name), bindings)
        if mismatch is not None:
            out.append(mismatch)
    return out


def _compare_part(
    prefix: str,
    kind: str,
    names: list[str],
    expect: Mapping[str, Expect],
    get: Callable[[str], Any],
    bindings: Bindings,
) -> list[Mismatch]:
    error_name = f"{prefix}.error"
    error_expect = expect.get(error_name, succeeds)
    real_error = get(error_name)
    reason = error_expect.check(real_error, bindings)
    if reason is not None:
        shown = "<missing>" if real_error is MISSING else repr(real_error)
        return [Mismatch(error_name, error_expect.describe(bindings), shown, reason, prefix, kind)]
    if real_error is not None:
        return []  # failed as the model said: a failed op has no results to judge
    out = []
    for name in names:
        if name == error_name:
            continue
        mismatch = _judge(name, expect[name], get(name), bindings)
        if mismatch is not None:
            out.append(attrs.evolve(mismatch, part=prefix, part_kind=kind))
    return out


def _judge(name: str, exp: Expect, real: Any, bindings: Bindings) -> Mismatch | None:
    if real is MISSING:
        return Mismatch(name, exp.describe(bindings), "<missing>", "missing")
    reason = exp.check(real, bindings)
    if reason is None:
        return None
    return Mismatch(name, exp.describe(bindings), _short(real), reason)


def _bind(
    expect: Mapping[str, Expect],
    get: Callable[[str], Any],
    bindings: Bindings,
    parts: Mapping[str, str] | None = None,
) -> None:
    failed = [p for p in (parts or {}) if get(f"{p}.error") not in (None, MISSING)]
    for name, exp in expect.items():
        if any(name.startswith(p + ".") and name != f"{p}.error" for p in failed):
            continue  # a failed op's other fields hold no results to learn from
        exp.bind(get(name), bindings)


def _rebound(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a slot bound ``before`` now holds another value (a first binding is learning
    what already was, not a change)."""
    return any(slot in after and after[slot] != value for slot, value in before.items())


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ModelMachine(RuleBasedStateMachine):
    """Base class of every statemodels machine.

    Args:
        driver: talks to the real system (fresh per example: the factory builds it).
        model: the initial pure model.
        step_timeout: seconds a driver call may take; ``None`` takes the active budget's.

    Class attributes:
        machine_name: name used in signatures and the summary (default: the class name).
        view_within: seconds the view invariant may take to converge (0: must hold at once).
        view_final: prefixes of view fields that cannot come right by waiting: one wrong
            observation of such a field diverges at once, within ``view_within`` or not. For a
            field whose wrong value is itself transient (a backoff that should never have been
            reported), waiting would let the bug pass whenever the poll comes late.
    """

    machine_name: ClassVar[str | None] = None
    view_within: ClassVar[float] = 0.0
    view_final: ClassVar[tuple[str, ...]] = ()

    def __init__(self, driver: Driver, model: Model, *, step_timeout: float | None = None) -> None:
        super().__init__()
        self.driver = driver
        self.model = model
        self.step_timeout = step_timeout or budgets.active().step_timeout
        self.bindings = Bindings()
        self.journal = Journal()
        #: Signature of the known divergence that ended this example early, if any.
        self.tainted: str | None = None
        self._watchdog = Watchdog(f"statemodels-{self.name}")
        self._driver_closed = False
        self._stall = StallMeter()
        self._stats = stats.stats_for(self.name)
        self._stats.examples += 1
        hooks.example_started(self)  # live progress, report

    @property
    def name(self) -> str:
        return self.machine_name or type(self).__name__

    # -- the lockstep -------------------------------------------------------------------------

    def execute(self, cmd: Any) -> Outcome:
        """Apply ``cmd`` to the model and the real system; raise :class:`Divergence` on mismatch.

        Returns the real outcome (``Outcome(skipped=True)`` once a known divergence has ended
        this example: later steps do no I/O).
        """
        __tracebackhide__ = True  # pytest shows the rule, not the engine
        if self.tainted is not None:
            return Outcome(skipped=True)
        step = self.model.apply(cmd)
        kind = type(cmd).__name__
        mark = self._stall.mark()
        start = time.perf_counter()
        try:
            outcome = self._call(lambda: self.driver.run(cmd), what=repr(cmd))
        except StepTimeout as hang:
            self.journal.record(cmd, f"no answer after {hang.waited:.3f}s", hang.waited)
            self._stats.record_command(kind, "hung", changed=False)
            self._hung(kind, repr(cmd), hang)
            return Outcome(skipped=True)
        elapsed = time.perf_counter() - start
        self.bindings.stalled = self._stall.since(mark, duration=elapsed)
        self._stats.record_step(elapsed)
        self.journal.record(cmd, outcome.summary(), elapsed)
        hooks.step_done(self, cmd, elapsed)  # report: step times, command kinds
        parts = step.parts
        mismatches = compare(step.expect, outcome.field, self.bindings, has_error=True, parts=parts)
        changed = step.model != self.model
        if mismatches:
            resumable = _both_failed(mismatches)
            self._stats.record_command(kind, "diverged", changed=changed and resumable)
            if self._diverge(kind, repr(cmd), mismatches, resumable=resumable):
                # A known divergence the model can follow: both sides failed (with different
                # codes), so neither changed anything the model does not know. Go on.
                _bind(_errors_only(step.expect, parts), outcome.field, self.bindings)
                self.model = step.model
                return outcome
            return Outcome(skipped=True)
        before = dict(self.bindings.slots)
        if outcome.error is None:
            _bind(step.expect, outcome.field, self.bindings, parts)
        else:
            _bind({"error": step.expect.get("error", succeeds)}, outcome.field, self.bindings)
        # What the model knows of the world includes its slots: a build's new checksum, a
        # restart's new pid. A step that rebinds one changed the state the model tracks, even
        # where the model keeps it symbolic (the reload model's versions live only in slots).
        changed = changed or _rebound(before, self.bindings.slots)
        self._stats.record_command(kind, "ok" if outcome.error is None else "failed", changed)
        self.model = step.model
        return outcome

    def check_eventually(
        self,
        label: str,
        expect: Mapping[str, Any],
        observe: Callable[[], Mapping[str, Any]],
        *,
        within: float,
        every: float = 0.005,
        final: Collection[str] = (),
    ) -> Mapping[str, Any]:
        """Poll ``observe()`` until every field in ``expect`` holds, for at most ``within`` s.

        Each ``observe()`` call runs under the step timeout. Returns the passing observation and
        binds its slots; on the deadline raises a :class:`Divergence` of kind ``label`` showing
        the last observation. ``final`` names fields that cannot come right by waiting (e.g.
        everything seen so far, accumulated by ``observe``): one failing diverges at once, which
        keeps every replay of a failing example -- shrinking replays many -- short.
        """
        __tracebackhide__ = True  # pytest shows the rule, not the engine
        if self.tainted is not None:
            return {}
        wanted = expect_map(expect)
        last: dict[str, Any] = {}
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            last.clear()
            last.update(self._call(observe, what=f"observe ({label})"))
            mismatches = compare(wanted, _getter(last), self.bindings, has_error=False)
            settled = [m for m in mismatches if m.field in final]
            if settled:  # report only what is settled: the rest may still be on its way
                raise _Settled(settled, attempts)
            if mismatches:
                raise _MissingField(mismatches)
            return True

        try:
            eventually(attempt, within=within, every=every, what=label)
        except StepTimeout as hang:
            self._hung(label, f"observe ({label})", hang)
            return {}
        except _Settled as settled:
            note = f"cannot come right by waiting (observation {settled.attempts})"
            self._diverge(label, f"eventually: {label}", settled.mismatches, note=note)
            return {}
        except EventuallyTimeout as late:
            mismatches = late.last.mismatches if isinstance(late.last, _MissingField) else []
            note = f"still false after {within:g}s ({late.attempts} observations)"
            self._diverge(label, f"eventually: {label}", mismatches, note=note)
            return {}
        _bind(wanted, _getter(last), self.bindings)
        return dict(last)

    @invariant()
    def model_view_matches_real(self) -> None:
        """The real system looks like ``model.view()`` (within ``view_within`` seconds)."""
        __tracebackhide__ = True  # pytest shows the rule, not the engine
        if self.tainted is not None or self._driver_closed:
            return
        view = self.model.view()
        if view:
            final = [k for k in view if k.startswith(self.view_final)] if self.view_final else []
            self.check_eventually(
                "view", view, self.driver.observe, within=self.view_within, final=final
            )

    def teardown(self) -> None:
        """Close the driver (once) and the watchdog. Errors are logged, never mask a divergence."""
        self._close_driver()
        self._watchdog.close()

    # -- internals ----------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], *, what: str) -> Any:
        return self._watchdog.call(fn, timeout=self.step_timeout, what=what)

    def _close_driver(self) -> None:
        if self._driver_closed:
            return
        self._driver_closed = True
        try:
            self.driver.close()
        except Exception:
            log.exception("statemodels: %s driver.close() failed", self.name)

    def _hung(self, kind: str, command: str, hang: StepTimeout) -> None:
        __tracebackhide__ = True  # pytest shows the rule, not the engine
        # Tear the system under test down: that is what unblocks the stuck call.
        self._close_driver()
        wanted, got = f"answer within {hang.timeout:g}s", f"no answer after {hang.waited:.3f}s"
        mismatch = Mismatch("time", wanted, got, "timeout")
        self._diverge(kind, command, [mismatch], note="hung: the system under test was torn down")

    def _diverge(
        self,
        kind: str,
        command: str,
        mismatches: Sequence[Mismatch],
        note: str = "",
        *,
        resumable: bool = False,
    ) -> bool:
        """Raise the divergence -- unless its signature is known.

        A known one is counted; if ``resumable`` (the model still knows the real state) the
        example goes on and this returns True, else the example is tainted (every later step
        is skipped, so the example ends normally and the search goes on) and this returns False.
        """
        __tracebackhide__ = True  # pytest shows the rule, not the engine
        signature = signature_of(self.name, kind, mismatches)
        cls = divergence_class(signature)
        divergence = cls(
            machine=self.name,
            step=len(self.journal),
            command=command,
            kind=kind,
            mismatches=mismatches,
            journal=self.journal,
            note=note,
        )
        known = stats.match_known(divergence)
        hooks.divergence_seen(self, divergence, known is not None)  # traces, report, progress
        if known is None:
            stats.divergence_raised()  # the search turns to shrinking: stop counting commands
            raise divergence
        self._stats.known_hits[known] += 1
        if resumable:
            return True
        self.tainted = known
        return False


def _both_failed(mismatches: Sequence[Mismatch]) -> bool:
    """Both sides failed, only with different codes: the model can follow what happened."""
    return bool(mismatches) and all(
        m.key == "error" and m.reason == "wrong error" for m in mismatches
    )


def _errors_only(expect: Mapping[str, Expect], parts: Mapping[str, str]) -> dict[str, Expect]:
    names = {"error", *(f"{p}.error" for p in parts)}
    return {n: e for n, e in expect.items() if n in names}


def _getter(values: Mapping[str, Any]) -> Callable[[str], Any]:
    return lambda name: values.get(name, MISSING)
