"""Fast properties of the supervisor models, backoff policies and strategies (no processes)."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodels.engine import Bindings, Fails, Same
from statemodels.errors import ConfigurationError
from statemodels.infra.processes import ProcessIdentity
from statemodels.strategies.supervisor import hostile_payloads, relay_actions, relay_rules
from statemodels.supervisor import (
    AddRule,
    ExponentialBackoff,
    FailSpawns,
    LinearThenFatal,
    ListRules,
    RelayConfig,
    RelayModel,
    RemoveRule,
    Renewed,
    Rule,
    SendRaw,
    StartProgram,
    StopProgram,
    SupervisordModel,
    WorkerRules,
    derive_rule_id,
    validate_rule,
)
from statemodels.supervisor.commands import ContWorker, KillWorker, Settle, StopWorker
from statemodels.supervisor.system import rules as bundled

POLICY = ExponentialBackoff(0.05, 2.0, 0.2)


def test_exponential_backoff_doubles_caps_and_starts_at_initial() -> None:
    assert POLICY.plan(0, immediate=False).delays == (0.05,)
    assert POLICY.plan(4, immediate=False).delays == (0.05, 0.1, 0.2, 0.2, 0.2)
    # A first spawn or a clean exit starts at once; a crash of that attempt waits `initial`.
    assert POLICY.plan(2, immediate=True).delays == (0.0, 0.05, 0.1)


@given(failures=st.integers(0, 30), immediate=st.booleans())
def test_exponential_plans_never_exceed_the_cap_and_never_shrink(
    failures: int, immediate: bool
) -> None:
    plan = POLICY.plan(failures, immediate=immediate)
    assert len(plan.delays) == failures + 1 and not plan.gives_up
    waits = plan.delays[1:] if immediate else plan.delays
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert max(plan.delays) <= POLICY.cap


@given(startretries=st.integers(0, 5), failures=st.integers(0, 10))
def test_linear_then_fatal_matches_supervisord(startretries: int, failures: int) -> None:
    plan = LinearThenFatal(startretries).plan(failures, immediate=True)
    if failures >= 1 + startretries:
        assert plan.gives_up and plan.failed_attempts == 1 + startretries
        assert plan.delays == tuple(float(k) for k in range(1 + startretries))
    else:
        assert not plan.gives_up and plan.delays == tuple(float(k) for k in range(failures + 1))


@given(body=relay_rules())
def test_the_model_and_the_bundled_relay_validate_rules_alike(body: dict) -> None:
    rule = Rule.from_json(body)
    reason = validate_rule(rule)
    try:
        normalised = bundled.validate_rule(rule.to_json())
    except bundled.BadRequest:
        assert reason is not None
    else:
        assert reason is None, reason
        expected_id = rule.rule_id or derive_rule_id(
            rule.input_interface, rule.input_group, rule.input_port, rule.input_protocol
        )
        assert normalised["rule_id"] == expected_id


def test_derived_ids_depend_on_the_protocol() -> None:
    assert derive_rule_id("eth0", "239.1.1.1", 5000, "udp") != derive_rule_id(
        "eth0", "239.1.1.1", 5000, "tcp"
    )
    assert derive_rule_id("eth0", "239.1.1.1", 5000, "udp") == bundled.derive_rule_id(
        "eth0", "239.1.1.1", 5000, "udp"
    )


def _rule(iface: str = "eth0", port: int = 5000, rule_id: str = "", proto: str = "udp") -> Rule:
    return Rule.from_json(
        {
            "rule_id": rule_id,
            "input_interface": iface,
            "input_group": "239.1.1.1",
            "input_port": port,
            "input_protocol": proto,
            "outputs": [{"group": "239.2.2.2", "port": 6000, "interface": "lo"}],
        }
    )


def test_relay_model_upserts_by_id_and_rejects_bad_rules() -> None:
    model = RelayModel(policy=POLICY)
    model = model.apply(AddRule(_rule(rule_id="a"))).model
    model = model.apply(AddRule(_rule(port=6001, rule_id="a"))).model
    assert [r.input_port for r in model.apply(ListRules()).model.rules.values()] == [6001]
    assert model.apply(AddRule(_rule(port=0))).expect["error"] == Fails("Error")
    assert model.apply(RemoveRule("nope")).expect["error"] == Fails("Error")
    assert model.apply(SendRaw("malformed", b"{")).expect["error"] == Fails("Error")


def test_a_new_interface_starts_a_pending_spawn_that_uses_up_armed_faults() -> None:
    model = RelayModel(policy=POLICY).apply(FailSpawns("eth0", 2)).model
    model = model.apply(AddRule(_rule())).model
    pending = model.slots["eth0"].pending
    assert pending is not None and pending.cause == "new"
    assert pending.plan.delays == (0.0, 0.05, 0.1) and model.faults["eth0"] == 0
    settled = model.after_settle("eth0")
    assert settled.settled() == ["eth0"]
    # Killing then waits the initial backoff: the successful spawn reset it.
    killed = settled.apply(KillWorker("eth0")).model
    assert killed.slots["eth0"].pending.plan.delays == (0.05,)  # type: ignore[union-attr]
    termed = settled.apply(KillWorker("eth0", signal="SIGTERM")).model
    assert termed.slots["eth0"].pending.plan.delays == (0.0,)  # type: ignore[union-attr]


def test_removing_the_last_rule_retires_the_worker_and_its_view() -> None:
    model = RelayModel(policy=POLICY).apply(AddRule(_rule(rule_id="a"))).model.after_settle("eth0")
    assert model.view()["worker_rules:eth0"] == (_rule(rule_id="a"),)
    model = model.apply(RemoveRule("a")).model
    assert model.slots == {} and model.view()["worker_ifaces"] == ()
    assert model.apply(WorkerRules("eth0")).expect["error"] == Fails("Error")


def test_renewed_rejects_the_same_or_a_seen_identity_and_rebinds() -> None:
    bindings = Bindings()
    first, second = ProcessIdentity(10, 1.0), ProcessIdentity(11, 2.0)
    renewed = Renewed("worker:eth0")
    assert renewed.check(first, bindings) is None
    renewed.bind(first, bindings)
    assert renewed.check(first, bindings) == "not a new process"
    assert renewed.check(None, bindings) == "no process"
    renewed.bind(second, bindings)
    assert Same("worker:eth0").check(second, bindings) is None
    assert renewed.check(first, bindings) == "not a new process"  # an old one coming back


def test_supervisord_model_fault_codes() -> None:
    model = SupervisordModel.initial(
        LinearThenFatal(2), {"a": "sleeper", "f": "flaky", "g": "ghost"}
    )
    assert model.apply(StartProgram("g")).expect["error"] == Fails("NO_FILE")
    assert model.apply(StartProgram("a")).expect["error"] == Fails("ALREADY_STARTED")
    stopped = model.apply(StopProgram("a")).model
    assert stopped.apply(StopProgram("a")).expect["error"] == Fails("NOT_RUNNING")
    assert model.apply(StartProgram("f")).model.states["f"] == "FATAL"
    assert model.apply(StopProgram("f")).expect["error"] == Fails("NOT_RUNNING")


@given(payload=hostile_payloads(max_request=1024))
def test_hostile_payloads_are_all_refused_by_the_bundled_validation(
    payload: tuple[str, bytes],
) -> None:
    kind, raw = payload
    if kind == "oversized":
        assert len(raw) > 1024
        return
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return  # malformed: refused before dispatch
    assert kind in ("unknown", "invalid-rule", "malformed")
    if isinstance(request, dict) and set(request) == {"AddRule"}:
        with pytest.raises(bundled.BadRequest):
            bundled.validate_rule(request["AddRule"])
    else:
        assert request not in ("Ping", "ListRules", "ListWorkers")


def test_relay_config_rejects_nonsense_in_one_line() -> None:
    with pytest.raises(ConfigurationError, match=r"initial_backoff must be > 0 \(got -1\)"):
        RelayConfig(initial_backoff=-1)


_IFACES = st.lists(st.sampled_from(("eth0", "eth1", "lo")), unique=True, max_size=3)


@given(data=st.data(), workers=_IFACES, faults=st.booleans())
def test_relay_actions_only_target_what_the_model_has(
    data: st.DataObject, workers: list[str], faults: bool
) -> None:
    settled = data.draw(st.sets(st.sampled_from(workers)) if workers else st.just(set()))
    stopped = data.draw(st.sets(st.sampled_from(sorted(settled))) if settled else st.just(set()))
    pending = sorted(set(workers) - settled)
    action = data.draw(
        relay_actions(
            workers=workers,
            settled=sorted(settled),
            stopped=sorted(stopped),
            pending=pending,
            removable=("a",),
            faults=faults,
        )
    )
    match action.command:
        case KillWorker(interface=iface, signal=sig):
            assert iface in settled and (sig == "SIGKILL" or iface not in stopped)
        case StopWorker(interface=iface):
            assert iface in settled and iface not in stopped
        case ContWorker(interface=iface):
            assert iface in stopped
        case FailSpawns(interface=iface):
            assert faults and iface not in pending
        case Settle():
            assert pending
        case RemoveRule(rule_id=rule_id):
            assert rule_id in ("a", "no-such-rule")
        case _:
            assert not action.settle or isinstance(action.command, AddRule)


def test_a_backoff_is_judged_against_the_attempts_crashed_so_far() -> None:
    plan = POLICY.plan(2, immediate=False)  # waits 50, 100, 200 ms before attempts 1, 2, 3
    assert plan.backoffs_by_attempt() == {(0, 50), (1, 100), (2, 200)}
    # A backoff that never doubles reports 50 again after the first crash: a value the plan
    # holds, in the wrong place.
    assert 50 in plan.backoffs_ms() and (1, 50) not in plan.backoffs_by_attempt()


def test_a_late_restart_is_excused_by_what_the_machine_waited_for_a_cpu(tmp_path) -> None:
    """The restart-schedule bound adds the PSI CPU wait since the mark, and only that."""
    from statemodels.engine.load import StallMeter
    from statemodels.supervisor.driver import RelayDriver

    psi = tmp_path / "cpu"
    psi.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n")
    driver = RelayDriver(client=None)  # type: ignore[arg-type]  # marks need no relay
    driver._meter = StallMeter(str(psi))
    driver.mark("eth0")
    time.sleep(0.3)
    assert driver.stalled_since_mark("eth0") == 0.0  # idle: no excuse at all
    psi.write_text("some avg10=9.00 avg60=9.00 avg300=9.00 total=1200000\n")
    assert driver.stalled_since_mark("eth0") == pytest.approx(0.2)
    psi.write_text("some avg10=99.0 avg60=99.0 avg300=99.0 total=9000000\n")
    # Never more than the time since the mark: a wait is part of the elapsed time.
    assert 0.3 <= driver.stalled_since_mark("eth0") < 1.0
