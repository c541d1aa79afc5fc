"""PostgreSQL, started or attached: the *executor* half of the Postgres infra.

:class:`PostgresServer` either starts a private, throw-away cluster (``initdb`` into tmpfs, then
``postgres`` as a direct child we own and reap) or attaches to a server the user names with
``STATEMODELS_PG_DSN``. The *janitor* half -- fresh databases per example, cloned from a template
-- is :class:`~statemodels.infra.pg_janitor.TemplateJanitor` (re-exported here).

Example::

    with PostgresServer.from_env() as pg:
        with pg.connect() as conn:
            conn.execute("SELECT 1")

Settings trade durability for speed (``fsync=off``, no full-page writes): the cluster lives in
``/dev/shm`` and dies with the run, so there is nothing to be durable for.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import weakref
from typing import Any, Self

import psutil
import psycopg
from psycopg.conninfo import make_conninfo

from ..errors import ConfigurationError, MissingBinaryError, ServerError
from ..masking import mask_secret
from .embedded import embedded_pg_bin
from .ports import free_port
from .processes import (
    ProcessIdentity,
    Spawned,
    kill_tree,
    log_tail,
    one_line,
    poll_until,
    port_taken,
    scratch_dir,
    spawn,
)

__all__ = ["PostgresServer", "TemplateJanitor", "find_pg_bin"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
_ENV_DSN = "STATEMODELS_PG_DSN"
_ENV_BIN = "STATEMODELS_PG_BIN"
_SERVER_USER = "postgres"  # the OS user the cluster runs as when we are root
_HOW_TO_POINT = (
    f"set {_ENV_BIN} to the directory holding initdb and postgres, set {_ENV_DSN} to use a "
    "running server, `apt-get install postgresql`, or `pip install 'statemodels[embedded]'`"
)


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (for error messages and reprs)."""
    return mask_secret(dsn)


def _server_uid() -> int | None:
    """The uid the cluster will run as: the ``postgres`` user when we are root, else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SERVER_USER).pw_uid
    except KeyError:
        return None


def _has_server_binaries(path: str) -> bool:
    return all(os.access(os.path.join(path, b), os.X_OK) for b in ("initdb", "postgres"))


def _version_key(path: str) -> tuple[int, ...]:
    version = os.path.basename(os.path.dirname(path))
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def find_pg_bin(bin_dir: str | None = None) -> str:
    """Locate the directory holding ``initdb`` and ``postgres``.

    Order: the ``bin_dir`` argument, then ``STATEMODELS_PG_BIN`` -- either of which, when given,
    is the only place looked at -- else ``pg_config --bindir`` from ``PATH``, then
    ``/usr/lib/postgresql/*/bin`` (highest version first), then the ``pgserver`` wheel of the
    ``statemodels[embedded]`` extra.

    Raises:
        MissingBinaryError: one line listing every place looked at and how to point elsewhere.
    """
    looked: list[str] = []
    candidates: list[tuple[str, str]] = []
    env_bin = os.environ.get(_ENV_BIN)
    if bin_dir is not None:
        candidates.append(("bin_dir argument", bin_dir))
    elif env_bin:
        candidates.append((_ENV_BIN, env_bin))
    else:
        pg_config = shutil.which("pg_config")
        if pg_config is None:
            looked.append("pg_config (not on PATH)")
        else:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=True
                )
                candidates.append((f"{pg_config} --bindir", out.stdout.strip()))
            except (OSError, subprocess.SubprocessError) as exc:
                looked.append(f"{pg_config} --bindir (failed: {one_line(exc)})")
        pattern = "/usr/lib/postgresql/*/bin"
        found = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        candidates.extend((pattern, p) for p in found)
        if not found:
            looked.append(f"{pattern} (no match)")
    for label, path in candidates:
        if _has_server_binaries(path):
            return path
        looked.append(f"{path!r} (from {label}: no initdb/postgres there)")
    if bin_dir is None and not env_bin:
        wheel = embedded_pg_bin(run_as_uid=_server_uid())
        if wheel is not None:
            return wheel
        looked.append("the pgserver wheel (not installed)")
    raise MissingBinaryError(
        f"PostgreSQL server binaries not found; looked in: {'; '.join(looked)}. To fix: "
        f"{_HOW_TO_POINT}"
    )


def _shutdown(proc: Spawned | None, base: str | None, timeout: float) -> None:
    """Stop an owned cluster and remove its directory; failures are logged, never hidden.

    A module function (not a method) so a :class:`weakref.finalize` can run it at interpreter
    exit for a server nobody stopped, without keeping the server object alive.
    """
    try:
        if proc is not None and proc.alive():
            root = proc.identity.process()
            tree = []
            if root is not None:
                with contextlib.suppress(psutil.Error):
                    tree = [
                        ProcessIdentity(p.pid, p.create_time())
                        for p in root.children(recursive=True)
                    ]
            # SIGINT is PostgreSQL's "fast shutdown": abort sessions, checkpoint, exit.
            proc.signal(signal.SIGINT)
            if proc.wait(timeout) is None:
                log.warning("postgres pid %d ignored fast shutdown for %.0f s", proc.pid, timeout)
            for ident in [proc.identity, *tree]:
                kill_tree(ident, timeout=timeout)
            proc.wait(timeout)
        elif proc is not None:
            proc.wait(timeout)  # reap a server that died on its own
    except Exception:
        log.exception("stopping postgres failed")
    finally:
        if base is not None:
            shutil.rmtree(
                base,
                onerror=lambda _f, path, exc: log.error("cannot remove %s: %s", path, exc[1]),
            )


class PostgresServer:
    """A PostgreSQL server: one we started and own, or one we attached to.

    Build it with :meth:`start`, :meth:`attach` or :meth:`from_env`, not directly. Use it as a
    context manager; :meth:`stop` is idempotent and does nothing to an attached server.

    Attributes:
        dsn: connection string of the admin database (``postgres`` when owned; the database of
            the given DSN when attached).
        host, port: where the server listens.
        owned: True if we started it (then we also stop it and delete its data).
        data_dir: the cluster directory (None when attached).
    """

    def __init__(
        self,
        *,
        dsn: str,
        host: str,
        port: int,
        owned: bool,
        proc: Spawned | None = None,
        base_dir: str | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.host = host
        self.port = port
        self.owned = owned
        self._proc = proc
        self._base = base_dir
        self.data_dir = os.path.join(base_dir, "data") if base_dir else None
        self.log_path = os.path.join(base_dir, "server.log") if base_dir else None
        self._finalizer = weakref.finalize(self, _shutdown, proc, base_dir, stop_timeout)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        bin_dir: str | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> PostgresServer:
        """Start a private cluster on a free port with its data in tmpfs.

        Runs ``initdb`` once, then ``postgres`` as a direct child (no ``pg_ctl``), so the server
        is ours to watch and reap. As root, both run as the ``postgres`` OS user.

        Raises:
            MissingBinaryError: no ``initdb``/``postgres`` found (see :func:`find_pg_bin`).
            ServerError: ``initdb`` or the server failed; the message ends with the log's tail.
        """
        bindir = find_pg_bin(bin_dir)
        if port is None:
            port = free_port()
        elif not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port={port!r} is not a TCP port; pass 1..65535 or None")
        user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(_SERVER_USER)
            except KeyError:
                raise ServerError(
                    f"running as root, PostgreSQL must run as the unprivileged OS user "
                    f"{_SERVER_USER!r}, which does not exist; create it (`useradd {_SERVER_USER}`)"
                    f" or set {_ENV_DSN}"
                ) from None
        base = scratch_dir("statemodels-pg-")
        proc: Spawned | None = None
        try:
            if user is not None:
                os.chown(base, user.pw_uid, user.pw_gid)
            proc = cls._run_cluster(bindir, base, port, user and user.pw_name, startup_timeout)
        except BaseException:
            _shutdown(proc, base, 5.0)
            raise
        dsn = make_conninfo(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        return cls(dsn=dsn, host="127.0.0.1", port=port, owned=True, proc=proc, base_dir=base)

    @staticmethod
    def _run_cluster(
        bindir: str, base: str, port: int, user: str | None, startup_timeout: float
    ) -> Spawned:
        data = os.path.join(base, "data")
        log_path = os.path.join(base, "server.log")
        # A minimal environment: the server must not read anything of ours (e.g. under /root).
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": base}
        with open(log_path, "ab") as logfh:
            initdb_argv = [os.path.join(bindir, "initdb"), "-D", data, "--auth=trust"]
            initdb_argv += ["-U", "postgres", "--no-sync", "--encoding=UTF8", "--locale=C"]
            initdb = spawn(
                [*initdb_argv, "--no-instructions"],
                env=env,
                cwd=base,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                name="initdb",
                user=user,
            )
            code = initdb.wait(60.0)
            if code != 0:
                initdb.terminate(1.0)
                why = "timed out after 60 s" if code is None else f"exited with {code}"
                raise ServerError(f"initdb -D {data!r} {why}; log: {log_tail(log_path)}")
            settings = {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": base,
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "200",
                # Nothing to replicate: minimal WAL makes CREATE/DROP DATABASE cheaper.
                "wal_level": "minimal",
                "max_wal_senders": "0",
                "max_wal_size": "1GB",
                "log_min_messages": "warning",
                # Dynamic shared memory as files in the data dir, not /dev/shm/PostgreSQL.*:
                # whatever kills the server, removing its dir removes them too.
                "dynamic_shared_memory_type": "mmap",
            }
            argv = [os.path.join(bindir, "postgres"), "-D", data, "-p", str(port)]
            for key, value in settings.items():
                argv += ["-c", f"{key}={value}"]
            proc = spawn(
                argv,
                env=env,
                cwd=base,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                name="postgres",
                user=user,
            )
        dsn = make_conninfo(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        if not poll_until(lambda: _ready(proc, dsn, data), timeout=startup_timeout):
            raise ServerError(
                f"postgres on port {port} not ready after {startup_timeout:.0f} s; "
                f"log: {log_tail(log_path)}"
            )
        if not proc.alive():
            if port_taken(log_path):
                raise ServerError(
                    f"port {port} is already in use: omit port= to start on a free port, or set "
                    "STATEMODELS_PG_DSN to attach to the server listening there"
                )
            raise ServerError(
                f"postgres on port {port} exited during start-up; log: {log_tail(log_path)}"
            )
        return proc

    @classmethod
    def attach(cls, dsn: str) -> PostgresServer:
        """Use a running server; connects once to validate ``dsn`` (5 s timeout).

        Raises:
            ConfigurationError: one line naming the DSN (password masked) and why it failed.
        """
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError(
                f"PostgreSQL DSN {dsn!r} is empty or not a string; pass e.g. "
                f"'postgresql://user@host:5433/postgres' (or unset {_ENV_DSN})"
            )
        try:
            with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
                host, port = conn.info.host, conn.info.port
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot use PostgreSQL DSN {mask_dsn(dsn)!r}: {one_line(exc)}; fix the DSN "
                f"(or {_ENV_DSN}), or unset {_ENV_DSN} to start a private server"
            ) from None
        return cls(dsn=dsn, host=host, port=port, owned=False)

    @classmethod
    def from_env(cls) -> PostgresServer:
        """Attach to ``STATEMODELS_PG_DSN`` if set (and non-empty), else start a private server."""
        dsn = os.environ.get(_ENV_DSN)
        return cls.attach(dsn) if dsn else cls.start()

    # -- use ----------------------------------------------------------------------------------

    def dsn_for(self, dbname: str) -> str:
        """The DSN of database ``dbname`` on this server (same host, port, user, password)."""
        return make_conninfo(self.dsn, dbname=dbname)

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection[Any]:
        """A new connection to ``dbname`` (connect timeout 5 s). The caller closes it."""
        return psycopg.connect(
            self.dsn_for(dbname), autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT
        )

    def pids(self) -> set[int]:
        """Pids of the server's process tree (postmaster and backends); empty when attached."""
        proc = self._proc
        root = proc.identity.process() if proc is not None else None
        if root is None:
            return set()
        with contextlib.suppress(psutil.Error):
            return {root.pid, *(p.pid for p in root.children(recursive=True))}
        return {root.pid}

    def alive(self) -> bool:
        """True while an owned server's postmaster runs (always True when attached)."""
        return self._proc.alive() if self._proc is not None else True

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL of the tree after 10 s; remove the data dir.

        Idempotent; a no-op for an attached server.
        """
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "owned" if self.owned else "attached"
        return f"<PostgresServer {state} {mask_dsn(self.dsn)!r}>"


def _ready(proc: Spawned, dsn: str, data_dir: str) -> bool:
    """True once OUR server answers -- or once it died (start() then reports why).

    Checks the answering server's data directory: if the port was taken, another server may
    answer the connection while ours is still failing to bind.
    """
    if not proc.alive():
        return True
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.OperationalError:
        return False
    return row is not None and os.path.realpath(row[0]) == os.path.realpath(data_dir)


# The janitor lives in its own module (size); importing it here keeps
# ``from statemodels.infra.postgres import TemplateJanitor`` working.
from .pg_janitor import TemplateJanitor  # noqa: E402
