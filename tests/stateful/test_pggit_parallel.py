"""pggit under concurrent clients: a correct install is linearizable, under both isolation levels.

A checker or machine that wrongly rejects a correct history fails ``test_..._are_linearizable``;
the mutant hunts (``tests/mutants/test_pggit_parallel_mutants.py``) fail if it wrongly accepts.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import psycopg
import pytest

from statemodels.engine import Outcome, catch_mutant, run_machine
from statemodels.engine.history import History, Operation
from statemodels.engine.linearizability import check
from statemodels.errors import ConfigurationError
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import install
from statemodels.pggit.commands import Commit, CreateBranch, DeleteBranch, ReadBranch, ReadLog
from statemodels.pggit.parallel import (
    PggitConnections,
    PggitParallelDriver,
    PggitParallelMachine,
)


@pytest.fixture(scope="module")
def pggit_par_worlds(statemodels_postgres: PostgresServer) -> Iterator[TemplateJanitor]:
    with TemplateJanitor(statemodels_postgres, name="pggit_par", install=install) as worlds:
        yield worlds


@pytest.fixture
def scratch(pggit_par_worlds: TemplateJanitor) -> Iterator[str]:
    """One scratch clone per test: the driver empties it between runs."""
    dsn = pggit_par_worlds.fresh()
    yield dsn
    pggit_par_worlds.release(dsn)


@pytest.mark.parametrize("isolation", ["read committed", "serializable"])
def test_concurrent_clients_on_a_correct_install_are_linearizable(
    scratch: str, isolation: str
) -> None:
    with PggitConnections(scratch, isolation=isolation) as connections:  # type: ignore[arg-type]
        run_machine(lambda: PggitParallelMachine(PggitParallelDriver(connections)))


def test_the_machine_runs_and_records_every_lane(scratch: str) -> None:
    machine = PggitParallelMachine(PggitParallelDriver(scratch), repeats=3)
    machine._add(0, CreateBranch("b1"))
    machine._add(1, Commit("b1", "x"))
    machine._add(1, ReadLog("b1"))
    machine._add(2, Commit("b1", "y"))
    machine._add(2, ReadBranch("b1"))
    machine._add(3, Commit("b2", "z"))
    machine._add(3, DeleteBranch("b2"))
    machine.teardown()
    result = machine.last
    assert result is not None and result.verdict == "linearizable", result.explain()
    assert sorted(op.client for op in result.history) == [0, 1, 1, 2, 2, 3, 3]
    assert result.partitions == 2
    assert all(op.status == "ok" for op in result.history)
    # Two commits on b1, one chain: the log read last holds every commit it saw, newest first.
    ops = {repr(op.command): op for op in result.history}
    ids = {ops[repr(Commit("b1", m))].result["trinity_id"] for m in "xy"}
    log = ops[repr(ReadLog("b1"))].result["log"]
    assert set(log) <= ids and len(set(log)) == len(log)


def test_a_fork_is_not_linearizable(scratch: str) -> None:
    # The checker on a real history with a forged answer: a log that lost one of two commits.
    machine = PggitParallelMachine(PggitParallelDriver(scratch), repeats=1)
    machine.max_prefix = 4  # type: ignore[misc]
    machine._add(0, CreateBranch("b1"))
    machine._add(0, Commit("b1", "x"))
    machine._add(0, Commit("b1", "y"))
    machine._add(0, ReadLog("b1"))
    machine._add(1, ReadBranch("b1"))
    machine._add(2, ReadBranch("b2"))
    machine.teardown()
    assert machine.last is not None and machine.last.verdict == "linearizable"
    forged = [
        _lose_one(op) if isinstance(op.command, ReadLog) else op for op in machine.last.history
    ]
    verdict = check(History(forged), machine.spec())
    assert verdict.verdict == "not-linearizable"
    assert verdict.violation is not None
    assert isinstance(verdict.violation.operation.command, ReadLog)


def _lose_one(op: Operation) -> Operation:
    log = op.result["log"]
    assert len(log) == 2
    return attrs.evolve(op, result=Outcome.ok(log=log[:1]))


@pytest.mark.mutant
def test_a_sample_hunt_catches_a_lost_parent_link(pggit_par_worlds: TemplateJanitor) -> None:
    # A sequential bug is a non-linearizable history too; the concurrency-only mutants are hunted
    # in tests/mutants/test_pggit_parallel_mutants.py.
    with TemplateJanitor(
        pggit_par_worlds.server,
        name="pggit_par_sample",
        install=lambda conn: install(conn, {"no-parent-link"}),
    ) as worlds:
        dsn = worlds.fresh()
        try:
            with PggitConnections(dsn) as connections:
                found = catch_mutant(
                    lambda: PggitParallelMachine(PggitParallelDriver(connections), repeats=1),
                    budget="ci",
                    max_steps=4,
                )
        finally:
            worlds.release(dsn)
    assert found.signature == "PggitParallelMachine/ReadLog/history:not-linearizable"


def test_an_unknown_isolation_level_is_a_one_line_error(scratch: str) -> None:
    with pytest.raises(ConfigurationError, match="isolation='snapshot'"):
        PggitConnections(scratch, isolation="snapshot")  # type: ignore[arg-type]


def test_connections_are_reused_and_closed(scratch: str) -> None:
    connections = PggitConnections(scratch)
    machine = PggitParallelMachine(PggitParallelDriver(connections), repeats=2)
    machine._add(1, Commit("b1", "x"))
    machine._add(2, Commit("b1", "y"))
    machine.teardown()
    first = connections.get(1)
    assert not first.closed
    machine = PggitParallelMachine(PggitParallelDriver(connections), repeats=1)
    machine._add(1, ReadBranch("b1"))
    machine._add(2, ReadBranch("b1"))
    machine.teardown()
    assert connections.get(1) is first
    connections.close()
    assert first.closed
    with psycopg.connect(scratch) as conn:
        mine = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchone()
    assert mine == (0,)
