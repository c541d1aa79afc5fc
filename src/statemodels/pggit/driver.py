"""The pggit driver: runs the machine's commands on any database holding a pgGit-compatible schema.

It speaks only the public surface (``pggit.commit_changes``, ``create_branch``,
``delete_branch_simple``, ``generate_trinity_id``, ``get_version`` and the tables ``branches``,
``commits``, ``objects``, ``history``), so it works against the bundled system and, unchanged,
against a user's own pgGit database. It never decides what is correct: it reports SQLSTATEs,
returned values and what the tables hold.

Every connection has a connect timeout and server-side ``statement_timeout`` / ``lock_timeout``,
so no call can hang past the engine's step timeout for long; :meth:`PggitDriver.close` cancels
and closes everything, also from another thread while a call hangs.

Example::

    driver = PggitDriver(dsn)
    driver.run(Commit(branch="main", message="hi"))   # Outcome(values={'trinity_id': '2025...'})
    driver.observe()["chains"]                        # {'main': (('main', 'hi'),)}
    driver.close()
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ..engine import Outcome
from ..errors import ConfigurationError
from ..infra.processes import poll_until
from .commands import (
    AlterTable,
    Commit,
    ConcurrentCommits,
    CreateBranch,
    CreateTable,
    DeleteBranch,
    DropTable,
    GenerateIds,
    Op,
    ReadBranch,
    ReadLog,
    RenameTable,
    Txn,
)
from .expect import TRINITY_RE

__all__ = ["REQUIRED_FUNCTIONS", "PggitDriver"]

log = logging.getLogger(__name__)

#: What a database must offer for the driver to run against it.
REQUIRED_FUNCTIONS = (
    "pggit.commit_changes",
    "pggit.create_branch",
    "pggit.delete_branch_simple",
    "pggit.generate_trinity_id",
    "pggit.get_version",
)

_Conn = psycopg.Connection[Any]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


class PggitDriver:
    """Runs pggit commands on the database ``dsn`` names.

    Args:
        dsn: a database holding a pgGit-compatible schema (a fresh clone per example).
        on_close: called after every connection is closed (e.g. to drop the clone).
        statement_timeout, lock_timeout: seconds, set on every connection.
        stagger: seconds :class:`ConcurrentCommits` waits for one commit to return or block
            before starting the next.

    Raises:
        ConfigurationError: the database cannot be reached or lacks the pggit functions.
    """

    def __init__(
        self,
        dsn: str,
        *,
        on_close: Callable[[], None] | None = None,
        statement_timeout: float = 8.0,
        lock_timeout: float = 5.0,
        stagger: float = 2.0,
    ) -> None:
        self.dsn = dsn
        self._on_close = on_close
        self._options = (
            f"-c statement_timeout={int(statement_timeout * 1000)} "
            f"-c lock_timeout={int(lock_timeout * 1000)} "
            "-c idle_in_transaction_session_timeout=60000"
        )
        self._stagger = stagger
        self._lock = threading.Lock()
        self._extra: set[_Conn] = set()  # every open connection but the main one
        self._idle: list[_Conn] = []  # the ones among them no command is using
        self._closed = False
        try:
            self._conn = self._connect(track=False)
        except psycopg.Error as exc:
            self._finish()
            raise ConfigurationError(
                f"cannot connect to the pggit database: {_one_line(exc)}; check the DSN "
                "(STATEMODELS_PGGIT_DSN) and that the server is up"
            ) from None
        try:
            #: The role every commit must name as its author.
            self.role: str = self._check_schema()
            self._baseline = self._read_baseline()
            #: Seeded bugs of a bundled install (traces record them; empty for a real pgGit).
            self.mutants: frozenset[str] = self._read_mutants()
        except BaseException:
            self.close()
            raise

    # -- connections ---------------------------------------------------------------------------

    def _connect(self, *, track: bool = True) -> _Conn:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, options=self._options)
        if track:
            with self._lock:
                if self._closed:
                    conn.close()
                    raise psycopg.OperationalError("driver closed")
                self._extra.add(conn)
        return conn

    def _spare(self) -> _Conn:
        """An idle extra connection: a reused one, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _drop(self, conn: _Conn) -> None:
        with self._lock:
            self._extra.discard(conn)
        conn.close()

    def _check_schema(self) -> str:
        """Fail clearly unless the pggit functions exist; return ``current_user``."""
        row = self._conn.execute(
            "SELECT current_user, ARRAY(SELECT f FROM unnest(%s::text[]) f"
            " WHERE to_regproc(f) IS NULL)",
            (list(REQUIRED_FUNCTIONS),),
        ).fetchone()
        assert row is not None
        role, missing = row
        if missing:
            raise ConfigurationError(
                f"database {self._conn.info.dbname!r} lacks {', '.join(missing)}: it does not "
                "hold a pgGit-compatible schema; install pgGit there or use the bundled system"
            )
        return str(role)

    def _read_baseline(self) -> tuple[int, int, int, int]:
        """Highest ids already present: rows from before this example are not the model's."""
        row = self._conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM pggit.branches WHERE name <> 'main'),"
            " (SELECT coalesce(max(id), 0) FROM pggit.commits),"
            " (SELECT coalesce(max(id), 0) FROM pggit.objects),"
            " (SELECT coalesce(max(id), 0) FROM pggit.history)"
        ).fetchone()
        assert row is not None
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def _read_mutants(self) -> frozenset[str]:
        from .system import MUTANTS_NOTE

        row = self._conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'pggit'"
        ).fetchone()
        note = row[0] if row and row[0] else ""
        if not note.startswith(MUTANTS_NOTE):
            return frozenset()
        return frozenset(m for m in note[len(MUTANTS_NOTE) :].split(",") if m)

    # -- the protocol --------------------------------------------------------------------------

    def run(self, cmd: Any) -> Outcome:
        match cmd:
            case Txn():
                return Outcome.ok(**self._txn(cmd))
            case ConcurrentCommits():
                return self._concurrent(cmd)
            case GenerateIds():
                return self._generate(cmd)
            case _:
                code, detail, values = self._op(self._conn, cmd)
                if code is not None:
                    return Outcome.failed(code, detail, **values)
                return Outcome.ok(**values)

    def observe(self) -> Mapping[str, Any]:
        base_branch, base_commit, base_object, base_history = self._baseline
        conn = self._conn
        # One round trip for the six reads (pipeline mode), all from one snapshot. The last two
        # ask the contract's own functions: what the system lists and reports must agree with
        # what it stores (a list_branches that swaps two columns stores nothing wrong).
        with conn.pipeline():
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursors = [conn.cursor() for _ in range(6)]
            cursors[0].execute(
                "SELECT b.name, b.status::text, p.name, b.head_commit_hash FROM pggit.branches b"
                " LEFT JOIN pggit.branches p ON p.id = b.parent_branch_id"
                " WHERE b.id > %s OR b.name = 'main' ORDER BY b.id",
                (base_branch,),
            )
            cursors[1].execute(
                "SELECT c.hash, c.parent_commit_hash, b.name, c.message, c.author"
                " FROM pggit.commits c JOIN pggit.branches b ON b.id = c.branch_id"
                " WHERE c.id > %s",
                (base_commit,),
            )
            cursors[2].execute(
                "SELECT o.id, o.object_name, o.is_active, o.version,"
                " (SELECT g.version FROM pggit.get_version(o.full_name) g LIMIT 1)"
                " FROM pggit.objects o WHERE o.id > %s AND o.object_type::text = 'TABLE'"
                " AND o.schema_name = 'public' ORDER BY o.id",
                (base_object,),
            )
            cursors[3].execute(
                "SELECT object_id, change_type::text, old_version, new_version"
                " FROM pggit.history WHERE id > %s ORDER BY id",
                (base_history,),
            )
            cursors[4].execute(
                "SELECT name, parent_name, status::text, head_commit_hash"
                " FROM pggit.list_branches()"
            )
            cursors[5].execute(
                "SELECT o.object_name, g.object_type::text, g.full_name, g.version"
                " FROM pggit.objects o, LATERAL pggit.get_version(o.full_name) g"
                " WHERE o.id > %s AND o.object_type::text = 'TABLE' AND o.schema_name = 'public'"
                " AND o.is_active ORDER BY o.id",
                (base_object,),
            )
            conn.execute("COMMIT")
        branches, commits, objects, history, listed, reported = (c.fetchall() for c in cursors)
        ours = {name for name, *_ in branches}
        by_hash = {c[0]: c for c in commits}
        per_object: dict[int, list[tuple[str, int | None, int]]] = {o[0]: [] for o in objects}
        for object_id, change, old, new in history:
            if object_id in per_object:
                per_object[object_id].append((change, old, new))
        return {
            "branches": {name: (status, parent) for name, status, parent, _ in branches},
            # A head from before this example is no head of the model's.
            "heads": {name: head if head in by_hash else None for name, _, _, head in branches},
            "chains": {name: _chain(head, by_hash) for name, _, _, head in branches},
            "commit_count": len(commits),
            "authors": tuple(sorted({c[4] for c in commits})),
            "objects": tuple((name, active, version) for _, name, active, version, _ in objects),
            "get_version": {o[1]: o[4] for o in objects if o[2]},
            "history": tuple(tuple(per_object[o[0]]) for o in objects),
            # Only this example's branches (and main): a user's database may hold others.
            "listed": tuple((n, p, st) for n, p, st, _ in listed if n in ours),
            "listed_heads": {
                n: head if head in by_hash else None for n, _, _, head in listed if n in ours
            },
            "get_version_rows": tuple(tuple(row) for row in reported),
        }

    def close(self) -> None:
        """Cancel running calls, close every connection, then call ``on_close``. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = [*self._extra, *([self._conn] if hasattr(self, "_conn") else [])]
            self._extra.clear()
            self._idle.clear()
        for conn in conns:
            try:
                if conn.info.transaction_status == TransactionStatus.ACTIVE:
                    conn.cancel_safe(timeout=2.0)
                conn.close()
            except Exception:
                log.exception("pggit driver: closing a connection failed")
        self._finish()

    def _finish(self) -> None:
        callback, self._on_close = self._on_close, None
        if callback is not None:
            callback()

    # -- commands ------------------------------------------------------------------------------

    @staticmethod
    def _op(conn: _Conn, op: Op | ReadBranch | ReadLog) -> tuple[str | None, str, dict[str, Any]]:
        """Run one op; return (SQLSTATE or None, error text, returned values)."""
        try:
            return None, "", PggitDriver._op_values(conn, op)
        except psycopg.Error as exc:
            return exc.sqlstate or type(exc).__name__, _one_line(exc), {}

    @staticmethod
    def _op_values(conn: _Conn, op: Op | ReadBranch | ReadLog) -> dict[str, Any]:
        ident = sql.Identifier
        match op:
            case CreateTable(name=name):
                conn.execute(sql.SQL("CREATE TABLE public.{} ()").format(ident(name)))
            case AlterTable(name=name, add=add):
                adds = sql.SQL(", ").join(
                    sql.SQL("ADD COLUMN {} integer").format(ident(c)) for c in add
                )
                conn.execute(sql.SQL("ALTER TABLE public.{} ").format(ident(name)) + adds)
            case RenameTable(name=name, new_name=new):
                conn.execute(
                    sql.SQL("ALTER TABLE public.{} RENAME TO {}").format(ident(name), ident(new))
                )
            case DropTable(name=name):
                conn.execute(sql.SQL("DROP TABLE public.{}").format(ident(name)))
            case Commit(branch=branch, message=message, trinity=None):
                row = conn.execute(
                    "SELECT pggit.commit_changes(%s, %s)", (branch, message)
                ).fetchone()
                return {"trinity_id": row[0] if row else None}
            case Commit(branch=branch, message=message, trinity=trinity):
                row = conn.execute(
                    "SELECT pggit.commit_changes(%s, %s, %s)", (branch, message, trinity)
                ).fetchone()
                return {"trinity_id": row[0] if row else None}
            case CreateBranch(name=name, parent=parent):
                row = conn.execute("SELECT pggit.create_branch(%s, %s)", (name, parent)).fetchone()
                return {"branch_id": row[0] if row else None}
            case DeleteBranch(name=name):
                conn.execute("SELECT pggit.delete_branch_simple(%s)", (name,))
            case ReadBranch(name=name):
                rows = conn.execute(
                    "SELECT status::text, head_commit_hash FROM pggit.branches WHERE name = %s"
                    " ORDER BY id",
                    (name,),
                ).fetchall()
                return {"rows": tuple((status, head) for status, head in rows)}
            case ReadLog(branch=branch):
                # One statement, so one snapshot: the chain as of one instant. The depth bound
                # stops a cycle (a parent link into its own chain) from running forever.
                rows = conn.execute(
                    "WITH RECURSIVE chain(hash, depth) AS ("
                    " SELECT head_commit_hash, 1 FROM pggit.branches"
                    "  WHERE name = %s AND head_commit_hash IS NOT NULL"
                    " UNION ALL"
                    " SELECT c.parent_commit_hash, chain.depth + 1"
                    "  FROM chain JOIN pggit.commits c ON c.hash = chain.hash"
                    "  WHERE c.parent_commit_hash IS NOT NULL AND chain.depth < 1000)"
                    " SELECT hash FROM chain ORDER BY depth",
                    (branch,),
                ).fetchall()
                return {"log": tuple(row[0] for row in rows)}
            case _:
                raise TypeError(f"PggitDriver cannot run {op!r}: not a pggit op")
        return {}

    def _ops(self, conn: _Conn, ops: tuple[Op, ...], prefix: str, out: dict[str, Any]) -> None:
        for i, op in enumerate(ops):
            code, _, values = self._op(conn, op)
            out[f"{prefix}{i}.error"] = code
            out.update({f"{prefix}{i}.{k}": v for k, v in values.items()})

    @staticmethod
    def _quiet(conn: _Conn, statement: str) -> None:
        # Transaction control after a failed op fails too; the ops' own fields report that.
        with contextlib.suppress(psycopg.Error):
            conn.execute(statement)

    def _txn(self, cmd: Txn) -> dict[str, Any]:
        conn = self._connect() if cmd.end == "terminate" else self._conn
        values: dict[str, Any] = {}
        try:
            conn.execute("BEGIN")
            self._ops(conn, cmd.keep, "keep", values)
            if cmd.end == "savepoint":
                self._quiet(conn, "SAVEPOINT statemodels_sp")
            self._ops(conn, cmd.ops, "op", values)
            if cmd.end == "savepoint":
                self._quiet(conn, "ROLLBACK TO SAVEPOINT statemodels_sp")
                self._quiet(conn, "COMMIT")
            elif cmd.end == "rollback":
                conn.execute("ROLLBACK")
            else:
                values["terminated"] = self._terminate(conn.info.backend_pid)
        finally:
            if conn is not self._conn:
                self._drop(conn)
            elif conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        return values

    def _terminate(self, pid: int) -> bool:
        row = self._conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        if not row or not row[0]:
            return False
        query = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s"
        return poll_until(
            lambda: self._conn.execute(query, (pid,)).fetchone() == (True,), timeout=5.0
        )

    def _waiting_for_lock(self, pid: int) -> bool:
        row = self._conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        return bool(row and row[0])

    def _concurrent(self, cmd: ConcurrentCommits) -> Outcome:
        """Overlap each commit with the next: the next one starts while this one's transaction
        is open, and this one ends once the next returned or waits for a lock.

        At most one call waits at a time, so who goes next never depends on wake-up order:
        the same command gives the same interleaving every run.
        """
        conns = [self._spare() for _ in cmd.messages]
        results: list[tuple[str | None, str, dict[str, Any]]] = []
        begin = sql.SQL("BEGIN ISOLATION LEVEL " + cmd.isolation.upper())
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="pggit-commit") as pool:
                previous: _Conn | None = None
                for conn, message in zip(conns, cmd.messages, strict=True):
                    conn.execute(begin)
                    pid = conn.info.backend_pid
                    future = pool.submit(self._op, conn, Commit(cmd.branch, message))
                    poll_until(
                        lambda f=future, p=pid: f.done() or self._waiting_for_lock(p),  # type: ignore[misc]
                        timeout=self._stagger,
                        interval=0.0005,
                        max_interval=0.01,
                    )
                    if previous is not None:
                        self._end(previous, results[-1][0])
                    results.append(future.result())
                    previous = conn
                if previous is not None:
                    self._end(previous, results[-1][0])
        except BaseException:
            for conn in conns:
                self._drop(conn)
            raise
        # Connections are reused by the next ConcurrentCommits: opening one costs milliseconds.
        with self._lock:
            self._idle.extend(conns)
        return Outcome.ok(
            errors=tuple(code for code, _, _ in results),
            ids=tuple(values.get("trinity_id") for _, _, values in results),
        )

    @staticmethod
    def _end(conn: _Conn, error: str | None) -> None:
        conn.execute("COMMIT" if error is None else "ROLLBACK")

    def _generate(self, cmd: GenerateIds) -> Outcome:
        conn = self._conn
        try:
            conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(cmd.timezone)))
            rows = [
                conn.execute(
                    "SELECT pggit.generate_trinity_id(), extract(epoch FROM clock_timestamp())"
                ).fetchone()
                for _ in range(cmd.count)
            ]
        except psycopg.Error as exc:
            return Outcome.failed(exc.sqlstate or type(exc).__name__, _one_line(exc))
        ids = tuple(r[0] if r else None for r in rows)
        skews = [_skew(r[0], float(r[1])) for r in rows if r]
        known = [s for s in skews if s is not None]
        skew = max(known, default=0.0) if len(known) == len(skews) else None
        return Outcome.ok(ids=ids, skew_s=skew)


def _skew(trinity: Any, server_epoch: float) -> float | None:
    """Seconds between the ID's UTC timestamp and the server's clock (None if malformed)."""
    if not isinstance(trinity, str) or not TRINITY_RE.fullmatch(trinity):
        return None
    stamp = datetime.strptime(trinity[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return abs(stamp.timestamp() + int(trinity[14:20]) / 1e6 - server_epoch)


def _chain(head: str | None, by_hash: Mapping[str, tuple[Any, ...]]) -> tuple[tuple[str, str], ...]:
    """(branch, message) from ``head`` back along parent links, within this example's commits."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    while head is not None and head in by_hash and head not in seen:
        seen.add(head)
        _, parent, branch, message, _ = by_hash[head]
        out.append((branch, message))
        head = parent
    return tuple(out)
