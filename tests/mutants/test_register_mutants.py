"""Every seeded bug of the bundled register store is caught within ``ci``, shrunk to <= 3 steps,
and for the right reason: the signature names the mutant's symptom.

``tests/stateful/test_register.py`` keeps one of these hunts as the sample a first run shows.
"""

from __future__ import annotations

import re

import pytest

from statemodels.engine import catch_mutant
from statemodels.register import CONCURRENT_ONLY, MUTANTS, RegisterDriver, RegisterMachine

# What the machine must see of each bug (a pattern of the divergence signature).
SYMPTOMS = {
    "cas-blind": r"^RegisterMachine/(Cas/swapped:differs|view/contents:differs)$",
    "delete-reports-missing": r"^RegisterMachine/Delete/existed:differs$",
    "incr-from-one": r"^RegisterMachine/Incr/value:differs$",
}


def test_every_register_mutant_has_a_symptom() -> None:
    assert sorted(SYMPTOMS) == sorted(set(MUTANTS) - CONCURRENT_ONLY)


# Concurrency-only mutants need a second client between two round trips: the parallel machine's
# (tests/mutants/test_register_parallel_mutants.py, which also shows this machine is blind to them).
@pytest.mark.mutant
@pytest.mark.parametrize("mutant", sorted(set(MUTANTS) - CONCURRENT_ONLY))
def test_register_machine_catches(mutant, statemodels_redis):
    found = catch_mutant(
        lambda: RegisterMachine(RegisterDriver(statemodels_redis, {mutant})),
        budget="ci",
        max_steps=3,
    )
    assert re.search(SYMPTOMS[mutant], found.signature), found.signature
