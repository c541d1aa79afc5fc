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
CLIENT_FRAMES = ("garbage", "binary", "unknown", "array", "limit", "oversized")


#: Every path a Connect may ask for, in one tuple: valid channels first (what a repro shrinks
#: to), then the same with the trailing ``/`` the route drops, then the malformed ones.
PATHS: tuple[str, ...] = (
    *("/" + c for c in (*CHANNELS, EDGE_CHANNEL)),
    *("/" + c + "/" for c in (*CHANNELS, EDGE_CHANNEL)),
    *MALFORMED_PATHS,
)


def channel_paths() -> st.SearchStrategy[str]:
    """Valid channel paths, slashed ones and malformed ones, drawn by ONE ``sampled_from``.

    A ``one_of`` of mapped strategies (as this was) shrinks each Connect towards its first
    branch -- an accepted socket -- so repros kept Connects that only stood in the way; one
    index over every path shrinks to the first path, and a refused path is one draw away."""
    return st.sampled_from(PATHS)


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
    waits: tuple[int, ...] = (),
) -> st.SearchStrategy[Command]:
    """One machine step, from what the model allows now: commands that need a socket are drawn
    only when one is open, Redis faults only when the machine may cause them, a ``Wait`` of one
    of ``waits`` ms (``Status2Model.waits``)."""
    return _commands(
        sockets,
        tuple(sorted(channels)),
        drops,
        pause,
        outage,
        shutdown,
        metrics,
        max_message,
        tuple(waits),
    )


def _copy(strategy: st.SearchStrategy[Command]) -> st.SearchStrategy[Command]:
    """A second branch drawing the same: ``one_of`` keeps only the first of two identical
    objects (tests/properties/test_strategies.py), so a weight needs a distinct one."""
    return strategy.map(_same)


def _same(cmd: Command) -> Command:
    return cmd


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
    waits: tuple[int, ...],
) -> st.SearchStrategy[Command]:
    connect = st.builds(Connect, channel_paths(), origins())
    # Connect's second weight is a Crowd: four sockets at once, so an outage can meet the four
    # that a jitter check needs (one branch more would move every other hunt's draws).
    crowd = st.builds(Crowd, channel_paths(), origins())
    targets = st.sampled_from((*channels, *CHANNELS)) if channels else st.sampled_from(CHANNELS)
    publish = st.builds(Publish, targets, payloads(max_message))
    scrape: list[st.SearchStrategy[Command]] = [st.just(Scrape())] if metrics else []
    if not sockets:
        return st.one_of(connect, publish, *scrape, crowd)
    sock = st.sampled_from(sockets)
    own = (
        st.builds(Publish, st.sampled_from(channels), payloads(max_message))
        if channels
        else publish
    )
    # Faults cost a second or more each (a resubscribe, a pause, an outage, a restart). They
    # are ONE branch, a sampled_from of the kinds (which one_of does not flatten: as a nested
    # one_of they took 4 of 11 branches and a third of all steps), so one step in 11 is a
    # fault, each kind about one in 44. A fault step shrinks towards the first kind, the
    # cheapest (RedisDrop); the outage is next (three mutants show only after one).
    kinds: list[Command] = []
    if drops:
        kinds.append(RedisDrop())
    if outage:
        kinds.append(RedisOutage())
    if pause:
        kinds.append(RedisPause())
    if shutdown:
        kinds.append(Shutdown())
    faults: list[st.SearchStrategy[Command]] = [st.sampled_from(kinds)] if kinds else []
    wait: list[st.SearchStrategy[Command]] = (
        [st.sampled_from(tuple(Wait(ms) for ms in waits))] if waits else []
    )
    # Weights are distinct branches (_copy): a publish to a subscribed channel twice, a
    # Connect and a Crowd (four open sockets are what a jitter check needs), the rest once.
    # The first branch is a publish, not a Connect: Hypothesis tries the all-first-branches
    # example early, and as 30 Connects in a row it outlasted a request timeout on Connects
    # alone -- a timing accident no shrink could shorten (the idle-channel mutant's repro was
    # 25 Connects).
    choices: list[st.SearchStrategy[Command]] = [
        own,
        connect,
        st.builds(Heartbeat, sock, st.sampled_from(WORDS)),
        st.builds(ClientSend, sock, st.sampled_from(CLIENT_FRAMES)),
        *wait,
        *faults,
        publish,
        *scrape,
        st.builds(ClientClose, sock),
        crowd,
        _copy(own),
    ]
    return st.one_of(choices)
