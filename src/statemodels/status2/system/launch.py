"""Starting, signalling and stopping the bundled status2 process.

Example::

    with Status2Service.start(ServiceConfig(), redis_url=server.url) as svc:
        print(svc.ws_url("run1:status"))
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Self

from ...engine import check_mutants
from ...errors import ServerError
from ...infra.ports import free_port
from ...infra.processes import Spawned, log_tail, poll_until, scratch_dir, spawn
from ..config import ServiceConfig
from .mutants import MUTANTS

__all__ = ["ServiceConfig", "Status2Service"]

_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "service.py")


class Status2Service:
    """A bundled status2 process we own, on a free port of 127.0.0.1.

    Attributes:
        port: where it listens. config: its :class:`ServiceConfig`. mutants: its seeded bugs.
    """

    def __init__(
        self, config: ServiceConfig, redis_url: str, port: int, mutants: frozenset[str]
    ) -> None:
        self.config = config
        self.redis_url = redis_url
        self.port = port
        self.mutants = mutants
        self.dir = scratch_dir("statemodels-status2-")
        self.log_path = os.path.join(self.dir, "status2.log")
        self.proc: Spawned | None = None

    @classmethod
    def start(
        cls,
        config: ServiceConfig,
        *,
        redis_url: str,
        mutants: Iterable[str] = (),
        timeout: float = 15.0,
    ) -> Status2Service:
        """Start the service and wait until ``/health`` answers.

        Raises:
            ServerError: it exited or did not answer in time; the message ends with its log.
        """
        svc = cls(config, redis_url, free_port(), check_mutants(mutants, MUTANTS))
        try:
            svc.launch(timeout)
        except BaseException:
            svc.stop()
            raise
        return svc

    def launch(self, timeout: float = 15.0) -> None:
        """(Re)start the process on :attr:`port` and wait for ``/health``."""
        env = {**os.environ, **self.config.env()}
        env.update(
            STATUS_LISTEN_ADDR=f"127.0.0.1:{self.port}",
            STATUS_REDIS_URL=self.redis_url,
            STATUS_MUTANTS=",".join(sorted(self.mutants)),
            PYTHONUNBUFFERED="1",
        )
        with open(self.log_path, "ab") as log:
            self.proc = spawn(
                [sys.executable, _PROGRAM],
                env=env,
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                name="status2",
            )
        proc = self.proc
        if not poll_until(lambda: not proc.alive() or self.healthy(), timeout=timeout):
            raise ServerError(
                f"status2 on port {self.port} did not answer /health within {timeout:g} s; "
                f"log: {log_tail(self.log_path)}"
            )
        if not proc.alive():
            raise ServerError(f"status2 on port {self.port} exited; log: {log_tail(self.log_path)}")

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
            try:
                conn.request("GET", "/health")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except OSError:
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> set[int]:
        return {self.proc.pid} if self.proc is not None and self.proc.alive() else set()

    def sigterm(self, timeout: float) -> int | None:
        """SIGTERM and wait for the exit code (None: still running after ``timeout``)."""
        if self.proc is None:
            return None
        self.proc.signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def restart(self, timeout: float = 15.0) -> None:
        """Start again on the same port after a SIGTERM (kills a survivor first)."""
        if self.proc is not None and self.proc.alive():
            self.proc.kill()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.launch(max(deadline - time.monotonic(), 1.0))
                return
            except ServerError:
                # Port still held (a socket in TIME_WAIT is fine; a lingering close is not).
                if time.monotonic() > deadline:
                    raise
                if self.proc is not None:
                    self.proc.kill()

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL) and remove its temp dir. Idempotent."""
        try:
            if self.proc is not None:
                self.proc.terminate(timeout=5.0)
        finally:
            self.proc = None
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
