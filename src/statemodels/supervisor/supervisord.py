"""supervisord as a second target: the same restart contract, through its XML-RPC interface.

supervisord offers programs, not rules, so its machine keeps what applies: a killed RUNNING
program is respawned with a new identity; a program that keeps failing goes through BACKOFF
with linear delays (1, 2, 3 ... s) and lands in FATAL after ``1 + startretries`` attempts
(:class:`~statemodels.supervisor.model.LinearThenFatal`); start/stop answer with supervisord's
fault codes ``NO_FILE``, ``ALREADY_STARTED`` and ``NOT_RUNNING``.

:class:`SupervisordServer` starts a real ``supervisord -n`` in a temp dir with four programs:
``alpha`` and ``beta`` (sleepers, autostart), ``flaky`` (exits 1 at once, so it never stays up
``startsecs``) and ``ghost`` (its command does not exist).

Example::

    with SupervisordServer.start() as server:
        driver = SupervisordDriver(server)
        driver.run(StopProgram("alpha"))   # Outcome.ok(...)
        driver.run(StopProgram("alpha"))   # Outcome.failed("NOT_RUNNING", ...)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import xmlrpc.client
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import attrs
import psutil

from ..engine import Outcome
from ..errors import MissingBinaryError, ServerError
from ..infra.processes import (
    ProcessIdentity,
    Spawned,
    kill_tree,
    live_identity,
    poll_until,
    scratch_dir,
    send_signal,
    spawn,
    wait_gone,
)
from .commands import KillProgram, ListPrograms, StartProgram, StopProgram
from .driver import boottime
from .system.worker import START_TIME_SLACK, start_boottime

__all__ = ["PROGRAMS", "SupervisordDriver", "SupervisordServer", "fault_names"]

#: program name -> kind ("sleeper", "flaky", "ghost")
PROGRAMS: dict[str, str] = {
    "alpha": "sleeper",
    "beta": "sleeper",
    "flaky": "flaky",
    "ghost": "ghost",
}

# Children die with supervisord (PR_SET_PDEATHSIG survives exec), so a crash leaves nothing.
# Under load a child may reach the prctl only after supervisord was killed; it would then arm
# the signal against its new parent (us, the subreaper) and live on. So after arming it checks
# that its parent is still supervisord, and exits if not.
_DIE_WITH_PARENT = (
    "import ctypes, os; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); "
    "b'supervisord' in open('/proc/' + str(os.getppid()) + '/cmdline', 'rb').read() or os._exit(1)"
)
_SLEEPER = _DIE_WITH_PARENT + "; import time; time.sleep(3600)"
_FLAKY = (
    _DIE_WITH_PARENT + "; import json, os, sys, time; fields = open('/proc/self/stat').read()"
    ".rsplit(')', 1)[1].split(); start = int(fields[19]) / os.sysconf('SC_CLK_TCK'); "
    "rec = {'pid': os.getpid(), 'start': start, 'exit': time.clock_gettime(time.CLOCK_BOOTTIME)}"
    "; open(sys.argv[1], 'a').write(json.dumps(rec) + '\\n'); sys.exit(1)"
)
_LAUNCH = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def fault_names() -> dict[int, str]:
    """supervisord's XML-RPC fault codes by number (``{10: "BAD_NAME", ...}``)."""
    from supervisor.xmlrpc import Faults

    return {v: k for k, v in vars(Faults).items() if k.isupper() and isinstance(v, int)}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's Unix socket, with a timeout on every call."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = _UnixHTTPConnection(self._path, self._timeout)
        self._connection = host, conn
        return conn


def _quote(arg: str) -> str:
    # supervisord splits ``command`` with shlex.
    import shlex

    return shlex.quote(arg)


@attrs.define(eq=False)
class SupervisordServer:
    """A real supervisord in a temp dir. Use :meth:`start`; a context manager."""

    directory: Path
    process: Spawned
    startretries: int
    timeout: float = 5.0
    _stopped: bool = False

    @property
    def socket_path(self) -> str:
        return str(self.directory / "supervisor.sock")

    @property
    def attempts_file(self) -> Path:
        return self.directory / "flaky.attempts"

    @classmethod
    def start(cls, *, startretries: int = 2, timeout: float = 10.0) -> SupervisordServer:
        """Start ``supervisord -n`` with the four programs; wait until alpha and beta run.

        Raises:
            MissingBinaryError: the ``supervisor`` package is not installed.
            ServerError: supervisord did not come up within ``timeout`` seconds.
        """
        try:
            import supervisor  # noqa: F401
        except ImportError:
            raise MissingBinaryError(
                "supervisord is not installed: pip install 'statemodels[supervisord]' "
                "(the 'supervisor' package)"
            ) from None
        directory = Path(scratch_dir("statemodels-supervisord-"))
        conf = directory / "supervisord.conf"
        conf.write_text(cls._config(directory, startretries))
        argv = [sys.executable, "-I", "-S", "-c", _LAUNCH, str(os.getpid()), sys.executable]
        argv += ["-m", "supervisor.supervisord", "-n", "-c", str(conf)]
        try:
            with open(directory / "supervisord.out", "wb") as out:
                proc = spawn(argv, name="supervisord", cwd=directory, stdout=out, stderr=out)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        server = cls(directory=directory, process=proc, startretries=startretries)
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def _config(directory: Path, startretries: int) -> str:
        py = sys.executable
        sleeper = f"{py} -I -S -c {_quote(_SLEEPER)}"
        flaky = f"{py} -I -S -c {_quote(_FLAKY)} {directory / 'flaky.attempts'}"
        common = "stdout_logfile=NONE\nstderr_logfile=NONE\nstopsignal=KILL\nstopwaitsecs=2\n"
        programs = [
            ("alpha", sleeper, "autostart=true\nstartsecs=0\n"),
            ("beta", sleeper, "autostart=true\nstartsecs=0\n"),
            ("flaky", flaky, "autostart=false\nstartsecs=1\n"),
            ("ghost", str(directory / "no-such-program"), "autostart=false\nstartsecs=0\n"),
        ]
        sections = [
            f"[unix_http_server]\nfile={directory / 'supervisor.sock'}\nchmod=0700\n",
            f"[supervisord]\nnodaemon=true\nlogfile={directory / 'supervisord.log'}\n"
            f"pidfile={directory / 'supervisord.pid'}\nchildlogdir={directory}\n"
            "loglevel=info\nminfds=64\nminprocs=32\n",
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        ]
        for name, command, extra in programs:
            sections.append(
                f"[program:{name}]\ncommand={command}\nautorestart=true\n"
                f"startretries={startretries}\n{extra}{common}"
            )
        return "\n".join(sections)

    def rpc(self, timeout: float | None = None) -> Any:
        """A fresh XML-RPC proxy (``proxy.supervisor.getState()``) with a per-call timeout."""
        transport = _UnixTransport(self.socket_path, timeout or self.timeout)
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport)

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if not self.process.alive():
                return True
            with contextlib.suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                infos = self.rpc(1.0).supervisor.getAllProcessInfo()
                return all(
                    i["statename"] == "RUNNING"
                    for i in infos
                    if i["name"] != "flaky" and i["name"] != "ghost"
                )
            return False

        if not poll_until(ready, timeout=timeout) or not self.process.alive():
            log = ""
            with contextlib.suppress(OSError):
                log = (self.directory / "supervisord.log").read_text(errors="replace")[-300:]
            raise ServerError(
                f"supervisord in {str(self.directory)!r} did not come up within {timeout:g}s; "
                f"its log ends: {log!r}"
            )

    def flaky_attempts(self) -> list[dict[str, float]]:
        """The failed starts of ``flaky`` so far: pid, start and exit (``CLOCK_BOOTTIME`` s)."""
        try:
            lines = self.attempts_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        """Stop supervisord and every program; remove the temp dir. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            tree = []
            root = self.process.identity.process()
            if root is not None:
                with contextlib.suppress(psutil.Error):
                    for child in root.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            tree.append(ProcessIdentity(child.pid, child.create_time()))
            # No graceful stop: supervisord would spend a poll cycle or two on it, and nothing of
            # its state matters once the example is over.
            self.process.kill()
            for ident in tree:
                if ident.alive():
                    kill_tree(ident, timeout=2.0)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SupervisordDriver:
    """Carries program commands out on a real supervisord over XML-RPC.

    Fault responses become ``Outcome.failed(<fault name>)`` (``NO_FILE``, ``ALREADY_STARTED``,
    ``NOT_RUNNING`` ...). Identities of RUNNING programs are read from the kernel.
    """

    def __init__(
        self, server: SupervisordServer, *, on_close: Callable[[], None] | None = None
    ) -> None:
        self.server = server
        self._faults = fault_names()
        self._on_close = on_close
        self.marks: dict[str, float] = {}

    def _call(self, fn: Callable[[Any], Any]) -> Outcome:
        try:
            return Outcome.ok(result=fn(self.server.rpc().supervisor))
        except xmlrpc.client.Fault as fault:
            code = self._faults.get(fault.faultCode, str(fault.faultCode))
            return Outcome.failed(code, fault.faultString)
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
            return Outcome.failed("unreachable", repr(exc))

    def run(self, cmd: Any) -> Outcome:
        match cmd:
            case StartProgram(name=name):
                self.marks[name] = boottime()
                # flaky never gets RUNNING: do not wait for it (the machine watches it fail).
                out = self._call(lambda s: s.startProcess(name, PROGRAMS.get(name) != "flaky"))
                if out.error is not None or PROGRAMS.get(name) == "flaky":
                    return out
                return Outcome.ok(identity=self.identity_of(name))
            case StopProgram(name=name):
                return self._call(lambda s: s.stopProcess(name, True))
            case KillProgram(name=name):
                ident = self.identity_of(name)
                if ident is None:
                    return Outcome.failed("no-process", f"{name} has no running process")
                if not send_signal(ident, signal.SIGKILL):
                    return Outcome.failed("no-process", f"{ident} vanished before SIGKILL")
                self.marks[name] = boottime()
                wait_gone(ident, timeout=2.0)
                return Outcome.ok(killed=ident)
            case ListPrograms():
                return Outcome.ok(**self.observe())
        raise TypeError(f"SupervisordDriver cannot run {cmd!r}: not a supervisord command")

    def identity_of(self, name: str) -> ProcessIdentity | None:
        info = self.server.rpc().supervisor.getProcessInfo(name)
        return live_identity(info.get("pid")) if info.get("statename") == "RUNNING" else None

    def observe(self) -> Mapping[str, Any]:
        """``state:<name>`` and ``identity:<name>`` (``None`` unless RUNNING) per program."""
        try:
            infos = self.server.rpc().supervisor.getAllProcessInfo()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error) as exc:
            return {"error": repr(exc)}
        out: dict[str, Any] = {}
        for info in infos:
            name = info["name"]
            out[f"state:{name}"] = info["statename"]
            running = info["statename"] == "RUNNING"
            out[f"identity:{name}"] = live_identity(info.get("pid")) if running else None
        return out

    def flaky_timeline(self) -> dict[str, Any]:
        """Failed start-ups of ``flaky`` since its start was requested, as attempts and gaps."""
        since = self.marks.get("flaky", 0.0)
        crashed = [
            a for a in self.server.flaky_attempts() if a["start"] >= since - START_TIME_SLACK
        ]
        out: dict[str, Any] = {"attempts": len(crashed)}
        previous = since
        for k, attempt in enumerate(crashed, start=1):
            out[f"gap{k}"] = round(attempt["start"] - previous, 4)
            previous = attempt["exit"]
        return out

    def respawn_gap(self, name: str, identity: ProcessIdentity) -> float | None:
        """Seconds from the kill of ``name`` to the start of ``identity``."""
        try:
            return round(start_boottime(identity.pid) - self.marks.get(name, 0.0), 4)
        except OSError:
            return None

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
