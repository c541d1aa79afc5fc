"""Concurrency-only pggit mutants: check-then-act inside a function, between two statements.

With one client nothing happens between the check and the act, so the sequential machine --
``ConcurrentCommits`` included, which only overlaps commits after each one returned -- cannot see
them (asserted below: if it ever does, the claim "only a concurrent history catches it" is
wrong). Under read committed, two clients' statements interleave inside the functions; the
history then has two successes no sequential order explains. (Under serializable the same races
end in 40001: the isolation level hides these bugs, which is why the hunts run read committed.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import CONCURRENT_ONLY, install, machine_factory
from statemodels.pggit.parallel import (
    PggitConnections,
    PggitParallelDriver,
    PggitParallelMachine,
)

pytestmark = pytest.mark.mutant

#: mutant -> the command two clients both saw succeed on one branch (the model allows one).
SYMPTOMS = {
    "delete-check-then-act": "DeleteBranch",
    "create-check-then-upsert": "CreateBranch",
}


def test_every_concurrency_only_mutant_has_a_hunt() -> None:
    assert sorted(SYMPTOMS) == sorted(CONCURRENT_ONLY)


@pytest.fixture(params=sorted(CONCURRENT_ONLY))
def mutant_worlds(
    request: pytest.FixtureRequest, statemodels_postgres: PostgresServer
) -> Iterator[tuple[str, TemplateJanitor]]:
    chosen = frozenset({request.param})
    with TemplateJanitor(
        statemodels_postgres, name="pggit_par_mut", install=lambda conn: install(conn, chosen)
    ) as worlds:
        yield request.param, worlds


def test_the_parallel_machine_catches(mutant_worlds: tuple[str, TemplateJanitor]) -> None:
    mutant, worlds = mutant_worlds
    dsn = worlds.fresh()
    try:
        with PggitConnections(dsn) as connections:
            found = catch_mutant(
                # A race shows in about one run in four: 20 runs per program, so a shrunk
                # candidate that still races is seldom taken for one that does not.
                lambda: PggitParallelMachine(PggitParallelDriver(connections), repeats=20),
                budget="ci",
                max_steps=6,
            )
    finally:
        worlds.release(dsn)
    # The operation that cannot be placed is the first *completion* no order explains: usually
    # the racing command, sometimes a read after it (when the other racer completed later).
    assert found.signature.startswith("PggitParallelMachine/")
    assert found.signature.endswith("/history:not-linearizable")
    # The symptom: two clients' answers to the racing command both say "done" -- never a
    # divergence of one client alone (that would be a false alarm of the machine).
    entries = found.journal.entries
    racing = [
        e for e in entries if SYMPTOMS[mutant] + "(" in e.command and e.outcome.startswith("ok")
    ]
    lanes = {e.command.split("]")[0] + "]" for e in racing}
    assert len(lanes) >= 2 and "[prefix]" not in lanes, entries


def test_the_sequential_machine_is_blind_to_it(mutant_worlds: tuple[str, TemplateJanitor]) -> None:
    _, worlds = mutant_worlds
    run_machine(machine_factory(worlds), budget="smoke", database=None, derandomize=True)
