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

#: Runs per program: a race shows in about one run of two. The lost add's shrinking needs more:
#: with fewer, the shrinker often takes a candidate that still races for one that does not.
REPEATS = {"add-rmw-across-await": 20, "remove-check-across-await": 10}
#: Longest repro accepted (two initial adds and the final read included). The lost add usually
#: shrinks to 6; now and then a replay of a candidate does not race and Hypothesis stops
#: shrinking there (FlakyFailure: the catch stands, its repro is the shortest seen).
MAX_STEPS = {"add-rmw-across-await": 10, "remove-check-across-await": 6}

#: mutant -> (the command that raced, the commands it raced with).
SYMPTOMS = {
    # An add stores a stale copy of the table: a concurrent add is lost, a concurrent remove
    # undone; the final ListRules shows it.
    "add-rmw-across-await": ("AddRule", ("AddRule", "RemoveRule")),
    # The same id removed twice, both "removed".
    "remove-check-across-await": ("RemoveRule", ("RemoveRule",)),
}


def test_every_concurrency_only_mutant_has_a_hunt() -> None:
    assert sorted(SYMPTOMS) == sorted(REPEATS) == sorted(MAX_STEPS) == sorted(CONCURRENT_ONLY)


@pytest.mark.parametrize("mutant", sorted(CONCURRENT_ONLY))
def test_the_parallel_machine_catches(mutant: str) -> None:
    with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
        found = catch_mutant(
            # A run costs ~20 ms: the workers the adds spawn and the reset kills.
            lambda: RelayParallelMachine(RelayParallelDriver(pool), repeats=REPEATS[mutant]),
            budget="ci",
            max_steps=MAX_STEPS[mutant],
        )
    assert found.signature.startswith("RelayParallelMachine/")
    assert found.signature.endswith("/history:not-linearizable")
    # The symptom: two clients' requests of the racing kind both succeeded, from two suffixes --
    # never a divergence of one client alone (that would be a false alarm of the machine).
    culprit, rivals = SYMPTOMS[mutant]

    def lanes_of(*kinds: str) -> set[str]:
        done = [
            e
            for e in found.journal.entries
            if e.outcome.startswith("ok") and any(f"] {k}(" in e.command for k in kinds)
        ]
        return {e.command.split("]")[0] + "]" for e in done} - {"[prefix]"}

    assert lanes_of(culprit), found.journal.entries
    assert len(lanes_of(culprit, *rivals)) >= 2, found.journal.entries


@pytest.mark.parametrize("mutant", sorted(CONCURRENT_ONLY))
def test_the_sequential_machine_is_blind_to_it(mutant: str) -> None:
    with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
        run_machine(
            lambda: bundled_relay_machine(pool=pool),
            budget="smoke",
            database=None,
            derandomize=True,
        )
