"""Seeded bugs of the bundled relay supervisor: each a realistic mistake the machine must catch.

Switch one on with ``BundledRelay.start(RelayConfig(mutants={"no-resync"}))``. An unknown name is
a one-line :class:`~statemodels.errors.ConfigurationError` listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...engine import check_mutants as engine_check_mutants

__all__ = ["CONCURRENT_ONLY", "MUTANTS", "check_mutants"]

#: name -> what the bug is, one line.
MUTANTS: dict[str, str] = {
    "no-resync": "a restarted worker is not sent the rule set: it comes back empty",
    "partial-resync": "a restarted worker gets only the rules added since the previous spawn",
    "race-loses-add": "the restart sends the rules as they were at the crash: adds during "
    "backoff are lost",
    "no-backoff-reset": "the backoff never resets after a successful spawn",
    "no-backoff-cap": "the backoff keeps doubling past its cap",
    "no-backoff-double": "the backoff never grows: every retry waits the initial delay",
    "stale-running": "exits are noticed only after answering the next request: ListWorkers "
    "reports a dead pid as Running",
    "remove-not-forwarded": "RemoveRule updates the supervisor's list but not the worker",
    "upsert-duplicates": "re-adding an existing rule_id stores a duplicate instead of replacing",
    "port-zero-accepted": "validation lets input_port 0 through",
    "clean-exit-backoff": "a clean worker exit waits the backoff instead of restarting at once",
    "garbage-kills-control": "malformed JSON escapes the handler and stops the control socket",
    "id-without-protocol": "derived rule ids ignore the protocol, so udp and tcp rules collide",
    "add-rmw-across-await": "AddRule copies the rule table, awaits its audit line, and stores "
    "the copy back: a concurrent add or remove is lost (only a concurrent history shows it)",
    "remove-check-across-await": "RemoveRule checks the id, awaits its audit line, then drops the "
    "rule if still there: two concurrent removes both succeed (only a concurrent history shows it)",
}

#: Mutants no sequential run can see: they need another client's request during the await.
#: The sequential catalogue test leaves them out; ``tests/mutants/test_relay_parallel_mutants.py``
#: hunts them with the parallel machine and proves the sequential one blind.
CONCURRENT_ONLY: frozenset[str] = frozenset({"add-rmw-across-await", "remove-check-across-await"})


def check_mutants(names: Iterable[str]) -> frozenset[str]:
    """Validate relay mutant names (the engine's one check, against this catalogue).

    Raises:
        ConfigurationError: a name is not in :data:`MUTANTS` (one line, listing the valid ones).
    """
    return engine_check_mutants(names, MUTANTS)
