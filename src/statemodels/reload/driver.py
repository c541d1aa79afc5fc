"""The reload driver: carries reload commands out on a fleet under an orchestrator.

It reports facts, never verdicts: identities read from the kernel for the pids the orchestrator
names (``None`` for a pid that names no living process), ``sha256(/proc/<pid>/exe)`` of what
really runs, what each service says about itself on its status socket, the version file as it
is on disk, and fd / RSS samples. A service counts as healthy once the very process the
orchestrator names answers its status socket with its own pid; ``healthy_s:<name>`` is the time
from the reload request to that answer (``None`` if it never came within ``health_within``).

Example::

    driver = ReloadDriver(fleet, orchestrator)
    driver.run(Build("broker"))     # Outcome.ok(commit=..., timestamp=..., checksum=..., ...)
    driver.run(Reload("broker"))    # Outcome.ok(**{"identity:broker": ..., ...})
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import psutil

from ..engine import Outcome
from ..errors import StatemodelsError
from ..infra.processes import ProcessIdentity, exe_sha256, live_identity, sample, sha256_file
from .commands import (
    BreakBinary,
    Build,
    CheckRecords,
    Inspect,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    Resources,
    RestartOrchestrator,
    StartService,
    StartWriter,
    StopService,
)
from .orchestrators import OrchestratorError, ServiceState
from .system.fleet import BuildRecord, ServiceSpec
from .system.launch import OrchestratorProcess

__all__ = ["Fleet", "ReloadDriver", "judge_records"]

_RUNS = itertools.count(1)

# States after which waiting for health is pointless (the orchestrator gave up or stopped).
_TERMINAL = {"Error", "Completed", "Skipped", "Disabled", "FATAL", "STOPPED", "EXITED"}


class Fleet(Protocol):
    """What the driver needs of a fleet: the bundled one, or a user's (``userfleet``)."""

    @property
    def services(self) -> tuple[ServiceSpec, ...]: ...

    @property
    def reports(self) -> bool: ...

    def build(self, name: str) -> BuildRecord: ...

    def read_version(self, name: str) -> dict[str, str]: ...

    def binary(self, name: str) -> Path: ...

    def break_binary(self, name: str, how: str = "delete") -> None: ...

    def report(self, name: str, timeout: float = 0.5) -> dict[str, Any] | None: ...

    def healthy(self, name: str, timeout: float = 0.5) -> bool: ...


class ReloadDriver:
    """Runs reload commands on ``fleet`` under ``orchestrator``.

    Args:
        health_within: seconds to wait for a (re)started service to answer (then ``None``).
        kill_after: seconds after the reload request at which ``KillOrchestratorDuringReload``
            SIGKILLs the orchestrator.
        kill_timeout: the driver's own timeout for that reload request.
        on_close: called once by :meth:`close` (stops the orchestrator, removes the fleet).
    """

    def __init__(
        self,
        fleet: Fleet,
        orchestrator: OrchestratorProcess,
        *,
        health_within: float = 5.0,
        kill_after: float = 0.004,
        kill_timeout: float = 3.0,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.orchestrator = orchestrator
        self.health_within = health_within
        self.kill_after = kill_after
        self.kill_timeout = kill_timeout
        self._on_close = on_close
        self._names = [s.name for s in fleet.services]
        self._last_known: dict[str, ProcessIdentity | None] = {}
        self._orchestrator_down = False
        self._run_id = ""
        # The collector flushes every 50 ms; a loaded machine may take seconds: never judged early.
        self.records_within = 10.0

    @property
    def client(self) -> Any:
        return self.orchestrator.client

    # -- commands -------------------------------------------------------------------------------

    def run(self, cmd: Any) -> Outcome:
        try:
            return self._run(cmd)
        except OrchestratorError as exc:
            return Outcome.failed(exc.code, str(exc))
        except StatemodelsError as exc:
            return Outcome.failed(type(exc).__name__, str(exc))

    def _run(self, cmd: Any) -> Outcome:
        match cmd:
            case Inspect():
                values: dict[str, Any] = {}
                for name in self._names:
                    version = self.fleet.read_version(name)
                    for key in ("commit", "timestamp", "checksum"):
                        values[f"{key}:{name}"] = version.get(key)
                return Outcome.ok(**values)
            case Build(service=name):
                self.fleet.build(name)
                version = self.fleet.read_version(name)
                try:
                    on_disk: str | None = sha256_file(self.fleet.binary(name))
                except OSError:
                    on_disk = None
                return Outcome.ok(
                    commit=version.get("commit"),
                    timestamp=version.get("timestamp"),
                    checksum=version.get("checksum"),
                    describes_binary=on_disk is not None and on_disk == version.get("checksum"),
                )
            case BreakBinary(service=name, how=how):
                self.fleet.break_binary(name, how)
                return Outcome.ok()
            case Reload(service=name):
                return self._reload((name,))
            case ReloadMany(services=names):
                return self._reload(tuple(names))
            case StopService(service=name):
                self.client.stop(name)
                return Outcome.ok(**self._identities())
            case StartService(service=name):
                start = time.monotonic()
                self.client.start(name)
                return Outcome.ok(**{**self._identities(), **self._await_healthy(name, start)})
            case KillOrchestratorDuringReload(service=name):
                return self._kill_during_reload(name)
            case RestartOrchestrator():
                start = time.monotonic()
                self.orchestrator.relaunch()
                self._orchestrator_down = False
                values = {"orchestrator": self.orchestrator.client.identity()}
                for each in self._names:
                    values.update(self._await_healthy(each, start))
                for each, state in self.client.states().items():
                    values[f"restarts:{each}"] = state.restarts
                return Outcome.ok(**values)
            case Resources():
                return Outcome.ok(**self._resources())
            case StartWriter():
                self._run_id = f"r{os.getpid()}-{next(_RUNS)}"
                writer: Any = self.fleet  # only a fleet with a writer (the NATS fleet) has one
                writer.start_writer(self._run_id)
                # Started means records flow: the first one acked (a late start is no failure).
                deadline = time.monotonic() + self.records_within
                while time.monotonic() < deadline:
                    if (writer.status("writer") or {}).get("acked", 0) >= 1:
                        break
                    time.sleep(0.01)
                return Outcome.ok(started=(writer.status("writer") or {}).get("acked", 0) >= 1)
            case CheckRecords():
                return Outcome.ok(**self._check_records())
        raise TypeError(f"ReloadDriver cannot run {cmd!r}: not a reload command")

    def _reload(self, names: Sequence[str]) -> Outcome:
        start = time.monotonic()
        try:
            self._restart_all(names)
        except OrchestratorError as exc:
            # What the orchestrator refused is the outcome; the rest of the fleet is still judged.
            return Outcome.failed(exc.code, str(exc), **self._identities())
        values: dict[str, Any] = {}
        for name in names:
            values.update(self._await_healthy(name, start))
        values.update({k: v for k, v in self._identities().items() if k not in values})
        return Outcome.ok(**values)

    def _restart_all(self, names: Sequence[str]) -> None:
        if len(names) == 1:
            self.client.restart(names[0])
        else:
            errors: list[OrchestratorError] = []

            def one(name: str) -> None:
                try:
                    self.client.restart(name)
                except OrchestratorError as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in names]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]

    def _await_healthy(self, name: str, start: float) -> dict[str, Any]:
        """Wait until the process the orchestrator names for ``name`` answers as itself."""
        deadline = start + self.health_within
        state: ServiceState | None = None
        ident: ProcessIdentity | None = None
        report: dict[str, Any] | None = None
        healthy: float | None = None
        settle_until = time.monotonic() + 0.1  # a terminal state may still be on its way out
        while True:
            state = self.client.states().get(name)
            ident = live_identity(state.pid) if state is not None and state.running else None
            if ident is not None:
                if self.fleet.reports:
                    report = self.fleet.report(name)
                else:  # no self-report: its health check answering must do
                    report = {"pid": ident.pid} if self.fleet.healthy(name) else None
                if report is not None and report.get("pid") == ident.pid:
                    healthy = round(time.monotonic() - start, 4)
                    break
            now = time.monotonic()
            terminal = state is not None and not state.running and state.status in _TERMINAL
            if now >= deadline or (terminal and now >= settle_until):
                break
            time.sleep(0.005)
        exe = None
        if ident is not None:
            with contextlib.suppress(OSError):
                exe = exe_sha256(ident.pid)
        values: dict[str, Any] = {
            f"identity:{name}": ident,
            f"running:{name}": bool(state and state.running),
            f"healthy_s:{name}": healthy,
            f"exe_sha256:{name}": exe,
        }
        if self.fleet.reports:
            values[f"commit:{name}"] = report.get("commit") if report else None
        return values

    def _identities(self) -> dict[str, Any]:
        states = self.client.states()
        out = {}
        for name in self._names:
            state = states.get(name)
            ident = live_identity(state.pid) if state is not None and state.running else None
            out[f"identity:{name}"] = ident
            self._last_known[name] = ident
        return out

    def _kill_during_reload(self, name: str) -> Outcome:
        self._identities()  # what runs now: the others must still run after the kill
        killer = threading.Timer(self.kill_after, self.orchestrator.kill)
        start = time.monotonic()
        killer.start()
        error: OrchestratorError | None = None
        try:
            self.client.restart(name, timeout=self.kill_timeout)
        except OrchestratorError as exc:
            error = exc
        answered = round(time.monotonic() - start, 4)
        killer.join()
        self._orchestrator_down = True
        values: dict[str, Any] = {"answered_s": answered, "one_line": "\n" not in str(error or "")}
        for other in self._names:
            if other != name:
                known = self._last_known.get(other)
                values[f"identity:{other}"] = known if known is not None and known.alive() else None
        if error is not None:
            return Outcome.failed(error.code, str(error), **values)
        return Outcome.ok(**values)

    def _check_records(self) -> dict[str, Any]:
        """Stop the writer, then wait -- one-sidedly, up to ``records_within`` -- until the
        store holds every record the broker acked to it, and count what differs."""
        fleet: Any = self.fleet
        run = self._run_id
        exit_code = fleet.stop_writer()
        written = fleet.written(run)
        deadline = time.monotonic() + self.records_within
        first: dict[str, Any] | None = None
        while True:
            stored = fleet.stored(run)
            have = {seq for seq, _ in stored}
            if all(seq in have for seq, _ in written) or time.monotonic() >= deadline:
                break
            # Missing records may still be on their way -- unless the collector says it has
            # nothing left: its buffer empty and two fetches came back empty since the writer
            # stopped (same process; then the stream holds nothing it has not stored).
            now = fleet.status("collector") or {}
            if first is None or first.get("pid") != now.get("pid"):
                first = now
            elif (
                now.get("buffered") == 0
                and now.get("received") == now.get("stored")
                and now.get("empty_fetches", 0) >= first.get("empty_fetches", 0) + 2
            ):
                stored = fleet.stored(run)
                break
            time.sleep(0.02)
        return {"writer_exit": exit_code, "records": len(written), **judge_records(written, stored)}

    def _resources(self) -> dict[str, Any]:
        """fds and RSS of the orchestrator and the running dependents, each the least of a few
        samples 10 ms apart: a connection being closed or a readiness probe in flight is there
        for a moment, a leak stays."""
        orch = self.orchestrator.identity()
        idents = self._identities()
        targets: dict[str, tuple[Any, ProcessIdentity]] = {}
        if orch is not None:
            # An orchestrator holds pipes per running child: its baseline is per running set.
            running = tuple(n for n in self._names if idents[f"identity:{n}"] is not None)
            targets["orchestrator"] = ((orch, running), orch)
        for spec in self.fleet.services:
            ident = idents.get(f"identity:{spec.name}")
            if spec.depends_on and ident is not None:
                targets[spec.name] = (ident, ident)
        least: dict[str, tuple[int, int]] = {}
        for attempt in range(5):
            if attempt:
                time.sleep(0.01)
            for name, (_key, ident) in targets.items():
                with contextlib.suppress(psutil.Error):
                    got = sample(ident)
                    fds, rss = least.get(name, (got.fds, got.rss))
                    least[name] = (min(fds, got.fds), min(rss, got.rss))
        out: dict[str, Any] = {}
        for name, (fds, rss) in least.items():
            key = targets[name][0]
            out[f"fds:{name}"], out[f"rss:{name}"] = (key, fds), (key, rss)
        return out

    # -- observation ------------------------------------------------------------------------------

    def observe(self) -> Mapping[str, Any]:
        """The fleet as it is: orchestrator identity, per service running / identity / restarts,
        the orchestrator's zombie children, and each dependent's own report of its dependency."""
        orch = self.client.identity()
        out: dict[str, Any] = {"orchestrator": orch}
        if orch is None or self._orchestrator_down:
            out["orchestrator"] = None
            for name in self._names:
                known = self._last_known.get(name)
                out[f"identity:{name}"] = known if known is not None and known.alive() else None
            return out
        try:
            states = self.client.states()
        except OrchestratorError as exc:
            return {"error": exc.code}
        for name in self._names:
            state = states.get(name)
            running = bool(state and state.running)
            ident = live_identity(state.pid) if state is not None and running else None
            self._last_known[name] = ident
            out[f"running:{name}"] = running
            out[f"identity:{name}"] = ident
            out[f"restarts:{name}"] = state.restarts if state else None
        out["zombies"] = _zombie_children(orch)
        if self.fleet.reports:
            for spec in self.fleet.services:
                if spec.depends_on and out[f"identity:{spec.name}"] is not None:
                    report = self.fleet.report(spec.name)
                    out[f"dep_pid:{spec.name}"] = report.get("dep_pid") if report else None
        return out

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()


def judge_records(
    written: Sequence[tuple[int, int]], stored: Sequence[tuple[int, int]]
) -> dict[str, int]:
    """Counts of what the store got wrong, of ``(seq, ts)`` records: written (acked to the
    writer, in its order) against stored (in store order).

    ``lost``: written, never stored. ``duplicated``: stored copies beyond the first.
    ``out_of_order``: first copies whose seq is not above the one stored before them.
    ``retimed``: records stored with a timestamp other than the writer's.

    >>> judge_records([(1, 10), (2, 20)], [(2, 20), (1, 10), (1, 10)])
    {'lost': 0, 'duplicated': 1, 'out_of_order': 1, 'retimed': 0}
    """
    times = dict(written)
    seen: set[int] = set()
    out = {"lost": 0, "duplicated": 0, "out_of_order": 0, "retimed": 0}
    last = 0
    for seq, ts in stored:
        if seq in seen:
            out["duplicated"] += 1
            continue
        seen.add(seq)
        if seq <= last:
            out["out_of_order"] += 1
        last = max(last, seq)
        if seq in times and times[seq] != ts:
            out["retimed"] += 1
    out["lost"] = sum(1 for seq in times if seq not in seen)
    return out


def _zombie_children(identity: ProcessIdentity) -> int:
    """How many children of ``identity`` are zombies (exited, never reaped by it)."""
    if not identity.alive():
        return 0
    try:
        # The kernel's own lists of children, one per thread that forked (psutil's children()
        # scans every process on the machine instead: 30 ms here).
        children = []
        for task in os.listdir(f"/proc/{identity.pid}/task"):
            with open(f"/proc/{identity.pid}/task/{task}/children") as fh:
                children += [int(pid) for pid in fh.read().split()]
    except OSError:
        proc = identity.process()
        with contextlib.suppress(psutil.Error):
            children = [c.pid for c in proc.children()] if proc is not None else []
    count = 0
    for pid in children:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                count += 1
    return count
