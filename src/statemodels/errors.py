"""The one error hierarchy of statemodels.

Every error the library raises on purpose derives from :class:`StatemodelsError`, so a user can
catch "anything statemodels complained about" in one clause. Misuse also derives from the builtin
that fits (``ValueError`` for a bad value, ``TypeError`` for a wrong type), as pytest's
``UsageError`` and attrs' validators do.

Messages follow one rule: show the offending value with ``!r``, say why it is wrong, say what to
do next (which flag, variable or package).
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "MissingBinaryError",
    "ServerError",
    "StatemodelsError",
]


class StatemodelsError(Exception):
    """Root of every error statemodels raises on purpose."""


class ConfigurationError(StatemodelsError, ValueError):
    """A flag, environment variable or argument has a value we cannot use.

    Example: ``--budget turbo`` -> "unknown budget 'turbo': choose one of smoke, ci, deep".
    """


class MissingBinaryError(StatemodelsError, FileNotFoundError):
    """An executable a real system needs (``initdb``, ``redis-server``) was not found."""


class ServerError(StatemodelsError, RuntimeError):
    """A real server could not be started, reached or reset."""
