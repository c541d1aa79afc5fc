"""A user's own fleet: a TOML description plus the orchestrator that already runs it.

The machine then builds and reloads *your* services through *your* orchestrator and judges them
as it judges the bundled fleet: new identity, ``sha256(/proc/<pid>/exe)`` equal to the version
file's checksum, healthy within the bound, the other services untouched, the orchestrator up.
Failure commands (deleting binaries, killing the orchestrator) are never drawn against a
user's fleet. Example ``fleet.toml``::

    [orchestrator]
    kind = "process-compose"          # or "supervisord"
    socket = "pc/.pc.sock"            # or url = "http://localhost:8080" (process-compose)

    [services.nats]
    build = "task nats:bin:build"     # a shell command, run in the fleet file's directory
    binary = "nats/.bin/nats-server"
    version_file = "nats/.bin/.version"   # commit: / timestamp: / checksum: lines
    health = "tcp://127.0.0.1:4222"   # or unix:///path.sock or http://host:port/path

    [services.liftbridge]
    build = "task liftbridge:bin:build"
    binary = "liftbridge/.bin/liftbridge"
    version_file = "liftbridge/.bin/.version"
    depends_on = ["nats"]

Options (environment variables for now): ``STATEMODELS_RELOAD_FLEET`` (the TOML file),
``STATEMODELS_RELOAD_ORCHESTRATOR`` (``supervisord:SOCKET``, ``process-compose:SOCKET`` or
``process-compose:URL``; overrides the file's), ``STATEMODELS_RELOAD_TOKEN`` (Process Compose's
``X-PC-Token-Key``; never printed). Every problem is a one-line error naming what to fix.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigurationError, ServerError
from ..infra.processes import ProcessIdentity
from .orchestrators import (
    Orchestrator,
    OrchestratorError,
    ProcessComposeClient,
    SupervisordClient,
)
from .system.fleet import BuildRecord, ServiceSpec, parse_version_file

__all__ = ["AttachedOrchestrator", "UserFleet", "load_user_fleet", "user_fleet_machine"]

ENV_FLEET = "STATEMODELS_RELOAD_FLEET"
ENV_ORCHESTRATOR = "STATEMODELS_RELOAD_ORCHESTRATOR"
ENV_TOKEN = "STATEMODELS_RELOAD_TOKEN"


@attrs.frozen
class UserService:
    name: str
    build: str
    binary: Path
    version_file: Path
    health: str | None
    depends_on: tuple[str, ...]


@attrs.define(eq=False)
class UserFleet:
    """A user's services as the reload driver needs them (see the module docstring)."""

    root: Path
    entries: dict[str, UserService]
    build_timeout: float = 600.0
    reports = False

    @property
    def services(self) -> tuple[ServiceSpec, ...]:
        return tuple(ServiceSpec(s.name, s.depends_on) for s in self.entries.values())

    def binary(self, name: str) -> Path:
        return self.entries[name].binary

    def read_version(self, name: str) -> dict[str, str]:
        try:
            return parse_version_file(self.entries[name].version_file.read_text())
        except FileNotFoundError:
            return {}

    def build(self, name: str) -> BuildRecord:
        """Run the service's build command.

        Raises:
            ServerError: it exited non-zero or ran over ``build_timeout`` (one line).
        """
        entry = self.entries[name]
        try:
            done = subprocess.run(
                entry.build,
                shell=True,
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=self.build_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServerError(
                f"the build command of {name!r} ran over {self.build_timeout:g}s: {entry.build!r}"
            ) from None
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            raise ServerError(
                f"the build command of {name!r} failed (exit {done.returncode}): "
                f"{output[-1][:120]} -- fix {entry.build!r} in the fleet file"
            )
        version = self.read_version(name)
        return BuildRecord(
            version.get("commit", ""), version.get("timestamp", ""), version.get("checksum", "")
        )

    def break_binary(self, name: str, how: str = "delete") -> None:
        raise ConfigurationError(
            f"refusing to {how} the binary of {name!r} in your own fleet: failure commands run "
            "only against the bundled fleet"
        )

    def report(self, name: str, timeout: float = 0.5) -> dict[str, Any] | None:
        return None

    def healthy(self, name: str, timeout: float = 0.5) -> bool:
        """The service's health check (``tcp://``, ``unix://``, ``http(s)://``); none: True."""
        target = self.entries[name].health
        if target is None:
            return True
        url = urllib.parse.urlsplit(target)
        try:
            if url.scheme == "tcp":
                with socket.create_connection((url.hostname, url.port or 0), timeout=timeout):
                    return True
            if url.scheme == "unix":
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(url.path)
                    return True
            with urllib.request.urlopen(target, timeout=timeout) as response:
                return bool(200 <= response.status < 400)
        except OSError:
            return False


@attrs.define(eq=False)
class AttachedOrchestrator:
    """An orchestrator the user runs: driven, never started, killed or stopped by us."""

    client: Orchestrator

    def identity(self) -> ProcessIdentity | None:
        return self.client.identity()

    def pids(self) -> set[int]:
        return set()

    def kill(self) -> None:
        raise ConfigurationError("refusing to kill your orchestrator: failure commands are off")

    def relaunch(self) -> None:
        raise ConfigurationError("refusing to restart your orchestrator: failure commands are off")

    def stop(self) -> None:
        pass  # not ours to stop


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(" ".join(message.split()))


def _orchestrator(spec: str, root: Path, token: str | None) -> Orchestrator:
    kind, sep, where = spec.partition(":")
    if not sep or kind not in ("supervisord", "process-compose") or not where:
        raise _fail(
            f"orchestrator {spec!r}: write supervisord:SOCKET, process-compose:SOCKET or "
            f"process-compose:http://HOST:PORT (in the fleet file or {ENV_ORCHESTRATOR})"
        )
    if kind == "supervisord":
        return SupervisordClient(str(root / where))
    if where.startswith(("http://", "https://")):
        return ProcessComposeClient(url=where, token=token)
    return ProcessComposeClient.unix(str(root / where), token=token)


def load_user_fleet(
    path: str | os.PathLike[str] | None = None,
    *,
    orchestrator: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[UserFleet, AttachedOrchestrator]:
    """Read a fleet file; check it against the running orchestrator.

    Raises:
        ConfigurationError: missing or malformed file, unknown service (in ``depends_on`` or not
            known to the orchestrator), unreachable orchestrator -- each one line.
    """
    env = os.environ if env is None else env
    chosen = path if path is not None else env.get(ENV_FLEET)
    if not chosen:
        raise _fail(f"no fleet file: set {ENV_FLEET}=fleet.toml (see statemodels.reload.userfleet)")
    file = Path(chosen)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise _fail(f"fleet file {str(file)!r} does not exist: fix {ENV_FLEET}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(f"fleet file {str(file)!r} is not valid TOML: {exc}") from None
    root = file.resolve().parent
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise _fail(f"fleet file {str(file)!r} has no [services.<name>] tables")
    entries: dict[str, UserService] = {}
    for name, body in services.items():
        missing = [k for k in ("build", "binary", "version_file") if k not in body]
        if missing:
            raise _fail(f"service {name!r} in {str(file)!r} lacks {', '.join(missing)}")
        entries[name] = UserService(
            name=name,
            build=str(body["build"]),
            binary=root / body["binary"],
            version_file=root / body["version_file"],
            health=body.get("health"),
            depends_on=tuple(body.get("depends_on", ())),
        )
    for entry in entries.values():
        for dep in entry.depends_on:
            if dep not in entries:
                raise _fail(
                    f"service {entry.name!r} depends on unknown service {dep!r}: "
                    f"known are {', '.join(sorted(entries))}"
                )
    section = data.get("orchestrator", {})
    spec = orchestrator or env.get(ENV_ORCHESTRATOR)
    if spec is None:
        where = section.get("socket") or section.get("url") or ""
        spec = f"{section.get('kind', '')}:{where}"
    client = _orchestrator(spec, root, env.get(ENV_TOKEN) or None)
    try:
        states = client.states()
    except OrchestratorError as exc:
        raise _fail(f"the orchestrator of {str(file)!r} is unreachable: {exc}") from None
    unknown = sorted(set(entries) - set(states))
    if unknown:
        raise _fail(
            f"service {unknown[0]!r} of {str(file)!r} is unknown to {client.kind} at "
            f"{client.endpoint} (it runs {', '.join(sorted(states))})"
        )
    return UserFleet(root, entries), AttachedOrchestrator(client)


def user_fleet_machine(
    path: str | os.PathLike[str] | None = None, *, orchestrator: str | None = None, **options: Any
) -> Any:
    """A :class:`~statemodels.reload.machine.ReloadMachine` on your fleet (failures off).

    Every service the last example stopped is started again first, so each example begins with
    the whole fleet running, as the model assumes.
    """
    from .driver import ReloadDriver
    from .machine import ReloadMachine
    from .system.launch import wait_all_running

    fleet, attached = load_user_fleet(path, orchestrator=orchestrator)
    client = attached.client
    try:
        for name, state in client.states().items():
            if name in fleet.entries and not state.running:
                client.start(name)
        wait_all_running(client, fleet.entries, timeout=30.0)
    except OrchestratorError as exc:
        raise _fail(f"could not start your fleet through {client.kind}: {exc}") from None
    driver = ReloadDriver(fleet, attached)
    return ReloadMachine(driver, orchestrator=client.kind, failures=False, **options)
