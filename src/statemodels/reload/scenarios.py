"""The seeds' regression plan, by name: fixed sequences of the machine's own commands.

A user of the old Taskfile finds each ``test:reload:*`` task here under the same name. Every
scenario runs on a fleet reset to its initial state, through the same model, driver and view
invariant as the generated search, so a scenario passes only if every step of it holds the whole
contract. :func:`report` prints the seeds' report shape::

    === Binary Hot-Reload Regression Test Report ===
    Phase 3: Single Reloads
      PASS test:reload:single:broker      (0.03s)
    ...
    TOTAL: 11/11 passed, 0 failed

Example::

    with FleetPool("process-compose") as pool:
        results = [run_scenario(name, pool) for name in SCENARIOS]
    print(report(results))
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import Any

import attrs

from ..engine import Divergence
from ..strategies.reload import Cascade, Rapid
from .commands import (
    BreakBinary,
    Build,
    CheckRecords,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    RestartOrchestrator,
    StartService,
    StartWriter,
    StopService,
)
from .machine import ReloadMachine
from .natsmachine import NatsReloadMachine
from .system.natsfleet import NatsFleet

__all__ = ["NATS_SCENARIOS", "SCENARIOS", "Scenario", "ScenarioResult", "report", "run_scenario"]


@attrs.frozen
class Scenario:
    """One named task of the seeds' plan: its phase and its steps."""

    name: str
    phase: str
    steps: tuple[Any, ...]


def _single(service: str) -> Scenario:
    return Scenario(
        f"test:reload:single:{service}",
        "Phase 3: Single Reloads",
        (Build(service), Reload(service)),
    )


_ALL = ("broker", "cache", "relay")

#: The bundled fleet's scenarios, in the seeds' order (phases 3-6).
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _single("broker"),
        _single("relay"),
        _single("cache"),
        Scenario(
            "test:reload:multi:parallel",
            "Phase 4: Multi Reloads",
            (Build("relay"), Build("cache"), ReloadMany(("cache", "relay"))),
        ),
        Scenario(
            "test:reload:multi:cascade",
            "Phase 4: Multi Reloads",
            (Build("broker"), Build("relay"), Cascade("broker")),
        ),
        Scenario(
            "test:reload:multi:all",
            "Phase 4: Multi Reloads",
            (*(Build(n) for n in _ALL), ReloadMany(_ALL)),
        ),
        Scenario("test:reload:rapid:broker", "Phase 5: Rapid Reloads", (Rapid("broker", 10),)),
        Scenario("test:reload:rapid:relay", "Phase 5: Rapid Reloads", (Rapid("relay", 10),)),
        Scenario(
            "test:reload:fail:corrupt",
            "Phase 6: Failure Scenarios",
            (
                Build("broker"),
                BreakBinary("broker", "delete"),
                Reload("broker"),
                Build("broker"),
                Reload("broker"),
            ),
        ),
        Scenario(
            "test:reload:fail:socket",
            "Phase 6: Failure Scenarios",
            (KillOrchestratorDuringReload("broker"), Reload("cache"), RestartOrchestrator()),
        ),
        Scenario(
            "test:reload:fail:deadlock",
            "Phase 6: Failure Scenarios",
            (StopService("relay"), Build("broker"), Reload("broker"), StartService("relay")),
        ),
    )
}


#: The NATS fleet's (the real nats-server; a JetStream collector into Redis; run them on a pool
#: made with ``fleet=NatsFleet...``): a broker reload, and Phase 7 -- records flow while the
#: collector, then the broker, is reloaded; the store must hold every record the broker acked,
#: once, in order, with its timestamp.
NATS_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _single("nats"),
        Scenario(
            "test:reload:data:collector",
            "Phase 7: Data Integrity",
            (StartWriter(), Reload("collector"), CheckRecords()),
        ),
        Scenario(
            "test:reload:data:broker",
            "Phase 7: Data Integrity",
            (StartWriter(), Build("nats"), Reload("nats"), CheckRecords()),
        ),
    )
}


@attrs.frozen
class ScenarioResult:
    """How one scenario went: passed, seconds, and the divergence if it failed."""

    name: str
    phase: str
    passed: bool
    seconds: float
    divergence: str | None = None


def run_scenario(name: str, pool: Any, **machine_options: Any) -> ScenarioResult:
    """Run scenario ``name`` on ``pool``'s fleet (reset first); never raises a divergence."""
    scenario = SCENARIOS.get(name) or NATS_SCENARIOS[name]
    start = time.perf_counter()
    kind = NatsReloadMachine if isinstance(pool.fleet, NatsFleet) else ReloadMachine
    machine = kind.on(pool, **machine_options)
    try:
        machine.inspect()
        machine.model_view_matches_real()
        for step in scenario.steps:
            machine.perform(step)
            machine.model_view_matches_real()
    except Divergence as found:
        seconds = round(time.perf_counter() - start, 3)
        return ScenarioResult(name, scenario.phase, False, seconds, str(found))
    finally:
        machine.teardown()
    return ScenarioResult(name, scenario.phase, True, round(time.perf_counter() - start, 3))


def report(results: Sequence[ScenarioResult], *, orchestrator: str = "") -> str:
    """The seeds' report: per phase, each task with PASS/FAIL and its duration; the total."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    total = sum(r.seconds for r in results)
    lines = ["=== Binary Hot-Reload Regression Test Report ===", f"Date: {now}"]
    if orchestrator:
        lines.append(f"Orchestrator: {orchestrator}")
    lines.append(f"Duration: {total:.2f}s")
    phase = None
    width = max((len(r.name) for r in results), default=0)
    for result in results:
        if result.phase != phase:
            phase = result.phase
            lines += ["", phase]
        mark = "PASS" if result.passed else "FAIL"
        lines.append(f"  {mark} {result.name:<{width}} ({result.seconds:.2f}s)")
        if result.divergence:
            lines.append("       " + result.divergence.splitlines()[0])
    passed = sum(r.passed for r in results)
    lines += ["", f"TOTAL: {passed}/{len(results)} passed, {len(results) - passed} failed"]
    return "\n".join(lines)
