"""Domain-neutral strategies: text a real system can store, and the hostile strings that break
systems which splice input into code.

Example::

    >>> from hypothesis import given
    >>> @given(storable_text(max_size=10))
    ... def test_roundtrip(s): ...
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["HOSTILE_STRINGS", "hostile_text", "long_text", "storable_text"]

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
