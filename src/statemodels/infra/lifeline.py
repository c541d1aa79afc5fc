"""Nothing outlives a run, whatever kills it: run marks, a lifeline process, a start-up janitor.

Three pieces, one mark:

- **The mark.** Each test run has a tag ``<run id>.<owner pid>.<owner start ticks>``, put in the
  environment as ``STATEMODELS_RUN`` before anything starts, so every process the run starts --
  supervisord, relay workers, bundled services -- carries it in ``/proc/<pid>/environ``
  (:func:`marked_env` adds it to the minimal environments servers get). Servers that rewrite that
  memory for their process title (PostgreSQL, Redis) would hide it, so every process started
  through ``infra.processes.spawn`` is also written to the run's registry (pid and start ticks,
  in a marked directory ``statemodels-run-*``), and is stopped with its whole process group (its
  backends, its forks). Every scratch directory gets a ``.statemodels-run`` file holding the tag.
  Nothing without the mark is ever touched: the machine's own services are not ours.
- **The lifeline.** A tiny watcher process holds the read end of a pipe whose write end only the
  run holds. When the run dies -- returns, crashes, Ctrl-C, SIGTERM, or SIGKILL (an OOM kill, a
  CI runner's hard timeout) -- the kernel closes the pipe, and the watcher stops every process
  with the run's mark (SIGTERM, then SIGKILL after a grace), removes the run's marked directories
  and the SysV segment a killed PostgreSQL leaves, and exits. It ignores SIGINT/SIGTERM/SIGHUP and
  lives in its own session: a Ctrl-C aimed at the run must not make it clean up *under* the
  run's own orderly teardown.
- **The janitor.** At start-up, :func:`sweep_dead_runs` does the same for every run whose owner
  is dead (the lifeline itself was killed too, or the machine lost power mid-run), and reports
  what it removed in one line.

Measured (``tests/infra/test_lifeline.py``): after ``kill -9`` of pytest, its PostgreSQL and Redis
are gone within the lifeline's grace (about 0.1-2 s).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs

__all__ = [
    "MARK_FILE",
    "RUN_ENV",
    "Lifeline",
    "Swept",
    "mark_dir",
    "marked_env",
    "register",
    "run_tag",
    "start_run",
    "sweep_dead_runs",
    "sweep_run",
    "unwind_on_sigterm",
]

RUN_ENV = "STATEMODELS_RUN"
MARK_FILE = ".statemodels-run"
#: Where scratch directories live: the janitor looks only here, one level deep.
SCRATCH_ROOTS = ("/dev/shm", "/tmp")
_GRACE = 2.0

_tag: str | None = None
_registry: str | None = None  # the file listing "pid ticks" of every process spawned this run
_REGISTRY_FILE = "pids"


def _start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat): exact,
    so (pid, ticks) names one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def run_tag() -> str:
    """This process's run tag (made on first use; see :func:`start_run`)."""
    global _tag
    if _tag is None:
        _tag = f"{secrets.token_hex(4)}.{os.getpid()}.{_start_ticks(os.getpid()) or 0}"
    return _tag


def _owner_alive(tag: str) -> bool:
    try:
        _run_id, pid_text, ticks_text = tag.split(".")
        pid, ticks = int(pid_text), int(ticks_text)
    except ValueError:
        return True  # not a tag we wrote: never treat it as dead
    return _start_ticks(pid) == ticks


def marked_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """``env`` with the run's mark added (``None`` stays ``None``: the child inherits ours, which
    holds the mark once :func:`start_run` ran)."""
    if env is None:
        return None
    out = dict(env)
    if _tag is not None:
        out[RUN_ENV] = _tag
    return out


def register(pid: int) -> None:
    """Record a process this run spawned (it leads its own process group), for the sweep."""
    if _registry is None:
        return
    ticks = _start_ticks(pid)
    if ticks is None:
        return
    with contextlib.suppress(OSError), open(_registry, "a") as fh:
        fh.write(f"{pid} {ticks}\n")


def _registered(path: str) -> list[tuple[int, int]]:
    out = []
    with contextlib.suppress(OSError), open(os.path.join(path, _REGISTRY_FILE)) as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                pid, ticks = (int(x) for x in line.split())
                out.append((pid, ticks))
    return out


def mark_dir(path: str) -> str:
    """Mark a scratch directory as this run's, so a lifeline or a later janitor may remove it."""
    with open(os.path.join(path, MARK_FILE), "w") as fh:
        fh.write(run_tag())
    return path


# -- finding what a run left ------------------------------------------------------------------


def _proc_tag(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    key = RUN_ENV.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode(errors="replace")
    return None


def _marked_processes() -> Iterator[tuple[int, str]]:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            tag = _proc_tag(int(entry))
            if tag:
                yield int(entry), tag


def _marked_dirs() -> Iterator[tuple[str, str]]:
    for root in SCRATCH_ROOTS:
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                if not entry.name.startswith("statemodels-") or not entry.is_dir():
                    continue
                with contextlib.suppress(OSError), open(os.path.join(entry.path, MARK_FILE)) as fh:
                    yield entry.path, fh.read().strip()


@attrs.frozen
class Swept:
    """What one sweep removed."""

    runs: tuple[str, ...] = ()
    processes: int = 0
    dirs: int = 0
    bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.processes or self.dirs)

    def describe(self) -> str:
        owners = ", ".join(sorted({t.split(".")[1] for t in self.runs if t.count(".") == 2}))
        return (
            f"statemodels: removed what {len(self.runs)} earlier killed run(s) left "
            f"(owner pid {owners}): {self.processes} process(es), {self.dirs} dir(s), "
            f"{self.bytes / 1e6:.1f} MB"
        )


def _group_members(leaders: Iterable[tuple[int, int]]) -> set[int]:
    """Living members of the process groups led by these (pid, ticks) -- if the leader is still
    that very process (a reused pid leads someone else's group)."""
    groups = {pid for pid, ticks in leaders if _start_ticks(pid) == ticks}
    if not groups:
        return set()
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) in groups:
                    members.add(int(entry))
    return members


def _kill_all(pids: Iterable[int]) -> int:
    """SIGTERM every pid, wait up to the grace, SIGKILL what is left. Returns how many existed."""
    me = os.getpid()
    alive: dict[int, int | None] = {pid: _start_ticks(pid) for pid in pids if pid != me}
    alive = {pid: t for pid, t in alive.items() if t is not None}
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE
    while time.monotonic() < deadline:
        if all(_start_ticks(pid) != t or _is_zombie(pid) for pid, t in alive.items()):
            break
        time.sleep(0.02)
    for pid, ticks in alive.items():
        if _start_ticks(pid) == ticks:  # still the same process: pids may be reused
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return len(alive)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def _dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _drop_sysv_segments(path: str) -> None:
    """A PostgreSQL killed with SIGKILL leaves its small SysV segment; postmaster.pid names it.

    Removed only if it is unattached and its key and id are the ones our data dir recorded.
    """
    pidfile = os.path.join(path, "data", "postmaster.pid")
    try:
        with open(pidfile) as fh:
            lines = fh.read().splitlines()
        key, shmid = (int(x) for x in lines[6].split())
    except (OSError, IndexError, ValueError):
        return
    try:
        with open("/proc/sysvipc/shm") as fh:
            rows = [line.split() for line in fh.read().splitlines()[1:]]
    except OSError:
        return
    for row in rows:
        # key shmid perms size cpid lpid nattch ...
        if len(row) > 6 and int(row[0]) == key and int(row[1]) == shmid and int(row[6]) == 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.shmctl(shmid, 0, None)  # IPC_RMID


def _dwellers(paths: Iterable[str]) -> set[int]:
    """Processes whose working directory is inside one of ``paths`` (marked dirs of dead runs).

    A server that overwrote its environ (Redis, PostgreSQL) and was never registered -- its run
    was a script outside pytest, or died before writing the registry -- is still provably ours
    when it lives inside our marked dir. Removing the dir without it would leave a server
    running in a deleted directory forever.
    """
    roots = tuple(os.path.realpath(p) for p in paths)
    if not roots:
        return set()
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
            found.add(int(entry))
    return found


def _remove_dirs(paths: Iterable[str]) -> tuple[int, int]:
    count = size = 0
    for path in paths:
        size += _dir_bytes(path)
        _drop_sysv_segments(path)
        shutil.rmtree(path, ignore_errors=True)
        count += not os.path.exists(path)
    return count, size


def _sweep(is_prey: Callable[[str], bool]) -> Swept:
    """Stop the processes of every run ``is_prey(tag)`` accepts, then remove its directories."""
    dirs = [(path, tag) for path, tag in _marked_dirs() if is_prey(tag)]
    by_env = [(pid, tag) for pid, tag in _marked_processes() if is_prey(tag)]
    leaders = [leader for path, _ in dirs for leader in _registered(path)]
    victims = {pid for pid, _ in by_env} | _group_members(leaders) | _dwellers(p for p, _ in dirs)
    killed = _kill_all(victims)
    removed, size = _remove_dirs(path for path, _ in dirs)
    runs = tuple(sorted({t for _, t in dirs} | {t for _, t in by_env}))
    return Swept(runs, killed, removed, size)


def sweep_run(tag: str) -> Swept:
    """Stop every process of the run ``tag`` and remove its marked directories."""
    return _sweep(lambda t: t == tag)


def sweep_dead_runs() -> Swept:
    """Remove what runs whose owner is dead left behind: processes first, then directories."""
    return _sweep(lambda t: t != _tag and not _owner_alive(t))


def _scratch_root() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


# -- the lifeline -----------------------------------------------------------------------------


@attrs.define
class Lifeline:
    """The watcher of one run: ends when the run's pipe closes, sweeping the run's leftovers."""

    tag: str
    pid: int
    _write_fd: int
    _popen: subprocess.Popen[bytes]

    def close(self, timeout: float = 5.0) -> None:
        """The run is ending in order: close the pipe and let the watcher sweep and exit."""
        if self._write_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
            self._write_fd = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)


def unwind_on_sigterm() -> None:
    """Make SIGTERM (a CI job's timeout, ``kill``) unwind the run like Ctrl-C.

    Python's default SIGTERM ends the process on the spot: no fixture teardown, no ``with``
    block's exit, so a run's servers die with it (they are tied to us) but their temp dirs stay.
    Raised as KeyboardInterrupt, the signal stops the run the way pytest stops on Ctrl-C, and
    every teardown runs on the way out. A handler someone else installed is left alone.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
        raise KeyboardInterrupt("SIGTERM: stopping, and tearing down what the run started")

    signal.signal(signal.SIGTERM, interrupt)


def start_run() -> tuple[Lifeline | None, Swept]:
    """Begin a run: sweep dead runs, mark this one, start its lifeline.

    Returns the lifeline (``None`` where ``/proc`` is missing: not Linux) and what the sweep of
    dead runs removed.
    """
    if not os.path.isdir("/proc/self"):
        return None, Swept()
    global _tag, _registry
    _tag = None  # a fresh tag: a run started by another run (a plugin test) is its own run
    swept = sweep_dead_runs()
    tag = run_tag()
    os.environ[RUN_ENV] = tag
    home = tempfile.mkdtemp(prefix="statemodels-run-", dir=_scratch_root())
    mark_dir(home)
    _registry = os.path.join(home, _REGISTRY_FILE)
    open(_registry, "a").close()
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV}  # the watcher is not its prey
    popen = subprocess.Popen(
        # Run as a plain script: it needs only the standard library and attrs, not the 1 s of
        # imports behind the statemodels package.
        [sys.executable, os.path.abspath(__file__), tag],
        stdin=read_fd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(read_fd)
    os.set_inheritable(write_fd, False)
    return Lifeline(tag, popen.pid, write_fd, popen), swept


def _watch(tag: str) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    sweep_run(tag)


if __name__ == "__main__":
    _watch(sys.argv[1])
