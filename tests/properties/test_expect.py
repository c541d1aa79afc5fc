"""The expectation algebra: each Expect accepts exactly what it says, and binds only on pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodels.engine import (
    AnyOf,
    Anything,
    Bind,
    Bindings,
    Changed,
    EachIn,
    Eq,
    Fails,
    Fresh,
    Matches,
    Same,
    Step,
    Within,
    expect_map,
)
from statemodels.engine.protocol import Outcome

values = st.integers() | st.text(max_size=5) | st.none()


@given(values, values)
def test_eq_passes_exactly_on_equality(a, b):
    assert (Eq(a).check(b, Bindings()) is None) == (a == b)


@given(st.lists(st.integers(0, 5), max_size=12))
def test_fresh_rejects_exactly_the_repeats(xs):
    b = Bindings()
    seen = set()
    for x in xs:
        verdict = Fresh("p").check(x, b)
        assert (verdict is None) == (x not in seen)
        if verdict is None:
            Fresh("p").bind(x, b)
        seen.add(x)


def test_fresh_pools_are_separate_and_default_to_the_field_name():
    b = Bindings()
    Fresh("a").bind(1, b)
    assert Fresh("b").check(1, b) is None
    assert expect_map({"trinity": Fresh()})["trinity"] == Fresh("trinity")


@given(values, values)
def test_same_and_changed_are_complements_once_bound(first, second):
    b = Bindings()
    Bind("w").bind(first, b)
    assert (Same("w").check(second, b) is None) == (first == second)
    assert (Changed("w").check(second, b) is None) == (first != second)


def test_unbound_slots_pass_and_bind():
    b = Bindings()
    assert Same("x").check(1, b) is None and Changed("x").check(1, b) is None
    Changed("x").bind(7, b)
    assert b.get("x") == 7
    assert Changed("x").check(7, b) == "unchanged"


@given(st.floats(-10, 10), st.floats(0, 5), st.floats(0, 5))
def test_within_is_a_closed_interval(x, lo, width):
    assert (Within(lo, lo + width).check(x, Bindings()) is None) == (lo <= x <= lo + width)


def test_within_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="hi must be >= lo"):
        Within(2, 1)


def test_matches_is_a_full_match_on_strings_only():
    assert Matches(r"\d{3}").check("123", Bindings()) is None
    assert Matches(r"\d{3}").check("1234", Bindings()) == "does not match"
    assert Matches(r"\d{3}").check(123, Bindings()) == "does not match"
    with pytest.raises(ValueError, match="not a regular expression"):
        Matches("(")


def test_fails_wants_a_failure_with_the_code():
    assert Fails("23505").check(None, Bindings()) == "succeeded"
    assert Fails("23505").check("40001", Bindings()) == "wrong error"
    assert Fails("23505").check("23505", Bindings()) is None
    assert Fails().check("anything", Bindings()) is None


def test_anyof_binds_through_the_first_passing_alternative():
    b = Bindings()
    Bind("s").bind(1, b)
    either = AnyOf(Same("s"), Changed("t"))
    assert either.check(2, b) is None
    either.bind(2, b)
    assert b.get("t") == 2 and b.get("s") == 1
    assert AnyOf(Eq(1), Eq(2)).check(3, b) == "matches no alternative"
    with pytest.raises(ValueError):
        AnyOf()


def test_anything_passes_and_steps_wrap_plain_values():
    assert Anything().check(object(), Bindings()) is None
    assert Step(model=None, expect={"v": 3}).expect["v"] == Eq(3)


def test_outcome_reports_error_as_a_field_and_summarises_on_one_line():
    out = Outcome.failed("23505", "duplicate key\nvalue violates", id=1)
    assert out.field("error") == "23505" and out.field("id") == 1
    assert "\n" not in out.summary()
    assert Outcome.ok(v=1).field("error") is None


@given(st.frozensets(st.integers(0, 9)), st.lists(st.integers(0, 9)))
def test_each_in_passes_exactly_when_every_element_is_allowed(allowed, real):
    verdict = EachIn(allowed).check(real, Bindings())
    assert (verdict is None) == (set(real) <= allowed)
    if verdict is not None:
        assert verdict.startswith("unexpected")


def test_each_in_refuses_a_non_collection_and_describes_its_set():
    assert EachIn({1}).check(1, Bindings()) == "not a collection"
    assert EachIn({1}).check("1", Bindings()) == "not a collection"
    assert EachIn({200, 100}).describe(Bindings()) == "each in {100, 200}"
