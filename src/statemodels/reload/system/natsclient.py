"""The NATS fleet's clients: dependents, the collector and the writer (nats-py, real processes).

A standalone script (``python -I natsclient.py ROLE ...``; it imports only nats-py, redis-py and
the standard library), one role per process. None of them is a reloaded binary -- the broker is
(the real ``nats-server``) -- and none is proven by its exe: they are proven by what they report.
Every role writes its own report, a JSON **status file written by rename** (a reader never sees
half of one), whenever it changes and at least every 50 ms:

``{"pid", "role", "connected", "server_id", "connected_url", "reconnects", ...}``

``server_id`` is the id the broker announced on *this* connection (nats-py's server info), so the
driver can tell which broker process a dependent is really connected to.

- ``dependent``: holds a connection with reconnect options and a subscription.
- ``collector``: a durable JetStream pull consumer on ``records``; it acks a record on receipt,
  keeps it in a buffer (as telegraf keeps metrics) and flushes the buffer to Redis every 50 ms,
  and on SIGTERM before it exits (after taking what the broker already sent it). A flush
  appends each record once (a record redelivered by the stream after a lost ack is recognised
  by its stream sequence).
- ``writer``: publishes sequence-numbered, timestamped records to ``records`` one at a time,
  each retried under the same ``Nats-Msg-Id`` until JetStream acks it, and after a reconnect
  it resends the last record (its ack may have been the old broker's last word) under that
  record's id: JetStream's dedup window stores each record once. Every acked record is appended
  to its log. On SIGTERM it finishes the record in hand and exits.

Seeded bugs (argv): ``--no-reconnect`` (dependent), ``--drop-buffer-on-sigterm``,
``--newest-first`` (LPUSH for RPUSH), ``--ms-timestamps`` (collector),
``--retry-new-id`` (writer: a retry or resend gets a new message id, so JetStream cannot
dedup it).
Every role exits when ``--watch-pid`` is gone: a client never outlives its test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

STREAM, SUBJECT, DURABLE = "RECORDS", "records", "collector"


class Reporter:
    """The status file: written by rename, whenever asked and by a 50 ms heartbeat."""

    def __init__(self, path: str, role: str) -> None:
        self.path = path
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "role": role,
            "connected": False,
            "server_id": None,
            "connected_url": None,
            "reconnects": 0,
        }

    def connection(self, nc: Any) -> None:
        info = getattr(nc, "_server_info", None) or {}
        self.state["connected"] = bool(nc.is_connected)
        self.state["server_id"] = info.get("server_id") if nc.is_connected else None
        url = nc.connected_url
        self.state["connected_url"] = f"{url.hostname}:{url.port}" if url else None
        self.write()

    def write(self) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.state, fh)
        os.replace(tmp, self.path)


async def _connect(args: argparse.Namespace, reporter: Reporter, reconnect: bool = True) -> Any:
    import nats

    holder: dict[str, Any] = {}

    async def on_change() -> None:
        if "nc" in holder:
            reporter.connection(holder["nc"])

    async def reconnected() -> None:
        reporter.state["reconnects"] += 1
        await on_change()

    async def error(exc: Exception) -> None:  # nats-py logs by default; a report is enough
        reporter.state["last_error"] = type(exc).__name__

    nc = await nats.connect(
        servers=[args.url],
        allow_reconnect=reconnect,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.05,
        connect_timeout=1,
        ping_interval=1,
        max_outstanding_pings=2,
        disconnected_cb=on_change,
        reconnected_cb=reconnected,
        closed_cb=on_change,
        error_cb=error,
    )
    holder["nc"] = nc
    reporter.connection(nc)
    return nc


async def _heartbeat(nc: Any, reporter: Reporter, stop: asyncio.Event, watch: int) -> None:
    while not stop.is_set():
        if watch and not _alive(watch):
            stop.set()
            return
        reporter.connection(nc)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_on_term() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _connect_retrying(args: argparse.Namespace, reporter: Reporter, **kw: Any) -> Any:
    """Connect, retrying while the broker is not up yet (a dependent may start first)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            return await _connect(args, reporter, **kw)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def dependent(args: argparse.Namespace) -> None:
    reporter = Reporter(args.status, "dependent")
    stop = _stop_on_term()
    nc = await _connect_retrying(args, reporter, reconnect=not args.no_reconnect)
    await nc.subscribe("heartbeat.>")
    await _heartbeat(nc, reporter, stop, args.watch_pid)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 1.0)


async def _ensure_stream(js: Any) -> None:
    from nats.js.api import StreamConfig

    with contextlib.suppress(Exception):
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], duplicate_window=120))


# Appends a record once per stream sequence: a redelivery after a lost ack is not a new record.
_APPEND_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 3600) then
  redis.call(ARGV[2], KEYS[1], ARGV[1])
end
return 1
"""


def _ms_timestamp(data: bytes) -> bytes:
    """The seeded bug ``--ms-timestamps``: the record stored with its time cut to milliseconds
    (a store schema with a millisecond column)."""
    record = json.loads(data)
    record["ts"] = record["ts"] // 1_000_000 * 1_000_000
    return json.dumps(record).encode()


async def collector(args: argparse.Namespace) -> None:
    import redis
    from nats.js.api import ConsumerConfig

    reporter = Reporter(args.status, "collector")
    reporter.state.update(received=0, stored=0, empty_fetches=0, buffered=0)
    stop = _stop_on_term()
    store = redis.Redis.from_url(args.redis, socket_timeout=2.0, socket_connect_timeout=2.0)
    append = store.register_script(_APPEND_ONCE)
    nc = await _connect_retrying(args, reporter)
    js = nc.jetstream(timeout=1.0)
    buffer: list[tuple[int, bytes]] = []

    def flush() -> None:
        if not buffer:
            return
        pipe = store.pipeline(transaction=False)
        # The seeded bug --newest-first builds the list with LPUSH, newest at the head.
        push = "LPUSH" if args.newest_first else "RPUSH"
        for stream_seq, data in buffer:
            if args.ms_timestamps:
                data = _ms_timestamp(data)
            keys = [args.key, f"{args.key}:seen:{stream_seq}"]
            append(keys=keys, args=[data, push], client=pipe)
        pipe.execute()
        reporter.state["stored"] += len(buffer)
        buffer.clear()

    async def take(msgs: list[Any]) -> None:
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.ack()  # acked on receipt: from here the record is ours to keep
            buffer.append((msg.metadata.sequence.stream, msg.data))
            reporter.state["received"] += 1

    sub = None
    last_flush = time.monotonic()
    beat = asyncio.ensure_future(_heartbeat(nc, reporter, stop, args.watch_pid))
    while not stop.is_set():
        if sub is None:
            try:
                await _ensure_stream(js)
                # A lost ack (the broker restarted under it) is redelivered after ack_wait;
                # 2 s, not the default 30, so it lands well inside a records check (10 s).
                # Redeliveries are stored once (the seen key), so this costs no duplicate.
                sub = await js.pull_subscribe(
                    SUBJECT,
                    durable=DURABLE,
                    stream=STREAM,
                    config=ConsumerConfig(ack_wait=2.0),
                )
            except Exception:
                await asyncio.sleep(0.05)
                continue
        try:
            msgs = await sub.fetch(batch=64, timeout=0.05)
        except Exception:  # nothing to fetch, or the broker is away: try again
            msgs = []
            if nc.is_connected:
                # Nothing pending for us: with the writer stopped and the buffer flushed, every
                # record the stream holds has been stored (the driver waits for two of these).
                reporter.state["empty_fetches"] += 1
        await take(msgs)
        if time.monotonic() - last_flush >= 0.05:
            flush()
            last_flush = time.monotonic()
        reporter.state["buffered"] = len(buffer)
    if sub is not None:
        # Records the broker delivered for a fetch that timed out on our side (a loaded machine
        # answers a 50 ms pull late) wait in the subscription; left there, the broker sends them
        # again after ack_wait to the next collector, behind newer records (out of order).
        # Take them before the final flush: an empty fetch, or 0.3 s, ends it (the writer goes
        # on publishing; what it sends now is the next collector's, in order).
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            try:
                late = await sub.fetch(batch=64, timeout=0.05)
            except Exception:
                break
            await take(late)
    if not args.drop_buffer_on_sigterm:
        flush()
    reporter.write()
    beat.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 1.0)


async def writer(args: argparse.Namespace) -> None:
    import nats.errors

    reporter = Reporter(args.status, "writer")
    reporter.state.update(acked=0, retries=0, done=False)
    stop = _stop_on_term()
    nc = await _connect_retrying(args, reporter)
    js = nc.jetstream(timeout=0.1)
    await _ensure_stream(js)
    seen_reconnects = 0

    async def send(seq: int, data: bytes, retry_of: int = 0) -> None:
        """Publish until JetStream acks; every retry (and resend) keeps the record's message
        id, so the stream's dedup window stores it once."""
        attempt = 0
        give_up = time.monotonic() + 30.0
        while True:
            msg_id = f"{args.run}:{seq}"
            if args.retry_new_id and (attempt or retry_of):
                msg_id += f":{retry_of}:{attempt}"  # the bug: a retry is a new message
            try:
                await js.publish(SUBJECT, data, headers={"Nats-Msg-Id": msg_id})
                return
            except (TimeoutError, nats.errors.Error):
                attempt += 1
                reporter.state["retries"] += 1
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.01)

    beat = asyncio.ensure_future(_heartbeat(nc, reporter, asyncio.Event(), args.watch_pid))
    seq = 0
    last: tuple[int, bytes] | None = None
    with open(args.log, "a", buffering=1) as log:
        while not stop.is_set():
            if last is not None and reporter.state["reconnects"] > seen_reconnects:
                # The connection dropped since the last record: its ack may have been the
                # broker's last word, so resend it (at-least-once; the id makes it once).
                seen_reconnects = reporter.state["reconnects"]
                await send(*last, retry_of=seen_reconnects)
            seq += 1
            ts = time.time_ns()
            data = json.dumps({"run": args.run, "seq": seq, "ts": ts}).encode()
            await send(seq, data)
            last = (seq, data)
            log.write(f"{seq} {ts}\n")
            reporter.state["acked"] = seq
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.interval)
    reporter.state["done"] = True
    reporter.write()
    beat.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 1.0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="a NATS client of the reload fleet")
    parser.add_argument("role", choices=["dependent", "collector", "writer"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--watch-pid", type=int, default=0)
    parser.add_argument("--no-reconnect", action="store_true")
    parser.add_argument("--redis")
    parser.add_argument("--key")
    parser.add_argument("--drop-buffer-on-sigterm", action="store_true")
    parser.add_argument("--newest-first", action="store_true")
    parser.add_argument("--ms-timestamps", action="store_true")
    parser.add_argument("--run")
    parser.add_argument("--log")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--retry-new-id", action="store_true")
    args = parser.parse_args(argv)
    role = {"dependent": dependent, "collector": collector, "writer": writer}[args.role]
    asyncio.run(role(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
