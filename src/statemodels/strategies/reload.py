"""Strategies for the reload machine: every step it can take now, as one ``one_of``.

:func:`reload_actions` is built from what the model allows at this moment (which services run,
which binaries are broken, whether the orchestrator is up), simplest first, so shrinking ends on
short, plain repros. Commands that need something (a running service to stop, a stopped one to
start, an intact fleet to kill the orchestrator under) are drawn only when it exists.

Example::

    >>> action = reload_actions(model).example()
    >>> type(action).__name__ in {"Build", "Reload", "ReloadMany", "Resources", ...}
    True
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
from hypothesis import strategies as st

from ..reload.commands import (
    BreakBinary,
    Build,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    Resources,
    RestartOrchestrator,
    StartService,
    StopService,
)

__all__ = ["BreakThenReload", "Cascade", "Rapid", "reload_actions"]


@attrs.frozen
class Cascade:
    """Reload ``service``, wait until it is healthy, then reload each of its dependents."""

    service: str


@attrs.frozen
class BreakThenReload:
    """The seeds' corrupt-binary failure: break the built binary of ``service``, reload it."""

    service: str
    how: str = "delete"


@attrs.frozen
class Rapid:
    """``times`` build + reload cycles of ``service`` in a row, then a resource sample."""

    service: str
    times: int = 10


def reload_actions(
    *,
    services: tuple[str, ...],
    running: tuple[str, ...],
    stopped: tuple[str, ...],
    reloadable: tuple[str, ...],
    broken: tuple[str, ...],
    has_dependents: tuple[str, ...],
    orchestrator_up: bool,
    corrupt: bool = True,
    failures: bool = True,
) -> st.SearchStrategy[Any]:
    """One step of the reload machine, from what the model says is possible now. Cached."""
    return _actions(
        services,
        running,
        stopped,
        reloadable,
        broken,
        has_dependents,
        orchestrator_up,
        corrupt,
        failures,
    )


@functools.lru_cache(maxsize=512)
def _actions(
    services: tuple[str, ...],
    running: tuple[str, ...],
    stopped: tuple[str, ...],
    reloadable: tuple[str, ...],
    broken: tuple[str, ...],
    has_dependents: tuple[str, ...],
    orchestrator_up: bool,
    corrupt: bool,
    failures: bool,
) -> st.SearchStrategy[Any]:
    if not orchestrator_up:
        # The orchestrator is gone: a reload must fail fast; restarting it recovers.
        return st.one_of(st.just(RestartOrchestrator()), st.sampled_from(services).map(Reload))
    choices: list[st.SearchStrategy[Any]] = []
    if reloadable:
        choices.append(st.sampled_from(reloadable).map(Reload))
    choices.append(st.sampled_from(services).map(Build))
    choices.append(st.just(Resources()))
    if len(reloadable) >= 2:
        many = st.lists(
            st.sampled_from(reloadable), min_size=2, max_size=len(reloadable), unique=True
        )
        choices.append(many.map(lambda names: ReloadMany(tuple(sorted(names)))))
    cascadable = tuple(n for n in has_dependents if n in reloadable)
    if cascadable:
        choices.append(st.sampled_from(cascadable).map(Cascade))
    if running:
        choices.append(st.sampled_from(running).map(StopService))
    startable = tuple(n for n in stopped if n not in broken)
    if startable:
        choices.append(st.sampled_from(startable).map(StartService))
    if reloadable:
        choices.append(st.builds(Rapid, st.sampled_from(reloadable), st.just(3)))
    if failures:
        intact = tuple(n for n in running if n not in broken)
        if intact:
            hows = ("delete", "corrupt") if corrupt else ("delete",)
            broken_by = st.sampled_from(hows)
            choices.append(st.builds(BreakThenReload, st.sampled_from(intact), broken_by))
            choices.append(st.builds(BreakBinary, st.sampled_from(intact), broken_by))
        if broken:
            choices.append(st.sampled_from(broken).map(Reload))
        if len(running) == len(services) and not broken:
            choices.append(st.sampled_from(running).map(KillOrchestratorDuringReload))
    return st.one_of(choices)
