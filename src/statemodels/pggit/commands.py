"""The pggit machine's commands: plain frozen data whose ``repr`` is the printed repro.

*Ops* are single SQL-level actions (``CreateTable``, ``Commit``, ...). A top-level op runs in its
own autocommit statement; :class:`Txn` runs several ops inside one transaction that never
commits them; :class:`ConcurrentCommits` and :class:`GenerateIds` exercise Trinity IDs and the
branch lock. Tables live in schema ``public``; every name is passed as a quoted identifier or a
bound parameter, never spliced into SQL.

Example repro, as a divergence prints it::

    CreateTable(name='a.b')
    Commit(branch='main', message=' hi ')
    Txn(ops=(Commit(branch='main', message=''),), end='rollback')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs

from ..errors import ConfigurationError

__all__ = [
    "AlterTable",
    "Commit",
    "ConcurrentCommits",
    "CreateBranch",
    "CreateTable",
    "DeleteBranch",
    "DropTable",
    "GenerateIds",
    "Op",
    "ReadBranch",
    "ReadLog",
    "RenameTable",
    "Txn",
    "TxnEnd",
]


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _no_nul(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if "\x00" in value:
        raise ConfigurationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} contains NUL, which "
            "PostgreSQL text cannot store; drop the NUL character"
        )


def _identifier(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    for name in value if isinstance(value, tuple) else (value,):
        _no_nul(instance, attribute, name)
        if not 1 <= len(name.encode()) <= 63:
            raise ConfigurationError(
                f"{type(instance).__name__}.{attribute.name}: identifier {name!r} is "
                f"{len(name.encode())} bytes; PostgreSQL needs 1..63 (it truncates longer ones)"
            )


@attrs.frozen
class CreateTable:
    """``CREATE TABLE public.<name> ()``."""

    name: str = attrs.field(validator=_identifier)


@attrs.frozen
class AlterTable:
    """``ALTER TABLE public.<name> ADD COLUMN <c1> integer, ADD COLUMN <c2> integer, ...``."""

    name: str = attrs.field(validator=_identifier)
    add: tuple[str, ...] = attrs.field(converter=_tuple, validator=_identifier)


@attrs.frozen
class RenameTable:
    """``ALTER TABLE public.<name> RENAME TO <new_name>``."""

    name: str = attrs.field(validator=_identifier)
    new_name: str = attrs.field(validator=_identifier)


@attrs.frozen
class DropTable:
    """``DROP TABLE public.<name>``."""

    name: str = attrs.field(validator=_identifier)


@attrs.frozen
class Commit:
    """``SELECT pggit.commit_changes(branch, message[, trinity])``; ``trinity`` is a custom ID."""

    branch: str = attrs.field(validator=_no_nul)
    message: str = attrs.field(validator=_no_nul)
    trinity: str | None = attrs.field(default=None, validator=attrs.validators.optional(_no_nul))


@attrs.frozen
class CreateBranch:
    """``SELECT pggit.create_branch(name, parent)``."""

    name: str = attrs.field(validator=_no_nul)
    parent: str = attrs.field(default="main", validator=_no_nul)


@attrs.frozen
class DeleteBranch:
    """``SELECT pggit.delete_branch_simple(name)``."""

    name: str = attrs.field(validator=_no_nul)


@attrs.frozen
class ReadBranch:
    """``SELECT status, head_commit_hash FROM pggit.branches WHERE name = ...``: every row."""

    name: str = attrs.field(validator=_no_nul)


@attrs.frozen
class ReadLog:
    """The branch's history: Trinity IDs from its head back along parent links (one query)."""

    branch: str = attrs.field(validator=_no_nul)


Op = CreateTable | AlterTable | RenameTable | DropTable | Commit | CreateBranch | DeleteBranch
TxnEnd = Literal["rollback", "savepoint", "terminate"]


@attrs.frozen
class Txn:
    """Ops inside one transaction whose work must vanish.

    ``end``:
        ``rollback``: ``BEGIN; ops; ROLLBACK``.
        ``savepoint``: ``BEGIN; keep; SAVEPOINT s; ops; ROLLBACK TO SAVEPOINT s; COMMIT`` --
        ``keep`` persists, ``ops`` vanish.
        ``terminate``: on a second connection ``BEGIN; ops``, then ``pg_terminate_backend``.
    """

    ops: tuple[Op, ...] = attrs.field(converter=_tuple)
    end: TxnEnd = "rollback"
    keep: tuple[Op, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class ConcurrentCommits:
    """One commit per message to ``branch``, each from its own connection and transaction.

    The driver starts them in order, each once the previous one returned or is waiting for a
    lock, then ends the transactions in order -- a deterministic overlap, so a missing branch lock
    forks the history every time, not once in a while.
    """

    branch: str
    messages: tuple[str, ...] = attrs.field(converter=_tuple)
    isolation: Literal["read committed", "serializable"] = "read committed"


@attrs.frozen
class GenerateIds:
    """``SET TIME ZONE timezone`` (it stays set), then ``generate_trinity_id()`` ``count`` times."""

    count: int
    timezone: str = "UTC"
