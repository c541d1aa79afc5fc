"""The checker on generated histories, against a brute-force oracle where one is affordable.

- Histories produced by an atomic system (each operation takes effect at one instant inside its
  interval, results computed by the model) are linearizable, partitioned or not.
- A read of a value nobody could have seen makes a history non-linearizable.
- ``info`` operations may take effect at any time after their invocation, or never.
- On small histories the checker agrees with trying every order (the oracle), both ways: a
  checker that wrongly accepts or wrongly rejects fails here.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemodels.engine import Outcome
from statemodels.engine.history import History, HistoryRecorder, Operation
from statemodels.engine.linearizability import UNKNOWN, ModelSpec, check
from statemodels.register import Cas, Delete, Get, Incr, Put, RegisterModel

KEYS = ["a", "b"]
keys = st.sampled_from(KEYS)
values = st.integers(0, 2)
commands = st.one_of(
    st.builds(Get, keys),
    st.builds(Put, keys, values),
    st.builds(Delete, keys),
    st.builds(Incr, keys, st.integers(1, 2)),
    st.builds(Cas, keys, st.none() | values, values),
)
PLAIN = ModelSpec(RegisterModel())
PER_KEY = ModelSpec(RegisterModel(), key=lambda cmd: cmd.key)


def _answer(model: RegisterModel, cmd) -> tuple[RegisterModel, Outcome]:
    """Run ``cmd`` on the model and answer as a correct system would."""
    step = model.apply(cmd)
    return step.model, Outcome.ok(**{name: e.value for name, e in step.expect.items()})


@st.composite
def atomic_histories(draw, max_ops: int = 8, clients: int = 3, info: bool = True):
    """A history a correct (atomic) system could produce: every operation takes effect at one
    instant inside its interval; some completions are lost (``info``)."""
    n = draw(st.integers(0, max_ops))
    free = [0] * clients  # a client runs one operation at a time
    spans = []
    for _ in range(n):
        client = draw(st.integers(0, clients - 1))
        start = free[client] + draw(st.integers(0, 3))
        point = start + draw(st.integers(0, 3))
        end = point + draw(st.integers(0, 3))
        free[client] = end + 1
        spans.append((client, start, point, end, draw(commands)))
    model = RegisterModel()
    ops = []
    for client, start, _point, end, cmd in sorted(spans, key=lambda s: s[2]):
        model, outcome = _answer(model, cmd)
        unknown = info and draw(st.integers(0, 9)) == 0
        if unknown:
            ops.append(Operation(len(ops), client, cmd, start, None, "info"))
        else:
            ops.append(Operation(len(ops), client, cmd, start, end, "ok", outcome))
    return History.from_operations(ops)


@settings(max_examples=150, deadline=None)
@given(atomic_histories())
def test_a_history_of_an_atomic_system_is_linearizable(history):
    assert check(history, PLAIN).verdict == "linearizable"
    assert check(history, PER_KEY).verdict == "linearizable"


@settings(max_examples=40, deadline=None)
@given(atomic_histories(max_ops=40, clients=6, info=False))
def test_a_witness_replays_through_the_model(history):
    result = check(history, PER_KEY)
    assert result.verdict == "linearizable"
    placed = [op for part in result.linearization for op in part]
    assert sorted(op.index for op in placed) == list(range(len(history)))
    for part in result.linearization:
        state = RegisterModel()
        for op in part:
            ok, state = PER_KEY.step(state, op.command, op.result)
            assert ok, op


@settings(max_examples=100, deadline=None)
@given(atomic_histories(info=False), keys, st.data())
def test_an_impossible_read_is_not_linearizable(history, key, data):
    # 99 is never written (values are 0..2, increments small): no order explains reading it.
    at = data.draw(st.integers(0, len(history)), label="position")
    ops = list(history)
    start = ops[at - 1].invoked if at else 0
    read = Operation(len(ops), "reader", Get(key), start, start + 1, "ok", Outcome.ok(value=99))
    bad = History.from_operations([*ops, read])
    for spec in (PLAIN, PER_KEY):
        result = check(bad, spec)
        assert result.verdict == "not-linearizable"
        assert result.violation is not None
        assert result.violation.operation.command == Get(key)


def test_a_stale_read_after_a_completed_write_is_not_linearizable():
    ops = [
        Operation(0, 1, Put("a", 1), 0, 1, "ok", Outcome.ok()),
        Operation(1, 2, Get("a"), 2, 3, "ok", Outcome.ok(value=None)),
    ]
    assert check(History(ops), PER_KEY).verdict == "not-linearizable"
    # Overlapping, the same read is fine: it may have happened first.
    overlapping = [attrs.evolve(ops[0], completed=5), ops[1]]
    assert check(History(overlapping), PER_KEY).verdict == "linearizable"


def test_info_may_take_effect_late_or_never_but_not_before_it_was_invoked():
    write = Operation(0, 1, Put("a", 7), 10, None, "info")

    def read(at: int, value: int | None) -> Operation:
        return Operation(1, 2, Get("a"), at, at + 1, "ok", Outcome.ok(value=value))

    assert check(History([write, read(20, 7)]), PER_KEY).verdict == "linearizable"  # took effect
    assert check(History([write, read(20, None)]), PER_KEY).verdict == "linearizable"  # never
    later = History.from_operations([read(0, None), write, read(30, 7)])
    assert check(later, PER_KEY).verdict == "linearizable"  # at any time after its invocation
    early = History.from_operations([read(0, 7), write])
    assert check(early, PER_KEY).verdict == "not-linearizable"  # not before it


def test_a_failed_operation_took_no_effect():
    ops = [
        Operation(0, 1, Put("a", 7), 0, 1, "fail", Outcome.failed("40001")),
        Operation(1, 2, Get("a"), 2, 3, "ok", Outcome.ok(value=7)),
    ]
    assert check(History(ops), PER_KEY).verdict == "not-linearizable"
    ops[1] = attrs.evolve(ops[1], result=Outcome.ok(value=None))
    assert check(History(ops), PER_KEY).verdict == "linearizable"


def _oracle(history: History) -> bool:
    """Brute force: some subset of the info ops, in some order respecting real time, replays."""
    ok_ops = [op for op in history if op.status == "ok"]
    info_ops = [op for op in history if op.status == "info"]
    for r in range(len(info_ops) + 1):
        for chosen in itertools.combinations(info_ops, r):
            for order in itertools.permutations([*ok_ops, *chosen]):
                if _respects_time(order) and _replays(order):
                    return True
    return False


def _respects_time(order) -> bool:
    # a before b in real time (a completed before b was invoked) => a before b in the order.
    for i, later in enumerate(order):
        for earlier in order[i + 1 :]:
            if earlier.completed is not None and earlier.completed < later.invoked:
                return False
    return True


def _replays(order) -> bool:
    state = RegisterModel()
    for op in order:
        ok, state = PLAIN.step(state, op.command, UNKNOWN if op.unknown else op.result)
        if not ok:
            return False
    return True


@st.composite
def mangled_histories(draw):
    """Atomic histories with some results replaced at random: linearizable or not, by chance."""
    history = draw(atomic_histories(max_ops=5, clients=3))
    ops = list(history)
    for i, op in enumerate(ops):
        if op.status == "ok" and draw(st.integers(0, 3)) == 0:
            step = RegisterModel().apply(op.command)
            fields = {name: draw(st.none() | values | st.booleans()) for name in step.expect}
            ops[i] = attrs.evolve(op, result=Outcome.ok(**fields))
    return History(ops)


@settings(max_examples=300, deadline=None)
@given(mangled_histories())
def test_the_checker_agrees_with_brute_force(history):
    expected = _oracle(history)
    assert check(history, PLAIN).linearizable is expected
    assert check(history, PER_KEY).linearizable is expected


def test_out_of_time_the_answer_is_unknown():
    # Twelve concurrent writes and a read of a value none of them wrote: the search must try
    # every subset before it can say no. With no time at all it must not guess.
    ops = [Operation(i, i, Put("a", i), 0, 100, "ok", Outcome.ok()) for i in range(12)]
    ops.append(Operation(12, 99, Get("a"), 0, 100, "ok", Outcome.ok(value=-1)))
    result = check(History(ops), PLAIN, timeout=0.0)
    assert result.verdict == "unknown"
    assert result.linearizable is None
    assert check(History(ops), PLAIN).verdict == "not-linearizable"


def test_the_timeline_is_self_contained_html(tmp_path: Path):
    ops = [
        Operation(0, 1, Put("a", 1), 0, 1, "ok", Outcome.ok()),
        Operation(1, 2, Get("a"), 2, 3, "ok", Outcome.ok(value=5)),
        Operation(2, 3, Put("a", 5), 2, None, "info"),
        Operation(3, 3, Get("b"), 0, 4, "ok", Outcome.ok(value=None)),
    ]
    result = check(History.from_operations(ops), PLAIN)
    assert result.verdict == "linearizable"  # the lost write explains the read
    bad = History.from_operations([*ops[:2], ops[3]])
    result = check(bad, PLAIN)
    assert result.violation is not None
    assert result.violation.operation.command == Get("a")
    page = result.write_html(tmp_path / "timeline.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "cannot be placed" in page and "#f4a3a3" in page  # the culprit, in red
    assert "client 1" in page and "client 2" in page and "client 3" in page
    assert "src=" not in page and "<link" not in page  # nothing loaded from elsewhere


def test_the_recorder_is_thread_safe_and_orders_by_time():
    recorder = HistoryRecorder()
    barrier = threading.Barrier(4)

    def client(n: int) -> None:
        barrier.wait()
        for i in range(200):
            pending = recorder.invoke(n, Put("a", i))
            if i % 50 == 49:
                continue  # left pending: an info op
            recorder.ok(pending, Outcome.ok())

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    history = recorder.history()
    assert len(history) == 800
    assert [op.index for op in history] == list(range(800))
    assert sum(op.status == "info" for op in history) == 16
    assert all(a.invoked <= b.invoked for a, b in itertools.pairwise(history))
    for n in range(4):
        mine = [op for op in history if op.client == n]
        assert [op.command.value for op in mine] == list(range(200))


def test_completing_twice_is_an_error():
    recorder = HistoryRecorder()
    pending = recorder.invoke(1, Get("a"))
    recorder.ok(pending, Outcome.ok(value=None))
    with pytest.raises(ValueError, match="completed twice"):
        recorder.info(pending)
