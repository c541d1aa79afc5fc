"""The status2 driver: real WebSocket clients, a real Redis publisher, metrics over HTTP.

It runs commands and reports what happened; it never decides what is correct. Waits are
bounded and end as soon as what they wait for is observed (Redis showing a subscription, a
socket closing); their bounds are generous, because a loaded machine only ever makes things late.

Metrics are reported relative to a baseline taken when the driver starts (the bundled service
is shared by the examples of a test), and from zero after a ``Shutdown`` restarted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ..engine import Outcome
from ..engine.load import StallMeter
from ..infra.processes import poll_until
from ..infra.redis import RedisServer
from .clients import Client, ClientLoop
from .commands import (
    CROWD,
    ClientClose,
    ClientSend,
    Connect,
    Crowd,
    Heartbeat,
    Publish,
    RedisDrop,
    RedisOutage,
    RedisPause,
    Scrape,
    Shutdown,
    Wait,
)
from .config import ServiceConfig
from .system.launch import Status2Service

__all__ = ["METRICS", "Status2Driver", "parse_metrics"]

METRICS = (
    "connections_active",
    "messages_forwarded_total",
    "redis_reconnects_total",
    "write_errors_total",
)
_SAMPLE = re.compile(r"^status2_(\w+?)(?:\{[^}]*\})? ([0-9.eE+-]+|NaN)$")
#: Slack on every wait for something the service must do: only lateness beyond it is a failure.
SLACK = 3.0
#: What an oversized frame's close 1009 may take on an idle machine (it takes milliseconds); on
#: a loaded one the wait grows to SLACK (see ``_wait_close_1009``).
QUICK_CLOSE = 1.0


def parse_metrics(text: str) -> dict[str, float]:
    """``{name: value}`` of the ``status2_*`` samples in a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match:
            out[match.group(1)] = float(match.group(2))
    return out


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


class Status2Driver:
    """Drives one status2 (bundled or a user's) and the Redis it reads.

    Args:
        base_url: ``http://host:port`` of the service (its WebSocket route is ``ws://``).
        redis_url: the Redis (and db) the service subscribes on.
        config: its timings and limits.
        service: the bundled process, when we own it (``Shutdown`` needs it).
        redis_server: an owned Redis (``RedisOutage`` needs it).
        channels: every channel the example may use: must have no subscriber at start.
    """

    def __init__(
        self,
        base_url: str,
        redis_url: str,
        config: ServiceConfig,
        *,
        service: Status2Service | None = None,
        redis_server: RedisServer | None = None,
        channels: tuple[str, ...] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.ws_base = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self.config = config
        self.service = service
        self.redis_server = redis_server
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
        self.loop = ClientLoop()
        self.clients: dict[int, Client] = {}
        self._next = 0
        self._baseline: dict[str, float] = {}
        self._wait_quiet(channels)
        if config.metrics:
            self._baseline = self._raw_metrics()

    # -- helpers ------------------------------------------------------------------------------

    def _call(self, coro: Any, timeout: float) -> Any:
        return self.loop.call(coro, timeout)

    def _wait_quiet(self, channels: tuple[str, ...]) -> None:
        """The previous example's sockets are gone: no subscriber left on our channels."""

        def quiet() -> bool:
            return all(n == 0 for _, n in self.redis.pubsub_numsub(*channels)) if channels else True

        if not poll_until(quiet, timeout=5.0, interval=0.01):
            raise AssertionError("status2 still subscribed to the previous example's channels")

    def _numsub(self, channels: list[str]) -> dict[str, int]:
        if not channels:
            return {}
        return {_text(c): int(n) for c, n in self.redis.pubsub_numsub(*channels)}

    def _open_channels(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.clients.values():
            if c.closed_at is None and c.channel is not None:
                out[c.channel] = out.get(c.channel, 0) + 1
        return out

    def _wait_numsub(self, target: Mapping[str, int], within: float) -> dict[str, int]:
        """Wait until Redis shows ``target`` subscribers per channel; return what it shows."""
        seen: dict[str, int] = {}

        def back() -> bool:
            seen.clear()
            seen.update(self._numsub(sorted(target)))
            return seen == dict(target)

        poll_until(back, timeout=within, interval=0.005)
        return dict(sorted(seen.items()))

    def _settle(self, channels: list[str]) -> None:
        """After sockets closed: wait until Redis no longer counts their subscriptions (the
        service lets go of one a moment after the socket ends; a publish before that would still
        reach it). Bounded; a service that never lets go shows up in the next receiver count."""
        if not channels:
            return
        target = {c: self._open_channels().get(c, 0) for c in channels}
        within = self.config.request_timeout_ms / 1000 + SLACK
        self._wait_numsub(target, within)

    def _http(self, path: str) -> tuple[int, str]:
        parts = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def _raw_metrics(self) -> dict[str, float]:
        status, text = self._http("/metrics")
        if status != 200:
            return {}
        return parse_metrics(text)

    def metrics(self) -> dict[str, Any]:
        """The four metrics, relative to this driver's baseline."""
        raw = self._raw_metrics()
        return {m: raw.get(m, float("nan")) - self._baseline.get(m, 0.0) for m in METRICS}

    def _wait_closed(self, socks: list[Client], within: float) -> None:
        async def wait() -> None:
            pending = [asyncio.ensure_future(c.closed.wait()) for c in socks]
            if pending:
                await asyncio.wait(pending, timeout=within)
            for p in pending:
                p.cancel()

        self._call(wait(), within + 1)

    # -- commands -----------------------------------------------------------------------------

    def run(self, cmd: Any) -> Outcome:
        handler: Callable[[Any], Outcome] | None = getattr(self, "_" + type(cmd).__name__, None)
        if handler is None:
            raise TypeError(f"Status2Driver cannot run {cmd!r}")
        try:
            return handler(cmd)
        except redis.RedisError as exc:
            return Outcome.failed(type(exc).__name__, str(exc))

    def _Connect(self, cmd: Connect) -> Outcome:
        name = cmd.path[1:].removesuffix("/")
        channel = name if ":" in name else None
        before = self._numsub([channel]) if channel else {}
        pat_before = int(self.redis.pubsub_numpat())
        try:
            client = self._call(self.loop.open(self.ws_base + cmd.path, cmd.origin, 5.0), 7.0)
        except InvalidStatus as exc:
            return Outcome.ok(status=exc.response.status_code)
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            return Outcome.failed(type(exc).__name__, str(exc))
        client.channel = channel
        self.clients[self._next] = client
        self._next += 1
        seen = {"numsub": before.get(channel or "", 0), "numpat": pat_before}

        def subscribed() -> bool:  # the service sends no "subscribed" frame: ask Redis
            seen["numsub"] = self._numsub([channel]).get(channel, 0) if channel else 0
            seen["numpat"] = int(self.redis.pubsub_numpat())
            return (seen["numsub"], seen["numpat"]) != (before.get(channel or "", 0), pat_before)

        poll_until(subscribed, timeout=2.0, interval=0.002)
        return Outcome.ok(status=101, **seen)

    def _Crowd(self, cmd: Crowd) -> Outcome:
        """``CROWD`` Connects, stopping at the first refusal or failure; the last one's report."""
        outcome = Outcome.ok()
        for _ in range(CROWD):
            outcome = self._Connect(Connect(cmd.path, cmd.origin))
            if outcome.error is not None or outcome.values.get("status") != 101:
                break
        return outcome

    def _Publish(self, cmd: Publish) -> Outcome:
        return Outcome.ok(receivers=int(self.redis.publish(cmd.channel, cmd.payload)))

    def _ClientSend(self, cmd: ClientSend) -> Outcome:
        client = self.clients[cmd.sock]
        frames: dict[str, str | bytes] = {
            "garbage": "{not json",
            "binary": b"\x00\x01binary",
            "unknown": '{"type": "subscribe", "channel": "r2:status"}',
            "array": '["pong"]',
            "limit": "x" * self.config.max_message,
            "oversized": "x" * (self.config.max_message + 1),
        }
        frame = frames[cmd.kind]
        try:
            self._call(client.ws.send(frame), 5.0)
        except Exception as exc:  # the socket may have been closed under us: report it
            return Outcome.failed(type(exc).__name__, str(exc))
        if cmd.kind == "oversized":
            self._wait_close_1009(client)
            if client.closed_at is not None and client.channel:
                self._settle([client.channel])
        return Outcome.ok(close=client.close_code)

    def _wait_close_1009(self, client: Client) -> None:
        """Wait for the close an oversized frame owes, one-sidedly: QUICK_CLOSE, plus as long
        again as anything waited for a CPU meanwhile (the kernel's PSI count, never less than
        what starved the service or our clients), up to SLACK. An idle machine decides in a
        second (a hunt replays this wait many times); load never fakes a missing close."""
        meter = StallMeter()
        mark, start = meter.mark(), time.monotonic()
        self._wait_closed([client], QUICK_CLOSE)
        if client.closed_at is None:
            stalled = meter.since(mark, duration=time.monotonic() - start)
            if stalled > 0:
                self._wait_closed([client], min(2 * stalled, SLACK - QUICK_CLOSE))

    def _Heartbeat(self, cmd: Heartbeat) -> Outcome:
        client, cfg = self.clients[cmd.sock], self.config
        client.word = cmd.word
        if cmd.word is None or cmd.word.lower() not in ("pong", "init"):
            bound = (cfg.pong_timeout_ms + cfg.ping_ms) / 1000 + SLACK
        else:
            bound = 1.5 * cfg.pong_timeout_ms / 1000
        start = time.monotonic()
        self._wait_closed([client], bound)
        if client.closed_at is None:
            self._call(client.answer_now(), 5.0)
            # Not cut: report how long it was kept alive without a pong that counts.
            return Outcome.ok(cut=False, silent_ms=round((time.monotonic() - start) * 1000, 1))
        silent = (client.closed_at - client.last_pong) * 1000
        if client.channel:
            self._settle([client.channel])
        if self.starved(client):
            # Cut because our loop starved it, not for the word it answered: not the
            # heartbeat's cut. The streams check lets the hangup pass; the model adopts it.
            return Outcome.ok(cut=False, starved=True, silent_ms=round(silent, 1))
        return Outcome.ok(cut=True, silent_ms=round(silent, 1))

    def _ClientClose(self, cmd: ClientClose) -> Outcome:
        client = self.clients.pop(cmd.sock)
        self._call(client.ws.close(1000), 5.0)
        if client.channel:
            self._settle([client.channel])
        return Outcome.ok()

    def _wait_acked(self) -> None:
        """Before a fault: wait until the service has read every subscription's ack.

        ``PUBSUB NUMSUB`` shows a subscription when Redis has made it, a moment before the
        service reads the ack and resets its retry count; a fault in that moment would cost a
        correct service one error more than the model allows. The service sends a PING down a
        subscription after a quiet request timeout, and only after the ack: a subscribed client
        whose last command is still SUBSCRIBE has not got there. Bounded: a subscriber that is
        not the service's never pings, and must not stop the run."""
        cfg = self.config

        def acked() -> bool:
            clients = self.redis.client_list(_type="pubsub")
            return all(
                c.get("cmd") not in ("subscribe", "psubscribe")
                for c in clients
                if int(c.get("sub", 0)) + int(c.get("psub", 0)) > 0
            )

        poll_until(acked, timeout=cfg.request_timeout_ms / 1000 + 0.5, interval=0.02)

    def _Wait(self, cmd: Wait) -> Outcome:
        time.sleep(cmd.ms / 1000)
        # Then, as at a Connect: every open socket's subscription is still live in Redis.
        return Outcome.ok(numsub=self._numsub(sorted(self._open_channels())))

    def _RedisDrop(self, cmd: RedisDrop) -> Outcome:
        self._wait_acked()
        target = self._open_channels()
        self.redis.client_kill_filter(_type="pubsub")
        for channel in sorted(target):
            self.redis.publish(channel, cmd.during)
        cfg = self.config
        # A client library may reconnect and resubscribe by itself before reporting the error
        # (redis-py does); the service then lets go and redials only after its first backoff.
        # So the subscription that counts cannot be there before retry_base: wait that long.
        time.sleep(cfg.retry_base_ms / 1000)
        within = (2 * cfg.retry_max_ms + 2 * cfg.request_timeout_ms) / 1000 + SLACK
        return Outcome.ok(numsub=self._wait_numsub(target, within))

    def _RedisPause(self, cmd: RedisPause) -> Outcome:
        self._wait_acked()
        target = self._open_channels()
        self.redis.execute_command("CLIENT", "PAUSE", cmd.ms, "ALL")
        cfg = self.config
        # The stall itself is the command: nothing to poll for. Then one more backoff + request
        # timeout, so a second attempt near the end of the pause has settled too (else a later
        # RedisDrop could find a socket between two subscriptions, and cut nothing).
        time.sleep((cmd.ms + cfg.retry_max_ms + cfg.request_timeout_ms) / 1000)
        within = (2 * cfg.retry_max_ms + 2 * cfg.request_timeout_ms) / 1000 + SLACK
        values: dict[str, Any] = {"numsub": self._wait_numsub(target, within)}
        if cfg.metrics:
            values["reconnects"] = self.metrics()["redis_reconnects_total"]
        return Outcome.ok(**values)

    def _RedisOutage(self, cmd: RedisOutage) -> Outcome:
        if self.redis_server is None or not self.redis_server.owned:
            return Outcome.failed("NotOwned", "RedisOutage needs a Redis the machine may stop")
        socks = [c for c in self.clients.values() if c.closed_at is None]
        cfg = self.config
        give_up = sum(
            min(cfg.retry_base_ms * 2 ** (n - 1), cfg.retry_max_ms)
            for n in range(1, cfg.max_retries)
        )
        within = (give_up + cfg.max_retries * cfg.request_timeout_ms) / 1000 + SLACK
        self._wait_acked()
        self.redis_server.kill()
        try:
            self._wait_closed(socks, within)
        finally:
            self.redis_server.restart()
            self.redis.connection_pool.disconnect()
        times = [c.hangup_at for c in socks if c.hangup_at is not None]
        spread = (max(times) - min(times)) * 1000 if len(times) > 1 else 0.0
        gave_up = sum(1 for c in socks if c.closed_at is not None)
        return Outcome.ok(gave_up=gave_up, hangup_spread_ms=round(spread, 1))

    def _Shutdown(self, cmd: Shutdown) -> Outcome:
        if self.service is None:
            return Outcome.failed("NotOwned", "Shutdown needs the bundled service")
        socks = [c for c in self.clients.values() if c.closed_at is None]
        code = self.service.sigterm(self.config.write_timeout_ms / 1000 + SLACK + 5)
        self._wait_closed(socks, SLACK)
        self._settle(sorted({c.channel for c in socks if c.channel}))
        self.service.restart()
        self._baseline = {}
        return Outcome.ok(exit_code=code)

    def _Scrape(self, cmd: Scrape) -> Outcome:
        return Outcome.ok(**self.metrics()) if self.config.metrics else Outcome.ok()

    # -- observation and teardown ------------------------------------------------------------

    def streams(self) -> dict[str, Any]:
        """Every socket's frames so far, its close code (None while open), and whether we
        starved it (:meth:`starved`)."""
        seen = {
            sock: (tuple(c.frames), c.close_code, self.starved(c))
            for sock, c in self.clients.items()
        }
        return {"streams": seen, "delivered": seen}

    def starved(self, client: Client) -> bool:
        """Did our own client loop stall so long before this hangup that no pong could have
        reached the service in time?

        A correct service cuts a client that sent no pong for ``pong_timeout``. On a loaded
        machine our client's thread can get no CPU (or no GIL) for that long: its pings wait
        unread, and the cut is the service's right, not a divergence. The excuse is one-sided
        and narrow: the client was answering (a word a correct service counts: ``pong`` or
        ``init``, any case), the cut is a hangup with 1000,
        and its loop stalled, within the last ``pong_timeout + ping`` before the hangup, for at
        least ``pong_timeout - 2 * ping`` (a pong is due every ping; one period of slack).
        A service that cuts answering clients, or stops pinging, on an idle machine is still
        caught: there was no stall.
        """
        answering = client.word is not None and client.word.lower() in ("pong", "init")
        if not answering or client.hangup_at is None or client.close_code != 1000:
            return False
        cfg = self.config
        window = (cfg.pong_timeout_ms + cfg.ping_ms) / 1000
        need = (cfg.pong_timeout_ms - 2 * cfg.ping_ms) / 1000
        stall = self.loop.stalled(client.hangup_at - window, client.hangup_at)
        return need > 0 and stall >= need

    def catch_up(self) -> None:
        """If our client loop starved lately, let a cut it caused reach us before judging.

        A service cuts a starved client while our loop is stalled (or a ping or two after), and
        the hangup then waits, unread, in the socket: a step judged now would count the socket
        as open (a ``Publish`` expecting it among the receivers; a loaded run once read
        ``receivers`` 1 for 2 so). Only after a stall of at least half what :meth:`starved`
        excuses: wait until the loop has run for two pings (up to ``SLACK``), reading what
        came meanwhile. An idle loop costs nothing here.
        """
        cfg = self.config
        now = time.monotonic()
        window = (cfg.pong_timeout_ms + cfg.ping_ms) / 1000
        need = (cfg.pong_timeout_ms - 2 * cfg.ping_ms) / 1000
        if need <= 0 or self.loop.stalled(now - window, now) < need / 2:
            return
        with contextlib.suppress(Exception):  # a loop that does not come back: judged as before
            self.loop.call(asyncio.sleep(2 * cfg.ping_ms / 1000), timeout=SLACK)

    def starved_cuts(self, among: Collection[int]) -> list[int]:
        """Sockets of ``among`` that a correct service cut because we starved them (see
        :meth:`starved`), once Redis no longer counts their subscriptions."""
        cut = [s for s in among if s in self.clients and self.starved(self.clients[s])]
        self._settle(sorted({c for s in cut if (c := self.clients[s].channel)}))
        return cut

    def observe(self) -> Mapping[str, Any]:
        return {}

    def close(self) -> None:
        """Close every socket and the loop. Safe while ``run`` hangs in another thread."""
        clients, self.clients = list(self.clients.values()), {}

        async def close_all() -> None:
            await asyncio.wait(
                [asyncio.ensure_future(c.ws.close(1000)) for c in clients], timeout=2.0
            ) if clients else None

        try:
            self.loop.call(close_all(), 3.0)
        except Exception:
            pass  # the loop is stuck or gone: stopping it below drops the sockets anyway
        finally:
            self.loop.close()
            self.redis.close()
