"""Running machines: ``run_machine`` for a normal search, ``catch_mutant`` for mutant tests.

``run_machine`` turns the active :class:`~statemodels.engine.budgets.Budget` into Hypothesis
settings and runs the machine. A time-boxed budget (``deep``) keeps starting fresh runs with new
seeds until its minutes are spent, so a weekly search explores far more than one seed would.

Every distinct divergence of a run is reported, each shrunk on its own: a signature has its own
exception class, so Hypothesis tells them apart (``report_multiple_bugs``) and raises them together.

Saved failures are kept per machine and target: each ``run_machine`` call gets its own
example-database key (the pytest test id, the factory's name, and ``target``), so one machine's
passing run never deletes another's saved failure, and the next run of the same test replays it
first. While known divergences are being searched past, the database only ever gains entries: a
saved failure that replays into a known divergence is not deleted.

``catch_mutant`` is the other side of the contract: a machine that *passes* against a seeded bug
is a defect in the machine. It runs the machine deterministically (``derandomize=True``, no example
database, so the result does not depend on what an earlier run stored), demands a divergence, and
demands that Hypothesis shrank it to a short repro. A hunt whose bug shows within a few steps
can draw short examples (``example_steps``): every replay the shrinker makes runs the real system
again, and the relay's hunts took about half the time with 12-step examples than with 30-step
ones, shrinking to repros as short or shorter.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from hypothesis import settings
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.internal.conjecture import engine as _conjecture
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from ..errors import ConfigurationError, StatemodelsError
from . import budgets, hooks, stats
from .budgets import Budget
from .divergence import Divergence

__all__ = [
    "NoExamplesRan",
    "catch_mutant",
    "database_key",
    "divergences_in",
    "run_machine",
]

Factory = Callable[[], RuleBasedStateMachine]


class NoExamplesRan(StatemodelsError, AssertionError):
    """A run ended without running one example: a green that tested nothing."""


class _KeepFailures(ExampleDatabase):
    """An example database that never deletes: used while known divergences are searched past,
    where a saved failure that now replays into a known one must survive for the next run."""

    def __init__(self, inner: ExampleDatabase) -> None:
        super().__init__()
        self.inner = inner

    def fetch(self, key: bytes) -> Iterator[bytes]:
        yield from self.inner.fetch(key)

    def save(self, key: bytes, value: bytes) -> None:
        self.inner.save(key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        pass

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.inner.save(dest, value)  # copy: the source entry stays

    def __repr__(self) -> str:
        return f"_KeepFailures({self.inner!r})"


def database_key(factory: Factory, target: str | None = None) -> str:
    """The example-database key of one machine run: stable across runs and unrelated edits.

    Made of the pytest test id (parametrisation included) when run under pytest, the factory's
    module, qualified name and source text (two lambdas in one test are two machines), and
    ``target`` (e.g. which database a DSN names, without secrets). Line numbers are left out, so
    an edit elsewhere in the file keeps the key.
    """
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    name = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', '?')}"
    try:
        source = " ".join(inspect.getsource(factory).split())
    except (OSError, TypeError):
        source = ""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12] if source else ""
    return "|".join(part for part in (test, name, digest, target or "") if part)


def run_machine(
    factory: Factory,
    *,
    budget: Budget | str | None = None,
    known: Iterable[str] | None = None,
    target: str | None = None,
    **overrides: Any,
) -> None:
    """Search for a divergence between a machine's model and its real system.

    Args:
        factory: called once per example; returns a fresh machine on a fresh world.
        budget: a budget or its name; ``None`` uses the active one (``--budget``).
        known: divergence signatures to record and search past; ``None`` keeps the
            process-wide set (``--statemodels-known``).
        target: what the machine runs against, for the example-database key (no secrets).
        **overrides: Hypothesis settings that win over the budget's (``database=None``, ...).

    Raises:
        Divergence: the shrunk example where model and real system disagree; several distinct
            ones come as an ``ExceptionGroup`` of divergences, each shrunk.
        NoExamplesRan: the run ran no example at all (never a silent green).
    """
    __tracebackhide__ = True  # the user's test and the failing rule are what matter
    chosen = budgets.get_budget(budget) if budget is not None else budgets.active()
    if chosen.minutes is not None and not (math.isfinite(chosen.minutes) and chosen.minutes > 0):
        raise ConfigurationError(
            f"budget minutes must be a finite number > 0 (got {chosen.minutes!r})"
        )
    hooks.run_started(chosen)  # traces record the budget; live progress shows its time box
    base = settings(budgets.hypothesis_settings(chosen), **overrides)
    previous_known = stats.known_entries()
    if known is not None:
        stats.set_known(known)
    if stats.known_signatures() and base.database is not None:
        base = settings(base, database=_KeepFailures(base.database))
    key = database_key(factory, target).encode()
    # The key also seeds a derandomized run's examples (Hypothesis derives that seed from the
    # test's digest). Without a database there is nothing to keep apart, so the digest is left
    # as it was: a deterministic hunt draws the same examples it always drew.
    digest = key if base.database is not None else b""
    started = stats.examples_started()

    def ran_nothing() -> NoExamplesRan:
        stats.empty_runs.append(key.decode())
        return NoExamplesRan(
            f"{key.decode()}: the run ended without running a single example; check the "
            f"budget ({chosen.name}: {chosen.max_examples} examples), its phases and the "
            "machine's rules"
        )

    try:
        if chosen.minutes is None:
            _run_once(factory, base, seed=None, key=digest)
        else:
            # Time-boxed: fresh seeds until the box is spent, and always at least one chunk (a
            # box too small for one example must not pass having run nothing). Chunks are whole
            # runs, so the box can overrun by one chunk; keep chunks modest for long machines.
            deadline = time.monotonic() + chosen.minutes * 60
            rng = random.Random()
            while True:
                chunk = settings(base, derandomize=False)
                _run_once(factory, chunk, seed=rng.getrandbits(64), key=digest)
                if time.monotonic() >= deadline:
                    break
    except BaseException as exc:
        # Hypothesis says "skip" when told to run no examples: for a machine that is a false
        # green, not a skip.
        if type(exc).__name__ in ("SkipTest", "Skipped") and stats.examples_started() == started:
            raise ran_nothing() from None
        raise
    finally:
        stats.set_known(previous_known)
    if stats.examples_started() == started:
        raise ran_nothing()


def catch_mutant(
    factory: Factory,
    *,
    budget: Budget | str = "ci",
    max_steps: int,
    example_steps: int | None = None,
    shrink_seconds: float | None = None,
) -> Divergence:
    """Run a machine against a seeded bug; return the divergence it must find.

    The divergence is printed (visible with ``pytest -s``, and in the report of a failing test).
    ``example_steps`` caps the steps of each example (the budget's example count is kept): for a
    bug whose repro is short, about twice ``max_steps`` keeps shrinking cheap. A cap can also hide
    a bug that needs a long example to show, so it is each hunt's own, measured choice.
    ``shrink_seconds`` bounds the time Hypothesis spends shrinking it (its own bound is 300 s):
    on a machine whose steps take real time (a heartbeat, an outage) the shrinker's replays are
    most of a hunt; the repro must still be ``max_steps`` or shorter.

    Raises:
        AssertionError: no divergence was found (the machine is blind to this bug), or the shrunk
            repro is longer than ``max_steps``.
    """
    chosen = budgets.get_budget(budget)
    try:
        with _shrinking_for(shrink_seconds):
            run_machine(
                factory,
                budget=_for_hunt(chosen, example_steps),
                known=(),
                database=None,
                derandomize=True,
                report_multiple_bugs=False,
                print_blob=False,
            )
    except Divergence as found:
        _count_as_caught(found)
        print(f"\n{found}\n", file=sys.stdout)
        _assert_short(found, max_steps)
        return found
    except Flaky as flaky:
        # The mutant was caught, but an example did not behave the same when Hypothesis ran it
        # again (FlakyFailure: the shrunk example passed on replay; FlakyStrategyDefinition: a
        # replay diverged earlier than its first run): the bug shows under some timings only (a
        # restart racing the next step). The catch stands; the repro is the shortest divergence
        # seen, said to be timing-dependent.
        seen = divergences_in(flaky)
        if not seen:
            raise
        shortest = min(seen, key=lambda d: d.steps)
        _count_as_caught(shortest)
        print(f"\n{shortest}\n(timing-dependent: its replay did not diverge again)\n")
        _assert_short(shortest, max_steps)
        return shortest
    raise AssertionError(
        f"the machine passed against a mutant within the {chosen.name!r} budget "
        f"({chosen.max_examples} examples x {_for_hunt(chosen, example_steps).steps} steps): a "
        "defect in the machine"
    )


@contextmanager
def _shrinking_for(seconds: float | None) -> Iterator[None]:
    """Hypothesis reads its shrink deadline from a module constant it documents as
    monkeypatchable; set it for one run and put it back."""
    if seconds is None:
        yield
        return
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"shrink_seconds must be a finite number > 0 (got {seconds!r})")
    before = _conjecture.MAX_SHRINKING_SECONDS
    _conjecture.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        _conjecture.MAX_SHRINKING_SECONDS = before


def _count_as_caught(found: Divergence) -> None:
    """A hunt's divergence is the expected catch, not a bug of the system under test: the summary
    counts it apart."""
    machine = stats.stats_for(found.machine)
    if machine.divergences[found.signature] > 0:
        machine.divergences[found.signature] -= 1
        if not machine.divergences[found.signature]:
            del machine.divergences[found.signature]
    machine.mutants_caught[found.signature] += 1


def _assert_short(found: Divergence, max_steps: int) -> None:
    assert found.steps <= max_steps, (
        f"the machine caught the mutant but the shrunk repro has {found.steps} steps "
        f"(at most {max_steps} wanted):\n{found}"
    )


def _for_hunt(budget: Budget, example_steps: int | None) -> Budget:
    """A mutant hunt is one deterministic run, never a time box; its examples are at most
    ``example_steps`` long (the budget's own steps if that is None or more)."""
    steps = budget.steps if example_steps is None else min(budget.steps, example_steps)
    return attrs.evolve(budget, steps=steps, minutes=None)


def _run_once(factory: Factory, config: settings, seed: int | None, key: bytes = b"") -> None:
    __tracebackhide__ = True

    def make() -> RuleBasedStateMachine:
        stats.note_example()  # every example builds its machine here, whatever its class
        return factory()

    # run_state_machine_as_test reads these attributes, as @seed would set them; the digest
    # makes the example-database key this machine's own (by default every run shares ``make``).
    make._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    stats.run_started()
    if key:
        make._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    try:
        run_state_machine_as_test(make, settings=config)
    except Divergence as found:
        stats.stats_for(found.machine).divergences[found.signature] += 1
        hooks.divergence_reported(found, seed)  # writes its trace, adds the replay note
        raise
    except BaseExceptionGroup as group:
        for each in divergences_in(group):
            stats.stats_for(each.machine).divergences[each.signature] += 1
            hooks.divergence_reported(each, seed)
        raise


def divergences_in(error: BaseException) -> list[Divergence]:
    """Every Divergence inside ``error``: itself, the members of an exception group, and what
    it was raised while handling (``__context__``)."""
    out: list[Divergence] = []
    seen: set[int] = set()
    stack = [error]
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, Divergence):
            out.append(exc)
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        stack.extend(e for e in (exc.__context__, exc.__cause__) if e is not None)
    return out
