"""The bundled relay supervisor: a control socket, one worker per interface, restarts with backoff.

It speaks the control protocol of the public multicast relay (acooks/mcr) on a Unix socket (mode
0600), one JSON request per connection: the client writes, half-closes, reads one JSON response.

Requests: ``"Ping"``, ``"ListRules"``, ``"ListWorkers"``, ``{"AddRule": {...}}``,
``{"RemoveRule": {"rule_id": ...}}`` and, so a test can see the worker's *own* view,
``{"WorkerRules": {"interface": ...}}`` (asks the worker itself; a worker that does not answer
within ``--worker-timeout`` -- e.g. one stopped with SIGSTOP -- is an ``Error``, quickly).
``"Reset"`` (bundled only: kill every worker, forget every rule -- the launcher's fast reset
between test examples). Responses: ``{"Success": msg}``, ``{"Error": msg}``, ``{"Rules": [...]}``,
``{"Workers": [{pid, worker_type, core_id, interface, status}]}`` with status ``"Running"``,
``"Starting"`` (spawned, not yet Ready) or ``{"Restarting": {"backoff_ms": N}}``, and
``{"WorkerRules": {"interface", "pid", "rules"}}``.

Restart policy, per interface: an abnormal exit waits the current backoff, then respawns, and the
backoff is multiplied by ``--backoff-factor`` up to ``--backoff-cap``; a worker that says Ready
resets it to ``--initial-backoff``; a clean exit (code 0) respawns at once. A respawned worker is
sent the full rule set of its interface (``Sync``). A stopped (SIGSTOP) worker is alive: it is
not restarted, it is reported Running, its requests time out, and SIGCONT resumes it with every
command queued meanwhile.

Run as a standalone script (stdlib only; ``python -I -S supervisor.py --socket PATH ...``); see
``launch.py`` for the options and :data:`~statemodels.supervisor.system.mutants.MUTANTS` for the
seeded bugs ``--mutant NAME`` switches on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if __package__:
    from .concurrency import seed_concurrency_mutants
    from .rules import BadRequest, interface_name, validate_rule
    from .worker import HEADER, die_with_parent
else:  # run as a script (python -I -S): the sibling modules sit beside us
    sys.path.insert(0, _HERE)
    from concurrency import seed_concurrency_mutants  # type: ignore[no-redef]
    from rules import BadRequest, interface_name, validate_rule  # type: ignore[no-redef]
    from worker import HEADER, die_with_parent  # type: ignore[no-redef]

KNOWN_MUTANTS = frozenset(
    {
        "no-resync",
        "partial-resync",
        "race-loses-add",
        "no-backoff-reset",
        "no-backoff-cap",
        "no-backoff-double",
        "stale-running",
        "remove-not-forwarded",
        "upsert-duplicates",
        "port-zero-accepted",
        "clean-exit-backoff",
        "garbage-kills-control",
        "id-without-protocol",
        "add-rmw-across-await",
        "remove-check-across-await",
    }
)


class Worker:
    """One worker process incarnation and the supervisor's end of its socketpair."""

    def __init__(self, interface: str, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.interface = interface
        self.proc = proc
        self.sock = sock
        self.ready = False
        self.exited = False
        self.pidfd = -1
        self.waiters: dict[int, asyncio.Future[Any]] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None

    def send(self, message: Any) -> None:
        if self.writer is None or self.exited:
            return
        body = json.dumps(message, separators=(",", ":")).encode()
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write(HEADER.pack(len(body)) + body)


class Slot:
    """The supervisor's state for one interface: its worker (or pending restart) and backoff."""

    def __init__(self, interface: str, backoff: float) -> None:
        self.interface = interface
        self.worker: Worker | None = None
        self.backoff = backoff
        self.timer: asyncio.TimerHandle | None = None
        self.delay = 0.0
        self.spawns = 0
        self.spawn_seq = 0
        self.snapshot: list[dict[str, Any]] | None = None


class Relay:
    """The supervisor proper: rules, slots, the control server."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mutants = frozenset(args.mutant)
        self.rules: dict[str, dict[str, Any]] = {}
        self.added_seq: dict[str, int] = {}
        self.seq = 0
        self.slots: dict[str, Slot] = {}
        self.retiring: set[Worker] = set()
        self.server: asyncio.AbstractServer | None = None
        self.request_seq = 0
        self.stopping = asyncio.Event()
        seed_concurrency_mutants(self)

    # -- workers --------------------------------------------------------------------------

    def rules_for(self, interface: str) -> list[dict[str, Any]]:
        return [r for k, r in sorted(self.rules.items()) if r["input_interface"] == interface]

    def spawn(self, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-I", "-S", os.path.join(_HERE, "worker.py")]
        argv += ["--interface", slot.interface, "--fd", str(theirs.fileno())]
        argv += ["--parent", str(os.getpid()), "--fault-dir", self.args.fault_dir or ""]
        argv += ["--crash", "1" if self._take_fault(slot.interface) else "0"]
        try:
            proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        worker = Worker(slot.interface, proc, ours)
        slot.worker = worker
        rules = self.rules_for(slot.interface)
        if "no-resync" in self.mutants and slot.spawns > 0:
            rules = []
        if "partial-resync" in self.mutants and slot.spawns > 0:
            rules = [r for r in rules if self.added_seq.get(r["rule_id"], 0) > slot.spawn_seq]
        if "race-loses-add" in self.mutants and slot.snapshot is not None:
            rules = slot.snapshot
        slot.snapshot = None
        slot.spawns += 1
        slot.spawn_seq = self.seq
        if "stale-running" not in self.mutants:
            worker.pidfd = os.pidfd_open(proc.pid)
            loop.add_reader(worker.pidfd, self.reap, worker)
        worker.reader_task = loop.create_task(self._read_worker(worker, rules))

    def _take_fault(self, interface: str) -> bool:
        """Whether this spawn must crash at start-up, using up one fault armed in
        ``<fault-dir>/<interface>.fail`` (a count). Decided here, at spawn time, so a fault armed
        after a spawn can never hit that spawn's worker while it is still starting up."""
        if not self.args.fault_dir:
            return False
        path = os.path.join(self.args.fault_dir, f"{interface}.fail")
        try:
            with open(path) as fh:
                count = int(fh.read().strip() or "0")
        except (OSError, ValueError):
            return False
        if count <= 0:
            return False
        with open(f"{path}.next", "w") as fh:
            fh.write(str(count - 1))
        os.replace(f"{path}.next", path)
        return True

    async def _read_worker(self, worker: Worker, rules: list[dict[str, Any]]) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=worker.sock)
        worker.writer = writer
        worker.send({"Sync": rules})
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                msg = json.loads(await reader.readexactly(length))
                if "Ready" in msg:
                    worker.ready = True
                    slot = self.slots.get(worker.interface)
                    ours = slot is not None and slot.worker is worker
                    if ours and "no-backoff-reset" not in self.mutants:
                        assert slot is not None
                        slot.backoff = self.args.initial_backoff
                elif "Rules" in msg:
                    waiter = worker.waiters.pop(msg["Rules"]["seq"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(msg["Rules"]["rules"])
        except (asyncio.IncompleteReadError, OSError, ValueError):
            pass
        finally:
            writer.close()

    def reap_all(self) -> None:
        """Notice every exited worker now (so no answer ever reports a dead one as Running)."""
        for slot in list(self.slots.values()):
            if slot.worker is not None and slot.worker.proc.poll() is not None:
                self.reap(slot.worker)
        for worker in list(self.retiring):
            if worker.proc.poll() is not None:
                self.reap(worker)

    def reap(self, worker: Worker) -> None:
        if worker.exited:
            return
        code = worker.proc.poll()
        if code is None:
            return  # pidfd readable can only mean exit; be safe against spurious wake-ups
        worker.exited = True
        loop = asyncio.get_running_loop()
        if worker.pidfd >= 0:
            loop.remove_reader(worker.pidfd)
            os.close(worker.pidfd)
        for waiter in worker.waiters.values():
            if not waiter.done():
                waiter.set_exception(BadRequest(f"worker {worker.proc.pid} exited"))
        if worker.writer is not None:
            worker.writer.close()
        else:
            worker.sock.close()
        if worker in self.retiring:
            self.retiring.discard(worker)
            return
        slot = self.slots.get(worker.interface)
        if slot is None or slot.worker is not worker:
            return
        slot.worker = None
        if "race-loses-add" in self.mutants:
            slot.snapshot = self.rules_for(slot.interface)
        if code == 0 and "clean-exit-backoff" not in self.mutants:
            self.spawn(slot)
            return
        slot.delay = slot.backoff
        slot.timer = loop.call_later(slot.delay, self._respawn, slot)
        if "no-backoff-double" not in self.mutants:
            grown = slot.backoff * self.args.backoff_factor
            slot.backoff = grown if "no-backoff-cap" in self.mutants else min(grown, self.args.cap)

    def _respawn(self, slot: Slot) -> None:
        slot.timer = None
        if self.slots.get(slot.interface) is slot and slot.worker is None:
            self.spawn(slot)

    def ensure_slot(self, interface: str) -> Slot:
        slot = self.slots.get(interface)
        if slot is None:
            slot = self.slots[interface] = Slot(interface, self.args.initial_backoff)
            self.spawn(slot)
        return slot

    def retire(self, interface: str) -> None:
        """The interface has no rules left: stop its worker for good and forget the slot."""
        slot = self.slots.pop(interface)
        if slot.timer is not None:
            slot.timer.cancel()
        worker = slot.worker
        if worker is None:
            return
        self.retiring.add(worker)
        worker.send("Shutdown")
        # A stopped worker cannot obey Shutdown: make sure it goes anyway.
        asyncio.get_running_loop().call_later(
            self.args.worker_timeout * 4, self._force_kill, worker
        )

    def _force_kill(self, worker: Worker) -> None:
        if not worker.exited and worker.proc.poll() is None:
            with contextlib.suppress(OSError):
                worker.proc.kill()

    # -- control protocol ---------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            response = await self._answer(reader)
            if response is not None:
                writer.write(json.dumps(response).encode())
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            if "stale-running" in self.mutants:
                self.reap_all()

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        data = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > self.args.max_request:
                raise BadRequest(f"request larger than {self.args.max_request} bytes")

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            data = await asyncio.wait_for(self._read_request(reader), self.args.request_timeout)
        except TimeoutError:
            return {"Error": "request not completed in time (write, then half-close)"}
        except BadRequest as exc:
            # Drain what the client is still sending so it can read our answer, within limits.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain(reader), self.args.request_timeout)
            return {"Error": str(exc)}
        try:
            request = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            if "garbage-kills-control" in self.mutants and self.server is not None:
                self.server.close()  # the "unhandled exception" ends the accept loop
                return None
            return {"Error": f"malformed JSON: {exc}"}
        try:
            return await self.dispatch(request)
        except BadRequest as exc:
            return {"Error": str(exc)}

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def dispatch(self, request: Any) -> dict[str, Any]:
        if isinstance(request, str):
            name, body = request, None
        elif isinstance(request, dict) and len(request) == 1:
            ((name, body),) = request.items()
        else:
            raise BadRequest("a request is a command name or an object with exactly one key")
        if name in ("Ping", "ListRules", "ListWorkers", "Reset") and body is not None:
            raise BadRequest(f"{name} takes no arguments")
        if name == "Ping":
            return {"Success": "pong"}
        if name == "ListRules":
            return {"Rules": [r for _, r in sorted(self.rules.items())]}
        if name == "ListWorkers":
            if "stale-running" not in self.mutants:
                self.reap_all()
            return {"Workers": [self._describe(s) for _, s in sorted(self.slots.items())]}
        if name == "AddRule":
            return self.add_rule(body)
        if name == "Reset":
            self.reset()
            return {"Success": "reset"}
        if name == "RemoveRule":
            if not isinstance(body, dict) or set(body) != {"rule_id"}:
                raise BadRequest('RemoveRule takes {"rule_id": ...}')
            return self.remove_rule(body["rule_id"])
        if name == "WorkerRules":
            if not isinstance(body, dict) or set(body) != {"interface"}:
                raise BadRequest('WorkerRules takes {"interface": ...}')
            return await self.worker_rules(body["interface"])
        raise BadRequest(f"unknown command {name!r}")

    def _describe(self, slot: Slot) -> dict[str, Any]:
        worker = slot.worker
        status: Any
        if worker is None:
            status, pid = {"Restarting": {"backoff_ms": round(slot.delay * 1000)}}, None
        else:
            status, pid = ("Running" if worker.ready else "Starting"), worker.proc.pid
        return {
            "pid": pid,
            "worker_type": "DataPlane",
            "core_id": None,
            "interface": slot.interface,
            "status": status,
        }

    def add_rule(self, body: Any) -> dict[str, Any]:
        rule = validate_rule(body, self.mutants)
        rule_id = rule["rule_id"]
        key = rule_id
        old = self.rules.get(rule_id)
        if old is not None and "upsert-duplicates" in self.mutants:
            key = f"{rule_id}\x00{self.seq}"  # stored beside the old one instead of replacing it
            old = None
        if old is not None and old["input_interface"] != rule["input_interface"]:
            del self.rules[rule_id]
            self._forward(old["input_interface"], {"RemoveRule": rule_id})
            if not self.rules_for(old["input_interface"]):
                self.retire(old["input_interface"])
        self.seq += 1
        self.rules[key] = rule
        self.added_seq[rule_id] = self.seq
        slot = self.slots.get(rule["input_interface"])
        if slot is None:
            self.ensure_slot(rule["input_interface"])  # the Sync carries the new rule
        else:
            self._forward(rule["input_interface"], {"AddRule": rule})
        return {"Success": f"rule {rule_id} added"}

    def remove_rule(self, rule_id: Any) -> dict[str, Any]:
        if not isinstance(rule_id, str) or rule_id not in self.rules:
            raise BadRequest(f"no rule with id {rule_id!r}")
        rule = self.rules.pop(rule_id)
        iface = rule["input_interface"]
        if "remove-not-forwarded" not in self.mutants:
            self._forward(iface, {"RemoveRule": rule_id})
        if not self.rules_for(iface) and iface in self.slots:
            self.retire(iface)
        return {"Success": f"rule {rule_id} removed"}

    def _forward(self, interface: str, message: Any) -> None:
        slot = self.slots.get(interface)
        if slot is not None and slot.worker is not None:
            slot.worker.send(message)

    async def worker_rules(self, interface: Any) -> dict[str, Any]:
        iface = interface_name(interface, "interface")
        self.reap_all()
        slot = self.slots.get(iface)
        if slot is None:
            raise BadRequest(f"no worker for interface {iface!r}")
        worker = slot.worker
        if worker is None or not worker.ready:
            raise BadRequest(f"the worker for {iface!r} is not running")
        self.request_seq += 1
        seq = self.request_seq
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.waiters[seq] = waiter
        worker.send({"GetRules": seq})
        try:
            rules = await asyncio.wait_for(waiter, self.args.worker_timeout)
        except TimeoutError:
            raise BadRequest(
                f"the worker for {iface!r} (pid {worker.proc.pid}) did not answer within "
                f"{self.args.worker_timeout * 1000:.0f} ms"
            ) from None
        finally:
            worker.waiters.pop(seq, None)
        return {"WorkerRules": {"interface": iface, "pid": worker.proc.pid, "rules": rules}}

    def reset(self) -> None:
        """Back to a fresh start (bundled-relay extension, used by the launcher between test
        examples): every worker killed and reaped, no rules, no slots, no backoff state."""
        for slot in self.slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
            if slot.worker is not None:
                self.retiring.add(slot.worker)
        self.slots.clear()
        for worker in list(self.retiring):
            with contextlib.suppress(OSError):
                worker.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=2)
            self.reap(worker)
        self.rules.clear()
        self.added_seq.clear()
        self.seq = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.args.socket)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window with wider access
        try:
            self.server = await asyncio.start_unix_server(self.handle, path=self.args.socket)
        finally:
            os.umask(old_umask)
        os.chmod(self.args.socket, 0o600)
        try:
            await self.stopping.wait()
        finally:
            self.server.close()
            self.shutdown()

    def shutdown(self) -> None:
        workers = [s.worker for s in self.slots.values() if s.worker is not None]
        for worker in [*workers, *self.retiring]:
            with contextlib.suppress(OSError):
                worker.proc.kill()
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                worker.proc.wait(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.args.socket)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="relay-supervisor", description=__doc__.split("\n")[0])
    p.add_argument("--socket", required=True, help="control socket path (created mode 0600)")
    p.add_argument("--fault-dir", default="", help="directory of crash-at-start-up fault files")
    p.add_argument("--initial-backoff", type=float, default=0.05, help="seconds")
    p.add_argument("--backoff-factor", type=float, default=2.0)
    p.add_argument("--backoff-cap", dest="cap", type=float, default=0.4, help="seconds")
    p.add_argument("--worker-timeout", type=float, default=0.05, help="seconds")
    p.add_argument("--request-timeout", type=float, default=1.0, help="seconds")
    p.add_argument("--max-request", type=int, default=65536, help="bytes")
    p.add_argument("--parent", type=int, default=None, help="die if this pid is not our parent")
    p.add_argument("--mutant", action="append", default=[], choices=sorted(KNOWN_MUTANTS))
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    die_with_parent(args.parent)
    asyncio.run(Relay(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
