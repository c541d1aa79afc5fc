"""Processes as the tests see them: identities, spawning, signals, reaping and leak audits.

Everything here goes through psutil and the kernel (``/proc``, ``waitpid``, ``pidfd``), never
through the ``ps`` / ``kill`` binaries. Two rules shape the module:

- A process is named by its :class:`ProcessIdentity` -- ``(pid, create_time)`` -- never by a bare
  pid, because pids are reused. Signals go only to a process whose identity still matches.
- A zombie is dead. On this machine PID 1 reaps orphans only every 1.5-2 s, so a killed process can
  linger as a zombie; we never wait for it to vanish, and we reap our own zombies ourselves.

Example::

    with spawn(["/bin/sleep", "30"], name="sleeper") as proc:
        assert proc.alive()
        stop(proc.identity)          # SIGSTOP
        cont(proc.identity)          # SIGCONT
    # leaving the block terminated it (SIGTERM, then SIGKILL of the whole tree)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import math
import os
import pwd
import select
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import IO, Any, Self

import attrs
import psutil

from . import lifeline

__all__ = [
    "ProcessIdentity",
    "ResourceSample",
    "Spawned",
    "become_subreaper",
    "cont",
    "describe",
    "exe_path",
    "exe_sha256",
    "kill",
    "kill_tree",
    "live_descendants",
    "live_identity",
    "poll_until",
    "reap_zombies",
    "sample",
    "send_signal",
    "sha256_file",
    "spawn",
    "stop",
    "wait_gone",
]

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
# Half a clock tick: psutil derives create_time from boot time + start ticks (1/100 s), so the
# same process always yields the same float, and two processes sharing a pid within 5 ms cannot
# happen (the pid space has to wrap first).
_CREATE_TIME_TOLERANCE = 0.005

# Popen objects we spawned, by pid: reap_zombies() lets them reap their own child (keeping the
# real exit status) instead of stealing it with a bare waitpid.
_owned_popens: weakref.WeakValueDictionary[int, subprocess.Popen[Any]] = (
    weakref.WeakValueDictionary()
)
_owned_lock = threading.Lock()


def poll_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.002,
    max_interval: float = 0.05,
) -> bool:
    """Call ``predicate`` until it returns True or ``timeout`` seconds have passed.

    The interval starts small (most waits here end within milliseconds) and doubles up to
    ``max_interval``. The predicate is always called at least once, and once more at the deadline.

    Example::

        assert poll_until(lambda: not proc.alive(), timeout=2.0)

    Returns:
        True if the predicate became true, False on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bool(predicate())
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)


def one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line (libpq and redis errors span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def port_taken(log_path: str) -> bool:
    """Did a server's start-up log say its port was already taken?"""
    try:
        with open(log_path, errors="replace") as fh:
            return "already in use" in fh.read()[-8000:]
    except OSError:
        return False


def log_tail(path: str, lines: int = 6) -> str:
    """The last non-empty ``lines`` of a server log joined with `` | ``, for one-line errors."""
    try:
        with open(path, errors="replace") as fh:
            text = [ln.strip() for ln in fh.read()[-8000:].splitlines() if ln.strip()]
    except OSError as exc:
        return f"(no log: {exc})"
    return " | ".join(text[-lines:]) or "(log is empty)"


def scratch_dir(prefix: str) -> str:
    """A private temp dir, on tmpfs (``/dev/shm``) when there is one: no disk I/O at all.

    Marked as this run's (:mod:`~statemodels.infra.lifeline`), so it is removed even if the run
    is killed before its own cleanup. ``prefix`` should start with ``statemodels-``.
    """
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return lifeline.mark_dir(tempfile.mkdtemp(prefix=prefix, dir=base))


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@attrs.frozen
class ProcessIdentity:
    """A process as ``(pid, create_time)``: survives pid reuse, unlike a bare pid.

    Example::

        ident = ProcessIdentity.of(proc.pid)
        ident.alive()      # False once it exited, is a zombie, or the pid was reused
    """

    pid: int = attrs.field(validator=attrs.validators.instance_of(int))
    create_time: float = attrs.field(converter=float)

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """The identity of the process running now as ``pid``.

        Raises:
            psutil.NoSuchProcess: no process has that pid.
        """
        return cls(pid, psutil.Process(pid).create_time())

    def _matches(self, proc: psutil.Process) -> bool:
        return math.isclose(proc.create_time(), self.create_time, abs_tol=_CREATE_TIME_TOLERANCE)

    def process(self) -> psutil.Process | None:
        """The living process with this identity, or None if gone, a zombie or the pid reused."""
        try:
            proc = psutil.Process(self.pid)
            if not self._matches(proc) or _is_zombie(proc):
                return None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        return proc

    def alive(self) -> bool:
        """True only if this very process exists and is not a zombie."""
        return self.process() is not None


PidOrIdentity = int | ProcessIdentity


def _identity(target: PidOrIdentity) -> ProcessIdentity | None:
    if isinstance(target, ProcessIdentity):
        return target
    try:
        return ProcessIdentity.of(target)
    except psutil.NoSuchProcess:
        return None


def live_identity(pid: object) -> ProcessIdentity | None:
    """The identity of the living process ``pid``, as reported by a system under test.

    ``None`` if ``pid`` is not a positive int, or no such process lives (gone, zombie). For
    judging what a supervisor *claims*: a pid it lists must name a living process.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        ident = ProcessIdentity.of(pid)
    except (psutil.Error, OSError):
        return None
    return ident if ident.alive() else None


def become_subreaper() -> bool:
    """Make this process the reaper of orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    A child that daemonises (double-forks) leaves a grandchild whose parent died; without this the
    grandchild is re-parented to PID 1 and escapes :func:`live_descendants`. With it, the
    grandchild is re-parented to us, so leak audits see it and :func:`reap_zombies` can reap it.

    Returns:
        True if the flag is set, False where unsupported (not Linux, or prctl refused).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_zombies() -> list[int]:
    """Reap every zombie direct child of this process; return their pids.

    A child we spawned with :func:`spawn` is reaped through its own ``Popen`` (which records the
    real exit status). Any other zombie child -- typically an orphaned grandchild re-parented to us
    by :func:`become_subreaper` -- is reaped with ``waitpid(WNOHANG)``. Living children are never
    touched; a foreign ``Popen`` whose zombie we reap sees ``ECHILD`` later and copes (its exit
    status reads as 0).
    """
    reaped: list[int] = []
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return reaped
    for child in children:
        if not _is_zombie(child):
            continue
        with _owned_lock:
            popen = _owned_popens.get(child.pid)
        if popen is not None:
            with contextlib.suppress(ChildProcessError):
                popen.poll()
            reaped.append(child.pid)
            continue
        try:
            pid, _status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            continue  # someone else (a Popen in another thread) reaped it first
        if pid:
            reaped.append(pid)
    return reaped


def send_signal(identity: ProcessIdentity, sig: int) -> bool:
    """Send ``sig`` to the process only if it is still the one ``identity`` names.

    Uses a pidfd where the kernel offers one, so the check and the signal cannot race with pid
    reuse.

    Returns:
        True if the signal was delivered, False if the process is already gone (or a zombie).
    """
    pidfd = -1
    try:
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(identity.pid)
        proc = identity.process()
        if proc is None:
            return False
        if pidfd >= 0:
            # The pidfd pins the process we just checked: a reused pid cannot slip in between.
            signal.pidfd_send_signal(pidfd, sig)
        else:
            proc.send_signal(sig)
        return True
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        raise
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def kill(identity: ProcessIdentity) -> bool:
    """SIGKILL the process if it is still ``identity``; False if already gone."""
    return send_signal(identity, signal.SIGKILL)


def stop(identity: ProcessIdentity) -> bool:
    """SIGSTOP (freeze) the process if it is still ``identity``; False if already gone."""
    return send_signal(identity, signal.SIGSTOP)


def cont(identity: ProcessIdentity) -> bool:
    """SIGCONT (thaw) the process if it is still ``identity``; False if already gone."""
    return send_signal(identity, signal.SIGCONT)


def wait_gone(identity: ProcessIdentity, timeout: float) -> bool:
    """Wait until the process is dead or a zombie, reaping our zombies on the way.

    Returns:
        True if it is gone, False if it still lives after ``timeout`` seconds.
    """

    def gone() -> bool:
        reap_zombies()
        return not identity.alive()

    return poll_until(gone, timeout=timeout)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return list(root.children(recursive=True))
    return []


def kill_tree(target: PidOrIdentity, timeout: float = 5.0) -> None:
    """SIGKILL a process and all its descendants, then reap what is ours.

    The tree is frozen (SIGSTOP) and captured before anything is killed, so a parent cannot fork a
    new child between the capture and the kill, and children killed after their parent are still
    known. Gone processes are ignored. A process still alive after ``timeout`` is logged.
    """
    identity = _identity(target)
    root = identity.process() if identity is not None else None
    victims: dict[int, ProcessIdentity] = {}
    if root is not None and identity is not None:
        victims[identity.pid] = identity
        stop(identity)
        for _ in range(3):  # re-capture until nothing new appears (a fork may have been in flight)
            new = [p for p in _tree(root) if p.pid not in victims]
            if not new:
                break
            for proc in new:
                with contextlib.suppress(psutil.Error):
                    ident = ProcessIdentity(proc.pid, proc.create_time())
                    victims[proc.pid] = ident
                    stop(ident)
    for ident in victims.values():
        kill(ident)
    for ident in victims.values():
        if not wait_gone(ident, timeout):
            log.warning("process %d survived SIGKILL for %.1f s", ident.pid, timeout)
    reap_zombies()


def live_descendants(exclude_pids: Collection[int] = ()) -> list[psutil.Process]:
    """All living descendants of this process, minus ``exclude_pids`` and their descendants.

    Zombies are reaped first and never reported. Use it as a leak audit: record the pids of
    long-lived servers, run a test, and anything else still here afterwards leaked.

    Example::

        before = {p.pid for p in live_descendants()}
        run_test()
        leaked = live_descendants(exclude_pids=before)
    """
    reap_zombies()
    procs = _tree(psutil.Process())
    by_pid = {p.pid: p for p in procs}
    excluded = set(exclude_pids)
    for pid in list(excluded):
        if pid in by_pid:
            excluded.update(p.pid for p in _tree(by_pid[pid]))
    return [p for p in procs if p.pid not in excluded and not _is_zombie(p)]


def describe(p: psutil.Process) -> str:
    """One line for a report: pid, name, clipped command line and age.

    Example: ``pid 4711 'sleep' [/bin/sleep 30] age 1.2s``.
    """
    try:
        with p.oneshot():
            name = p.name()
            cmdline = " ".join(p.cmdline())
            age = time.time() - p.create_time()
    except psutil.Error as exc:
        return f"pid {p.pid} (gone: {type(exc).__name__})"
    if len(cmdline) > 100:
        cmdline = cmdline[:97] + "..."
    return f"pid {p.pid} {name!r} [{cmdline}] age {age:.1f}s"


def exe_path(pid: int) -> str:
    """The path of the binary ``pid`` runs, read from ``/proc/<pid>/exe``.

    Ends with ``" (deleted)"`` if the file was removed or replaced since the process started --
    which :meth:`psutil.Process.exe` hides (it caches and strips that suffix).
    """
    return os.readlink(f"/proc/{pid}/exe")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def exe_sha256(pid: int) -> str:
    """The sha256 of the binary ``pid`` is REALLY running.

    Reads through ``/proc/<pid>/exe``, which the kernel resolves to the mapped inode: after a
    deploy replaced (or deleted) the file on disk, this still hashes the old build the process
    runs, so "did the restart pick up the new binary?" has an honest answer.
    """
    return sha256_file(f"/proc/{pid}/exe")


@attrs.frozen
class ResourceSample:
    """What a process holds at one moment: open fds, resident memory (bytes), threads."""

    fds: int
    rss: int
    threads: int


def sample(target: PidOrIdentity) -> ResourceSample:
    """Sample a process's fds, rss and thread count.

    Raises:
        psutil.NoSuchProcess: the process is gone (or the identity no longer matches).
    """
    identity = _identity(target)
    proc = identity.process() if identity is not None else None
    if proc is None:
        pid = target.pid if isinstance(target, ProcessIdentity) else target
        raise psutil.NoSuchProcess(pid, msg="process is gone, a zombie, or its pid was reused")
    with proc.oneshot():
        return ResourceSample(
            fds=proc.num_fds(), rss=proc.memory_info().rss, threads=proc.num_threads()
        )


def _wait_exit(pid: int, timeout: float) -> None:
    """Block until ``pid`` exits (becomes a zombie) or ``timeout`` passes."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or already reaped: a short nap
        time.sleep(min(timeout, 0.002))
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


@attrs.define(eq=False)
class Spawned:
    """A child started by :func:`spawn`: its Popen, identity and name. A context manager that
    terminates the child (and its tree) on exit."""

    popen: psutil.Popen
    identity: ProcessIdentity
    name: str

    @property
    def pid(self) -> int:
        return self.identity.pid

    def alive(self) -> bool:
        """True while the child runs (a zombie counts as dead)."""
        return self.identity.alive()

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the child is still alive; False if already gone."""
        return send_signal(self.identity, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit and return its exit code (``-N`` for signal N), or None on
        timeout."""
        # Not popen.wait(): psutil's wait reaps outside subprocess's lock and, if
        # reap_zombies() (same Popen, another thread) got there first, stores None as the
        # return code. poll() takes the lock; a pidfd wakes us the moment the child exits.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                return int(code)
            remaining = 0.1 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return None
            _wait_exit(self.pid, min(remaining, 0.1))

    def kill(self) -> None:
        """SIGKILL the child and its whole tree, and reap it."""
        kill_tree(self.identity, timeout=5.0)
        self.wait(5.0)

    def terminate(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the whole tree; reap. Returns the exit
        code (None only if the child could not be reaped)."""
        # Capture the tree first: once the child dies its own children are orphaned and no longer
        # reachable through it.
        root = self.identity.process()
        tree: list[ProcessIdentity] = []
        if root is not None:
            for p in _tree(root):
                with contextlib.suppress(psutil.Error):
                    tree.append(ProcessIdentity(p.pid, p.create_time()))
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                log.warning(
                    "%s (pid %d) ignored SIGTERM for %.1f s; killing", self.name, self.pid, timeout
                )
        for ident in [self.identity, *tree]:
            kill_tree(ident, timeout=timeout)
        return self.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    name: str | None = None,
    user: str | int | None = None,
) -> Spawned:
    """Start a child process we own.

    The child gets its own session (a Ctrl-C or signal aimed at the test run does not reach it;
    the tests decide when it dies) and ``/dev/null`` as stdin. With ``user`` (only as root) it runs
    as that OS user with that user's primary group and no supplementary groups.

    Example::

        with spawn([sys.executable, "-c", "import time; time.sleep(30)"], name="worker") as w:
            w.signal(signal.SIGSTOP)

    Args:
        argv: program and arguments (no shell).
        env, cwd, stdout, stderr: as for :class:`subprocess.Popen`.
        name: a label for reports; defaults to the program's basename.
        user: run as this user (name or uid); needs root.
    """
    if isinstance(argv, str):
        raise TypeError(f"argv must be a sequence of strings, got the string {argv!r}")
    argv = [os.fspath(a) for a in argv]
    kwargs: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user) if isinstance(user, str) else pwd.getpwuid(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    popen = psutil.Popen(
        argv,
        # A minimal environment still carries the run's mark: the lifeline finds the child by it.
        env=lifeline.marked_env(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        **kwargs,
    )
    with _owned_lock:
        _owned_popens[popen.pid] = popen
    lifeline.register(popen.pid)  # found and stopped even if it hides its environment
    try:
        identity = ProcessIdentity(popen.pid, popen.create_time())
    except psutil.NoSuchProcess:
        # Exited (and was reaped by someone) before we could look: it still had this pid.
        identity = ProcessIdentity(popen.pid, time.time())
    return Spawned(popen=popen, identity=identity, name=name or os.path.basename(argv[0]))
