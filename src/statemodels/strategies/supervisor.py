"""Strategies for the supervisor machines: relay rules, hostile payloads, and machine steps.

Rules come out as the JSON objects the relay's control protocol carries (``AddRule`` bodies);
:func:`relay_actions` turns them into commands. Small pools (three interfaces, a few groups and
ports) make collisions -- upserts, shared interfaces, derived-id clashes -- common, and a fifth of
the rules are invalid in a way the relay must reject (port 0, output interface equal to the
input interface ...).

Example::

    >>> rule = relay_rules().example()
    >>> sorted(rule)
    ['input_group', 'input_interface', 'input_port', 'input_protocol', 'name', 'outputs', 'rule_id']
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from ..supervisor.commands import (
    Action,
    AddRule,
    ContWorker,
    FailSpawns,
    KillWorker,
    ListRules,
    ListWorkers,
    Ping,
    RemoveRule,
    Rule,
    SendRaw,
    Settle,
    StopWorker,
    WorkerRules,
)
from .common import HOSTILE_STRINGS

__all__ = [
    "GROUPS",
    "INTERFACES",
    "PROTOCOLS",
    "hostile_payloads",
    "limit_payloads",
    "multicast_groups",
    "outputs",
    "ports",
    "relay_actions",
    "relay_rules",
]

INTERFACES = ("eth0", "eth1", "lo")
#: 224.0.0.0/4 at both ends, too (just outside: :data:`OUTSIDE_GROUPS`).
GROUPS = ("239.1.1.1", "239.1.1.2", "224.0.1.129", "233.252.0.1", "224.0.0.0", "239.255.255.255")
OUTSIDE_GROUPS = ("10.1.2.3", "223.255.255.255", "240.0.0.0")
PROTOCOLS = ("udp", "tcp")
RULE_IDS = ("", "", "a", "b", "video-1", "r" * 64)  # 64: the id limit, at
# Names are data the relay must store verbatim: quotes, unicode, the 64-character limit.
NAMES = ("", "camera feed", "x" * 64, *(h for h in HOSTILE_STRINGS if len(h) <= 64))


def multicast_groups() -> st.SearchStrategy[str]:
    """Groups in 224.0.0.0/4: mostly from a small pool (so rules collide), sometimes any."""
    anywhere = st.ip_addresses(v=4, network="224.0.0.0/4").map(str)
    return st.one_of(st.sampled_from(GROUPS), anywhere)


def ports() -> st.SearchStrategy[int]:
    """Valid UDP ports, mostly from a small pool."""
    return st.one_of(st.sampled_from((5000, 5001, 6000, 1, 65535)), st.integers(1, 65535))


def outputs(
    input_interface: str, interfaces: tuple[str, ...] = INTERFACES
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """1-2 output destinations on interfaces other than ``input_interface``, sometimes the
    limit of 16 (an interface name of 15 characters, the longest allowed, among them)."""
    others = [i for i in interfaces if i != input_interface] or ["out0"]
    one = st.fixed_dictionaries(
        {"group": multicast_groups(), "port": ports(), "interface": st.sampled_from(others)}
    )
    longest = st.fixed_dictionaries(
        {"group": multicast_groups(), "port": ports(), "interface": st.just("o" * 15)}
    )
    full = st.tuples(st.lists(one, min_size=15, max_size=15), longest).map(
        lambda parts: [*parts[0], parts[1]]
    )
    return st.one_of(st.lists(one, min_size=1, max_size=2), full)


@st.composite
def _valid_rule(draw: st.DrawFn, interfaces: tuple[str, ...]) -> dict[str, Any]:
    iface = draw(st.sampled_from(interfaces))
    return {
        "rule_id": draw(st.sampled_from(RULE_IDS)),
        "name": draw(st.sampled_from(NAMES)),
        "input_interface": iface,
        "input_group": draw(multicast_groups()),
        "input_port": draw(ports()),
        "input_protocol": draw(st.sampled_from(PROTOCOLS)),
        "outputs": draw(outputs(iface, interfaces)),
    }


#: One limit of the contract broken, just outside it where it has a boundary.
_FLAWS = (
    "port-zero",
    "port-65536",
    "loop",
    "unicast-group",
    "bad-output-port",
    "long-name",
    "long-rule-id",
    "long-output-interface",
    "too-many-outputs",
)


@st.composite
def _invalid_rule(draw: st.DrawFn, interfaces: tuple[str, ...]) -> dict[str, Any]:
    rule = draw(_valid_rule(interfaces))
    flaw = draw(st.sampled_from(_FLAWS))
    if flaw == "port-zero":
        rule["input_port"] = 0
    elif flaw == "port-65536":
        rule["input_port"] = 65536
    elif flaw == "long-name":
        rule["name"] = "n" * 65
    elif flaw == "long-rule-id":
        rule["rule_id"] = "r" * 65
    elif flaw == "long-output-interface":
        rule["outputs"] = [{**rule["outputs"][0], "interface": "o" * 16}]
    elif flaw == "too-many-outputs":
        rule["outputs"] = [dict(rule["outputs"][0]) for _ in range(17)]
    elif flaw == "loop":  # forwarding back out of the input interface
        rule["outputs"] = [
            *rule["outputs"],
            {**rule["outputs"][0], "interface": rule["input_interface"]},
        ]
    elif flaw == "unicast-group":
        rule["input_group"] = draw(st.sampled_from(OUTSIDE_GROUPS))
    else:
        rule["outputs"] = [{**rule["outputs"][0], "port": 0}]
    return rule


def relay_rules(
    interfaces: tuple[str, ...] = INTERFACES, *, invalid: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """``AddRule`` bodies; with ``invalid``, one in two breaks a validation rule.

    (It was written as four valid to one invalid, which ``one_of`` reads as one to one: see
    ``tests/properties/test_strategies.py``. The relay's hunts, several of them timing-
    dependent, are tuned on this mix; the share of steps that change the model is held up by
    the valid-only adds to interfaces that have a worker, drawn besides these.)
    """
    valid = _valid_rule(interfaces)
    if not invalid:
        return valid
    return st.one_of(valid, _invalid_rule(interfaces))


_MALFORMED = (b"", b"{", b"not json", b'{"AddRule": ', b'"Ping', b"\xff\xfe\x00", b"{'Ping': 1}")
_UNKNOWN = (
    b'"Frobnicate"',
    b'{"Frobnicate": {}}',
    b'{"AddRule": {}, "Ping": null}',
    b"[]",
    b"42",
    b"null",
    b'{"Ping": 1}',
    b'{"RemoveRule": "a"}',
    b'{"WorkerRules": {}}',
)


def _invalid_rule_payloads() -> st.SearchStrategy[bytes]:
    bad_fields: list[dict[str, Any]] = [
        {"input_port": 70000},
        {"input_port": "5000"},
        {"input_group": "not-an-ip"},
        {"input_protocol": "icmp"},
        {"outputs": "eth1"},
        {"surprise": True},
        {"rule_id": "has space"},
    ]
    base = {
        "input_interface": "eth0",
        "input_group": "239.1.1.1",
        "input_port": 5000,
        "outputs": [{"group": "239.2.2.2", "port": 6000, "interface": "eth1"}],
    }
    missing = [{k: v for k, v in base.items() if k != gone} for gone in base]
    bodies = [{**base, **bad} for bad in bad_fields] + missing
    return st.sampled_from([json.dumps({"AddRule": b}).encode() for b in bodies])


def hostile_payloads(max_request: int = 65536) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(kind, payload)``: malformed JSON, unknown commands, invalid rules, oversized bodies.

    Every payload must be answered with an ``Error`` (and must not cost the relay a rule).
    """
    oversized = b'"' + b"A" * (max_request + 1) + b'"'
    return st.one_of(
        st.tuples(st.just("malformed"), st.sampled_from(_MALFORMED)),
        st.tuples(st.just("malformed"), st.binary(max_size=24).map(lambda b: b"\xff" + b)),
        st.tuples(st.just("unknown"), st.sampled_from(_UNKNOWN)),
        st.tuples(st.just("invalid-rule"), _invalid_rule_payloads()),
        st.tuples(st.just("oversized"), st.just(oversized)),
    )


def limit_payloads(max_request: int = 65536) -> st.SearchStrategy[tuple[str, bytes]]:
    """``"Ping"`` padded with JSON whitespace to exactly ``max_request`` bytes (``at-limit``:
    must be answered) and to one byte more (``oversized``: must be refused)."""
    ping = b'"Ping"'
    return st.sampled_from(
        (
            ("at-limit", ping + b" " * (max_request - len(ping))),
            ("oversized", ping + b" " * (max_request + 1 - len(ping))),
        )
    )


def relay_actions(
    *,
    workers: Sequence[str] = (),
    settled: Sequence[str] = (),
    stopped: Sequence[str] = (),
    pending: Sequence[str] = (),
    removable: Sequence[str] = (),
    faults: bool = True,
    max_request: int = 65536,
) -> st.SearchStrategy[Action]:
    """Every step the relay machine can take now, simplest first (shrinking ends on early ones).

    The machine passes what its model knows: ``workers`` (interfaces with rules), ``settled``
    (their worker is up), ``stopped`` (SIGSTOPped), ``pending`` (being restarted) and
    ``removable`` rule ids. Commands that need a worker are drawn only when there is one. With
    ``faults``, ``FailSpawns`` is drawn too (arming faults only between restarts, so the model
    knows how many spawns will crash). Cached: the same state gives the same strategy object.
    """
    return _relay_actions(
        tuple(workers),
        tuple(settled),
        tuple(stopped),
        tuple(pending),
        tuple(removable),
        faults,
        max_request,
    )


@functools.lru_cache(maxsize=512)
def _relay_actions(
    workers: tuple[str, ...],
    settled: tuple[str, ...],
    stopped: tuple[str, ...],
    pending: tuple[str, ...],
    removable: tuple[str, ...],
    faults: bool,
    max_request: int,
) -> st.SearchStrategy[Action]:
    settle = st.booleans()

    def add(body: dict[str, Any], then_settle: bool) -> Action:
        return Action(AddRule(Rule.from_json(body)), then_settle)

    choices: list[st.SearchStrategy[Action]] = [
        st.sampled_from((ListRules(), ListWorkers(), Ping())).map(Action),
        st.builds(add, relay_rules(), settle),
    ]
    if workers:  # another rule for an interface that has a worker (perhaps being restarted)
        choices.append(st.builds(add, relay_rules(workers, invalid=False), settle))
    # Failing requests stay, as a minority: a step that fails changes nothing.
    choices.append(st.sampled_from((*removable, "no-such-rule")).map(RemoveRule).map(Action))
    choices.append(st.sampled_from((*workers, "nowhere0")).map(WorkerRules).map(Action))
    if settled:
        killable = [st.sampled_from(settled).map(KillWorker)]
        running = tuple(i for i in settled if i not in stopped)
        if running:  # SIGTERM is a clean exit only for a worker that can run its handler
            killable.append(st.sampled_from(running).map(lambda i: KillWorker(i, "SIGTERM")))
        choices.append(st.builds(Action, st.one_of(killable), settle))
    if pending:
        choices.append(st.just(Action(Settle())))
    idle = tuple(i for i in INTERFACES if i not in pending)
    if faults and idle:
        fail = st.builds(FailSpawns, st.sampled_from(idle), st.integers(1, 2))
        choices.append(fail.map(Action))
    running = tuple(i for i in settled if i not in stopped)
    if running:
        choices.append(st.sampled_from(running).map(StopWorker).map(Action))
    if stopped:
        choices.append(st.sampled_from(stopped).map(ContWorker).map(Action))
    # One branch for all garbage. ``one_of`` flattens a nested ``one_of`` (also through
    # ``map``) into its own branches, which gave the five kinds of hostile payload five of
    # thirteen branches -- ~40% of all steps. ``builds`` keeps it one branch.
    raw = st.one_of(hostile_payloads(max_request), limit_payloads(max_request))
    choices.append(st.builds(lambda kp: Action(SendRaw(*kp)), raw))
    return st.one_of(choices)
