"""What a run reports: every distinct divergence, root-cause signatures, exploring past known ones.

These are the engine's bug-finding properties, checked on the in-process toy system (no servers):

- one run reports every distinct divergence it met, each shrunk on its own;
- a divergence inside a composite command is signed with the inner command, as at top level, and
  the knock-on effects of an op that already diverged are not judged;
- a known divergence the model can follow (both sides failed, with different codes) does not
  end the example: the steps after it are still run and judged;
- signatures never hold values, for every expectation type;
- each machine run has its own example-database key, so saved failures are never lost;
- a run that ran nothing fails.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase
from hypothesis.stateful import rule

from statemodels.engine import (
    AnyOf,
    Anything,
    Bind,
    Bindings,
    Changed,
    Divergence,
    EachIn,
    Eq,
    Fails,
    Fresh,
    Latency,
    Matches,
    NoExamplesRan,
    Same,
    Within,
    database_key,
    run_machine,
    signature_of,
)
from statemodels.engine.divergence import Mismatch
from statemodels.engine.stats import known_entries, set_known

from .toy import Add, Batch, CounterMachine, CounterSystem


def _divergences(info: pytest.ExceptionInfo[BaseException]) -> list[Divergence]:
    exc = info.value
    if isinstance(exc, Divergence):
        return [exc]
    assert isinstance(exc, BaseExceptionGroup), exc
    return [e for e in exc.exceptions if isinstance(e, Divergence)]


def test_one_run_reports_every_distinct_divergence_each_shrunk() -> None:
    bugs = frozenset({"add-3-twice", "no-overflow-check"})
    with pytest.raises(BaseException) as info:
        run_machine(
            lambda: CounterMachine(CounterSystem(bugs)),
            budget="ci",
            database=None,
            derandomize=True,
        )
    found = {d.signature: d for d in _divergences(info)}
    assert set(found) >= {"CounterMachine/Add/value:differs", "CounterMachine/Add/error:succeeded"}
    assert found["CounterMachine/Add/value:differs"].steps == 1  # Add(3), shrunk on its own
    # Three Add(40)s are the shortest overflow; the shrinker may stop a step or two short of it,
    # because every smaller Add of 3 to 9 on the way is the other bug (a different signature).
    assert found["CounterMachine/Add/error:succeeded"].steps <= 5
    # Distinct signatures are distinct exception classes: what lets Hypothesis tell them apart.
    assert len({type(d) for d in found.values()}) == len(found)


class BatchMachine(CounterMachine):
    machine_name = "CounterMachine"

    @rule(ops=st.lists(st.integers(0, 40).map(Add), min_size=1, max_size=4))
    def batch(self, ops: list[Add]) -> None:
        self.execute(Batch(tuple(ops)))


def test_a_divergence_inside_a_composite_is_signed_with_the_inner_command() -> None:
    machine = BatchMachine(CounterSystem(frozenset({"add-3-twice"})))
    try:
        with pytest.raises(Divergence) as info:
            machine.execute(Batch((Add(1), Add(3), Add(5))))
    finally:
        machine.teardown()
    found = info.value
    # The same signature as a top-level Add(3), not the position "Batch/op1.value".
    assert found.signature == "CounterMachine/Add/value:differs"
    assert [m.field for m in found.mismatches] == ["op1.value"]  # op2 is a knock-on: not judged
    assert found.legacy_signature == "CounterMachine/Batch/op1.value:differs"


def test_a_failed_inner_op_is_judged_on_its_error_only() -> None:
    mismatches = [Mismatch("op0.error", "None", "'overflow'", "differs", "op0", "Add")]
    top = [Mismatch("error", "None", "'overflow'", "differs")]
    assert signature_of("M", "Batch", mismatches) == signature_of("M", "Add", top)


def test_a_known_divergence_the_model_can_follow_does_not_end_the_example() -> None:
    previous = known_entries()
    set_known(["CounterMachine/Add/error:wrong error"])
    machine = CounterMachine(CounterSystem(frozenset({"overflow-code", "add-3-twice"})))
    try:
        for _ in range(2):
            machine.execute(Add(40))
        out = machine.execute(Add(40))  # both sides fail, with different codes: known, followed
        assert out.error == "too-big" and machine.tainted is None
        with pytest.raises(Divergence) as info:
            machine.execute(Add(3))  # still judged: the next bug is found in the same example
    finally:
        machine.teardown()
        set_known(previous)
    assert info.value.signature == "CounterMachine/Add/value:differs"


def test_a_known_divergence_the_model_cannot_follow_taints_the_example() -> None:
    previous = known_entries()
    set_known(["CounterMachine/Add/value:differs"])
    machine = CounterMachine(CounterSystem(frozenset({"add-3-twice"})))
    try:
        machine.execute(Add(3))
        assert machine.tainted == "CounterMachine/Add/value:differs"
        assert machine.execute(Add(1)).skipped
    finally:
        machine.teardown()
        set_known(previous)


# Every expectation type, with the values it is checked against: the reasons must not hold them.
_VALUE = 48813
_EXPECTS = [
    (Eq(7), _VALUE),
    (Same("s"), _VALUE),
    (Changed("s"), 12345),
    (Fresh("pool"), 777),
    (Matches(r"[a-z]+"), _VALUE),
    (Within(0, 1), 2.718),
    (Latency(0.1), 3.5),
    (Fails("23505"), "40001"),
    (Fails("23505"), None),
    (AnyOf(Eq(1), Eq(2)), _VALUE),
    (EachIn({1, 2}), (3, 4)),
    (Bind("s"), _VALUE),
    (Anything(), _VALUE),
]


@pytest.mark.parametrize(("expect", "real"), _EXPECTS, ids=lambda v: type(v).__name__)
def test_signatures_never_contain_values(expect: object, real: object) -> None:
    bindings = Bindings(slots={"s": 12345}, seen={"pool": {777}})
    reason = expect.check(real, bindings)  # type: ignore[attr-defined]
    if reason is None:
        return  # passed: nothing to sign
    signature = signature_of("M", "Cmd", [Mismatch("f", "model", repr(real), reason)])
    assert not re.search(r"\d", signature.split("/", 2)[2]), signature


@given(st.text(max_size=40), st.integers())
def test_signature_reasons_drop_values_custom_expectations_put_in(word: str, n: int) -> None:
    reason = f"changed (was {n!r}) {n} {word!r}"
    signature = signature_of("M", "Cmd", [Mismatch("f", "", "", reason)])
    assert str(n).lstrip("-") not in signature.split("/", 2)[2] or str(n) in "Cmd"


def test_two_machines_in_one_database_keep_each_others_failures() -> None:
    db = InMemoryExampleDatabase()
    failing = lambda: CounterMachine(CounterSystem(frozenset({"add-3-twice"})))  # noqa: E731
    passing = lambda: CounterMachine(CounterSystem())  # noqa: E731
    assert database_key(failing) != database_key(passing)
    with pytest.raises(Divergence):
        run_machine(failing, budget="ci", database=db, report_multiple_bugs=False)
    saved = {k: set(v) for k, v in db.data.items()}
    assert saved, "the failure was saved"
    run_machine(passing, budget="ci", database=db)
    for key, values in saved.items():
        assert values <= set(db.data.get(key, ())), "a passing machine deleted another's failure"


def test_a_known_divergence_does_not_delete_the_saved_failure() -> None:
    db = InMemoryExampleDatabase()
    failing = lambda: CounterMachine(CounterSystem(frozenset({"add-3-twice"})))  # noqa: E731
    with pytest.raises(Divergence):
        run_machine(failing, budget="ci", database=db, report_multiple_bugs=False)
    saved = {k: set(v) for k, v in db.data.items() if v}
    run_machine(failing, budget="ci", database=db, known=["CounterMachine/Add/value:differs"])
    for key, values in saved.items():
        assert values <= set(db.data.get(key, ()))


def test_a_run_that_runs_no_example_fails() -> None:
    with pytest.raises(NoExamplesRan, match="without running a single example"):
        run_machine(lambda: CounterMachine(CounterSystem()), phases=[Phase.explicit])


def test_latency_is_judged_after_taking_the_cpu_wait_away() -> None:
    loaded = Bindings(stalled=0.3)
    assert Latency(0.1).check(0.35, loaded) is None  # late by what the machine's load explains
    assert Latency(0.1).check(0.5, loaded) == "too slow"
    assert Latency(0.1).check(0.15, Bindings()) == "too slow"  # idle: no excuse
    assert Latency(0.1).check(0.05, Bindings()) is None


@settings(max_examples=30)
@given(st.floats(0, 10), st.floats(0, 10))
def test_latency_never_passes_what_the_load_cannot_explain(real: float, stalled: float) -> None:
    verdict = Latency(1.0).check(real, Bindings(stalled=stalled))
    assert (verdict is None) == (real <= 1.0 or real - stalled <= 1.0)


def test_an_old_position_signature_in_a_known_file_still_matches_with_a_hint() -> None:
    from statemodels.engine.stats import legacy_hints

    previous = known_entries()
    set_known(["CounterMachine/Batch/op1.value:differs"])  # what older versions printed
    machine = BatchMachine(CounterSystem(frozenset({"add-3-twice"})))
    try:
        machine.execute(Batch((Add(1), Add(3))))
        assert machine.tainted == "CounterMachine/Batch/op1.value:differs"
    finally:
        machine.teardown()
        set_known(previous)
    assert legacy_hints()["CounterMachine/Batch/op1.value:differs"] == (
        "CounterMachine/Add/value:differs"
    )
