"""Commands of the reload machine: plain frozen data, printed as the repro.

A fleet is driven by building new binaries, reloading services through their orchestrator, and
breaking things the seeds' Phase 6 breaks (a binary deleted after its build, the orchestrator
killed during a reload, a dependent stopped while its dependency reloads).
"""

from __future__ import annotations

import attrs

__all__ = [
    "BreakBinary",
    "Build",
    "CheckRecords",
    "Command",
    "Inspect",
    "KillOrchestratorDuringReload",
    "Reload",
    "ReloadMany",
    "Resources",
    "RestartOrchestrator",
    "StartService",
    "StartWriter",
    "StopService",
]


@attrs.frozen
class Inspect:
    """Read every version file (commit, timestamp, checksum): what is built right now."""


@attrs.frozen
class Build:
    """Build ``service``: a new binary and its version file, each written by rename."""

    service: str


@attrs.frozen
class Reload:
    """Restart ``service`` through its orchestrator; wait until it answers its health socket."""

    service: str


@attrs.frozen
class ReloadMany:
    """Restart ``services`` at the same time (parallel; all of them: all-at-once)."""

    services: tuple[str, ...]


@attrs.frozen
class BreakBinary:
    """Delete (``delete``) or corrupt (``corrupt``) the built binary of ``service``."""

    service: str
    how: str = "delete"


@attrs.frozen
class StopService:
    """Stop ``service`` through its orchestrator."""

    service: str


@attrs.frozen
class StartService:
    """Start the stopped ``service`` through its orchestrator."""

    service: str


@attrs.frozen
class KillOrchestratorDuringReload:
    """Ask for a reload of ``service`` and SIGKILL the orchestrator while it is being served."""

    service: str


@attrs.frozen
class RestartOrchestrator:
    """Start the (killed) orchestrator again on the same configuration."""


@attrs.frozen
class Resources:
    """Sample open fds and RSS of the long-lived processes (orchestrator, dependents)."""


@attrs.frozen
class StartWriter:
    """Start the data-integrity writer: sequence-numbered, timestamped records through the
    broker to the collector, one every 10 ms, until :class:`CheckRecords`."""


@attrs.frozen
class CheckRecords:
    """Stop the writer (it finishes the record in hand) and compare what the broker acked to
    the writer with what the store holds: lost, duplicated, out of order, retimed."""


Command = (
    Inspect
    | Build
    | Reload
    | ReloadMany
    | BreakBinary
    | StopService
    | StartService
    | KillOrchestratorDuringReload
    | RestartOrchestrator
    | Resources
    | StartWriter
    | CheckRecords
)
