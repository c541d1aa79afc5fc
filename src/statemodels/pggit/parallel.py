"""pgGit, concurrently: connections commit, branch and read at once, judged by linearizability.

The sequential :class:`~statemodels.pggit.machine.PggitMachine` overlaps commits only in one
deterministic way (``ConcurrentCommits``: each commit starts once the previous one returned or
waits for a lock). It cannot see a check-then-act inside a function -- a status or a name read in
one statement and acted on in the next -- because with one client nothing happens in between.
Here each parallel suffix runs on its own connection in its own thread (2-4 clients); the
history must be explained by some order of single commands through
:class:`~statemodels.pggit.model.PggitModel`, the sequential machine's model::

    with TemplateJanitor(pg, name="pggit", install=install) as worlds:
        dsn = worlds.fresh()
        with PggitConnections(dsn) as connections:
            run_machine(lambda: PggitParallelMachine(PggitParallelDriver(connections)))

What a history holds: ``Commit``, ``CreateBranch`` (parent ``main``), ``DeleteBranch`` and two
reads, ``ReadBranch`` (its rows: status and head) and ``ReadLog`` (Trinity IDs from the head back
along parent links). A fork, a lost commit or a duplicate ID is a read no order explains. The
model names commits by slots (``commit:<n>``); the checker learns each slot's real Trinity ID
in the order it places the operations (``ModelSpec(bind=True)``), as the sequential engine does.

Serialization failures (``40001``) and deadlocks (``40P01``) took no effect: ``fail``. A
statement or lock timeout, a lost connection, any error the model does not name: ``info``.

Partitions: commands are drawn on branches other than ``main``, created with parent ``main``,
and nothing commits to ``main`` -- so ``main``'s head stays empty and an operation on one branch
never reads or writes another: the history is checked per branch. (A duplicate Trinity ID across
two branches is left to the ``UNIQUE`` constraint on ``commits.hash``.)
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any, ClassVar, Literal

import psycopg
from hypothesis import strategies as st
from psycopg.pq import TransactionStatus

from ..engine import Outcome
from ..engine.linearizability import ModelSpec
from ..engine.parallel import ParallelMachine
from ..errors import ConfigurationError
from .commands import Commit, CreateBranch, DeleteBranch, ReadBranch, ReadLog
from .driver import PggitDriver
from .model import PggitModel

__all__ = [
    "Isolation",
    "PggitClient",
    "PggitConnections",
    "PggitParallelDriver",
    "PggitParallelMachine",
    "commands",
]

log = logging.getLogger(__name__)

Isolation = Literal["read committed", "serializable"]

# Two branches, one drawn three times in four: commands collide on it often, and the history
# still has two partitions. Creates and deletes are weighted like commits: their races (two
# creates of one name, two deletes of one branch) are what a check-then-act in SQL gets wrong.
branches = st.sampled_from(["b1", "b1", "b1", "b2"])
_commit = st.builds(Commit, branches, st.sampled_from(["x", "y", "z"]))
_create = st.builds(CreateBranch, branches)
_delete = st.builds(DeleteBranch, branches)
commands = st.one_of(
    _commit,
    _commit,
    _create,
    _create,
    _delete,
    _delete,
    st.builds(ReadBranch, branches),
    st.builds(ReadLog, branches),
)

#: What the parallel driver resets between runs: everything commands can change.
_RESET = (
    "DELETE FROM pggit.commits;"
    " DELETE FROM pggit.branches WHERE name <> 'main';"
    " UPDATE pggit.branches SET head_commit_hash = NULL, status = 'ACTIVE' WHERE name = 'main';"
)


class PggitConnections:
    """Connections to one scratch database, kept across examples, one per client number.

    Connecting (and compiling the PL/pgSQL functions on a connection's first call) costs more
    than a whole program run, so a test lends one of these to every example's driver::

        with PggitConnections(dsn) as connections:
            run_machine(lambda: PggitParallelMachine(PggitParallelDriver(connections)))

    A connection whose last call did not end cleanly (a timeout, a cancel, a lost server) is
    closed and replaced on the next request, never lent again.

    Args:
        dsn: a database holding the bundled pggit schema that may be emptied between runs
            (``DELETE`` on ``pggit.commits`` and ``pggit.branches``): a clone, never a user's.
        isolation: every connection's ``default_transaction_isolation``.
        statement_timeout, lock_timeout: seconds, set on every connection (server side), so a
            stuck call ends as an ``info`` operation long before the machine's hang bound.

    Raises:
        ConfigurationError: the database cannot be reached, lacks the pggit functions, or the
            isolation level is not one of the two.
    """

    def __init__(
        self,
        dsn: str,
        *,
        isolation: Isolation = "read committed",
        statement_timeout: float = 5.0,
        lock_timeout: float = 3.0,
    ) -> None:
        if isolation not in ("read committed", "serializable"):
            raise ConfigurationError(
                f"isolation={isolation!r}: choose 'read committed' or 'serializable'"
            )
        self.dsn = dsn
        self.isolation = isolation
        self._options = (
            f"-c statement_timeout={int(statement_timeout * 1000)} "
            f"-c lock_timeout={int(lock_timeout * 1000)} "
            # libpq's options: a space inside a value is escaped with a backslash.
            "-c default_transaction_isolation=" + isolation.replace(" ", "\\ ")
        )
        # Checks the schema (a one-line error) and learns the role every commit names.
        probe = PggitDriver(dsn, statement_timeout=statement_timeout, lock_timeout=lock_timeout)
        self.role = probe.role
        probe.close()
        self._open: dict[Hashable, psycopg.Connection[Any]] = {}

    def get(self, number: Hashable) -> psycopg.Connection[Any]:
        conn = self._open.get(number)
        if conn is not None and (
            conn.closed or conn.info.transaction_status != TransactionStatus.IDLE
        ):
            conn.close()
            conn = None
        if conn is None:
            try:
                conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=5, options=self._options
                )
            except psycopg.Error as exc:
                raise ConfigurationError(f"cannot connect to the pggit database: {exc}") from None
            self._open[number] = conn
        return conn

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()

    def __enter__(self) -> PggitConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PggitClient:
    """One lent connection, used by one thread: each command is one autocommit statement."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def run(self, cmd: Any) -> Outcome:
        code, detail, values = PggitDriver._op(self._conn, cmd)
        if code is not None:
            return Outcome.failed(code, detail, **values)
        return Outcome.ok(**values)

    def close(self) -> None:
        """Give the connection back; cancel a statement still running (safe from any thread).

        A cancelled connection is left in a state the pool never lends again: it is replaced.
        """
        try:
            if self._conn.info.transaction_status == TransactionStatus.ACTIVE:
                self._conn.cancel_safe(timeout=2.0)
                self._conn.close()
        except Exception:
            log.exception("pggit parallel client: cancelling a statement failed")
            self._conn.close()


class PggitParallelDriver:
    """Clients on one scratch database, emptied between runs (one ``DELETE`` round trip).

    Args:
        connections: the database and its connections (:class:`PggitConnections`), lent by
            the test so examples do not reconnect; or a DSN, for connections of our own that
            :meth:`close` closes.
    """

    def __init__(self, connections: PggitConnections | str) -> None:
        self._owned = isinstance(connections, str)
        self.connections = (
            PggitConnections(connections) if isinstance(connections, str) else connections
        )
        self.role = self.connections.role
        self.isolation = self.connections.isolation

    def client(self, number: int) -> PggitClient:
        return PggitClient(self.connections.get(number))

    def reset(self) -> None:
        self.connections.get("admin").execute(_RESET)

    def close(self) -> None:
        if self._owned:
            self.connections.close()


class PggitParallelMachine(ParallelMachine):
    """A prefix and three parallel suffixes of pggit commands, checked per branch."""

    commands = commands
    lanes = 3
    # Short programs: a race needs two commands on one branch (three with the create before
    # them), and every command more is one the shrinker must try to delete, `repeats` runs each.
    max_prefix = 2
    max_suffix = 2
    #: Took no effect: a serialization failure or a deadlock victim, rolled back whole.
    no_effect = frozenset({"40001", "40P01"})
    #: Answers the model gives itself (a deleted branch, a name taken, no such branch, ...).
    judged = frozenset({"23503", "23505", "23514", "55000", "P0002"})
    #: A search state holds the bindings, so keep the checker's budget modest.
    check_timeout: ClassVar[float] = 10.0

    def __init__(self, driver: PggitParallelDriver, **kwargs: Any) -> None:
        super().__init__(driver, PggitModel(role=driver.role, session=None), **kwargs)

    def partition_key(self, cmd: Any) -> Hashable:
        return getattr(cmd, "branch", None) or cmd.name

    def spec(self) -> ModelSpec:
        return ModelSpec(self.model, key=self.partition_key, bind=True)
