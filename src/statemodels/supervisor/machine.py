"""The relay machine: rules, kills, stops, crashing spawns and garbage, against the model.

Each step is one :class:`~statemodels.supervisor.commands.Action` drawn by one rule from
:func:`~statemodels.strategies.supervisor.relay_actions` (a ``one_of`` of what the model allows
now; one rule shrinks far better than a rule per command). After each, the engine checks that
ListRules, ListWorkers and every settled worker's OWN rule set match the model. A restart is
checked where it completes ("settles"): the interface's worker must be Running with an identity
never seen before, no answer on the way may report a dead pid as Running, every backoff
ListWorkers reported on the way must be the plan's wait after the attempts crashed so far
(``backoffs_ms`` pairs them: ``(crashed, ms)``), and the measured gaps between the
kill, each crashed attempt and the next spawn must match the plan: never early, and late by at
most ``tolerance`` seconds. ``Action(KillWorker(...), settle=False)`` leaves the restart
pending so the next commands race with it; a later ``Settle()`` (or a settling kill) checks it.

Example::

    def test_relay():
        run_machine(lambda: bundled_relay_machine(RelayConfig()))

SIGSTOP contract: a stopped worker is alive, so it is not restarted and stays Running with the
same identity; asking it for its rules is an ``Error`` after the relay's worker timeout (the
control socket stays responsive); SIGCONT resumes it, and the commands queued meanwhile apply.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from ..engine import EachIn, ModelMachine, Within
from ..infra.processes import ProcessIdentity
from ..strategies import supervisor as strategies
from .commands import (
    Action,
    AddRule,
    KillProgram,
    KillWorker,
    ListPrograms,
    RemoveRule,
    Rule,
    Settle,
    StartProgram,
    StopProgram,
)
from .driver import RelayClient, RelayDriver, clear_relay
from .model import (
    ExponentialBackoff,
    LinearThenFatal,
    RelayModel,
    Renewed,
    RetryPlan,
    SupervisordModel,
    program_slot,
    worker_slot,
)
from .supervisord import PROGRAMS, SupervisordDriver, SupervisordServer
from .system.launch import BundledRelay, RelayConfig, RelayPool
from .system.worker import START_TIME_SLACK

__all__ = [
    "RelayMachine",
    "SupervisordMachine",
    "bundled_policy",
    "bundled_relay_machine",
    "relay_machine",
    "supervisord_machine",
]


class RelayMachine(ModelMachine):
    """Drives a relay supervisor and checks it against :class:`RelayModel`.

    Args:
        driver: a :class:`RelayDriver` on a fresh relay.
        policy: the relay's configured backoff.
        tolerance: seconds a restart may start later than the policy says.
        spawn_allowance: seconds one spawn may take to become Running (waiting, not judged).
        latency: seconds any control request must be answered within. Generous on purpose (a
            loaded 2-core machine was seen to take 0.41 s for an AddRule) yet below the relay's
            1 s request timeout, so a request path that waits that timeout is still caught.
        faults: draw ``FailSpawns`` (needs fault injection in the driver).
        max_request: the relay's request size limit, for oversized payloads.
        retire_within: seconds the worker of an interface whose last rule was removed may
            take to exit (a stopped one is force-killed; the bundled relay does it in 0.3 s).
        socket_mode: the permission bits the control socket must have (the bundled relay's
            contract: ``0o600``); ``None`` leaves them unchecked (a relay you run may differ).
    """

    machine_name = "RelayMachine"
    # The view must hold at once; the short grace only absorbs a worker that a loaded machine
    # did not schedule within the relay's worker timeout (a persistent mismatch still fails).
    view_within = 0.1
    # A backoff the policy never plans is wrong the moment ListWorkers reports it; the mistaken
    # wait ends on its own (the worker comes back), so waiting for the view would hide it.
    view_final = ("backoff:",)

    def __init__(
        self,
        driver: RelayDriver,
        *,
        policy: ExponentialBackoff,
        tolerance: float = 0.25,
        spawn_allowance: float = 0.5,
        latency: float = 0.75,
        faults: bool = True,
        max_request: int = 65536,
        step_timeout: float | None = None,
        retire_within: float = 2.0,
        socket_mode: int | None = None,
    ) -> None:
        super().__init__(
            driver, RelayModel(policy=policy, latency=latency), step_timeout=step_timeout
        )
        self.retire_within = retire_within
        self.socket_mode = socket_mode
        self.relay: RelayDriver = driver
        self.tolerance = tolerance
        self.spawn_allowance = spawn_allowance
        self.faults_enabled = faults
        self.max_request = max_request

    @property
    def state(self) -> RelayModel:
        assert isinstance(self.model, RelayModel)
        return self.model

    # -- steps ------------------------------------------------------------------------------

    @initialize(body=st.deferred(lambda: strategies.relay_rules(invalid=False)))
    def first_rule(self, body: dict[str, Any]) -> None:
        """Every example starts with one running worker: most of the contract needs one."""
        self._add(Rule.from_json(body), settle=True)
        if self.socket_mode is not None:
            path = self.relay.client.socket_path

            def mode() -> dict[str, Any]:
                return {"mode": oct(stat.S_IMODE(os.stat(path).st_mode))}

            self.check_eventually("socket", {"mode": oct(self.socket_mode)}, mode, within=0.0)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One command, drawn from what the model says is possible now."""
        model = self.state
        action = data.draw(
            strategies.relay_actions(
                workers=sorted(model.slots),
                settled=model.settled(),
                stopped=model.stopped(),
                pending=model.pending(),
                removable=model.removable(),
                faults=self.faults_enabled,
                max_request=self.max_request,
            ),
            label="action",
        )
        self.perform(action)

    def perform(self, action: Action) -> None:
        """Carry one action out: execute its command, then settle what it started if asked."""
        before = set(self.state.slots)
        self._carry_out(action)
        self._disarm_retired(before)

    def _disarm_retired(self, before: set[str]) -> None:
        """A fault armed for a restart episode ends with it. An interface retired mid-episode
        (its last rule removed, or moved to another interface, while its spawns were crashing)
        must not hand the crashes it did not use to its next worker: the model planned them
        all into that episode, so the harness is set to what the model still holds armed for
        the interface (zero then; a fault armed after the episode, never used, stays). (A
        loaded machine stretches an episode, so this met a correct relay there as
        ``backoff:eth0`` reported where none was planned.)"""
        faults = self.relay.faults
        if faults is None or self.tainted is not None:
            return
        for iface in before - set(self.state.slots):
            faults.fail_spawns(iface, self.state.faults.get(iface, 0))

    def _carry_out(self, action: Action) -> None:
        match action.command:
            case Settle():
                for iface in self.state.pending():
                    self._settle(iface)
            case AddRule(rule=rule_):
                self._add(rule_, action.settle)
            case KillWorker(interface=iface) as kill:
                out = self.execute(kill)
                if action.settle and not out.skipped:
                    self._settle(iface)
            case RemoveRule(rule_id=rule_id) as remove:
                self._remove(remove, self.state.rules.get(rule_id))
            case command:
                self.execute(command)

    def _remove(self, remove: RemoveRule, rule_: Rule | None) -> None:
        """Remove a rule; if it was its interface's last, the worker must go for good.

        ListWorkers stops listing a retired interface at once, so only the process table can
        tell a worker that was never told to stop (or a stopped one never force-killed).
        """
        iface = rule_.input_interface if rule_ is not None else None
        worker = self.bindings.get(worker_slot(iface)) if iface is not None else None
        out = self.execute(remove)
        if out.skipped or iface is None or iface in self.state.slots:
            return
        if isinstance(worker, ProcessIdentity):
            self.check_eventually(
                "retire",
                {"worker_alive": False},
                lambda: {"worker_alive": worker.alive()},
                within=self.retire_within,
            )

    def _add(self, rule_: Rule, settle: bool) -> None:
        new = rule_.input_interface not in self.state.slots
        out = self.execute(AddRule(rule_))
        if new and not out.skipped:
            self.relay.mark(rule_.input_interface, at=self.relay.sent_at)
        if settle and not out.skipped and rule_.input_interface in self.state.pending():
            self._settle(rule_.input_interface)

    # -- restarts -----------------------------------------------------------------------------

    def _settle(self, iface: str) -> None:
        """Wait for the pending (re)spawn of ``iface``; check identity, liveness and timing."""
        slot = self.state.slots[iface]
        if self.tainted is not None or slot.pending is None:
            return
        plan = slot.pending.plan
        within = sum(plan.delays) + len(plan.delays) * self.spawn_allowance + self.tolerance
        seen_dead: set[Any] = set()
        backoffs: set[tuple[int, Any]] = set()  # (crashed attempts so far, reported backoff)

        def observe() -> dict[str, Any]:
            before = len(self.relay.crashed_since_mark(iface))
            seen = self.relay.worker_status(iface)
            after = len(self.relay.crashed_since_mark(iface))
            seen_dead.update(seen.pop("running_dead"))
            backoff = seen.pop("backoff")
            if backoff is not None and before == after:  # else: which wait it was is unsure
                backoffs.add((after, backoff))
            # Once seen, a dead "Running" worker or an unplanned backoff stays a divergence: later
            # looks cannot undo it.
            return {
                **seen,
                "running_dead": tuple(sorted(seen_dead, key=repr)),
                "backoffs_ms": tuple(sorted(backoffs, key=repr)),
            }

        expect = {
            "status": "Running",
            "identity": Renewed(worker_slot(iface)),
            "running_dead": (),
            "backoffs_ms": EachIn(plan.backoffs_by_attempt()),
        }
        final = ("running_dead", "backoffs_ms")
        got = self.check_eventually("respawn", expect, observe, within=within, final=final)
        if not got:
            return
        timeline = self.relay.restart_timeline(iface, got["identity"])
        # Late by at most the tolerance, plus what the machine waited for a CPU meanwhile.
        late = self.tolerance + self.relay.stalled_since_mark(iface)
        schedule = _schedule_expect(plan, late)
        self.check_eventually("restart-schedule", schedule, lambda: timeline, within=0.0)
        if self.tainted is None:
            self.model = self.state.after_settle(iface)


def bundled_relay_machine(
    config: RelayConfig | None = None, *, pool: RelayPool | None = None, **machine_options: Any
) -> RelayMachine:
    """A :class:`RelayMachine` on a fresh bundled relay: newly started, or from ``pool`` after a
    verified reset (much faster per example).

    The relay is stopped (or given back to the pool) when the machine tears down.
    """
    if pool is not None:
        config = pool.config
        relay = pool.acquire()
        done: Callable[[], None] = partial(pool.release, relay)
    else:
        config = config or RelayConfig()
        relay = BundledRelay.start(config)
        done = relay.stop
    try:
        driver = RelayDriver(RelayClient(relay.socket_path), faults=relay, on_close=done)
        return RelayMachine(
            driver,
            policy=bundled_policy(config),
            max_request=config.max_request,
            **{"socket_mode": 0o600, **machine_options},
        )
    except BaseException:
        relay.stop()
        raise


def bundled_policy(config: RelayConfig) -> ExponentialBackoff:
    """The backoff a bundled relay started with ``config`` follows."""
    return ExponentialBackoff(config.initial_backoff, config.backoff_factor, config.backoff_cap)


def relay_machine(
    socket_path: str, *, policy: ExponentialBackoff, **machine_options: Any
) -> RelayMachine:
    """A :class:`RelayMachine` on a relay you run, driven through its control socket alone.

    Each call (each example) first empties the relay with :func:`clear_relay`: the relay must
    be one the tests may reset. ``policy`` is the relay's configured backoff. Spawn faults need
    a hook in the relay, so ``FailSpawns`` is not drawn; workers are signalled by pid, so the
    tests must run on the relay's host with the right to signal its workers.

    Example::

        policy = ExponentialBackoff(initial=0.1, factor=2.0, cap=0.2)
        run_machine(lambda: relay_machine("/run/mcr/control.sock", policy=policy))
    """
    client = RelayClient(socket_path)
    clear_relay(client)
    return RelayMachine(RelayDriver(client), policy=policy, faults=False, **machine_options)


def _schedule_expect(plan: RetryPlan, tolerance: float, *, final: bool = True) -> dict[str, Any]:
    """Expected attempts and gaps of one restart episode (``gapN`` = wait before attempt N)."""
    expect: dict[str, Any] = {"attempts": plan.failed_attempts}
    delays = plan.delays if final else plan.delays[: plan.failed_attempts]
    for k, delay in enumerate(delays, start=1):
        expect[f"gap{k}"] = Within(round(delay - START_TIME_SLACK, 4), round(delay + tolerance, 4))
    return expect


class SupervisordMachine(ModelMachine):
    """Drives a real supervisord's programs and checks it against :class:`SupervisordModel`.

    Args:
        driver: a :class:`SupervisordDriver` on a fresh supervisord.
        policy: supervisord's backoff (``LinearThenFatal(startretries)``).
        respawn_within: seconds a killed program may take to be RUNNING again.
        tolerance: seconds a BACKOFF retry may start late (supervisord wakes up once a second).
    """

    machine_name = "SupervisordMachine"

    def __init__(
        self,
        driver: SupervisordDriver,
        *,
        policy: LinearThenFatal,
        respawn_within: float = 2.5,
        tolerance: float = 1.1,
        step_timeout: float | None = None,
    ) -> None:
        model = SupervisordModel.initial(policy, PROGRAMS)
        super().__init__(driver, model, step_timeout=step_timeout)
        self.sv: SupervisordDriver = driver
        self.respawn_within = respawn_within
        self.tolerance = tolerance
        self.flaky_started = False

    @property
    def state(self) -> SupervisordModel:
        assert isinstance(self.model, SupervisordModel)
        return self.model

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One start, stop, kill or listing, drawn by :meth:`_kinds` (one rule, so the weights
        hold: Hypothesis draws its rules evenly)."""
        kind, names = data.draw(st.sampled_from(self._kinds()), label="kind")
        if kind == "list":
            self.execute(ListPrograms())
            return
        name = data.draw(st.sampled_from(names), label="name")
        if kind == "start":
            self._start(name)
        elif kind == "stop":
            self.execute(StopProgram(name))
        else:
            self._kill(name)

    def _kinds(self) -> list[tuple[str, tuple[str, ...]]]:
        """What a step may do, repeated by weight; the first entry is what shrinking goes to.

        Mostly a start of a stopped sleeper and a stop of an active program: what the model
        says succeeds and changes the state (a start of a running program fails and changes
        nothing; with a rule per command, drawn evenly, 3% of all steps changed the model).
        Then a kill of a running program, and a start or stop of any program (the failing
        ones, the flaky and the ghost: a minority). The listing is the same RPC the view
        invariant reads after every step.
        """
        everything = tuple(sorted(PROGRAMS))
        kinds: list[tuple[str, tuple[str, ...]]] = []
        startable = self.state.startable()
        if startable:
            kinds += [("start", startable)] * 2
        active = self.state.active()
        if active:
            kinds += [("stop", active)] * 2
        running = tuple(self.state.running())
        if running:
            kinds.append(("kill", running))
        return [*kinds, ("start", everything), ("stop", everything), ("list", ())]

    def _start(self, name: str) -> None:
        flaky = PROGRAMS[name] == "flaky"
        if flaky and self.flaky_started:
            return  # one BACKOFF-to-FATAL episode per example: they take seconds
        out = self.execute(StartProgram(name))
        if flaky and not out.skipped and out.error is None:
            self.flaky_started = True
            self._watch_flaky()

    def _kill(self, name: str) -> None:
        out = self.execute(KillProgram(name))
        if out.skipped:
            return

        def observe() -> dict[str, Any]:
            seen = self.sv.observe()
            return {"state": seen.get(f"state:{name}"), "identity": seen.get(f"identity:{name}")}

        expect = {"state": "RUNNING", "identity": Renewed(program_slot(name))}
        got = self.check_eventually("respawn", expect, observe, within=self.respawn_within)
        if got:
            gap = self.sv.respawn_gap(name, got["identity"])
            self.check_eventually(
                "respawn-delay",
                {"gap": Within(-START_TIME_SLACK, self.respawn_within)},
                lambda: {"gap": gap},
                within=0.0,
            )

    def _watch_flaky(self) -> None:
        plan = self.state.flaky_plan()
        within = sum(plan.delays) + len(plan.delays) * (self.tolerance + 0.5)

        def observe() -> dict[str, Any]:
            return {"state": self.sv.observe().get("state:flaky")}

        final = "FATAL" if plan.gives_up else "RUNNING"
        if not self.check_eventually("backoff-to-fatal", {"state": final}, observe, within=within):
            return
        timeline = self.sv.flaky_timeline()
        schedule = _schedule_expect(plan, self.tolerance, final=not plan.gives_up)
        self.check_eventually("backoff-schedule", schedule, lambda: timeline, within=0.0)


def supervisord_machine(*, startretries: int = 2, **machine_options: Any) -> SupervisordMachine:
    """Start a fresh supervisord in a temp dir and return a :class:`SupervisordMachine` on it."""
    server = SupervisordServer.start(startretries=startretries)
    try:
        driver = SupervisordDriver(server, on_close=server.stop)
        policy = LinearThenFatal(startretries)
        return SupervisordMachine(driver, policy=policy, **machine_options)
    except BaseException:
        server.stop()
        raise
