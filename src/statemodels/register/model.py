"""The register's reference model: an immutable mapping from key to integer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..engine import Step
from .commands import Cas, Delete, Get, Incr, Put

__all__ = ["RegisterModel"]


def _frozen(contents: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(contents.items()))


@attrs.frozen
class RegisterModel:
    """What a correct register store holds. ``apply`` returns a new model, never mutates."""

    items: tuple[tuple[str, int], ...] = ()

    @property
    def contents(self) -> dict[str, int]:
        return dict(self.items)

    def _with(self, contents: Mapping[str, int]) -> RegisterModel:
        return RegisterModel(_frozen(contents))

    def apply(self, cmd: Any) -> Step:
        now = self.contents
        match cmd:
            case Put(key=key, value=value):
                return Step(self._with({**now, key: value}))
            case Get(key=key):
                return Step(self, {"value": now.get(key)})
            case Delete(key=key):
                rest = {k: v for k, v in now.items() if k != key}
                return Step(self._with(rest), {"existed": key in now})
            case Incr(key=key, by=by):
                value = now.get(key, 0) + by
                return Step(self._with({**now, key: value}), {"value": value})
            case Cas(key=key, expected=expected, new=new):
                if now.get(key) != expected:
                    return Step(self, {"swapped": False})
                return Step(self._with({**now, key: new}), {"swapped": True})
        raise TypeError(f"RegisterModel cannot apply {cmd!r}")

    def view(self) -> dict[str, Any]:
        return {"contents": self.contents}
