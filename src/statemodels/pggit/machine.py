"""The pggit machine: table DDL, commits, branches, rollbacks, concurrency -- in lockstep.

Each step draws one command -- create / alter / rename / drop a table, commit, create / delete a
branch, a transaction that rolls back (whole or to a savepoint) or whose backend is terminated,
concurrent commits from several connections, Trinity IDs under a session time zone -- and hands
it to :meth:`~statemodels.engine.ModelMachine.execute` (model and real database side by side).
After every step the engine compares the model's view with what the ``pggit`` tables hold. A
divergence is shrunk to a few SQL-level steps.

All commands come from one rule drawing :func:`statemodels.strategies.pggit.commands` (a
``one_of``), not one rule per command kind: with ten rules, Hypothesis's swarm testing (per
example feature flags over rules) left repros of 11 steps it could not shrink, where the single
rule shrinks the same bug to its one essential step. Statistics per command kind still come from
the command's type. The draw favours names the model has already seen, so collisions (drop and
re-create, delete and commit) happen within a few steps, and two times in three it names what
the model says the op succeeds on now (a live table to alter, an active branch to delete): a step
that fails changes nothing.

Per example the machine needs a fresh database; anything with ``fresh() -> dsn`` and
``release(dsn)`` provides one (:class:`~statemodels.infra.TemplateJanitor` for the bundled
system, :class:`~statemodels.pggit.clones.DatabaseClones` for a user's pgGit database)::

    with TemplateJanitor(pg, name="pggit", install=install) as worlds:
        run_machine(machine_factory(worlds))
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol, cast

from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..engine import ModelMachine
from ..strategies import pggit as strategies
from .driver import PggitDriver
from .model import ACTIVE, PggitModel, check_quirks

__all__ = ["PggitMachine", "Worlds", "machine_factory"]


class Worlds(Protocol):
    """Hands out a fresh database per example and takes it back."""

    def fresh(self) -> str: ...

    def release(self, dsn: str) -> None: ...


class PggitMachine(ModelMachine):
    """Drives a pgGit-compatible database and :class:`PggitModel` in lockstep."""

    machine_name = "PggitMachine"

    def __init__(self, driver: PggitDriver, *, quirks: Collection[str] = ()) -> None:
        super().__init__(driver, PggitModel(role=driver.role, quirks=frozenset(quirks)))

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        # Names the example already used are drawn more often: a table is dropped and
        # re-created, a branch deleted and then committed to, within a few steps; what exists
        # now steers most picks to steps that succeed.
        model = cast(PggitModel, self.model)
        tables, branches = model.known_names()
        live = tuple(model.live_tables())
        used = tuple(dict.fromkeys(c.custom for c in model.commits if c.custom is not None))
        active = tuple(b.name for b in model.branches if b.name != "main" and b.status == ACTIVE)
        command = strategies.commands(tables, branches, live, used, active)
        self.execute(data.draw(command, label="command"))


def machine_factory(
    worlds: Worlds, *, quirks: Collection[str] = (), **driver_options: float
) -> Callable[[], PggitMachine]:
    """A factory for ``run_machine``: a fresh database and a new driver per example.

    The database goes back to ``worlds`` when the driver closes (the machine's teardown); if the
    driver cannot be built, it has already handed the database back itself. ``quirks`` are the
    deployment's declared differences (:data:`~statemodels.pggit.model.QUIRKS`).
    """
    declared = check_quirks(frozenset(quirks))

    def make() -> PggitMachine:
        dsn = worlds.fresh()
        return PggitMachine(
            PggitDriver(dsn, on_close=lambda: worlds.release(dsn), **driver_options),
            quirks=declared,
        )

    return make
