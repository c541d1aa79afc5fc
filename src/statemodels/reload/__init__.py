"""The reload domain: binary hot-reload under a real orchestrator, the new binary proven running.

A fleet of small C services (``system/service.c``), each build's commit and timestamp compiled
in, runs under supervisord (XML-RPC) or under the bundled orchestrator (Process Compose's REST
API; :class:`ProcessComposeClient` drives a real ``process-compose`` the same way). The machine
builds, reloads, reloads in parallel and in cascade, reloads rapidly, deletes binaries, kills
the orchestrator mid-reload, and judges every step by what the processes really execute
(``sha256(/proc/<pid>/exe)``) and by what the services report themselves.

Example::

    with FleetPool("supervisord") as pool:
        run_machine(lambda: ReloadMachine.on(pool))
"""

from .commands import (
    BreakBinary,
    Build,
    Inspect,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    Resources,
    RestartOrchestrator,
    StartService,
    StopService,
)
from .driver import ReloadDriver
from .machine import ReloadMachine
from .model import ReloadModel, Tolerances
from .orchestrators import OrchestratorError, ProcessComposeClient, ServiceState, SupervisordClient
from .pool import KINDS, MUTANTS, FleetPool
from .system.fleet import BUNDLED_SERVICES, BundledFleet, ServiceSpec
from .system.launch import BundledOrchestrator, FleetSupervisord

__all__ = [
    "BUNDLED_SERVICES",
    "KINDS",
    "MUTANTS",
    "BreakBinary",
    "Build",
    "BundledFleet",
    "BundledOrchestrator",
    "FleetPool",
    "FleetSupervisord",
    "Inspect",
    "KillOrchestratorDuringReload",
    "OrchestratorError",
    "ProcessComposeClient",
    "Reload",
    "ReloadDriver",
    "ReloadMachine",
    "ReloadMany",
    "ReloadModel",
    "Resources",
    "RestartOrchestrator",
    "ServiceSpec",
    "ServiceState",
    "StartService",
    "StopService",
    "SupervisordClient",
    "Tolerances",
]
