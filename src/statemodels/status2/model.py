"""The status2 reference model: sockets, what each is owed, and what the metrics must say.

Pure and immutable. Per socket it keeps the channel, whether the service still serves it, the
frames it is owed (:class:`~statemodels.status2.expect.Entry`, optional inside a loss window)
and the close code it must end with. A message is owed to a socket only once its subscription
is live -- which the driver observes in Redis (``PUBSUB NUMSUB``) before a ``Connect`` ends,
since the service sends no "subscribed" frame. Loss windows are explicit: what ``RedisDrop``
publishes right after cutting the subscriptions may be lost; everything else must arrive, in
order, once, unmodified, on its own channel only.

Counters the model cannot know exactly are ranges: a resubscribe after a stall may take one or
two attempts, so ``redis_reconnects_total`` is judged ``Within(lo, hi)``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..engine import Anything, Step, Within
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
from .expect import Complete, Entry, Sound

__all__ = ["CHANNEL", "Socket", "Status2Model", "decode", "route"]

CHANNEL = re.compile(r"^[A-Za-z0-9_.;-]+:[A-Za-z0-9_.-]+$")
#: Below this many sockets a hangup spread says nothing about jitter.
SPREAD_SOCKETS = 4
#: A correct jitter spreads N >= 4 give-ups over the jitter range; under this they are in step.
SPREAD_MIN_MS = 15.0

HANGUP = Entry("hangup")


def decode(payload: bytes) -> str:
    """What a client must see for ``payload``: the same bytes (invalid UTF-8 as lone
    surrogates, PEP 383), never U+FFFD, never escaped."""
    return payload.decode("utf-8", "surrogateescape")


def route(config: ServiceConfig, path: str, origin: str | None) -> tuple[int, str | None]:
    """``(status, channel)`` a request for ``path`` gets: 101 with the channel it subscribes to,
    or the HTTP refusal (404, 400 ``invalid channel``, 403 for a denied Origin)."""
    name = path[1:] if path.startswith("/") else path
    if name in ("", "health", "metrics"):
        return 404, None
    if name.endswith("/"):
        name = name[:-1]
    if not CHANNEL.match(name):
        return 400, None
    if config.allowed_origins and origin is not None:
        host = urlsplit(origin).netloc.lower()
        if not any(fnmatch.fnmatchcase(host, p.lower()) for p in config.allowed_origins):
            return 403, None
    return 101, name


@attrs.frozen
class Socket:
    """One accepted WebSocket as the model sees it."""

    sock: int
    channel: str
    open: bool = True
    entries: tuple[Entry, ...] = ()
    close: int | None = None

    def owe(self, entry: Entry) -> Socket:
        return attrs.evolve(self, entries=(*self.entries, entry))

    def ended(self, code: int, hangup: bool) -> Socket:
        entries = (*self.entries, HANGUP) if hangup else self.entries
        return attrs.evolve(self, open=False, entries=entries, close=code)


def _plus(span: tuple[int, int], lo: int, hi: int) -> tuple[int, int]:
    return (span[0] + lo, span[1] + hi)


@attrs.frozen
class Status2Model:
    """What a correct status2 shows. ``apply`` returns a new model, never mutates."""

    config: ServiceConfig = attrs.field(factory=ServiceConfig)
    sockets: tuple[Socket, ...] = ()
    next_sock: int = 0
    #: Every (channel, data) published in this example: names cross-channel delivery.
    published: tuple[tuple[str, str], ...] = ()
    active: int = 0
    forwarded: tuple[int, int] = (0, 0)
    reconnects: tuple[int, int] = (0, 0)

    # -- queries the strategies and the machine use -------------------------------------------

    def open_sockets(self) -> list[Socket]:
        return [s for s in self.sockets if s.open]

    def subscribers(self, channel: str) -> int:
        return sum(1 for s in self.sockets if s.open and s.channel == channel)

    def channels(self) -> dict[str, int]:
        """Subscriber count of every channel an open socket listens on."""
        out: dict[str, int] = {}
        for s in self.open_sockets():
            out[s.channel] = out.get(s.channel, 0) + 1
        return out

    def streams(self) -> dict[str, Any]:
        """The judgement of every socket's frames (``Sound`` final, ``Complete`` may wait)."""
        owed = {s.sock: (s.entries, s.close) for s in self.sockets}
        foreign = {
            s.sock: frozenset(d for c, d in self.published if c != s.channel) for s in self.sockets
        }
        return {"streams": Sound(owed, foreign), "delivered": Complete(owed, foreign)}

    def metrics(self) -> dict[str, Any]:
        """What ``/metrics`` must say (only when the service has metrics enabled)."""
        return {
            "connections_active": self.active,
            "messages_forwarded_total": Within(*self.forwarded),
            "redis_reconnects_total": Within(*self.reconnects),
            "write_errors_total": 0,
        }

    def jitter_range_ms(self) -> float:
        """The random part of the time from an outage to giving up: sum over the backoffs
        after attempts 2..max_retries-1 of ``min(base*2^(n-1), max) - base``."""
        c = self.config
        return float(
            sum(
                max(min(c.retry_base_ms * 2 ** (n - 1), c.retry_max_ms) - c.retry_base_ms, 0)
                for n in range(2, max(c.max_retries, 1))
            )
        )

    def waits(self) -> tuple[int, ...]:
        """The ``Wait`` durations worth drawing (ms), each tied to a timing of the config: into
        the gap an idle subscription would leave if the service took quiet for a Redis error
        (a request timeout, then half the first backoff), and a heartbeat's worth (a pong
        timeout and a ping) during which a socket that answers its pings must stay."""
        c = self.config
        return (c.request_timeout_ms + c.retry_base_ms // 2, c.pong_timeout_ms + c.ping_ms)

    # -- transitions ---------------------------------------------------------------------------

    def starved_cut(self, sock: int) -> Status2Model:
        """The service cut ``sock`` because our client, starved of CPU, sent no pong in time:
        its right, adopted here. What the socket was still owed is lost with it."""
        s = self.socket(sock)
        lost = tuple(attrs.evolve(e, required=False) for e in s.entries)
        closed = attrs.evolve(s, entries=lost).ended(1000, hangup=True)
        return attrs.evolve(self, sockets=self._replace(sock, closed), active=self.active - 1)

    def _replace(self, sock: int, new: Socket | None) -> tuple[Socket, ...]:
        out = [new if s.sock == sock else s for s in self.sockets]
        return tuple(s for s in out if s is not None)

    def socket(self, sock: int) -> Socket:
        return next(s for s in self.sockets if s.sock == sock)

    def apply(self, cmd: Any) -> Step:
        match cmd:
            case Crowd(path=path, origin=origin):
                # CROWD Connects in a row; the driver reports the last one (the count after all).
                if route(self.config, path, origin)[1] is None:
                    return self.apply(Connect(path, origin))  # refused, as the first one is
                step = Step(self, {})
                for _ in range(CROWD):
                    step = step.model.apply(Connect(path, origin))
                return step
            case Connect(path=path, origin=origin):
                status, channel = route(self.config, path, origin)
                if channel is None:
                    return Step(self, {"status": status})
                expect: dict[str, Any] = {
                    "status": 101,
                    "numsub": self.subscribers(channel) + 1,
                    "numpat": 0,
                }
                new = Socket(self.next_sock, channel)
                return Step(
                    attrs.evolve(
                        self,
                        sockets=(*self.sockets, new),
                        next_sock=self.next_sock + 1,
                        active=self.active + 1,
                        reconnects=_plus(self.reconnects, 1, 1),
                    ),
                    expect,
                )
            case Publish(channel=channel, payload=payload):
                data = decode(payload)
                receivers = self.subscribers(channel)
                sockets = tuple(
                    s.owe(Entry("status", data)) if s.open and s.channel == channel else s
                    for s in self.sockets
                )
                return Step(
                    attrs.evolve(
                        self,
                        sockets=sockets,
                        published=(*self.published, (channel, data)),
                        forwarded=_plus(self.forwarded, receivers, receivers),
                    ),
                    {"receivers": receivers},
                )
            case ClientSend(sock=sock, kind=kind):
                if kind != "oversized":  # ``limit`` is exactly the max size: still accepted
                    return Step(self, {"close": None})
                closed = self.socket(sock).ended(1009, hangup=False)
                return Step(
                    attrs.evolve(self, sockets=self._replace(sock, closed), active=self.active - 1),
                    {"close": 1009},
                )
            case Heartbeat(sock=sock, word=word):
                if word is not None and word.lower() in ("pong", "init"):
                    return Step(self, {"cut": False})
                closed = self.socket(sock).ended(1000, hangup=True)
                # Never early: the service may cut only after a full pong timeout of silence.
                silent = Within(self.config.pong_timeout_ms, math.inf)
                return Step(
                    attrs.evolve(self, sockets=self._replace(sock, closed), active=self.active - 1),
                    {"cut": True, "silent_ms": silent},
                )
            case ClientClose(sock=sock):
                return Step(
                    attrs.evolve(self, sockets=self._replace(sock, None), active=self.active - 1)
                )
            case RedisDrop(during=during):
                return Step(self._resubscribed(during), {"numsub": self.channels()})
            case RedisPause():
                n = len(self.open_sockets())
                after = attrs.evolve(self, reconnects=_plus(self.reconnects, n, 2 * n))
                paused: dict[str, Any] = {"numsub": self.channels()}
                if self.config.metrics:
                    paused["reconnects"] = Within(*after.reconnects)
                return Step(after, paused)
            case RedisOutage():
                return self._outage()
            case Shutdown():
                sockets = tuple(s.ended(1000, hangup=True) if s.open else s for s in self.sockets)
                after = attrs.evolve(
                    self, sockets=sockets, active=0, forwarded=(0, 0), reconnects=(0, 0)
                )
                return Step(after, {"exit_code": 0})
            case Wait():
                # Time passing changes nothing: an idle subscription is still a subscription.
                return Step(self, {"numsub": self.channels()})
            case Scrape():
                return Step(self)
        raise TypeError(f"Status2Model cannot apply {cmd!r}")

    def _resubscribed(self, during: bytes) -> Status2Model:
        """After every subscription was cut: ``during`` may or may not arrive (the window); each
        socket redials once, or twice if its first ack was late."""
        data = decode(during)
        n = len(self.open_sockets())
        sockets = tuple(
            s.owe(Entry("status", data, required=False)) if s.open else s for s in self.sockets
        )
        channels = sorted(self.channels())
        return attrs.evolve(
            self,
            sockets=sockets,
            published=(*self.published, *((c, data) for c in channels)),
            forwarded=_plus(self.forwarded, 0, n),
            reconnects=_plus(self.reconnects, n, 2 * n),
        )

    def _outage(self) -> Step:
        """Redis down until everyone gave up: every socket hangs up after exactly
        ``max_retries - 1`` redials, at times spread by the jitter."""
        n = len(self.open_sockets())
        redials = max(self.config.max_retries - 1, 0) * n
        sockets = tuple(s.ended(1000, hangup=True) if s.open else s for s in self.sockets)
        spread: Any = Anything()
        if n >= SPREAD_SOCKETS and self.jitter_range_ms() >= 200:
            spread = Within(SPREAD_MIN_MS, math.inf)
        after = attrs.evolve(
            self,
            sockets=sockets,
            active=self.active - n,
            reconnects=_plus(self.reconnects, redials, redials),
        )
        return Step(after, {"gave_up": n, "hangup_spread_ms": spread})

    def view(self) -> Mapping[str, Any]:
        return {}  # judged after each step by the machine (streams may take a moment)
