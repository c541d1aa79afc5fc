"""Example budgets: how hard a run searches. ``smoke`` for a quick look, ``ci`` for every push,
``deep`` for the weekly search.

A budget sets Hypothesis's ``max_examples`` and ``stateful_step_count`` plus the engine's
per-step timeout. Each is also registered as a Hypothesis settings profile
(``statemodels-smoke`` ...), so ``settings.load_profile("statemodels-ci")`` works in user code.
``deep`` is time-boxed: the runner keeps starting fresh runs with new seeds, ``chunk`` examples
each, until ``minutes`` are spent.

The active budget is process-wide: the pytest plugin activates the one chosen by ``--budget`` or
``STATEMODELS_BUDGET``; machines and ``run_machine`` read it.

Example::

    >>> get_budget("ci").max_examples
    60
    >>> get_budget("turbo")
    Traceback (most recent call last):
    ...
    statemodels.errors.ConfigurationError: unknown budget 'turbo': choose one of smoke, ci, deep
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, settings

from ..errors import ConfigurationError

__all__ = ["BUDGETS", "Budget", "activate", "active", "get_budget", "hypothesis_settings"]


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigurationError(f"Budget.{attribute.name} must be > 0 (got {value!r})")


@attrs.frozen
class Budget:
    """How much searching one machine run may do.

    Attributes:
        name: ``smoke``, ``ci``, ``deep`` or a name of your own.
        max_examples: examples (fresh worlds) per run; for ``deep``, per chunk.
        steps: maximum steps (commands) per example.
        step_timeout: seconds one driver call may take before it counts as a hang.
        minutes: for time-boxed budgets, how long to keep searching; ``None`` runs once.
    """

    name: str
    max_examples: int = attrs.field(validator=_positive)
    steps: int = attrs.field(validator=_positive)
    step_timeout: float = attrs.field(default=10.0, validator=_positive)
    minutes: float | None = None

    def with_minutes(self, minutes: float | None) -> Budget:
        """The same budget, time-boxed to ``minutes`` (``None`` keeps the current box)."""
        if minutes is None:
            return self
        if not (math.isfinite(minutes) and minutes > 0):
            raise ConfigurationError(
                f"--budget-minutes must be a finite number > 0 (got {minutes!r})"
            )
        return attrs.evolve(self, minutes=minutes)


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", max_examples=10, steps=15),
    "ci": Budget("ci", max_examples=60, steps=30),
    "deep": Budget("deep", max_examples=200, steps=60, step_timeout=30.0, minutes=10.0),
}

# Slow real systems make these health checks fire for reasons that are not test bugs.
_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much)

# No explain phase: it replays the shrunk example many times against the real system to annotate
# which steps could vary. Measured on the pggit machine it was over 90% of the time to catch a
# mutant (72.8 s of 78 s); the divergence table and journal already say what went wrong.
_PHASES = tuple(p for p in Phase if p is not Phase.explain)


def hypothesis_settings(budget: Budget) -> settings:
    """The Hypothesis settings a budget stands for (``deadline=None``: the engine times steps)."""
    return settings(
        max_examples=budget.max_examples,
        stateful_step_count=budget.steps,
        deadline=None,
        suppress_health_check=_SUPPRESSED,
        phases=_PHASES,
    )


for _budget in BUDGETS.values():
    settings.register_profile(f"statemodels-{_budget.name}", hypothesis_settings(_budget))


def get_budget(name: str | Budget) -> Budget:
    """Look a budget up by name; an unknown name is a one-line error listing the valid ones."""
    if isinstance(name, Budget):
        return name
    try:
        return BUDGETS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown budget {name!r}: choose one of {', '.join(BUDGETS)} "
            "(--budget or STATEMODELS_BUDGET)"
        ) from None


_active: Budget = BUDGETS["smoke"]


def activate(budget: str | Budget) -> Budget:
    """Make ``budget`` the process-wide default for machines and ``run_machine``."""
    global _active
    _active = get_budget(budget)
    return _active


def active() -> Budget:
    """The budget machines use when none is given."""
    return _active
