"""The register driver: runs commands on a :class:`RegisterStore` and reports what happened."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import count
from typing import TYPE_CHECKING, Any

import redis

from ..engine import Outcome
from .commands import Cas, Delete, Get, Incr, Put
from .system import RegisterStore

if TYPE_CHECKING:
    from ..infra.redis import RedisServer

__all__ = ["RegisterDriver", "run_on"]

_stores = count()


class RegisterDriver:
    """A fresh, empty store per driver: a new key prefix, verified empty before the first step.

    Only this store's keys are ever touched (SCAN by prefix, never FLUSHDB), so the machine can
    run against a Redis server the user attached with ``STATEMODELS_REDIS_URL``.
    """

    def __init__(self, server: RedisServer, mutants: Iterable[str] = ()) -> None:
        self._client = server.client()
        self.store = RegisterStore(self._client, f"sm-register-{next(_stores)}", mutants)
        if self.store.contents():
            raise AssertionError("fresh register store is not empty: the reset did not hold")

    def run(self, cmd: Any) -> Outcome:
        return run_on(self.store, cmd)

    def observe(self) -> Mapping[str, Any]:
        return {"contents": self.store.contents()}

    def close(self) -> None:
        # Leave the (possibly shared, user-attached) server as we found it: only our keys go.
        try:
            self.store.clear()
        except redis.RedisError:
            pass  # the server is gone (an outage test, or a torn-down hang): nothing to clear
        finally:
            self._client.close()


def run_on(store: RegisterStore, cmd: Any) -> Outcome:
    """Run one command on ``store``; a Redis error becomes a failed outcome named by its type.

    Shared by the sequential driver and the parallel clients (``register.parallel``).
    """
    try:
        match cmd:
            case Put(key=key, value=value):
                store.put(key, value)
                return Outcome.ok()
            case Get(key=key):
                return Outcome.ok(value=store.get(key))
            case Delete(key=key):
                return Outcome.ok(existed=store.delete(key))
            case Incr(key=key, by=by):
                return Outcome.ok(value=store.incr(key, by))
            case Cas(key=key, expected=expected, new=new):
                return Outcome.ok(swapped=store.cas(key, expected, new))
    except redis.RedisError as exc:
        return Outcome.failed(type(exc).__name__, str(exc))
    raise TypeError(f"RegisterDriver cannot run {cmd!r}")
