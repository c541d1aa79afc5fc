"""The relay machine: rules, kills, stops, crashing spawns and garbage, against the model.

Each step is one command; after each, the engine checks that ListRules, ListWorkers and every
settled worker's OWN rule set match the model. A restart is checked where it completes
("settles"): the interface's worker must be Running with an identity never seen before, no
answer on the way may report a dead pid as Running, and the measured gaps between the kill,
each crashed attempt and the next spawn must match the backoff policy's plan within
``tolerance`` seconds. ``KillWorker(wait=False)`` leaves the restart pending so the next
commands race with it; the ``settle`` rule (or a later kill-with-wait) checks it.

Example::

    def test_relay():
        run_machine(lambda: bundled_relay_machine(RelayConfig()))

SIGSTOP contract: a stopped worker is alive, so it is not restarted and stays Running with the
same identity; asking it for its rules is an ``Error`` after the relay's worker timeout (the
control socket stays responsive); SIGCONT resumes it, and the commands queued meanwhile apply.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from ..engine import ModelMachine, Within
from ..strategies.supervisor import INTERFACES, hostile_payloads, relay_rules
from .commands import (
    AddRule,
    ContWorker,
    FailSpawns,
    KillProgram,
    KillWorker,
    ListPrograms,
    ListRules,
    ListWorkers,
    Ping,
    RemoveRule,
    Rule,
    SendRaw,
    StartProgram,
    StopProgram,
    StopWorker,
    WorkerRules,
)
from .driver import RelayClient, RelayDriver
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

__all__ = ["RelayMachine", "SupervisordMachine", "bundled_relay_machine", "supervisord_machine"]

# A start time read from /proc is truncated to a clock tick (10 ms): gaps can read that short.
_TICK = 0.012


class RelayMachine(ModelMachine):
    """Drives a relay supervisor and checks it against :class:`RelayModel`.

    Args:
        driver: a :class:`RelayDriver` on a fresh relay.
        policy: the relay's configured backoff.
        tolerance: seconds a restart may start later than the policy says.
        spawn_allowance: seconds one spawn may take to become Running (waiting, not judged).
        latency: seconds any control request must be answered within.
        faults: draw ``FailSpawns`` (needs fault injection in the driver).
        max_request: the relay's request size limit, for oversized payloads.
    """

    machine_name = "RelayMachine"
    # The view must hold at once; the short grace only absorbs a worker that a loaded machine
    # did not schedule within the relay's worker timeout (a persistent mismatch still fails).
    view_within = 0.1

    def __init__(
        self,
        driver: RelayDriver,
        *,
        policy: ExponentialBackoff,
        tolerance: float = 0.075,
        spawn_allowance: float = 0.5,
        latency: float = 0.1,
        faults: bool = True,
        max_request: int = 65536,
        step_timeout: float | None = None,
    ) -> None:
        super().__init__(
            driver, RelayModel(policy=policy, latency=latency), step_timeout=step_timeout
        )
        self.relay: RelayDriver = driver
        self.tolerance = tolerance
        self.spawn_allowance = spawn_allowance
        self.faults_enabled = faults
        self.max_request = max_request

    @property
    def state(self) -> RelayModel:
        assert isinstance(self.model, RelayModel)
        return self.model

    # -- rules --------------------------------------------------------------------------------

    @initialize(body=relay_rules(invalid=False))
    def first_rule(self, body: dict[str, Any]) -> None:
        """Every example starts with one running worker: most of the contract needs one."""
        self._add(Rule.from_json(body), wait=True)

    @rule(body=relay_rules(), wait=st.sampled_from((True, False)))
    def add_rule(self, body: dict[str, Any], wait: bool) -> None:
        self._add(Rule.from_json(body), wait)

    @precondition(lambda self: bool(self.state.slots))
    @rule(data=st.data(), wait=st.sampled_from((True, False)))
    def add_rule_to_a_worker(self, data: st.DataObject, wait: bool) -> None:
        """Another rule for an interface that has a worker (perhaps one being restarted)."""
        iface = data.draw(st.sampled_from(sorted(self.state.slots)), label="interface")
        body = data.draw(relay_rules((iface,), invalid=False), label="rule")
        self._add(Rule.from_json(body), wait)

    def _add(self, rule_: Rule, wait: bool) -> None:
        new = rule_.input_interface not in self.state.slots
        out = self.execute(AddRule(rule_))
        if new and not out.skipped:
            self.relay.mark(rule_.input_interface, at=self.relay.sent_at)
        if wait and not out.skipped and rule_.input_interface in self.state.pending():
            self._settle(rule_.input_interface)

    @rule(data=st.data())
    def remove_rule(self, data: st.DataObject) -> None:
        candidates = [*self.state.removable(), "no-such-rule"]
        self.execute(RemoveRule(data.draw(st.sampled_from(candidates), label="rule_id")))

    @rule(query=st.sampled_from((ListRules(), ListWorkers(), Ping())))
    def ask(self, query: ListRules | ListWorkers | Ping) -> None:
        self.execute(query)

    @rule(data=st.data())
    def worker_rules(self, data: st.DataObject) -> None:
        candidates = [*sorted(self.state.slots), "nowhere0"]
        self.execute(WorkerRules(data.draw(st.sampled_from(candidates), label="interface")))

    @rule(payload=st.deferred(lambda: hostile_payloads()))
    def send_garbage(self, payload: tuple[str, bytes]) -> None:
        kind, raw = payload
        if kind == "oversized":
            raw = b'"' + b"A" * (self.max_request + 1) + b'"'
        self.execute(SendRaw(kind, raw))

    @precondition(lambda self: bool(self.state.settled()))
    @rule(
        data=st.data(),
        sig=st.sampled_from(("SIGKILL", "SIGTERM")),
        wait=st.sampled_from((True, False)),
    )
    def kill_worker(self, data: st.DataObject, sig: str, wait: bool) -> None:
        stopped = self.state.stopped()
        candidates = [i for i in self.state.settled() if sig == "SIGKILL" or i not in stopped]
        if not candidates:
            return
        iface = data.draw(st.sampled_from(candidates), label="interface")
        out = self.execute(KillWorker(iface, sig))
        if wait and not out.skipped:
            self._settle(iface)

    @precondition(lambda self: bool(set(self.state.settled()) - set(self.state.stopped())))
    @rule(data=st.data())
    def stop_worker(self, data: st.DataObject) -> None:
        candidates = sorted(set(self.state.settled()) - set(self.state.stopped()))
        self.execute(StopWorker(data.draw(st.sampled_from(candidates), label="interface")))

    @precondition(lambda self: bool(self.state.stopped()))
    @rule(data=st.data())
    def cont_worker(self, data: st.DataObject) -> None:
        iface = data.draw(st.sampled_from(self.state.stopped()), label="interface")
        self.execute(ContWorker(iface))

    @precondition(lambda self: self.faults_enabled)
    @rule(iface=st.sampled_from(INTERFACES), count=st.integers(1, 2))
    def fail_spawns(self, iface: str, count: int) -> None:
        if iface in self.state.pending():
            return  # counts must stay knowable: arm faults only between restarts
        self.execute(FailSpawns(iface, count))

    @precondition(lambda self: bool(self.state.pending()))
    @rule()
    def settle(self) -> None:
        for iface in self.state.pending():
            self._settle(iface)

    # -- restarts -----------------------------------------------------------------------------

    def _settle(self, iface: str) -> None:
        """Wait for the pending (re)spawn of ``iface``; check identity, liveness and timing."""
        slot = self.state.slots[iface]
        if self.tainted is not None or slot.pending is None:
            return
        plan = slot.pending.plan
        within = sum(plan.delays) + len(plan.delays) * self.spawn_allowance + self.tolerance
        seen_dead: set[Any] = set()

        def observe() -> dict[str, Any]:
            seen = self.relay.worker_status(iface)
            seen_dead.update(seen["running_dead"])
            # Once seen, a dead "Running" worker stays a divergence: later looks cannot undo it.
            return {**seen, "running_dead": tuple(sorted(seen_dead, key=repr))}

        expect = {"status": "Running", "identity": Renewed(worker_slot(iface)), "running_dead": ()}
        got = self.check_eventually("respawn", expect, observe, within=within)
        if not got:
            return
        timeline = self.relay.restart_timeline(iface, got["identity"])
        schedule = _schedule_expect(plan, self.tolerance)
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
        policy = ExponentialBackoff(
            config.initial_backoff, config.backoff_factor, config.backoff_cap
        )
        return RelayMachine(
            driver, policy=policy, max_request=config.max_request, **machine_options
        )
    except BaseException:
        relay.stop()
        raise


def _schedule_expect(plan: RetryPlan, tolerance: float, *, final: bool = True) -> dict[str, Any]:
    """Expected attempts and gaps of one restart episode (``gapN`` = wait before attempt N)."""
    expect: dict[str, Any] = {"attempts": plan.failed_attempts}
    delays = plan.delays if final else plan.delays[: plan.failed_attempts]
    for k, delay in enumerate(delays, start=1):
        expect[f"gap{k}"] = Within(round(delay - _TICK, 4), round(delay + tolerance, 4))
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

    @rule(name=st.sampled_from(sorted(PROGRAMS)))
    def start_program(self, name: str) -> None:
        flaky = PROGRAMS[name] == "flaky"
        if flaky and self.flaky_started:
            return  # one BACKOFF-to-FATAL episode per example: they take seconds
        out = self.execute(StartProgram(name))
        if flaky and not out.skipped and out.error is None:
            self.flaky_started = True
            self._watch_flaky()

    @rule(name=st.sampled_from(sorted(PROGRAMS)))
    def stop_program(self, name: str) -> None:
        self.execute(StopProgram(name))

    @precondition(lambda self: bool(self.state.running()))
    @rule(data=st.data())
    def kill_program(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.state.running()), label="name")
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
                {"gap": Within(-_TICK, self.respawn_within)},
                lambda: {"gap": gap},
                within=0.0,
            )

    @rule()
    def list_programs(self) -> None:
        self.execute(ListPrograms())

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
