"""Parallel programs: a sequential prefix, then 2-N suffixes run at once, judged by linearizability.

A sequential machine can only find the races someone thought of. A :class:`ParallelMachine`
(after quickcheck-state-machine and PropEr) draws a **program** from the same commands a
sequential machine uses: a prefix run on one client, then ``lanes`` suffixes, each on its own
client (connection) in its own thread, released together by a barrier. Every operation is
recorded in a :class:`~statemodels.engine.history.History`; the history must be explained by
*some* sequential order the pure model accepts (:func:`~statemodels.engine.linearizability.check`).
If none does, the machine raises a :class:`~statemodels.engine.divergence.Divergence` and
Hypothesis shrinks the program.

How a program is drawn, so that it shrinks well: one ``@initialize`` step draws a list of
``(lane, command)`` pairs, ``lane`` 0 being the prefix (a lane already full drops the command).
Hypothesis deletes list elements (a command vanishes) and shrinks integers towards 0 (a command
moves from a suffix into the prefix), so a failing program keeps failing as it gets smaller and
more sequential -- the shape QSM's shrinker produces. (Drawing one command per rule step shrank
badly: deleting a step shifted which lane every later draw meant.) The program runs when the
example ends (in ``teardown``), ``repeats`` times on a fresh world, since a race shows under
some schedules only; the first non-linearizable run is the divergence.

Preconditions hold in every interleaving: a command is only added if ``allowed(model, cmd)``
holds after the prefix and at every point of every interleaving of the suffixes (checked by a
search over positions with memoisation, not by enumerating interleavings).

A domain provides::

    class RegisterParallelMachine(ParallelMachine):
        commands = st.one_of(...)                 # the same strategies as the sequential machine
        lanes = 2                                 # parallel suffixes

        def partition_key(self, cmd):             # optional: P-compositionality
            return cmd.key

    run_machine(lambda: RegisterParallelMachine(driver, RegisterModel()))

where ``driver.client(n)`` opens client ``n`` (0 runs the prefix; each client has its own
connection and a timeout on every call), ``driver.reset()`` empties the world between runs and
``driver.close()`` releases everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from . import budgets, stats
from .divergence import Divergence, Journal, Mismatch
from .history import History, HistoryRecorder, Operation, Status
from .linearizability import CheckResult, ModelSpec, check
from .protocol import Outcome

__all__ = ["Client", "ParallelDriver", "ParallelMachine", "Program"]

log = logging.getLogger(__name__)

#: A program: the prefix, then one command list per parallel suffix.
Program = tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]]


class Client(Protocol):
    """One connection to the real system, used by one thread only."""

    def run(self, cmd: Any) -> Outcome: ...

    def close(self) -> None: ...


class ParallelDriver(Protocol):
    """Opens clients on one shared world; resets it between runs of a program."""

    def client(self, number: int) -> Client: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class ParallelMachine(RuleBasedStateMachine):
    """Base class of parallel machines. See the module docstring for what a subclass provides.

    Args:
        driver: opens the clients (fresh per example: the factory builds it).
        model: the initial pure model; its ``apply`` is the sequential specification.
        step_timeout: seconds one call may take; ``None`` takes the active budget's.
        timeline_dir: if given, a non-linearizable run's HTML timeline is written there.
        repeats: runs of each program (default: the class's ``repeats``). A race shows under
            some schedules only; a bug that needs no second client shows on every run, and one
            run is enough to hunt it.

    Class attributes:
        commands: strategy of commands (required).
        lanes: number of parallel suffixes (2 or more).
        max_prefix / max_suffix: most commands in the prefix / in each suffix.
        repeats: runs of each program, each on a fresh world.
        initial: commands client 0 runs before the prefix, every run (a world that is not empty:
            a remove races a remove only once there is something to remove). Not drawn, so
            never shrunk away; preconditions are judged after them.
        final: commands client 0 runs after every suffix ended (Jepsen's final reads): a read
            that sees what the whole program did, so a lost write shows without a drawn read
            after it. Not drawn, so never shrunk away.
        check_timeout: seconds the checker may search before answering ``unknown``.
        no_effect: error codes that certainly took no effect (recorded as ``fail``); any other
            error is ``info`` (effect unknown), unless ``judged`` lists it (then its outcome is
            judged as a result, like ``Fails(code)`` in a sequential model).
    """

    commands: ClassVar[st.SearchStrategy[Any]]
    machine_name: ClassVar[str | None] = None
    lanes: ClassVar[int] = 2
    max_prefix: ClassVar[int] = 4
    max_suffix: ClassVar[int] = 3
    repeats: ClassVar[int] = 10
    initial: ClassVar[tuple[Any, ...]] = ()
    final: ClassVar[tuple[Any, ...]] = ()
    check_timeout: ClassVar[float] = 10.0
    no_effect: ClassVar[frozenset[str]] = frozenset()
    judged: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "commands" not in cls.__dict__:
            return
        if cls.lanes < 2:
            raise TypeError(f"{cls.__name__}.lanes = {cls.lanes!r}: a parallel program needs 2+")

        # New functions per class: @initialize / @rule mark the function object they are given.
        def draw_program(self: ParallelMachine, steps: list[tuple[int, Any]]) -> None:
            for lane, cmd in steps:
                self._add(lane, cmd)
            self._spread()

        def idle(self: ParallelMachine) -> None:
            """Nothing: the program runs in teardown (a machine needs one rule)."""

        size = cls.max_prefix + cls.lanes * cls.max_suffix
        steps = st.lists(st.tuples(st.integers(0, cls.lanes), cls.commands), max_size=size)
        cls.draw_program = initialize(steps=steps)(draw_program)
        cls.idle = rule()(idle)

    def __init__(
        self,
        driver: ParallelDriver,
        model: Any,
        *,
        step_timeout: float | None = None,
        timeline_dir: str | Path | None = None,
        repeats: int | None = None,
    ) -> None:
        super().__init__()
        if repeats is not None and repeats < 1:
            raise ValueError(f"repeats={repeats!r}: a program must run at least once")
        self.runs = self.repeats if repeats is None else repeats
        self.driver = driver
        self.model = model
        self.step_timeout = step_timeout or budgets.active().step_timeout
        self.timeline_dir = None if timeline_dir is None else Path(timeline_dir)
        self.prefix: list[Any] = []
        self.suffixes: list[list[Any]] = [[] for _ in range(self.lanes)]
        self.last: CheckResult | None = None
        self._clients: list[Client] = []
        self._closed = False
        stats.stats_for(self.name).examples += 1

    @property
    def name(self) -> str:
        return self.machine_name or type(self).__name__

    # -- what a subclass may refine -------------------------------------------------------------

    def allowed(self, model: Any, cmd: Any) -> bool:
        """Precondition: may ``cmd`` run when the model is ``model``? (Default: always.)"""
        return True

    def partition_key(self, cmd: Any) -> Hashable:
        """Which independent part of the state ``cmd`` touches (default: one part)."""
        return None

    def spec(self) -> ModelSpec:
        """The sequential specification runs are judged by (default: the model, per key).

        A model whose answers are named by slots (values learned from the real system) judges
        with ``ModelSpec(..., bind=True)``.
        """
        return ModelSpec(self.model, key=self.partition_key)

    def status(self, outcome: Outcome) -> Status:
        """How a history records an outcome: ``ok``, ``fail`` (no effect) or ``info``."""
        if outcome.error is None or outcome.error in self.judged:
            return "ok"
        return "fail" if outcome.error in self.no_effect else "info"

    # -- building the program -------------------------------------------------------------------

    @property
    def program(self) -> Program:
        return tuple(self.prefix), tuple(tuple(s) for s in self.suffixes)

    def _spread(self) -> None:
        """Give an empty suffix the last command of the longest one, while that one has two.

        Drawn lanes often leave a suffix empty, and a program with one busy suffix is a
        sequential program: it cannot show a race. Spreading is a function of the drawn list, so
        shrinking stays stable, and a command drawn into the prefix is never moved.
        """
        while True:
            empty = [s for s in self.suffixes if not s]
            longest = max(self.suffixes, key=len)
            if not empty or len(longest) < 2:
                return
            empty[0].append(longest.pop())
            if not self._every_interleaving_allowed():
                longest.append(empty[0].pop())
                return

    def _room(self, lane: int) -> bool:
        if lane == 0:
            return len(self.prefix) < self.max_prefix
        return len(self.suffixes[lane - 1]) < self.max_suffix

    def _add(self, lane: int, cmd: Any) -> None:
        if not self._room(lane):
            return
        target = self.prefix if lane == 0 else self.suffixes[lane - 1]
        target.append(cmd)
        if not self._every_interleaving_allowed():
            target.pop()

    def _every_interleaving_allowed(self) -> bool:
        model = self.model
        for cmd in (*self.initial, *self.prefix):
            if not self.allowed(model, cmd):
                return False
            model = model.apply(cmd).model
        suffixes = [s for s in self.suffixes if s]
        done: set[tuple[tuple[int, ...], Any]] = set()

        def explore(positions: tuple[int, ...], model: Any) -> bool:
            if (positions, model) in done:
                return True
            for lane, suffix in enumerate(suffixes):
                at = positions[lane]
                if at == len(suffix):
                    continue
                if not self.allowed(model, suffix[at]):
                    return False
                moved = (*positions[:lane], at + 1, *positions[lane + 1 :])
                if not explore(moved, model.apply(suffix[at]).model):
                    return False
            done.add((positions, model))
            return True

        return explore(tuple(0 for _ in suffixes), model)

    # -- running it -----------------------------------------------------------------------------

    def teardown(self) -> None:
        """Run the drawn program ``repeats`` times; close everything whatever happens."""
        __tracebackhide__ = True
        try:
            if any(self.suffixes):
                for _ in range(self.runs):
                    if self._run_and_check():
                        break
        finally:
            self._close()

    def _run_and_check(self) -> bool:
        """One run on a fresh world. Returns True if a known divergence ended the example."""
        __tracebackhide__ = True
        history = self._run_once()
        result = check(history, self.spec(), timeout=self.check_timeout)
        self.last = result
        if result.verdict == "unknown":
            log.warning("%s: checker ran out of time (%ss): no verdict", self.name, result.seconds)
            return False
        if result.verdict == "linearizable":
            return False
        return self._diverge(result)

    def _clients_for(self, lanes: int) -> list[Client]:
        while len(self._clients) < lanes + 1:
            self._clients.append(self.driver.client(len(self._clients)))
        return self._clients

    def _run_once(self) -> History:
        self.driver.reset()
        suffixes = [s for s in self.suffixes if s]
        clients = self._clients_for(len(suffixes))
        recorder = HistoryRecorder()
        for cmd in (*self.initial, *self.prefix):
            if not self._call(recorder, clients[0], 0, cmd):
                break  # the prefix client's effect is unknown: stop where a real client would
        barrier = threading.Barrier(len(suffixes))
        errors: list[BaseException] = []

        def lane(number: int, suffix: Sequence[Any]) -> None:
            try:
                barrier.wait(timeout=self.step_timeout)
                for cmd in suffix:
                    if not self._call(recorder, clients[number], number, cmd):
                        return
            except threading.BrokenBarrierError:
                return  # another lane failed to start: its error is reported
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [
            threading.Thread(
                target=lane, args=(n, s), name=f"statemodels-{self.name}-{n}", daemon=True
            )
            for n, s in enumerate(suffixes, 1)
        ]
        for t in threads:
            t.start()
        # Every call has its own timeout (the client's); this bound only catches a client
        # that ignores it. One-sided and generous: a loaded machine is slow, not wrong.
        deadline = time.monotonic() + self.step_timeout * (1 + max(len(s) for s in suffixes))
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self._close()  # what unblocks a stuck call
            self._hung(recorder.history())
        if errors:
            raise errors[0]
        for cmd in self.final:
            if not self._call(recorder, clients[0], 0, cmd):
                break
        history = recorder.history()
        counters = stats.stats_for(self.name)
        for op in history:
            if op.completed is not None:
                counters.record_step((op.completed - op.invoked) / 1e9)
        return history

    def _call(self, recorder: HistoryRecorder, client: Client, number: int, cmd: Any) -> bool:
        """Run one command, recorded. False if its effect is unknown (the lane stops)."""
        pending = recorder.invoke(number, cmd)
        try:
            outcome = client.run(cmd)
        except Exception:
            recorder.info(pending)
            log.exception("%s: client %s raised on %r", self.name, number, cmd)
            return False
        kind = self.status(outcome)
        if kind == "info":
            recorder.info(pending)
            return False
        (recorder.ok if kind == "ok" else recorder.fail)(pending, outcome)
        return True

    # -- reporting ------------------------------------------------------------------------------

    def _journal(self, history: History) -> Journal:
        journal = Journal()
        for op in history:
            who = "prefix" if op.client == 0 else f"client {op.client}"
            if op.status == "info":
                outcome = "info (effect unknown)"
            else:
                outcome = op.result.summary() if op.status == "ok" else "fail (no effect)"
            took = 0.0 if op.completed is None else (op.completed - op.invoked) / 1e9
            journal.record(f"[{who}] {op.command!r}", outcome, took)
        return journal

    def _diverge(self, result: CheckResult) -> bool:
        __tracebackhide__ = True
        violation = result.violation
        culprit = violation.operation if violation is not None else None
        note = "\n  ".join(result.explain().splitlines())
        # The journal is the failing part only: parts never interact (P-compositionality).
        shown = History(result.partition) if result.partition else result.history
        others = len(result.history) - len(shown)
        if others:
            note += f"\n  ({others} operations on other, independent parts not shown)"
        if self.timeline_dir is not None:
            self.timeline_dir.mkdir(parents=True, exist_ok=True)
            path = self.timeline_dir / f"{self.name}-{time.monotonic_ns()}.html"
            note += f"\n  timeline: {result.write_html(path)}"
        mismatch = Mismatch(
            "history",
            "some order the model accepts",
            culprit.describe() if culprit else f"{len(result.history)} operations",
            "not-linearizable",
        )
        divergence = Divergence(
            machine=self.name,
            step=_position(shown, culprit),
            command=repr(culprit.command) if culprit else "parallel program",
            kind=type(culprit.command).__name__ if culprit else "Program",
            mismatches=[mismatch],
            journal=self._journal(shown),
            note=note,
        )
        if divergence.signature in stats.known_signatures():
            stats.stats_for(self.name).known_hits[divergence.signature] += 1
            return True
        raise divergence

    def _hung(self, history: History) -> None:
        __tracebackhide__ = True
        wanted = f"every call answered within {self.step_timeout:g}s"
        mismatch = Mismatch("time", wanted, "a client thread still running", "timeout")
        raise Divergence(
            machine=self.name,
            step=len(history),
            command="parallel program",
            kind="Program",
            mismatches=[mismatch],
            journal=self._journal(history),
            note="hung: the system under test was torn down",
        )

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            try:
                client.close()
            except Exception:
                log.exception("statemodels: %s client.close() failed", self.name)
        try:
            self.driver.close()
        except Exception:
            log.exception("statemodels: %s driver.close() failed", self.name)


def _position(history: History, culprit: Operation | None) -> int:
    """1-based place of the culprit in the journal (its last step if unknown)."""
    for i, op in enumerate(history, 1):
        if culprit is not None and op.index == culprit.index:
            return i
    return len(history)
