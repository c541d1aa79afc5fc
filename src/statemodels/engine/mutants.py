"""Mutant catalogues: validating the names of seeded bugs a bundled system is started with.

Every bundled system keeps a catalogue ``MUTANTS: dict[str, str]`` (name → the realistic mistake
it seeds) and takes ``mutants=`` at start-up. One helper validates the choice for all of them, so
a typo is the same one-line error everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ConfigurationError

__all__ = ["check_mutants"]


def check_mutants(mutants: Iterable[str], catalogue: Mapping[str, str]) -> frozenset[str]:
    """Return the chosen names as a frozenset; an unknown name is a one-line error.

    Example::

        >>> check_mutants({"typo"}, {"cas-blind": "..."})
        Traceback (most recent call last):
        ...
        statemodels.errors.ConfigurationError: unknown mutant(s) 'typo': choose from cas-blind
    """
    if isinstance(mutants, str):
        raise ConfigurationError(
            f"mutants must be a collection of names, not the string {mutants!r}"
        )
    chosen = frozenset(mutants)
    unknown = sorted(chosen - catalogue.keys())
    if unknown:
        raise ConfigurationError(
            f"unknown mutant(s) {', '.join(map(repr, unknown))}: "
            f"choose from {', '.join(sorted(catalogue))}"
        )
    return chosen
