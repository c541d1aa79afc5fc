"""Concurrency-only register mutant: compare-and-set done as GET, compare, SET.

With one client the mutant is correct, so the sequential machine cannot see it (asserted below:
if it ever does, the claim "only a concurrent history catches it" is wrong). With two clients a
write can land between the GET and the SET; the history then has a swap that no sequential order
explains, and the parallel machine must find and shrink it.
"""

from __future__ import annotations

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.register import RegisterDriver, RegisterMachine
from statemodels.register.parallel import (
    RegisterConnections,
    RegisterParallelDriver,
    RegisterParallelMachine,
)

pytestmark = pytest.mark.mutant


@pytest.fixture
def connections(statemodels_redis):
    """Connections reused by every example of one test: connecting costs more than a run."""
    with RegisterConnections(statemodels_redis) as kept:
        yield kept


def test_the_parallel_machine_catches_cas_done_as_get_then_set(statemodels_redis, connections):
    found = catch_mutant(
        lambda: RegisterParallelMachine(
            RegisterParallelDriver(statemodels_redis, {"cas-get-then-set"}, connections=connections)
        ),
        budget="ci",
        max_steps=6,
    )
    assert found.signature.startswith("RegisterParallelMachine/")
    assert found.signature.endswith("/history:not-linearizable")
    # The symptom: a compare-and-set that swapped while another client wrote the same key --
    # never a divergence of one client alone (that would be a false alarm of the machine).
    entries = found.journal.entries
    assert any("Cas(" in e.command and "swapped=True" in e.outcome for e in entries), entries
    lanes = {e.command.split("]")[0] + "]" for e in entries}
    assert {"[client 1]", "[client 2]"} <= lanes, entries


def test_the_sequential_machine_is_blind_to_it(statemodels_redis):
    # One client: nothing happens between the GET and the SET, so the mutant is correct here.
    run_machine(
        lambda: RegisterMachine(RegisterDriver(statemodels_redis, {"cas-get-then-set"})),
        budget="smoke",
        database=None,
        derandomize=True,
    )
