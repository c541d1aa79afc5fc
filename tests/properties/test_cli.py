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


def test_version_names_the_library_and_hypothesis(capsys: pytest.CaptureFixture[str]) -> None:
    import hypothesis

    import statemodels

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"statemodels {statemodels.__version__} (Hypothesis ")
    assert hypothesis.__version__ in out


def test_help_is_plain_text_and_lists_every_option_with_its_three_spellings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from statemodels.options import OPTIONS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out  # no raw RST
    for name in ("replay", "report", "hunt", "bench", "budgets", "mutants"):
        assert f"statemodels {name}" in out
    for option in OPTIONS.values():
        (line,) = [x for x in out.splitlines() if x.strip().startswith(option.flag + " ")]
        assert option.env in line and f"ini {option.ini}" in line


def test_bench_outside_a_checkout_folder_still_finds_the_checkout(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statemodels.cli import _bench_dir

    monkeypatch.chdir(tmp_path)
    assert (_bench_dir(None) / "bench_engine.py").is_file()
