"""Every seeded bug of the bundled pgGit system is caught within ``ci``, shrunk to <= 5 steps.

A machine that passes against a mutant is a defect in the machine. The shrunk divergence is
printed (``pytest -s``) so the repro can be read. The last test proves known divergences: with
two bugs seeded at once and the first one's signature listed as known, the run reports the other.
"""

from __future__ import annotations

import pytest

from statemodels.engine import Divergence, catch_mutant, registry, run_machine
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import CONCURRENT_ONLY, MUTANTS, install, machine_factory


def _worlds(server: PostgresServer, mutants: frozenset[str]) -> TemplateJanitor:
    return TemplateJanitor(server, name="pggit_mut", install=lambda conn: install(conn, mutants))


@pytest.mark.mutant
# Concurrency-only mutants are hunted by the parallel machine (test_pggit_parallel_mutants.py).
@pytest.mark.parametrize("mutant", sorted(set(MUTANTS) - CONCURRENT_ONLY))
def test_pggit_machine_catches(mutant: str, statemodels_postgres: PostgresServer) -> None:
    with _worlds(statemodels_postgres, frozenset({mutant})) as worlds:
        found = catch_mutant(machine_factory(worlds), budget="ci", max_steps=5)
    assert found.signature.startswith("PggitMachine/")


@pytest.mark.mutant
def test_pggit_known_divergence_does_not_hide_the_next(
    statemodels_postgres: PostgresServer,
) -> None:
    # The signature a user would copy from the first report.
    with _worlds(statemodels_postgres, frozenset({"main-deletable"})) as worlds:
        first = catch_mutant(machine_factory(worlds), budget="ci", max_steps=5).signature
    both = frozenset({"main-deletable", "message-trimmed"})
    with _worlds(statemodels_postgres, both) as worlds, pytest.raises(Divergence) as info:
        run_machine(
            machine_factory(worlds),
            budget="ci",
            known=[first],
            database=None,
            derandomize=True,
            report_multiple_bugs=False,
        )
    print(f"\nknown: {first}\n{info.value}")
    assert info.value.signature != first
    assert info.value.signature == "PggitMachine/view/chains:differs"
    assert registry()["PggitMachine"].known_hits[first] > 0
