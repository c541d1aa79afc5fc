"""The bundled relay's worker: one OS process per input interface, holding that interface's rules.

A real multicast relay worker would open raw sockets and forward packets; this one needs no
privileges: it *holds* its rules and reports them, which is all the supervisor contract is about.
It talks to its supervisor over an inherited socketpair with length-delimited JSON frames
(4-byte big-endian length, then UTF-8 JSON):

- supervisor -> worker: ``{"Sync": [rule, ...]}`` (replace the whole set), ``{"AddRule": rule}``
  (upsert by ``rule_id``), ``{"RemoveRule": rule_id}``, ``{"GetRules": seq}``, ``"Shutdown"``.
- worker -> supervisor: ``{"Ready": pid}`` once started,
  ``{"Rules": {"seq": seq, "rules": [...]}}``.

Exits: 0 on ``Shutdown``, on SIGTERM (a graceful stop) or when the supervisor hangs up;
3 when the crash-at-start-up fault fires. It dies with its supervisor (``PR_SET_PDEATHSIG``).

The crash-at-start-up fault is how tests make spawns fail, realistically: a worker that cannot
come up (a missing interface, a bind error) exits non-zero before it says Ready. Started with
``--crash 1`` (the supervisor decides, at spawn time, from ``<fault-dir>/<interface>.fail``), the
worker appends one JSON line ``{"pid", "start", "exit"}`` (kernel start time and exit time, both
seconds on ``CLOCK_BOOTTIME``) to ``<fault-dir>/<interface>.attempts`` and exits 3.

This file is a standalone script (stdlib only, run as ``python -I -S worker.py``): it starts in
about 10 ms, which keeps restarts at millisecond scale.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys
import time
from typing import Any

HEADER = struct.Struct(">I")
_MAX_FRAME = 16 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
CRASH_EXIT_CODE = 3


def send_frame(sock: socket.socket, message: Any) -> None:
    """Write one length-delimited JSON frame."""
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> Any:
    """Read one frame; ``None`` when the peer hung up."""
    header = _recv_exact(sock, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > _MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds {_MAX_FRAME}")
    body = _recv_exact(sock, length)
    return None if body is None else json.loads(body)


#: How much earlier than the real start a :func:`start_boottime` may read: /proc floors it to a
#: clock tick (10 ms at the usual USER_HZ of 100), plus 2 ms for the clocks' own rounding.
START_TIME_SLACK = 1 / os.sysconf("SC_CLK_TCK") + 0.002


def start_boottime(pid: int) -> float:
    """When ``pid`` started, in seconds on ``CLOCK_BOOTTIME`` (10 ms resolution, from /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        stat = fh.read()
    # Field 22 (starttime, clock ticks since boot); the command name may contain spaces/parens.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def die_with_parent(expected_parent: int | None) -> None:
    """Ask the kernel to SIGKILL us when our parent dies; exit if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the launcher's kill_tree still cleans up
        pass
    # The parent may have died before prctl took effect.
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def crash_at_start_up(fault_dir: str, interface: str) -> None:
    """Record this attempt in ``<fault-dir>/<interface>.attempts`` and exit 3, before Ready."""
    record = {
        "pid": os.getpid(),
        "start": start_boottime(os.getpid()),
        "exit": time.clock_gettime(time.CLOCK_BOOTTIME),
    }
    with open(os.path.join(fault_dir, f"{interface}.attempts"), "a") as fh:
        fh.write(json.dumps(record) + "\n")
    os._exit(CRASH_EXIT_CODE)


def serve(sock: socket.socket) -> int:
    """Hold rules and answer the supervisor until told to stop; return the exit code."""
    rules: dict[str, Any] = {}
    send_frame(sock, {"Ready": os.getpid()})
    while True:
        msg = recv_frame(sock)
        if msg is None or msg == "Shutdown":
            return 0
        (kind, body), *_ = msg.items()
        if kind == "Sync":
            rules = {r["rule_id"]: r for r in body}
        elif kind == "AddRule":
            rules[body["rule_id"]] = body
        elif kind == "RemoveRule":
            rules.pop(body, None)
        elif kind == "GetRules":
            ordered = [rules[k] for k in sorted(rules)]
            send_frame(sock, {"Rules": {"seq": body, "rules": ordered}})


def main(argv: list[str]) -> int:
    args = dict(zip(argv[0::2], argv[1::2], strict=False))
    interface = args["--interface"]
    die_with_parent(int(args["--parent"]) if "--parent" in args else None)
    # A graceful stop is a clean exit: the supervisor restarts a clean exit at once.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.get("--crash") == "1" and args.get("--fault-dir"):
        crash_at_start_up(args["--fault-dir"], interface)
    sock = socket.socket(fileno=int(args["--fd"]))
    try:
        return serve(sock)
    except (OSError, ValueError):
        return 0  # the supervisor went away mid-frame: nothing left to serve


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
