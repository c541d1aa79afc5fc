"""A bundled fleet under an orchestrator, reused across examples after a verified reset.

Starting an orchestrator and its fleet costs most of a second; an example of the reload machine
costs a few hundred milliseconds. :class:`FleetPool` keeps one fleet per test and, before each
example, puts it back in the initial state the model assumes -- orchestrator up, every binary
intact, every service running its current build and answering as itself, every dependent
connected to its dependency, no zombie -- repairing what the last example broke (a rebuild, a
restart) and, when a repair does not verify, starting orchestrator and fleet afresh. The reset
is verified, never assumed: a pool that cannot verify it raises
:class:`~statemodels.errors.ServerError`.

Example::

    with FleetPool("process-compose", mutants={"restart-noop"}) as pool:
        catch_mutant(lambda: ReloadMachine.on(pool), budget="ci", max_steps=4)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Self

from ..engine import check_mutants
from ..errors import ConfigurationError, ServerError
from ..infra.processes import exe_sha256, live_identity, poll_until, sha256_file
from .driver import ReloadDriver, _zombie_children
from .orchestrators import OrchestratorError
from .system.fleet import BUILDER_MUTANTS, BUNDLED_SERVICES, BundledFleet, ServiceSpec
from .system.launch import BundledOrchestrator, FleetSupervisord, OrchestratorProcess
from .system.natsfleet import NatsFleet
from .system.orchestrator import MUTANTS as ORCHESTRATOR_MUTANTS

__all__ = ["KINDS", "MUTANTS", "FleetPool"]

KINDS = ("supervisord", "process-compose")

#: Every seeded bug of the bundled reload system: the orchestrator's and the build step's.
MUTANTS: dict[str, str] = {**ORCHESTRATOR_MUTANTS, **BUILDER_MUTANTS}


class FleetPool:
    """One bundled fleet under ``kind`` (``supervisord`` or ``process-compose``), reset per use.

    Mutants of the orchestrator need the bundled orchestrator (``process-compose``); supervisord
    is a real third-party program and carries none.
    """

    def __init__(
        self,
        kind: str,
        *,
        mutants: Iterable[str] = (),
        services: tuple[ServiceSpec, ...] = BUNDLED_SERVICES,
        health_within: float = 5.0,
        fleet: NatsFleet | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigurationError(
                f"unknown orchestrator {kind!r}: choose one of {', '.join(KINDS)}"
            )
        chosen = check_mutants(mutants, MUTANTS)
        orchestrated = chosen & set(ORCHESTRATOR_MUTANTS)
        if orchestrated and kind != "process-compose":
            raise ConfigurationError(
                f"mutants {sorted(orchestrated)} live in the bundled orchestrator: use "
                "FleetPool('process-compose', ...)"
            )
        self.kind = kind
        self.health_within = health_within
        self._orchestrator_mutants = orchestrated
        if fleet is not None and kind != "process-compose":
            fleet.remove()
            raise ConfigurationError(
                "the NATS fleet runs under the bundled orchestrator: use "
                "FleetPool('process-compose', fleet=...)"
            )
        # The pool owns the fleet from here (close() removes it).
        self.fleet: BundledFleet | NatsFleet = fleet or BundledFleet.create(
            services, mutants=chosen & set(BUILDER_MUTANTS)
        )
        self.orchestrator: OrchestratorProcess | None = None
        try:
            self._launch()
        except BaseException:
            self.close()
            raise

    def _launch(self) -> None:
        if self.orchestrator is not None:
            self.orchestrator.stop()
        self.fleet.kill_leftovers()
        self._repair_binaries()
        if self.kind == "supervisord":
            assert isinstance(self.fleet, BundledFleet)  # the NATS fleet is refused above
            self.orchestrator = FleetSupervisord.start(self.fleet)
        else:
            self.orchestrator = BundledOrchestrator.start(
                self.fleet, mutants=self._orchestrator_mutants
            )

    def pids(self) -> set[int]:
        """The pool's long-lived processes: its orchestrator and every process running a build
        of its fleet (orphans of a killed orchestrator included: :meth:`close` kills them)."""
        own = self.orchestrator.pids() if self.orchestrator is not None else set()
        return own | {p.pid for p in self.fleet.leftovers()}

    def acquire(self) -> ReloadDriver:
        """A driver on the fleet in its initial state."""
        if not self._repair():
            self._launch()
            if not self._verified(within=5.0):
                raise ServerError(
                    f"the bundled fleet under {self.kind} did not reach its initial state after a "
                    f"fresh start (fleet in {str(self.fleet.directory)!r})"
                )
        assert self.orchestrator is not None
        return ReloadDriver(
            self.fleet, self.orchestrator, health_within=self.health_within, on_close=self._release
        )

    def _release(self) -> None:
        """End of an example: its writer stops; if it killed the orchestrator, its orphaned
        services go now (the next example starts a fresh orchestrator), so none outlives it."""
        if isinstance(self.fleet, NatsFleet):
            self.fleet.stop_writer()
        if self.orchestrator is not None and self.orchestrator.identity() is None:
            self.fleet.kill_leftovers()

    def _repair(self) -> bool:
        orch = self.orchestrator
        if orch is None or orch.identity() is None:
            return False
        try:
            self._repair_binaries()
            states = orch.client.states()
            for spec in self.fleet.services:  # dependencies first
                state = states.get(spec.name)
                if (
                    state is None
                    or not state.running
                    or not self._runs_its_build(spec.name, state.pid)
                ):
                    orch.client.restart(spec.name)
        except (OrchestratorError, ServerError, OSError):
            return False
        return self._verified(within=2.0)

    def _repair_binaries(self) -> None:
        """Rebuild every binary that the last example deleted, corrupted or tore."""
        for spec in self.fleet.services:
            if isinstance(self.fleet, NatsFleet) and spec.name not in self.fleet.built:
                continue  # a client: nothing built to repair
            version = self.fleet.read_version(spec.name)
            try:
                intact = sha256_file(self.fleet.binary(spec.name)) == version.get("checksum")
            except OSError:
                intact = False
            if not intact:
                self.fleet.build(spec.name, honest=True)

    def _runs_its_build(self, name: str, pid: int) -> bool:
        """``pid`` lives and runs the build ``name``'s version file describes, so every example
        starts with each service on its current build (whatever the last one built and did not
        reload)."""
        if live_identity(pid) is None:
            return False
        if isinstance(self.fleet, NatsFleet):
            return self.fleet.runs_its_build(name, pid)
        try:
            return exe_sha256(pid) == self.fleet.read_version(name).get("checksum")
        except OSError:
            return False

    def _verified(self, within: float) -> bool:
        orch = self.orchestrator
        assert orch is not None

        def clean() -> bool:
            ident = orch.identity()
            if ident is None or _zombie_children(ident):
                return False
            try:
                states = orch.client.states()
            except OrchestratorError:
                return False
            pids = {}
            for spec in self.fleet.services:
                state = states.get(spec.name)
                if (
                    state is None
                    or not state.running
                    or not self._runs_its_build(spec.name, state.pid)
                ):
                    return False
                report = self.fleet.report(spec.name)
                if report is None or report.get("pid") != state.pid:
                    return False
                pids[spec.name] = state.pid
            for spec in self.fleet.services:
                for dep in spec.depends_on[:1]:
                    report = self.fleet.report(spec.name)
                    if report is None or report.get("dep_pid") != pids[dep]:
                        return False
            return True

        return poll_until(clean, timeout=within)

    def close(self) -> None:
        try:
            if self.orchestrator is not None:
                with contextlib.suppress(Exception):
                    self.orchestrator.stop()
        finally:
            self.fleet.remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
