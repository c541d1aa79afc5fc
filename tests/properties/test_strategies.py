"""What Hypothesis's ``one_of`` does with repeated and nested branches.

The domains' strategies carry comments on their real weights ("one in two, not three in four")
that rest on this behaviour; if Hypothesis changes it, these tests say the comments are stale.
"""

from __future__ import annotations

from hypothesis import strategies as st


def test_a_repeated_branch_counts_once() -> None:
    a = st.just("a")
    assert len(st.one_of(a, a, a, st.just("b")).branches) == 2


def test_a_nested_one_of_is_flattened_also_through_map() -> None:
    inner = st.one_of(st.just(1), st.just(2), st.just(3))
    assert len(st.one_of(st.just(0), inner).branches) == 4
    assert len(st.one_of(st.just(0), inner.map(str)).branches) == 4


def test_builds_is_cached_on_its_arguments_so_it_cannot_make_copies() -> None:
    a = st.just("a")
    assert st.builds(str, a) is st.builds(str, a)


def test_a_sampled_from_is_one_branch_however_many_elements() -> None:
    # How the status2 faults are made rare: one branch for all their kinds.
    assert len(st.one_of(st.just(0), st.sampled_from((1, 2, 3, 4))).branches) == 2
