"""Bug-finding power on the bundled pgGit system, beyond one mutant at a time.

- Two seeded bugs with different symptoms: one ``ci`` run reports both, each shrunk, each under
  its root-cause signature.
- A declared quirk: the model adopts a known difference, holds the system to everything else, and
  the machine catches the next bug, which shows only once the quirk's step has happened.
"""

from __future__ import annotations

import pytest

from statemodels.engine import Divergence, run_machine
from statemodels.infra import PostgresServer, TemplateJanitor
from statemodels.pggit import install, machine_factory

pytestmark = pytest.mark.mutant


def _worlds(server: PostgresServer, mutants: frozenset[str]) -> TemplateJanitor:
    return TemplateJanitor(server, name="pggit_find", install=lambda conn: install(conn, mutants))


def _run(factory: object, **overrides: object) -> list[Divergence]:
    """One deterministic ``ci`` run; every divergence it reported."""
    with pytest.raises(BaseException) as info:
        run_machine(factory, budget="ci", database=None, derandomize=True, **overrides)  # type: ignore[arg-type]
    exc = info.value
    found = [exc] if isinstance(exc, Divergence) else list(getattr(exc, "exceptions", ()))
    assert found and all(isinstance(d, Divergence) for d in found), repr(exc)
    for d in found:
        print(f"\n{d}")
    return found  # type: ignore[return-value]


def test_one_run_reports_two_bugs_with_different_symptoms(
    statemodels_postgres: PostgresServer,
) -> None:
    both = frozenset({"main-deletable", "message-trimmed"})
    with _worlds(statemodels_postgres, both) as worlds:
        found = {d.signature: d for d in _run(machine_factory(worlds))}
    assert "PggitMachine/DeleteBranch/error:succeeded" in found  # main-deletable, by its symptom
    assert "PggitMachine/view/chains:differs" in found  # message-trimmed, by its symptom
    assert all(d.steps <= 5 for d in found.values()), [d.steps for d in found.values()]


def test_a_declared_quirk_is_adopted_and_the_next_bug_is_caught(
    statemodels_postgres: PostgresServer,
) -> None:
    # main-deletable as the deployment's declared quirk: deleting main succeeds, and after that
    # step main is a deleted branch. deleted-branch-revived only shows after such a deletion:
    # a commit to the deleted branch succeeds (and revives it) instead of failing.
    both = frozenset({"main-deletable", "deleted-branch-revived"})
    with _worlds(statemodels_postgres, both) as worlds:
        found = _run(machine_factory(worlds, quirks={"main-deletable"}), report_multiple_bugs=False)
    signature = found[0].signature
    assert signature != "PggitMachine/DeleteBranch/error:succeeded", "the quirk was not adopted"
    assert signature.startswith("PggitMachine/Commit/error:"), found[0]


def test_a_declared_quirk_alone_is_not_a_divergence(statemodels_postgres: PostgresServer) -> None:
    with _worlds(statemodels_postgres, frozenset({"generic-sqlstate"})) as worlds:
        run_machine(
            machine_factory(worlds, quirks={"commit-errors-generic"}),
            budget="ci",
            database=None,
            derandomize=True,
        )
