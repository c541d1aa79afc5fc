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
from .common import long_text, prefer, storable_text

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
    # Mostly from a pool: names must collide for re-create, rename-onto, delete-then-commit to
    # happen within a few steps. Names this example already used come first (shrinking goes
    # there), the rest keeps the search open to any name. The repeats do not weigh: ``one_of``
    # counts a repeated branch once, so this is one in two from the pool (one in three each with
    # ``known``). Truly weighted picks (tried: distinct copies per branch) drew more steps that
    # succeed but made the pggit hunts shrink 3-5x slower: the hunts are tuned on these weights.
    chosen = st.sampled_from(pool)
    if not known:
        return st.one_of(chosen, chosen, chosen, other)
    used = st.sampled_from(known)
    return st.one_of(used, used, chosen, other)


def table_names(known: Names = ()) -> st.SearchStrategy[str]:
    """Table names: ``known`` ones, the colliding :data:`TABLE_NAMES`, any valid identifier."""
    return _mostly(TABLE_NAMES, known, _identifier())


def column_names() -> st.SearchStrategy[str]:
    return _mostly(COLUMN_NAMES, (), _identifier())


def branch_names(known: Names = ()) -> st.SearchStrategy[str]:
    """Branch names, the 1..255 limit at and around both ends (0 and 256 are invalid)."""
    return _mostly(BRANCH_NAMES, known, storable_text(max_size=12))


def messages() -> st.SearchStrategy[str]:
    """Commit messages: hostile ones, arbitrary text, and 10k-character ones."""
    return st.one_of(st.sampled_from(MESSAGES), storable_text(max_size=30), long_text(10_000))


def custom_trinity_ids(used: Names = ()) -> st.SearchStrategy[str | None]:
    """None (the system generates one) or a custom ID; once the example has committed custom
    IDs (``used``), one of those again as often as a new one: a duplicate must be refused, and
    meeting one by chance among five was luck at ``ci``."""
    if not used:
        return st.one_of(st.none(), st.sampled_from(CUSTOM_TRINITY_IDS))
    return st.one_of(st.none(), st.sampled_from(used), st.sampled_from(CUSTOM_TRINITY_IDS))


def _pick(names: Names) -> st.SearchStrategy[str] | None:
    return st.sampled_from(names) if names else None


def commits(
    branches: Names = (), used: Names = (), active: Names = ()
) -> st.SearchStrategy[Commit]:
    """Commits, two in three to ``main`` or another ``active`` branch (a commit to a deleted
    branch fails; one to a new name creates the branch from main)."""
    branch = prefer(st.sampled_from(("main", *active)), branch_names(branches))
    return st.builds(Commit, branch, messages(), custom_trinity_ids(used))


def ops(
    tables: Names = (),
    branches: Names = (),
    live: Names = (),
    active: Names = (),
) -> st.SearchStrategy[Op]:
    """Any single op: table DDL, a commit, a branch created or deleted.

    What the model knows steers each op to what succeeds now two times in three
    (:func:`~statemodels.strategies.common.prefer`: the rest, and the stand-in when nothing
    qualifies, is the state-independent pick the shrinker goes to):

    - ``tables`` / ``branches``: names the example already used (live or not), drawn more often;
    - ``live``: the tables that exist now -- alter, rename and drop name one;
    - ``active``: branches besides main that are there now -- a delete names one, a new branch
      or a commit grows from one (or from main).
    """
    table = table_names(tables)
    # A create (or a rename's target) is not steered to a free name: a pick among the names no
    # live table held shifted under the shrinker as it deleted earlier creates, and repros kept
    # 4-10 failing creates it could not delete (a model-only replica showed it too); without
    # the example's own names, re-creating a dropped table became rare and the
    # recreate-resets-version hunt passed. So: known names first, the pool, any identifier.
    existing = prefer(_pick(live), table)
    branch = branch_names(branches)
    parent = prefer(st.sampled_from(("main", *active)), branch)
    # main is the one branch with a rule of its own (it cannot be deleted): one delete in four
    # names it (``prefer`` is three ``builds`` branches, flattened into this one; Hypothesis
    # over-draws the first), so a deployment that lets it go is met within a few examples.
    doomed = st.one_of(st.just("main"), prefer(_pick(active), branch))
    columns = st.lists(column_names(), min_size=1, max_size=3, unique=True)
    return st.one_of(
        st.builds(CreateTable, table),
        st.builds(AlterTable, existing, columns),
        st.builds(RenameTable, existing, table),
        st.builds(DropTable, existing),
        commits(branches, active=active),
        st.builds(CreateBranch, branch_names(), parent),
        st.builds(DeleteBranch, doomed),
    )


def txns(
    tables: Names = (),
    branches: Names = (),
    live: Names = (),
    active: Names = (),
) -> st.SearchStrategy[Txn]:
    """A transaction whose ops must vanish: rolled back, rolled back to a savepoint, or killed."""
    body = ops(tables, branches, live, active)
    return st.builds(
        Txn,
        st.lists(body, min_size=1, max_size=3),
        st.sampled_from(["rollback", "savepoint", "terminate"]),
        st.lists(body, max_size=2),
    )


def concurrent_commits(branches: Names = ()) -> st.SearchStrategy[ConcurrentCommits]:
    return st.builds(
        ConcurrentCommits,
        branch_names(branches),
        st.lists(st.sampled_from(MESSAGES), min_size=2, max_size=4),
        st.sampled_from(["read committed", "serializable"]),
    )


def generate_ids() -> st.SearchStrategy[GenerateIds]:
    return st.builds(GenerateIds, st.integers(1, 4), st.sampled_from(TIMEZONES))


@functools.lru_cache(maxsize=256)
def commands(
    tables: Names = (),
    branches: Names = (),
    live: Names = (),
    used: Names = (),
    active: Names = (),
) -> st.SearchStrategy[Op | Txn | ConcurrentCommits | GenerateIds]:
    """Every command the pggit machine runs, simplest first (shrinking ends on the early ones).

    ``tables`` / ``branches``: names the example already used, drawn more often (the machine
    passes what its model knows); ``live``: the tables that exist now; ``used``: the custom
    Trinity IDs committed so far (reused by commits); ``active``: see :func:`ops`.
    Cached: the same names give the same strategy object.
    """
    # Commits are the heart of pgGit: twice the weight of any other command.
    return st.one_of(
        ops(tables, branches, live, active),
        commits(branches, used, active),
        txns(tables, branches, live, active),
        concurrent_commits(branches),
        generate_ids(),
    )
