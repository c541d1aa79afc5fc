"""The bundled relay's generated mutants: :mod:`.python` over :data:`~.python.RELAY`'s files.

Kept as the relay's entry point (its ids, ``supervisor:<operator>:<n>``, are named by the triage
and the tests); the machinery is :mod:`statemodels.mutation.python`.
"""

from __future__ import annotations

from pathlib import Path

from . import python
from .python import RELAY, PyMutant, applied, scratch_copy

__all__ = ["FILES", "PyMutant", "applied", "mutants", "scratch_copy"]

#: The relay's own code (see :data:`~.python.RELAY`).
FILES = RELAY.files


def mutants(package_root: Path) -> list[PyMutant]:
    """Every mutant of the relay's files under ``package_root``, in a stable order."""
    return python.mutants(package_root, RELAY)
