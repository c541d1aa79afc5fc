"""Redis executor: start, verified reset, outages and restarts, attach -- on real servers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from statemodels.errors import ConfigurationError, MissingBinaryError, ServerError
from statemodels.infra import ProcessIdentity, RedisServer, free_port


@pytest.fixture
def rs() -> Iterator[RedisServer]:
    with RedisServer.start() as server:
        yield server


def test_start_set_get_and_reset(rs: RedisServer) -> None:
    assert rs.owned and rs.host == "127.0.0.1" and rs.port != 6379
    assert rs.url == f"redis://127.0.0.1:{rs.port}/0"
    client = rs.client()
    try:
        client.set("k", "v")
        client.mset({f"n{i}": i for i in range(100)})
        assert client.get("k") == b"v"
        rs.reset()
        assert client.dbsize() == 0 and client.get("k") is None
    finally:
        client.close()
    assert rs.is_up() and len(rs.pids()) == 1


def test_kill_is_an_outage_and_restart_comes_back_on_the_same_port(rs: RedisServer) -> None:
    client = rs.client()
    try:
        client.set("k", "v")
        old = ProcessIdentity.of(next(iter(rs.pids())))
        port = rs.port
        rs.kill()
        assert not old.alive()
        assert not rs.is_up()
        with pytest.raises(redis.ConnectionError):
            rs.client(socket_connect_timeout=0.5).ping()
        rs.restart()
        assert rs.port == port and rs.is_up()
        assert client.ping()  # the old client reconnects to the same address
        assert client.get("k") is None  # no persistence: it came back empty
        assert rs.pids() and old.pid not in rs.pids()
    finally:
        client.close()


def test_restart_of_a_running_server_replaces_the_process(rs: RedisServer) -> None:
    old = ProcessIdentity.of(next(iter(rs.pids())))
    rs.restart()
    assert not old.alive() and rs.is_up()


def test_stop_leaves_nothing() -> None:
    server = RedisServer.start()
    proc = ProcessIdentity.of(next(iter(server.pids())))
    workdir = server._state["dir"]
    assert workdir and os.path.isdir(workdir)
    server.stop()
    assert not proc.alive()
    assert not os.path.exists(workdir)
    assert server.pids() == set() and not server.is_up()
    server.stop()  # idempotent


def test_attach_and_outages_need_an_owned_server(
    rs: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEMODELS_REDIS_URL", rs.url)
    with RedisServer.from_env() as attached:
        assert not attached.owned and attached.port == rs.port
        assert attached.pids() == set() and attached.is_up()
        with pytest.raises(ConfigurationError, match="outages need an owned server"):
            attached.kill()
        with pytest.raises(ConfigurationError, match="outages need an owned server"):
            attached.restart()
    assert rs.is_up()  # leaving the attached one did not stop the real one


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:{port}/0", "redis://:***@127.0.0.1:{port}/0"),
        ("http://127.0.0.1:{port}", "http://127.0.0.1:{port}"),
    ],
)
def test_bad_url_is_a_one_line_configuration_error(url: str, shown: str) -> None:
    port = free_port()
    with pytest.raises(ConfigurationError) as info:
        RedisServer.attach(url.format(port=port))
    msg = str(info.value)
    assert "\n" not in msg and "hunter2" not in msg
    assert repr(shown.format(port=port)) in msg
    assert "STATEMODELS_REDIS_URL" in msg


def test_start_on_a_taken_port_fails_instead_of_using_the_other_server(rs: RedisServer) -> None:
    with pytest.raises(ServerError, match=f"port {rs.port} is already in use") as info:
        RedisServer.start(port=rs.port)
    assert "\n" not in str(info.value) and "STATEMODELS_REDIS_URL" in str(info.value)
    assert rs.is_up()


def test_missing_binary_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEMODELS_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(MissingBinaryError) as info:
        RedisServer.start()
    msg = str(info.value)
    assert "\n" not in msg and "/nonexistent/redis-server" in msg
    assert "apt-get install redis-server" in msg and "STATEMODELS_REDIS_URL" in msg
