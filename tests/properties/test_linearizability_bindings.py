"""``ModelSpec(bind=True)``: slots learned along each candidate order (pggit's Trinity IDs).

Pure: the pggit model and hand-made histories, no server.
"""

from __future__ import annotations

from statemodels.engine import Outcome
from statemodels.engine.history import History, Operation
from statemodels.engine.linearizability import ModelSpec, check
from statemodels.pggit.commands import Commit, CreateBranch, ReadLog
from statemodels.pggit.model import PggitModel

A = "20260101000000000000-000001-0000000a"
B = "20260101000000000000-000002-0000000b"
SPEC = ModelSpec(PggitModel(role="r", session=None), key=lambda c: "b", bind=True)


def _op(
    i: int, client: int, cmd: object, start: int, end: int | None, **values: object
) -> Operation:
    if end is None:
        return Operation(i, client, cmd, start, None, "info")
    return Operation(i, client, cmd, start, end, "ok", Outcome.ok(**values))


def _history(log: tuple[str, ...], *, second_known: bool = True) -> History:
    return History(
        [
            _op(0, 0, CreateBranch("b"), 0, 1, branch_id=1),
            # Two overlapping commits: either order is possible, the log decides which.
            _op(1, 1, Commit("b", "x"), 2, 5, trinity_id=A),
            _op(2, 2, Commit("b", "y"), 3, 6 if second_known else None, trinity_id=B),
            _op(3, 0, ReadLog("b"), 7, 8, log=log),
        ]
    )


def test_either_order_of_two_concurrent_commits_is_explained() -> None:
    assert check(_history((B, A)), SPEC).verdict == "linearizable"
    assert check(_history((A, B)), SPEC).verdict == "linearizable"


def test_a_lost_commit_is_not_linearizable() -> None:
    result = check(_history((B,)), SPEC)
    assert result.verdict == "not-linearizable"
    assert result.violation is not None
    assert isinstance(result.violation.operation.command, ReadLog)


def test_a_duplicate_id_is_not_linearizable() -> None:
    history = History(
        [
            _op(0, 0, CreateBranch("b"), 0, 1, branch_id=1),
            _op(1, 1, Commit("b", "x"), 2, 5, trinity_id=A),
            _op(2, 2, Commit("b", "y"), 3, 6, trinity_id=A),
        ]
    )
    assert check(history, SPEC).verdict == "not-linearizable"


def test_a_timed_out_commit_may_show_in_a_later_log() -> None:
    # info: placed with its effect, its ID unknown -- whatever the log shows for it is accepted.
    assert check(_history((B, A), second_known=False), SPEC).verdict == "linearizable"
    # ... or it never happened.
    assert check(_history((A,), second_known=False), SPEC).verdict == "linearizable"
    # But the known commit cannot vanish.
    assert check(_history((B,), second_known=False), SPEC).verdict == "not-linearizable"
