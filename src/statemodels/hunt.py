"""``statemodels hunt``: the mutant catalogue as a benchmark table.

Every bundled system ships seeded bugs (``statemodels mutants``). A hunt runs the domain's
machine against one of them the way the mutant tests do -- ``catch_mutant`` at the ``ci``
budget, deterministic -- and records whether it was caught, how long the first divergence took
(and the whole hunt, shrinking included), how many examples ran before it, how many steps the
shrunk repro has and its signature::

    mutant                       caught  first s  total s  examples  steps  signature
    register/cas-blind           yes        0.01     0.09         1      1  RegisterMachine/Cas/...

``first s`` counts from the start of the hunt, building its world included (a pggit template
install); the parallel machines (concurrency-only mutants) report no examples to the hooks, so
their ``first s`` and ``examples`` are ``-``. The table is printed and written as JSON
(``--json PATH``; default ``.statemodels/hunt.json``). A mutant not caught is a row saying
so, not an exception: the table is the point. The servers a domain needs are started here
and stopped after (or attached to with ``STATEMODELS_REDIS_URL`` / ``STATEMODELS_PG_DSN``).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .engine import catch_mutant, hooks
from .errors import StatemodelsError

__all__ = ["DOMAINS", "HuntResult", "hunt", "render"]

#: How many steps a shrunk repro may have before catch_mutant complains: the table reports the
#: length instead, so the bound is only a guard against runaway examples.
_ANY_LENGTH = 10_000


@attrs.frozen
class HuntResult:
    domain: str
    mutant: str
    caught: bool
    first_seconds: float | None
    total_seconds: float
    examples: int
    steps: int | None
    signature: str | None
    error: str | None = None


class _Watch:
    """Hooks listener: examples until the first divergence, and when it came."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.examples = 0
        self.first: float | None = None
        self.examples_to_first: int | None = None

    def example_started(self, machine: Any) -> None:
        self.examples += 1

    def divergence_seen(self, machine: Any, divergence: Any, known: bool) -> None:
        if self.first is None and not known:
            self.first = time.perf_counter() - self.started
            self.examples_to_first = self.examples


Hunter = Callable[[str], Any]  # mutant -> Divergence (raises AssertionError if not caught)


# A concurrency-only mutant (each domain's ``CONCURRENT_ONLY``) is invisible to one client by
# design: it is hunted by the domain's parallel machine, with the runs per program its mutant
# test uses (a race shows in some runs of a program, not all).


@contextlib.contextmanager
def _register() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .infra.redis import RedisServer
    from .register import CONCURRENT_ONLY, MUTANTS, RegisterDriver, RegisterMachine
    from .register.parallel import (
        RegisterConnections,
        RegisterParallelDriver,
        RegisterParallelMachine,
    )

    server = RedisServer.from_env()

    def one(mutant: str) -> Any:
        if mutant not in CONCURRENT_ONLY:
            return catch_mutant(
                lambda: RegisterMachine(RegisterDriver(server, {mutant})),
                budget="ci",
                max_steps=_ANY_LENGTH,
            )
        with RegisterConnections(server) as kept:
            return catch_mutant(
                lambda: RegisterParallelMachine(
                    RegisterParallelDriver(server, {mutant}, connections=kept)
                ),
                budget="ci",
                max_steps=_ANY_LENGTH,
            )

    try:
        yield MUTANTS, one
    finally:
        server.stop()


@contextlib.contextmanager
def _pggit() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .infra import PostgresServer, TemplateJanitor
    from .pggit import CONCURRENT_ONLY, MUTANTS, install, machine_factory
    from .pggit.parallel import PggitConnections, PggitParallelDriver, PggitParallelMachine

    server = PostgresServer.from_env()

    def one(mutant: str) -> Any:
        chosen = frozenset({mutant})
        with TemplateJanitor(
            server, name="pggit_hunt", install=lambda conn: install(conn, chosen)
        ) as worlds:
            if mutant not in CONCURRENT_ONLY:
                return catch_mutant(machine_factory(worlds), budget="ci", max_steps=_ANY_LENGTH)
            dsn = worlds.fresh()
            try:
                with PggitConnections(dsn) as kept:
                    return catch_mutant(
                        lambda: PggitParallelMachine(PggitParallelDriver(kept), repeats=20),
                        budget="ci",
                        max_steps=_ANY_LENGTH,
                    )
            finally:
                worlds.release(dsn)

    try:
        yield MUTANTS, one
    finally:
        server.stop()


@contextlib.contextmanager
def _supervisor() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .supervisor import (
        CONCURRENT_ONLY,
        MUTANTS,
        RelayConfig,
        RelayPool,
        bundled_relay_machine,
    )
    from .supervisor.parallel import RelayParallelDriver, RelayParallelMachine

    def one(mutant: str) -> Any:
        with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
            if mutant not in CONCURRENT_ONLY:
                return catch_mutant(
                    lambda: bundled_relay_machine(pool=pool), budget="ci", max_steps=_ANY_LENGTH
                )
            return catch_mutant(
                lambda: RelayParallelMachine(RelayParallelDriver(pool), repeats=20),
                budget="ci",
                max_steps=_ANY_LENGTH,
            )

    yield MUTANTS, one


@contextlib.contextmanager
def _reload() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .reload import MUTANTS, FleetPool, ReloadMachine

    def one(mutant: str) -> Any:
        # The bundled orchestrator carries the orchestrator's bugs as well as the builder's.
        with FleetPool("process-compose", mutants={mutant}) as pool:
            return catch_mutant(lambda: ReloadMachine.on(pool), budget="ci", max_steps=_ANY_LENGTH)

    yield MUTANTS, one


@contextlib.contextmanager
def _reload_nats() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .infra.redis import RedisServer
    from .reload import NATS_MUTANTS, FleetPool, NatsFleet
    from .reload.natsmachine import NatsReloadMachine

    server = RedisServer.from_env()  # the collector's store

    def one(mutant: str) -> Any:
        fleet = NatsFleet.create(server.url, mutants={mutant})
        with FleetPool("process-compose", fleet=fleet) as pool:
            # Six-step examples, as the mutant tests: one writer + reload + check is four.
            return catch_mutant(
                lambda: NatsReloadMachine.on(pool),
                budget="ci",
                max_steps=_ANY_LENGTH,
                example_steps=6,
            )

    try:
        yield NATS_MUTANTS, one
    finally:
        server.stop()


#: status2 shrinking replays real waits (heartbeats, outages): past this bound the shortest
#: repro so far is kept, as the status2 mutant tests do for their slowest shrinkers.
_STATUS2_SHRINK_SECONDS = 60.0


@contextlib.contextmanager
def _status2() -> Iterator[tuple[dict[str, str], Hunter]]:
    from .infra.redis import RedisServer
    from .status2 import MUTANTS, bundled_machine, bundled_status2

    server = RedisServer.start()  # its own: the machine kills and restarts Redis (outages)

    def one(mutant: str) -> Any:
        with bundled_status2(server, mutants={mutant}) as svc:
            return catch_mutant(
                lambda: bundled_machine(svc, server),
                budget="ci",
                max_steps=_ANY_LENGTH,
                shrink_seconds=_STATUS2_SHRINK_SECONDS,
            )

    try:
        yield MUTANTS, one
    finally:
        server.stop()


DOMAINS: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "register": _register,
    "pggit": _pggit,
    "supervisor": _supervisor,
    "reload": _reload,
    "reload-nats": _reload_nats,
    "status2": _status2,
}


def hunt(
    domains: list[str] | None = None,
    *,
    only: list[str] | None = None,
    on_result: Callable[[HuntResult], None] | None = None,
) -> list[HuntResult]:
    """Hunt every mutant of ``domains`` (all by default; ``only``: these mutant names)."""
    chosen = domains or list(DOMAINS)
    for domain in chosen:
        if domain not in DOMAINS:
            raise StatemodelsError(f"unknown domain {domain!r}: choose from {', '.join(DOMAINS)}")
    results = []
    for domain in chosen:
        with DOMAINS[domain]() as (catalogue, one):
            for mutant in sorted(catalogue):
                if only and mutant not in only:
                    continue
                result = _hunt_one(domain, mutant, one)
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results


def _hunt_one(domain: str, mutant: str, one: Hunter) -> HuntResult:
    watch = _Watch()
    hooks.subscribe(watch)
    caught, steps, signature, error = False, None, None, None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # catch_mutant prints each repro
            found = one(mutant)
        caught, steps, signature = True, found.steps, found.signature
    except AssertionError as exc:  # catch_mutant: the machine passed against the mutant
        error = str(exc).splitlines()[0]
    finally:
        hooks.unsubscribe(watch)
    total = time.perf_counter() - watch.started
    return HuntResult(
        domain=domain,
        mutant=mutant,
        caught=caught,
        first_seconds=None if watch.first is None else round(watch.first, 3),
        total_seconds=round(total, 3),
        examples=watch.examples_to_first if watch.examples_to_first else watch.examples,
        steps=steps,
        signature=signature,
        error=error,
    )


HEADER = (
    f"{'mutant':<40} {'caught':>6} {'first s':>8} {'total s':>8} {'examples':>8} {'steps':>5}  "
    "signature"
)


def render(result: HuntResult) -> str:
    first = f"{result.first_seconds:.2f}" if result.first_seconds is not None else "-"
    return (
        f"{result.domain + '/' + result.mutant:<40} {'yes' if result.caught else 'NO':>6} "
        f"{first:>8} {result.total_seconds:>8.2f} {result.examples or '-':>8} "
        f"{result.steps if result.steps is not None else '-':>5}  "
        f"{result.signature or result.error or ''}"
    )


def write_json(results: list[HuntResult], path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [attrs.asdict(r) for r in results]
    summary = {
        "mutants": len(rows),
        "caught": sum(r.caught for r in results),
        "total_seconds": round(sum(r.total_seconds for r in results), 3),
    }
    out.write_text(json.dumps({"summary": summary, "hunts": rows}, indent=1) + "\n")
    return out
