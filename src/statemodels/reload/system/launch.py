"""Start a fleet under an orchestrator: the bundled one (Process Compose API) or supervisord.

Both give the reload driver the same handle, :class:`OrchestratorProcess`: a client, the
orchestrator's own process, and ``kill`` / ``relaunch`` for the "orchestrator killed during a
reload" scenario. The orchestrator dies with the test process; the services do not die with the
orchestrator (the contract: a killed orchestrator leaves its services running), but each exits
once a newer instance took its socket path, and :meth:`BundledFleet.remove` kills any left.

Example::

    with BundledFleet.create() as fleet, BundledOrchestrator.start(fleet) as pc:
        pc.client.restart("broker")
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, Self

import attrs

from ...engine import check_mutants
from ...errors import ServerError
from ...infra.processes import ProcessIdentity, Spawned, poll_until, spawn
from ...infra.supervisord import Supervisord, die_with_us
from ..orchestrators import (
    Orchestrator,
    OrchestratorError,
    ProcessComposeClient,
    SupervisordClient,
)
from . import orchestrator as _orchestrator_module
from .fleet import BundledFleet
from .natsfleet import NatsFleet
from .orchestrator import MUTANTS as ORCHESTRATOR_MUTANTS

__all__ = ["BundledOrchestrator", "FleetSupervisord", "OrchestratorProcess", "wait_all_running"]

_SCRIPT = str(Path(_orchestrator_module.__file__))


class OrchestratorProcess(Protocol):
    """An orchestrator we started: its client and its process."""

    @property
    def client(self) -> Orchestrator: ...

    def pids(self) -> set[int]: ...

    def identity(self) -> ProcessIdentity | None: ...

    def kill(self) -> None: ...

    def relaunch(self) -> None: ...

    def stop(self) -> None: ...


def wait_all_running(client: Orchestrator, names: Iterable[str], timeout: float) -> None:
    """Wait until the orchestrator lists every one of ``names`` as running.

    Raises:
        ServerError: not within ``timeout`` seconds (the last states are in the message).
    """
    wanted = set(names)
    last: dict[str, str] = {}

    def ready() -> bool:
        try:
            states = client.states()
        except OrchestratorError:
            return False
        last.clear()
        last.update({n: s.status for n, s in states.items()})
        return all(states.get(n) is not None and states[n].running for n in wanted)

    if not poll_until(ready, timeout=timeout):
        raise ServerError(
            f"{client.kind} at {client.endpoint} did not run {sorted(wanted)} within "
            f"{timeout:g}s (states: {last})"
        )


@attrs.define(eq=False)
class BundledOrchestrator:
    """The bundled Process Compose stand-in, serving ``<fleet>/pc/pc.sock``."""

    fleet: BundledFleet | NatsFleet
    config_path: Path
    process: Spawned
    client: ProcessComposeClient
    _stopped: bool = False

    @classmethod
    def start(
        cls,
        fleet: BundledFleet | NatsFleet,
        *,
        mutants: Iterable[str] = (),
        token: str | None = None,
        timeout: float = 10.0,
    ) -> BundledOrchestrator:
        chosen = check_mutants(mutants, ORCHESTRATOR_MUTANTS)
        home = fleet.directory / "pc"
        # A fresh orchestrator starts with an empty cache (the stale-binary mutant fills it).
        shutil.rmtree(home / "cache", ignore_errors=True)
        (home / "cache").mkdir(parents=True)
        config = {
            "socket": str(home / "pc.sock"),
            "token": token,
            "mutants": sorted(chosen),
            "cache_dir": str(home / "cache"),
            "backoff": 0.05,
            "max_restarts": 3,
            "services": fleet.orchestrated(),
        }
        config_path = home / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        client = ProcessComposeClient.unix(str(home / "pc.sock"), token=token)
        process = cls._spawn(config_path)
        orch = cls(fleet, config_path, process, client)
        try:
            orch._wait_ready(timeout)
        except BaseException:
            orch.stop()
            raise
        return orch

    @staticmethod
    def _spawn(config_path: Path) -> Spawned:
        argv = die_with_us([sys.executable, "-I", "-S", _SCRIPT, str(config_path)])
        log = config_path.with_name("orchestrator.log")
        with open(log, "ab") as out:
            return spawn(argv, name="bundled-orchestrator", stdout=out, stderr=out)

    def _wait_ready(self, timeout: float) -> None:
        try:
            wait_all_running(self.client, [s.name for s in self.fleet.services], timeout)
        except ServerError:
            log = self.config_path.with_name("orchestrator.log")
            tail = log.read_text(errors="replace")[-200:] if log.exists() else ""
            raise ServerError(
                f"the bundled orchestrator did not start the fleet within {timeout:g}s "
                f"(log: {tail!r})"
            ) from None

    def identity(self) -> ProcessIdentity | None:
        return self.process.identity if self.process.alive() else None

    def kill(self) -> None:
        """SIGKILL the orchestrator alone: its services keep running, as orphans."""
        from ...infra.processes import kill as sigkill

        sigkill(self.process.identity)
        self.process.wait(5.0)

    def relaunch(self) -> None:
        """Start the orchestrator again on the same config; it starts a fresh fleet."""
        if self.process.alive():
            self.kill()
        self.process = self._spawn(self.config_path)
        self._wait_ready(10.0)

    def pids(self) -> set[int]:
        return {self.process.pid}

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.process.terminate(timeout=3.0)
        finally:
            self.fleet.kill_leftovers()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@attrs.define(eq=False)
class FleetSupervisord:
    """A real supervisord running the fleet's services as programs."""

    fleet: BundledFleet
    server: Supervisord
    client: SupervisordClient
    _stopped: bool = False

    @classmethod
    def start(cls, fleet: BundledFleet, *, timeout: float = 10.0) -> FleetSupervisord:
        names = [s.name for s in fleet.services]
        programs = {}
        for priority, spec in enumerate(fleet.services, start=1):
            programs[spec.name] = {
                "command": " ".join(fleet.argv(spec.name)),
                "autostart": "true",
                "autorestart": "true",
                "startsecs": "0",
                "startretries": "2",
                "stopsignal": "TERM",
                "stopwaitsecs": "2",
                # dependencies first (supervisord starts lower priorities first)
                "priority": str(priority * 10 + 100 * len(spec.depends_on)),
                "stdout_logfile": "NONE",
                "stderr_logfile": "NONE",
            }
        server = Supervisord.launch(programs, wait_running=names, timeout=timeout)
        return cls(fleet, server, SupervisordClient(server.socket_path))

    def identity(self) -> ProcessIdentity | None:
        return self.server.process.identity if self.server.process.alive() else None

    def kill(self) -> None:
        from ...infra.processes import kill as sigkill

        sigkill(self.server.process.identity)
        self.server.process.wait(5.0)

    def relaunch(self) -> None:
        self.server.relaunch()

    def pids(self) -> set[int]:
        return {self.server.process.pid}

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.server.stop()
        finally:
            with contextlib.suppress(Exception):
                self.fleet.kill_leftovers()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
