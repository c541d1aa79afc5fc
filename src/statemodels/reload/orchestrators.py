"""The two orchestrators a fleet can run under, one client interface for both.

- :class:`ProcessComposeClient` speaks Process Compose's REST API (``GET /processes``,
  ``GET /process/{name}``, ``POST /process/restart/{name}``, ``POST /process/start/{name}``,
  ``PATCH /process/stop/{name}``) over its ``-u`` Unix socket or TCP, with the optional
  ``X-PC-Token-Key``. It drives a real ``process-compose`` and the bundled orchestrator alike.
- :class:`SupervisordClient` speaks supervisord's XML-RPC on its Unix socket; a restart is what
  ``supervisorctl restart`` does: ``stopProcess`` then ``startProcess``, both waiting.

Every call has a timeout and fails with :class:`OrchestratorError` -- a stable ``code``
(``unreachable``, ``timeout``, an HTTP status, a supervisord fault name) and a one-line message --
never a hang. The orchestrator's own identity is read from the kernel through the socket's peer
credentials (``SO_PEERCRED``), so "the orchestrator stayed up" is a fact, not a claim.

Example::

    client = ProcessComposeClient.unix("/tmp/pc.sock")
    client.restart("nats")
    client.states()["nats"]       # ServiceState(name='nats', status='Running', pid=4711, ...)
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import urllib.parse
import xmlrpc.client
from typing import Any, Protocol

import attrs

from ..errors import StatemodelsError
from ..infra.processes import ProcessIdentity, live_identity
from ..infra.supervisord import UnixHTTPConnection, UnixTransport, fault_names

__all__ = [
    "Orchestrator",
    "OrchestratorError",
    "ProcessComposeClient",
    "ServiceState",
    "SupervisordClient",
    "peer_identity",
]


class OrchestratorError(StatemodelsError):
    """An orchestrator call failed; ``code`` is stable, the message is one line."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(" ".join(message.split()))


@attrs.frozen
class ServiceState:
    """One service as its orchestrator reports it. ``running`` is the orchestrator's claim."""

    name: str
    status: str
    pid: int
    restarts: int
    exit_code: int | None
    running: bool


class Orchestrator(Protocol):
    """What the reload driver needs of an orchestrator."""

    kind: str
    endpoint: str

    def states(self) -> dict[str, ServiceState]: ...

    def restart(self, name: str, timeout: float | None = None) -> None: ...

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def identity(self) -> ProcessIdentity | None: ...


def peer_identity(path: str, timeout: float = 1.0) -> ProcessIdentity | None:
    """The identity of the process serving the Unix socket ``path`` (None if nobody does)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, _uid, _gid = struct.unpack("3i", raw)
    return live_identity(pid)


class ProcessComposeClient:
    """Process Compose's REST API over a Unix socket (``unix``) or TCP (``url``)."""

    kind = "process-compose"

    def __init__(
        self,
        *,
        socket_path: str | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 5.0,
        restart_timeout: float = 15.0,
    ) -> None:
        if (socket_path is None) == (url is None):
            raise ValueError("ProcessComposeClient needs exactly one of socket_path= or url=")
        self.socket_path = socket_path
        self.url = urllib.parse.urlsplit(url) if url else None
        self.endpoint = socket_path or str(url)
        self.token = token
        self.timeout = timeout
        self.restart_timeout = restart_timeout

    @classmethod
    def unix(cls, path: str, **options: Any) -> ProcessComposeClient:
        return cls(socket_path=path, **options)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return UnixHTTPConnection(self.socket_path, timeout)
        assert self.url is not None
        return http.client.HTTPConnection(
            self.url.hostname or "localhost", self.url.port, timeout=timeout
        )

    def request(self, method: str, path: str, *, timeout: float | None = None) -> Any:
        """One request; the decoded JSON answer. Raises :class:`OrchestratorError`."""
        conn = self._connection(timeout or self.timeout)
        headers = {"Content-Length": "0"}
        if self.token is not None:
            headers["X-PC-Token-Key"] = self.token
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            raise OrchestratorError(
                "timeout",
                f"Process Compose at {self.endpoint} did not answer {method} {path} "
                f"within {timeout or self.timeout:g}s",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise OrchestratorError(
                "unreachable",
                f"Process Compose at {self.endpoint} is unreachable "
                f"({type(exc).__name__}: {exc}); is it running? restart it and retry",
            ) from None
        finally:
            conn.close()
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = {"error": body[:80].decode(errors="replace")}
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise OrchestratorError(
                f"http-{response.status}", f"{method} {path}: {message or response.reason}"
            )
        return data

    def states(self) -> dict[str, ServiceState]:
        data = self.request("GET", "/processes")
        items = data.get("data", []) if isinstance(data, dict) else data
        return {item["name"]: self._state(item) for item in items}

    @staticmethod
    def _state(item: dict[str, Any]) -> ServiceState:
        status = str(item.get("status", ""))
        return ServiceState(
            name=str(item["name"]),
            status=status,
            pid=int(item.get("pid") or 0),
            restarts=int(item.get("restarts") or 0),
            exit_code=item.get("exit_code"),
            running=status == "Running",
        )

    def restart(self, name: str, timeout: float | None = None) -> None:
        self.request("POST", f"/process/restart/{name}", timeout=timeout or self.restart_timeout)

    def start(self, name: str) -> None:
        self.request("POST", f"/process/start/{name}", timeout=self.restart_timeout)

    def stop(self, name: str) -> None:
        self.request("PATCH", f"/process/stop/{name}", timeout=self.restart_timeout)

    def identity(self) -> ProcessIdentity | None:
        return peer_identity(self.socket_path) if self.socket_path else None


class SupervisordClient:
    """supervisord's XML-RPC interface on its Unix socket."""

    kind = "supervisord"

    def __init__(self, socket_path: str, *, timeout: float = 5.0, restart_timeout: float = 15.0):
        self.socket_path = socket_path
        self.endpoint = socket_path
        self.timeout = timeout
        self.restart_timeout = restart_timeout
        self._faults = fault_names()

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            "http://localhost", transport=UnixTransport(self.socket_path, timeout or self.timeout)
        )
        try:
            return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault as fault:
            code = self._faults.get(fault.faultCode, str(fault.faultCode))
            raise OrchestratorError(
                code, f"supervisord {method}{args!r}: {code} {fault.faultString}"
            ) from None
        except TimeoutError:
            raise OrchestratorError(
                "timeout",
                f"supervisord at {self.socket_path} did not answer {method} within "
                f"{timeout or self.timeout:g}s",
            ) from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
            raise OrchestratorError(
                "unreachable",
                f"supervisord at {self.socket_path} is unreachable "
                f"({type(exc).__name__}: {exc}); is it running? restart it and retry",
            ) from None

    def states(self) -> dict[str, ServiceState]:
        out = {}
        for info in self._call("getAllProcessInfo"):
            running = info["statename"] == "RUNNING"
            out[info["name"]] = ServiceState(
                name=info["name"],
                status=info["statename"],
                pid=int(info.get("pid") or 0) if running else 0,
                restarts=0,  # supervisord does not count restarts; its state shows a crash loop
                exit_code=info.get("exitstatus"),
                running=running,
            )
        return out

    def restart(self, name: str, timeout: float | None = None) -> None:
        try:
            self._call("stopProcess", name, True, timeout=timeout or self.restart_timeout)
        except OrchestratorError as exc:
            if exc.code != "NOT_RUNNING":
                raise
        self._call("startProcess", name, True, timeout=timeout or self.restart_timeout)

    def start(self, name: str) -> None:
        self._call("startProcess", name, True, timeout=self.restart_timeout)

    def stop(self, name: str) -> None:
        self._call("stopProcess", name, True, timeout=self.restart_timeout)

    def identity(self) -> ProcessIdentity | None:
        return peer_identity(self.socket_path)
