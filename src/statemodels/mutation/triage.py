"""Survivors we looked at and found equivalent: no correct machine can kill them.

A generated mutant that survives is either a gap in the machine (then the machine is fixed and
the mutant is killed on the next run) or *equivalent*: the mutated system behaves, through the
contract, exactly like the real one. Each equivalent mutant is listed here -- by its stable id,
or for a whole family by the text of the line it edits -- with the reason, and is left out of
the score's denominator. An id the generator no longer produces is reported by the runner
(``stale triage``) and fails ``tests/mutants/test_generated.py``: the code moved, look again.
"""

from __future__ import annotations

__all__ = ["EQUIVALENT", "EQUIVALENT_RULES", "KNOWN_GAPS", "equivalent_reason"]

_KINDS = "the worker's message kinds are AddRule < GetRules < RemoveRule < Sync; "
_CATALOGUE = "only matters with a catalogue mutant switched on (--mutant), never in a real run"

#: ``system/mutant id`` -> why it cannot be told apart from the real system through the contract.
EQUIVALENT: dict[str, str] = {
    # -- pggit.sql --------------------------------------------------------------------------
    "pggit/const:L77:1->2": "the 8 hex digits are cut from md5 of random input one character "
    "later: still 8 lowercase hex digits, as random as before",
    "pggit/cond:L44:drop_CHECK": "versions start at 1 and only grow: CHECK (version >= 1) "
    "never rejects a row",
    "pggit/cond:L53:drop_WHERE": "the unique index on relid then also covers dropped rows, "
    "whose relid is NULL, and NULLs never collide",
    "pggit/cond:L139:IF->true": "the first-use INSERT ... ON CONFLICT DO NOTHING is a no-op for "
    "a branch that exists, and the re-read returns the same row",
    "pggit/cond:L193:drop_AND_left": "every pggit.objects row is a TABLE (the column's "
    "default; nothing else is ever tracked), so the object_type test is always true",
    "pggit/swap:L179:swap_insert_columns_4_5": "history.old_name and sql_executed swapped: "
    "the contract names only (change_type, old_version, new_version) of a history row",
    # -- the relay ---------------------------------------------------------------------------
    "relay/supervisor:NumberReplacer:3": "Worker.pidfd's initial value is overwritten at spawn "
    "before any use; " + _CATALOGUE,
    "relay/supervisor:NumberReplacer:11": "Relay.seq's start value only orders rules for the "
    "partial-resync / upsert-duplicates catalogue mutants; " + _CATALOGUE,
    "relay/supervisor:NumberReplacer:46": "reset() waits for workers it just SIGKILLed: they "
    "are reaped in milliseconds, a 2 s, 3 s or 1 s timeout never expires",
    "relay/supervisor:NumberReplacer:54": "shutdown() waits for workers it just SIGKILLed, as "
    "reset() does: the timeout never expires",
    # The worker's message kinds are four fixed strings; where an == on them is made an
    # ordering, these still select exactly the one kind (AddRule < GetRules < RemoveRule < Sync).
    "relay/worker:ReplaceComparisonOperator_Eq_GtE:1": _KINDS + "kind >= 'Sync': only Sync",
    "relay/worker:ReplaceComparisonOperator_Eq_LtE:2": _KINDS + "kind <= 'AddRule': only AddRule",
    "relay/worker:ReplaceComparisonOperator_Eq_GtE:3": _KINDS
    + "kind >= 'RemoveRule' after Sync and AddRule: only RemoveRule",
    "relay/worker:ReplaceComparisonOperator_Eq_GtE:4": _KINDS + "kind >= 'GetRules': only it",
    "relay/worker:ReplaceComparisonOperator_Eq_LtE:4": _KINDS + "kind <= 'GetRules': only it",
    "relay/worker:NumberReplacer:15": "start_boottime slices /proc/<pid>/stat one byte "
    "earlier, at the space after ')': split() drops it, the fields are the same",
    "relay/supervisor:ReplaceComparisonOperator_GtE_NotEq:0": "reap() closes a pidfd >= 0 or "
    "!= 0: a pidfd is never 0 (stdin is open) and -1 only under a catalogue mutant",
}

#: Survivors that are gaps we have not closed yet: still judged and counted against the score,
#: left out of the CI sample (which asserts every mutant it draws is killed).
KNOWN_GAPS: dict[str, str] = {
    "pggit/cond:L193:drop_AND_right": "a re-create continues a dropped table of another "
    "schema: the machine only ever creates tables in public (needs a second schema)",
    "relay/supervisor:ExceptionReplacer:7": "the request-timeout path (a client that never "
    "half-closes) is never taken: every driver request half-closes at once; a step that "
    "holds the socket open would cost the 1 s request timeout",
}

#: ``(system, file, operator prefix, text on the edited line, reason)``: every mutant matching
#: all four (``""`` matches anything) is equivalent -- whole families, argued once.
EQUIVALENT_RULES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "relay",
        "supervisor.py",
        "",
        "p.add_argument(",
        "a command-line default the launcher always overrides (it passes every timing)",
    ),
    *(
        (
            "relay",
            "supervisor.py",
            "core/NumberReplacer",
            line,
            "the start value of a counter or handle that is set before it is read, or read only "
            "by catalogue mutants (partial-resync, no-resync, upsert-duplicates, stale-running)",
        )
        for line in (
            "self.spawns = 0",
            "self.spawn_seq = 0",
            "self.seq = 0",
            "self.request_seq = 0",
            "self.pidfd = -1",
        )
    ),
    (
        "relay",
        "",
        "core/ReplaceComparisonOperator_Is_Eq",
        "",
        "'is' made '==': the relay compares with None or with its own Worker/Slot objects, "
        "which have no __eq__, so == is identity",
    ),
    (
        "relay",
        "",
        "core/ReplaceBinaryOperator_BitOr_",
        "",
        "every '|' in the relay is in a type annotation ('int | None'), never evaluated under "
        "'from __future__ import annotations'",
    ),
    (
        "relay",
        "",
        "core/ReplaceComparisonOperator_IsNot_NotEq",
        "",
        "'is not' made '!=': as for 'is' made '==', identity either way",
    ),
    # -- status2's service.py -----------------------------------------------------------------
    (
        "status2",
        "service.py",
        "core/ReplaceBinaryOperator_BitOr_",
        "",
        "every '|' in service.py is in an annotation ('Response | None', 'float | None'): of a "
        "signature under 'from __future__ import annotations', or of a local, never evaluated",
    ),
    *(
        (
            "status2",
            "service.py",
            op,
            "",
            "'is'/'is not' made '=='/'!=': service.py compares only with None and with the "
            "IntEnum member State.OPEN, where equality is identity",
        )
        for op in (
            "core/ReplaceComparisonOperator_Is_Eq",
            "core/ReplaceComparisonOperator_IsNot_NotEq",
        )
    ),
)


def equivalent_reason(
    system: str, mutant_id: str, file: str = "", line_text: str = "", operator: str = ""
) -> str:
    """Why this mutant is equivalent, or ``""`` if nobody found it so."""
    reason = EQUIVALENT.get(f"{system}/{mutant_id}", "")
    if reason:
        return reason
    for sys_, file_, op_, text, why in EQUIVALENT_RULES:
        same = sys_ == system and file_ in ("", file) and operator.startswith(op_)
        if same and text in line_text:
            return why
    return ""
