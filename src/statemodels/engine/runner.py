"""Running machines: ``run_machine`` for a normal search, ``catch_mutant`` for mutant tests.

``run_machine`` turns the active :class:`~statemodels.engine.budgets.Budget` into Hypothesis
settings and runs the machine. A time-boxed budget (``deep``) keeps starting fresh runs with new
seeds until its minutes are spent, so a weekly search explores far more than one seed would.

``catch_mutant`` is the other side of the contract: a machine that *passes* against a seeded bug
is a defect in the machine. It runs the machine deterministically (``derandomize=True``, no example
database, so the result does not depend on what an earlier run stored), demands a divergence, and
demands that Hypothesis shrank it to a short repro.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import settings
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from . import budgets, hooks, stats
from .budgets import Budget
from .divergence import Divergence

__all__ = ["catch_mutant", "run_machine"]

Factory = Callable[[], RuleBasedStateMachine]


def run_machine(
    factory: Factory,
    *,
    budget: Budget | str | None = None,
    known: Iterable[str] | None = None,
    **overrides: Any,
) -> None:
    """Search for a divergence between a machine's model and its real system.

    Args:
        factory: called once per example; returns a fresh machine on a fresh world.
        budget: a budget or its name; ``None`` uses the active one (``--budget``).
        known: divergence signatures to record and search past; ``None`` keeps the
            process-wide set (``--statemodels-known``).
        **overrides: Hypothesis settings that win over the budget's (``database=None``, ...).

    Raises:
        Divergence: the shrunk example where model and real system disagree.
    """
    __tracebackhide__ = True  # the user's test and the failing rule are what matter
    chosen = budgets.get_budget(budget) if budget is not None else budgets.active()
    hooks.run_started(chosen)  # traces record the budget; live progress shows its time box
    base = settings(budgets.hypothesis_settings(chosen), **overrides)
    previous_known = stats.known_signatures()
    if known is not None:
        stats.set_known(known)
    try:
        if chosen.minutes is None:
            _run_once(factory, base, seed=None)
            return
        # Time-boxed: fresh seeds until the box is spent. Chunks are whole runs, so the box can
        # overrun by at most one chunk; keep chunks (max_examples) modest for long machines.
        deadline = time.monotonic() + chosen.minutes * 60
        rng = random.Random()
        while time.monotonic() < deadline:
            _run_once(factory, settings(base, derandomize=False), seed=rng.getrandbits(64))
    finally:
        stats.set_known(previous_known)


def catch_mutant(factory: Factory, *, budget: Budget | str = "ci", max_steps: int) -> Divergence:
    """Run a machine against a seeded bug; return the divergence it must find.

    The divergence is printed (visible with ``pytest -s``, and in the report of a failing test).

    Raises:
        AssertionError: no divergence was found (the machine is blind to this bug), or the shrunk
            repro is longer than ``max_steps``.
    """
    chosen = budgets.get_budget(budget)
    try:
        run_machine(
            factory,
            budget=_without_time_box(chosen),
            known=(),
            database=None,
            derandomize=True,
            report_multiple_bugs=False,
            print_blob=False,
        )
    except Divergence as found:
        print(f"\n{found}\n", file=sys.stdout)
        _assert_short(found, max_steps)
        return found
    except Flaky as flaky:
        # The mutant was caught, but an example did not behave the same when Hypothesis ran it
        # again (FlakyFailure: the shrunk example passed on replay; FlakyStrategyDefinition: a
        # replay diverged earlier than its first run): the bug shows under some timings only (a
        # restart racing the next step). The catch stands; the repro is the shortest divergence
        # seen, said to be timing-dependent.
        seen = _divergences_in(flaky)
        if not seen:
            raise
        shortest = min(seen, key=lambda d: d.steps)
        print(f"\n{shortest}\n(timing-dependent: its replay did not diverge again)\n")
        _assert_short(shortest, max_steps)
        return shortest
    raise AssertionError(
        f"the machine passed against a mutant within the {chosen.name!r} budget "
        f"({chosen.max_examples} examples x {chosen.steps} steps): a defect in the machine"
    )


def _assert_short(found: Divergence, max_steps: int) -> None:
    assert found.steps <= max_steps, (
        f"the machine caught the mutant but the shrunk repro has {found.steps} steps "
        f"(at most {max_steps} wanted):\n{found}"
    )


def _without_time_box(budget: Budget) -> Budget:
    """A mutant hunt is one deterministic run, never a time box."""
    if budget.minutes is None:
        return budget
    return Budget(budget.name, budget.max_examples, budget.steps, budget.step_timeout, None)


def _run_once(factory: Factory, config: settings, seed: int | None) -> None:
    __tracebackhide__ = True

    def make() -> RuleBasedStateMachine:
        return factory()

    # run_state_machine_as_test reads these attributes, as @seed would set them.
    make._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    try:
        run_state_machine_as_test(make, settings=config)
    except Divergence as found:
        stats.stats_for(found.machine).divergences[found.signature] += 1
        hooks.divergence_reported(found, seed)  # writes its trace, adds the replay note
        raise
    except BaseExceptionGroup as group:
        for each in _divergences_in(group):
            stats.stats_for(each.machine).divergences[each.signature] += 1
            hooks.divergence_reported(each, seed)
        raise


def _divergences_in(error: BaseException) -> list[Divergence]:
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
