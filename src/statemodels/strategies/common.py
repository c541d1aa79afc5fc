"""Domain-neutral strategies: text a real system can store, and the hostile strings that break
systems which splice input into code.

Example::

    >>> from hypothesis import given
    >>> @given(storable_text(max_size=10))
    ... def test_roundtrip(s): ...
"""

from __future__ import annotations

from typing import TypeVar

from hypothesis import strategies as st

__all__ = ["HOSTILE_STRINGS", "hostile_text", "long_text", "prefer", "storable_text"]

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


def _same_again(value: T) -> T:  # a second function: ``builds`` caches on its arguments
    return value


def prefer(
    likely: st.SearchStrategy[T] | None, otherwise: st.SearchStrategy[T]
) -> st.SearchStrategy[T]:
    """``likely`` two times in three, else ``otherwise``: for what the model says succeeds now
    (a key that is there, the value it holds) against anything.

    ``likely=None`` (nothing qualifies now) draws ``otherwise`` in its place, so the branches
    are the same in every state: the shrinker replays a step's choices after deleting earlier
    steps, and they must still mean the same kind of pick. Shrinking goes to ``otherwise``:
    ``likely`` depends on the steps before, ``otherwise`` keeps its meaning.

    Why two in three: Hypothesis draws the first branch of a ``one_of`` about twice as often as
    its weight in a stateful run (measured: a two-way pick came out 61% / 39%), and the first is
    where shrinking must end. Two copies of ``likely`` behind one ``otherwise`` make it at least
    one in two in practice.

    ``one_of`` weighs its branches after flattening: a nested ``one_of`` becomes branches of its
    own, also through ``map`` (``one_of(x, (st.none() | values).map(f))`` is ``x`` one time in
    three), and the same strategy object given twice counts once (``builds`` caches on its
    arguments, hence a second function for the second copy). ``builds`` makes each side one
    branch.
    """
    pick = otherwise if likely is None else likely
    return st.one_of(
        st.builds(_same, otherwise), st.builds(_same, pick), st.builds(_same_again, pick)
    )
