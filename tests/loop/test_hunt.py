"""``statemodels hunt``: the mutant benchmark table, printed and written as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_hunt_prints_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "hunt.json"
    argv = [sys.executable, "-m", "statemodels.cli", "hunt", "register"]
    argv += ["--mutant", "incr-from-one", "--json", str(out)]
    proc = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["mutant", "caught", "first"]
    assert lines[1].split()[:2] == ["register/incr-from-one", "yes"]
    assert lines[1].endswith("RegisterMachine/Incr/value:differs")
    assert lines[-1] == f"1 of 1 mutants caught; table written to {out}"
    table = json.loads(out.read_text(encoding="utf-8"))
    assert table["summary"] == {
        "mutants": 1,
        "caught": 1,
        "total_seconds": table["summary"]["total_seconds"],
    }
    (incr,) = table["hunts"]
    assert incr["signature"] == "RegisterMachine/Incr/value:differs" and incr["steps"] == 1
    assert incr["examples"] >= 1 and incr["total_seconds"] >= incr["first_seconds"] > 0


def test_every_domain_with_a_catalogue_has_a_hunt() -> None:
    from statemodels import cli, hunt

    assert sorted(hunt.DOMAINS) == sorted(cli._CATALOGUES)
    assert {"register", "pggit", "supervisor", "reload", "status2"} <= set(hunt.DOMAINS)


def test_a_hunt_stopped_by_sigterm_leaves_no_server_behind(tmp_path: Path) -> None:
    """A time limit's SIGTERM unwinds the hunt: its Redis and service are stopped, and it
    says where the rows so far are (a hunt killed this way once left both running)."""
    import os
    import signal
    import time

    import psutil

    argv = [sys.executable, "-m", "statemodels.cli", "hunt", "status2"]
    argv += ["--mutant", "no-read-limit", "--json", str(tmp_path / "h.json")]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        started: list[psutil.Process] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "service.py" in " ".join(p.cmdline()) for p in started
        ):
            time.sleep(0.2)
            started = psutil.Process(proc.pid).children(recursive=True)
        assert started, "the hunt never started its service"
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "interrupted" in err, err
    _, alive = psutil.wait_procs(started, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
