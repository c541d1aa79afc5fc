"""The real world, started or attached: PostgreSQL, Redis and processes.

Each server follows executor / janitor: an *executor* starts a private server on a free port (or
attaches to one named by ``STATEMODELS_PG_DSN`` / ``STATEMODELS_REDIS_URL``), a *janitor* gives
every example a fresh, verified world (a template-database clone, a FLUSHDB). Processes are named
by :class:`ProcessIdentity` -- ``(pid, create_time)`` -- and audited for leaks.

Example::

    from statemodels.infra import PostgresServer, TemplateJanitor

    with PostgresServer.from_env() as pg, TemplateJanitor(pg, name="app", install=None) as jan:
        dsn = jan.fresh()
        ...
        jan.release(dsn)
"""

from .pg_janitor import TemplateJanitor
from .ports import free_port
from .postgres import PostgresServer, find_pg_bin
from .processes import (
    ProcessIdentity,
    ResourceSample,
    Spawned,
    become_subreaper,
    cont,
    describe,
    exe_path,
    exe_sha256,
    kill,
    kill_tree,
    live_descendants,
    poll_until,
    reap_zombies,
    sample,
    send_signal,
    sha256_file,
    spawn,
    stop,
    wait_gone,
)
from .redis import RedisServer

__all__ = [
    "PostgresServer",
    "ProcessIdentity",
    "RedisServer",
    "ResourceSample",
    "Spawned",
    "TemplateJanitor",
    "become_subreaper",
    "cont",
    "describe",
    "exe_path",
    "exe_sha256",
    "find_pg_bin",
    "free_port",
    "kill",
    "kill_tree",
    "live_descendants",
    "poll_until",
    "reap_zombies",
    "sample",
    "send_signal",
    "sha256_file",
    "spawn",
    "stop",
    "wait_gone",
]
