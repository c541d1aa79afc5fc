"""Commands of the register machine: plain frozen data, printed as the repro."""

from __future__ import annotations

import attrs

__all__ = ["Cas", "Delete", "Get", "Incr", "Put"]


@attrs.frozen
class Put:
    """Set ``key`` to ``value``."""

    key: str
    value: int


@attrs.frozen
class Get:
    """Read ``key`` (``None`` when absent)."""

    key: str


@attrs.frozen
class Delete:
    """Remove ``key``; reports whether it existed."""

    key: str


@attrs.frozen
class Incr:
    """Add ``by`` to ``key`` (an absent key counts as 0); reports the new value."""

    key: str
    by: int


@attrs.frozen
class Cas:
    """Set ``key`` to ``new`` only if it currently holds ``expected`` (``None``: absent)."""

    key: str
    expected: int | None
    new: int
