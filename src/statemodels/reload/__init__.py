"""The reload domain: binary hot-reload under a real orchestrator, the new binary proven running.

A fleet of small C services (``system/service.c``), each build's commit and timestamp compiled
in, runs under supervisord (XML-RPC) or under the bundled orchestrator (Process Compose's REST
API; :class:`ProcessComposeClient` drives a real ``process-compose`` the same way). The machine
builds, reloads, reloads in parallel and in cascade, reloads rapidly, deletes binaries, kills
the orchestrator mid-reload, and judges every step by what the processes really execute
(``sha256(/proc/<pid>/exe)``) and by what the services report themselves.

The NATS fleet (:class:`NatsFleet`) reloads the real ``nats-server`` with nats-py dependents
and a JetStream collector into Redis (:class:`NatsReloadMachine`, the seeds' Phase 7).

Example::

    with FleetPool("supervisord") as pool:
        run_machine(lambda: ReloadMachine.on(pool))
    with FleetPool("process-compose", fleet=NatsFleet.create(redis_url)) as pool:
        run_machine(lambda: NatsReloadMachine.on(pool))
"""

from .commands import (
    BreakBinary,
    Build,
    CheckRecords,
    Inspect,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    Resources,
    RestartOrchestrator,
    StartService,
    StartWriter,
    StopService,
)
from .driver import ReloadDriver
from .machine import ReloadMachine
from .model import ReloadModel, Tolerances
from .natsmachine import NatsReloadMachine
from .orchestrators import OrchestratorError, ProcessComposeClient, ServiceState, SupervisordClient
from .pool import KINDS, MUTANTS, FleetPool
from .system.fleet import BUNDLED_SERVICES, BundledFleet, ServiceSpec
from .system.launch import BundledOrchestrator, FleetSupervisord
from .system.natsfleet import NATS_MUTANTS, NatsFleet, find_nats_server

__all__ = [
    "BUNDLED_SERVICES",
    "KINDS",
    "MUTANTS",
    "NATS_MUTANTS",
    "BreakBinary",
    "Build",
    "BundledFleet",
    "BundledOrchestrator",
    "CheckRecords",
    "FleetPool",
    "FleetSupervisord",
    "Inspect",
    "KillOrchestratorDuringReload",
    "NatsFleet",
    "NatsReloadMachine",
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
    "StartWriter",
    "StopService",
    "SupervisordClient",
    "Tolerances",
    "find_nats_server",
]
