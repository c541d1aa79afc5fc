"""The register under concurrent clients: a correct store is linearizable, every run.

A checker that wrongly rejects a correct history fails ``test_..._is_linearizable``; the mutant
hunts (``tests/mutants/test_register_parallel_mutants.py``) fail if it wrongly accepts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from statemodels.engine import Divergence, catch_mutant, run_machine
from statemodels.errors import ConfigurationError
from statemodels.register import Cas, Get, Incr
from statemodels.register.parallel import (
    RegisterConnections,
    RegisterParallelDriver,
    RegisterParallelMachine,
)


@pytest.fixture
def connections(statemodels_redis):
    """Connections reused by every example of one test: connecting costs more than a run."""
    with RegisterConnections(statemodels_redis) as kept:
        yield kept


def test_concurrent_clients_on_a_correct_store_are_linearizable(statemodels_redis, connections):
    run_machine(
        lambda: RegisterParallelMachine(
            RegisterParallelDriver(statemodels_redis, connections=connections)
        )
    )


def test_the_machine_runs_and_records_every_lane(statemodels_redis):
    machine = RegisterParallelMachine(RegisterParallelDriver(statemodels_redis))
    machine._add(0, Incr("a", 1))
    machine._add(1, Cas("a", 1, 2))
    machine._add(1, Get("a"))
    machine._add(2, Incr("a", 1))
    machine._add(2, Get("b"))
    assert machine.program == (
        (Incr("a", 1),),
        ((Cas("a", 1, 2), Get("a")), (Incr("a", 1), Get("b"))),
    )
    machine.teardown()
    result = machine.last
    assert result is not None and result.verdict == "linearizable"
    assert sorted(op.client for op in result.history) == [0, 1, 1, 2, 2]
    assert result.partitions == 2
    assert all(op.status == "ok" for op in result.history)


@pytest.mark.mutant
def test_a_sample_hunt_catches_a_blind_compare_and_set(statemodels_redis, connections):
    # The domain's sample hunt: a sequential bug is a non-linearizable history too, and the
    # operation that cannot be placed is the lying compare-and-set. The concurrency-only mutant
    # (cas-get-then-set) is hunted in tests/mutants/test_register_parallel_mutants.py.
    found = catch_mutant(
        # A bug that needs no second client shows on every run: one run per program will do.
        lambda: RegisterParallelMachine(
            RegisterParallelDriver(statemodels_redis, {"cas-blind"}, connections=connections),
            repeats=1,
        ),
        budget="ci",
        max_steps=3,
    )
    assert found.signature == "RegisterParallelMachine/Cas/history:not-linearizable"


def test_a_violation_writes_its_timeline(statemodels_redis):
    folder = Path(tempfile.mkdtemp(prefix="statemodels-"))
    try:
        with pytest.raises(Divergence) as info:
            for _ in range(50):  # a race: a few programs until one run loses the update
                machine = RegisterParallelMachine(
                    RegisterParallelDriver(statemodels_redis, {"cas-get-then-set"}),
                    timeline_dir=folder,
                )
                for lane in (1, 2):
                    for _ in range(4):
                        machine._add(lane, Cas("a", None, lane))
                        machine._add(lane, Incr("a", 1))
                machine.runs = 20
                machine.teardown()
        pages = list(folder.glob("*.html"))
        assert len(pages) == 1
        text = pages[0].read_text()
        assert "<svg" in text and "cannot be placed" in text
        assert str(pages[0]) in str(info.value)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unknown_mutant_is_a_one_line_error(statemodels_redis):
    with pytest.raises(ConfigurationError, match="unknown mutant"):
        RegisterParallelDriver(statemodels_redis, {"cas-get-than-set"})


def test_the_driver_leaves_no_keys_behind(statemodels_redis, connections):
    driver = RegisterParallelDriver(statemodels_redis, connections=connections)
    machine = RegisterParallelMachine(driver, repeats=3)
    machine._add(1, Incr("a", 1))
    machine._add(2, Incr("b", 1))
    machine.teardown()  # three runs, three key prefixes, then close()
    client = statemodels_redis.client()
    try:
        assert list(client.scan_iter(match=driver.prefix + "*")) == []
    finally:
        client.close()
