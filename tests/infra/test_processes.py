"""Processes: identities, signals, zombies, exe hashing, orphans -- against real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from statemodels.infra import (
    ProcessIdentity,
    become_subreaper,
    cont,
    describe,
    exe_path,
    exe_sha256,
    kill,
    kill_tree,
    live_descendants,
    poll_until,
    reap_zombies,
    sample,
    send_signal,
    sha256_file,
    spawn,
    stop,
    wait_gone,
)

SLEEP = shutil.which("sleep") or "/bin/sleep"
TRUE = shutil.which("true") or "/bin/true"


def _status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


def test_spawn_identity_and_alive() -> None:
    with spawn([SLEEP, "30"], name="sleeper") as proc:
        assert proc.name == "sleeper"
        assert proc.pid == proc.popen.pid
        assert proc.identity == ProcessIdentity.of(proc.pid)
        assert proc.alive() and proc.identity.alive()
        assert proc.identity.process() is not None
        # Its own session: signals aimed at the test run's process group miss it.
        assert os.getsid(proc.pid) == proc.pid
        assert "sleep" in describe(psutil.Process(proc.pid))
        res = sample(proc.identity)
        assert res.threads == 1 and res.rss > 0 and res.fds >= 1
    assert not proc.alive()
    assert proc.wait(1.0) == -signal.SIGTERM


def test_sigkill_then_wait_gone() -> None:
    proc = spawn([SLEEP, "30"])
    assert kill(proc.identity) is True
    assert wait_gone(proc.identity, timeout=2.0)
    assert proc.wait(1.0) == -signal.SIGKILL
    # Gone means gone: no second signal, no sample.
    assert send_signal(proc.identity, signal.SIGTERM) is False
    with pytest.raises(psutil.NoSuchProcess):
        sample(proc.identity)


def test_zombie_counts_as_dead_and_is_reaped() -> None:
    proc = spawn([TRUE])
    # Nobody waits for it yet, so it stays a zombie: dead to us, though its pid still exists.
    assert poll_until(lambda: _status(proc.pid) == psutil.STATUS_ZOMBIE, timeout=2.0)
    assert psutil.pid_exists(proc.pid)
    assert not proc.identity.alive()
    assert proc.identity.process() is None
    assert proc.pid in reap_zombies()
    assert not psutil.pid_exists(proc.pid)
    assert proc.popen.returncode == 0  # reaped through its Popen: the real status is kept


def test_sigstop_and_sigcont() -> None:
    with spawn([SLEEP, "30"]) as proc:
        assert stop(proc.identity)
        assert poll_until(lambda: _status(proc.pid) == psutil.STATUS_STOPPED, timeout=2.0)
        assert proc.alive()  # frozen is not dead
        assert cont(proc.identity)
        assert poll_until(lambda: _status(proc.pid) == psutil.STATUS_SLEEPING, timeout=2.0)


def test_reused_pid_identity_is_not_alive() -> None:
    me = ProcessIdentity.of(os.getpid())
    assert me.alive()
    # Same pid, different start time: what a recycled pid looks like to a stale identity.
    impostor = ProcessIdentity(pid=os.getpid(), create_time=me.create_time - 1000.0)
    assert not impostor.alive()
    assert impostor.process() is None
    assert send_signal(impostor, signal.SIGTERM) is False  # and we are still here
    with pytest.raises(psutil.NoSuchProcess):
        sample(impostor)


def test_exe_sha256_sees_the_build_the_process_runs(tmp_path: Path) -> None:
    binary = tmp_path / "svc"
    shutil.copy2(SLEEP, binary)
    old = sha256_file(binary)
    with spawn([str(binary), "30"]) as proc:
        assert exe_path(proc.pid) == str(binary)
        assert exe_sha256(proc.pid) == old
        # Deploy a "new build": write beside it, then atomically replace the path.
        staged = tmp_path / "svc.new"
        shutil.copy2(TRUE, staged)
        os.replace(staged, binary)
        new = sha256_file(binary)
        assert new != old
        assert exe_sha256(proc.pid) == old
        assert exe_path(proc.pid) == f"{binary} (deleted)"
        assert proc.alive()


def test_orphaned_grandchild_found_and_killed() -> None:
    assert become_subreaper()
    code = (
        "import subprocess, sys; "
        f"p = subprocess.Popen([{SLEEP!r}, '30'], start_new_session=True); print(p.pid)"
    )
    parent = spawn([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert parent.popen.stdout is not None
    grandchild = int(parent.popen.stdout.readline())
    parent.popen.stdout.close()
    assert parent.wait(10.0) == 0
    # The parent died: the grandchild is an orphan, re-parented to us, not to PID 1.
    assert poll_until(lambda: psutil.Process(grandchild).ppid() == os.getpid(), timeout=2.0)
    assert grandchild in {p.pid for p in live_descendants()}
    ident = ProcessIdentity.of(grandchild)
    kill_tree(grandchild)
    assert not ident.alive()
    assert grandchild not in {p.pid for p in live_descendants()}


def test_terminate_kills_the_whole_tree() -> None:
    # A child that ignores SIGTERM and has a child of its own (same session).
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"p = subprocess.Popen([{SLEEP!r}, '30']); print(p.pid, flush=True); time.sleep(30)"
    )
    proc = spawn([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.popen.stdout is not None
    child = ProcessIdentity.of(int(proc.popen.stdout.readline()))
    proc.popen.stdout.close()
    started = time.monotonic()
    assert proc.terminate(timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - started < 3.0
    assert not child.alive() and not proc.alive()


def test_live_descendants_excludes_given_trees() -> None:
    with spawn([SLEEP, "30"]) as a, spawn([SLEEP, "30"]) as b:
        pids = {p.pid for p in live_descendants()}
        assert {a.pid, b.pid} <= pids
        rest = {p.pid for p in live_descendants(exclude_pids={a.pid})}
        assert a.pid not in rest and b.pid in rest


def test_spawn_rejects_a_string_argv() -> None:
    with pytest.raises(TypeError, match="sleep 1"):
        spawn("sleep 1")  # type: ignore[arg-type]
