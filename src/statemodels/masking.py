"""Passwords never printed: masking for DSNs and URLs, and a ``str`` whose ``repr`` masks itself.

A leaf module (like ``errors``): anyone may import it. Mask at the boundary -- where a secret
enters (an option) it becomes a :class:`Secret`, and every message that formats one with ``str``
goes through :func:`mask_secret`.

Example::

    >>> mask_secret("postgresql://admin:hunter2@db:5432/app")
    'postgresql://admin:***@db:5432/app'
    >>> Secret("redis://:hunter2@127.0.0.1:6380/0")
    'redis://:***@127.0.0.1:6380/0'
"""

from __future__ import annotations

import re

__all__ = ["Secret", "mask_secret"]


def mask_secret(text: str) -> str:
    """``text`` (a DSN or URL) with any password replaced by ``***``."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", text)


class Secret(str):
    """A DSN or URL that may hold a password: a ``str`` for every library, masked in its ``repr``.

    Tracebacks (pytest shows each frame's arguments), journals and reprs of the objects holding
    it go through ``repr``, so the password never reaches a terminal or a log by that road.
    Messages must still use :func:`mask_secret` when they format it with ``str``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_secret(str(self)))
