"""Drive a relay supervisor through its control socket, and its workers through the kernel.

:class:`RelayClient` speaks the control protocol to ANY relay control socket -- the bundled one
or a real ``mcrd``'s (``/tmp/multicast_relay_control.sock`` by default there): one JSON request
per connection, written, half-closed, answered with one JSON response.

Example::

    client = RelayClient("/tmp/multicast_relay_control.sock")
    response, seconds = client.request("ListWorkers")

:class:`RelayDriver` turns machine commands into requests and signals and reports what it saw:
worker identities are :class:`~statemodels.infra.processes.ProcessIdentity` values read from the
kernel, never bare pids; a worker reported Running whose process is dead or a zombie is listed
in ``running_dead``. Fault injection (``FailSpawns``) needs a :class:`RelayFaults` -- the bundled
relay is one; against a foreign relay, leave it out and do not draw that command.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import psutil

from ..engine import Outcome
from ..engine.load import StallMeter
from ..errors import ConfigurationError, ServerError
from ..infra.processes import ProcessIdentity, live_identity, poll_until, send_signal, wait_gone
from .commands import (
    AddRule,
    ContWorker,
    FailSpawns,
    KillWorker,
    ListRules,
    ListWorkers,
    Ping,
    RemoveRule,
    Rule,
    SendRaw,
    StopWorker,
    WorkerRules,
)
from .system.launch import SpawnAttempt
from .system.worker import START_TIME_SLACK, start_boottime

__all__ = [
    "RelayClient",
    "RelayDriver",
    "RelayFaults",
    "RelayUnavailable",
    "boottime",
    "clear_relay",
]


_log = logging.getLogger(__name__)

#: How long a worker that misses the relay's own worker timeout is asked again (see
#: ``RelayDriver._worker_rules``).
SLOW_WORKER_GRACE = 1.0


def boottime() -> float:
    """Now, on the clock of kernel process start times (``CLOCK_BOOTTIME``, seconds)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class RelayUnavailable(Exception):
    """A control request got no usable answer; ``code`` says how (unreachable, timeout ...)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(f"{code}: {detail}")


class RelayClient:
    """A client for a relay control socket: one request per connection.

    Args:
        socket_path: the supervisor's Unix control socket.
        timeout: seconds for connecting, writing and reading one answer.
    """

    def __init__(self, socket_path: str, *, timeout: float = 2.0) -> None:
        if not socket_path:
            raise ConfigurationError(
                f"socket_path {socket_path!r} is empty: pass the relay's control socket path"
            )
        self.socket_path = socket_path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False

    def request(self, request: Any, *, raw: bool = False) -> tuple[Any, float]:
        """Send one request (JSON-encoded, or ``bytes`` as-is with ``raw``); return the parsed
        response and the seconds it took.

        Raises:
            RelayUnavailable: no connection, no answer in time, or an answer that is not JSON.
        """
        payload = request if raw else json.dumps(request).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            if self._closed:
                sock.close()
                raise RelayUnavailable("closed", "the driver was closed")
            self._open.add(sock)
        start = time.perf_counter()
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                raise RelayUnavailable("unreachable", f"{self.socket_path}: {exc}") from None
            # An oversized request may be refused before we finish writing: read the answer anyway.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            data = bytearray()
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except TimeoutError:
                raise RelayUnavailable("timeout", f"no answer within {self.timeout:g}s") from None
            except OSError as exc:
                raise RelayUnavailable("no-response", str(exc)) from None
            took = time.perf_counter() - start
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()
        if not data:
            raise RelayUnavailable("no-response", "the connection closed without an answer")
        try:
            return json.loads(data), took
        except ValueError:
            raise RelayUnavailable("bad-response", f"not JSON: {bytes(data[:80])!r}") from None

    def close(self) -> None:
        """Refuse new requests and abort the ones in flight (safe from another thread)."""
        with self._lock:
            self._closed = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def clear_relay(client: RelayClient, *, timeout: float = 5.0) -> None:
    """Bring a relay you run back to an empty start through its control protocol alone.

    Removes every rule, then waits until ListWorkers lists no worker (a worker lives while its
    interface has rules), and checks that the relay answers ``WorkerRules`` -- the extension the
    relay machine needs to see each worker's own rule set. This is the per-example reset for a
    relay the tests did not start; a bundled relay resets faster with its ``Reset`` request.

    Raises:
        ServerError: the relay is unreachable, answers something that is not the protocol, does
            not answer ``WorkerRules``, or still lists workers ``timeout`` s after the removals
            (one line each).
    """
    where = f"relay control socket {client.socket_path}"
    try:
        response, _ = client.request("ListRules")
        rules = response.get("Rules") if isinstance(response, dict) else None
        if not isinstance(rules, list):
            raise ServerError(f"{where}: ListRules answered {str(response)[:80]}, not Rules")
        for rule in rules:
            rule_id = rule.get("rule_id") if isinstance(rule, dict) else None
            client.request({"RemoveRule": {"rule_id": rule_id}})
        probe, _ = client.request({"WorkerRules": {"interface": "smprobe0"}})
        if "unknown command" in str(probe).lower():
            raise ServerError(
                f"{where} does not answer WorkerRules: the relay machine checks each worker's "
                "own rules through it (see statemodels.supervisor.system.supervisor)"
            )

        def no_workers() -> bool:
            listed, _ = client.request("ListWorkers")
            return isinstance(listed, dict) and listed.get("Workers") == []

        if not poll_until(no_workers, timeout=timeout):
            raise ServerError(
                f"{where} still lists workers {timeout:g} s after every rule was removed"
            )
    except RelayUnavailable as exc:
        raise ServerError(f"{where}: {exc}") from None


def _backoff_ms(status: Any) -> Any:
    """The ``backoff_ms`` of a ``{"Restarting": {"backoff_ms": N}}`` status, else ``None``."""
    if isinstance(status, dict) and isinstance(status.get("Restarting"), dict):
        return status["Restarting"].get("backoff_ms", "missing")
    return None


class RelayFaults(Protocol):
    """Fault injection a bundled relay offers (see ``BundledRelay``)."""

    def fail_spawns(self, interface: str, count: int) -> None: ...

    def spawn_attempts(self, interface: str) -> list[SpawnAttempt]: ...


_SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}


class RelayDriver:
    """Carries relay commands out on a real supervisor and its worker processes.

    Args:
        client: the control-socket client.
        faults: fault injection (the bundled relay); ``None`` for a foreign relay.
        on_close: called once by :meth:`close` (e.g. ``relay.stop``).
    """

    def __init__(
        self,
        client: RelayClient,
        *,
        faults: RelayFaults | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.faults = faults
        self._on_close = on_close
        #: interface -> CLOCK_BOOTTIME when its last restart was provoked (kill, term, first add)
        self.marks: dict[str, float] = {}
        #: interface -> every worker seen started since its mark, with its start (see
        #: :meth:`worker_status`): the restart the schedule times, even if it exits again.
        self._seen_since_mark: dict[str, dict[ProcessIdentity, float]] = {}
        self._stopped: dict[str, ProcessIdentity] = {}
        #: CLOCK_BOOTTIME just before the last AddRule was sent
        self.sent_at = 0.0
        # The machine's CPU-wait counter (PSI) at each mark, so that a restart that starts late
        # on a loaded machine can be excused by what the machine waited meanwhile.
        self._meter = StallMeter()
        self._stall_marks: dict[str, tuple[int | None, float]] = {}
        self._sent_stall: tuple[int | None, float] = (None, time.monotonic())

    def _stall_mark(self) -> tuple[int | None, float]:
        return (self._meter.mark(), time.monotonic())

    def mark(self, iface: str, at: float | None = None) -> None:
        """Note ``at`` (default: now) as the moment a (re)spawn of ``iface`` was provoked, e.g.
        when the AddRule that created its worker was sent; kills are marked by the driver."""
        self.marks[iface] = boottime() if at is None else at
        self._seen_since_mark.pop(iface, None)
        sent = at is not None and at == self.sent_at
        self._stall_marks[iface] = self._sent_stall if sent else self._stall_mark()

    def stalled_since_mark(self, iface: str) -> float:
        """Seconds the machine waited for a CPU since ``iface``'s mark (PSI ``some``).

        About zero on an idle machine, so a relay that restarts late is still caught; on a
        loaded one the relay's fork may wait that long in the run queue, through no fault of
        its own, so a late bound may add it. Never an excuse for starting early.
        """
        mark, at = self._stall_marks.get(iface, (None, time.monotonic()))
        return self._meter.since(mark, duration=time.monotonic() - at)

    # -- commands -----------------------------------------------------------------------------

    def run(self, cmd: Any) -> Outcome:
        try:
            match cmd:
                case AddRule(rule=rule):
                    self._sent_stall = self._stall_mark()
                    self.sent_at = boottime()
                    return self._outcome(*self.client.request({"AddRule": rule.to_json()}))
                case RemoveRule(rule_id=rule_id):
                    return self._outcome(*self.client.request({"RemoveRule": {"rule_id": rule_id}}))
                case ListRules():
                    response, took = self.client.request("ListRules")
                    return self._outcome(response, took, rules=self._rules(response))
                case ListWorkers():
                    response, took = self.client.request("ListWorkers")
                    return self._outcome(response, took, **self._workers(response))
                case Ping():
                    return self._outcome(*self.client.request("Ping"))
                case WorkerRules(interface=iface):
                    return self._worker_rules(iface)
                case SendRaw(payload=payload):
                    return self._outcome(*self.client.request(payload, raw=True))
                case KillWorker(interface=iface, signal=sig):
                    return self._signal_worker(iface, sig)
                case StopWorker(interface=iface):
                    return self._stop(iface)
                case ContWorker(interface=iface):
                    ident = self._stopped.pop(iface, None)
                    if ident is None or not send_signal(ident, signal.SIGCONT):
                        return Outcome.failed("no-worker", f"no stopped worker for {iface!r}")
                    return Outcome.ok(resumed=ident)
                case FailSpawns(interface=iface, count=n):
                    if self.faults is None:
                        return Outcome.failed("unsupported", "no fault injection for this relay")
                    self.faults.fail_spawns(iface, n)
                    return Outcome.ok()
        except RelayUnavailable as exc:
            return Outcome.failed(exc.code, str(exc))
        raise TypeError(f"RelayDriver cannot run {cmd!r}: not a relay command")

    def _outcome(self, response: Any, took: float, **values: Any) -> Outcome:
        if isinstance(response, dict) and "Error" in response:
            return Outcome.failed("Error", str(response["Error"]), took=took)
        if not isinstance(response, dict) or len(response) != 1:
            return Outcome.failed("bad-response", repr(response)[:80], took=took)
        return Outcome.ok(took=took, **values)

    def _rules(self, response: Any) -> Any:
        try:
            return tuple(Rule.from_json(r) for r in response["Rules"])
        except (KeyError, TypeError, ValueError):
            return f"unparseable: {response!r}"[:200]

    def _worker_rules(self, iface: str) -> Any:
        # A worker that misses the relay's worker timeout (75 ms for the bundled relay) on a
        # loaded machine is asked again, for up to SLOW_WORKER_GRACE: a correct relay said
        # truthfully that its worker was slow, which is not a divergence. One that never
        # answers is still reported; a worker we stopped is not asked twice.
        deadline = time.monotonic() + SLOW_WORKER_GRACE
        while True:
            response, took = self.client.request({"WorkerRules": {"interface": iface}})
            out = self._outcome(response, took)
            slow = out.error is not None and "did not answer within" in out.detail
            if not slow or iface in self._stopped or time.monotonic() >= deadline:
                break
        if out.error is not None:
            return out
        body = response.get("WorkerRules", {})
        rules = self._rules({"Rules": body.get("rules")})
        return self._outcome(response, took, rules=rules, identity=live_identity(body.get("pid")))

    def _workers(self, response: Any) -> dict[str, Any]:
        """Flatten ListWorkers into fields: ifaces, status:<i>, backoff:<i>, identity:<i>,
        running_dead."""
        workers = response.get("Workers") if isinstance(response, dict) else None
        if not isinstance(workers, list):
            return {}
        out: dict[str, Any] = {}
        dead = []
        for w in workers:
            iface = w.get("interface")
            status = w.get("status")
            kind = status if isinstance(status, str) else next(iter(status or {"?": 0}))
            out[f"status:{iface}"] = kind
            out[f"backoff:{iface}"] = _backoff_ms(status)
            ident = live_identity(w.get("pid"))
            out[f"identity:{iface}"] = ident
            if kind == "Running" and ident is None:
                dead.append(w.get("pid"))
        out["ifaces"] = tuple(sorted(str(w.get("interface")) for w in workers))
        out["running_dead"] = tuple(dead)
        return out

    def running_worker(self, iface: str) -> ProcessIdentity | None:
        """The identity of the worker the relay reports Running for ``iface``, if any."""
        response, _ = self.client.request("ListWorkers")
        fields = self._workers(response)
        if fields.get(f"status:{iface}") != "Running":
            return None
        ident: ProcessIdentity | None = fields.get(f"identity:{iface}")
        return ident

    def _signal_worker(self, iface: str, sig: str) -> Any:
        ident = self.running_worker(iface)
        if ident is None:
            return Outcome.failed("no-worker", f"no running worker for {iface!r}")
        # Read the clock BEFORE signalling: a mark taken after could fall after the relay already
        # reaped the worker and started its backoff timer (this thread may be preempted between
        # the two calls), and the measured backoff would read short.
        stall, provoked = self._stall_mark(), boottime()
        if not send_signal(ident, _SIGNALS[sig]):
            return Outcome.failed("no-worker", f"worker {ident} vanished before {sig}")
        self.marks[iface] = provoked
        self._seen_since_mark.pop(iface, None)
        self._stall_marks[iface] = stall
        self._stopped.pop(iface, None)
        # Return once it is really dead (a zombie counts), so the next step sees a dead worker.
        if not wait_gone(ident, timeout=2.0):
            return Outcome.failed("survived", f"worker {ident} still alive 2 s after {sig}")
        return Outcome.ok(killed=ident)

    def _stop(self, iface: str) -> Any:
        ident = self.running_worker(iface)
        if ident is None or not send_signal(ident, signal.SIGSTOP):
            return Outcome.failed("no-worker", f"no running worker for {iface!r}")
        self._stopped[iface] = ident

        def frozen() -> bool:
            proc = ident.process()
            return proc is None or proc.status() == psutil.STATUS_STOPPED

        poll_until(frozen, timeout=1.0)
        return Outcome.ok(stopped=ident)

    # -- observation --------------------------------------------------------------------------

    def observe(self) -> Mapping[str, Any]:
        """ListRules, ListWorkers, and every running worker's own rule set."""
        try:
            rules_response, _ = self.client.request("ListRules")
            workers_response, _ = self.client.request("ListWorkers")
        except RelayUnavailable as exc:
            return {"error": str(exc)}
        workers = self._workers(workers_response)
        out: dict[str, Any] = {
            "rules": self._rules(rules_response),
            "worker_ifaces": workers.get("ifaces", "unparseable"),
            "running_dead": workers.get("running_dead", ()),
        }
        for key, ident in workers.items():
            if not key.startswith("identity:"):
                continue
            iface = key.split(":", 1)[1]
            out[key] = ident
            out[f"status:{iface}"] = workers.get(f"status:{iface}")
            out[f"backoff:{iface}"] = workers.get(f"backoff:{iface}")
            stopped = self._stopped.get(iface)
            if workers.get(f"status:{iface}") != "Running" or stopped == ident:
                continue  # asking a frozen worker would only time out
            try:
                result = self._worker_rules(iface)
            except RelayUnavailable as exc:
                out[f"worker_rules:{iface}"] = f"error: {exc}"
                continue
            out[f"worker_rules:{iface}"] = result.values.get("rules", f"error: {result.detail}")
        return out

    def worker_status(self, iface: str) -> dict[str, Any]:
        """One ListWorkers look at ``iface``: its status kind, reported backoff, identity, and dead
        Running pids."""
        response, _ = self.client.request("ListWorkers")
        fields = self._workers(response)
        identity = fields.get(f"identity:{iface}")
        if identity is not None and identity not in self._seen_since_mark.get(iface, {}):
            self._note_seen(iface, identity)
        return {
            "status": fields.get(f"status:{iface}"),
            "backoff": fields.get(f"backoff:{iface}"),
            "identity": identity,
            "running_dead": fields.get("running_dead", ()),
        }

    def _note_seen(self, iface: str, identity: ProcessIdentity) -> None:
        """Remember ``identity`` and its start if it is a worker of ``iface`` started since the
        mark.

        Read now, while it lives: a worker that exits by itself (an outside SIGTERM is a clean
        exit, restarted at once) is gone by the time the episode is judged, and the schedule must
        time the relay's restart, not that later one.
        """
        try:
            started = start_boottime(identity.pid)
        except OSError:
            return
        if identity.alive() and started >= self.marks.get(iface, 0.0) - START_TIME_SLACK:
            self._seen_since_mark.setdefault(iface, {})[identity] = started

    def crashed_since_mark(self, iface: str) -> list[SpawnAttempt]:
        """The start-ups of ``iface`` workers that crashed since its mark (the restart now under
        way); always empty without fault injection, where no spawn is made to crash."""
        if self.faults is None:
            return []
        since = self.marks.get(iface, 0.0)
        # An attempt right after the mark can read as starting before it.
        return [a for a in self.faults.spawn_attempts(iface) if a.start >= since - START_TIME_SLACK]

    def restart_timeline(self, iface: str, identity: ProcessIdentity) -> dict[str, Any]:
        """The measured spawn episode of ``iface`` that ended with ``identity`` running.

        ``attempts``: crashed start-ups since the mark; ``gap1``: seconds from the mark (the kill,
        or the AddRule that created the worker) to the first attempt's start; ``gapN``: from
        attempt N-1's exit to attempt N's start. Start times have 10 ms resolution.
        """
        crashed = self.crashed_since_mark(iface)
        try:
            final = start_boottime(identity.pid)
        except OSError:
            return {"attempts": len(crashed), "error": f"worker {identity} vanished"}
        # The relay's restart ran, then that worker exited unasked and was replaced (a clean
        # exit is restarted at once, so nothing else shows it): the schedule is about the
        # restart the mark provoked, so it times the earliest worker seen after the last crash.
        after_crashes = crashed[-1].exit if crashed else -math.inf
        crashed_pids = {a.pid for a in crashed}
        seen = self._seen_since_mark.get(iface, {})
        earlier = [
            t
            for ident, t in seen.items()
            if t >= after_crashes - START_TIME_SLACK and ident.pid not in crashed_pids and t < final
        ]
        if earlier:
            _log.info("relay %s: a worker started since the mark exited unasked", iface)
            final = min(earlier)
        out: dict[str, Any] = {"attempts": len(crashed)}
        previous = self.marks.get(iface, 0.0)
        for k, attempt in enumerate(crashed, start=1):
            out[f"gap{k}"] = round(attempt.start - previous, 4)
            previous = attempt.exit
        out[f"gap{len(crashed) + 1}"] = round(final - previous, 4)
        return out

    def close(self) -> None:
        self.client.close()
        for ident in self._stopped.values():
            with contextlib.suppress(Exception):
                send_signal(ident, signal.SIGCONT)
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
