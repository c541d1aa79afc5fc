"""The bundled pgGit-compatible system: clean-room SQL, installed per session, cloned per example.

``install(conn)`` creates schema ``pggit`` in the database behind ``conn``; the pggit machine runs
against it in CI, and ``install(conn, mutants={"no-parent-link"})`` swaps in a seeded bug (see
:mod:`statemodels.pggit.system.mutants`). Example::

    with PostgresServer.start() as pg, TemplateJanitor(pg, name="pggit", install=install) as jan:
        dsn = jan.fresh()          # a verified clone of the installed template, ~15 ms

The contract (what :mod:`statemodels.pggit.model` holds any pgGit-compatible database to)
------------------------------------------------------------------------------------------

Written from the public surface of evoludigit/pgGit; where its docs are vague we decided, and
wrote the decision here.

Trinity IDs -- ``pggit.generate_trinity_id() -> text``
    ``YYYYMMDDHH24MISSUS-NNNNNN-xxxxxxxx``: 36 characters; a 20-digit **UTC** timestamp (so the
    session's ``TimeZone`` never changes it: it lies within a minute of the server's UTC clock), a
    6-digit sequence field, 8 lowercase hex digits. The sequence field comes from one global
    sequence (modulo 10^6), so IDs never repeat -- in one session, across sessions, across
    concurrent connections, under any session settings, across rolled-back transactions -- and
    the field strictly increases within a session (until it wraps after 999999).

Branches -- table ``branches(name, parent_branch_id, head_commit_hash, status)``
    ``main`` exists from install. ``create_branch(name, parent='main', copy_data=false) -> int``
    creates an ``ACTIVE`` branch whose head starts at the parent's head (git's branch point);
    ``copy_data`` is accepted and has no effect. Errors: unknown or deleted parent ``23503``;
    a name already used -- also by a deleted branch -- ``23505``; a name outside 1..255
    characters ``23514``. ``delete_branch_simple(name)`` marks it ``DELETED`` (the row stays: a
    deleted branch stays deleted, its name is never reused); ``main`` cannot be deleted
    (``23514``); unknown or already deleted ``P0002``. ``list_branches()`` lists
    ``(name, parent_name, status, head_commit_hash)``.

Commits -- ``commit_changes(p_branch_name, p_message='', p_custom_trinity_id=NULL) -> text``
    Returns the new commit's Trinity ID (the custom one if given). The branch is created on first
    use with parent ``main``, as ``create_branch`` would. The commit row
    ``(hash, branch_id, parent_commit_hash, message, author)`` has the branch's previous head as
    parent, the message exactly as sent (quotes, backslashes, ``$$``, 10k characters: stored,
    never executed), ``author = current_user``; the branch head advances to it. The row exists if
    and only if the calling transaction commits. Commits to one branch serialise on the branch
    row (``FOR NO KEY UPDATE``): concurrent commits form one chain; under ``REPEATABLE READ`` or
    ``SERIALIZABLE`` a commit that waited for another fails with ``40001``. Errors: deleted
    branch ``55000``; custom ID already used ``23505``; custom ID not in the format ``23514``.

Versions -- tables ``objects`` and ``history``, function ``get_version('schema.table')``
    Tracked objects are tables outside ``pggit``, ``pg_catalog``, ``information_schema`` and
    temporary schemas. Each tracked DDL statement bumps its table's ``version`` by exactly one
    and appends one ``history`` row ``(change_type, old_version, new_version)`` with
    ``old_version`` = the previous ``new_version`` (history is contiguous):

    - ``CREATE TABLE n``: a new object at version 1 (``CREATE``, NULL -> 1) -- unless dropped
      objects named ``n`` exist: then the most recently dropped one is re-activated and its line
      continues (``CREATE``, v -> v+1).
    - ``ALTER TABLE n ...`` (any number of subcommands): ``ALTER``, v -> v+1.
    - ``ALTER TABLE n RENAME TO m``: the same object, renamed; ``RENAME``, v -> v+1.
    - ``DROP TABLE n``: the object becomes inactive and keeps its row; ``DROP``, v -> v+1.

    ``objects.object_name`` is the table's name exactly (quotes, dots, unicode), never parsed from
    a quoted identity. ``get_version(schema_name || '.' || object_name)`` returns the active
    object's version (no row for a dropped name). DDL, version bumps and history roll back with
    their transaction, whole or to a savepoint, or when the backend is terminated.

Errors keep their SQLSTATE: nothing wraps an error into a generic ``P0001``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ...engine import check_mutants
from .mutants import CONCURRENT_ONLY, MUTANTS, apply_mutants

__all__ = ["CONCURRENT_ONLY", "MUTANTS", "MUTANTS_NOTE", "install", "install_sql"]

#: How an install with seeded bugs names them: the pggit schema's comment starts with this.
MUTANTS_NOTE = "statemodels mutants: "


def install_sql(
    mutants: Iterable[str] = frozenset(), *, dblink_conninfo: str = "", source: str | None = None
) -> str:
    """The install script, with the chosen mutants applied.

    Args:
        mutants: names from :data:`MUTANTS`.
        dblink_conninfo: how the ``commit-outside-transaction`` mutant reaches its own server
            (the database name is added at run time).
        source: the script to install instead of the bundled ``pggit.sql`` (a generated
            mutant of it, see :mod:`statemodels.mutation.sql`); ``None`` is the bundled one.

    Raises:
        ConfigurationError: an unknown mutant name (one line, listing the valid ones).
    """
    chosen = check_mutants(mutants, MUTANTS)
    text = source
    if text is None:
        text = resources.files(__package__).joinpath("pggit.sql").read_text(encoding="utf-8")
    return apply_mutants(text, chosen, dblink_conninfo=dblink_conninfo)


def install(
    conn: psycopg.Connection[Any],
    mutants: Iterable[str] = frozenset(),
    *,
    source: str | None = None,
) -> None:
    """Install the bundled pgGit-compatible schema into the database behind ``conn``.

    Runs as one script on ``conn`` (the caller commits; :class:`TemplateJanitor` does). Needs a
    superuser: the DDL tracking uses event triggers. ``source`` replaces the bundled script
    (see :func:`install_sql`).

    Raises:
        ConfigurationError: an unknown mutant name.
        psycopg.Error: the database refused the script (not a superuser, schema already there).
    """
    chosen = check_mutants(mutants, MUTANTS)
    info = conn.info
    # Only the dblink mutant uses this: a second connection back to this very server.
    conninfo = make_conninfo(host=info.host, port=info.port, user=info.user)
    conn.execute(install_sql(chosen, dblink_conninfo=conninfo, source=source).encode())
    if chosen:
        # Said where the driver can read it, so a divergence's trace names the seeded bugs and
        # ``statemodels replay`` rebuilds the same world (nothing judges schema comments).
        note = MUTANTS_NOTE + ",".join(sorted(chosen))
        conn.execute(sql.SQL("COMMENT ON SCHEMA pggit IS {}").format(sql.Literal(note)))
