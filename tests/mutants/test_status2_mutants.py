"""Every seeded bug of the bundled status2 is caught within the ``ci`` budget, shrunk, and by
its own symptom (the signature names it), not by some side effect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant
from statemodels.infra.redis import RedisServer
from statemodels.pytest_plugin import long_lived
from statemodels.status2 import MUTANTS, bundled_machine, bundled_status2

pytestmark = pytest.mark.mutant

#: mutant -> (longest repro accepted, symptoms of which one must be in the signature). A
#: symptom is ``Kind/field`` or ``Kind/field:reason``; Kind is the command, or the check
#: (``streams``: what the sockets received, ``metrics``: a scrape).
SYMPTOMS: dict[str, tuple[int, tuple[str, ...]]] = {
    "pattern-subscribe": (15, ("Connect/numpat", "streams/streams:cross-channel")),
    "no-request-timeout": (15, ("RedisPause/reconnects",)),
    "no-jitter": (15, ("RedisOutage/hangup_spread_ms",)),
    "retry-never-reset": (
        15,
        (
            "streams/streams:unexpected-hangup",
            "RedisDrop/numsub",
            "RedisPause/numsub",
            # gave up after fewer redials than an outage owes: the count was not reset before
            "metrics/redis_reconnects_total",
        ),
    ),
    "pong-timeout-ignored": (15, ("Heartbeat/cut",)),
    "ws-pong-counted": (15, ("Heartbeat/cut",)),
    "pong-case-sensitive": (15, ("Heartbeat/cut",)),
    "origin-check-skipped": (15, ("Connect/status",)),
    "no-hangup-on-shutdown": (
        15,
        ("streams/streams:close-code", "streams/delivered:missing-frames"),
    ),
    "gauge-leak-on-give-up": (15, ("metrics/connections_active",)),
    "payload-utf8-replaced": (15, ("streams/streams:mutated",)),
    "payload-html-escaped": (15, ("streams/streams:mutated",)),
    "idle-channel-error": (
        15,
        (
            "Publish/receivers",
            "RedisDrop/numsub",
            "Connect/numsub",
            "Wait/numsub",
            # each needless resubscribe is a Redis reconnect the service counts
            "metrics/redis_reconnects_total",
        ),
    ),
    "trailing-slash-kept": (15, ("Connect/status",)),
    "no-read-limit": (15, ("ClientSend/close", "streams/delivered:not-closed")),
}


def shows(signature: str, symptom: str) -> bool:
    """Does ``Machine/Kind/field:reason,...`` show ``Kind/field`` (or ``Kind/field:reason``)?"""
    _, kind, fields = signature.split("/", 2)
    want_kind, want = symptom.split("/", 1)
    items = fields.split(",")
    return kind == want_kind and any(i == want or i.startswith(want + ":") for i in items)


def test_symptoms_are_read_from_signatures():
    sig = "Status2Machine/Connect/numpat:missing,numsub:missing,status:differs"
    assert shows(sig, "Connect/status") and not shows(sig, "Publish/status")
    assert shows("Status2Machine/streams/streams:mutated", "streams/streams:mutated")
    assert not shows("Status2Machine/streams/streams:lost", "streams/streams:mutated")


#: Mutants this machine does not yet catch within ``ci`` with a short repro: realistic bugs it
#: is blind to, listed so that nobody mistakes the catalogue for coverage. Moving one back to
#: the tested set is the work that closes the gap. (``no-jitter`` was here until ``Crowd``
#: opened the four sockets its symptom needs in one step.)
NOT_YET_CAUGHT: frozenset[str] = frozenset()


#: Most of a hunt is the shrinker replaying steps that take real time (heartbeats, waits,
#: outages); past this it keeps the shortest repro so far (which must still be short enough).
#: 30 s takes most repros to 1-2 steps; these need longer (at 30 s the idle one kept 15 steps,
#: at 60 s 9-11; the case-sensitive pong 14 at 30 s, 2 at 60 s; the pause one 12 at 60 s).
SHRINK_SECONDS = 30.0
SLOW_TO_SHRINK = {
    "idle-channel-error": 60.0,
    "no-request-timeout": 60.0,
    "no-read-limit": 60.0,
    "pong-case-sensitive": 60.0,
    "pong-timeout-ignored": 60.0,
    "ws-pong-counted": 60.0,
}

#: Caught only after an outage (about one step in 44), whose replays cost 2-5 s each: the hunt
#: and its shrinking take minutes, so these run in the weekly sweep, with Hypothesis's own
#: shrink bound. Still caught by their own symptom, with a short repro.
AFTER_AN_OUTAGE = frozenset({"gauge-leak-on-give-up", "retry-never-reset"})


def test_every_mutant_has_a_symptom():
    assert sorted(SYMPTOMS) == sorted(MUTANTS)
    assert set(MUTANTS) >= NOT_YET_CAUGHT | AFTER_AN_OUTAGE


@pytest.fixture(scope="module")
def status2_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    long_lived(server)
    try:
        yield server
    finally:
        server.stop()


#: Hunts whose first catch can be long while each replay costs seconds (waits, the
#: oversized close): examples of 12 steps, so the bounded shrink starts short. (With the
#: budget's 30, no-read-limit once kept a 28-step repro after its 60 s.)
SHORT_EXAMPLES = {"no-read-limit": 12}


def _hunt(mutant: str, redis_server: RedisServer, shrink_seconds: float | None) -> None:
    max_steps, symptoms = SYMPTOMS[mutant]
    with bundled_status2(redis_server, mutants={mutant}) as svc:
        found = catch_mutant(
            lambda: bundled_machine(svc, redis_server),
            budget="ci",
            max_steps=max_steps,
            shrink_seconds=shrink_seconds,
            example_steps=SHORT_EXAMPLES.get(mutant),
        )
    assert any(shows(found.signature, s) for s in symptoms), found.signature


@pytest.mark.parametrize("mutant", sorted(set(MUTANTS) - NOT_YET_CAUGHT - AFTER_AN_OUTAGE))
def test_status2_machine_catches(mutant, status2_redis):
    _hunt(mutant, status2_redis, SLOW_TO_SHRINK.get(mutant, SHRINK_SECONDS))


@pytest.mark.sweep
@pytest.mark.parametrize("mutant", sorted(AFTER_AN_OUTAGE - NOT_YET_CAUGHT))
def test_status2_machine_catches_after_an_outage(mutant, status2_redis):
    _hunt(mutant, status2_redis, None)
