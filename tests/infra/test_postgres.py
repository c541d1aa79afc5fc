"""PostgreSQL executor and janitor against a real, private cluster."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from statemodels.errors import ConfigurationError, MissingBinaryError, ServerError
from statemodels.infra import (
    PostgresServer,
    ProcessIdentity,
    TemplateJanitor,
    free_port,
    live_descendants,
)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer.start() as server:
        yield server


def _install(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO item (name) VALUES ('a'), ('b');"
        "CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM item'"
    )


def _databases(pg: PostgresServer, pattern: str) -> set[str]:
    with pg.connect() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
        return {r[0] for r in rows}


def test_start_and_connect(pg: PostgresServer) -> None:
    assert pg.owned and pg.host == "127.0.0.1"
    assert pg.port not in (5432,)
    assert pg.data_dir is not None and os.path.isdir(pg.data_dir)
    with pg.connect() as conn:
        row = conn.execute("SELECT current_database(), current_setting('fsync')").fetchone()
    assert row == ("postgres", "off")
    ours = {p.pid for p in live_descendants()}
    assert pg.pids() and pg.pids() <= ours


def test_fresh_write_release_then_next_fresh_is_clean(pg: PostgresServer) -> None:
    with TemplateJanitor(pg, name="items", install=_install) as jan:
        dsn = jan.fresh()
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT item_count()").fetchone() == (2,)
            conn.execute("INSERT INTO item (name) VALUES ('dirty')")
            conn.execute("CREATE TABLE junk (x int)")
        jan.release(dsn)
        dsn2 = jan.fresh()
        assert dsn2 != dsn
        with psycopg.connect(dsn2) as conn:
            assert conn.execute("SELECT item_count()").fetchone() == (2,)
            assert conn.execute("SELECT to_regclass('junk')").fetchone() == (None,)
            # Sequences restart too: the next id is 3, not 4.
            assert conn.execute("INSERT INTO item (name) VALUES ('c') RETURNING id").fetchone() == (
                3,
            )
        with pytest.raises(ConfigurationError, match="not a live database"):
            jan.release(dsn)  # already released
        jan.release(dsn2)
        template = jan.template
    # close() waited for the background drops and removed the template too.
    assert not _databases(pg, "sm\\_items\\_%")
    assert template not in _databases(pg, "sm\\_tpl\\_%")


@pytest.mark.parametrize(
    ("verify", "tamper"),
    [
        ("catalog", "CREATE TABLE smuggled (x int)"),
        ("full", "INSERT INTO item (name) VALUES ('smuggled')"),
    ],
)
def test_fresh_refuses_a_clone_of_a_modified_template(
    pg: PostgresServer, verify: str, tamper: str
) -> None:
    with TemplateJanitor(
        pg, name="guard", install=_install, verify=verify, prefetch=0, background_drop=False
    ) as jan:
        dsn = jan.fresh()  # clean so far
        jan.release(dsn)
        with pg.connect() as admin:
            admin.execute(f'ALTER DATABASE "{jan.template}" WITH ALLOW_CONNECTIONS true')
        with pg.connect(jan.template) as conn:
            conn.execute(tamper)
        with pytest.raises(ServerError, match="is not clean") as info:
            jan.fresh()
        assert "\n" not in str(info.value)
        assert not _databases(pg, "sm\\_guard\\_%")  # the bad clone was dropped


def test_janitor_rejects_bad_options(pg: PostgresServer) -> None:
    with pytest.raises(ConfigurationError, match="'Bad-Name'"):
        TemplateJanitor(pg, name="Bad-Name", install=None)
    with pytest.raises(ConfigurationError, match="'always'"):
        TemplateJanitor(pg, name="ok", install=None, verify="always")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'copy'"):
        TemplateJanitor(pg, name="ok", install=None, strategy="copy")  # type: ignore[arg-type]


def test_two_janitors_with_one_name_do_not_collide(pg: PostgresServer) -> None:
    with (
        TemplateJanitor(pg, name="twin", install=None) as one,
        TemplateJanitor(pg, name="twin", install=_install) as two,
    ):
        assert one.template != two.template
        a, b = one.fresh(), two.fresh()
        assert a != b
        with psycopg.connect(b) as conn:
            assert conn.execute("SELECT count(*) FROM item").fetchone() == (2,)
        one.release(a)
        two.release(b)


def test_release_forces_out_a_lingering_session(pg: PostgresServer) -> None:
    with TemplateJanitor(pg, name="linger", install=None, background_drop=False) as jan:
        dsn = jan.fresh()
        leaked = psycopg.connect(dsn)
        try:
            started = time.monotonic()
            jan.release(dsn)  # a session lingers: DROP ... WITH (FORCE) terminates it
            assert time.monotonic() - started < 2.0  # not the 5 s a plain DROP would wait
            with pytest.raises(psycopg.OperationalError):
                leaked.execute("SELECT 1")
        finally:
            leaked.close()
        assert conninfo_to_dict(dsn)["dbname"] not in _databases(pg, "sm\\_linger\\_%")


def test_attach_to_a_running_server(pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEMODELS_PG_DSN", pg.dsn)
    with PostgresServer.from_env() as attached:
        assert not attached.owned and attached.port == pg.port
        assert attached.pids() == set()
        with attached.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pg.alive()  # stopping an attached server leaves it running


def test_attach_bad_dsn_is_a_one_line_configuration_error() -> None:
    port = free_port()
    dsn = f"host=127.0.0.1 port={port} user=postgres password=s3cret dbname=postgres"
    with pytest.raises(ConfigurationError) as info:
        PostgresServer.attach(dsn)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(port) in msg and "s3cret" not in msg and "***" in msg
    assert "STATEMODELS_PG_DSN" in msg
    with pytest.raises(ConfigurationError, match="'nonsense=='"):
        PostgresServer.attach("nonsense==")


def test_missing_binaries_dir_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = str(tmp_path / "no-pg-here")
    with pytest.raises(MissingBinaryError) as info:
        PostgresServer.start(bin_dir=nowhere)
    msg = str(info.value)
    assert "\n" not in msg
    assert nowhere in msg and "bin_dir argument" in msg
    for hint in ("STATEMODELS_PG_BIN", "STATEMODELS_PG_DSN", "apt-get install postgresql"):
        assert hint in msg
    monkeypatch.setenv("STATEMODELS_PG_BIN", nowhere)
    with pytest.raises(MissingBinaryError, match="from STATEMODELS_PG_BIN"):
        PostgresServer.start()


def test_start_on_a_taken_port_fails_instead_of_using_the_other_server(
    pg: PostgresServer,
) -> None:
    with pytest.raises(ServerError, match=f"port {pg.port} is already in use") as info:
        PostgresServer.start(port=pg.port)
    msg = str(info.value)
    assert "\n" not in msg and "STATEMODELS_PG_DSN" in msg


def test_stop_leaves_no_process_and_no_data_dir() -> None:
    server = PostgresServer.start()
    with server.connect() as conn:  # a backend exists too
        conn.execute("SELECT 1")
        tree = [ProcessIdentity.of(pid) for pid in server.pids()]
        base = os.path.dirname(server.data_dir or "")
        assert len(tree) >= 2 and os.path.isdir(base)
        server.stop()
    assert not [ident for ident in tree if ident.alive()]
    assert not os.path.exists(base)
    assert server.pids() == set()
    server.stop()  # idempotent
