"""The bundled fleet: small C services, built for real, each build proven by its bytes.

A **build** of a service compiles ``service.c`` with the build's commit and timestamp compiled in
and writes, beside the binary, the seeds' version file::

    commit: 3f9c2a1b0d4e
    timestamp: 2026-12-01T16:25:00.123456Z
    checksum: <sha256 of the binary>

Two ways to build, both real: ``compile`` runs ``cc`` per build (~0.3 s, more on a loaded
machine); ``stamp`` (the default) compiles one template per fleet with placeholder build strings
and makes each build a copy of it with the commit and timestamp written into those bytes -- as a
release pipeline stamps a version into a linked binary. Either way the bytes differ per build, so
``sha256(/proc/<pid>/exe)`` and the commit the process reports prove which build runs.

Both land atomically: each is written under a temporary name in the same directory and renamed
over the old one (writing a running binary in place fails with ETXTBSY, and a reader must never
see a half-written file). The binary goes first, so the version file always describes the binary
next to it. Layout, as the seeds keep it: ``<fleet>/<service>/.bin/<service>`` and
``<fleet>/<service>/.bin/.version``; each service serves ``<fleet>/run/<service>.sock``.

Example::

    with BundledFleet.create() as fleet:
        record = fleet.build("broker")        # BuildRecord(commit=..., timestamp=..., checksum=...)
        fleet.argv("relay")                   # [.../relay/.bin/relay, --name, relay, --socket, ...]
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import attrs
import psutil

from ...engine import check_mutants
from ...errors import MissingBinaryError, ServerError
from ...infra.processes import (
    ProcessIdentity,
    exe_path,
    kill_tree,
    live_descendants,
    scratch_dir,
    sha256_file,
)

__all__ = [
    "BUILDER_MUTANTS",
    "BUNDLED_SERVICES",
    "BuildRecord",
    "BundledFleet",
    "FleetFiles",
    "ServiceSpec",
    "parse_version_file",
]

SOURCE = Path(__file__).with_name("service.c")

# Placeholders compiled into the template (40 bytes each): a stamp overwrites them in place,
# NUL-padded, so the C strings end where the stamp does.
_COMMIT_SLOT = b"@SMCOMMIT@" + b"@" * 30
_TIME_SLOT = b"@SMTIMESTAMP@" + b"@" * 27

#: Seeded bugs of the bundled build step (the orchestrator's are in ``orchestrator.MUTANTS``).
BUILDER_MUTANTS: dict[str, str] = {
    "torn-build": (
        "the version file is renamed in first and the binary then copied in place; the copy "
        "fails with ETXTBSY while the old build runs and the error is swallowed ('|| true')"
    ),
    "wrong-checksum": "the checksum is taken of the binary on disk before the new one replaces it",
    "stale-timestamp": "the timestamp is computed once and reused by every later build",
}


@attrs.frozen
class ServiceSpec:
    """One service of a fleet: its name and the services it holds a connection to."""

    name: str
    depends_on: tuple[str, ...] = ()


#: broker <- relay (the relay holds a connection to the broker); cache stands alone.
BUNDLED_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("broker"),
    ServiceSpec("relay", ("broker",)),
    ServiceSpec("cache"),
)


@attrs.frozen
class BuildRecord:
    """What one build wrote into the version file."""

    commit: str
    timestamp: str
    checksum: str


def parse_version_file(text: str) -> dict[str, str]:
    """``commit: x`` lines into ``{"commit": "x", ...}`` (unknown keys kept, blanks skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(template: bytes, commit: str, timestamp: str) -> bytes:
    """The template with the build's commit and timestamp written over the placeholders."""
    out = template
    for slot, value in ((_COMMIT_SLOT, commit), (_TIME_SLOT, timestamp)):
        raw = value.encode()
        if len(raw) >= len(slot):
            raise ValueError(f"build stamp {value!r} is longer than {len(slot) - 1} bytes")
        out = out.replace(slot, raw + b"\0" * (len(slot) - len(raw)), 1)
    return out


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FleetFiles:
    """What every bundled fleet keeps on disk per service, and does with it.

    Each service has ``<directory>/<name>/.bin/<name>`` (its current build) and ``.version``
    beside it (the seeds' format). The C fleet and the NATS fleet differ in how they build and
    what their processes report, not in where builds live or how a build is broken.
    Subclasses provide ``directory``, ``services``, ``leftovers()`` and ``remove()``.
    """

    directory: Path
    services: tuple[ServiceSpec, ...]

    def spec(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def bin_dir(self, name: str) -> Path:
        return self.directory / name / ".bin"

    def binary(self, name: str) -> Path:
        return self.bin_dir(name) / name

    def version_file(self, name: str) -> Path:
        return self.bin_dir(name) / ".version"

    def read_version(self, name: str) -> dict[str, str]:
        """The version file of ``name`` as a dict (empty if it is missing)."""
        try:
            return parse_version_file(self.version_file(name).read_text())
        except FileNotFoundError:
            return {}

    def break_binary(self, name: str, how: str = "delete") -> None:
        """Delete (``delete``) or overwrite with garbage (``corrupt``) the binary of ``name``.

        Corruption goes through a rename too: the running build keeps its own inode.
        """
        target = self.binary(name)
        if how == "delete":
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            return
        tmp = target.with_name(f".corrupt-{name}")
        tmp.write_bytes(b"\x7fELF-truncated-download")
        tmp.chmod(0o755)
        os.replace(tmp, target)

    def kill_leftovers(self) -> None:
        for proc in self.leftovers():
            with contextlib.suppress(psutil.Error):
                kill_tree(ProcessIdentity(proc.pid, proc.create_time()), timeout=2.0)

    def leftovers(self) -> list[psutil.Process]:
        """Our descendants that belong to this fleet (orphans of a killed orchestrator)."""
        out = []
        for proc in live_descendants():
            with contextlib.suppress(OSError, psutil.Error):
                if self._is_ours(proc):
                    out.append(proc)
        return out

    def _is_ours(self, proc: psutil.Process) -> bool:
        """A process runs one of this fleet's builds (its exe lives under the directory)."""
        return exe_path(proc.pid).startswith(str(self.directory))

    def remove(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@attrs.define(eq=False)
class BundledFleet(FleetFiles):
    """A fleet directory with its services, builds and sockets. Use :meth:`create`."""

    directory: Path
    services: tuple[ServiceSpec, ...] = BUNDLED_SERVICES
    mutants: frozenset[str] = frozenset()
    cc: str = "cc"
    mode: str = "stamp"
    _template: bytes | None = None
    _counter: itertools.count[int] = attrs.field(factory=itertools.count)
    _first_timestamp: str | None = None
    _removed: bool = False

    @classmethod
    def create(
        cls,
        services: Sequence[ServiceSpec] = BUNDLED_SERVICES,
        *,
        mutants: Iterable[str] = (),
        mode: str = "stamp",
    ) -> BundledFleet:
        """A fresh fleet directory (in /dev/shm when there is one), every service built once.

        Raises:
            MissingBinaryError: no C compiler (``cc``) on PATH.
        """
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise MissingBinaryError(
                "no C compiler for the bundled reload fleet: apt-get install gcc "
                "(or point the fleet at your own with STATEMODELS_RELOAD_FLEET)"
            )
        directory = Path(scratch_dir("statemodels-reload-"))  # marked: swept if the run dies
        if mode not in ("stamp", "compile"):
            raise ValueError(f"build mode {mode!r}: choose 'stamp' or 'compile'")
        fleet = cls(directory, tuple(services), check_mutants(mutants, BUILDER_MUTANTS), cc, mode)
        try:
            (directory / "run").mkdir()
            if mode == "stamp":
                fleet._template = fleet._compile_template()
            for spec in fleet.services:
                fleet.bin_dir(spec.name).mkdir(parents=True)
                fleet.build(spec.name)
        except BaseException:
            fleet.remove()
            raise
        return fleet

    # -- paths --------------------------------------------------------------------------------

    def socket(self, name: str) -> Path:
        return self.directory / "run" / f"{name}.sock"

    def argv(self, name: str, *, no_reconnect: bool = False) -> list[str]:
        """The command line that runs ``name``'s current build."""
        argv = [str(self.binary(name)), "--name", name, "--socket", str(self.socket(name))]
        argv += ["--watch-pid", str(os.getpid())]  # never outlive the test run
        for dep in self.spec(name).depends_on[:1]:  # the C service holds one dependency
            argv += ["--depends", str(self.socket(dep)), "--depends-name", dep]
        if no_reconnect and self.spec(name).depends_on:
            argv.append("--no-reconnect")
        return argv

    def orchestrated(self) -> list[dict[str, Any]]:
        """The services as the bundled orchestrator's config lists them."""
        home = str(self.directory / "pc")
        return [
            {
                "name": spec.name,
                "argv": self.argv(spec.name),
                "depends_on": list(spec.depends_on),
                "health_socket": str(self.socket(spec.name)),
                "working_dir": home,
            }
            for spec in self.services
        ]

    # -- builds -------------------------------------------------------------------------------

    def build(self, name: str, *, honest: bool = False) -> BuildRecord:
        """A new build of ``name``: binary, then version file, each written by rename.

        ``honest`` ignores the builder's mutants: for the harness repairing the fleet between
        examples, which is not the system under test.

        Raises:
            ServerError: the compiler failed (its first error line is in the message).
        """
        n = next(self._counter)
        commit = hashlib.sha1(f"{self.directory}:{name}:{n}".encode()).hexdigest()[:12]
        timestamp = _now_iso()
        mutants = frozenset() if honest else self.mutants
        if "stale-timestamp" in mutants:
            self._first_timestamp = self._first_timestamp or timestamp
            timestamp = self._first_timestamp
        bindir = self.bin_dir(name)
        fd, tmp = tempfile.mkstemp(prefix=f".build-{name}-", dir=bindir)
        os.close(fd)
        try:
            if self._template is not None:
                Path(tmp).write_bytes(_stamp(self._template, commit, timestamp))
            else:
                self._compile(tmp, commit, timestamp)
            os.chmod(tmp, 0o755)
            target = self.binary(name)
            checksum = sha256_file(tmp)
            if "wrong-checksum" in mutants and target.exists():
                checksum = sha256_file(target)
            record = BuildRecord(commit, timestamp, checksum)
            if "torn-build" in mutants and target.exists():
                self._write_version(name, record)
                with contextlib.suppress(OSError):  # ETXTBSY while the old build runs
                    shutil.copyfile(tmp, target)
                return record
            os.replace(tmp, target)
            self._write_version(name, record)
            return record
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _compile(self, out: str, commit: str | bytes, timestamp: str | bytes) -> None:
        def define(value: str | bytes) -> str:
            return _c_string(value.decode() if isinstance(value, bytes) else value)

        argv = [self.cc, "-O1", "-o", out, str(SOURCE)]
        argv += [f"-DSM_COMMIT={define(commit)}", f"-DSM_TIMESTAMP={define(timestamp)}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise ServerError(f"building the reload fleet with {self.cc!r} failed: {first}")

    def _compile_template(self) -> bytes:
        out = self.directory / ".template"
        self._compile(str(out), _COMMIT_SLOT, _TIME_SLOT)
        try:
            data = out.read_bytes()
        finally:
            out.unlink()
        if data.count(_COMMIT_SLOT) != 1 or data.count(_TIME_SLOT) != 1:
            raise ServerError("the compiled reload template does not carry its build placeholders")
        return data

    def _write_version(self, name: str, record: BuildRecord) -> None:
        text = (
            f"commit: {record.commit}\ntimestamp: {record.timestamp}\nchecksum: {record.checksum}\n"
        )
        fd, tmp = tempfile.mkstemp(prefix=".version-", dir=self.bin_dir(name))
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.version_file(name))

    reports = True

    def report(self, name: str, timeout: float = 0.5) -> dict[str, Any] | None:
        """What ``name`` says about itself on its status socket (None if it does not answer):
        name, commit, timestamp, pid, and for a dependent connected / dep_pid / reconnects."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.socket(name)))
                sock.sendall(b"STATUS\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            report = json.loads(data)
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None

    def healthy(self, name: str, timeout: float = 0.5) -> bool:
        return self.report(name, timeout) is not None

    # -- lifetime -----------------------------------------------------------------------------

    def remove(self) -> None:
        """Kill any service still running a build of this fleet, then remove the directory."""
        if self._removed:
            return
        self._removed = True
        try:
            self.kill_leftovers()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def services_by_name(services: Iterable[ServiceSpec]) -> Mapping[str, ServiceSpec]:
    return {s.name: s for s in services}
