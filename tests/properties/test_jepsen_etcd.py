"""The checker against an external oracle: 102 real Jepsen etcd histories and their verdicts.

The verdicts are the ones Porcupine's own test suite asserts (23 linearizable, 79 not), agreed on
by several independent checkers. A checker that wrongly accepts or wrongly rejects any one of
them fails here. Run with ``-s`` to see the time each history took.

The data lives in ``shared/data/jepsen-etcd`` *beside* the checkout (CI copies ``shared/`` next
to its fresh clone). Missing data fails loudly: a validation that silently skips validates
nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from statemodels.engine.jepsen import SingleRegister, read_log
from statemodels.engine.linearizability import UNKNOWN, check

REPO = Path(__file__).resolve().parents[2]


def _data_dir() -> Path:
    # Beside the checkout first (CI: a clone with shared/ copied next to it); a git worktree
    # kept one level deeper (wt/<name>) finds the same shared/ one more level up.
    for base in (REPO.parent, *REPO.parent.parents):
        candidate = base / "shared" / "data" / "jepsen-etcd"
        if (candidate / "verdicts.tsv").is_file():
            return candidate
    raise AssertionError(
        f"Jepsen etcd histories not found: expected {REPO.parent / 'shared/data/jepsen-etcd'} "
        "with verdicts.tsv -- copy shared/ beside the checkout"
    )


def _verdicts() -> dict[str, bool]:
    lines = (_data_dir() / "verdicts.tsv").read_text(encoding="utf-8").splitlines()
    out = {}
    for line in lines[1:]:
        name, verdict = line.split("\t")
        out[name] = {"true": True, "false": False}[verdict.strip()]
    return out


try:
    VERDICTS = _verdicts()
except AssertionError:
    VERDICTS = {}  # test_the_oracle_is_there reports it; collection must not crash


def test_the_oracle_is_there():
    verdicts = _verdicts()
    assert len(verdicts) == 102
    assert sum(verdicts.values()) == 23


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_checker_agrees_with_the_jepsen_verdict(name):
    history = read_log(_data_dir() / name)
    started = time.perf_counter()
    result = check(history, SingleRegister(), explain=False)
    took = time.perf_counter() - started
    print(f"{name}: {result.verdict} in {took:.3f}s ({len(history)} operations)")
    assert result.linearizable is VERDICTS[name], (name, result.verdict)


# A few violations, explained: the explanation must be consistent with the verdicts it implies.
@pytest.mark.parametrize("name", ["etcd_000.log", "etcd_001.log", "etcd_003.log", "etcd_040.log"])
def test_a_violation_names_the_first_unplaceable_operation(name):
    assert VERDICTS[name] is False
    history = read_log(_data_dir() / name)
    result = check(history, SingleRegister())
    assert result.verdict == "not-linearizable"
    violation = result.violation
    assert violation is not None
    culprit = violation.operation
    assert culprit.completed is not None
    # The prefix before the culprit's completion is linearizable, and the witness explains it:
    assert check(violation.prefix, SingleRegister()).verdict == "linearizable"
    assert _replays(violation.linearization)
    # ... and one instant later, with the culprit completed, it is not.
    assert check(history.truncated(culprit.completed + 1), SingleRegister()).linearizable is False


def _replays(order) -> bool:
    spec = SingleRegister()
    state = spec.init()
    for op in order:
        ok, state = spec.step(state, op.command, UNKNOWN if op.completed is None else op.result)
        if not ok:
            return False
    return True
