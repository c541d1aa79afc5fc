"""Hypothesis strategies: ``common`` for domain-neutral text, one module per domain.

Domain modules (``statemodels.strategies.pggit``, ``statemodels.strategies.supervisor``) are
imported by name, not from here: each pulls its domain's command classes.
"""

from .common import HOSTILE_STRINGS, hostile_text, long_text, storable_text

__all__ = ["HOSTILE_STRINGS", "hostile_text", "long_text", "storable_text"]
