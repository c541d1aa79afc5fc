"""The register, concurrently: several Redis clients on one store, judged by linearizability.

The sequential :class:`~statemodels.register.machine.RegisterMachine` cannot see a
compare-and-set done as GET, compare, SET (mutant ``cas-get-then-set``): with one client nothing
happens between the two round trips. Here each parallel suffix runs on its own Redis connection
in its own thread; when another client's write lands between the GET and the SET, the history
has a swap no sequential order explains, and the checker says so::

    def test_register_in_parallel(statemodels_redis):
        run_machine(lambda: RegisterParallelMachine(RegisterParallelDriver(statemodels_redis)))

The model is the sequential machine's :class:`~statemodels.register.model.RegisterModel`,
unchanged: its ``apply`` is the specification. Operations on different keys never interact, so
the history is checked per key (``partition_key``).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from itertools import count
from typing import TYPE_CHECKING, Any

import redis
from hypothesis import strategies as st

from ..engine import Outcome
from ..engine.parallel import ParallelMachine
from .commands import Cas, Delete, Get, Incr, Put
from .driver import run_on
from .model import RegisterModel
from .system import RegisterStore

if TYPE_CHECKING:
    from ..infra.redis import RedisServer

__all__ = [
    "RegisterClient",
    "RegisterConnections",
    "RegisterParallelDriver",
    "RegisterParallelMachine",
]

_stores = count()

# Two keys, tiny values: every command collides with another one often. Compare-and-set is
# drawn twice as often as the rest: it is the one command whose atomicity is the contract.
keys = st.sampled_from(["a", "b"])
values = st.integers(0, 2)
_cas = st.builds(Cas, keys, st.none() | values, values)
commands = st.one_of(
    st.builds(Get, keys),
    st.builds(Delete, keys),
    st.builds(Put, keys, values),
    st.builds(Incr, keys, st.integers(1, 2)),
    _cas,
    _cas,
)


class RegisterConnections:
    """Redis connections kept across examples, one per client number: connecting costs more
    than a whole program run on a loaded machine. Close it (or use ``with``) when done::

        with RegisterConnections(server) as connections:
            run_machine(lambda: RegisterParallelMachine(
                RegisterParallelDriver(server, connections=connections)))
    """

    def __init__(self, server: RedisServer, timeout: float = 5.0) -> None:
        self._server = server
        self._timeout = timeout
        self._open: dict[Hashable, redis.Redis] = {}

    def get(self, number: Hashable) -> redis.Redis:
        if number not in self._open:
            # Every call is bounded by the socket timeout: a hung server is an `info` operation.
            self._open[number] = self._server.client(
                socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        return self._open[number]

    def close(self) -> None:
        for each in self._open.values():
            each.close()
        self._open.clear()

    def __enter__(self) -> RegisterConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegisterClient:
    """One Redis connection on the shared store, used by one thread."""

    def __init__(self, client: redis.Redis, prefix: str, mutants: Iterable[str], owned: bool):
        self._client = client
        self._owned = owned
        self._mutants = frozenset(mutants)
        self.store = RegisterStore(self._client, prefix, self._mutants)

    def rebase(self, prefix: str) -> None:
        """Work on the store under ``prefix`` from now on (no I/O)."""
        self.store = RegisterStore(self._client, prefix, self._mutants)

    def run(self, cmd: Any) -> Outcome:
        return run_on(self.store, cmd)

    def close(self) -> None:
        if self._owned:
            self._client.close()


class RegisterParallelDriver:
    """A fresh, empty store per run: a new key prefix, so a reset costs no round trip.

    Every run's prefix starts with the driver's own (process id and a counter), so runs never
    see each other's keys, even on a Redis server shared with other test processes; ``close``
    removes every key under the driver's prefix (SCAN, never FLUSHDB).
    """

    def __init__(
        self,
        server: RedisServer,
        mutants: Iterable[str] = (),
        *,
        timeout: float = 5.0,
        connections: RegisterConnections | None = None,
    ) -> None:
        self._mutants = frozenset(mutants)
        # Our own connections (closed with us) unless the caller lends theirs.
        self._owned = connections is None
        self._connections = connections or RegisterConnections(server, timeout)
        self.prefix = f"sm-register-par-{os.getpid()}-{next(_stores)}"
        self._runs = count()
        self._admin = self._connections.get("admin")
        # Validates the mutant names before anything runs (a one-line ConfigurationError).
        self._current = self._next_prefix()
        self._store = RegisterStore(self._admin, self._current, self._mutants)
        self._clients: list[RegisterClient] = []

    def _next_prefix(self) -> str:
        return f"{self.prefix}-{next(self._runs)}"

    def client(self, number: int) -> RegisterClient:
        made = RegisterClient(
            self._connections.get(number), self._current, self._mutants, owned=False
        )
        self._clients.append(made)
        return made

    def reset(self) -> None:
        self._current = self._next_prefix()
        self._store = RegisterStore(self._admin, self._current, self._mutants)
        for each in self._clients:
            each.rebase(self._current)

    def contents(self) -> dict[str, int]:
        """The registers of the current run."""
        return self._store.contents()

    def close(self) -> None:
        try:
            names = list(self._admin.scan_iter(match=self.prefix + "-*", count=500))
            if names:
                self._admin.delete(*names)
        except redis.RedisError:
            pass  # the server is gone: nothing left to clear
        finally:
            if self._owned:
                self._connections.close()


class RegisterParallelMachine(ParallelMachine):
    """A prefix and two parallel suffixes of register commands, checked per key."""

    commands = commands
    lanes = 2
    # Short programs: a race needs only two commands on one key, and every command more is a
    # step the shrinker must try to delete (each try a program run `repeats` times).
    max_prefix = 2
    max_suffix = 3

    def __init__(self, driver: RegisterParallelDriver, **kwargs: Any) -> None:
        super().__init__(driver, RegisterModel(), **kwargs)

    def partition_key(self, cmd: Any) -> Hashable:
        return cmd.key
