"""Run a test command N times, idle or with every core loaded, and count what went wrong.

The reliability check of the stateful suite: a correct system must never diverge, a run must
never leave anything behind, and that must hold on a loaded 2-core machine as well as an idle
one. Each round runs the command in a fresh process and then looks for leftovers -- live
processes and ``/tmp`` / ``/dev/shm`` directories that carry a statemodels run mark (see
``statemodels.infra.lifeline``) of a run that is over.

    python benchmarks/repeat_suite.py --runs 10                   # idle
    python benchmarks/repeat_suite.py --runs 10 --load            # a CPU hog per core
    python benchmarks/repeat_suite.py --runs 3 -- tests/stateful -k relay --budget ci

Prints one line per round (exit code, seconds, failures, leftovers) and a total; numbers are
printed, never asserted. A round that fails leaves its whole output in ``--logs`` (the traces
of its divergences are under ``.statemodels/traces`` as usual).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT = ["tests/stateful", "--budget", "ci", "-q", "-p", "no:cacheprovider"]


def _hog(stop_at: float) -> None:
    """Burn one core until ``stop_at`` (bounded: it ends on its own even if we are killed)."""
    x = 0
    while time.time() < stop_at:
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


@contextmanager
def loaded(cores: int, seconds: float) -> Iterator[None]:
    """One hog process per core for at most ``seconds``."""
    stop_at = time.time() + seconds
    hogs = [
        multiprocessing.Process(target=_hog, args=(stop_at,), daemon=True) for _ in range(cores)
    ]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join(5)


def leftovers(grace: float = 5.0) -> list[str]:
    """Marked processes and directories of runs whose owner is gone (other live runs, such as a
    CI run beside this one, are not leftovers). The lifeline sweeps as its run exits, so this
    waits up to ``grace`` seconds for it."""
    from statemodels.infra import lifeline

    deadline = time.monotonic() + grace
    while True:
        found = [
            f"pid {pid} (run {tag})"
            for pid, tag in lifeline._marked_processes()
            if not lifeline._owner_alive(tag)
        ]
        found += [
            f"{path} (run {tag})"
            for path, tag in lifeline._marked_dirs()
            if not lifeline._owner_alive(tag)
        ]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load", action="store_true", help="load every core with a CPU hog")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per round")
    parser.add_argument(
        "--logs", default=".statemodels/repeat", help="where a failed round's output is kept"
    )
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "pytest", *(args.pytest_args or DEFAULT)]
    env = {k: v for k, v in os.environ.items() if k != "STATEMODELS_RUN"}
    print(f"repeat: {args.runs} x {' '.join(command[1:])}  load={'on' if args.load else 'off'}")
    passes = failures = dirty = 0
    for round_no in range(1, args.runs + 1):
        start = time.monotonic()
        cores = os.cpu_count() or 1
        with loaded(cores if args.load else 0, args.timeout):
            proc = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=args.timeout
            )
        seconds = time.monotonic() - start
        failed = re.findall(r"^(FAILED|ERROR) (\S+)", proc.stdout, re.MULTILINE)
        left = leftovers()
        passes += proc.returncode == 0
        failures += proc.returncode != 0
        dirty += bool(left)
        tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"round {round_no}: exit {proc.returncode}  {seconds:.0f}s  {tail[0]}")
        for kind, node in failed:
            print(f"    {kind} {node}")
        if proc.returncode != 0:
            os.makedirs(args.logs, exist_ok=True)
            log = os.path.join(args.logs, f"round-{round_no}.log")
            with open(log, "w") as out:
                out.write(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
            print(f"    output: {log}")
        for item in left:
            print(f"    LEFT {item}")
    print(f"total: {passes} passed, {failures} failed, {dirty} with leftovers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
