"""Configuration checked once, at session start: every option that is set, one line if wrong.

A bad DSN used to surface as a 50-88-line fixture traceback, repeated for every test that
asked for the server, and an option only unselected tests use was never checked at all. The
plugin calls :func:`check_options` from ``pytest_configure``; each check connects with a short
timeout and turns the driver's error into one line that names the fix. Passwords are masked.

Example (what a user sees; pytest exits with its usage-error code, no traceback)::

    ERROR: STATEMODELS_PG_DSN 'postgresql://admin:***@db:5432/postgres': password authentication
    failed for user "admin"; fix the DSN, or unset STATEMODELS_PG_DSN to start a private server
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError
from .masking import mask_secret
from .options import OPTIONS

__all__ = ["check_options"]

CONNECT_TIMEOUT = 5


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _where(name: str, value: str) -> str:
    return f"{OPTIONS[name].env} {mask_secret(value)!r}"


def _check_pg_dsn(value: str) -> None:
    from .infra.postgres import PostgresServer

    server = PostgresServer.attach(value)  # connects once: a one-line error if it cannot
    with server.connect() as conn:
        row = conn.execute(
            "SELECT rolcreatedb OR rolsuper, current_user FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
    if row is None or not row[0]:
        user = row[1] if row else "?"
        raise ConfigurationError(
            f"{_where('pg_dsn', value)}: role {user!r} may not create databases, and every "
            f"example gets a fresh one; run `ALTER ROLE {user} CREATEDB` as a superuser, or use "
            "another role"
        )


def _check_pggit_dsn(value: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    where = _where("pggit_dsn", value)
    try:
        dbname = conninfo_to_dict(value).get("dbname")
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"{where}: not a valid conninfo or URL ({_one_line(exc)})"
        ) from None
    if not dbname:
        raise ConfigurationError(
            f"{where} names no database; add the database holding your pgGit, e.g. "
            "postgresql://user@host:5432/my_pggit"
        )
    try:
        with psycopg.connect(value, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            row = conn.execute(
                "SELECT (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = "
                "current_user), EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pggit')"
            ).fetchone()
    except psycopg.errors.InvalidCatalogName:
        raise ConfigurationError(
            f"{where}: database {dbname!r} does not exist on that server; create it and install "
            "pgGit there, or name the database that holds it"
        ) from None
    except psycopg.Error as exc:
        raise ConfigurationError(f"{where}: {_one_line(exc)}; check the DSN") from None
    if row is None or not row[0]:
        raise ConfigurationError(
            f"{where}: the role may not create databases; each example runs on a fresh clone of "
            f"{dbname!r} (CREATE DATABASE ... TEMPLATE), so it needs CREATEDB and must own it"
        )
    if not row[1]:
        raise ConfigurationError(
            f"{where}: database {dbname!r} has no schema 'pggit'; install pgGit in it first"
        )


def _check_redis_url(value: str) -> None:
    from .infra.redis import RedisServer

    RedisServer.attach(value)  # pings once: a one-line error (password masked) if it cannot


def _check_relay_socket(value: str) -> None:
    where = f"{OPTIONS['relay_socket'].env} {value!r}"
    try:
        mode = os.stat(value).st_mode
    except OSError as exc:
        raise ConfigurationError(
            f"{where}: {exc.strerror}; start the relay, or point at its control socket"
        ) from None
    if not stat.S_ISSOCK(mode):
        raise ConfigurationError(f"{where} is not a Unix socket; name the relay's control socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(value)
        except OSError as exc:
            raise ConfigurationError(
                f"{where}: nothing accepts connections there ({exc.strerror or exc}); is the "
                "relay running?"
            ) from None


def _check_binary_dir(env: str) -> None:
    value = os.environ.get(env)
    if not value:
        return
    from .infra.postgres import find_pg_bin

    find_pg_bin(value)  # raises MissingBinaryError (a ConfigurationError) with every fix


def _check_binary(env: str) -> None:
    value = os.environ.get(env)
    if value and not (shutil.which(value) or os.access(value, os.X_OK)):
        raise ConfigurationError(
            f"{env} {value!r}: no such executable; point it at redis-server, or unset it to "
            "use the one on PATH or from the embedded extra"
        )


_CHECKS: dict[str, Callable[[str], None]] = {
    "pg_dsn": _check_pg_dsn,
    "pggit_dsn": _check_pggit_dsn,
    "redis_url": _check_redis_url,
    "relay_socket": _check_relay_socket,
}


def check_options(values: Mapping[str, Any]) -> None:
    """Check every set option in ``values`` (name -> resolved value) and the binary variables.

    Raises:
        ConfigurationError: the first problem, as one line naming the fix.
    """
    for name, check in _CHECKS.items():
        value = values.get(name)
        if value:
            check(str(value))
    if values.get("pggit_quirks"):
        from .pggit.model import check_quirks

        check_quirks(frozenset(values["pggit_quirks"]))
    _check_binary_dir("STATEMODELS_PG_BIN")
    _check_binary("STATEMODELS_REDIS_SERVER")
