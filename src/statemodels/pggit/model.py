"""The pure reference model of a pgGit-compatible database (the contract in ``pggit.system``).

:class:`PggitModel` is immutable: ``apply(cmd)`` returns a :class:`~statemodels.engine.Step`
with the next model and what the real database must answer; ``view()`` is what the ``pggit``
tables must hold afterwards. It knows PostgreSQL's own answers too (``42P07`` for a table that
exists, ``25P02`` after an error inside a transaction), because the machine drives plain SQL.

Commits are named by *refs* (``commit:1``, ``commit:2`` ...): the engine binds each ref to the
real Trinity ID the first time it sees it, and the view checks branch heads through those slots.

Example::

    >>> m = PggitModel(role="alice")
    >>> step = m.apply(Commit(branch="main", message="hi"))
    >>> step.model.view()["chains"]
    {'main': (('main', 'hi'),)}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..engine import Eq, Fails, Fresh, Step, Within
from ..errors import ConfigurationError
from .commands import (
    AlterTable,
    Commit,
    ConcurrentCommits,
    CreateBranch,
    CreateTable,
    DeleteBranch,
    DropTable,
    GenerateIds,
    Op,
    ReadBranch,
    ReadLog,
    RenameTable,
    Txn,
)
from .expect import (
    NO_ID,
    NO_SLOT,
    TRINITY_RE,
    Chain,
    CustomId,
    Heads,
    Rows,
    TrinityId,
    TrinityIds,
)

__all__ = ["MAX_SKEW_S", "SYSTEM_COLUMNS", "BranchRec", "CommitRec", "ObjectRec", "PggitModel"]

#: Columns every PostgreSQL table has: adding one by that name fails like a duplicate.
SYSTEM_COLUMNS = frozenset({"tableoid", "cmax", "xmax", "cmin", "xmin", "ctid"})
#: How far (seconds) a Trinity timestamp may lie from the server's UTC clock.
MAX_SKEW_S = 60.0

ACTIVE, DELETED = "ACTIVE", "DELETED"


@attrs.frozen
class BranchRec:
    name: str
    parent: str | None
    status: str = ACTIVE
    head: int | None = None


@attrs.frozen
class CommitRec:
    ref: int
    branch: str
    parent: int | None
    message: str
    custom: str | None = None


@attrs.frozen
class ObjectRec:
    """A tracked table's row in ``pggit.objects`` plus its ``history`` rows."""

    name: str
    active: bool
    version: int
    columns: tuple[str, ...] = ()
    history: tuple[tuple[str, int | None, int], ...] = ()
    #: Model clock of the last change: re-create continues the most recently dropped line.
    changed_at: int = 0


def _fail(model: PggitModel, code: str) -> tuple[PggitModel, dict[str, Any]]:
    return model, {"error": Fails(code)}


#: Declared differences of a deployment, which the model adopts (name -> what it means). A user
#: whose pgGit is known to behave so declares it (``--statemodels-pggit-quirks``), and the machine
#: holds the database to everything else instead of stopping at the same difference every time.
QUIRKS: dict[str, str] = {
    "commit-errors-generic": "every failing commit_changes answers SQLSTATE P0001 (RAISE "
    "EXCEPTION without ERRCODE), whatever the cause",
    "delete-unknown-branch-noop": "deleting a branch that does not exist (or is already deleted) "
    "succeeds and changes nothing",
    "main-deletable": "the main branch can be deleted like any other",
}


def check_quirks(quirks: frozenset[str]) -> frozenset[str]:
    """Validate declared quirks: an unknown name is a one-line error listing the known ones."""
    unknown = sorted(set(quirks) - set(QUIRKS))
    if unknown:
        raise ConfigurationError(
            f"unknown pggit quirk(s) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(sorted(QUIRKS))} (--statemodels-pggit-quirks)"
        )
    return frozenset(quirks)


@attrs.frozen
class PggitModel:
    """What a pgGit database holds, as far as the machine's commands can tell.

    Args:
        role: the role the driver connects as: every commit's author.
        quirks: declared differences of the deployment (:data:`QUIRKS`), adopted by the model.
        session: the session whose Trinity sequence must increase from commit to commit.
            ``None`` in a concurrent history: there every client is a session of its own, and
            the order in which commits on different branches took ``nextval`` need not be the
            order in which they committed.
    """

    role: str
    quirks: frozenset[str] = attrs.field(default=frozenset(), converter=check_quirks)
    session: str | None = "main"
    branches: tuple[BranchRec, ...] = (BranchRec("main", None),)
    commits: tuple[CommitRec, ...] = ()
    objects: tuple[ObjectRec, ...] = ()
    next_ref: int = 1
    clock: int = 0
    victims: int = 0

    # -- lookups -------------------------------------------------------------------------------

    def branch(self, name: str) -> BranchRec | None:
        return next((b for b in self.branches if b.name == name), None)

    def table(self, name: str) -> int | None:
        """Index of the live table called ``name`` in ``objects``."""
        return next((i for i, o in enumerate(self.objects) if o.active and o.name == name), None)

    def live_tables(self) -> list[str]:
        return [o.name for o in self.objects if o.active]

    def known_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Table names (live or dropped) and branch names (any status) this model has seen."""
        tables = tuple(dict.fromkeys(o.name for o in self.objects))
        return tables, tuple(b.name for b in self.branches if b.name != "main")

    def chain(self, branch: str) -> tuple[tuple[str, str], ...]:
        """(branch, message) of the commits from ``branch``'s head back to the first one."""
        by_ref = {c.ref: c for c in self.commits}
        rec = self.branch(branch)
        ref = rec.head if rec else None
        out = []
        while ref is not None:
            commit = by_ref[ref]
            out.append((commit.branch, commit.message))
            ref = commit.parent
        return tuple(out)

    @staticmethod
    def _slot(ref: int | None) -> str | None:
        return None if ref is None else f"commit:{ref}"

    def _refs(self, branch: str) -> tuple[str, ...]:
        """Slots of the commits from ``branch``'s head back to the first one."""
        by_ref = {c.ref: c for c in self.commits}
        rec = self.branch(branch)
        ref, out = (rec.head if rec else None), []
        while ref is not None:
            out.append(f"commit:{ref}")
            ref = by_ref[ref].parent
        return tuple(out)

    # -- the protocol --------------------------------------------------------------------------

    def apply(self, cmd: Any) -> Step:
        match cmd:
            case Txn():
                return self._txn(cmd)
            case ConcurrentCommits():
                step = self._concurrent(cmd)
                if "commit-errors-generic" in self.quirks:
                    errors = step.expect["errors"]
                    assert isinstance(errors, Eq)
                    generic = tuple(None if e is None else "P0001" for e in errors.value)
                    return Step(step.model, {**step.expect, "errors": generic})
                return step
            case GenerateIds(count=n):
                ids = TrinityIds((NO_SLOT,) * n, session=self.session)
                return Step(self, {"ids": ids, "skew_s": Within(0.0, MAX_SKEW_S)})
            case ReadBranch(name=name):
                rec = self.branch(name)
                rows = [] if rec is None else [(rec.status, self._slot(rec.head))]
                return Step(self, {"rows": Rows(rows)})
            case ReadLog(branch=branch):
                return Step(self, {"log": Chain(self._refs(branch))})
            case _:
                model, expect = self.do(cmd, session=self.session)
                return Step(model, expect)

    def view(self) -> Mapping[str, Any]:
        heads = tuple((b.name, f"commit:{b.head}" if b.head else None) for b in self.branches)
        return {
            "branches": {b.name: (b.status, b.parent) for b in self.branches},
            "heads": Heads(heads),
            "chains": {b.name: self.chain(b.name) for b in self.branches},
            "commit_count": len(self.commits),
            "authors": (self.role,) if self.commits else (),
            "objects": tuple((o.name, o.active, o.version) for o in self.objects),
            "get_version": {o.name: o.version for o in self.objects if o.active},
            "history": tuple(o.history for o in self.objects),
            # What list_branches() and get_version() answer, beside what the tables hold.
            "listed": tuple((b.name, b.parent, b.status) for b in self.branches),
            "listed_heads": Heads(heads),
            "get_version_rows": tuple(
                (o.name, "TABLE", f"public.{o.name}", o.version) for o in self.objects if o.active
            ),
        }

    # -- single ops ----------------------------------------------------------------------------

    def do(self, op: Op, *, session: str | None) -> tuple[PggitModel, dict[str, Any]]:
        """One op as its own statement: the next model and the expected outcome fields."""
        match op:
            case CreateTable(name=name):
                return self._create_table(name)
            case AlterTable(name=name, add=add):
                return self._alter_table(name, add)
            case RenameTable(name=name, new_name=new):
                return self._rename_table(name, new)
            case DropTable(name=name):
                return self._drop_table(name)
            case Commit():
                model, expect = self._commit(op, session)
                if "commit-errors-generic" in self.quirks and "error" in expect:
                    expect["error"] = Fails("P0001")
                return model, expect
            case CreateBranch(name=name, parent=parent):
                return self._create_branch(name, parent)
            case DeleteBranch(name=name):
                return self._delete_branch(name)
        raise TypeError(f"PggitModel cannot apply {op!r}: not a pggit op")

    def _bump(self, index: int, change: str, **changes: Any) -> PggitModel:
        obj = self.objects[index]
        version = obj.version + 1
        new = attrs.evolve(
            obj,
            version=version,
            history=(*obj.history, (change, obj.version, version)),
            changed_at=self.clock + 1,
            **changes,
        )
        objects = (*self.objects[:index], new, *self.objects[index + 1 :])
        return attrs.evolve(self, objects=objects, clock=self.clock + 1)

    def _create_table(self, name: str) -> tuple[PggitModel, dict[str, Any]]:
        if self.table(name) is not None:
            return _fail(self, "42P07")
        dropped = [(o.changed_at, i) for i, o in enumerate(self.objects) if o.name == name]
        if dropped:
            # Re-create continues the line of the most recently dropped object of that name.
            return self._bump(max(dropped)[1], "CREATE", active=True, columns=()), {}
        obj = ObjectRec(name, True, 1, history=(("CREATE", None, 1),), changed_at=self.clock + 1)
        return attrs.evolve(self, objects=(*self.objects, obj), clock=self.clock + 1), {}

    def _alter_table(self, name: str, add: tuple[str, ...]) -> tuple[PggitModel, dict[str, Any]]:
        index = self.table(name)
        if index is None:
            return _fail(self, "42P01")
        columns = self.objects[index].columns
        if len(set(add)) != len(add) or set(add) & (set(columns) | SYSTEM_COLUMNS):
            return _fail(self, "42701")
        return self._bump(index, "ALTER", columns=columns + add), {}

    def _rename_table(self, name: str, new: str) -> tuple[PggitModel, dict[str, Any]]:
        index = self.table(name)
        if index is None:
            return _fail(self, "42P01")
        if self.table(new) is not None:
            return _fail(self, "42P07")
        return self._bump(index, "RENAME", name=new), {}

    def _drop_table(self, name: str) -> tuple[PggitModel, dict[str, Any]]:
        index = self.table(name)
        if index is None:
            return _fail(self, "42P01")
        return self._bump(index, "DROP", active=False, columns=()), {}

    def _commit(self, op: Commit, session: str | None) -> tuple[PggitModel, dict[str, Any]]:
        model = self
        rec = self.branch(op.branch)
        if rec is None:
            if not 1 <= len(op.branch) <= 255:
                return _fail(self, "23514")
            model, _ = model._create_branch(op.branch, "main")
        elif rec.status != ACTIVE:
            return _fail(self, "55000")
        slot = f"commit:{self.next_ref}"
        expect: dict[str, Any]
        if op.trinity is not None:
            if not TRINITY_RE.fullmatch(op.trinity):
                return _fail(self, "23514")
            if any(c.custom == op.trinity for c in self.commits):
                return _fail(self, "23505")
            expect = {"trinity_id": CustomId(op.trinity, slot)}
        else:
            expect = {"trinity_id": TrinityId(slot=slot, session=session)}
        return model._append_commit(op.branch, op.message, op.trinity), expect

    def _append_commit(self, branch: str, message: str, custom: str | None) -> PggitModel:
        rec = self.branch(branch)
        assert rec is not None
        commit = CommitRec(self.next_ref, branch, rec.head, message, custom)
        branches = tuple(
            attrs.evolve(b, head=self.next_ref) if b.name == branch else b for b in self.branches
        )
        return attrs.evolve(
            self, branches=branches, commits=(*self.commits, commit), next_ref=self.next_ref + 1
        )

    def _create_branch(self, name: str, parent: str) -> tuple[PggitModel, dict[str, Any]]:
        parent_rec = self.branch(parent)
        if parent_rec is None or parent_rec.status != ACTIVE:
            return _fail(self, "23503")
        if not 1 <= len(name) <= 255:
            return _fail(self, "23514")
        if self.branch(name) is not None:
            return _fail(self, "23505")
        rec = BranchRec(name, parent, ACTIVE, parent_rec.head)
        return attrs.evolve(self, branches=(*self.branches, rec)), {"branch_id": Fresh("branch")}

    def _delete_branch(self, name: str) -> tuple[PggitModel, dict[str, Any]]:
        if name == "main" and "main-deletable" not in self.quirks:
            return _fail(self, "23514")
        rec = self.branch(name)
        if rec is None or rec.status != ACTIVE:
            if "delete-unknown-branch-noop" in self.quirks:
                return self, {}
            return _fail(self, "P0002")
        branches = tuple(
            attrs.evolve(b, status=DELETED) if b.name == name else b for b in self.branches
        )
        return attrs.evolve(self, branches=branches), {}

    # -- composite commands --------------------------------------------------------------------

    def _run_ops(
        self,
        ops: tuple[Op, ...],
        prefix: str,
        session: str | None,
        aborted: bool,
        parts: dict[str, str],
    ) -> tuple[PggitModel, dict[str, Any], bool]:
        """Ops inside one open transaction: after the first error every statement fails 25P02.

        Each op is a part of the composite command (``parts``: field prefix -> op type), so a
        divergence in one is signed with the op's own type, as at top level.
        """
        model, fields = self, {}
        for i, op in enumerate(ops):
            key = f"{prefix}{i}"
            parts[key] = type(op).__name__
            if aborted:
                fields[f"{key}.error"] = Fails("25P02")
                continue
            nxt, expect = model.do(op, session=session)
            fields[f"{key}.error"] = expect.pop("error", None)
            fields.update({f"{key}.{name}": value for name, value in expect.items()})
            if fields[f"{key}.error"] is not None:
                aborted = True
            else:
                model = nxt
        return model, fields, aborted

    def _txn(self, cmd: Txn) -> Step:
        session = "main"
        base = self
        if cmd.end == "terminate":
            session = f"victim{self.victims}"
            base = attrs.evolve(self, victims=self.victims + 1)
        parts: dict[str, str] = {}
        kept, fields, aborted = base._run_ops(cmd.keep, "keep", session, False, parts)
        scratch, more, _ = kept._run_ops(cmd.ops, "op", session, aborted, parts)
        fields.update(more)
        if cmd.end == "terminate":
            fields["terminated"] = True
        # The ops vanish; refs they used stay used, so a later commit gets a fresh slot.
        survivor = kept if cmd.end == "savepoint" and not aborted else base
        return Step(attrs.evolve(survivor, next_ref=scratch.next_ref), fields, parts)

    def _concurrent(self, cmd: ConcurrentCommits) -> Step:
        n = len(cmd.messages)
        rec = self.branch(cmd.branch)
        if rec is None and not 1 <= len(cmd.branch) <= 255:
            return Step(self, {"errors": ("23514",) * n, "ids": TrinityIds((NO_ID,) * n)})
        if rec is not None and rec.status != ACTIVE:
            return Step(self, {"errors": ("55000",) * n, "ids": TrinityIds((NO_ID,) * n)})
        model = self
        if rec is None:
            model, _ = model._create_branch(cmd.branch, "main")
        # Each commit overlaps the next one, which waits for it. Under SERIALIZABLE the waiter
        # fails 40001 and the one after it starts on a fresh snapshot: every second one wins.
        errors: list[str | None] = []
        slots = []
        for i, message in enumerate(cmd.messages):
            if cmd.isolation == "serializable" and i % 2 == 1:
                errors.append("40001")
                slots.append(NO_ID)
                continue
            errors.append(None)
            slots.append(f"commit:{model.next_ref}")
            model = model._append_commit(cmd.branch, message, None)
        return Step(model, {"errors": tuple(errors), "ids": TrinityIds(tuple(slots))})
