"""The weighting helpers the domains' strategies are built with.

Hypothesis's ``one_of`` drops a repeated branch and flattens nested ones: weights written as
repetition or nesting silently vanish. These tests pin the helpers that keep them.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodels.strategies.common import opaque, weighted


def test_one_of_itself_loses_weights_written_as_repeats_or_nesting() -> None:
    # The trap the helpers exist for: if Hypothesis ever stops doing this, they are unneeded.
    a = st.just("a")
    assert len(st.one_of(a, a, a, st.just("b")).branches) == 2
    inner = st.one_of(st.just(1), st.just(2), st.just(3))
    assert len(st.one_of(st.just(0), inner).branches) == 4
    assert len(st.one_of(st.just(0), inner.map(str)).branches) == 4  # also through map


def test_weighted_keeps_one_branch_per_unit_of_weight() -> None:
    anything = st.one_of(st.just("b"), st.just("c"), st.just("d"), st.just("e"))
    strategy = weighted((3, st.just("a")), (1, anything))
    assert len(strategy.branches) == 4  # three copies of a, and anything as one branch


def test_opaque_is_one_branch_of_an_enclosing_one_of() -> None:
    inner = st.one_of(st.just(1), st.just(2), st.just(3))
    assert len(st.one_of(st.just(0), opaque(inner)).branches) == 2


@given(weighted((2, st.integers(0, 3)), (1, st.just(-1))))
def test_weighted_draws_only_what_its_choices_draw(value: int) -> None:
    assert value == -1 or 0 <= value <= 3


def test_a_weight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number >= 1"):
        weighted((0, st.just(1)))
