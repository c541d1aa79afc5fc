"""The reload model, its expectations and its strategies: pure, no processes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemodels.engine import AnyOf, Bindings, Eq, Fails
from statemodels.infra.processes import ProcessIdentity
from statemodels.reload import (
    BreakBinary,
    Build,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    ReloadModel,
    Resources,
    RestartOrchestrator,
    StartService,
    StopService,
)
from statemodels.reload.model import FreshChecksum, Kept, Later, NoGrowth, PidOf, Renewed
from statemodels.reload.system.fleet import _COMMIT_SLOT, _TIME_SLOT, _stamp, parse_version_file
from statemodels.strategies.reload import BreakThenReload, Cascade, Rapid, reload_actions

DEPS = {"broker": (), "relay": ("broker",), "cache": ()}


def model(kind: str = "process-compose") -> ReloadModel:
    return ReloadModel.initial(kind, DEPS)


def test_a_build_must_be_later_fresh_and_describe_its_binary() -> None:
    step = model().apply(Build("broker"))
    assert isinstance(step.expect["timestamp"], Later)
    assert isinstance(step.expect["checksum"], FreshChecksum)
    assert step.expect["describes_binary"] == Eq(True)


def test_a_reload_renews_the_service_proves_its_build_and_keeps_the_others() -> None:
    step = model().apply(Reload("broker"))
    assert step.expect["identity:broker"] == Renewed("identity:broker")
    assert step.expect["exe_sha256:broker"] == Kept("checksum:broker")
    assert step.expect["commit:broker"] == Kept("commit:broker")
    assert step.expect["identity:relay"] == Kept("identity:relay")
    assert step.expect["identity:cache"] == Kept("identity:cache")
    assert "error" not in step.expect


@pytest.mark.parametrize(
    ("kind", "field", "expected"),
    [("supervisord", "error", Fails("NO_FILE")), ("process-compose", "running:broker", Eq(False))],
)
def test_reloading_a_deleted_binary_fails_as_the_orchestrator_documents(kind, field, expected):
    broken = model(kind).apply(BreakBinary("broker")).model
    step = broken.apply(Reload("broker"))
    assert step.expect[field] == expected
    assert step.expect["identity:cache"] == Kept("identity:cache")
    assert step.model.state("broker") == "failed"
    assert "broker" not in step.model.reloadable()
    rebuilt = step.model.apply(Build("broker")).model
    assert "broker" in rebuilt.reloadable()


def test_a_killed_orchestrator_answers_fast_and_then_only_unreachable() -> None:
    step = model().apply(KillOrchestratorDuringReload("broker"))
    assert step.expect["error"] == AnyOf(None, "unreachable")
    assert step.expect["one_line"] == Eq(True)
    assert "identity:broker" not in step.expect  # its fate is unknown; the others live on
    down = step.model
    assert not down.orchestrator_up
    assert down.apply(Reload("cache")).expect["error"] == Fails("unreachable")
    assert down.view()["orchestrator"] is None
    back = down.apply(RestartOrchestrator())
    assert back.model.orchestrator_up and back.model.state("broker") == "running"
    assert back.expect["orchestrator"] == Renewed("orchestrator")


def test_the_view_connects_each_running_dependent_to_its_dependency() -> None:
    view = model().view()
    assert view["dep_pid:relay"] == PidOf("identity:broker")
    stopped = model().apply(StopService("broker")).model
    assert stopped.view()["dep_pid:relay"] == 0
    assert stopped.view()["identity:broker"] is None
    assert stopped.apply(StartService("broker")).expect["identity:broker"] == Renewed(
        "identity:broker"
    )


def test_reload_many_renews_each_and_keeps_the_rest() -> None:
    step = model().apply(ReloadMany(("cache", "relay")))
    assert step.expect["identity:cache"] == Renewed("identity:cache")
    assert step.expect["identity:broker"] == Kept("identity:broker")


def test_resources_are_judged_per_long_lived_process() -> None:
    step = model().apply(Resources())
    assert set(step.expect) == {"fds:orchestrator", "rss:orchestrator", "fds:relay", "rss:relay"}


# -- expectations --------------------------------------------------------------------------


def test_later_needs_a_strictly_later_iso_timestamp() -> None:
    b = Bindings()
    later = Later("t")
    assert later.check("2026-12-01T16:00:00.000001Z", b) is None
    later.bind("2026-12-01T16:00:00.000001Z", b)
    assert later.check("2026-12-01T16:00:00.000001Z", b) == "not later"
    assert later.check("2026-12-01T16:00:00.000002Z", b) is None
    assert later.check("yesterday", b) == "not an ISO-8601 timestamp"


def test_fresh_checksum_refuses_a_repeat_and_a_non_sha() -> None:
    b = Bindings()
    fresh = FreshChecksum("c")
    digest = "a" * 64
    assert fresh.check(digest, b) is None
    fresh.bind(digest, b)
    assert fresh.check(digest, b) == "seen before in this run"
    assert fresh.check("abc", b) == "not a sha256"


def test_no_growth_judges_only_the_same_identity() -> None:
    b = Bindings()
    grow = NoGrowth("fds", 1)
    one, two = ProcessIdentity(10, 1.0), ProcessIdentity(11, 2.0)
    grow.bind((one, 10), b)
    assert grow.check((one, 11), b) is None
    assert grow.check((one, 12), b) == "grew beyond tolerance"
    assert grow.check((two, 50), b) is None  # a new process: a new baseline


def test_pid_of_and_kept_carry_no_values_in_their_reasons() -> None:
    b = Bindings()
    b.slots["identity:broker"] = ProcessIdentity(4711, 1.0)
    assert PidOf("identity:broker").check(4711, b) is None
    assert PidOf("identity:broker").check(4712, b) == "not connected to the current process"
    b.slots["k"] = 1
    assert Kept("k").check(2, b) == "changed"
    assert Renewed("identity:broker").check(b.slots["identity:broker"], b) == "not a new process"


# -- builds and strategies -----------------------------------------------------------------


def test_a_stamp_fills_the_placeholders_and_keeps_the_length() -> None:
    template = b"head" + _COMMIT_SLOT + b"mid" + _TIME_SLOT + b"tail"
    out = _stamp(template, "abc123", "2026-12-01T16:00:00.000000Z")
    assert len(out) == len(template) and b"abc123\0" in out and _COMMIT_SLOT not in out
    with pytest.raises(ValueError, match="longer than"):
        _stamp(template, "x" * 60, "t")


def test_version_files_parse_as_the_seeds_write_them() -> None:
    text = "commit: abc\ntimestamp: 2026-12-01T16:00:00Z\n\nchecksum: ff\n"
    assert parse_version_file(text) == {
        "commit": "abc",
        "timestamp": "2026-12-01T16:00:00Z",
        "checksum": "ff",
    }


def _actions(m: ReloadModel) -> st.SearchStrategy:
    return reload_actions(
        services=m.services,
        running=m.in_state("running"),
        stopped=m.in_state("stopped"),
        reloadable=m.reloadable(),
        broken=m.broken,
        has_dependents=tuple(n for n in m.services if m.dependents(n)),
        orchestrator_up=m.orchestrator_up,
        corrupt=m.orchestrator != "supervisord",
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["supervisord", "process-compose"]))
def test_every_drawn_action_is_one_the_model_can_apply(data, kind) -> None:
    m = model(kind)
    for _ in range(12):
        action = data.draw(_actions(m))
        if isinstance(action, Cascade):
            commands = [Reload(action.service)]
        elif isinstance(action, BreakThenReload):
            commands = [BreakBinary(action.service, action.how), Reload(action.service)]
        elif isinstance(action, Rapid):
            commands = [Build(action.service), Reload(action.service)] * action.times
        else:
            commands = [action]
        for command in commands:
            if isinstance(command, BreakBinary):  # supervisord: a corrupt exec is racy, not drawn
                assert command.how == "delete" or kind == "process-compose"
            m = m.apply(command).model
        if not m.orchestrator_up:
            assert isinstance(data.draw(_actions(m)), RestartOrchestrator | Reload)
