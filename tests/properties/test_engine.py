"""The lockstep engine: agreement passes, disagreement is shrunk, hangs are bounded, known
divergences are searched past. Runs against the in-process toy system in ``toy.py``."""

from __future__ import annotations

import time

import pytest

from statemodels.engine import (
    Budget,
    Divergence,
    Eq,
    Journal,
    Mismatch,
    catch_mutant,
    registry,
    run_machine,
)

from .toy import CounterMachine, CounterSystem, Nap

QUICK = Budget("quick", max_examples=40, steps=20)


def test_a_correct_system_passes():
    run_machine(lambda: CounterMachine(CounterSystem()), budget=QUICK, database=None)


def test_a_seeded_bug_is_caught_and_shrunk_to_one_step():
    found = catch_mutant(
        lambda: CounterMachine(CounterSystem(frozenset({"add-3-twice"}))),
        budget=QUICK,
        max_steps=1,
    )
    assert found.steps == 1
    assert "Add(n=3)" in found.command
    assert found.signature == "CounterMachine/Add/value:differs"


def test_an_unexpected_success_is_an_error_field_divergence():
    found = catch_mutant(
        lambda: CounterMachine(CounterSystem(frozenset({"no-overflow-check"}))),
        budget=QUICK,
        max_steps=5,
    )
    assert [m.field for m in found.mismatches] == ["error"]
    assert found.mismatches[0].model == "fails with overflow"


def test_catch_mutant_fails_loudly_when_the_machine_is_blind():
    with pytest.raises(AssertionError, match="passed against a mutant"):
        catch_mutant(lambda: CounterMachine(CounterSystem()), budget=QUICK, max_steps=5)


def test_a_hunt_can_draw_short_examples_and_keeps_the_budget_s_example_count():
    lengths: list[int] = []

    class Counting(CounterSystem):
        def run(self, cmd):
            lengths[-1] += 1
            return super().run(cmd)

    def world() -> CounterMachine:
        lengths.append(0)
        return CounterMachine(Counting())

    with pytest.raises(AssertionError, match=r"40 examples x 8 steps"):
        catch_mutant(world, budget=QUICK, max_steps=4, example_steps=8)
    assert max(lengths) == 8  # not QUICK's 20
    lengths.clear()
    with pytest.raises(AssertionError, match=r"40 examples x 20 steps"):
        catch_mutant(world, budget=QUICK, max_steps=4, example_steps=99)  # never past the budget
    assert max(lengths) == 20


def test_catch_mutant_accepts_a_catch_whose_replay_did_not_diverge_again():
    # A bug that shows only once, as a race may: Hypothesis's replay of the shrunk example then
    # passes (FlakyFailure). The catch stands and the divergence seen is returned.
    shown = []

    class OnceWrong(CounterSystem):
        def run(self, cmd):
            outcome = super().run(cmd)
            if not shown and self.value > 0:
                shown.append(cmd)
                self.value += 1
            return outcome

    found = catch_mutant(lambda: CounterMachine(OnceWrong()), budget=QUICK, max_steps=5)
    assert found.machine == "CounterMachine" and len(shown) == 1


def test_a_known_divergence_is_recorded_and_searched_past():
    signature = "CounterMachine/Add/value:differs"
    run_machine(
        lambda: CounterMachine(CounterSystem(frozenset({"add-3-twice"}))),
        budget=QUICK,
        known=[signature],
        database=None,
        derandomize=True,
    )
    assert registry()["CounterMachine"].known_hits[signature] > 0


def test_one_known_bug_does_not_hide_the_next():
    both = frozenset({"add-3-twice", "no-overflow-check"})
    with pytest.raises(Divergence) as info:
        run_machine(
            lambda: CounterMachine(CounterSystem(both)),
            budget=Budget("wide", max_examples=200, steps=20),
            known=["CounterMachine/Add/value:differs"],
            database=None,
            report_multiple_bugs=False,
        )
    assert info.value.signature == "CounterMachine/Add/error:succeeded"


def test_a_hung_step_is_a_divergence_reported_within_timeout_plus_slack():
    machine = CounterMachine(CounterSystem(), step_timeout=0.2)
    start = time.monotonic()
    with pytest.raises(Divergence) as info:
        machine.execute(Nap(seconds=30))
    waited = time.monotonic() - start
    assert 0.2 <= waited < 0.2 + 0.15
    assert info.value.mismatches[0].field == "time"
    assert info.value.mismatches[0].reason == "timeout"
    assert "Nap(seconds=30)" in str(info.value)
    assert machine.driver.closed.is_set(), "the system under test must be torn down"
    machine.teardown()


def test_the_time_box_keeps_searching_with_new_seeds_until_spent():
    before = registry().get("CounterMachine")
    examples_before = before.examples if before else 0
    # 2 s: a chunk of 5 short examples takes milliseconds idle, but in a loaded run (the
    # suite under pytest -n 2) the first one once took the whole of a 0.5 s box.
    box = Budget("box", max_examples=5, steps=5, minutes=2 / 60)
    start = time.monotonic()
    run_machine(lambda: CounterMachine(CounterSystem()), budget=box, database=None)
    elapsed = time.monotonic() - start
    assert 2 <= elapsed < 12
    assert registry()["CounterMachine"].examples - examples_before > 5, "more than one chunk ran"


def test_divergence_text_is_a_table_then_the_journal():
    journal = Journal()
    journal.record("Add(n=1)", "ok value=1", 0.0012)
    journal.record("Add(n=3)", "ok value=7", 0.0009)
    d = Divergence(
        machine="M",
        step=2,
        command="Add(n=3)",
        kind="Add",
        mismatches=[Mismatch("value", "4", "7", "differs")],
        journal=journal,
    )
    lines = str(d).splitlines()
    assert lines[0] == "Divergence in M at step 2: Add(n=3)"
    assert lines[1].split() == ["field", "model", "real"]
    assert lines[2].split() == ["value", "4", "7", "differs"]
    assert "signature: M/Add/value:differs" in lines
    assert any(line.split()[:2] == ["2", "Add(n=3)"] for line in lines)
    assert d.steps == 2 and isinstance(d, AssertionError)


def test_signature_names_fields_and_reasons_never_values():
    def make(real):
        return Divergence(
            machine="M",
            step=1,
            command=f"Put(v={real})",
            kind="Put",
            mismatches=[Mismatch("v", "1", real, "differs"), Mismatch("a", "x", "y", "missing")],
            journal=Journal(),
        )

    assert make("5").signature == make("99").signature == "M/Put/a:missing,v:differs"


def test_view_invariant_checks_the_idle_state():
    class Drifting(CounterSystem):
        def observe(self):
            return {"value": self.value + 1}

    machine = CounterMachine(Drifting())
    with pytest.raises(Divergence) as info:
        machine.model_view_matches_real()
    assert info.value.kind == "view"
    assert info.value.mismatches[0].field == "value"
    machine.teardown()


def test_check_eventually_returns_once_the_condition_holds():
    machine = CounterMachine(CounterSystem())
    ready_at = time.monotonic() + 0.05
    seen = machine.check_eventually(
        "ready",
        {"ready": Eq(True)},
        lambda: {"ready": time.monotonic() >= ready_at},
        within=1.0,
    )
    assert seen == {"ready": True}
    with pytest.raises(Divergence, match=r"still false after 0\.05s"):
        machine.check_eventually("never", {"ready": True}, lambda: {"ready": False}, within=0.05)
    machine.teardown()


def test_check_eventually_stops_waiting_when_a_final_field_fails():
    machine = CounterMachine(CounterSystem())
    looks = []

    def observe():
        looks.append(1)
        return {"ready": False, "errors_seen": ("boom",)}

    start = time.monotonic()
    with pytest.raises(Divergence, match="cannot come right by waiting") as info:
        machine.check_eventually(
            "ready",
            {"ready": True, "errors_seen": ()},
            observe,
            within=5.0,
            final=("errors_seen",),
        )
    assert len(looks) == 1 and time.monotonic() - start < 1.0
    assert [m.field for m in info.value.mismatches] == ["errors_seen"]
    machine.teardown()


def test_a_hunt_s_shrink_deadline_is_set_for_its_run_only():
    from hypothesis.internal.conjecture import engine as conjecture

    from statemodels.engine.runner import _shrinking_for
    from statemodels.errors import ConfigurationError

    before = conjecture.MAX_SHRINKING_SECONDS
    with _shrinking_for(7.5):
        assert conjecture.MAX_SHRINKING_SECONDS == 7.5
    assert conjecture.MAX_SHRINKING_SECONDS - before == 0
    with _shrinking_for(None):
        assert conjecture.MAX_SHRINKING_SECONDS - before == 0
    with pytest.raises(ConfigurationError, match="shrink_seconds must be"), _shrinking_for(0):
        pass


def test_a_step_that_rebinds_a_slot_counts_as_changing_the_model():
    # The model keeps a spawned process symbolic (slot "pid"): a respawn changes nothing in the
    # model object, yet the state the model tracks moved on. A look changes nothing; the first
    # spawn only learns what the slot holds.
    import attrs
    from hypothesis.stateful import rule

    from statemodels.engine import Bind, ModelMachine, Outcome, Same, Step

    @attrs.frozen
    class Spawn:
        pass

    @attrs.frozen
    class Look:
        pass

    class Model:
        def apply(self, cmd):
            return Step(self, {"pid": Bind("pid") if isinstance(cmd, Spawn) else Same("pid")})

        def view(self):
            return {}

    class System:
        pid = 100

        def run(self, cmd):
            self.pid += isinstance(cmd, Spawn)
            return Outcome.ok(pid=self.pid)

        def observe(self):
            return {}

        def close(self):
            pass

    class SpawnMachine(ModelMachine):
        machine_name = "SpawnMachine"

        def __init__(self):
            super().__init__(System(), Model())

        @rule()
        def spawn(self):
            self.execute(Spawn())

        @rule()
        def look(self):
            self.execute(Look())

    run_machine(SpawnMachine, budget=QUICK, database=None)
    commands = registry()["SpawnMachine"].commands
    spawns, looks = commands["Spawn"], commands["Look"]
    assert looks.ran > 0 and looks.changed == 0
    assert 0 < spawns.changed < spawns.ran  # each example's first spawn only binds


def test_command_statistics_count_generation_not_the_shrinker_s_replays():
    # A failing run replays and shrinks its example many times; those replays slide towards
    # the simplest step and would swamp what the budget generated. Command counts stop at the
    # run's first divergence (examples and steps count everything), and start again next run.
    class Replayed(CounterMachine):
        machine_name = "ReplayedCounter"

    def counted() -> int:
        return sum(c.ran for c in registry()["ReplayedCounter"].commands.values())

    with pytest.raises(Divergence):
        run_machine(
            lambda: Replayed(CounterSystem(frozenset({"add-3-twice"}))), budget=QUICK, database=None
        )
    machine = registry()["ReplayedCounter"]
    first = counted()
    assert 0 < first < machine.steps  # the shrinker ran steps, and they were not counted
    assert machine.commands["Add"].diverged == 1
    run_machine(lambda: Replayed(CounterSystem()), budget=QUICK, database=None)
    assert counted() > first  # a new run counts again
