"""A real supervisord in a temp dir, driven over XML-RPC on its Unix socket.

Shared by every domain that puts programs under supervisord (the supervisor machine's four
programs, the reload machine's fleet). :meth:`Supervisord.launch` writes the config, starts
``supervisord -n`` through a launcher that makes it die with the test process, and waits until
the programs named ``wait_running`` are RUNNING. :meth:`Supervisord.rpc` returns a proxy with a
timeout on every call; :meth:`Supervisord.relaunch` starts a fresh supervisord on the same
config after the old one was killed (the socket path stays the same).

Example::

    programs = {"sleeper": {"command": "/bin/sleep 3600", "autostart": "true"}}
    with Supervisord.launch(programs, wait_running=["sleeper"]) as sv:
        sv.rpc().supervisor.getProcessInfo("sleeper")["statename"]   # 'RUNNING'
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import sys
import xmlrpc.client
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Self

import attrs
import psutil

from ..errors import MissingBinaryError, ServerError
from .processes import ProcessIdentity, Spawned, kill_tree, poll_until, scratch_dir, spawn

__all__ = ["Supervisord", "UnixTransport", "die_with_us", "fault_names", "supervisord_config"]

# supervisord dies with the test process (PR_SET_PDEATHSIG survives exec), and refuses to start
# if the test process is already gone.
_LAUNCH = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def die_with_us(argv: list[str]) -> list[str]:
    """``argv`` run through a launcher that makes it die with this process (SIGKILL on our
    death, set before exec), and that refuses to start if we are already gone."""
    return [sys.executable, "-I", "-S", "-c", _LAUNCH, str(os.getpid()), *argv]


def fault_names() -> dict[int, str]:
    """supervisord's XML-RPC fault codes by number (``{10: "BAD_NAME", ...}``)."""
    from supervisor.xmlrpc import Faults

    return {v: k for k, v in vars(Faults).items() if k.isupper() and isinstance(v, int)}


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (supervisord's XML-RPC, Process Compose's ``-u`` socket)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's Unix socket, with a timeout on every call."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = UnixHTTPConnection(self._path, self._timeout)
        self._connection = host, conn
        return conn


def supervisord_config(directory: Path, programs: Mapping[str, Mapping[str, str]]) -> str:
    """A supervisord.conf serving ``directory/supervisor.sock`` with ``programs``
    (name -> option -> value, e.g. ``{"command": "...", "autorestart": "true"}``)."""
    sections = [
        f"[unix_http_server]\nfile={directory / 'supervisor.sock'}\nchmod=0700\n",
        f"[supervisord]\nnodaemon=true\nlogfile={directory / 'supervisord.log'}\n"
        f"pidfile={directory / 'supervisord.pid'}\nchildlogdir={directory}\n"
        "loglevel=info\nminfds=64\nminprocs=32\n",
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
    ]
    for name, options in programs.items():
        body = "".join(f"{key}={value}\n" for key, value in options.items())
        sections.append(f"[program:{name}]\n{body}")
    return "\n".join(sections)


@attrs.define(eq=False)
class Supervisord:
    """A real supervisord in a temp dir. Use :meth:`launch`; a context manager."""

    directory: Path
    process: Spawned
    timeout: float = 5.0
    wait_running: tuple[str, ...] = ()
    _stopped: bool = False

    @property
    def socket_path(self) -> str:
        return str(self.directory / "supervisor.sock")

    @property
    def config_path(self) -> Path:
        return self.directory / "supervisord.conf"

    @staticmethod
    def make_directory() -> Path:
        """A fresh temp dir for a supervisord (in /dev/shm when there is one)."""
        _require_supervisor()
        return Path(scratch_dir("statemodels-supervisord-"))  # marked: swept if the run dies

    @classmethod
    def launch(
        cls,
        programs: Mapping[str, Mapping[str, str]],
        *,
        wait_running: Collection[str] = (),
        timeout: float = 10.0,
        directory: Path | None = None,
    ) -> Self:
        """Write the config, start ``supervisord -n``; wait until ``wait_running`` are RUNNING.

        Raises:
            MissingBinaryError: the ``supervisor`` package is not installed.
            ServerError: supervisord did not come up within ``timeout`` seconds.
        """
        directory = directory or cls.make_directory()
        try:
            (directory / "supervisord.conf").write_text(supervisord_config(directory, programs))
            proc = cls._spawn(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        server = cls(directory=directory, process=proc, wait_running=tuple(wait_running))
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def _spawn(directory: Path) -> Spawned:
        conf = str(directory / "supervisord.conf")
        argv = die_with_us([sys.executable, "-m", "supervisor.supervisord", "-n", "-c", conf])
        with open(directory / "supervisord.out", "ab") as out:
            return spawn(argv, name="supervisord", cwd=directory, stdout=out, stderr=out)

    def relaunch(self, timeout: float = 10.0) -> None:
        """Start a fresh supervisord on the same config (after the old one died or was killed)."""
        if self.process.alive():
            self.process.kill()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.process = self._spawn(self.directory)
        self._wait_ready(timeout)

    def rpc(self, timeout: float | None = None) -> Any:
        """A fresh XML-RPC proxy (``proxy.supervisor.getState()``) with a per-call timeout."""
        transport = UnixTransport(self.socket_path, timeout or self.timeout)
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport)

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if not self.process.alive():
                return True
            with contextlib.suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                infos = self.rpc(1.0).supervisor.getAllProcessInfo()
                return all(
                    i["statename"] == "RUNNING" for i in infos if i["name"] in self.wait_running
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

    def pids(self) -> set[int]:
        return {self.process.pid}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _require_supervisor() -> None:
    try:
        import supervisor  # noqa: F401
    except ImportError:
        raise MissingBinaryError(
            "supervisord is not installed: pip install 'statemodels[supervisord]' "
            "(the 'supervisor' package)"
        ) from None
