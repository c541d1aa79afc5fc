"""Every seeded bug of the bundled relay is caught within the ``ci`` budget, shrunk to <= 6 steps.

A machine that passes against a mutant is a defect in the machine. The shrunk divergence is
printed (``pytest -s``) so the repro can be read.
"""

from __future__ import annotations

import pytest

from statemodels.engine import catch_mutant
from statemodels.errors import ConfigurationError
from statemodels.supervisor import MUTANTS, RelayConfig, RelayPool, bundled_relay_machine

# Not yet reliable enough to gate main (issue 4 stays open): in the last full run 12 of 13 were
# caught, shrunk to <= 6 steps, in 1-190 s each, but `stale-running` failed once on a false timing
# divergence (a worker spawned 116 ms after its AddRule against a 75 ms bound, then Hypothesis
# reported the replay as flaky), and `race-loses-add` is not caught deterministically (the add must
# land inside the backoff window). Non-strict: every hunt still runs and reports; XPASS is the
# normal outcome. Remove this mark once spawn timing is judged against the worker's own start.
_NOT_YET_RELIABLE = pytest.mark.xfail(
    strict=False,
    reason="relay mutant hunts can flake on spawn timing under load; race-loses-add uncaught",
)


@pytest.mark.mutant
@_NOT_YET_RELIABLE
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_relay_machine_catches(mutant: str) -> None:
    with RelayPool(RelayConfig(mutants=frozenset({mutant}))) as pool:
        found = catch_mutant(lambda: bundled_relay_machine(pool=pool), budget="ci", max_steps=6)
    assert found.signature.startswith("RelayMachine/")


def test_an_unknown_mutant_is_a_one_line_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        RelayConfig(mutants=frozenset({"no-such-bug"}))
    message = str(info.value)
    assert "'no-such-bug'" in message and "no-resync" in message and "\n" not in message
