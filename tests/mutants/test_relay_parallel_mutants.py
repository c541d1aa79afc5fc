"""Concurrency-only relay mutants: a request held across an ``await`` while another one runs.

The sequential relay machine waits for each answer before it sends the next request, so nothing
runs during the await and these mutants look correct to it (asserted below: if it ever does see
one, the claim "only a concurrent history catches it" is wrong). With several control clients,
another request lands in the await; the history then has answers no order explains.
"""

from __future__ import annotations

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.supervisor import (
    CONCURRENT_ONLY,
    RelayConfig,
    RelayPool,
    bundled_relay_machine,
)
from statemodels.supervisor.parallel import RelayParallelDriver, RelayParallelMachine

pytestmark = pytest.mark.mutant

#: mutant -> (command two clients raced with, what the racers' answers show).
SYMPTOMS = {
    # An add lost to the other one's stale copy: a later ListRules misses it.
    "add-rmw-across-await": "AddRule",
    # The same id removed twice, both "removed".
    "remove-check-across-await": "RemoveRule",
}


def test_every_concurrency_only_mutant_has_a_hunt() -> None:
    assert sorted(SYMPTOMS) == sorted(CONCURRENT_ONLY)


@pytest.mark.parametrize("mutant", sorted(CONCURRENT_ONLY))
def test_the_parallel_machine_catches(mutant: str) -> None:
    with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
        found = catch_mutant(
            # A race shows in one run of two or more: 5 runs per program (a run costs ~20 ms,
            # the workers an add spawns and the reset kills).
            lambda: RelayParallelMachine(RelayParallelDriver(pool), repeats=5),
            budget="ci",
            max_steps=6,
        )
    assert found.signature.startswith("RelayParallelMachine/")
    assert found.signature.endswith("/history:not-linearizable")
    # The symptom: two clients' requests of the racing kind both succeeded, from two suffixes --
    # never a divergence of one client alone (that would be a false alarm of the machine).
    entries = found.journal.entries
    racing = [
        e for e in entries if SYMPTOMS[mutant] + "(" in e.command and e.outcome.startswith("ok")
    ]
    lanes = {e.command.split("]")[0] + "]" for e in racing} - {"[prefix]"}
    assert len(lanes) >= 2, entries


@pytest.mark.parametrize("mutant", sorted(CONCURRENT_ONLY))
def test_the_sequential_machine_is_blind_to_it(mutant: str) -> None:
    with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
        run_machine(
            lambda: bundled_relay_machine(pool=pool),
            budget="smoke",
            database=None,
            derandomize=True,
        )
