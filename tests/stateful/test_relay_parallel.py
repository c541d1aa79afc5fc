"""The relay under concurrent control clients: a correct supervisor is linearizable, every run.

A checker or machine that wrongly rejects a correct history fails ``test_..._are_linearizable``;
the mutant hunts (``tests/mutants/test_relay_parallel_mutants.py``) fail if it wrongly accepts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.supervisor import RelayConfig, RelayPool
from statemodels.supervisor.commands import AddRule, ListRules, RemoveRule, Rule
from statemodels.supervisor.parallel import (
    HashableRelayModel,
    RelayParallelDriver,
    RelayParallelMachine,
)


def _add(rule_id: str, iface: str = "eth0") -> AddRule:
    return AddRule(Rule(iface, "239.1.2.3", 5000, rule_id=rule_id))


@pytest.fixture
def pool() -> Iterator[RelayPool]:
    """A relay per test (~100 ms to start), reused by its examples after a verified reset."""
    with RelayPool(RelayConfig()) as kept:
        yield kept


def test_concurrent_control_clients_on_a_correct_relay_are_linearizable(pool: RelayPool) -> None:
    run_machine(lambda: RelayParallelMachine(RelayParallelDriver(pool)))


def test_the_machine_runs_and_records_every_lane(pool: RelayPool) -> None:
    machine = RelayParallelMachine(RelayParallelDriver(pool), repeats=3)
    machine._add(0, _add("r1"))
    machine._add(1, _add("r2", "eth1"))
    machine._add(1, ListRules())
    machine._add(2, RemoveRule("r1"))
    machine._add(3, _add("r1", "eth1"))
    machine.teardown()
    result = machine.last
    assert result is not None and result.verdict == "linearizable", result.explain()
    # The two initial adds and the prefix, one client per suffix, and the final ListRules on
    # client 0 after them all.
    assert sorted(op.client for op in result.history) == [0, 0, 0, 0, 1, 1, 2, 3]
    final = list(result.history)[-1]
    assert final.client == 0 and isinstance(final.command, ListRules) and final.status == "ok"
    # r1 re-added on eth1 and r2 added on eth1 whatever the order; r1 was removed only if the
    # remove came after the re-add.
    assert {r.rule_id for r in final.result["rules"]} in ({"r1", "r2"}, {"r2"})
    assert {r.input_interface for r in final.result["rules"]} == {"eth1"}


def test_the_model_state_is_hashable_and_compared_by_content(pool: RelayPool) -> None:
    machine = RelayParallelMachine(RelayParallelDriver(pool), repeats=1)
    try:
        start = machine.model
        assert isinstance(start, HashableRelayModel)
        one = start.apply(_add("r1")).model.apply(_add("r2")).model
        other = start.apply(_add("r2")).model.apply(_add("r1")).model
        assert one == other and hash(one) == hash(other)
        assert one != start.apply(_add("r1")).model
    finally:
        machine.teardown()


@pytest.mark.mutant
def test_a_sample_hunt_catches_a_duplicating_upsert() -> None:
    # A sequential bug is a non-linearizable history too; the concurrency-only mutants are hunted
    # in tests/mutants/test_relay_parallel_mutants.py.
    with RelayPool(RelayConfig(mutants=frozenset({"upsert-duplicates"}))) as sample:
        found = catch_mutant(
            lambda: RelayParallelMachine(RelayParallelDriver(sample)),
            budget="ci",
            # Two initial adds and the final read are in every repro: one re-add is the bug.
            max_steps=6,
        )
    assert found.signature == "RelayParallelMachine/ListRules/history:not-linearizable"
