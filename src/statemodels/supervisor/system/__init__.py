"""The bundled relay: a supervisor and worker programs (real OS processes) plus seeded bugs.

``supervisor.py`` and ``worker.py`` are standalone stdlib-only scripts; :class:`BundledRelay`
starts one in a temp dir with every timing configurable (:class:`RelayConfig`).
"""

from .launch import BundledRelay, RelayConfig, RelayPool, SpawnAttempt
from .mutants import CONCURRENT_ONLY, MUTANTS, check_mutants

__all__ = [
    "CONCURRENT_ONLY",
    "MUTANTS",
    "BundledRelay",
    "RelayConfig",
    "RelayPool",
    "SpawnAttempt",
    "check_mutants",
]
