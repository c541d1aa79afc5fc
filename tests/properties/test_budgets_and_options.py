"""Budget selection and the one option resolver (argument > flag > env > ini > default)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodels.engine import BUDGETS, activate, active, get_budget, hypothesis_settings
from statemodels.errors import ConfigurationError
from statemodels.options import OPTIONS, resolve


def test_the_three_budgets_grow():
    smoke, ci, deep = (BUDGETS[n] for n in ("smoke", "ci", "deep"))
    assert smoke.max_examples < ci.max_examples and smoke.steps < ci.steps <= deep.steps
    assert deep.minutes is not None and smoke.minutes is None and ci.minutes is None


def test_unknown_budget_is_one_line_listing_the_valid_ones():
    with pytest.raises(ConfigurationError) as info:
        get_budget("turbo")
    message = str(info.value)
    assert "\n" not in message
    assert "'turbo'" in message and "smoke, ci, deep" in message


def test_budget_becomes_hypothesis_settings():
    s = hypothesis_settings(BUDGETS["ci"])
    assert s.max_examples == BUDGETS["ci"].max_examples
    assert s.stateful_step_count == BUDGETS["ci"].steps
    assert s.deadline is None


def test_activate_and_time_box():
    previous = active()
    try:
        assert activate("ci") is BUDGETS["ci"]
        assert BUDGETS["deep"].with_minutes(3).minutes == 3
        with pytest.raises(ConfigurationError, match="must be a finite number > 0"):
            BUDGETS["deep"].with_minutes(0)
    finally:
        activate(previous)


layer = st.none() | st.sampled_from(["smoke", "ci", "deep"])


@given(argument=layer, flag=layer, env=layer, ini=layer)
def test_resolution_order(argument, flag, env, ini):
    environ = {} if env is None else {"STATEMODELS_BUDGET": env}
    got = resolve("budget", argument=argument, flag=flag, ini=ini, environ=environ)
    expected = next((v for v in (argument, flag, env, ini) if v is not None), "smoke")
    assert got == expected


def test_every_option_has_three_spellings():
    for option in OPTIONS.values():
        assert option.flag.startswith("--statemodels-")
        assert option.ini.startswith("statemodels_")
        assert option.env.startswith("STATEMODELS_")


def test_bad_minutes_from_the_environment_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="must be a number"):
        resolve("budget_minutes", environ={"STATEMODELS_BUDGET_MINUTES": "soon"})


def test_pytest_refuses_an_unknown_budget_in_one_line(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert True\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--budget", "turbo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 4
    error_lines = [line for line in run.stderr.splitlines() if "turbo" in line]
    assert error_lines == [
        "ERROR: unknown budget 'turbo': choose one of smoke, ci, deep "
        "(--budget or STATEMODELS_BUDGET)"
    ]
