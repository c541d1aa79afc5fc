"""Strategies for the pggit machine: identifiers (hostile ones included), messages, Trinity IDs,
and the ops of :mod:`statemodels.pggit.commands`.

Names come mostly from small pools, so tables and branches collide, get re-created and renamed
onto each other; the pools lead with plain names so shrinking ends on readable repros
(``t1``, ``main``, ``''``). The pools hold the hostile cases on purpose: quotes, dots, spaces,
reserved words, unicode, ``$$``.

Example::

    >>> from hypothesis import given
    >>> @given(ops())
    ... def test_repr_is_a_repro(op): assert eval(repr(op))  # commands are plain data
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from ..pggit.commands import (
    AlterTable,
    Commit,
    ConcurrentCommits,
    CreateBranch,
    CreateTable,
    DeleteBranch,
    DropTable,
    GenerateIds,
    Op,
    RenameTable,
    Txn,
)
from .common import long_text, opaque, storable_text, weighted

__all__ = [
    "BRANCH_NAMES",
    "COLUMN_NAMES",
    "CUSTOM_TRINITY_IDS",
    "MESSAGES",
    "TABLE_NAMES",
    "TIMEZONES",
    "branch_names",
    "column_names",
    "commands",
    "commits",
    "concurrent_commits",
    "custom_trinity_ids",
    "generate_ids",
    "messages",
    "ops",
    "table_names",
    "txns",
]

TABLE_NAMES = ("t1", "t2", "a.b", 'x"y', "select", "Table $$ 🐘")
COLUMN_NAMES = ("a", "b", "order", 'c"d', "xmin")
#: The contract's 1..255 characters, at, just inside and just outside both ends.
BRANCH_NAMES = ("main", "feature", "it's $$ 🐘", "", "b", "bc", "x" * 254, "y" * 255, "z" * 256)
MESSAGES = (
    "",
    "msg",
    " padded ",
    "it's",
    "back\\slash",
    "$$ not a body $$",
    "'); DELETE FROM pggit.commits; --",
    "tab\tnew\nline",
    "ünïcødé 🐘",
)
#: Well-formed IDs from 2001 (no generated ID can equal one), and malformed ones.
CUSTOM_TRINITY_IDS = (
    "20010101000000000000-000001-0badcafe",
    "20010101000000000000-000002-00000000",
    "20010101000000000000-000003-ABCDEF01",
    # One character short of the format, in the timestamp and in the hex part.
    "2001010100000000000-000004-0badcafe",
    "20010101000000000000-000005-0badcaf",
)
TIMEZONES = ("UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Asia/Kolkata", "Etc/GMT+12")


def _identifier() -> st.SearchStrategy[str]:
    # PostgreSQL truncates identifiers longer than 63 bytes: generate only ones it keeps whole.
    return storable_text(min_size=1, max_size=12).filter(lambda s: len(s.encode()) <= 63)


Names = tuple[str, ...]


def _mostly(pool: Names, known: Names, other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Three in four from a pool: names must collide for re-create, rename-onto, delete-then-
    # commit to happen within a few steps. Names this example already used come first (shrinking
    # goes there), the rest keeps the search open to any name.
    chosen = st.sampled_from(pool)
    if not known:
        return weighted((3, chosen), (1, other))
    return weighted((2, st.sampled_from(known)), (1, chosen), (1, other))


def table_names(known: Names = ()) -> st.SearchStrategy[str]:
    """Table names: ``known`` ones, the colliding :data:`TABLE_NAMES`, any valid identifier."""
    return _mostly(TABLE_NAMES, known, _identifier())


def column_names() -> st.SearchStrategy[str]:
    """Column names: plain and quoted ones that collide across alters, any identifier, and a
    system column's name (``xmin``: always refused, so one in eight)."""
    plain = tuple(c for c in COLUMN_NAMES if c != "xmin")
    return weighted((4, st.sampled_from(plain)), (3, _identifier()), (1, st.just("xmin")))


def branch_names(known: Names = ()) -> st.SearchStrategy[str]:
    """Branch names, the 1..255 limit at and around both ends (0 and 256 are invalid)."""
    return _mostly(BRANCH_NAMES, known, storable_text(max_size=12))


def messages() -> st.SearchStrategy[str]:
    """Commit messages: hostile ones, arbitrary text, and 10k-character ones."""
    return st.one_of(st.sampled_from(MESSAGES), storable_text(max_size=30), long_text(10_000))


def custom_trinity_ids() -> st.SearchStrategy[str | None]:
    """Half None (the system generates one); else a custom, often reused, ID -- well-formed
    two times in three, malformed (rejected, changes nothing) one in three."""
    well_formed, malformed = CUSTOM_TRINITY_IDS[:3], CUSTOM_TRINITY_IDS[3:]
    # One sampled_from with repeats; Hypothesis draws its ends more often than the middle, so
    # the ends are None and the malformed ones sit inside.
    w1, w2, w3 = well_formed
    m1, m2 = malformed
    return st.sampled_from((None, None, None, w1, m1, w2, m2, w3, w1, None, None, None))


def _valid_branch(name: str) -> bool:
    return 1 <= len(name) <= 255


def _free(pool: Names, known: Names, taken: Names) -> Names:
    """Names of ``known`` and ``pool`` not in ``taken``: a create or rename onto one succeeds."""
    return tuple(n for n in dict.fromkeys(known + pool) if n not in taken)


def _likely(good: Names, anything: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Four in five from what the model says will work now; the rest may fail (a minority, so
    # the errors stay exercised but most steps change the state).
    if not good:
        return anything
    return weighted((4, st.sampled_from(good)), (1, anything))


def commits(branches: Names = (), active: Names = ()) -> st.SearchStrategy[Commit]:
    """Commits, mostly to an active branch (``active``; main always is)."""
    target = _likely(("main", *active), branch_names(branches))
    return st.builds(Commit, target, messages(), custom_trinity_ids())


def ops(
    tables: Names = (), branches: Names = (), live: Names = (), active: Names = ()
) -> st.SearchStrategy[Op]:
    """Any single op: table DDL, a commit, a branch created or deleted.

    ``tables`` and ``branches`` are names the example already used: drawn more often.
    ``live``: the tables that exist now; ``active``: the branches besides main that are active
    now. Each op is drawn mostly in a form the model says succeeds -- alter, rename and drop
    name a live table, create and rename onto a free name, a branch is created under an active
    parent with a new name, a delete names an active branch -- and otherwise freely (a missing
    table, a taken or invalid name: a minority, not the rule).
    """
    table = table_names(tables)
    existing = _likely(live, table)
    fresh_table = _likely(_free(TABLE_NAMES, tables, live), table)
    branch = branch_names(branches)
    taken = ("main", *branches)
    fresh_branch = _likely(
        tuple(n for n in _free(BRANCH_NAMES, (), taken) if _valid_branch(n)), branch
    )
    parent = _likely(("main", *active), branch)
    # main is the one branch with a rule of its own (it cannot be deleted): one delete in four
    # names it, so a deployment that lets it go is met within a few examples, not by luck.
    doomed = weighted((2, _likely(active, branch)), (1, branch), (1, st.just("main")))
    columns = st.lists(column_names(), min_size=1, max_size=3, unique=True)
    on_tables = [
        st.builds(AlterTable, existing, columns),
        st.builds(RenameTable, existing, fresh_table),
        st.builds(DropTable, existing),
    ]
    if not live:  # all three would fail now: together they weigh as much as one op
        on_tables = [opaque(st.one_of(on_tables))]
    return st.one_of(
        st.builds(CreateTable, fresh_table),
        *on_tables,
        commits(branches, active),
        st.builds(CreateBranch, fresh_branch, parent),
        st.builds(DeleteBranch, doomed),
    )


def txns(
    tables: Names = (), branches: Names = (), live: Names = (), active: Names = ()
) -> st.SearchStrategy[Txn]:
    """A transaction whose ops must vanish: rolled back, rolled back to a savepoint, or killed."""
    return st.builds(
        Txn,
        st.lists(ops(tables, branches, live, active), min_size=1, max_size=3),
        st.sampled_from(["rollback", "savepoint", "terminate"]),
        st.lists(ops(tables, branches, live, active), max_size=2),
    )


def concurrent_commits(
    branches: Names = (), active: Names = ()
) -> st.SearchStrategy[ConcurrentCommits]:
    return st.builds(
        ConcurrentCommits,
        _likely(("main", *active), branch_names(branches)),
        st.lists(st.sampled_from(MESSAGES), min_size=2, max_size=4),
        st.sampled_from(["read committed", "serializable"]),
    )


def generate_ids() -> st.SearchStrategy[GenerateIds]:
    return st.builds(GenerateIds, st.integers(1, 4), st.sampled_from(TIMEZONES))


@functools.lru_cache(maxsize=256)
def commands(
    tables: Names = (), branches: Names = (), live: Names = (), active: Names = ()
) -> st.SearchStrategy[Op | Txn | ConcurrentCommits | GenerateIds]:
    """Every command the pggit machine runs, simplest first (shrinking ends on the early ones).

    ``tables`` / ``branches``: names the example already used, drawn more often (the machine
    passes what its model knows); ``live``: the tables that exist now; ``active``: the active
    branches besides main. Cached: the same names give the same strategy object.
    """
    # Commits are the heart of pgGit: twice the weight of any other command.
    return st.one_of(
        ops(tables, branches, live, active),
        commits(branches, active),
        txns(tables, branches, live, active),
        concurrent_commits(branches, active),
        generate_ids(),
    )
