"""The bundled orchestrator: the Process Compose REST subset over a Unix socket, for real.

Process Compose cannot be installed on these machines, so this stdlib-only program stands in for
it (as the bundled relay stands in for mcr): it starts a fleet's services in dependency order
(a dependent waits until its dependency answers its health socket), keeps them up (a crash is
restarted after ``backoff`` seconds, at most ``max_restarts`` times, then the process is in
``Error``) and serves what the :class:`~statemodels.reload.orchestrators.ProcessComposeClient`
speaks -- which a real ``process-compose -u SOCKET`` serves too:

- ``GET /processes`` -> ``{"data": [ProcessState, ...]}``
- ``GET /process/{name}`` -> ``ProcessState``: name, status, pid, restarts, exit_code, is_ready
- ``POST /process/restart/{name}``, ``POST /process/start/{name}``, ``PATCH /process/stop/{name}``

A binary that cannot be executed leaves the process in ``Error`` with exit code 127 (what a
shell reports for a missing command). With a token, every request must carry it in
``X-PC-Token-Key``. Run: ``python -I orchestrator.py CONFIG.json`` (see :func:`main`).

It carries the reload domain's seeded bugs (:data:`MUTANTS`), named in the config.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from typing import Any

MUTANTS: dict[str, str] = {
    "stale-binary": "execs a copy of each binary cached at first start, never the new build",
    "restart-noop": "restart answers success and does nothing",
    "shell-wrapper-127": (
        "restart runs the service through 'sh -c exec ./<binary>' from the wrong directory: "
        "sh exits 127, a new pid and no service"
    ),
    "no-reconnect": "dependents are started with a client library that never reconnects",
    "cascade-all": "a restart also restarts every other service, dependents or not",
    "fd-leak": "each restart leaks the read end of a stdout pipe",
    "stale-pid": "the process state keeps the pid of the first start",
    "missing-binary-success": (
        "restart checks the binary first and, when it is missing, keeps the old process and "
        "answers success"
    ),
    "no-reap": "the old process of a restart is killed but never reaped (a zombie per restart)",
}


class Service:
    """One supervised process and its Process Compose state."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.argv: list[str] = list(spec["argv"])
        self.depends_on: list[str] = list(spec.get("depends_on", ()))
        self.health: str | None = spec.get("health_socket")
        self.health_http: str | None = spec.get("health_http")
        self.cwd: str | None = spec.get("working_dir")
        self.lock = threading.RLock()
        self.popen: subprocess.Popen[bytes] | None = None
        self.status = "Pending"
        self.restarts = 0
        self.exit_code = 0
        self.first_pid = 0
        self.is_ready = False
        self.generation = 0

    def state(self, stale_pid: bool) -> dict[str, Any]:
        running = self.popen is not None and self.status == "Running"
        pid = self.popen.pid if running and self.popen is not None else 0
        if stale_pid and running and self.first_pid:
            pid = self.first_pid
        return {
            "name": self.name,
            "namespace": "default",
            "status": self.status,
            "pid": pid,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "is_ready": "Ready" if self.is_ready else "-",
            "IsRunning": running,
        }


class Orchestrator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.mutants = set(config.get("mutants", ()))
        unknown = self.mutants - set(MUTANTS)
        if unknown:
            raise SystemExit(f"unknown mutants {sorted(unknown)}: choose from {sorted(MUTANTS)}")
        self.backoff = float(config.get("backoff", 0.05))
        self.max_restarts = int(config.get("max_restarts", 3))
        self.ready_timeout = float(config.get("ready_timeout", 5.0))
        self.cache_dir = config.get("cache_dir")
        self.services = {s["name"]: Service(s) for s in config["services"]}
        self.leaked: list[int] = []
        self.zombies: list[subprocess.Popen[bytes]] = []

    # -- processes ----------------------------------------------------------------------------

    def _argv(self, svc: Service, via_shell: bool) -> list[str]:
        argv = list(svc.argv)
        if "no-reconnect" in self.mutants and svc.depends_on:
            argv.append("--no-reconnect")
        if "stale-binary" in self.mutants and self.cache_dir:
            cached = os.path.join(self.cache_dir, svc.name)
            if not os.path.exists(cached):
                shutil.copy2(argv[0], cached)
            argv[0] = cached
        if via_shell:
            # The wrapper names the binary relative to the directory it expects to be run from.
            line = " ".join(["exec", "./" + os.path.basename(argv[0]), *argv[1:]])
            return ["/bin/sh", "-c", line]
        return argv

    def start(self, svc: Service, *, via_shell: bool = False) -> None:
        with svc.lock:
            stdout: Any = subprocess.DEVNULL
            if "fd-leak" in self.mutants and svc.generation > 0:
                read_end, write_end = os.pipe()
                self.leaked.append(read_end)  # kept "for the log reader", never read or closed
                stdout = write_end
            try:
                popen = subprocess.Popen(
                    self._argv(svc, via_shell),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.DEVNULL,
                    cwd=svc.cwd,
                    start_new_session=True,
                )
            except OSError:
                svc.popen, svc.status, svc.exit_code, svc.is_ready = None, "Error", 127, False
                return
            finally:
                if stdout is not subprocess.DEVNULL:
                    os.close(stdout)
            svc.generation += 1
            svc.popen, svc.status, svc.exit_code, svc.is_ready = popen, "Running", 0, False
            svc.first_pid = svc.first_pid or popen.pid
        threading.Thread(target=self._watch, args=(svc, popen, via_shell), daemon=True).start()
        threading.Thread(target=self._probe, args=(svc, popen), daemon=True).start()

    def _probe(self, svc: Service, popen: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and svc.popen is popen and popen.poll() is None:
            if svc.health_http is not None:
                healthy = _answers_http(svc.health_http)
            else:
                healthy = svc.health is None or _answers(svc.health)
            if healthy:
                with svc.lock:
                    if svc.popen is popen:
                        svc.is_ready = True
                return
            time.sleep(0.01)

    def _watch(self, svc: Service, popen: subprocess.Popen[bytes], via_shell: bool) -> None:
        # Wait for the exit without reaping, so the no-reap mutant can leave the zombie behind.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOWAIT)
        with svc.lock:
            replaced = svc.popen is not popen
            if replaced and "no-reap" in self.mutants:
                self.zombies.append(popen)
                return
            code = popen.wait()
            if replaced:
                return
            svc.exit_code = code if code >= 0 else 128 - code
            svc.is_ready = False
            svc.popen = None
            if code == 0:
                svc.status = "Completed"
                return
            if svc.restarts >= self.max_restarts:
                svc.status = "Error"
                return
            svc.status = "Restarting"
            svc.restarts += 1
        time.sleep(self.backoff)
        with svc.lock:
            if svc.status == "Restarting":
                self.start(svc, via_shell=via_shell)

    def stop(self, svc: Service) -> None:
        with svc.lock:
            popen = svc.popen
            svc.status = "Terminating"
            svc.popen = None
            svc.is_ready = False
        if popen is not None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            if "no-reap" not in self.mutants:
                try:
                    popen.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(timeout=2.0)
            else:
                _wait_exited(popen.pid, 2.0)
            svc.exit_code = 0
        with svc.lock:
            if svc.status == "Terminating":
                svc.status = "Completed"

    def restart(self, svc: Service) -> None:
        if "restart-noop" in self.mutants:
            return
        if "missing-binary-success" in self.mutants and not os.path.exists(svc.argv[0]):
            return
        targets = [svc]
        if "cascade-all" in self.mutants:
            targets += [s for s in self.services.values() if s is not svc]
        for each in targets:
            self.stop(each)
        for each in targets:
            self.start(each, via_shell="shell-wrapper-127" in self.mutants)

    def start_all(self) -> None:
        started: set[str] = set()
        while len(started) < len(self.services):
            progressed = False
            for svc in self.services.values():
                if svc.name in started or not set(svc.depends_on) <= started:
                    continue
                for dep in svc.depends_on:  # a dependent waits until its dependency is healthy
                    self._wait_ready(self.services[dep])
                self.start(svc)
                started.add(svc.name)
                progressed = True
            if not progressed:
                raise SystemExit(f"dependency cycle among {sorted(set(self.services) - started)}")

    def _wait_ready(self, svc: Service) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and not svc.is_ready:
            time.sleep(0.005)

    def shutdown(self) -> None:
        for svc in self.services.values():
            with contextlib.suppress(Exception):
                self.stop(svc)


def _answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(path)
            sock.sendall(b"STATUS\n")
            return sock.recv(64).startswith(b"{")
    except OSError:
        return False


def _answers_http(url: str) -> bool:
    """A health endpoint over HTTP (nats-server's ``/healthz``) answers 200."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=0.5) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):
        return False


def _wait_exited(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            return
        if info is not None:
            return
        time.sleep(0.005)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _handler(orch: Orchestrator, token: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self) -> str:
            return "unix"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request log per poll would cost more than the request

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if token is not None and self.headers.get("X-PC-Token-Key") != token:
                self._send(401, {"error": "invalid or missing X-PC-Token-Key"})
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            stale = "stale-pid" in orch.mutants
            if method == "GET" and parts == ["processes"]:
                states = [s.state(stale) for s in orch.services.values()]
                self._send(200, {"data": states})
                return
            if method == "GET" and parts == ["live"]:
                self._send(200, {"status": "alive", "pid": os.getpid()})
                return
            name = parts[-1] if parts else ""
            svc = orch.services.get(name)
            if len(parts) >= 2 and svc is None:
                self._send(400, {"error": f"process {name} does not exist"})
                return
            if method == "GET" and parts[:1] == ["process"] and svc is not None:
                self._send(200, svc.state(stale))
            elif method == "POST" and parts[:2] == ["process", "restart"] and svc is not None:
                orch.restart(svc)
                self._send(200, {"name": name})
            elif method == "POST" and parts[:2] == ["process", "start"] and svc is not None:
                if svc.popen is not None and svc.status == "Running":
                    self._send(400, {"error": f"process {name} is already running"})
                    return
                orch.start(svc)
                self._send(200, {"name": name})
            elif method == "PATCH" and parts[:2] == ["process", "stop"] and svc is not None:
                if svc.popen is None:
                    self._send(400, {"error": f"process {name} is not running"})
                    return
                orch.stop(svc)
                self._send(200, {"name": name})
            else:
                self._send(404, {"error": f"no route {method} {self.path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


def main(argv: list[str]) -> int:
    """``orchestrator.py CONFIG.json``: config keys ``socket`` (path), ``services`` (name, argv,
    depends_on, health_socket or health_http, working_dir), optional ``token``, ``mutants``,
    ``backoff``, ``max_restarts``, ``ready_timeout``, ``cache_dir``. Stops its services on
    SIGTERM."""
    with open(argv[1]) as fh:
        config = json.load(fh)
    orch = Orchestrator(config)
    path = config["socket"]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = _Server(path, _handler(orch, config.get("token")))
    os.chmod(path, 0o600)

    def on_term(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    orch.start_all()
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        orch.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
