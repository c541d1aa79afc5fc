"""Hook points: where the engine tells listeners (traces, report, live progress) what it did.

The engine stays domain-free and knows nothing of files, terminals or HTML: it calls the five
functions below at fixed points, and whoever cares subscribes with :func:`subscribe`. With no
listener each call is a loop over an empty list -- nothing measurable next to a real step.

The points, in the order a run meets them::

    run_started(budget)                 run_machine begins (once per run, before any example)
    example_started(machine)            a machine was built for a new example
    step_done(machine, command, secs)   one command ran on the real system
    divergence_seen(machine, d, known)  a step or check diverged (raised next, unless known)
    divergence_reported(d, seed)        the shrunk divergence leaves the run (it fails)

``divergence_seen`` fires on every diverging example, also the many Hypothesis runs while it
shrinks; a listener keeps it cheap (attach context, count) and does its real work -- writing a
trace -- in ``divergence_reported``, which fires once per divergence a run reports, or for a
known one when it is first searched past.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .budgets import Budget
    from .divergence import Divergence

__all__ = [
    "Listener",
    "divergence_reported",
    "divergence_seen",
    "example_started",
    "run_started",
    "step_done",
    "subscribe",
    "unsubscribe",
]

log = logging.getLogger(__name__)


class Listener(Protocol):
    """What a subscriber may implement; every method is optional (looked up by name)."""

    def run_started(self, budget: Budget) -> None: ...

    def example_started(self, machine: Any) -> None: ...

    def step_done(self, machine: Any, command: Any, seconds: float) -> None: ...

    def divergence_seen(self, machine: Any, divergence: Divergence, known: bool) -> None: ...

    def divergence_reported(self, divergence: Divergence, seed: int | None) -> None: ...


_listeners: list[Any] = []


def subscribe(listener: Any) -> None:
    """Add a listener (idempotent: one object is never called twice per event)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Any) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _emit(event: str, *args: Any) -> None:
    for listener in tuple(_listeners):
        method = getattr(listener, event, None)
        if method is None:
            continue
        try:
            method(*args)
        except Exception:
            # A broken listener (a full disk for traces, a closed terminal) must never turn into
            # a divergence or hide one: it is logged and the run goes on.
            log.exception("statemodels: %r failed in %s", listener, event)


def run_started(budget: Budget) -> None:
    _emit("run_started", budget)


def example_started(machine: Any) -> None:
    _emit("example_started", machine)


def step_done(machine: Any, command: Any, seconds: float) -> None:
    _emit("step_done", machine, command, seconds)


def divergence_seen(machine: Any, divergence: Divergence, known: bool) -> None:
    _emit("divergence_seen", machine, divergence, known)


def divergence_reported(divergence: Divergence, seed: int | None) -> None:
    _emit("divergence_reported", divergence, seed)
