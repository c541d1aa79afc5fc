"""Pure models of a process supervisor: the relay supervisor and supervisord.

The model never does I/O and never reads a clock. It knows *relations*: a killed worker must come
back with an identity never seen before, after the delays its backoff policy prescribes; an
untouched worker keeps its identity; a worker holds exactly its interface's rules.

The restart schedule is a parameter, :class:`BackoffPolicy`:

- :class:`ExponentialBackoff` (the relay): wait ``initial``, multiply by ``factor`` per consecutive
  failed spawn, never above ``cap``; a successful spawn resets it.
- :class:`LinearThenFatal` (supervisord): retry after 1, 2, 3 ... s and give up (FATAL) after
  ``1 + startretries`` failed attempts.

Example::

    >>> ExponentialBackoff(0.05, 2.0, 0.15).plan(failures=3, immediate=False).delays
    (0.05, 0.1, 0.15, 0.15)
    >>> LinearThenFatal(startretries=2).plan(failures=99, immediate=True)
    RetryPlan(delays=(0.0, 1.0, 2.0), gives_up=True)
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from ..engine import AnyOf, Anything, Expect, Fails, Latency, Renewed, Same, Step
from .commands import (
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
    StopWorker,
    WorkerRules,
)

__all__ = [
    "BackoffPolicy",
    "ExponentialBackoff",
    "LinearThenFatal",
    "Pending",
    "RelayModel",
    "Renewed",
    "RetryPlan",
    "SupervisordModel",
    "derive_rule_id",
    "validate_rule",
    "worker_slot",
]

PROTOCOLS = ("udp", "tcp")
_IFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_RULE_ID = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
_MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")


# -- backoff policies ---------------------------------------------------------------------


@attrs.frozen
class RetryPlan:
    """One restart episode: the wait before each spawn attempt; the last succeeds unless
    ``gives_up``."""

    delays: tuple[float, ...]
    gives_up: bool = False

    @property
    def failed_attempts(self) -> int:
        return len(self.delays) if self.gives_up else len(self.delays) - 1

    def backoffs_ms(self) -> frozenset[int]:
        """Every wait of this episode in whole milliseconds: what a supervisor may report as
        ``{"Restarting": {"backoff_ms": N}}`` while it runs."""
        return frozenset(round(d * 1000) for d in self.delays)

    def backoffs_by_attempt(self) -> frozenset[tuple[int, int]]:
        """``(k, ms)``: after ``k`` crashed attempts of this episode, the wait reported must be
        ``ms`` -- the schedule in order, not just its set of values."""
        return frozenset((k, round(d * 1000)) for k, d in enumerate(self.delays))


class BackoffPolicy(Protocol):
    """How a supervisor spaces spawn attempts after failures."""

    def plan(self, failures: int, *, immediate: bool) -> RetryPlan:
        """The episode for ``failures`` consecutive crashing spawns.

        ``immediate``: the first attempt starts at once (a first spawn, a clean exit) rather
        than after a backoff (an abnormal exit).
        """
        ...


def _nonneg(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be >= 0 (got {value!r})")


@attrs.frozen
class ExponentialBackoff:
    """Wait ``initial`` s, then ``initial * factor**k``, capped at ``cap``; reset on success."""

    initial: float = attrs.field(validator=_nonneg)
    factor: float = attrs.field(default=2.0, validator=_nonneg)
    cap: float = attrs.field(default=float("inf"), validator=_nonneg)

    def next(self, current: float) -> float:
        return min(current * self.factor, self.cap)

    def plan(self, failures: int, *, immediate: bool) -> RetryPlan:
        delays = [0.0 if immediate else self.initial]
        backoff = self.initial if immediate else self.next(self.initial)
        for _ in range(failures):
            delays.append(backoff)
            backoff = self.next(backoff)
        return RetryPlan(tuple(delays))


@attrs.frozen
class LinearThenFatal:
    """supervisord: attempt k+1 follows failure k after k seconds; FATAL after
    ``1 + startretries`` failed attempts."""

    startretries: int = attrs.field(validator=_nonneg)
    step: float = 1.0

    def plan(self, failures: int, *, immediate: bool = True) -> RetryPlan:
        gives_up = failures >= 1 + self.startretries
        attempts = 1 + self.startretries if gives_up else failures + 1
        return RetryPlan(tuple(self.step * k for k in range(attempts)), gives_up)


# -- expectations about identities --------------------------------------------------------


def worker_slot(interface: str) -> str:
    """The binding slot naming the current worker process of ``interface``."""
    return f"worker:{interface}"


# -- rules --------------------------------------------------------------------------------


def derive_rule_id(interface: str, group: str, port: int, protocol: str) -> str:
    """The id a relay gives a rule added with an empty ``rule_id``: a hash of what it listens on."""
    key = f"{interface}|{group}|{port}|{protocol}"
    return "r-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def validate_rule(rule: Rule) -> str | None:
    """Why the relay must reject ``rule`` (one line), or ``None`` if it must accept it."""
    if not _IFACE.fullmatch(rule.input_interface):
        return f"input_interface {rule.input_interface!r} is not an interface name"
    try:
        group = ipaddress.IPv4Address(rule.input_group)
    except ValueError:
        return f"input_group {rule.input_group!r} is not an IPv4 address"
    if group not in _MULTICAST:
        return f"input_group {rule.input_group!r} is not in 224.0.0.0/4"
    if not 1 <= rule.input_port <= 65535:
        return f"input_port {rule.input_port!r} is not in 1..65535"
    if rule.input_protocol not in PROTOCOLS:
        return f"input_protocol {rule.input_protocol!r} is not one of {PROTOCOLS}"
    if len(rule.name) > 64:
        return "name is longer than 64 characters"
    if not _RULE_ID.fullmatch(rule.rule_id):
        return f"rule_id {rule.rule_id!r} is not a valid id"
    if len(rule.outputs) > 16:
        return "more than 16 outputs"
    for out in rule.outputs:
        if out.interface == rule.input_interface:
            return f"output interface {out.interface!r} equals the input interface"
        if not _IFACE.fullmatch(out.interface) or not 1 <= out.port <= 65535:
            return f"bad output {out!r}"
        try:
            ipaddress.IPv4Address(out.group)
        except ValueError:
            return f"output group {out.group!r} is not an IPv4 address"
    return None


# -- the relay model ----------------------------------------------------------------------


@attrs.frozen
class Pending:
    """A (re)spawn episode under way for one interface: why, and its planned attempts."""

    cause: str  # "new" (first spawn), "kill" (abnormal exit), "term" (clean exit)
    plan: RetryPlan


@attrs.frozen
class Slot:
    """The model's view of one interface that has rules (and so a worker)."""

    pending: Pending | None = None
    stopped: bool = False


_RUNNING = "Running"


def _reported_backoff(plan: RetryPlan) -> Expect:
    """What ListWorkers may say of a worker being (re)spawned: no backoff (it is Starting or
    already Running) or ``Restarting`` with one of the episode's planned waits. A wait the policy
    never plans (not reset, not doubled, not capped, a clean exit made to wait) is wrong the
    moment it is reported, whatever the clock says: this is what catches schedule bugs without
    depending on timing."""
    return AnyOf(None, *sorted(plan.backoffs_ms()))


@attrs.frozen
class RelayModel:
    """What a relay supervisor must do, as a pure value.

    ``rules`` maps rule id to rule; ``slots`` has an entry per interface with rules; ``faults``
    counts the spawns per interface that will crash at start-up. ``latency`` bounds every control
    request's answer time (seconds).
    """

    policy: ExponentialBackoff
    rules: Mapping[str, Rule] = attrs.field(factory=dict)
    slots: Mapping[str, Slot] = attrs.field(factory=dict)
    faults: Mapping[str, int] = attrs.field(factory=dict)
    latency: float = 0.75
    derive: Callable[[str, str, int, str], str] = derive_rule_id

    # -- queries the machine uses for preconditions ----------------------------------------

    def rules_of(self, interface: str) -> tuple[Rule, ...]:
        return tuple(r for _, r in sorted(self.rules.items()) if r.input_interface == interface)

    def settled(self) -> list[str]:
        """Interfaces whose worker is up and not being restarted."""
        return sorted(i for i, s in self.slots.items() if s.pending is None)

    def pending(self) -> list[str]:
        return sorted(i for i, s in self.slots.items() if s.pending is not None)

    def stopped(self) -> list[str]:
        return sorted(i for i, s in self.slots.items() if s.stopped)

    def removable(self) -> list[str]:
        """Rule ids that may be removed without making the fault bookkeeping unknowable.

        Removing the last rule of an interface whose restart is crashing through faults would
        leave unknown how many crashes were used up; everything else is fair game.
        """
        out = []
        for rule_id, rule in sorted(self.rules.items()):
            slot = self.slots.get(rule.input_interface)
            last = len(self.rules_of(rule.input_interface)) == 1
            crashing = (
                slot is not None and slot.pending is not None and slot.pending.plan.failed_attempts
            )
            if not (last and crashing):
                out.append(rule_id)
        return out

    def after_settle(self, interface: str) -> RelayModel:
        """The model once the pending restart of ``interface`` was observed to complete."""
        slots = dict(self.slots)
        slots[interface] = attrs.evolve(slots[interface], pending=None)
        return attrs.evolve(self, slots=slots)

    # -- the contract ------------------------------------------------------------------------

    def apply(self, cmd: Any) -> Step:
        timed = {"took": Latency(self.latency)}
        fail = {"error": Fails("Error"), **timed}
        match cmd:
            case AddRule(rule=rule):
                if validate_rule(rule) is not None:
                    return Step(self, fail)
                return Step(self._add(rule), timed)
            case RemoveRule(rule_id=rule_id):
                if rule_id not in self.rules:
                    return Step(self, fail)
                return Step(self._remove(rule_id), timed)
            case ListRules():
                return Step(self, {"rules": self._sorted_rules(), **timed})
            case ListWorkers():
                return Step(self, {**self._workers_expect(), **timed})
            case Ping():
                return Step(self, timed)
            case WorkerRules(interface=iface):
                slot = self.slots.get(iface)
                if slot is None or slot.stopped:
                    return Step(self, fail)
                if slot.pending is not None:
                    return Step(self, {"error": AnyOf(None, "Error"), **timed})
                expect = {"rules": self.rules_of(iface), "identity": Same(worker_slot(iface))}
                return Step(self, {**expect, **timed})
            case SendRaw(kind="at-limit"):  # a Ping of exactly the request size limit
                return Step(self, timed)
            case SendRaw():
                return Step(self, fail)
            case KillWorker(interface=iface, signal=sig):
                plan = self.policy.plan(self.faults.get(iface, 0), immediate=sig == "SIGTERM")
                cause = "term" if sig == "SIGTERM" else "kill"
                slots = {**self.slots, iface: Slot(pending=Pending(cause, plan))}
                faults = {**self.faults, iface: 0}
                model = attrs.evolve(self, slots=slots, faults=faults)
                return Step(model, {"killed": Same(worker_slot(iface))})
            case StopWorker(interface=iface):
                slots = {**self.slots, iface: attrs.evolve(self.slots[iface], stopped=True)}
                model = attrs.evolve(self, slots=slots)
                return Step(model, {"stopped": Same(worker_slot(iface))})
            case ContWorker(interface=iface):
                slots = {**self.slots, iface: attrs.evolve(self.slots[iface], stopped=False)}
                model = attrs.evolve(self, slots=slots)
                return Step(model, {"resumed": Same(worker_slot(iface))})
            case FailSpawns(interface=iface, count=n):
                return Step(attrs.evolve(self, faults={**self.faults, iface: n}), {})
        raise TypeError(f"RelayModel cannot apply {cmd!r}: not a relay command")

    def view(self) -> Mapping[str, Any]:
        """What ListRules, ListWorkers and each settled worker's own rule set must show."""
        out: dict[str, Any] = {
            "rules": self._sorted_rules(),
            "worker_ifaces": tuple(sorted(self.slots)),
            "running_dead": (),
        }
        for iface, slot in self.slots.items():
            if slot.pending is not None:
                out[f"backoff:{iface}"] = _reported_backoff(slot.pending.plan)
                continue
            out[f"status:{iface}"] = _RUNNING
            out[f"identity:{iface}"] = Same(worker_slot(iface))
            if not slot.stopped:
                out[f"worker_rules:{iface}"] = self.rules_of(iface)
        return out

    # -- helpers -----------------------------------------------------------------------------

    def _sorted_rules(self) -> tuple[Rule, ...]:
        return tuple(r for _, r in sorted(self.rules.items()))

    def _workers_expect(self) -> dict[str, Any]:
        expect: dict[str, Any] = {"ifaces": tuple(sorted(self.slots)), "running_dead": ()}
        for iface, slot in self.slots.items():
            if slot.pending is None:
                expect[f"status:{iface}"] = _RUNNING
                expect[f"identity:{iface}"] = Same(worker_slot(iface))
            else:
                expect[f"status:{iface}"] = Anything()
                expect[f"backoff:{iface}"] = _reported_backoff(slot.pending.plan)
        return expect

    def _add(self, rule: Rule) -> RelayModel:
        rule_id = rule.rule_id or self.derive(
            rule.input_interface, rule.input_group, rule.input_port, rule.input_protocol
        )
        stored = attrs.evolve(rule, rule_id=rule_id)
        model = self
        old = self.rules.get(rule_id)
        if old is not None and old.input_interface != rule.input_interface:
            model = model._remove(rule_id)
        rules = {**model.rules, rule_id: stored}
        slots = dict(model.slots)
        faults = dict(model.faults)
        iface = rule.input_interface
        if iface not in slots:
            plan = self.policy.plan(faults.get(iface, 0), immediate=True)
            slots[iface] = Slot(pending=Pending("new", plan))
            faults[iface] = 0
        return attrs.evolve(model, rules=rules, slots=slots, faults=faults)

    def _remove(self, rule_id: str) -> RelayModel:
        rules = {k: v for k, v in self.rules.items() if k != rule_id}
        iface = self.rules[rule_id].input_interface
        slots = dict(self.slots)
        if not any(r.input_interface == iface for r in rules.values()):
            slots.pop(iface, None)
        return attrs.evolve(self, rules=rules, slots=slots)


# -- the supervisord model ----------------------------------------------------------------

_ACTIVE = ("RUNNING", "STARTING", "BACKOFF")


def program_slot(name: str) -> str:
    """The binding slot naming the current process of supervisord program ``name``."""
    return f"program:{name}"


@attrs.frozen
class SupervisordModel:
    """What supervisord must do with programs of three kinds.

    ``kinds`` maps a program to ``"sleeper"`` (runs until killed; autorestart), ``"flaky"``
    (exits at once, so it never stays up ``startsecs``) or ``"ghost"`` (its command does not
    exist). ``states`` holds supervisord's state names. A flaky start is an episode the machine
    watches to its end: BACKOFF with the policy's delays, then FATAL.
    """

    policy: LinearThenFatal
    kinds: Mapping[str, str]
    states: Mapping[str, str]

    @classmethod
    def initial(cls, policy: LinearThenFatal, kinds: Mapping[str, str]) -> SupervisordModel:
        states = {n: "RUNNING" if k == "sleeper" else "STOPPED" for n, k in kinds.items()}
        return cls(policy, dict(kinds), states)

    def running(self) -> list[str]:
        return sorted(n for n, s in self.states.items() if s == "RUNNING")

    def active(self) -> tuple[str, ...]:
        """Programs a stop succeeds on (RUNNING, STARTING or BACKOFF)."""
        return tuple(sorted(n for n, s in self.states.items() if s in _ACTIVE))

    def startable(self) -> tuple[str, ...]:
        """Sleepers a start succeeds on: not active. (The flaky one starts an episode of
        seconds and the ghost always fails: they come from a start of any program.)"""
        return tuple(
            sorted(
                n for n, s in self.states.items() if self.kinds[n] == "sleeper" and s not in _ACTIVE
            )
        )

    def flaky_plan(self) -> RetryPlan:
        """A flaky program never starts: every attempt fails until the policy gives up."""
        return self.policy.plan(failures=1 << 30, immediate=True)

    def apply(self, cmd: Any) -> Step:
        from .commands import KillProgram, ListPrograms, StartProgram, StopProgram

        match cmd:
            case StartProgram(name=name):
                if self.kinds[name] == "ghost":
                    return Step(self, {"error": Fails("NO_FILE")})
                if self.states[name] in _ACTIVE:
                    return Step(self, {"error": Fails("ALREADY_STARTED")})
                if self.kinds[name] == "flaky":
                    end = "FATAL" if self.flaky_plan().gives_up else "RUNNING"
                    return Step(self._with(name, end), {})
                expect = {"identity": Renewed(program_slot(name))}
                return Step(self._with(name, "RUNNING"), expect)
            case StopProgram(name=name):
                if self.states[name] not in _ACTIVE:
                    return Step(self, {"error": Fails("NOT_RUNNING")})
                return Step(self._with(name, "STOPPED"), {})
            case KillProgram(name=name):
                return Step(self, {"killed": Same(program_slot(name))})
            case ListPrograms():
                return Step(self, self.view())
        raise TypeError(f"SupervisordModel cannot apply {cmd!r}: not a supervisord command")

    def view(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        for name, state in self.states.items():
            out[f"state:{name}"] = state
            out[f"identity:{name}"] = Same(program_slot(name)) if state == "RUNNING" else None
        return out

    def _with(self, name: str, state: str) -> SupervisordModel:
        return attrs.evolve(self, states={**self.states, name: state})
