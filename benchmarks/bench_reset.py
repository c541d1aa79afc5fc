"""Per-example reset cost of the real systems statemodels drives, and server start-up times.

Run: ``python benchmarks/bench_reset.py`` (starts its own servers; about 20-30 s).

Every row is one way to give a Hypothesis example a fresh world. The Postgres rows share one
template (30 tables with seed rows, indexes, 10 functions); each example then connects, writes a
row and disconnects (not timed), so the reset sees a realistic dirty database. Times are in
milliseconds: the median and the 90th percentile over ``N`` examples of the reset alone
(``fresh()`` + ``release()``), and the median of reset plus that tiny example ("+work"). Real
examples run longer than this one, which gives ``prefetch`` more time to hide the clone.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from statemodels.infra import PostgresServer, RedisServer, TemplateJanitor

N = 50
TABLES = 30


def install(conn: psycopg.Connection[Any]) -> None:
    for i in range(TABLES):
        conn.execute(
            f"CREATE TABLE t{i} (id serial PRIMARY KEY, name text NOT NULL, n int);"
            f"CREATE INDEX t{i}_name ON t{i} (name);"
            f"INSERT INTO t{i} (name, n) SELECT 'row' || g, g FROM generate_series(1, 20) g"
        )
    for i in range(10):
        conn.execute(f"CREATE FUNCTION f{i}(x int) RETURNS int LANGUAGE sql AS 'SELECT x + {i}'")


def work(dsn: str, think_ms: float = 0.0) -> None:
    """What an example does between resets: connect, write, (wait on the system), disconnect."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO t0 (name, n) VALUES ('example', 0)")
        if think_ms:
            conn.execute("SELECT pg_sleep(%s)", (think_ms / 1000,))


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


Row = tuple[str, float, float, float | None, int, str]


def bench_janitor(
    pg: PostgresServer, label: str, note: str, think_ms: float = 0.0, **options: Any
) -> Row:
    with TemplateJanitor(pg, name="bench", install=install, **options) as jan:
        work(jan.fresh())  # warm-up (first clone pays for cold caches); its db is dropped on close
        samples, totals = [], []
        for _ in range(N):
            started = time.perf_counter()
            dsn = jan.fresh()
            mid = time.perf_counter()
            work(dsn, think_ms)
            resumed = time.perf_counter()
            jan.release(dsn)
            done = time.perf_counter()
            samples.append(1000 * ((mid - started) + (done - resumed)))
            totals.append(1000 * (done - started))
        drained = time.perf_counter()
    close_ms = 1000 * (time.perf_counter() - drained)
    note = f"{note}; close() {close_ms:.0f} ms" if note else f"close() {close_ms:.0f} ms"
    return (label, *stats(samples), statistics.median(totals), N, note)


def bench_same_name_force(pg: PostgresServer, template: str) -> Row:
    samples = []
    with pg.connect() as admin:
        for i in range(N + 1):
            started = time.perf_counter()
            admin.execute("DROP DATABASE IF EXISTS sm_bench_same WITH (FORCE)")
            admin.execute(f"CREATE DATABASE sm_bench_same TEMPLATE {template} STRATEGY FILE_COPY")
            if i:
                samples.append(1000 * (time.perf_counter() - started))
            work(pg.dsn_for("sm_bench_same"))
        admin.execute("DROP DATABASE sm_bench_same WITH (FORCE)")
    note = "unverified; DROP naps 100 ms if the last session has not exited yet"
    return ("DROP (FORCE) + clone, same name", *stats(samples), None, N, note)


def bench_truncate(pg: PostgresServer) -> Row:
    names = ", ".join(f"t{i}" for i in range(TABLES))
    seed = ";".join(
        f"INSERT INTO t{i} (name, n) SELECT 'row' || g, g FROM generate_series(1, 20) g"
        for i in range(TABLES)
    )
    samples = []
    with pg.connect() as admin:
        admin.execute("CREATE DATABASE sm_bench_trunc")
    try:
        with pg.connect("sm_bench_trunc") as conn:
            install(conn)
            for _ in range(N):
                work(pg.dsn_for("sm_bench_trunc"))
                started = time.perf_counter()
                with conn.transaction():
                    conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                    conn.execute(seed)
                samples.append(1000 * (time.perf_counter() - started))
    finally:
        with pg.connect() as admin:
            admin.execute("DROP DATABASE sm_bench_trunc WITH (FORCE)")
    note = "keeps schema changes an example made: not a full reset"
    return ("TRUNCATE all + reseed, one db", *stats(samples), None, N, note)


def bench_reinstall(pg: PostgresServer, n: int = 10) -> Row:
    samples = []
    with pg.connect() as admin:
        for _ in range(n):
            started = time.perf_counter()
            admin.execute("CREATE DATABASE sm_bench_re TEMPLATE template0")
            with pg.connect("sm_bench_re", autocommit=False) as conn:
                install(conn)
                conn.commit()
            admin.execute("DROP DATABASE sm_bench_re")
            samples.append(1000 * (time.perf_counter() - started))
    return ("create + run install script", *stats(samples), None, n, "no template (baseline)")


def bench_redis(rs: RedisServer, n: int = 200) -> Row:
    client = rs.client()
    samples = []
    try:
        for _ in range(n):
            client.mset({f"k{i}": i for i in range(100)})
            started = time.perf_counter()
            rs.reset()
            samples.append(1000 * (time.perf_counter() - started))
    finally:
        client.close()
    return ("Redis FLUSHDB + DBSIZE==0", *stats(samples), None, n, "100 keys per example")


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        server = fn()
        samples.append(1000 * (time.perf_counter() - started))
        server.stop()
    return stats(samples)


def main() -> None:
    t0 = time.perf_counter()
    rows: list[Row] = []
    with PostgresServer.start() as pg, RedisServer.start() as rs:
        rows.append(bench_janitor(pg, "clone FILE_COPY, verify=catalog", "default: prefetch 1"))
        rows.append(bench_janitor(pg, "  same, verify=full", "", verify="full"))
        rows.append(bench_janitor(pg, "  same, no prefetch", "clone in fresh()", prefetch=0))
        rows.append(
            bench_janitor(
                pg, "  same, no prefetch, sync drop", "", prefetch=0, background_drop=False
            )
        )
        rows.append(
            bench_janitor(pg, "  same, no prefetch, verify=none", "", prefetch=0, verify="none")
        )
        note = "examples wait 30 ms on the server"
        rows.append(bench_janitor(pg, "default, 30 ms examples", note, think_ms=30))
        rows.append(bench_janitor(pg, "  no prefetch, 30 ms examples", note, 30, prefetch=0))
        rows.append(
            bench_janitor(
                pg, "clone WAL_LOG, verify=catalog", "no prefetch", prefetch=0, strategy="wal_log"
            )
        )
        with TemplateJanitor(pg, name="benchtpl", install=install) as jan:
            rows.append(bench_same_name_force(pg, jan.template))
        rows.append(bench_truncate(pg))
        rows.append(bench_reinstall(pg))
        rows.append(bench_redis(rs))
    pg_start = timed(PostgresServer.start, 3)
    redis_start = timed(RedisServer.start, 10)
    rows.append(("PostgresServer.start (initdb+ready)", *pg_start, None, 3, "start-up"))
    rows.append(("RedisServer.start (ready on PING)", *redis_start, None, 10, "start-up"))

    base = rows[0][1]
    head = f"{'reset / start-up':<34} {'median':>8} {'p90':>8} {'+work':>8} {'n':>4} {'ratio':>6}"
    print(f"{head}  notes   (ms; ratio = median / first row; +work = median incl. the example)")
    print("-" * 110)
    for label, median, p90, total, n, note in rows:
        with_work = f"{total:8.2f}" if total is not None else f"{'':8}"
        ratio = median / base
        print(f"{label:<34} {median:8.2f} {p90:8.2f} {with_work} {n:>4} {ratio:6.2f}  {note}")
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
