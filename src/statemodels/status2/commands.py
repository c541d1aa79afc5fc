"""Commands of the status2 machine: plain frozen data, printed as the repro.

Sockets are named by the order they were opened (``sock=0`` is the first ``Connect`` of the
example that was accepted), so a repro reads the same on every run.
"""

from __future__ import annotations

import attrs

__all__ = [
    "ClientClose",
    "ClientSend",
    "Command",
    "Connect",
    "Crowd",
    "Heartbeat",
    "Publish",
    "RedisDrop",
    "RedisOutage",
    "RedisPause",
    "Scrape",
    "Shutdown",
    "Wait",
]


@attrs.frozen
class Connect:
    """Open a WebSocket on ``path`` (e.g. ``/r1:status``) sending ``origin`` (None: no header).

    Accepted: the driver waits until Redis shows the subscription (``PUBSUB NUMSUB``) and
    reports it, since the service sends no "subscribed" frame. Refused: the HTTP status.
    """

    path: str
    origin: str | None = None


#: How many sockets a :class:`Crowd` opens: what a jitter check needs (``model.SPREAD_SOCKETS``).
CROWD = 4


@attrs.frozen
class Crowd:
    """Open ``CROWD`` WebSockets on one ``path``, one after the other, as ``Connect`` does.

    Why a command of its own: the redials of an outage say something about jitter only with
    four or more open sockets, and the machine closes sockets about as fast as it opens them,
    so four single Connects before an outage almost never happened (the no-jitter mutant
    escaped every ``ci`` run). One step now gets there. Refused: the first HTTP status.
    """

    path: str
    origin: str | None = None


@attrs.frozen
class Publish:
    """``PUBLISH channel payload`` on the Redis the service reads; reports the receiver count."""

    channel: str
    payload: bytes


@attrs.frozen
class ClientSend:
    """Socket ``sock`` sends one frame of ``kind``: ``garbage`` (not JSON), ``binary``,
    ``unknown`` (a JSON type the service does not know), ``array`` (JSON, not an object),
    ``limit`` (a text frame of exactly the max message size: accepted, ignored) or ``oversized``
    (one byte over it: closes 1009). The driver reports the close code it then sees."""

    sock: int
    kind: str


@attrs.frozen
class Heartbeat:
    """For 1.5 pong timeouts socket ``sock`` answers each ping with ``{"type": word}`` -- or
    stays silent (``word=None``) while sending WebSocket-level pongs, until it is cut.

    ``pong``/``init`` in any case keep it alive; any other word is ignored, so it is cut.
    """

    sock: int
    word: str | None


@attrs.frozen
class ClientClose:
    """Socket ``sock`` closes from the client side (close 1000)."""

    sock: int


@attrs.frozen
class RedisDrop:
    """``CLIENT KILL TYPE pubsub``: every subscription's connection is cut; ``during`` is
    published right after (inside the resubscribe window, so it may be lost), then the driver
    waits until every socket's subscription is back."""

    during: bytes = b"in the gap"


@attrs.frozen
class RedisPause:
    """``CLIENT PAUSE ms ALL``: Redis stalls (reads hang, nothing is refused) for ``ms``; the
    driver waits until it is over and every subscription is back."""

    ms: int = 1300


@attrs.frozen
class RedisOutage:
    """Redis is killed and stays down until every socket has given up (hangup, close 1000);
    then it is restarted on the same port."""


@attrs.frozen
class Shutdown:
    """SIGTERM the service: every socket gets hangup + close 1000 and the process exits 0;
    then it is started again (metrics start from zero)."""


@attrs.frozen
class Wait:
    """Let ``ms`` milliseconds pass with every socket answering its pings and nothing published.

    What a service does with time -- an idle subscription's request timeout, a backoff running
    out -- shows only after time has passed; without this, repros kept a dozen steps standing
    in for it. The durations come from the service's config (``Status2Model.waits``).
    """

    ms: int


@attrs.frozen
class Scrape:
    """Read ``/metrics`` (the model knows what each of the four metrics must say)."""


Command = (
    Connect
    | Crowd
    | Publish
    | ClientSend
    | Heartbeat
    | ClientClose
    | RedisDrop
    | RedisPause
    | RedisOutage
    | Shutdown
    | Scrape
    | Wait
)
