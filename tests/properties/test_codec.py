"""Commands as data: every command the bundled machines draw survives JSON and comes back equal;
what is not a registered command type is refused, never imported or built."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemodels import codec
from statemodels.register.commands import Cas, Delete, Get, Incr, Put
from statemodels.strategies import pggit as pggit_strategies
from statemodels.strategies import supervisor as relay_strategies

register_commands = st.one_of(
    st.builds(Put, st.text(max_size=3), st.integers()),
    st.builds(Get, st.text(max_size=3)),
    st.builds(Delete, st.text(max_size=3)),
    st.builds(Incr, st.text(max_size=3), st.integers()),
    st.builds(Cas, st.text(max_size=3), st.none() | st.integers(), st.integers()),
)


def _round_trip(command: object) -> object:
    return codec.decode(json.loads(json.dumps(codec.encode(command))))


@given(register_commands)
def test_register_commands_round_trip(command: object) -> None:
    assert _round_trip(command) == command


@settings(max_examples=60)
@given(pggit_strategies.commands(("t1",), ("feature",)))
def test_pggit_commands_round_trip_nested_values_included(command: object) -> None:
    back = _round_trip(command)
    assert back == command and type(back) is type(command)


@settings(max_examples=60)
@given(relay_strategies.relay_actions(workers=("eth0",), settled=("eth0",), removable=("r1",)))
def test_relay_commands_round_trip_nested_rules_included(action: object) -> None:
    command = action.command  # type: ignore[attr-defined]
    assert _round_trip(command) == command
    assert _round_trip(action) == action


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.tuples(inner, inner)
            | st.frozensets(st.integers(), max_size=3)
            | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            | st.dictionaries(st.integers(), inner, max_size=2)
            | st.binary(max_size=4)
        ),
        max_leaves=10,
    )
)
def test_plain_values_round_trip(value: object) -> None:
    assert _round_trip(value) == value


def test_the_format_is_readable_data() -> None:
    assert codec.encode(Cas("a", None, 2)) == {
        "$type": "statemodels.register.commands.Cas",
        "key": "a",
        "expected": None,
        "new": 2,
    }


def test_an_unregistered_type_is_refused_without_importing_it() -> None:
    with pytest.raises(codec.TraceFormatError, match=r"unregistered command type 'os\.system'"):
        codec.decode({"$type": "os.system", "command": "true"})


def test_a_command_class_that_lost_a_field_is_a_one_line_error() -> None:
    data = codec.encode(Get("a"))
    data["stale"] = 1
    with pytest.raises(codec.TraceFormatError, match=r"fields it no longer has \(stale\)"):
        codec.decode(data)


def test_a_user_command_type_registers_and_round_trips() -> None:
    @attrs.frozen
    class Mine:
        name: str
        parts: tuple[int, ...]

    codec.register(Mine)
    assert _round_trip(Mine("x", (1, 2))) == Mine("x", (1, 2))
    with pytest.raises(codec.TraceFormatError, match="cannot store a object"):
        codec.encode(Mine("x", (object(),)))  # type: ignore[arg-type]
