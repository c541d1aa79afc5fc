"""Domain-neutral strategies: text a real system can store, and the hostile strings that break
systems which splice input into code.

Example::

    >>> from hypothesis import given
    >>> @given(storable_text(max_size=10))
    ... def test_roundtrip(s): ...
"""

from __future__ import annotations

import functools
from typing import TypeVar

from hypothesis import strategies as st

__all__ = ["HOSTILE_STRINGS", "hostile_text", "long_text", "opaque", "storable_text", "weighted"]

T = TypeVar("T")

#: Strings that are harmless data -- unless someone splices them into SQL, a shell or a format.
HOSTILE_STRINGS: tuple[str, ...] = (
    "it's",
    'say "hi"',
    "back\\slash",
    "$$ not a body $$",
    "$tag$",
    "'); DROP TABLE t; --",
    "%s %(x)s {0}",
    "semi;colon",
    "tab\tnew\nline",
    " padded ",
    "ünïcødé 🐘",
    "select",
)


def storable_text(*, min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    """Unicode text without NUL or surrogates: what PostgreSQL ``text`` (UTF-8) stores exactly."""
    chars = st.characters(codec="utf-8", exclude_characters="\x00")
    return st.text(chars, min_size=min_size, max_size=max_size)


def long_text(length: int = 10_000) -> st.SearchStrategy[str]:
    """``length`` characters made of one hostile fragment repeated (quotes, ``$$``, ...)."""
    fragments = st.sampled_from(["x", "'", "$$", "\\", '"', "🐘"])
    return fragments.map(lambda f: (f * (length // len(f) + 1))[:length])


def hostile_text(*, max_size: int = 20) -> st.SearchStrategy[str]:
    """Mostly the curated :data:`HOSTILE_STRINGS`, sometimes arbitrary storable text."""
    return st.one_of(st.sampled_from(HOSTILE_STRINGS), storable_text(max_size=max_size))


def _same(value: T) -> T:
    return value


def opaque(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``strategy`` as one branch of an enclosing ``one_of``.

    ``st.one_of`` flattens a nested ``one_of`` into its own branches -- also through ``.map``,
    whose branches are the mapped inner ones -- so ``one_of(a, one_of(b, c, d, e))`` draws ``a``
    one time in five, not one in two. ``st.builds`` has no branches to offer: wrapped in it, the
    inner one stays one branch. Each call wraps with a new function: ``builds`` caches on its
    arguments, and the same object twice in a ``one_of`` counts once.
    """
    return st.builds(functools.partial(_same), strategy)


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """``one_of`` with weights: ``weighted((3, likely), (1, anything))`` draws ``likely`` three
    times in four, whatever ``anything`` is made of.

    Neither repeating nor nesting works with ``st.one_of``: it drops a branch that is the same
    object as an earlier one (``one_of(a, a, a, b)`` is a coin flip) and flattens nested
    ``one_of``s into its own branches. Every copy here is a distinct :func:`opaque` object.
    Shrinking still goes towards the first choice.
    """
    branches: list[st.SearchStrategy[T]] = []
    for weight, strategy in choices:
        if weight < 1:
            raise ValueError(f"a weight is a whole number >= 1 (got {weight!r})")
        branches.extend(opaque(strategy) for _ in range(weight))
    return st.one_of(branches)
