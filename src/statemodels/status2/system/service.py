"""The bundled status2 service: Redis pub/sub fanned out to WebSockets, one asyncio process.

Run as a program (``python service.py``); configured only through ``STATUS_*`` variables (see
:mod:`statemodels.status2.system` for the contract and the defaults). It imports nothing of
statemodels, so it starts fast and stands alone like the Go service it mirrors.

Per connection three tasks run until the first one ends: the **reader** (client frames: a JSON
``pong``/``init`` refreshes last-seen; anything else is ignored; an oversized frame closes
1009), the **pinger** (``{"type":"ping"}`` every ping interval, then the pong-timeout check) and
the **Redis loop** (subscribe, wait for the ack, receive; every wait bounded by the request
timeout; errors retried with jittered exponential backoff up to ``max_retries``). When one ends,
the others are cancelled and the client gets ``{"type":"hangup"}`` and close 1000.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import random
import re
import signal
import sys
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import prometheus_client as prom
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

log = logging.getLogger("status2")

CHANNEL = re.compile(r"^[A-Za-z0-9_.;-]+:[A-Za-z0-9_.-]+$")
PING = json.dumps({"type": "ping"})
HANGUP = json.dumps({"type": "hangup"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")


def duration(name: str, default_ms: float) -> float:
    """``STATUS_<name>`` as seconds: Go-style ``250ms`` / ``1.5s`` / ``2m`` (as upstream), or a
    bare number of milliseconds. An unparsable value falls back to the default, as upstream."""
    raw = os.environ.get("STATUS_" + name, "").strip()
    if raw.isdigit():
        return int(raw) / 1000
    match = _DURATION.match(raw)
    if not match:
        return default_ms / 1000
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * (60 if unit == "m" else 1)


def integer(name: str, default: int) -> int:
    raw = os.environ.get("STATUS_" + name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


class Config:
    """The ``STATUS_*`` configuration, with upstream's defaults."""

    def __init__(self) -> None:
        self.listen = os.environ.get("STATUS_LISTEN_ADDR", ":9002")
        self.redis_url = os.environ.get("STATUS_REDIS_URL", "redis://localhost:6379/2")
        self.ping = duration("PING_INTERVAL", 5000)
        self.pong_timeout = duration("PONG_TIMEOUT", 75000)
        self.write_timeout = duration("WRITE_TIMEOUT", 2000)
        self.request_timeout = duration("REDIS_REQUEST_TIMEOUT", 1000)
        self.retry_base = duration("REDIS_RETRY_BASE", 1000) or 1.0
        self.retry_max = duration("REDIS_RETRY_MAX", 30000) or 30.0
        self.max_retries = integer("REDIS_MAX_RETRIES", 5)
        raw_origins = os.environ.get("STATUS_ALLOWED_ORIGINS", "")
        self.origins = [o.strip() for o in raw_origins.split(",") if o.strip()]
        self.metrics = os.environ.get("STATUS_METRICS_ENABLED", "").lower() in ("1", "true", "t")
        self.max_message = integer("MAX_MESSAGE_SIZE", 64 * 1024)
        if self.max_message <= 0:
            self.max_message = 64 * 1024
        # A statemodels addition: seeded bugs, by name (see MUTANTS in the package).
        self.mutants = frozenset(m for m in os.environ.get("STATUS_MUTANTS", "").split(",") if m)

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "0.0.0.0", int(port)


class Metrics:
    """The four upstream metrics, plus a gauge saying the origin check is off."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.active = prom.Gauge("status2_connections_active", "Open WebSockets.", registry=r)
        self.forwarded = prom.Counter(
            "status2_messages_forwarded", "Status frames written.", registry=r
        )
        self.reconnects = prom.Counter(
            "status2_redis_reconnects", "Redis subscribe attempts.", registry=r
        )
        self.write_errors = prom.Counter(
            "status2_write_errors", "Failed or timed-out writes.", registry=r
        )
        self.origin_check_disabled = prom.Gauge(
            "status2_origin_check_disabled", "1 when any Origin is accepted.", registry=r
        )

    def text(self) -> str:
        return prom.generate_latest(self.registry).decode()


class Stalled(Exception):
    """Redis did not answer within the request timeout: a stalled read, not a refused one."""


class Status2:
    """The service: HTTP routing, origin policy, and one :meth:`serve_socket` per WebSocket."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.m = cfg.mutants
        self.metrics = Metrics()
        self.redis = aioredis.Redis.from_url(
            cfg.redis_url,
            max_connections=4096,
            socket_connect_timeout=max(cfg.request_timeout, 0.05),
        )
        self.stopping = asyncio.Event()
        self.rng = random.Random()
        if not cfg.origins:
            log.warning("STATUS_ALLOWED_ORIGINS is unset: accepting WebSockets from any Origin")
            self.metrics.origin_check_disabled.set(1)

    # -- HTTP ---------------------------------------------------------------------------------

    def route(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/health":
            return conn.respond(HTTPStatus.OK, "OK")
        if path == "/metrics":
            if not self.cfg.metrics:
                return conn.respond(HTTPStatus.NOT_FOUND, "404 page not found\n")
            return conn.respond(HTTPStatus.OK, self.metrics.text())
        name = path[1:]
        if name == "":
            return conn.respond(HTTPStatus.NOT_FOUND, "404 page not found\n")
        if name.endswith("/") and "trailing-slash-kept" not in self.m:
            name = name[:-1]
        if not CHANNEL.match(name):
            return conn.respond(HTTPStatus.BAD_REQUEST, "invalid channel\n")
        if not self.origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
            return conn.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        conn.channel_name = name  # type: ignore[attr-defined]
        return None  # go on with the WebSocket handshake

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Browsers send Origin; other clients may not: no Origin, or the request's own host, is
        accepted. Otherwise the origin's host must match one pattern (``*`` wildcards)."""
        if not self.cfg.origins or origin is None or "origin-check-skipped" in self.m:
            return True
        origin_host = urlsplit(origin).netloc.lower()
        if host is not None and origin_host == host.lower():
            return True
        return any(fnmatch.fnmatchcase(origin_host, p.lower()) for p in self.cfg.origins)

    # -- one WebSocket ------------------------------------------------------------------------

    async def serve_socket(self, ws: ServerConnection) -> None:
        channel: str = getattr(ws, "channel_name", "")
        self.metrics.active.inc()
        ending = "client"
        state = {"last_seen": time.monotonic()}
        tasks = [
            asyncio.create_task(self.reader(ws, state), name="reader"),
            asyncio.create_task(self.pinger(ws, state), name="pinger"),
            asyncio.create_task(self.redis_loop(ws, channel, state), name="redis"),
            asyncio.create_task(self.stopping.wait(), name="shutdown"),
        ]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            ending = next(iter(done)).get_name()
            log.debug("socket ending: %s", ending)
            for task in pending:
                task.cancel()
            # redis-py can swallow a cancellation inside get_message: the Redis loop also stops
            # on its own (it checks ``ended`` at least every request timeout), so the goodbye
            # never waits for it.
            state["ended"] = 1.0
            await asyncio.wait(pending, timeout=0.05)
            if ending == "shutdown" and "no-hangup-on-shutdown" in self.m:
                await ws.close(1001, "going away")
                return
            if ws.state is State.OPEN:
                # The goodbye: bounded by the write timeout, like every write.
                await self.write(ws, HANGUP)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(1000, "closing"), self.cfg.write_timeout)
        finally:
            if not (ending == "redis" and "gauge-leak-on-give-up" in self.m):
                self.metrics.active.dec()

    async def write(self, ws: ServerConnection, text: str) -> bool:
        """Send one text frame within the write timeout. A peer that left is no write error; a
        write that times out or fails otherwise is."""
        try:
            await asyncio.wait_for(ws.send(text), self.cfg.write_timeout)
            return True
        except ConnectionClosed:
            return False
        except (TimeoutError, OSError):
            self.metrics.write_errors.inc()
            return False

    async def reader(self, ws: ServerConnection, state: dict[str, float]) -> None:
        async for frame in ws:  # ends on close; an oversized frame closes 1009 (max_size)
            if not isinstance(frame, str):
                continue  # binary frames are ignored
            try:
                kind = json.loads(frame).get("type")
            except (ValueError, AttributeError):
                continue  # not JSON, or not an object: ignored
            if not isinstance(kind, str):
                continue
            if "pong-case-sensitive" in self.m:
                counts = kind in ("pong", "init")
            else:
                counts = kind.lower() in ("pong", "init")
            if counts:
                state["last_seen"] = time.monotonic()

    async def pinger(self, ws: ServerConnection, state: dict[str, float]) -> None:
        while True:
            await asyncio.sleep(self.cfg.ping)
            if not await self.write(ws, PING):
                return
            if "ws-pong-counted" in self.m:
                # The mistake: a protocol-level pong (which any client library sends by itself)
                # taken as a sign of life.
                with contextlib.suppress(Exception):
                    waiter: Any = await ws.ping()
                    waiter.add_done_callback(
                        lambda _f: state.__setitem__("last_seen", time.monotonic())
                    )
            if "pong-timeout-ignored" in self.m:
                continue
            # Let the reader take what has already arrived: after this process was starved, the
            # timer wakes this task before the reader sees the pongs queued meanwhile.
            for _ in range(3):
                await asyncio.sleep(0)
            if time.monotonic() - state["last_seen"] > self.cfg.pong_timeout:
                log.info("pong timeout exceeded")
                return

    def backoff(self, attempt: int) -> float:
        """``base + U[0, min(base * 2**(attempt-1), max) - base]``: jitter spreads the redials
        of many sockets after one outage."""
        base, cap = self.cfg.retry_base, self.cfg.retry_max
        ceiling = min(base * 2 ** min(attempt - 1, 10), cap)
        if ceiling <= base:
            return ceiling
        if "no-jitter" in self.m:
            return ceiling
        return base + self.rng.uniform(0, ceiling - base)

    async def redis_loop(self, ws: ServerConnection, channel: str, state: dict[str, float]) -> None:
        """Subscribe, then forward; every error is retried after a backoff, up to max_retries
        consecutive errors (0: never give up). Returning ends the connection with a hangup."""
        cfg, attempt = self.cfg, 0
        timeout: float | None = cfg.request_timeout
        if "no-request-timeout" in self.m or not timeout or timeout <= 0:
            timeout = None
        while not state.get("ended"):
            self.metrics.reconnects.inc()
            pubsub = self.redis.pubsub()
            try:
                if "pattern-subscribe" in self.m:
                    runid = channel.split(":", 1)[0]
                    await asyncio.wait_for(pubsub.psubscribe(f"{runid}:*"), timeout)
                else:
                    await asyncio.wait_for(pubsub.subscribe(channel), timeout)
                ack = await pubsub.get_message(timeout=timeout)
                if ack is None:
                    ack = await self.late(pubsub)
                if ack is None:
                    raise Stalled("no subscribe ack within the request timeout")
                if "retry-never-reset" not in self.m:
                    attempt = 0
                await self.receive(ws, pubsub, timeout, state)
                return  # receive returns only when the WebSocket is gone
            except (RedisError, OSError, TimeoutError, Stalled) as exc:
                attempt += 1
                log.warning("redis error (attempt %d): %s", attempt, exc)
                if cfg.max_retries > 0 and attempt >= cfg.max_retries:
                    log.warning("giving up after %d attempts", attempt)
                    return
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), cfg.write_timeout)
            await asyncio.sleep(self.backoff(attempt))

    async def receive(
        self, ws: ServerConnection, pubsub: Any, timeout: float | None, state: dict[str, float]
    ) -> None:
        """Forward messages. An idle channel is not an error: after a quiet request timeout a
        PING goes down the subscription, and only an unanswered PING counts as a stall."""
        ping_sent: float | None = None
        while ws.state is State.OPEN and not state.get("ended"):
            msg = await pubsub.get_message(timeout=timeout if timeout else None)
            if msg is None:
                if "idle-channel-error" in self.m:
                    raise Stalled("no message within the request timeout")  # upstream's way
                now = time.monotonic()
                if ping_sent is None:
                    await asyncio.wait_for(pubsub.ping(), timeout)
                    ping_sent = now
                elif timeout is not None and now - ping_sent > timeout:
                    msg = await self.late(pubsub)
                    if msg is None:
                        raise Stalled("redis did not answer PING within the request timeout")
                if msg is None:
                    continue
            kind = msg.get("type")
            if kind == "pong":
                ping_sent = None
            elif kind in ("message", "pmessage"):
                ping_sent = None
                await self.forward(ws, msg["data"])

    async def late(self, pubsub: Any) -> Any:
        """One more short read before calling Redis stalled: on a loaded machine the timer can
        fire before this process got to read an answer that had long arrived."""
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(pubsub.get_message(timeout=0.02), 0.5)
        return None

    async def forward(self, ws: ServerConnection, raw: bytes | str) -> None:
        data = raw if isinstance(raw, str) else self.decode(raw)
        if "payload-html-escaped" in self.m:
            data = data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        # ensure_ascii: lone surrogates (the invalid bytes) travel as \\udcXX escapes.
        if await self.write(ws, json.dumps({"type": "status", "data": data})):
            self.metrics.forwarded.inc()

    def decode(self, raw: bytes) -> str:
        """Bytes as text, unmodified: invalid UTF-8 bytes become lone surrogates (PEP 383), so
        the original bytes can be recovered; upstream replaces them with U+FFFD."""
        if "payload-utf8-replaced" in self.m:
            return raw.decode("utf-8", "replace")
        return raw.decode("utf-8", "surrogateescape")


async def main() -> int:
    cfg = Config()
    service = Status2(cfg)
    try:
        await asyncio.wait_for(service.redis.ping(), 5)
    except (RedisError, OSError, TimeoutError) as exc:
        print(f"status2: redis ping failed: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    host, port = cfg.host_port()
    async with serve(
        service.serve_socket,
        host,
        port,
        process_request=service.route,
        max_size=None if "no-read-limit" in cfg.mutants else cfg.max_message,
        ping_interval=None,  # the heartbeat is the JSON ping/pong of the protocol
        compression=None,
        open_timeout=10,
        close_timeout=max(cfg.write_timeout, 0.1),
    ) as server:
        print(f"status2 listening on {host}:{port}", flush=True)
        await done.wait()
        # Say goodbye to every client first (hangup + close 1000), then stop listening.
        service.stopping.set()
        server.close(close_connections=False)
        await asyncio.wait_for(server.wait_closed(), cfg.write_timeout + 5)
    await service.redis.aclose()
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("STATUS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    sys.exit(asyncio.run(main()))
