"""Nothing outlives a run, whatever kills it: SIGKILL, SIGINT, SIGTERM of pytest itself.

Each test starts a real pytest run in a subprocess whose test holds a private PostgreSQL and
Redis (the session fixtures) and a machine's worth of statistics, waits until it is mid-test,
then kills or interrupts it the way an OOM killer, a CI timeout or a user would, and checks what
is left: no process of that run, no directory it marked, the right exit code, a summary and no
false leak lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statemodels.infra import lifeline
from statemodels.infra.processes import poll_until

from ..properties import toy

pytest_plugins = ["pytester"]

INNER = """
import json, os, time
from toy import CounterMachine, CounterSystem
from statemodels.engine import run_machine

def test_holds_servers(statemodels_postgres, statemodels_redis):
    run_machine(lambda: CounterMachine(CounterSystem()), budget="smoke", database=None)
    with open("ready.json.tmp", "w") as fh:
        json.dump({"tag": os.environ["STATEMODELS_RUN"], "pid": os.getpid(),
                   "servers": sorted(statemodels_postgres.pids() | statemodels_redis.pids())}, fh)
    os.rename("ready.json.tmp", "ready.json")
    time.sleep(120)
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], dict]:
    (tmp_path / "toy.py").write_text(Path(toy.__file__).read_text(encoding="utf-8"))
    (tmp_path / "test_inner.py").write_text(INNER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # our own run's Ctrl-C must not reach it, nor its ours
        # A job a non-interactive shell started with ``&`` inherits SIGINT ignored, and Python
        # keeps it so: the inner run then slept through our SIGINT. Give it what a terminal
        # gives a foreground pytest.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    ready = tmp_path / "ready.json"
    if not poll_until(ready.exists, timeout=120):
        proc.kill()
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"the inner run never got mid-test:\n{out}")
    return proc, json.loads(ready.read_text())


def _leftovers(tag: str, pids: list[int]) -> list[str]:
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    marked = [path for path, t in lifeline._marked_dirs() if t == tag]
    by_env = [pid for pid, t in lifeline._marked_processes() if t == tag]
    return [f"pid {p}" for p in alive + by_env] + marked


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def _lifeline_of(tag: str) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"lifeline.py") for part in cmdline) and tag.encode() in cmdline:
                return int(entry)
    raise AssertionError(f"no lifeline process for run {tag}")


def test_sigkill_of_pytest_leaves_nothing_alive(tmp_path: Path) -> None:
    proc, ready = _start(tmp_path)
    assert ready["servers"], "the inner run holds PostgreSQL and Redis"
    proc.kill()  # SIGKILL: no teardown runs at all
    proc.communicate(timeout=30)
    left: list[str] = []

    def gone() -> bool:
        left[:] = _leftovers(ready["tag"], ready["servers"])
        return not left

    assert poll_until(gone, timeout=15), f"left behind after SIGKILL: {left}"


def test_the_next_run_removes_what_a_killed_run_and_its_lifeline_left(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    proc, ready = _start(tmp_path)
    os.kill(_lifeline_of(ready["tag"]), signal.SIGKILL)  # the watcher dies first: a power cut
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(0.5)
    assert _leftovers(ready["tag"], ready["servers"]), "nothing was left to clean: no test"
    pytester.makepyfile(test_trivial="def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["statemodels: removed what * earlier killed run(s) left *"])
    left: list[str] = []

    def gone() -> bool:
        left[:] = _leftovers(ready["tag"], ready["servers"])
        return not left

    assert poll_until(gone, timeout=10), f"the start-up janitor left: {left}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_tears_down_in_order_and_says_what_ran(tmp_path: Path, sig: int) -> None:
    proc, ready = _start(tmp_path)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "CounterMachine" in out, f"no statemodels summary:\n{out}"
    for noise in ("ExceptionGroup", "leaked", "could not drop", "Traceback"):
        assert noise not in out, f"{noise!r} in the output of an orderly interrupt:\n{out}"
    left = _leftovers(ready["tag"], ready["servers"])
    assert not left, f"left behind after {signal.Signals(sig).name}: {left}"


def test_the_janitor_stops_an_unregistered_server_living_in_a_dead_run_s_dir(
    tmp_path: Path,
) -> None:
    # A run outside pytest (a script, no registry) whose owner died: its marked dir holds a
    # process that overwrote its environ, as Redis does. The dir alone proves it is ours.
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner.wait(timeout=30)
    dead_tag = f"deadrun.{owner.pid}.1"
    scratch = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path("/tmp")
    home = scratch / f"statemodels-test-dweller-{os.getpid()}"
    home.mkdir()
    (home / lifeline.MARK_FILE).write_text(dead_tag)
    dweller = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], cwd=home, start_new_session=True
    )
    try:
        swept = lifeline.sweep_dead_runs()
        assert dead_tag in swept.runs
        assert dweller.wait(timeout=10) is not None, "the dweller outlived its dir"
        assert not home.exists()
    finally:
        if dweller.poll() is None:
            dweller.kill()
            dweller.wait(timeout=10)
