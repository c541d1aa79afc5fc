"""The user's loop end to end: a failure found at ``ci`` writes a trace; the trace replays after
the strategies were edited; the generated pytest file fails while the bug is there and passes
once it is gone; the snippet printed under the divergence works as printed.

Everything runs as a user would: ``pytest`` and ``statemodels`` in subprocesses, on a copy of
the package whose strategies we edit, against a Redis each run starts for itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import statemodels
from statemodels.cli import main as cli_main

pytest_plugins = ["pytester"]

# A failure a user's CI run finds: the register store with a seeded bug, at the ci budget.
FAILING_RUN = """
from statemodels.engine import run_machine
from statemodels.register import RegisterDriver, RegisterMachine

def test_register(statemodels_redis):
    run_machine(
        lambda: RegisterMachine(RegisterDriver(statemodels_redis, {"incr-from-one"})),
        database=None,
    )
"""

TIMEOUT = 120  # seconds any one subprocess may take on a loaded 2-core machine


def _run(
    argv: list[str], *, cwd: Path, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.pop("STATEMODELS_TRACE_DIR", None)
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.fixture
def edited_package() -> Iterator[Path]:
    """A copy of statemodels whose register strategies draw other keys and values, in another
    order: Hypothesis's saved examples would now mean different commands."""
    root = Path(tempfile.mkdtemp(prefix="statemodels-"))
    try:
        shutil.copytree(
            Path(statemodels.__file__).parent,
            root / "statemodels",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        machine = root / "statemodels" / "register" / "machine.py"
        text = machine.read_text(encoding="utf-8")
        edited = text.replace(
            'keys = st.sampled_from(["a", "b", "c"])', 'keys = st.sampled_from(["q", "r"])'
        ).replace("values = st.integers(-3, 3)", "values = st.integers(100, 200)")
        assert edited != text, "the register strategies moved: update this test's edit"
        machine.write_text(edited, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_ci_failure_replays_after_the_strategies_changed_and_becomes_a_regression_test(
    pytester: pytest.Pytester, edited_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_found=FAILING_RUN)
    found = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--budget", "ci")
    found.assert_outcomes(failed=1)
    out = found.stdout.str()
    assert "signature: RegisterMachine/Incr/value:differs" in out

    # The trace: where the divergence text says, with the commands as data.
    match = re.search(r"replay: statemodels replay (\S+\.json)", out)
    assert match, out
    trace_path = pytester.path / match.group(1)
    trace = json.loads(trace_path.read_text(encoding="utf-8"))
    assert trace_path.parent.name == "RegisterMachine"
    assert trace_path.parent.parent == pytester.path / ".statemodels" / "traces"
    assert trace["signature"] == "RegisterMachine/Incr/value:differs"
    assert trace["mutants"] == ["incr-from-one"] and trace["budget"]["name"] == "ci"
    assert trace["versions"]["hypothesis"] and trace["versions"]["statemodels"]
    assert trace["commands"][-1]["$type"] == "statemodels.register.commands.Incr"
    assert len(trace["journal"]) == len(trace["commands"])
    assert trace["divergence"]["table"][0]["field"] == "value"
    assert "password" not in trace_path.read_text(encoding="utf-8")

    # The snippet printed under the divergence works as printed (here on the shipped code).
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("or paste into Python:"))
    column = lines[start].index("or paste") + 4  # pytest prefixes "E   " to the exception text
    snippet = "\n".join(line[column:] for line in lines[start + 1 : start + 4])
    assert lines[start - 1].endswith(f"replay: statemodels replay {match.group(1)}")
    assert lines[start + 3].lstrip("E ").startswith("print(replay('RegisterMachine', [")
    pasted = _run([sys.executable, "-c", snippet], cwd=pytester.path)
    assert pasted.returncode == 0, pasted.stderr
    assert "signature: RegisterMachine/Incr/value:differs" in pasted.stdout

    # Replayed by the edited package: the commands are data, the strategies do not matter.
    cli = [sys.executable, "-m", "statemodels.cli"]
    again = _run([*cli, "replay", str(trace_path)], cwd=pytester.path, pythonpath=edited_package)
    assert again.returncode == 1, again.stderr
    assert "signature: RegisterMachine/Incr/value:differs" in again.stdout
    assert f"replay: statemodels replay {match.group(1)}" in again.stdout

    # Without the bug, in this process: exit 0 and "no longer diverges"; and the test source.
    capsys.readouterr()  # what pytester printed so far
    assert cli_main(["replay", str(trace_path), "--mutants", ""]) == 0
    assert capsys.readouterr().out.startswith("no longer diverges: ")
    assert cli_main(["replay", "--pytest", str(trace_path)]) == 0
    source = capsys.readouterr().out
    compile(source, "test_incr_regression.py", "exec")
    tests = pytester.path / "regressions"
    tests.mkdir()
    (tests / "test_incr_regression.py").write_text(source, encoding="utf-8")
    pytest_argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tests)]
    broken = _run(pytest_argv, cwd=pytester.path, pythonpath=edited_package)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "still diverges" in broken.stdout and "Incr/value:differs" in broken.stdout

    gone = source.replace("MUTANTS = ['incr-from-one']", "MUTANTS = []")
    assert gone != source
    (tests / "test_incr_regression.py").write_text(gone, encoding="utf-8")
    passing = _run(pytest_argv, cwd=pytester.path, pythonpath=edited_package)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "1 passed" in passing.stdout


def test_replay_of_a_missing_or_foreign_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "x.json"
    foreign.write_text('{"hello": 1}', encoding="utf-8")
    for path, message in [
        (tmp_path / "none.json", "cannot read trace"),
        (foreign, "is not a statemodels trace"),
    ]:
        assert cli_main(["replay", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
