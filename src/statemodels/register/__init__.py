"""The worked example: a Redis-backed register store against a dict model.

Small enough to read in one sitting, complete enough to copy: commands as frozen attrs classes
(``commands``), a pure model (``model``), a bundled real system with seeded bugs (``system``), a
driver (``driver``) and the machine (``machine``). ``tests/stateful/test_register.py`` runs it.
"""

from .commands import Cas, Delete, Get, Incr, Put
from .driver import RegisterDriver
from .machine import RegisterMachine
from .model import RegisterModel
from .system import CONCURRENT_ONLY, MUTANTS, RegisterStore

__all__ = [
    "CONCURRENT_ONLY",
    "MUTANTS",
    "Cas",
    "Delete",
    "Get",
    "Incr",
    "Put",
    "RegisterDriver",
    "RegisterMachine",
    "RegisterModel",
    "RegisterStore",
]
