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

import http.client
import json
import signal
import sys
import xmlrpc.client
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..engine import Outcome
from ..infra.processes import ProcessIdentity, live_identity, send_signal, wait_gone
from ..infra.supervisord import Supervisord, fault_names
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


def _quote(arg: str) -> str:
    # supervisord splits ``command`` with shlex.
    import shlex

    return shlex.quote(arg)


@attrs.define(eq=False)
class SupervisordServer(Supervisord):
    """A real supervisord in a temp dir running the four programs. Use :meth:`start`."""

    startretries: int = 2

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
        directory = cls.make_directory()
        server = cls.launch(
            cls._programs(directory, startretries),
            wait_running=("alpha", "beta"),
            timeout=timeout,
            directory=directory,
        )
        server.startretries = startretries
        return server

    @staticmethod
    def _programs(directory: Path, startretries: int) -> dict[str, dict[str, str]]:
        py = sys.executable
        sleeper = f"{py} -I -S -c {_quote(_SLEEPER)}"
        flaky = f"{py} -I -S -c {_quote(_FLAKY)} {directory / 'flaky.attempts'}"
        common = {
            "stdout_logfile": "NONE",
            "stderr_logfile": "NONE",
            "stopsignal": "KILL",
            "stopwaitsecs": "2",
        }
        programs = {
            "alpha": (sleeper, "true", "0"),
            "beta": (sleeper, "true", "0"),
            "flaky": (flaky, "false", "1"),
            "ghost": (str(directory / "no-such-program"), "false", "0"),
        }
        return {
            name: {
                "command": command,
                "autorestart": "true",
                "startretries": str(startretries),
                "autostart": autostart,
                "startsecs": startsecs,
                **common,
            }
            for name, (command, autostart, startsecs) in programs.items()
        }

    def flaky_attempts(self) -> list[dict[str, float]]:
        """The failed starts of ``flaky`` so far: pid, start and exit (``CLOCK_BOOTTIME`` s)."""
        try:
            lines = self.attempts_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


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
