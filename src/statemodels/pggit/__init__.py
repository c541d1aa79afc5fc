"""pggit: git-like schema versioning inside PostgreSQL, tested against a pure model.

- :class:`PggitModel` -- the contract (written down in :mod:`statemodels.pggit.system`).
- :class:`PggitDriver` -- runs commands on any database holding a pgGit-compatible schema.
- :class:`PggitMachine` and :func:`machine_factory` -- the lockstep machine.
- :func:`install` and :data:`MUTANTS` -- the bundled system and its seeded bugs.
- :class:`DatabaseClones` -- a fresh clone of a user's own pgGit database per example.

Example::

    from statemodels.engine import run_machine
    from statemodels.infra import PostgresServer, TemplateJanitor
    from statemodels.pggit import install, machine_factory

    with PostgresServer.start() as pg, TemplateJanitor(pg, name="pggit", install=install) as w:
        run_machine(machine_factory(w), budget="ci")
"""

from .clones import DatabaseClones
from .commands import (
    AlterTable,
    Commit,
    ConcurrentCommits,
    CreateBranch,
    CreateTable,
    DeleteBranch,
    DropTable,
    GenerateIds,
    RenameTable,
    Txn,
)
from .driver import PggitDriver
from .machine import PggitMachine, Worlds, machine_factory
from .model import QUIRKS, PggitModel
from .system import CONCURRENT_ONLY, MUTANTS, install

__all__ = [
    "CONCURRENT_ONLY",
    "MUTANTS",
    "QUIRKS",
    "AlterTable",
    "Commit",
    "ConcurrentCommits",
    "CreateBranch",
    "CreateTable",
    "DatabaseClones",
    "DeleteBranch",
    "DropTable",
    "GenerateIds",
    "PggitDriver",
    "PggitMachine",
    "PggitModel",
    "RenameTable",
    "Txn",
    "Worlds",
    "install",
    "machine_factory",
]
