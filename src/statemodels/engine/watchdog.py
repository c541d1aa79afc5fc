"""Per-step timeouts: run a driver call in a worker thread and stop waiting after a deadline.

Hypothesis's ``deadline`` does not bound stateful rules and nothing stops a hung rule, so the engine
runs every driver call here. A Python thread cannot be killed; on timeout the caller tears the
system under test down (``driver.close()``), which unblocks the stuck call, and this watchdog
abandons the stuck thread and starts a fresh one for the next call. The worker is a daemon thread,
so an abandoned call can never keep the interpreter alive.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["StepTimeout", "Watchdog"]

T = TypeVar("T")


@attrs.define
class StepTimeout(Exception):
    """A call did not return within its timeout. ``waited`` is in seconds."""

    what: str
    timeout: float
    waited: float

    def __str__(self) -> str:
        return f"{self.what} did not return within {self.timeout:g}s (waited {self.waited:.3f}s)"


class _Call:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Watchdog:
    """Runs callables on one reusable daemon thread, each under a timeout.

    Example::

        dog = Watchdog("supervisor driver")
        outcome = dog.call(lambda: driver.run(cmd), timeout=5.0, what=repr(cmd))
    """

    def __init__(self, name: str = "statemodels-step") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] | None = None

    def call(self, fn: Callable[[], T], *, timeout: float, what: str = "call") -> T:
        """Return ``fn()`` (re-raising what it raised); :class:`StepTimeout` after ``timeout``."""
        job = _Call(fn)
        self._worker().put(job)
        start = time.monotonic()
        if not job.done.wait(timeout):
            # The thread is stuck inside fn: abandon it (it exits after fn returns, if ever).
            self._queue = None
            raise StepTimeout(what, timeout, time.monotonic() - start)
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        """Let the worker thread exit. Safe to call twice."""
        if self._queue is not None:
            self._queue.put(None)
            self._queue = None

    def _worker(self) -> queue.SimpleQueue[_Call | None]:
        if self._queue is None:
            q: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(q,), name=self._name, daemon=True).start()
            self._queue = q
        return self._queue


def _serve(q: queue.SimpleQueue[_Call | None]) -> None:
    while (job := q.get()) is not None:
        try:
            job.result = job.fn()
        except BaseException as exc:  # handed to the caller, who re-raises it
            job.error = exc
        finally:
            job.done.set()
