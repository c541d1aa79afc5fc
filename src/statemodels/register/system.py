"""The bundled real system: a register store kept in Redis, with seeded bugs.

Every key lives under a per-store prefix, so several stores can share one Redis database. Values
are integers stored as Redis strings; compare-and-set runs as a Lua script so it is atomic.

Mutants are realistic mistakes, selected by name::

    RegisterStore(client, "t1", mutants={"cas-blind"})
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from ..engine import check_mutants

__all__ = ["CONCURRENT_ONLY", "MUTANTS", "RegisterStore"]

MUTANTS: dict[str, str] = {
    "cas-blind": "compare-and-set writes without comparing (a GET/SET race 'optimised' away)",
    "cas-get-then-set": (
        "compare-and-set as GET, compare in the client, then SET: correct alone, racy when "
        "another client writes in between (only a concurrent history shows it)"
    ),
    "delete-reports-missing": (
        "delete answers from a stale cache: reports False for a key it did remove"
    ),
    "incr-from-one": "incr on an absent key starts from 1 instead of 0 (an off-by-one default)",
}

#: Mutants no sequential run can see: they need another client acting in between.
CONCURRENT_ONLY: frozenset[str] = frozenset({"cas-get-then-set"})

# KEYS[1] = key, ARGV[1] = expected ('' = absent), ARGV[2] = new value.
_CAS = """
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RegisterStore:
    """Integer registers in Redis under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str, mutants: Iterable[str] = ()) -> None:
        self._r = client
        self._prefix = prefix + ":"
        self.mutants = check_mutants(mutants, MUTANTS)
        self._cas = client.register_script(_CAS)

    def _key(self, key: str) -> str:
        return self._prefix + key

    def put(self, key: str, value: int) -> None:
        self._r.set(self._key(key), value)

    def get(self, key: str) -> int | None:
        raw = self._r.get(self._key(key))
        return None if raw is None else int(raw)

    def delete(self, key: str) -> bool:
        removed = bool(self._r.delete(self._key(key)))
        return False if "delete-reports-missing" in self.mutants else removed

    def incr(self, key: str, by: int) -> int:
        if "incr-from-one" in self.mutants and not self._r.exists(self._key(key)):
            self._r.set(self._key(key), 1)
        return int(self._r.incrby(self._key(key), by))

    def cas(self, key: str, expected: int | None, new: int) -> bool:
        if "cas-blind" in self.mutants:
            self._r.set(self._key(key), new)
            return True
        if "cas-get-then-set" in self.mutants:
            # Two round trips with nothing holding the key between them.
            if self.get(key) != expected:
                return False
            self.put(key, new)
            return True
        wanted = "" if expected is None else str(expected)
        return bool(self._cas(keys=[self._key(key)], args=[wanted, new]))

    def clear(self) -> None:
        """Delete every register of this store."""
        names = list(self._r.scan_iter(match=self._prefix + "*", count=500))
        if names:
            self._r.delete(*names)

    def contents(self) -> dict[str, int]:
        """Every register of this store (SCAN, never KEYS: safe on a shared server)."""
        out = {}
        for raw_key in self._r.scan_iter(match=self._prefix + "*", count=500):
            name = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            value = self._r.get(name)
            if value is not None:
                out[name[len(self._prefix) :]] = int(value)
        return out
