"""The pytest plugin as a user meets it: the leak audit, the summary, option errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import toy

pytest_plugins = ["pytester"]

LEAKY = """
import subprocess, sys

def test_leaks():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

def test_clean():
    pass
"""


def test_a_test_that_leaves_a_process_alive_fails_and_the_process_is_killed(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_leaks left 1 process(es) alive (now killed):*", "*time.sleep(60)*"]
    )
    # The leaked sleeper was killed by the audit, so nothing of the inner run survives it.
    assert "end of session" not in result.stdout.str()


def test_the_summary_has_a_line_per_machine(pytester: pytest.Pytester):
    pytester.makepyfile(
        toy=Path(toy.__file__).read_text(encoding="utf-8"),
        test_counter="""
from toy import CounterMachine, CounterSystem
from statemodels.engine import run_machine

def test_counter():
    run_machine(lambda: CounterMachine(CounterSystem()), database=None)
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--budget", "ci")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*budget: ci*", "CounterMachine * 0     0       0  *%", "      Add *changed model*"]
    )


LAZY_SERVER = """
import subprocess, sys
import pytest
from statemodels.pytest_plugin import long_lived

class Server:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    def pids(self):
        return {self.proc.pid}

@pytest.fixture(scope="session")
def server():
    s = Server()
    if REGISTER:
        long_lived(s)
    yield s
    s.proc.kill()
    s.proc.wait()

def test_first_asks_for_the_server_mid_test(request):
    request.getfixturevalue("server")

def test_second_still_has_it(server):
    assert server.proc.poll() is None
"""


@pytest.mark.parametrize("register", [True, False])
def test_a_session_server_started_mid_test_is_not_that_tests_leak_once_registered(
    pytester: pytest.Pytester, register: bool
):
    pytester.makepyfile(test_lazy=f"REGISTER = {register}\n" + LAZY_SERVER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if register:
        result.assert_outcomes(passed=2)
    else:
        # Unregistered, it looks like the first test's leak: the audit must say so.
        result.stdout.fnmatch_lines(["*test_first_asks_for_the_server_mid_test left 1 process*"])


SLOW_WITH_TEARDOWN = """
import pathlib, time
import pytest

@pytest.fixture
def scratch():
    here = pathlib.Path(__file__).parent
    (here / "started").write_text("")
    yield
    (here / "torn-down").write_text("")

def test_waits(scratch):
    time.sleep(60)
"""


def test_a_sigterm_mid_test_still_runs_the_teardown(pytester: pytest.Pytester):
    pytester.makepyfile(test_slow=SLOW_WITH_TEARDOWN)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pytester.path / "started").exists():
            assert time.monotonic() < deadline and run.poll() is None, "the test never started"
            time.sleep(0.02)
        os.kill(run.pid, signal.SIGTERM)
        output, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert (pytester.path / "torn-down").exists(), output.decode()
    assert b"SIGTERM" in output


SWEEPS = """
import pytest

@pytest.mark.sweep
def test_every_mutant():
    assert True

def test_the_catalogue():
    assert True
"""


def test_sweeps_are_deselected_and_counted_unless_turned_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    default = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    default.assert_outcomes(passed=1, deselected=1)
    default.stdout.fnmatch_lines(["*1 sweep test(s) deselected (run them: --sweeps on)*"])
    on = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sweeps", "on")
    on.assert_outcomes(passed=2)
    only = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "sweep")
    only.assert_outcomes(passed=1, deselected=1)
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sweeps", "maybe")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*expected on or off (got 'maybe')*"])


IN_TWO_WORKERS = """
import pytest
from toy import CounterMachine, CounterSystem
from statemodels.engine import run_machine

@pytest.mark.parametrize("n", range(4))
def test_counter(n):
    run_machine(lambda: CounterMachine(CounterSystem()), database=None)

@pytest.mark.sweep
def test_left_for_the_weekly_sweep():
    pass
"""


def _machine_row(output: str, machine: str) -> list[str]:
    rows = [line.split() for line in output.splitlines() if line.startswith(machine + " ")]
    assert len(rows) == 1, output
    return rows[0]


def test_under_xdist_the_summary_adds_up_what_every_worker_ran(pytester: pytest.Pytester):
    """``pytest -n 2``: the controller ran no machine, yet its summary counts all of them."""
    pytest.importorskip("xdist", reason="pytest-xdist is in the dev extra: pip install -e .[dev]")
    pytester.makepyfile(
        toy=Path(toy.__file__).read_text(encoding="utf-8"), test_counter=IN_TWO_WORKERS
    )
    args = ("-p", "no:cacheprovider", "--budget", "ci", "--statemodels-trace-dir", "off")
    args += ("--hypothesis-seed", "1")  # each test draws the same examples in both runs
    alone = pytester.runpytest_subprocess(*args)
    alone.assert_outcomes(passed=4, deselected=1)
    split = pytester.runpytest_subprocess(*args, "-n", "2", "--statemodels-report", "r.html")
    split.assert_outcomes(passed=4)
    out = split.stdout.str()
    assert "2 workers [4 items]" in out
    # examples, steps and the changed-model share: the same as one process's, summed.
    single = _machine_row(alone.stdout.str(), "CounterMachine")
    assert _machine_row(out, "CounterMachine")[1:3] == single[1:3]
    split.stdout.fnmatch_lines(["      Add *changed model*", "*1 sweep test(s) deselected*"])
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    (machine,) = report["machines"]
    assert machine["examples"] == int(single[1])
