"""Start and stop a bundled relay supervisor in a temporary directory.

Example::

    with BundledRelay.start(RelayConfig(initial_backoff=0.05)) as relay:
        client = RelayClient(relay.socket_path)
        client.request("Ping")            # {"Success": "pong"}
        relay.fail_spawns("eth0", 2)      # the next two eth0 workers crash at start-up
    # gone: the supervisor, every worker, the temp dir

Nothing outlives the relay: the supervisor dies with the thread that started it
(``PR_SET_PDEATHSIG``), every worker dies with the supervisor, and :meth:`BundledRelay.stop` kills
the whole captured process tree anyway, also after the supervisor was SIGKILLed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Self

import attrs
import psutil

from ...errors import ConfigurationError, ServerError
from ...infra import lifeline
from ...infra.processes import (
    ProcessIdentity,
    Spawned,
    kill_tree,
    poll_until,
    scratch_dir,
    spawn,
)
from .mutants import check_mutants

__all__ = ["BundledRelay", "RelayConfig", "RelayPool", "SpawnAttempt"]

log = logging.getLogger(__name__)
_SYSTEM_DIR = Path(__file__).resolve().parent


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ConfigurationError(
            f"RelayConfig.{attribute.name} must be > 0 (got {value!r}); timings are seconds"
        )


@attrs.frozen
class RelayConfig:
    """Every timing of the bundled relay, in seconds, plus the mutants to seed.

    Defaults keep a test at millisecond scale -- a kill is followed by a respawn after 100 ms, and
    a worker whose spawns keep failing is retried after 100, 200, 200 ... ms -- while each step
    stays longer than the ~75 ms a loaded 2-core machine may add to a restart.
    """

    initial_backoff: float = attrs.field(default=0.1, validator=_positive)
    backoff_factor: float = attrs.field(default=2.0, validator=_positive)
    backoff_cap: float = attrs.field(default=0.2, validator=_positive)
    worker_timeout: float = attrs.field(default=0.075, validator=_positive)
    request_timeout: float = attrs.field(default=1.0, validator=_positive)
    max_request: int = attrs.field(default=65536, validator=_positive)
    mutants: frozenset[str] = attrs.field(default=frozenset(), converter=check_mutants)

    def argv(self) -> list[str]:
        out = [
            f"--initial-backoff={self.initial_backoff}",
            f"--backoff-factor={self.backoff_factor}",
            f"--backoff-cap={self.backoff_cap}",
            f"--worker-timeout={self.worker_timeout}",
            f"--request-timeout={self.request_timeout}",
            f"--max-request={self.max_request}",
        ]
        return out + [f"--mutant={m}" for m in sorted(self.mutants)]


@attrs.frozen
class SpawnAttempt:
    """A worker spawn that crashed at start-up: its pid, kernel start and exit times.

    Times are seconds on ``CLOCK_BOOTTIME`` (the clock of ``/proc/<pid>/stat`` start times).
    """

    pid: int
    start: float
    exit: float


@attrs.define(eq=False)
class BundledRelay:
    """A running bundled relay supervisor. Use :meth:`start`; a context manager."""

    config: RelayConfig
    directory: Path
    process: Spawned
    _known: dict[int, ProcessIdentity] = attrs.field(factory=dict)
    _stopped: bool = False

    @property
    def socket_path(self) -> str:
        return str(self.directory / "control.sock")

    @property
    def fault_dir(self) -> Path:
        return self.directory / "faults"

    @property
    def identity(self) -> ProcessIdentity:
        return self.process.identity

    @classmethod
    def start(
        cls, config: RelayConfig | None = None, *, base_dir: str | None = None, timeout: float = 5.0
    ) -> BundledRelay:
        """Start a supervisor in a fresh temp dir (under /dev/shm when it exists).

        Raises:
            ServerError: it did not answer Ping within ``timeout`` seconds.
        """
        config = config or RelayConfig()
        if base_dir is None:
            directory = Path(scratch_dir("statemodels-relay-"))
        else:
            made = tempfile.mkdtemp(prefix="statemodels-relay-", dir=base_dir)
            directory = Path(lifeline.mark_dir(made))
        (directory / "faults").mkdir()
        argv = [sys.executable, "-I", "-S", str(_SYSTEM_DIR / "supervisor.py")]
        argv += [f"--socket={directory / 'control.sock'}", f"--fault-dir={directory / 'faults'}"]
        argv += [f"--parent={os.getpid()}", *config.argv()]
        try:
            log_file = open(directory / "supervisor.log", "wb")  # noqa: SIM115 (closed below)
            try:
                proc = spawn(argv, stdout=log_file, stderr=log_file, name="relay-supervisor")
            finally:
                log_file.close()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        relay = cls(config=config, directory=directory, process=proc)
        try:
            relay._wait_ready(timeout)
        except BaseException:
            relay.stop()
            raise
        return relay

    def _wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            if not self.process.alive():
                return True
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(0.5)
                sock.connect(self.socket_path)
                sock.sendall(b'"Ping"')
                sock.shutdown(socket.SHUT_WR)
                return b"pong" in sock.recv(4096)
            return False

        if not poll_until(answers, timeout=timeout, max_interval=0.01) or not self.process.alive():
            tail = self.log_tail()
            raise ServerError(
                f"the bundled relay supervisor did not answer Ping on {self.socket_path!r} "
                f"within {timeout:g}s; its log ends: {tail!r}"
            )

    def log_tail(self, limit: int = 400) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "supervisor.log").read_text(errors="replace")[-limit:]
        return ""

    def request(self, request: Any, timeout: float = 1.0) -> Any:
        """One control request (JSON in, JSON out); raises ``OSError``/``ValueError`` on failure."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(request).encode())
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return json.loads(data)

    def reset(self) -> bool:
        """Bring the relay back to a fresh start, and verify it; False if it could not be.

        Verified, not assumed: no rules, no workers, no live child process, no armed faults.
        """
        if self._stopped or not self.process.alive():
            return False
        try:
            for path in self.fault_dir.iterdir():
                path.unlink()
            if self.request("Reset") != {"Success": "reset"}:
                return False
            clean = self.request("ListRules") == {"Rules": []}
            clean = clean and self.request("ListWorkers") == {"Workers": []}
        except (OSError, ValueError):
            return False
        return clean and not self.descendants()

    # -- faults -------------------------------------------------------------------------------

    def fail_spawns(self, interface: str, count: int) -> None:
        """Make the next ``count`` worker spawns for ``interface`` crash at start-up."""
        path = self.fault_dir / f"{interface}.fail"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(count))
        os.replace(tmp, path)

    def spawn_attempts(self, interface: str) -> list[SpawnAttempt]:
        """Every crashed start-up of ``interface`` workers so far, oldest first."""
        path = self.fault_dir / f"{interface}.attempts"
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [SpawnAttempt(**json.loads(line)) for line in lines if line.strip()]

    # -- lifecycle ----------------------------------------------------------------------------

    def descendants(self) -> list[ProcessIdentity]:
        """Identities of every live process under the supervisor (its workers)."""
        root = self.identity.process()
        if root is None:
            return []
        out = []
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    out.append(ProcessIdentity(child.pid, child.create_time()))
        return out

    def stop(self) -> None:
        """Stop the supervisor and every worker, remove the temp dir. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for ident in self.descendants():
                self._known[ident.pid] = ident
            self.process.terminate(timeout=2.0)
        finally:
            # Workers orphaned by a SIGKILLed supervisor die by PDEATHSIG; make sure anyway.
            for ident in self._known.values():
                if ident.alive():
                    kill_tree(ident, timeout=2.0)
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RelayPool:
    """Hands out bundled relays, reusing one across test examples after a verified reset.

    Starting a supervisor costs ~100 ms (Python start-up); a reset costs ~2 ms. A relay whose
    reset fails (a mutant that broke its control socket, a hang) is stopped and replaced.

    Example::

        with RelayPool(RelayConfig()) as pool:
            run_machine(lambda: bundled_relay_machine(pool=pool))
    """

    def __init__(self, config: RelayConfig | None = None) -> None:
        self.config = config or RelayConfig()
        self._idle: BundledRelay | None = None
        self.started = 0

    def acquire(self) -> BundledRelay:
        """A relay in its fresh state (reset and verified, or newly started)."""
        relay, self._idle = self._idle, None
        if relay is not None:
            if relay.reset():
                return relay
            relay.stop()
        self.started += 1
        return BundledRelay.start(self.config)

    def release(self, relay: BundledRelay) -> None:
        """Give a relay back; it is reset when next acquired."""
        if self._idle is not None:
            self._idle.stop()
        self._idle = relay

    def close(self) -> None:
        if self._idle is not None:
            self._idle.stop()
            self._idle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
