"""The pggit machine against the bundled system, and against a plain DSN as a user would run it.

``STATEMODELS_PGGIT_DSN`` (or ``--statemodels-pggit-dsn``) names a user's own pgGit database:
the external-DSN test then clones that one per example instead of a database it installs itself
(see the README).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from statemodels.engine import catch_mutant, run_machine
from statemodels.errors import ConfigurationError
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import (
    Commit,
    CreateTable,
    DatabaseClones,
    PggitDriver,
    Txn,
    install,
    machine_factory,
)
from statemodels.pggit.expect import TRINITY_RE
from statemodels.pytest_plugin import option_value


@pytest.fixture(scope="module")
def pggit_worlds(statemodels_postgres: PostgresServer) -> Iterator[TemplateJanitor]:
    """The bundled system installed once into a template; a verified clone per example."""
    with TemplateJanitor(statemodels_postgres, name="pggit", install=install) as worlds:
        yield worlds


@pytest.fixture
def user_pggit_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """The user's pgGit database (``--statemodels-pggit-dsn``) if given, else a database where
    pgGit was installed by hand, as a user would have it."""
    external = option_value(request.config, "pggit_dsn")
    if external:
        yield external
        return
    # Only now: with an external DSN no private server is started at all.
    statemodels_postgres: PostgresServer = request.getfixturevalue("statemodels_postgres")
    name = f"sm_pggit_user_{os.getpid()}"
    ident = sql.Identifier(name)
    with statemodels_postgres.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        with psycopg.connect(statemodels_postgres.dsn_for(name), connect_timeout=5) as conn:
            install(conn)
            conn.commit()
        yield statemodels_postgres.dsn_for(name)
    finally:
        with statemodels_postgres.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def test_pggit_machine_against_the_bundled_system(pggit_worlds: TemplateJanitor) -> None:
    run_machine(machine_factory(pggit_worlds))


def test_pggit_machine_against_a_plain_dsn_like_an_external_user(
    user_pggit_dsn: str, pytestconfig: pytest.Config
) -> None:
    # A user declares the known differences of their pgGit; the model adopts them.
    quirks = option_value(pytestconfig, "pggit_quirks")
    with DatabaseClones(user_pggit_dsn) as worlds:
        run_machine(machine_factory(worlds, quirks=quirks))


def test_pggit_driver_on_a_plain_dsn_reports_what_the_database_did(user_pggit_dsn: str) -> None:
    with DatabaseClones(user_pggit_dsn) as worlds:
        dsn = worlds.fresh()
        driver = PggitDriver(dsn, on_close=lambda: worlds.release(dsn))
        try:
            first = driver.run(Commit("main", "it's $$ \\ 🐘"))
            assert TRINITY_RE.fullmatch(first["trinity_id"])
            gone = driver.run(Txn((CreateTable('a "b"'), Commit("main", "gone")), end="terminate"))
            assert gone["terminated"] is True and gone["op1.error"] is None
            assert driver.run(CreateTable("t1")).error is None
            assert driver.run(CreateTable("t1")).error == "42P07"
            seen = driver.observe()
            assert seen["chains"]["main"] == (("main", "it's $$ \\ 🐘"),)
            assert seen["heads"]["main"] == first["trinity_id"]
            assert seen["objects"] == (("t1", True, 1),)
            assert seen["authors"] == (driver.role,)
        finally:
            driver.close()


def test_a_database_without_pggit_is_a_one_line_error(statemodels_postgres: PostgresServer) -> None:
    with pytest.raises(ConfigurationError) as info:
        PggitDriver(statemodels_postgres.dsn)
    message = str(info.value)
    assert "pggit.commit_changes" in message and "\n" not in message


@pytest.mark.mutant
def test_pggit_machine_catches_a_seeded_bug(statemodels_postgres: PostgresServer) -> None:
    """The sample hunt of a first run; every mutant is hunted in tests/mutants/."""
    # The quickest catch of the catalogue (statemodels hunt pggit): the first run stays short.
    mutants = frozenset({"name-from-identity"})
    with TemplateJanitor(
        statemodels_postgres, name="pggit_sample", install=lambda conn: install(conn, mutants)
    ) as worlds:
        found = catch_mutant(machine_factory(worlds), budget="ci", max_steps=5)
    assert re.search(r"^PggitMachine/view/.*objects:differs", found.signature), found.signature
