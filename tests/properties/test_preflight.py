"""Configuration is checked once, at session start: one line, pytest's usage-error exit, no
traceback, no password -- and a budget or known-divergences file that cannot work is refused."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TRIVIAL = "def test_nothing():\n    assert True\n"


def _run(pytester: pytest.Pytester, *args: str, **env: str) -> pytest.RunResult:
    for name, value in env.items():
        pytester._monkeypatch.setenv(name, value)
    pytester.makepyfile(test_trivial=TRIVIAL)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def _one_line_usage_error(result: pytest.RunResult, secret: str | None = None) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    if secret is not None:
        assert secret not in text
    errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, text
    return errors[0]


def test_a_bad_postgres_dsn_is_one_line_with_the_password_masked(pytester: pytest.Pytester):
    result = _run(pytester, STATEMODELS_PG_DSN="postgresql://admin:wrongpw@127.0.0.1:1/postgres")
    line = _one_line_usage_error(result, secret="wrongpw")
    assert "DSN 'postgresql://admin:***@127.0.0.1:1/postgres'" in line
    assert "STATEMODELS_PG_DSN" in line  # names where the value came from


def test_a_bad_redis_url_is_one_line_with_the_password_masked(pytester: pytest.Pytester):
    result = _run(pytester, STATEMODELS_REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
    line = _one_line_usage_error(result, secret="hunter2")
    assert "redis://:***@127.0.0.1:1/0" in line


def test_an_option_is_checked_even_if_no_selected_test_uses_it(pytester: pytest.Pytester):
    result = _run(pytester, "-k", "nothing", STATEMODELS_RELAY_SOCKET="/nonexistent/relay.sock")
    line = _one_line_usage_error(result)
    assert "STATEMODELS_RELAY_SOCKET '/nonexistent/relay.sock'" in line


def test_an_unknown_quirk_is_one_line(pytester: pytest.Pytester):
    result = _run(pytester, STATEMODELS_PGGIT_QUIRKS="commit-errors-generik")
    assert "unknown pggit quirk(s) 'commit-errors-generik'" in _one_line_usage_error(result)


@pytest.mark.parametrize("minutes", ["nan", "inf", "0", "-1"])
def test_a_budget_that_cannot_run_is_refused(pytester: pytest.Pytester, minutes: str):
    result = _run(pytester, "--budget", "deep", "--budget-minutes", minutes)
    assert "finite number > 0" in _one_line_usage_error(result)


def test_a_known_file_that_is_not_utf8_names_the_line(pytester: pytest.Pytester):
    known = pytester.path / "known.txt"
    known.write_bytes(b"# ours\nPggitMachine/Commit/error:succeeded\n\xff\xfe bad\n")
    result = _run(pytester, "--statemodels-known", str(known))
    assert f"{known}:3: not UTF-8" in _one_line_usage_error(result)


def test_a_malformed_known_line_names_the_line(pytester: pytest.Pytester):
    known = pytester.path / "known.txt"
    known.write_text("PggitMachine/Commit/error:succeeded\nnot a signature\n", encoding="utf-8")
    result = _run(pytester, "--statemodels-known", str(known))
    assert f"{known}:2: 'not a signature' is not a signature" in _one_line_usage_error(result)


COUNTER = """
from toy import CounterMachine, CounterSystem
from statemodels.engine import run_machine

def test_counter():
    run_machine(lambda: CounterMachine(CounterSystem()), database=None)
"""


def test_a_known_signature_that_never_occurred_is_listed(pytester: pytest.Pytester):
    from pathlib import Path

    from . import toy

    pytester.makepyfile(toy=Path(toy.__file__).read_text(encoding="utf-8"), test_counter=COUNTER)
    known = pytester.path / "known.txt"
    known.write_text("CounterMachine/Add/value:differz\n", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--statemodels-known", str(known)
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*statemodels: known but not seen*", f"{known}:1: CounterMachine/Add/value:differz"]
    )


def test_a_time_box_too_small_for_one_example_still_runs_one_chunk(pytester: pytest.Pytester):
    from pathlib import Path

    from . import toy

    pytester.makepyfile(toy=Path(toy.__file__).read_text(encoding="utf-8"), test_counter=COUNTER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--budget", "deep", "--budget-minutes", "1e-9"
    )
    result.assert_outcomes(passed=1)
    row = next(line for line in result.outlines if line.startswith("CounterMachine "))
    assert int(row.split()[1]) >= 200  # at least one whole chunk of the deep budget
