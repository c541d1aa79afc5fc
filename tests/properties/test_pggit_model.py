"""Fast properties of the pggit model, its expectations, strategies and mutant catalogue.

No servers: these pin the contract written in ``statemodels.pggit.system`` to the model.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemodels.engine import Bindings, Fails
from statemodels.errors import ConfigurationError
from statemodels.pggit import (
    MUTANTS,
    AlterTable,
    Commit,
    ConcurrentCommits,
    CreateBranch,
    CreateTable,
    DeleteBranch,
    DropTable,
    GenerateIds,
    PggitModel,
    RenameTable,
    Txn,
)
from statemodels.pggit.expect import Heads, TrinityId, TrinityIds
from statemodels.pggit.system import install_sql
from statemodels.strategies import pggit as strategies

ROLE = "alice"


def run(*cmds: object) -> PggitModel:
    model = PggitModel(role=ROLE)
    for cmd in cmds:
        model = model.apply(cmd).model
    return model


def error_of(model: PggitModel, cmd: object) -> object:
    return model.apply(cmd).expect.get("error")


# -- commits and branches ---------------------------------------------------------------------


def test_each_commit_has_the_previous_head_as_parent() -> None:
    model = run(Commit("main", "one"), Commit("main", "two"), Commit("main", "three"))
    assert model.chain("main") == (("main", "three"), ("main", "two"), ("main", "one"))
    assert model.view()["commit_count"] == 3
    assert model.view()["authors"] == (ROLE,)


def test_a_branch_is_created_on_first_commit_from_mains_head() -> None:
    model = run(Commit("main", "base"), Commit("feature", "work"))
    assert model.view()["branches"] == {"main": ("ACTIVE", None), "feature": ("ACTIVE", "main")}
    assert model.chain("feature") == (("feature", "work"), ("main", "base"))


def test_branch_errors_keep_their_sqlstate() -> None:
    base = run(CreateBranch("b"), DeleteBranch("b"))
    assert error_of(base, DeleteBranch("main")) == Fails("23514")
    assert error_of(base, DeleteBranch("b")) == Fails("P0002")
    assert error_of(base, Commit("b", "x")) == Fails("55000")
    assert error_of(base, CreateBranch("b")) == Fails("23505")
    assert error_of(base, CreateBranch("c", parent="b")) == Fails("23503")
    assert error_of(base, CreateBranch("")) == Fails("23514")
    assert error_of(base, Commit("x" * 256, "m")) == Fails("23514")


def test_custom_trinity_ids_are_checked() -> None:
    good = "20010101000000000000-000001-0badcafe"
    model = run(Commit("main", "a", good))
    assert error_of(model, Commit("main", "b", good)) == Fails("23505")
    assert error_of(model, Commit("main", "b", "20010101000000000000-000003-ABCDEF01")) == Fails(
        "23514"
    )


def test_a_rolled_back_commit_leaves_nothing_but_burns_its_ref() -> None:
    model = run(Commit("main", "kept"))
    for end in ("rollback", "savepoint", "terminate"):
        step = model.apply(Txn((Commit("main", "gone"), CreateTable("t1")), end=end))
        assert step.model.view()["chains"] == model.view()["chains"]
        assert step.model.objects == model.objects
        assert step.model.next_ref == model.next_ref + 1


def test_savepoint_keeps_what_came_before_it_and_an_error_aborts_the_rest() -> None:
    step = PggitModel(role=ROLE).apply(
        Txn((Commit("main", "gone"),), end="savepoint", keep=(Commit("main", "kept"),))
    )
    assert step.model.chain("main") == (("main", "kept"),)
    step = PggitModel(role=ROLE).apply(Txn((DropTable("nope"), Commit("main", "x"))))
    assert step.expect["op0.error"] == Fails("42P01")
    assert step.expect["op1.error"] == Fails("25P02")


def test_concurrent_commits_form_one_chain_and_serializable_waiters_fail() -> None:
    step = PggitModel(role=ROLE).apply(ConcurrentCommits("main", ("a", "b", "c")))
    assert step.model.chain("main") == (("main", "c"), ("main", "b"), ("main", "a"))
    step = PggitModel(role=ROLE).apply(ConcurrentCommits("main", ("a", "b", "c"), "serializable"))
    assert step.expect["errors"].value == (None, "40001", None)  # type: ignore[attr-defined]
    assert step.model.chain("main") == (("main", "c"), ("main", "a"))


# -- versions ---------------------------------------------------------------------------------


def test_the_version_rule_for_create_alter_rename_drop_recreate() -> None:
    model = run(
        CreateTable("a.b"),
        AlterTable("a.b", ("x", "y")),
        RenameTable("a.b", "select"),
        DropTable("select"),
        CreateTable("select"),
    )
    assert model.view()["objects"] == (("select", True, 5),)
    assert model.view()["history"] == (
        (
            ("CREATE", None, 1),
            ("ALTER", 1, 2),
            ("RENAME", 2, 3),
            ("DROP", 3, 4),
            ("CREATE", 4, 5),
        ),
    )
    assert model.view()["get_version"] == {"select": 5}


def test_postgres_errors_for_table_ddl() -> None:
    model = run(CreateTable("t1"), AlterTable("t1", ("a",)))
    assert error_of(model, CreateTable("t1")) == Fails("42P07")
    assert error_of(model, AlterTable("t1", ("a",))) == Fails("42701")
    assert error_of(model, AlterTable("t1", ("xmin",))) == Fails("42701")
    assert error_of(model, AlterTable("t1", ("b", "b"))) == Fails("42701")
    assert error_of(model, RenameTable("t1", "t1")) == Fails("42P07")
    assert error_of(model, DropTable("t2")) == Fails("42P01")


@settings(max_examples=200)
@given(st.lists(strategies.ops(), max_size=25))
def test_history_is_contiguous_and_ends_at_the_version(ops: list[object]) -> None:
    view = run(*ops).view()
    for (_, _, version), history in zip(view["objects"], view["history"], strict=True):
        assert history[0][1] is None and history[0][0] == "CREATE"
        for (_, _, new), (_, old, _) in itertools.pairwise(history):
            assert old == new
        assert history[-1][2] == version
    live = [name for name, active, _ in view["objects"] if active]
    assert len(live) == len(set(live)) == len(view["get_version"])


# -- expectations -----------------------------------------------------------------------------


def test_trinity_id_expectation_checks_format_freshness_and_sequence() -> None:
    b = Bindings()
    first, second = "20250101000000000000-000005-0badcafe", "20250101000000000001-000004-0badcafe"
    expect = TrinityId(slot="commit:1", session="main")
    assert expect.check("2025-nope", b) == "malformed"
    assert expect.check(first, b) is None
    expect.bind(first, b)
    assert expect.check(first, b) == "repeated"
    assert TrinityId(session="main").check(second, b) == "sequence not increasing"
    assert TrinityId(session="other").check(second, b) is None
    assert Heads((("main", "commit:1"),)).check({"main": first}, b) is None
    assert TrinityIds(("", "-")).check((second, None), b) is None
    assert TrinityIds(("", "")).check((second, second), b) == "repeated"


# -- strategies and commands ------------------------------------------------------------------


@settings(max_examples=200)
@given(strategies.commands(("t1", "x y"), ("feature",)))
def test_commands_are_valid_data_whose_repr_replays(cmd: object) -> None:
    kinds: tuple[type, ...] = (AlterTable, Commit, ConcurrentCommits, CreateBranch, CreateTable)
    kinds += (DeleteBranch, DropTable, GenerateIds, RenameTable, Txn)
    namespace = {kind.__name__: kind for kind in kinds}
    assert eval(repr(cmd), namespace) == cmd
    PggitModel(role=ROLE).apply(cmd)  # every drawn command is one the model can judge


@given(strategies.messages())
def test_messages_are_storable_and_include_hostile_and_long_ones(message: str) -> None:
    assert "\x00" not in message and len(message) <= 10_000


def test_identifiers_postgres_would_truncate_are_rejected_in_one_line() -> None:
    with pytest.raises(ConfigurationError) as info:
        CreateTable("é" * 32)
    assert "64 bytes" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigurationError):
        Commit("main", "nul\x00")


# -- mutants ----------------------------------------------------------------------------------


def test_at_least_eight_mutants_each_changing_the_install_script() -> None:
    clean = install_sql()
    assert len(MUTANTS) >= 8
    for name in MUTANTS:
        assert install_sql({name}) != clean, name


def test_an_unknown_mutant_is_a_one_line_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        install_sql({"no-such-bug"})
    message = str(info.value)
    assert "'no-such-bug'" in message and "no-parent-link" in message and "\n" not in message
