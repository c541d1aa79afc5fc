"""Seeded bugs for the bundled pgGit system: each a realistic mistake, applied at install time.

A mutant is a list of exact text replacements on ``pggit.sql``: the installer swaps a correct
fragment for the mistaken one. Each fragment must occur exactly once, so an edit of the SQL that
silently disarms a mutant fails the install instead. Every mutant has a test proving the pggit
machine catches it within the ``ci`` budget with a repro of at most five steps
(``tests/mutants/test_pggit_mutants.py``).

Example::

    install(conn, mutants={"message-trimmed"})   # commit messages now lose their outer spaces
"""

from __future__ import annotations

from collections.abc import Iterable

from ...errors import ConfigurationError

__all__ = ["CONCURRENT_ONLY", "MUTANTS", "apply_mutants"]

#: name -> the realistic mistake it seeds.
MUTANTS: dict[str, str] = {
    "no-parent-link": "commit_changes never writes parent_commit_hash: history is a set of roots",
    "message-trimmed": "commit_changes stores btrim(message): outer whitespace of messages is lost",
    "alter-bumps-twice": "ALTER TABLE marks the object touched (version + 1) and then bumps it",
    "recreate-resets-version": "re-create looks for an *active* old object, so it restarts at 1",
    "rename-starts-new-line": "RENAME is tracked as DROP of the old name + CREATE of a new object",
    "name-from-identity": "object_name is parsed from the quoted object_identity with split_part",
    "main-deletable": "delete_branch_simple guards 'master' (git's old default) instead of 'main'",
    "deleted-branch-revived": "commit_changes on a deleted branch quietly re-activates it",
    "duplicate-id-swallowed": "a duplicate custom Trinity ID is caught and returned as success",
    "generic-sqlstate": "commit_changes wraps every error into RAISE EXCEPTION (SQLSTATE P0001)",
    "trinity-local-time": "the Trinity timestamp uses the session's time zone, not UTC",
    "no-branch-lock": "commit_changes reads the branch head without a row lock: concurrent forks",
    "author-constant": "commits record the literal 'pggit' as author instead of current_user",
    "commit-outside-transaction": "the commit row is written over dblink, so it survives rollback",
    "delete-check-then-act": (
        "delete_branch_simple checks the status in one statement and marks the branch deleted in "
        "the next: two concurrent deletes both succeed (only a concurrent history shows it)"
    ),
    "create-check-then-upsert": (
        "create_branch refuses a taken name by a SELECT, then inserts ON CONFLICT DO NOTHING "
        "'for retries': a concurrent create of the same name succeeds without a branch (only a "
        "concurrent history shows it)"
    ),
}

#: Mutants no sequential run can see: they need another client acting in between. The
#: sequential catalogue test leaves them out; ``tests/mutants/test_pggit_parallel_mutants.py``
#: hunts them with the parallel machine and proves the sequential one blind.
CONCURRENT_ONLY: frozenset[str] = frozenset({"delete-check-then-act", "create-check-then-upsert"})

_COMMIT_VALUES = (
    "    VALUES (v_id, v_branch.id, v_branch.head_commit_hash, p_message, current_user);\n"
)
_COMMIT_END = "    RETURN v_id;\nEND;\n$commit$;"
_DELETED_CHECK = (
    "    IF v_branch.status <> 'ACTIVE' THEN\n"
    "        RAISE EXCEPTION 'branch % is deleted', quote_literal(p_branch_name)\n"
    "            USING ERRCODE = 'object_not_in_prerequisite_state';\n"
    "    END IF;\n"
)
_COMMIT_INSERT = (
    "    INSERT INTO pggit.commits (hash, branch_id, parent_commit_hash, message, author)\n"
)
_BRANCH_LOCK = (
    "    SELECT * INTO v_branch FROM pggit.branches WHERE name = p_branch_name FOR NO KEY UPDATE;\n"
    "    IF NOT FOUND THEN\n"
)
_RENAME = (
    "            UPDATE pggit.objects SET schema_name = v_schema, object_name = v_name\n"
    "            WHERE id = v_obj.id;\n"
    "            PERFORM pggit.bump_version(v_obj.id, 'RENAME', v_obj.object_name);\n"
)
_NAME_LOOKUP = "        CONTINUE WHEN v_name IS NULL OR NOT pggit.tracked_schema(v_schema);\n"
_DELETE = (
    "    UPDATE pggit.branches SET status = 'DELETED' WHERE name = p_name AND status = 'ACTIVE';\n"
    "    IF NOT FOUND THEN\n"
    "        RAISE EXCEPTION 'branch % does not exist or is already deleted',"
    " quote_literal(p_name)\n"
    "            USING ERRCODE = 'no_data_found';\n"
    "    END IF;\n"
)
_CREATE_INSERT = (
    "    INSERT INTO pggit.branches (name, parent_branch_id, head_commit_hash)\n"
    "    VALUES (p_name, v_parent.id, v_parent.head_commit_hash)\n"
    "    RETURNING id INTO v_id;\n"
)

# name -> ((old fragment, new fragment), ...). "{dblink}" in a new fragment is the conninfo.
_PATCHES: dict[str, tuple[tuple[str, str], ...]] = {
    "no-parent-link": (
        (_COMMIT_VALUES, _COMMIT_VALUES.replace("v_branch.head_commit_hash", "NULL")),
    ),
    "message-trimmed": ((_COMMIT_VALUES, _COMMIT_VALUES.replace("p_message", "btrim(p_message)")),),
    "alter-bumps-twice": (
        (
            "        ELSE\n            PERFORM pggit.bump_version(v_obj.id, 'ALTER');\n",
            "        ELSE\n"
            "            UPDATE pggit.objects SET version = version + 1 WHERE id = v_obj.id;\n"
            "            PERFORM pggit.bump_version(v_obj.id, 'ALTER');\n",
        ),
    ),
    "recreate-resets-version": (("      AND NOT o.is_active\n", "      AND o.is_active\n"),),
    "rename-starts-new-line": (
        (
            _RENAME,
            "            UPDATE pggit.objects SET is_active = false, relid = NULL"
            " WHERE id = v_obj.id;\n"
            "            PERFORM pggit.bump_version(v_obj.id, 'DROP');\n"
            "            INSERT INTO pggit.objects (schema_name, object_name, relid)\n"
            "            VALUES (v_schema, v_name, r.objid) RETURNING id INTO v_obj.id;\n"
            "            INSERT INTO pggit.history (object_id, change_type, old_version,"
            " new_version)\n"
            "            VALUES (v_obj.id, 'CREATE', NULL, 1);\n",
        ),
    ),
    "name-from-identity": (
        (
            _NAME_LOOKUP,
            _NAME_LOOKUP
            + "        v_name := btrim(split_part(r.object_identity, '.', 2), '\"');\n",
        ),
    ),
    "main-deletable": (("    IF p_name = 'main' THEN\n", "    IF p_name = 'master' THEN\n"),),
    "deleted-branch-revived": (
        (
            _DELETED_CHECK,
            "    IF v_branch.status <> 'ACTIVE' THEN\n"
            "        UPDATE pggit.branches SET status = 'ACTIVE' WHERE id = v_branch.id;\n"
            "    END IF;\n",
        ),
    ),
    "duplicate-id-swallowed": (
        (
            _COMMIT_END,
            "    RETURN v_id;\nEXCEPTION\n    WHEN unique_violation THEN\n        RETURN v_id;\n"
            "END;\n$commit$;",
        ),
    ),
    "generic-sqlstate": (
        (
            _COMMIT_END,
            "    RETURN v_id;\nEXCEPTION\n    WHEN OTHERS THEN\n"
            "        RAISE EXCEPTION 'commit_changes failed: %', SQLERRM;\nEND;\n$commit$;",
        ),
    ),
    "trinity-local-time": (
        ("to_char(clock_timestamp() AT TIME ZONE 'UTC', ", "to_char(clock_timestamp(), "),
    ),
    "no-branch-lock": ((_BRANCH_LOCK, _BRANCH_LOCK.replace(" FOR NO KEY UPDATE;", ";")),),
    "author-constant": ((_COMMIT_VALUES, _COMMIT_VALUES.replace("current_user", "'pggit'")),),
    "commit-outside-transaction": (
        (
            "CREATE SCHEMA pggit;\n",
            "CREATE SCHEMA pggit;\nCREATE EXTENSION IF NOT EXISTS dblink;\n",
        ),
        (
            _COMMIT_INSERT + _COMMIT_VALUES,
            # "So the audit trail survives a failing caller": an autonomous insert.
            "    PERFORM dblink_exec(\n"
            "        '{dblink} options=''-c lock_timeout=2000 -c statement_timeout=5000'''\n"
            "            || ' dbname=' || quote_literal(current_database()),\n"
            "        format('INSERT INTO pggit.commits (hash, branch_id, parent_commit_hash,"
            " message, author) VALUES (%L, %s, %L, %L, %L)',\n"
            "               v_id, v_branch.id, v_branch.head_commit_hash, p_message,"
            " current_user));\n",
        ),
    ),
    "delete-check-then-act": (
        (
            _DELETE,
            "    PERFORM 1 FROM pggit.branches WHERE name = p_name AND status = 'ACTIVE';\n"
            + _DELETE.split("\n", 1)[1]
            + "    UPDATE pggit.branches SET status = 'DELETED' WHERE name = p_name;\n",
        ),
    ),
    "create-check-then-upsert": (
        (
            _CREATE_INSERT,
            "    IF EXISTS (SELECT 1 FROM pggit.branches WHERE name = p_name) THEN\n"
            "        RAISE EXCEPTION 'branch % already exists', quote_literal(p_name)\n"
            "            USING ERRCODE = 'unique_violation';\n"
            "    END IF;\n"
            "    INSERT INTO pggit.branches (name, parent_branch_id, head_commit_hash)\n"
            "    VALUES (p_name, v_parent.id, v_parent.head_commit_hash)\n"
            "    ON CONFLICT (name) DO NOTHING\n"
            "    RETURNING id INTO v_id;\n",
        ),
    ),
}

assert _PATCHES.keys() == MUTANTS.keys(), "every mutant needs a description and a patch"


def apply_mutants(sql: str, mutants: Iterable[str], *, dblink_conninfo: str = "") -> str:
    """Return ``sql`` with each mutant's fragments replaced.

    Raises:
        ConfigurationError: a fragment is not in ``sql`` exactly once (the SQL changed under the
            mutant: update the fragment in ``_PATCHES``).
    """
    for name in sorted(mutants):
        for old, new in _PATCHES[name]:
            count = sql.count(old)
            if count != 1:
                raise ConfigurationError(
                    f"mutant {name!r}: fragment {old[:60]!r} occurs {count} times in pggit.sql "
                    "(want exactly 1); update the fragment in pggit/system/mutants.py"
                )
            sql = sql.replace(old, new.replace("{dblink}", dblink_conninfo.replace("'", "''")))
    return sql
