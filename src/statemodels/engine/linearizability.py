"""Is a concurrent history linearizable with respect to a pure sequential model?

A history is **linearizable** when every ``ok`` operation can be given one instant between its
invocation and its completion, and every ``info`` operation either one instant after its
invocation or none at all, such that running the operations one at a time in the order of those
instants through the sequential specification gives exactly the results that were observed.

The search is Wing & Gong's, with Lowe's refinements (as Porcupine does it): walk the events in
time order; try to *linearize* each operation whose invocation is reachable (no completion of an
unlinearized operation before it); backtrack when a completion is reached whose operation is not
linearized yet. Two configurations with the same set of linearized operations and the same model
state have the same future, so each ``(bits, state)`` pair is explored once: the set is a Python
int used as a bitset, the state must be hashable (frozen attrs models are). With
P-compositionality (Horn & Kroening) a history whose operations partition -- per key, per branch
-- is linearizable iff each part is, which turns one exponential search into many small ones.

A search can take exponential time. With ``timeout`` the checker gives the honest third answer,
``unknown``, instead of a guess.

Example::

    result = check(history, ModelSpec(RegisterModel(), key=lambda cmd: cmd.key), timeout=5)
    if result.verdict == "not-linearizable":
        print(result.explain())
        result.write_html("timeline.html")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from .expect import Bindings
from .history import History, Operation
from .machine import _bind, compare
from .protocol import Outcome

__all__ = [
    "UNKNOWN",
    "CheckResult",
    "ModelSpec",
    "Spec",
    "Verdict",
    "Violation",
    "check",
]

Verdict = Literal["linearizable", "not-linearizable", "unknown"]


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: The result a spec's ``step`` is given for an ``info`` operation: anything may have come back.
UNKNOWN: Any = _Unknown()


class Spec(Protocol):
    """A sequential specification, in the shape the checker needs.

    ``init()`` is the initial state; ``step(state, command, result)`` says whether ``command``
    applied to ``state`` may answer ``result`` (``UNKNOWN`` for an ``info`` operation: accept any
    answer) and returns the next state. States must be hashable and must never be mutated.
    ``partition`` (optional) splits operations into independent groups (P-compositionality):
    operations in different groups never affect each other.
    """

    def init(self) -> Hashable: ...

    def step(self, state: Any, command: Any, result: Any) -> tuple[bool, Any]: ...


@attrs.frozen
class ModelSpec:
    """A domain's pure model used as the sequential specification (no second model to write).

    The state is the model itself; ``model.apply(command)`` gives the next model and the step's
    expectations, judged against the recorded :class:`~statemodels.engine.protocol.Outcome` as
    ``ModelMachine.execute`` judges them -- but without bindings: in a concurrent history there is
    no single order in which ``Fresh``/``Same`` could learn values, so use plain values, ``Eq``,
    ``AnyOf``, ``Fails``, ``Within`` or ``Matches`` in models meant for histories.

    With ``bind=True`` the expectations are judged *with* bindings, learned in the order the
    search places the operations: a linearization is one sequential order, and in it the
    model's ``Fresh`` / ``Same`` / slot-naming expectations mean what they mean in
    ``ModelMachine.execute``. The state is then the model plus its bindings (frozen), so a model
    whose answers are named by slots (pggit's ``commit:<n>`` Trinity IDs) needs no second model.
    The memo is keyed by bindings too: searches are larger, so keep such histories small.

    Args:
        model: the initial model (frozen, hashable).
        key: optional partition key of a command (``lambda cmd: cmd.key``).
        bind: judge with bindings learned along each candidate order (see above).
    """

    model: Any
    key: Callable[[Any], Hashable] | None = None
    bind: bool = False

    def init(self) -> Any:
        return _Bound(self.model) if self.bind else self.model

    def step(self, state: Any, command: Any, result: Any) -> tuple[bool, Any]:
        if self.bind:
            return self._step_bound(state, command, result)
        step = state.apply(command)
        if result is UNKNOWN:
            return True, step.model
        outcome: Outcome = result
        mismatches = compare(step.expect, outcome.field, Bindings(), has_error=True)
        return not mismatches, step.model

    def _step_bound(self, state: _Bound, command: Any, result: Any) -> tuple[bool, Any]:
        step = state.model.apply(command)
        bindings = state.thaw()
        if result is UNKNOWN:
            # Placed, so it took effect, but its answer is unknown: every slot it would bind
            # holds a wildcard that equals whatever a later read shows (lenient, never wrong --
            # a timed-out commit whose ID a later log shows is no violation).
            _bind(step.expect, lambda _name: _ANY_ANSWER, bindings, step.parts)
            return True, _Bound.freeze(step.model, bindings)
        outcome: Outcome = result
        if compare(step.expect, outcome.field, bindings, has_error=True, parts=step.parts):
            return False, state
        _bind(step.expect, outcome.field, bindings, step.parts)
        return True, _Bound.freeze(step.model, bindings)

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        if self.key is None:
            return [list(ops)]
        return _group(ops, self.key)


class _AnyAnswer:
    """The answer of an ``info`` operation: unknown, so equal to any value read later."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<unknown answer>"


_ANY_ANSWER: Any = _AnyAnswer()


@attrs.frozen
class _Bound:
    """A model and the bindings learned so far, frozen and hashable (a search state)."""

    model: Any
    slots: tuple[tuple[str, Any], ...] = ()
    seen: tuple[tuple[str, frozenset[Hashable]], ...] = ()

    def thaw(self) -> Bindings:
        return Bindings(dict(self.slots), {pool: set(vals) for pool, vals in self.seen})

    @classmethod
    def freeze(cls, model: Any, bindings: Bindings) -> _Bound:
        slots = tuple(sorted(bindings.slots.items()))
        seen = tuple(sorted((pool, frozenset(vals)) for pool, vals in bindings.seen.items()))
        return cls(model, slots, seen)


def _group(ops: Sequence[Operation], key: Callable[[Any], Hashable]) -> list[list[Operation]]:
    groups: dict[Hashable, list[Operation]] = {}
    for op in ops:
        groups.setdefault(key(op.command), []).append(op)
    return list(groups.values())


@attrs.frozen
class Violation:
    """Why a history is not linearizable.

    Attributes:
        operation: the first operation (by completion) that cannot be placed: the history up to
            just before its completion is linearizable, with it no longer.
        prefix: that longest linearizable prefix (its partition only), operations still running at
            the cut counted as ``info``.
        linearization: an order of ``prefix``'s operations that explains it.
    """

    operation: Operation
    prefix: History
    linearization: tuple[Operation, ...]


@attrs.frozen
class CheckResult:
    """The checker's answer. ``verdict`` is the answer; the rest explains it.

    Attributes:
        verdict: ``linearizable``, ``not-linearizable`` or ``unknown`` (time ran out).
        history: the history that was checked (``fail`` operations included, as recorded).
        linearization: for a linearizable history, one witness order per partition.
        violation: for a non-linearizable one, the unplaceable operation and the prefix before it
            (``None`` if time ran out while explaining).
        partition: the operations of the partition that failed (or all of them).
        seconds: time spent, explanation included.
        partitions: how many independent parts were checked.
    """

    verdict: Verdict
    history: History
    linearization: tuple[tuple[Operation, ...], ...] = ()
    violation: Violation | None = None
    partition: tuple[Operation, ...] = ()
    seconds: float = 0.0
    partitions: int = 1

    @property
    def linearizable(self) -> bool | None:
        """``True`` / ``False``, or ``None`` for ``unknown``."""
        return None if self.verdict == "unknown" else self.verdict == "linearizable"

    def explain(self) -> str:
        """A few lines for a divergence report."""
        head = f"{self.verdict} ({len(self.history)} operations, {self.partitions} partitions,"
        head += f" {self.seconds:.3f}s)"
        if self.violation is None:
            return head
        v = self.violation
        lines = [head, f"cannot be placed: {v.operation.describe()}"]
        lines.append("longest linearizable prefix, placed in this order:")
        recorded = {op.index: op for op in self.history}
        placed = [op for op in v.linearization if op.index != v.operation.index]
        for i, op in enumerate(placed, 1):
            was = recorded.get(op.index, op)
            if op.unknown and not was.unknown:
                # Still running at the cut: placed with its effect, its answer not yet known.
                lines.append(f"  {i}. {was.describe()} (still running at the cut)")
            else:
                lines.append(f"  {i}. {op.describe()}")
        return "\n".join(lines)

    def write_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML timeline (one row per client, inline SVG) to ``path``."""
        from .timeline import render_html

        target = Path(path)
        target.write_text(render_html(self), encoding="utf-8")
        return target


class _Deadline(Exception):
    pass


def check(
    history: History,
    spec: Any,
    *,
    timeout: float | None = None,
    explain: bool = True,
) -> CheckResult:
    """Decide whether ``history`` is linearizable with respect to ``spec``.

    Args:
        history: the recorded operations.
        spec: a :class:`Spec` (``init``, ``step``, optional ``partition``), e.g. a
            :class:`ModelSpec` around a domain's pure model.
        timeout: seconds before the answer is ``unknown``; ``None`` searches to the end.
        explain: on a violation, also find the unplaceable operation and the longest
            linearizable prefix (a few more searches, logarithmically many).

    Returns:
        A :class:`CheckResult`.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    # A failed operation took no effect: it has no place in any linearization.
    ops = [op for op in history if op.status != "fail"]
    split = getattr(spec, "partition", None)
    parts = split(ops) if split is not None else [ops]
    # Small parts first: a violation in any part decides the answer, found sooner there.
    parts = sorted((p for p in parts if p), key=len)
    witnesses = []
    try:
        for part in parts:
            order = _search(part, spec, deadline)
            if order is None:
                violation = _explain(part, spec, deadline) if explain else None
                return CheckResult(
                    "not-linearizable",
                    history,
                    violation=violation,
                    partition=tuple(part),
                    seconds=time.monotonic() - started,
                    partitions=len(parts),
                )
            witnesses.append(tuple(order))
    except _Deadline:
        return CheckResult(
            "unknown", history, seconds=time.monotonic() - started, partitions=len(parts)
        )
    return CheckResult(
        "linearizable",
        history,
        linearization=tuple(witnesses),
        seconds=time.monotonic() - started,
        partitions=len(parts),
    )


def _explain(part: list[Operation], spec: Any, deadline: float | None) -> Violation | None:
    """Binary search for the first completion that makes the part non-linearizable."""
    sub = History(part)
    cuts = sorted({op.completed for op in part if op.completed is not None})
    lo, hi = 0, len(cuts) - 1  # the history cut after cuts[hi] is known not linearizable
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            if _search(list(sub.truncated(cuts[mid] + 1)), spec, deadline) is None:
                hi = mid
            else:
                lo = mid + 1
        prefix = sub.truncated(cuts[lo])
        # Linearizable by construction: it has the completions of a linearizable cut, and the
        # operations invoked since are unknown ones that may never have happened.
        best = _search(list(prefix), spec, deadline) or []
        culprit = _culprit(sub, cuts[lo], spec, deadline)
    except _Deadline:
        return None
    return Violation(culprit, prefix, tuple(best))


def _culprit(sub: History, at: int, spec: Any, deadline: float | None) -> Operation:
    """Of the operations completing at instant ``at``, one whose completion alone breaks it."""
    tied = [op for op in sub if op.completed == at]
    if len(tied) > 1:
        cut = sub.truncated(at + 1)
        for suspect in tied:
            alone = [
                attrs.evolve(op, completed=None, status="info", result=None)
                if op.completed == at and op.index != suspect.index
                else op
                for op in cut
            ]
            if _search(alone, spec, deadline) is None:
                return suspect
    return tied[0]


class _Node:
    """One event of the doubly linked list the search lifts operations out of."""

    __slots__ = ("call", "match", "next", "op", "prev")

    def __init__(self, op: int, call: bool) -> None:
        self.op = op
        self.call = call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


_INFINITY = float("inf")


def _search(part: list[Operation], spec: Any, deadline: float | None) -> list[Operation] | None:
    """One linearization of ``part`` (operations in order), or ``None`` if there is none."""
    if not part:
        return []
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(part):
        events.append((op.invoked, 0, i))
        # info: may take effect any time after its invocation -> its completion is "never".
        events.append((_INFINITY if op.completed is None else op.completed, 1, i))
    # Calls sort before completions at the same instant: operations that touch count as
    # concurrent, so a coarse clock can only make the checker more lenient, never wrong.
    events.sort()
    head = _Node(-1, False)
    prev = head
    calls: dict[int, _Node] = {}
    for _, kind, i in events:
        node = _Node(i, kind == 0)
        if node.call:
            calls[i] = node
        else:
            calls[i].match = node
        node.prev, prev.next = prev, node
        prev = node
    unknown = [op.completed is None for op in part]
    commands = [op.command for op in part]
    results = [UNKNOWN if op.completed is None else op.result for op in part]

    step = spec.step
    memo: dict[tuple[int, Any], tuple[bool, Any]] = {}
    seen: set[tuple[int, Any]] = set()
    stack: list[tuple[_Node, Any]] = []
    state = spec.init()
    bits = 0
    entry = head.next
    ticks = 0
    while entry is not None:
        ticks += 1
        if deadline is not None and ticks & 1023 == 0 and time.monotonic() > deadline:
            raise _Deadline
        i = entry.op
        if entry.call:
            key = (i, state)
            found = memo.get(key)
            if found is None:
                found = memo[key] = step(state, commands[i], results[i])
            ok, after = found
            if ok:
                lifted = bits | (1 << i)
                mark = (lifted, after)
                if mark not in seen:
                    seen.add(mark)
                    stack.append((entry, state))
                    state, bits = after, lifted
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if unknown[i]:
                # Only "never" completions remain: every known operation is placed, and the
                # unknown ones left over are taken never to have happened.
                break
            if not stack:
                return None
            entry, state = stack.pop()
            bits &= ~(1 << entry.op)
            _unlift(entry)
            entry = entry.next
    return [part[node.op] for node, _ in stack]


def _lift(call: _Node) -> None:
    match = call.match
    assert call.prev is not None and match is not None and match.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(call: _Node) -> None:
    match = call.match
    assert call.prev is not None and match is not None and match.prev is not None
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call
