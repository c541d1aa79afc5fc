"""The bundled relay: a supervisor and worker programs (real OS processes) plus seeded bugs.

``supervisor.py`` and ``worker.py`` are standalone stdlib-only scripts; :class:`BundledRelay`
starts one in a temp dir with every timing configurable (:class:`RelayConfig`).
"""

from .launch import BundledRelay, RelayConfig, RelayPool, SpawnAttempt
from .mutants import MUTANTS, check_mutants

__all__ = ["MUTANTS", "BundledRelay", "RelayConfig", "RelayPool", "SpawnAttempt", "check_mutants"]
