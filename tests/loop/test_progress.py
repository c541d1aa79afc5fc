"""Live progress: a plain line every N seconds off a terminal, one line redrawn on a terminal,
nothing when off -- driven by the engine's hooks."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from statemodels.engine import get_budget
from statemodels.progress import Progress

pytest_plugins = ["pytester"]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_every_n_seconds_with_the_numbers_that_matter() -> None:
    clock, out = _Clock(), []
    progress = Progress(
        lambda text, redraw: out.append((text, redraw)), tty=False, plain_every=30, clock=clock
    )
    machine = SimpleNamespace(name="RelayMachine")
    progress.run_started(get_budget("deep").with_minutes(20))
    for second in range(0, 61):
        clock.now = 100.0 + second
        progress.example_started(machine)
        progress.step_done(machine, object(), 0.01)
        progress.step_done(machine, object(), 0.01)
        if second == 40:
            progress.divergence_seen(machine, SimpleNamespace(signature="x"), True)
    assert [redraw for _, redraw in out] == [False, False]  # at 30 s and at 60 s
    last = out[-1][0]
    assert last.startswith("statemodels: RelayMachine  1:00 / 20:00  examples 61  steps 120")
    assert re.search(r"  2\.0 steps/s  divergences 0  known 1$", last), last


def test_on_a_terminal_one_line_is_redrawn_and_cleared() -> None:
    clock, out = _Clock(), []
    progress = Progress(lambda text, redraw: out.append((text, redraw)), tty=True, clock=clock)
    machine = SimpleNamespace(name="RegisterMachine")
    progress.run_started(get_budget("ci"))
    for tick in range(4):
        clock.now = 100.0 + tick
        progress.example_started(machine)
    progress.divergence_reported(SimpleNamespace(), None)
    clock.now = 105.0
    progress.step_done(machine, object(), 0.01)
    assert all(redraw for _, redraw in out) and len(out) == 4
    assert "\x1b[" in out[-1][0] and "RegisterMachine" in out[-1][0]  # coloured by rich
    assert "divergences 1" in re.sub(r"\x1b\[[0-9;]*m", "", out[-1][0])
    progress.clear()
    assert out[-1] == ("", True)


REGISTER = """
from statemodels.engine import run_machine
from statemodels.register import RegisterDriver, RegisterMachine

def test_register(statemodels_redis):
    run_machine(lambda: RegisterMachine(RegisterDriver(statemodels_redis)), database=None)
"""


TOY_BUG = """
from toy import CounterMachine, CounterSystem
from statemodels.engine import run_machine

def test_counter_with_a_bug():
    bug = frozenset({"add-3-twice"})
    run_machine(
        lambda: CounterMachine(CounterSystem(bug)), budget="ci", database=None, derandomize=True
    )

def test_that_expects_the_bug():
    import pytest
    from statemodels.engine import Divergence
    bug = frozenset({"add-3-twice"})
    with pytest.raises(Divergence):
        run_machine(
            lambda: CounterMachine(CounterSystem(bug)), budget="ci", database=None,
            derandomize=True,
        )
"""


def test_a_pytest_run_shows_progress_and_a_summary_that_tells_hunts_from_the_system(
    pytester: pytest.Pytester,
) -> None:
    # (--statemodels-progress off is the report test's run: no such line there.)
    pytester.makepyfile(
        test_register=REGISTER,
        toy=(Path(__file__).parent.parent / "properties" / "toy.py").read_text(encoding="utf-8"),
        test_toy=TOY_BUG,
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--statemodels-progress",
        "plain",
        "--statemodels-progress-every",
        "0.01",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*statemodels: divergences*",
            # The passing test asserted its divergence: only the failing one's is the system's.
            "systems under test: 1 diverged",
            "    CounterMachine/Add/* (* steps)  test_toy.py::test_counter_with_a_bug",
            "        statemodels replay .statemodels/traces/CounterMachine/*.json",
            "mutant hunts: 0 mutant(s) caught",
            "expected by 1 passing test(s): 1 divergence(s)",
            "traces written (*) under .statemodels/traces",
        ]
    )
    lines = [line for line in result.outlines if line.startswith("statemodels: RegisterMachine")]
    assert lines, result.stdout.str()
    assert re.search(r"examples \d+  steps \d+  [\d.]+ steps/s  divergences 0", lines[-1])


def test_a_bad_progress_option_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    with pytest.raises(pytest.UsageError) as info:
        pytester.parseconfigure("--statemodels-progress", "loud")
    assert str(info.value) == (
        "progress must be auto, tty, plain or off (got 'loud'): --statemodels-progress"
    )
