"""Strategies for the status2 machine: channels, paths, origins, payloads, and machine steps.

A small pool of runs and channels (so sockets share channels and publishes hit several), paths
that probe the route's edges (a trailing ``/``, a second colon, percent escapes), origins on
both sides of the allowlist, and payloads a re-encoding service would break: invalid UTF-8,
``<>&``, JSON-looking text, the empty string, sizes around the max message size.

Example::

    >>> cmd = status2_commands(sockets=(0,), channels={"r1:status": 1}).example()
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from ..status2.commands import (
    ClientClose,
    ClientSend,
    Command,
    Connect,
    Heartbeat,
    Publish,
    RedisDrop,
    RedisOutage,
    RedisPause,
    Scrape,
    Shutdown,
)
from .common import HOSTILE_STRINGS

__all__ = [
    "CHANNELS",
    "EDGE_CHANNEL",
    "channel_paths",
    "origins",
    "payloads",
    "status2_commands",
]

RUNS = ("r1", "run;2")
NAMES = ("status", "log.1")
CHANNELS: tuple[str, ...] = tuple(f"{r}:{n}" for r in RUNS for n in NAMES)
#: Valid, and uses every character class the route allows.
EDGE_CHANNEL = "a.b-c_d;e:f.g-h_9"
MALFORMED_PATHS = (
    "/",
    "/r1status",
    "/r1:",
    "/:status",
    "/r1:sta:tus",
    "/r1:status//",
    "/r1:st%20atus",
)
ORIGINS: tuple[str | None, ...] = (
    None,
    "https://allowed.example",
    "http://ALLOWED.example",
    "https://app.trusted.example",
    "https://evil.example",
    "https://trusted.example.evil.com",
)
WORDS: tuple[str | None, ...] = (None, "pong", "PONG", "Init", "pongs", "ping")
CLIENT_FRAMES = ("garbage", "binary", "unknown", "array", "oversized")


def channel_paths() -> st.SearchStrategy[str]:
    """Mostly valid channel paths (a fifth with the trailing ``/`` the route drops)."""
    valid = st.sampled_from((*CHANNELS, EDGE_CHANNEL)).map(lambda c: "/" + c)
    slashed = valid.map(lambda p: p + "/")
    return st.one_of(valid, valid, valid, slashed, st.sampled_from(MALFORMED_PATHS))


def origins() -> st.SearchStrategy[str | None]:
    return st.sampled_from(ORIGINS)


def payloads(max_message: int) -> st.SearchStrategy[bytes]:
    """What a run publishes, and what a service that re-encodes or escapes would break."""
    # What re-encoding breaks first: markup characters and bytes that are not UTF-8.
    special = st.sampled_from(
        (
            b"<b>&amp; 5 > 3 & 2 < 4</b>",
            b"\xff\xfe <&> \xc3(",
            b'{"type": "hangup"}',
            b"",
            "ünïcødé 🐘 ✓ <&>".encode(),
        )
    )
    hostile = st.sampled_from([h.encode() for h in HOSTILE_STRINGS])
    text = st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass"))
    anybytes = st.binary(max_size=30)
    sized = st.sampled_from((max_message - 40, max_message + 100)).map(lambda n: b"<&" * (n // 2))
    return st.one_of(special, special, hostile, text.filter(_encodable), anybytes, sized)


def _encodable(b: bytes) -> bool:
    # Lone surrogates from st.text() are not bytes anyone can publish as text: keep them out.
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def status2_commands(
    *,
    sockets: tuple[int, ...],
    channels: dict[str, int],
    drops: bool = True,
    pause: bool = False,
    outage: bool = False,
    shutdown: bool = False,
    metrics: bool = True,
    max_message: int = 4096,
) -> st.SearchStrategy[Command]:
    """One machine step, from what the model allows now: commands that need a socket are drawn
    only when one is open, Redis faults only when the machine may cause them."""
    return _commands(
        sockets, tuple(sorted(channels)), drops, pause, outage, shutdown, metrics, max_message
    )


@functools.lru_cache(maxsize=512)
def _commands(
    sockets: tuple[int, ...],
    channels: tuple[str, ...],
    drops: bool,
    pause: bool,
    outage: bool,
    shutdown: bool,
    metrics: bool,
    max_message: int,
) -> st.SearchStrategy[Command]:
    connect = st.builds(Connect, channel_paths(), origins())
    targets = st.sampled_from((*channels, *CHANNELS)) if channels else st.sampled_from(CHANNELS)
    publish = st.builds(Publish, targets, payloads(max_message))
    scrape: list[st.SearchStrategy[Command]] = [st.just(Scrape())] if metrics else []
    if not sockets:
        return st.one_of(connect, publish, *scrape, publish)
    sock = st.sampled_from(sockets)
    own = (
        st.builds(Publish, st.sampled_from(channels), payloads(max_message))
        if channels
        else publish
    )
    heartbeat = st.builds(Heartbeat, sock, st.sampled_from(WORDS))
    send = st.builds(ClientSend, sock, st.sampled_from(CLIENT_FRAMES))
    # Faults cost a second or more each (backoffs, a pause, a restart): one branch for all of
    # them keeps most steps cheap while every fault stays reachable.
    faults: list[st.SearchStrategy[Command]] = []
    if drops:
        faults.append(st.builds(RedisDrop, payloads(64)))
    if pause:
        faults.append(st.just(RedisPause()))
    if outage:
        faults.append(st.just(RedisOutage()))
    if shutdown:
        faults.append(st.just(Shutdown()))
    # Hypothesis draws the first and the last branch of a one_of far more often than the
    # others (it favours boundary indices), so those two are the cheap, common steps, and the
    # middle repeats what should come up more.
    choices: list[st.SearchStrategy[Command]] = [connect, publish, heartbeat, send, own]
    choices += [st.one_of(faults)] if faults else []
    choices += [heartbeat, *scrape, own, send, st.builds(ClientClose, sock), own]
    return st.one_of(choices)
