"""pggit machine: examples/s and steps/s at a budget, reset time per example, and the speed-up of
template clones over a naive reset that creates a fresh database and runs the full install.

Both variants run the same machine with the same derandomized examples, so their step counts
match and the ratio is the reset's share of the run:

- **template clone** (what the tests use): ``TemplateJanitor`` clones an installed template per
  example (prefetched while the previous example runs; verified against the template's catalog).
- **naive**: ``CREATE DATABASE ... TEMPLATE template0`` and the full install script per example.

Starts a private server unless ``STATEMODELS_PG_DSN`` is set.

    python benchmarks/bench_pggit.py [--budget ci] [--resets 30]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from statemodels.engine import get_budget, run_machine
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import PggitMachine, Worlds, install, machine_factory

_serial = itertools.count()


class NaiveWorlds:
    """A fresh database per example by running the whole install script into it."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.admin = server.connect()

    def fresh(self) -> str:
        name = f"sm_pggit_naive_{next(_serial)}_{os.getpid()}"
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = self.server.dsn_for(name)
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            install(conn)
            conn.commit()
        return dsn

    def release(self, dsn: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self.admin.execute(drop.format(sql.Identifier(str(name))))

    def close(self) -> None:
        self.admin.close()


class Timed:
    """Wraps worlds: times every ``fresh()`` as the example sees it."""

    def __init__(self, inner: Worlds) -> None:
        self.inner = inner
        self.fresh_s: list[float] = []

    def fresh(self) -> str:
        start = time.perf_counter()
        dsn = self.inner.fresh()
        self.fresh_s.append(time.perf_counter() - start)
        return dsn

    def release(self, dsn: str) -> None:
        self.inner.release(dsn)


def run(worlds: Worlds, budget: str) -> dict[str, Any]:
    timed = Timed(worlds)
    machines: list[PggitMachine] = []
    factory = machine_factory(timed)

    def make() -> PggitMachine:
        machines.append(factory())
        return machines[-1]

    start = time.perf_counter()
    run_machine(make, budget=budget, database=None, derandomize=True)
    wall = time.perf_counter() - start
    steps = sum(len(m.journal) for m in machines)
    return {
        "wall": wall,
        "examples": len(machines),
        "steps": steps,
        "reset_ms": 1e3 * statistics.median(timed.fresh_s),
    }


def reset_latency(fresh: Callable[[], str], release: Callable[[str], None], n: int) -> float:
    """Median ms of one synchronous fresh() + release(), back to back (no overlap)."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        release(fresh())
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="ci")
    parser.add_argument("--resets", type=int, default=30)
    args = parser.parse_args()
    budget = get_budget(args.budget)
    print(f"pggit machine, budget {budget.name} ({budget.max_examples} x {budget.steps} steps)")
    with PostgresServer.from_env() as pg:
        naive = NaiveWorlds(pg)
        try:
            with TemplateJanitor(pg, name="pggit_bench", install=install) as janitor:
                fast = run(janitor, budget.name)
                clone_ms = reset_latency(janitor.fresh, janitor.release, args.resets)
            slow = run(naive, budget.name)
            naive_ms = reset_latency(naive.fresh, naive.release, args.resets)
        finally:
            naive.close()
    for label, r in (("template clone", fast), ("naive install", slow)):
        print(
            f"{label:15} {r['examples']:4d} examples {r['steps']:5d} steps in {r['wall']:6.2f} s"
            f"  -> {r['examples'] / r['wall']:6.1f} examples/s {r['steps'] / r['wall']:7.1f}"
            f" steps/s; reset seen by an example (median) {r['reset_ms']:6.2f} ms"
        )
    print(
        f"reset, back to back (median of {args.resets}): clone + drop {clone_ms:.1f} ms, "
        f"create + install + drop {naive_ms:.1f} ms -> {naive_ms / clone_ms:.1f}x"
    )
    print(f"run time ratio naive / clone at {budget.name}: {slow['wall'] / fast['wall']:.2f}x")


if __name__ == "__main__":
    main()
