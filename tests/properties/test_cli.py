"""The ``statemodels`` command: listings, and one-line errors for bad names."""

from __future__ import annotations

import pytest

from statemodels.cli import main
from statemodels.register import MUTANTS


def test_budgets_lists_each_budget_with_its_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budgets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["smoke", "ci", "deep"]
    assert "time-boxed" in lines[2] and "time-boxed" not in lines[1]


def test_mutants_lists_a_domain_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "register"]) == 0
    out = capsys.readouterr().out
    for name, what in MUTANTS.items():
        assert name in out and what in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mutants", "nosuch"], "unknown domain 'nosuch': choose from register, pggit, supervisor"),
        (["bench", "nosuch"], "unknown benchmark 'nosuch': choose from "),
        (["bench", "--dir", "/nonexistent"], "no benchmarks in '/nonexistent'"),
    ],
)
def test_bad_names_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"statemodels: error: {message}")
