"""Survivors we looked at and found equivalent: no correct machine can kill them.

A generated mutant that survives is either a gap in the machine (then the machine is fixed and
the mutant is killed on the next run) or *equivalent*: the mutated system behaves, through the
contract, exactly like the real one. Each equivalent mutant is listed here by its stable id with
the reason, and is left out of the score's denominator. An id that the generator no longer
produces is reported by the runner (``stale triage``): the code moved, look again.
"""

from __future__ import annotations

__all__ = ["EQUIVALENT"]

#: mutant id -> why it cannot be told apart from the real system through the contract.
EQUIVALENT: dict[str, str] = {}
