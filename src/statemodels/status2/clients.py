"""Real WebSocket clients for the status2 driver: one asyncio loop in a daemon thread.

Every client is a ``websockets`` connection read by its own task, which answers each
``{"type":"ping"}`` the way the current heartbeat mode says (normally ``{"type":"pong"}``) and
records every other frame in order, with the close code once the socket ends. The driver thread
talks to the loop only through :meth:`ClientLoop.call`, which is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["Client", "ClientLoop"]

T = TypeVar("T")


class Client:
    """One socket: its connection, what it received, and how it answers pings."""

    def __init__(
        self, ws: ClientConnection, channel: str | None = None, *, since: float | None = None
    ) -> None:
        self.ws = ws
        self.channel = channel
        self.frames: list[tuple[str, str]] = []
        self.hangup_at: float | None = None
        self.close_code: int | None = None
        self.closed_at: float | None = None
        self.pings = 0
        #: ``{"type": word}`` answers each ping; None: silent (but WebSocket-level pongs).
        self.word: str | None = "pong"
        # The service's pong clock starts at its handshake, before we get here; a mark taken
        # now would, under load, make a correct cut look early. ``since``: taken before dialing.
        self.last_pong = time.monotonic() if since is None else since
        self.closed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                self._record(raw)
                if self._is_ping(raw):
                    await self._answer()
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()
            self.close_code = self.ws.close_code if self.ws.close_code is not None else 1006
            self.closed.set()

    @staticmethod
    def _parse(raw: str | bytes) -> Any:
        if isinstance(raw, bytes):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _is_ping(self, raw: str | bytes) -> bool:
        msg = self._parse(raw)
        return isinstance(msg, dict) and msg.get("type") == "ping"

    def _record(self, raw: str | bytes) -> None:
        msg = self._parse(raw)
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            self.pings += 1
        elif kind == "status" and isinstance(msg.get("data"), str) and len(msg) == 2:
            self.frames.append(("status", msg["data"]))
        elif kind == "hangup" and len(msg) == 1:
            self.hangup_at = time.monotonic()
            self.frames.append(("hangup", ""))
        else:
            text = raw if isinstance(raw, str) else raw.hex()
            self.frames.append(("other", text[:200]))

    async def _answer(self) -> None:
        try:
            if self.word is None:
                await self.ws.pong()  # only a WebSocket-level pong: it must not count
            else:
                # Marked before the send: the service may read it before this coroutine
                # resumes, and a mark taken after would make its cut look early.
                if self.word == "pong":
                    self.last_pong = time.monotonic()
                await self.ws.send(json.dumps({"type": self.word}))
        except ConnectionClosed:
            pass

    async def answer_now(self) -> None:
        """Send a lowercase pong at once (leaving a heartbeat test)."""
        self.word = "pong"
        with contextlib.suppress(ConnectionClosed):
            self.last_pong = time.monotonic()
            await self.ws.send(json.dumps({"type": "pong"}))


#: How often the loop's own clock ticks, and how late a tick must be to count as a stall.
_TICK = 0.05
_STALL_MIN = 0.05


class ClientLoop:
    """An asyncio loop running in a daemon thread; :meth:`call` runs a coroutine on it.

    The loop also times itself: a task wakes every ``_TICK`` seconds and records each wake-up
    that came late by more than ``_STALL_MIN`` as a stall ``(start, end)``. A stalled loop
    answers no ping -- its thread got no CPU, or no GIL -- so :meth:`stalled` is how a judge
    tells a client we starved from a service that cut a client that answered.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stalls: collections.deque[tuple[float, float]] = collections.deque(maxlen=256)
        self._last_tick = time.monotonic()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="statemodels-status2-clients", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._clock(), self.loop)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            now = time.monotonic()
            if now - self._last_tick > _TICK + _STALL_MIN:
                self._stalls.append((self._last_tick + _TICK, now))
            self._last_tick = now

    def stalled(self, start: float, end: float) -> float:
        """The longest stall of this loop overlapping ``[start, end]``, in seconds.

        A stall still going on (no tick for a while: the loop just woke, or is stuck) counts
        up to now, so a judge never asks before the clock has had its turn.
        """
        now = time.monotonic()
        spans = list(self._stalls)
        if now - self._last_tick > _TICK + _STALL_MIN:
            spans.append((self._last_tick + _TICK, now))
        overlaps = [min(b, end) - max(a, start) for a, b in spans]
        return max([o for o in overlaps if o > 0], default=0.0)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    async def open(self, url: str, origin: str | None, timeout: float) -> Client:
        """Connect (raises ``websockets.InvalidStatus`` on an HTTP refusal) and start reading."""
        dialed = time.monotonic()
        ws = await connect(
            url,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=timeout,
            ping_interval=None,  # the protocol's heartbeat is JSON; ours stays out of the way
            max_size=None,
            compression=None,
            close_timeout=2,
            proxy=None,
        )
        client = Client(ws, since=dialed)
        client.task = asyncio.create_task(client.read())
        return client

    def close(self) -> None:
        """Stop the loop and its thread (safe from any thread, also while a call hangs)."""
        if self.loop.is_closed():
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=1.0) if tasks else None

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(drain(), self.loop).result(2.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self.loop.close()
