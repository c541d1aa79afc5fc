"""Parallel programs against an in-process counter: no servers, real threads.

The counter is the toy "real" side of ``toy.py`` made shareable: with its lock it is atomic, and
a correct checker must accept every run; without it (``racy``) an add reads, yields and writes,
so two clients can lose an update -- a bug only a concurrent history shows.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import strategies as st

from statemodels.engine import Divergence, Outcome, catch_mutant, run_machine
from statemodels.engine.parallel import ParallelMachine

from .toy import Add, CounterModel, Nap, Read


class SharedCounter:
    def __init__(self, racy: bool = False) -> None:
        self.value = 0
        self.racy = racy
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def run(self, cmd: Any) -> Outcome:
        match cmd:
            case Add(n=n) if self.racy:
                seen = self.value
                time.sleep(0.0005)  # a round trip's worth: another client may run meanwhile
                self.value = seen + n
                return Outcome.ok(value=seen + n)
            case Add(n=n):
                with self.lock:
                    self.value += n
                    return Outcome.ok(value=self.value)
            case Nap(seconds=s):
                self.closed.wait(s)  # wakes when the machine tears the system down
        with self.lock:
            return Outcome.ok(value=self.value)


class CounterClient:
    def __init__(self, system: SharedCounter) -> None:
        self.system = system

    def run(self, cmd: Any) -> Outcome:
        return self.system.run(cmd)

    def close(self) -> None:
        self.system.closed.set()


class CounterDriver:
    def __init__(self, racy: bool = False) -> None:
        self.system = SharedCounter(racy)
        self.resets = 0

    def client(self, number: int) -> CounterClient:
        return CounterClient(self.system)

    def reset(self) -> None:
        self.resets += 1
        self.system.value = 0

    def close(self) -> None:
        self.system.closed.set()


class CounterParallelMachine(ParallelMachine):
    commands = st.one_of(st.builds(Add, st.integers(1, 3)), st.just(Read()))
    lanes = 2

    def __init__(self, driver: CounterDriver, **kwargs: Any) -> None:
        super().__init__(driver, CounterModel(), **kwargs)


def test_an_atomic_counter_is_linearizable_in_every_run():
    run_machine(lambda: CounterParallelMachine(CounterDriver()), budget="smoke")


def test_a_lost_update_is_caught_and_shrunk_to_two_concurrent_adds():
    found = catch_mutant(
        lambda: CounterParallelMachine(CounterDriver(racy=True)), budget="ci", max_steps=3
    )
    assert found.signature.endswith("/history:not-linearizable")
    lanes = {e.command.split("]")[0] for e in found.journal.entries}
    assert {"[client 1", "[client 2"} <= lanes  # a race needs two clients
    assert sum("Add(" in e.command for e in found.journal.entries) >= 2


def test_every_run_gets_a_fresh_world():
    driver = CounterDriver()
    machine = CounterParallelMachine(driver, repeats=4)
    machine._add(1, Add(1))
    machine._add(2, Add(2))
    machine.teardown()
    assert driver.resets == 4
    assert machine.last is not None and machine.last.verdict == "linearizable"


class Bounded(CounterParallelMachine):
    """A precondition: the counter never passes 5 -- in any interleaving."""

    def allowed(self, model: Any, cmd: Any) -> bool:
        return not isinstance(cmd, Add) or model.value + cmd.n <= 5


def test_a_command_is_added_only_if_allowed_in_every_interleaving():
    machine = Bounded(CounterDriver())
    machine._add(0, Add(2))
    machine._add(1, Add(2))
    machine._add(2, Add(1))  # 2 + 2 + 1 = 5 in every order: allowed
    machine._add(2, Add(1))  # 2 + 2 + 1 + 1 = 6 once both suffixes ran: dropped
    machine._add(1, Read())
    assert machine.program == ((Add(2),), ((Add(2), Read()), (Add(1),)))
    machine.teardown()


def test_an_empty_suffix_takes_a_command_so_the_program_is_concurrent():
    machine = CounterParallelMachine(CounterDriver())
    for cmd in (Add(1), Add(2), Add(3)):
        machine._add(1, cmd)
    machine._spread()
    assert machine.program == ((), ((Add(1), Add(2)), (Add(3),)))
    machine.teardown()


def test_a_client_that_never_answers_is_a_hang_and_is_torn_down():
    driver = CounterDriver()
    machine = CounterParallelMachine(driver, step_timeout=0.2, repeats=1)
    machine._add(1, Nap(60))
    machine._add(2, Read())
    started = time.monotonic()
    with pytest.raises(Divergence) as info:
        machine.teardown()
    assert info.value.signature == "CounterParallelMachine/Program/time:timeout"
    assert driver.system.closed.is_set()  # closing is what unblocks the stuck call
    assert time.monotonic() - started < 30


def test_a_machine_needs_two_lanes():
    with pytest.raises(TypeError, match="needs 2"):

        class OneLane(ParallelMachine):
            commands = st.just(Read())
            lanes = 1
