"""Fresh PostgreSQL databases per example: the *janitor* half of the Postgres infra.

A :class:`TemplateJanitor` builds a template database once (schema, functions, seed rows), then
hands out a clone per Hypothesis example. Cloning a template is a file copy inside the server --
on tmpfs 10-20 milliseconds -- where re-running an install script takes ten times that. Each
clone is verified against the template's fingerprint (its catalog objects; with
``verify="full"`` also row counts and sequence positions), so "fresh" is checked, not assumed.
The next clone is made while the current example runs, and released ones are dropped in the
background, so with examples of a few dozen milliseconds the reset costs almost nothing.

Example::

    def install(conn):
        conn.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")

    with PostgresServer.from_env() as pg, TemplateJanitor(pg, name="demo", install=install) as jan:
        dsn = jan.fresh()
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO t (v) VALUES ('x')")
        jan.release(dsn)          # dropped in the background; close() waits for it
        dsn = jan.fresh()         # already made (and verified) while the example ran
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, Self

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConfigurationError, ServerError
from .processes import poll_until

if TYPE_CHECKING:
    from .postgres import PostgresServer

__all__ = ["TemplateJanitor"]

log = logging.getLogger(__name__)

# Process-wide, so two janitors (even with the same name) never produce the same database name;
# the pid separates processes (xdist workers) sharing one attached server.
_serial = itertools.count()
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,29}")
_ADMIN_TIMEOUTS = "-c statement_timeout=60000 -c lock_timeout=30000"

Strategy = Literal["file_copy", "wal_log"]

# "catalog": every user object (oid >= FirstNormalObjectId = 16384) of the main catalogs, as count
# and oid sum. A clone is a file copy, so it has the template's very oids; any object created,
# dropped or re-created since shows up. Cheap (~2.5 ms on a cold clone): no user table is opened.
_CATALOG_SQL = """
SELECT concat_ws(';',
    (SELECT count(*) || ':' || coalesce(sum(oid::int8), 0) FROM pg_namespace WHERE oid >= 16384),
    (SELECT count(*) || ':' || coalesce(sum(oid::int8), 0) FROM pg_class WHERE oid >= 16384),
    (SELECT count(*) || ':' || coalesce(sum(oid::int8), 0) FROM pg_proc WHERE oid >= 16384),
    (SELECT count(*) || ':' || coalesce(sum(oid::int8), 0) FROM pg_type WHERE oid >= 16384))
"""

# "full" adds the data: row counts of every table and sequence positions (~10 ms on a cold clone
# of 30 tables, since each table's relcache entry must be built). query_to_xml runs the dynamic
# count(*) without needing a PL/pgSQL function.
_DATA_SQL = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT c.oid::text || '=' || (xpath('/row/c/text()', query_to_xml(
               format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
               false, true, '')))[1]::text AS item
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid >= 16384 AND c.relkind = 'r' AND c.relpersistence <> 't'
    UNION ALL
    SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value::text, '-')
    FROM pg_sequences
) items
"""

Verify = Literal["catalog", "full", "none"]


def _fingerprint(conn: psycopg.Connection[Any], level: Verify) -> tuple[str, ...]:
    queries = {"none": (), "catalog": (_CATALOG_SQL,), "full": (_CATALOG_SQL, _DATA_SQL)}[level]
    return tuple(str(conn.execute(q).fetchone()[0]) for q in queries)  # type: ignore[index]


class TemplateJanitor:
    """Builds template ``sm_tpl_<name>_<n>_<pid>`` once; hands out verified clones.

    Off the per-example path, on two worker threads: the next clone is created and verified
    while the current example runs (``prefetch``), and released databases are dropped
    (``background_drop``). :meth:`close` waits for both, then drops everything.

    Args:
        server: a :class:`PostgresServer`, owned or attached (the role needs CREATEDB).
        name: short lowercase identifier naming this janitor's databases.
        install: called once with a connection (inside a transaction the janitor commits) to the
            new template database; None leaves the template empty.
        strategy: ``"file_copy"`` (default; fastest on tmpfs) or ``"wal_log"`` (PostgreSQL's own
            default since 15). Ignored on servers older than 15.
        verify: how each clone is checked against the template's fingerprint, over one extra
            connection: ``"catalog"`` (default; every user object by oid -- catches DDL),
            ``"full"`` (also row counts of every table and sequence positions -- catches DML;
            ~8 ms more per clone for 30 tables) or ``"none"``.
        prefetch: how many verified clones to keep ready (0: create each one inside fresh()).
        background_drop: drop released databases on a worker thread, not inside release().

    Raises:
        ConfigurationError: bad ``name``/``strategy``/``verify``, or no CREATEDB privilege.
        ServerError: the template could not be built.
    """

    def __init__(
        self,
        server: PostgresServer,
        *,
        name: str,
        install: Callable[[psycopg.Connection[Any]], None] | None,
        strategy: Strategy = "file_copy",
        verify: Verify = "catalog",
        prefetch: int = 1,
        background_drop: bool = True,
    ) -> None:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigurationError(
                f"janitor name {name!r} is not a short lowercase identifier; use 1-30 characters "
                "of a-z, 0-9 and _, starting with a letter (it becomes part of database names)"
            )
        if verify not in ("catalog", "full", "none"):
            raise ConfigurationError(
                f"verify {verify!r} is unknown; choose 'catalog', 'full' or 'none'"
            )
        if strategy not in ("file_copy", "wal_log"):
            raise ConfigurationError(
                f"strategy {strategy!r} is unknown; choose 'file_copy' or 'wal_log'"
            )
        if not isinstance(prefetch, int) or not 0 <= prefetch <= 8:
            raise ConfigurationError(f"prefetch {prefetch!r} must be an int from 0 to 8")
        self.server = server
        self.name = name
        self.verify = verify
        self.template = f"sm_tpl_{name}_{next(_serial)}_{os.getpid()}"
        self._prefetch = prefetch
        self._lock = threading.Lock()  # guards the sets below and the flags
        self._changed = threading.Condition(self._lock)  # a prefetch finished
        self._admin_lock = threading.Lock()  # guards self._admin (callers' threads)
        self._live: set[str] = set()  # handed out by fresh(), not yet released
        self._ready: collections.deque[str] = collections.deque()  # prefetched, verified
        self._queued = 0  # prefetch tasks submitted, not finished
        self._prefetch_failed = False  # stop prefetching until an inline fresh() succeeds
        self._closed = False
        self._template_built = False
        self._local = threading.local()  # each worker thread's own admin connection
        self._worker_conns: list[psycopg.Connection[Any]] = []
        # Two threads so a queued DROP never delays the next clone.
        self._maker = ThreadPoolExecutor(1, "sm-pg-clone") if prefetch else None
        self._dropper = ThreadPoolExecutor(1, "sm-pg-drop") if background_drop else None
        self._admin = self._admin_connection()
        try:
            clause = strategy.upper() if self._admin.info.server_version >= 150000 else None
            self._strategy = sql.SQL(f" STRATEGY {clause}" if clause else "")
            self._fingerprint = self._build_template(install)
        except BaseException:
            self.close()
            raise
        self._refill()

    # -- plumbing -----------------------------------------------------------------------------

    def _admin_connection(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.server.dsn, autocommit=True, connect_timeout=5, options=_ADMIN_TIMEOUTS
        )

    def _worker(self) -> psycopg.Connection[Any]:
        """The calling worker thread's own admin connection."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._admin_connection()
            with self._lock:
                self._worker_conns.append(conn)
        return conn

    def _build_template(
        self, install: Callable[[psycopg.Connection[Any]], None] | None
    ) -> tuple[str, ...]:
        tpl = sql.Identifier(self.template)
        self._admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(tpl))
        self._template_built = True
        with self.server.connect(self.template, autocommit=False) as conn:
            if install is not None:
                install(conn)
            conn.commit()
            fingerprint = _fingerprint(conn, self.verify)
            conn.commit()
        self._admin.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(tpl)
        )
        # install() may have opened connections of its own; a template with sessions cannot be
        # cloned ("source database is being accessed by other users").
        self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.template,),
        )
        return fingerprint

    def _clone(self, conn: psycopg.Connection[Any]) -> str:
        """Create and verify one clone over ``conn``; return its name. A dirty clone is dropped."""
        dbname = f"sm_{self.name}_{next(_serial)}_{os.getpid()}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(dbname), sql.Identifier(self.template)
        )
        try:
            conn.execute(query + self._strategy)
        except pg_errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"role on {self.server!r} may not create databases ({exc.sqlstate}: "
                f"{' '.join(str(exc).split())}); grant CREATEDB or point STATEMODELS_PG_DSN at "
                "a role that has it"
            ) from None
        if self.verify == "none":
            return dbname
        try:
            with psycopg.connect(
                self.server.dsn_for(dbname), autocommit=True, connect_timeout=5
            ) as check:
                got = _fingerprint(check, self.verify)
        except BaseException:
            self._drop(conn, dbname)
            raise
        if got != self._fingerprint:
            self._drop(conn, dbname)
            raise ServerError(
                f"clone {dbname!r} of template {self.template!r} is not clean: fingerprint "
                f"{got!r} != template's {self._fingerprint!r}; something modified the template "
                "-- do not connect to sm_tpl_* databases"
            )
        return dbname

    def _drop(self, conn: psycopg.Connection[Any], dbname: str) -> None:
        drop = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname))
        force = drop + sql.SQL(" WITH (FORCE)")

        # A plain DROP waits (in 100 ms naps, up to 5 s) for sessions to leave. A backend whose
        # client just disconnected exits within milliseconds: give it that, then go straight to
        # FORCE for a session that outlived the example (a leaked connection, a hung driver
        # call) -- and say so.
        def sessions() -> int:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchone()
            return int(row[0]) if row else 0

        if not poll_until(lambda: sessions() == 0, timeout=0.25):
            log.warning(
                "database %s still has %d session(s); dropping WITH (FORCE)", dbname, sessions()
            )
            conn.execute(force)
            return
        try:
            conn.execute(drop)
        except pg_errors.ObjectInUse:  # a session connected in between
            conn.execute(force)

    def _refill(self) -> None:
        """Queue prefetch tasks until ``prefetch`` clones are ready or on their way."""
        with self._lock:
            if self._maker is None or self._closed or self._prefetch_failed:
                return
            missing = self._prefetch - len(self._ready) - self._queued
            self._queued += max(missing, 0)
            for _ in range(missing):
                self._maker.submit(self._prefetch_one)

    def _prefetch_one(self) -> None:  # runs on the worker thread
        try:
            dbname = self._clone(self._worker())
        except Exception:
            # fresh() will clone inline next time and raise the error where the test sees it.
            log.debug("prefetching a clone of %s failed", self.template, exc_info=True)
            with self._lock:
                self._queued -= 1
                self._prefetch_failed = True
                self._changed.notify_all()
            return
        with self._lock:
            self._queued -= 1
            self._ready.append(dbname)
            self._changed.notify_all()

    def _drop_logged(self, dbname: str) -> None:  # runs on the worker thread
        try:
            self._drop(self._worker(), dbname)
        except Exception:
            log.exception("dropping database %s failed; close() will retry", dbname)
            with self._lock:
                self._live.add(dbname)

    # -- public -------------------------------------------------------------------------------

    def fresh(self) -> str:
        """A new database cloned from the template and verified clean; returns its DSN.

        Usually a clone prefetched while the previous example ran; else one made right now.

        Raises:
            ServerError: the clone does not match the template's fingerprint (it is dropped).
        """
        with self._lock:
            if self._closed:
                raise ServerError(f"janitor for {self.template!r} is closed; make a new one")
            # A clone already on its way beats starting a second one here.
            self._changed.wait_for(
                lambda: self._ready or not self._queued or self._prefetch_failed, timeout=60.0
            )
            dbname = self._ready.popleft() if self._ready else None
            if dbname is not None:
                self._live.add(dbname)
        if dbname is None:
            with self._admin_lock:
                dbname = self._clone(self._admin)
            with self._lock:
                self._live.add(dbname)
                self._prefetch_failed = False
        self._refill()
        return self.server.dsn_for(dbname)

    def release(self, dsn: str) -> None:
        """Drop a database :meth:`fresh` returned. Close your connections to it first.

        With ``background_drop`` the drop runs on the worker thread and this returns at once;
        :meth:`close` waits for it.

        Raises:
            ConfigurationError: ``dsn`` is not a live database of this janitor.
        """
        try:
            dbname = conninfo_to_dict(dsn).get("dbname")
        except psycopg.ProgrammingError:
            dbname = None
        with self._lock:
            if dbname not in self._live:
                raise ConfigurationError(
                    f"release({dsn!r}): database {dbname!r} is not a live database of janitor "
                    f"{self.template!r}; pass a DSN its fresh() returned, once"
                )
            self._live.discard(str(dbname))
            if self._dropper is not None:
                self._dropper.submit(self._drop_logged, str(dbname))
                return
        with self._admin_lock:
            self._drop(self._admin, str(dbname))

    def close(self) -> None:
        """Wait for the worker, drop every database still live or ready, then the template.

        Idempotent. Failures are logged, then raised together as one :class:`ServerError`.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for pool in (self._maker, self._dropper):
            if pool is not None:
                pool.shutdown(wait=True)
        failures: list[str] = []
        leftovers = sorted(self._live | set(self._ready))
        if self._template_built:
            leftovers.append(self.template)
        with self._admin_lock:
            for dbname in leftovers:
                try:
                    if self._admin.closed:
                        self._admin = self._admin_connection()
                    ident = sql.Identifier(dbname)
                    if dbname == self.template:
                        self._admin.execute(
                            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident)
                        )
                    self._admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)
                    )
                except Exception as exc:
                    log.exception("janitor close: dropping %s failed", dbname)
                    failures.append(f"{dbname}: {' '.join(str(exc).split())}")
            self._live.clear()
            self._ready.clear()
            for conn in (self._admin, *self._worker_conns):
                conn.close()
        if failures:
            raise ServerError(
                f"janitor {self.template!r} could not drop {len(failures)} database(s): "
                f"{'; '.join(failures)}; drop them by hand"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except ServerError:
            log.exception("janitor close failed while another error was propagating")

    def __repr__(self) -> str:
        return (
            f"<TemplateJanitor {self.template!r} live={len(self._live)} ready={len(self._ready)}>"
        )
