"""Fresh copies of a user's own pgGit database: ``CREATE DATABASE ... TEMPLATE <theirs>``.

To run the pggit machine against an external pgGit, point ``STATEMODELS_PGGIT_DSN`` at a database
where pgGit is installed. Each example gets a clone of it, so the machine never writes to the
user's database itself. What that needs:

- the role may create databases (``CREATEDB``) and owns the source database or is a superuser;
- nobody else is connected to the source database while a clone is made (PostgreSQL refuses to
  copy a database with other sessions) -- use a dedicated database, e.g. a fresh install;
- the source holds no branches other than ``main`` and no tables in ``public`` that the machine's
  names could collide with (rows from before the example are otherwise ignored by the driver).

Example::

    with DatabaseClones(os.environ["STATEMODELS_PGGIT_DSN"]) as worlds:
        run_machine(machine_factory(worlds))
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, Self

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ConfigurationError

__all__ = ["DatabaseClones"]

log = logging.getLogger(__name__)

_serial = itertools.count()


class DatabaseClones:
    """Clones the database ``dsn`` names, once per example; drops every clone on ``close``.

    Raises:
        ConfigurationError: the DSN names no database, or the server cannot be reached.
    """

    def __init__(self, dsn: str, *, admin_db: str = "postgres") -> None:
        try:
            source = conninfo_to_dict(dsn).get("dbname")
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"pggit DSN is not a valid conninfo/URL: {exc}") from None
        if not source:
            raise ConfigurationError(
                "pggit DSN names no database; add dbname=<your pgGit database> "
                "(e.g. postgresql://user@host:5432/mydb)"
            )
        self.source = str(source)
        self._dsn = dsn
        self._live: set[str] = set()
        try:
            self._admin = psycopg.connect(
                make_conninfo(dsn, dbname=admin_db),
                autocommit=True,
                connect_timeout=5,
                options="-c statement_timeout=60000 -c lock_timeout=30000",
            )
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot reach the server of the pggit DSN (admin database {admin_db!r}): "
                f"{' '.join(str(exc).split())}; check STATEMODELS_PGGIT_DSN"
            ) from None

    def fresh(self) -> str:
        """A new clone of the source database; its DSN."""
        name = f"sm_pggit_clone_{next(_serial)}_{os.getpid()}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(self.source)
        )
        try:
            self._admin.execute(query)
        except psycopg.errors.ObjectInUse as exc:
            raise ConfigurationError(
                f"cannot clone {self.source!r}: other sessions are connected to it "
                f"({' '.join(str(exc).split())}); disconnect them or use a dedicated database"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"cannot clone {self.source!r}: {' '.join(str(exc).split())}; the role needs "
                "CREATEDB and must own the database (or be a superuser)"
            ) from None
        self._live.add(name)
        return make_conninfo(self._dsn, dbname=name)

    def release(self, dsn: str) -> None:
        """Drop a clone :meth:`fresh` returned (its connections must be closed)."""
        name = conninfo_to_dict(dsn).get("dbname")
        if name not in self._live:
            raise ConfigurationError(f"release({name!r}): not a live clone of {self.source!r}")
        self._live.discard(str(name))
        self._admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )

    def close(self) -> None:
        """Drop every clone still live and close the admin connection. Idempotent."""
        for name in sorted(self._live):
            try:
                self._admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                self._live.discard(name)
            except psycopg.Error:
                log.exception("dropping clone %s failed; drop it by hand", name)
        self._admin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
