"""status2 end to end: the bundled service (a real process on a real Redis) against the model.

One test runs the machine at the active budget; one sample mutant hunt; the rest pin the parts of
the contract that a machine run only touches by chance (origins unset, /health, /metrics off).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.errors import ConfigurationError
from statemodels.infra.ports import free_port
from statemodels.infra.redis import RedisServer
from statemodels.pytest_plugin import long_lived
from statemodels.status2 import ServiceConfig, Status2Service, bundled_machine, bundled_status2
from statemodels.status2.clients import ClientLoop
from statemodels.status2.commands import Connect, Heartbeat, Publish
from statemodels.status2.target import UserTarget, parse_config


@pytest.fixture(scope="module")
def status2_redis() -> Iterator[RedisServer]:
    """A Redis of our own: the machine kills and restarts it (outages)."""
    server = RedisServer.start()
    long_lived(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def status2(status2_redis: RedisServer) -> Iterator[Status2Service]:
    with bundled_status2(status2_redis) as svc:
        long_lived(svc)
        yield svc


def test_status2_agrees_with_its_model(status2, status2_redis):
    run_machine(lambda: bundled_machine(status2, status2_redis))


def test_a_client_we_starve_may_be_cut_and_that_is_no_divergence(status2, status2_redis):
    """Our client loop gets no CPU for twice the pong timeout: the service cuts it, as it
    must. The machine neither calls that a divergence nor owes the socket anything after."""
    machine = bundled_machine(status2, status2_redis)
    try:
        machine.perform(Connect("/r1:status"))
        machine.perform(Connect("/r1:status"))
        client = machine.status2.clients[0]

        async def starve() -> None:
            time.sleep(2 * status2.config.pong_timeout_ms / 1000)  # blocks the loop's thread

        machine.status2.loop.call(starve(), 5.0)
        deadline = time.monotonic() + 5.0
        while client.closed_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.frames[-1:] == [("hangup", "")] and client.close_code == 1000
        # Both sockets share the loop, so both were starved and cut; a Divergence would raise.
        machine.perform(Publish("r1:status", b"after the cut"))
        assert machine.state.open_sockets() == []
        machine.perform(Connect("/r1:status"))
        machine.perform(Publish("r1:status", b"to the new one"))
        assert machine.status2.clients[2].frames == [("status", "to the new one")]
    finally:
        machine.teardown()


def test_a_cut_we_starved_that_is_still_unread_is_not_a_missing_receiver(status2, status2_redis):
    """The service cut both sockets while our loop was stalled: the hangups wait unread in
    the sockets when the next step runs. A Publish judged then must not expect them among the
    receivers (a loaded run read ``receivers`` 1 for 2 so): the machine lets the loop catch up
    first."""
    machine = bundled_machine(status2, status2_redis)
    try:
        machine.perform(Connect("/r1:status"))
        machine.perform(Connect("/r1:status"))

        async def starve() -> None:
            time.sleep(3 * status2.config.pong_timeout_ms / 1000)  # blocks the loop's thread

        blocker = threading.Thread(target=machine.status2.loop.call, args=(starve(), 5.0))
        blocker.start()
        try:
            deadline = time.monotonic() + 5.0
            while machine.status2.redis.pubsub_numsub("r1:status")[0][1] and (
                time.monotonic() < deadline
            ):
                time.sleep(0.01)
            assert all(c.hangup_at is None for c in machine.status2.clients.values())
            machine.perform(Publish("r1:status", b"while the hangups are unread"))
        finally:
            blocker.join()
        assert machine.state.open_sockets() == []
    finally:
        machine.teardown()


def test_a_client_starved_during_its_heartbeat_is_not_the_heartbeat_s_cut(status2, status2_redis):
    """Answering ``PONG`` while our loop starves: the cut is ours, not the word's."""
    machine = bundled_machine(status2, status2_redis)
    try:
        machine.perform(Connect("/r1:status"))

        async def starve() -> None:
            # A pong timeout and a bit: the loop wakes inside the heartbeat's wait and reads
            # the cut there (a longer stall would end after the wait, as a plain cut).
            time.sleep((status2.config.pong_timeout_ms + 100) / 1000)

        blocker = threading.Timer(0.05, machine.status2.loop.call, (starve(), 5.0))
        blocker.start()
        try:
            machine.perform(Heartbeat(0, "PONG"))  # a Divergence (cut: differs) would raise
        finally:
            blocker.join()
        assert machine.status2.clients[0].close_code == 1000
        machine.perform(Publish("r1:status", b"after"))
        assert machine.state.open_sockets() == []
    finally:
        machine.teardown()


def test_the_client_loop_measures_its_own_stalls():
    """The excuse rests on this meter: a blocked loop reads as stalled, a free one does not."""
    loop = ClientLoop()
    try:
        start = time.monotonic()
        time.sleep(0.5)
        assert loop.stalled(start, time.monotonic()) < 0.3  # what starving one pong would need

        async def block() -> None:
            time.sleep(0.5)

        start = time.monotonic()
        loop.call(block(), 5.0)
        assert loop.stalled(start, time.monotonic()) >= 0.4
    finally:
        loop.close()


@pytest.mark.mutant
def test_status2_machine_catches_a_pattern_subscription(status2_redis):
    with bundled_status2(status2_redis, mutants={"pattern-subscribe"}) as svc:
        found = catch_mutant(lambda: bundled_machine(svc, status2_redis), budget="ci", max_steps=15)
    assert "numpat" in found.signature or "cross-channel" in found.signature


def _get(svc: Status2Service, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_origins_unset_accepts_any_and_says_so(status2_redis):
    config = ServiceConfig(allowed_origins=(), metrics=True)
    with bundled_status2(status2_redis, config) as svc:
        status, text = _get(svc, "/metrics")
        assert status == 200
        assert "status2_origin_check_disabled 1.0" in text
        assert "STATUS_ALLOWED_ORIGINS is unset" in svc.log_text()


def test_health_and_metrics_disabled(status2_redis):
    with bundled_status2(status2_redis, ServiceConfig(metrics=False)) as svc:
        assert _get(svc, "/health") == (200, "OK")
        assert _get(svc, "/metrics")[0] == 404
        assert _get(svc, "/")[0] == 404


def test_an_unknown_mutant_is_a_one_line_error(status2_redis):
    with pytest.raises(ConfigurationError) as info:
        Status2Service.start(ServiceConfig(), redis_url=status2_redis.url, mutants={"no-jiter"})
    assert str(info.value).startswith("unknown mutant(s) 'no-jiter': choose from ")


def test_a_user_s_status2_by_url(status2, status2_redis):
    """``STATEMODELS_STATUS2_URL`` (+ ``_REDIS_URL``, ``_CONFIG``) drives a running status2 the
    machine does not own; without it the bundled one stands in, reached only by its URL."""
    target = UserTarget.from_env() or UserTarget(
        status2.base_url, status2_redis.url, status2.config, redis_control=True
    )
    target.validate()
    run_machine(target.machine, max_examples=3)


def test_a_user_target_that_is_wrong_is_a_one_line_error(status2, status2_redis):
    nowhere = UserTarget(
        f"http://127.0.0.1:{free_port()}", status2_redis.url, status2.config, False
    )
    with pytest.raises(
        ConfigurationError, match=r"^cannot reach status2 at .*STATEMODELS_STATUS2_URL"
    ):
        nowhere.validate()
    not_status2 = UserTarget(
        f"http://127.0.0.1:{status2_redis.port}", status2_redis.url, status2.config, False
    )
    with pytest.raises(ConfigurationError, match=r"^cannot reach status2|is not a status2"):
        not_status2.validate()
    with RedisServer.start() as other:
        wrong = UserTarget(status2.base_url, other.url, status2.config, False)
        with pytest.raises(
            ConfigurationError, match="STATEMODELS_STATUS2_REDIS_URL must be the Redis"
        ):
            wrong.validate()
    with pytest.raises(ConfigurationError, match="STATEMODELS_STATUS2_CONFIG part 'pong=soon'"):
        parse_config("ping=100,pong=soon")
    assert parse_config("ping=100,origins=a.example|*.b.example").allowed_origins == (
        "a.example",
        "*.b.example",
    )
