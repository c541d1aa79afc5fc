-- statemodels bundled pgGit-compatible system (clean-room).
-- The contract this file implements is written down in statemodels/pggit/system/__init__.py.
-- The installer may swap marked fragments for a mutant (statemodels/pggit/system/mutants.py):
-- keep every fragment a mutant names byte-for-byte, or the installer refuses to run.

CREATE SCHEMA pggit;

-- One global sequence: the only source of the Trinity ID's sequence field, so IDs stay unique
-- across sessions, concurrent connections and session settings (the timestamp part is UTC).
CREATE SEQUENCE pggit.trinity_seq;

CREATE TABLE pggit.branches (
    id               serial PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    parent_branch_id integer REFERENCES pggit.branches (id),
    head_commit_hash text,
    status           text NOT NULL DEFAULT 'ACTIVE',
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by       text NOT NULL DEFAULT current_user,
    CONSTRAINT branch_status_known CHECK (status IN ('ACTIVE', 'DELETED')),
    CONSTRAINT branch_name_length CHECK (char_length(name) BETWEEN 1 AND 255)
);

INSERT INTO pggit.branches (name) VALUES ('main');

CREATE TABLE pggit.commits (
    id                 bigserial PRIMARY KEY,
    hash               text NOT NULL UNIQUE,
    branch_id          integer NOT NULL REFERENCES pggit.branches (id),
    parent_commit_hash text,
    message            text NOT NULL,
    author             text NOT NULL,
    committed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT commit_hash_format CHECK (hash ~ '^[0-9]{20}-[0-9]{6}-[0-9a-f]{8}$')
);

CREATE TABLE pggit.objects (
    id          serial PRIMARY KEY,
    object_type text NOT NULL DEFAULT 'TABLE',
    schema_name text NOT NULL,
    object_name text NOT NULL,
    full_name   text GENERATED ALWAYS AS (schema_name || '.' || object_name) STORED,
    relid       oid,
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    is_active   boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Only live objects are unique by name and by table OID; dropped ones keep their rows (and their
-- history) so a re-created name can continue its version line.
CREATE UNIQUE INDEX objects_live_name ON pggit.objects (object_type, schema_name, object_name)
    WHERE is_active;
CREATE UNIQUE INDEX objects_live_relid ON pggit.objects (relid) WHERE is_active;

CREATE TABLE pggit.history (
    id            bigserial PRIMARY KEY,
    object_id     integer NOT NULL REFERENCES pggit.objects (id),
    change_type   text NOT NULL CHECK (change_type IN ('CREATE', 'ALTER', 'RENAME', 'DROP')),
    old_version   integer,
    new_version   integer NOT NULL,
    old_name      text,
    sql_executed  text,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by    text NOT NULL DEFAULT current_user
);

CREATE INDEX history_by_object ON pggit.history (object_id, id);

-- Trinity ID: UTC timestamp (20 digits) - global sequence mod 10^6 (6 digits) - 8 hex digits.
CREATE FUNCTION pggit.generate_trinity_id() RETURNS text
LANGUAGE plpgsql VOLATILE AS $trinity$
DECLARE
    v_seq bigint := nextval('pggit.trinity_seq');
    v_ts  text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS');
BEGIN
    RETURN v_ts || '-' || lpad((v_seq % 1000000)::text, 6, '0') || '-'
        || substr(md5(v_ts || ':' || v_seq::text || ':' || random()::text), 1, 8);
END;
$trinity$;

CREATE FUNCTION pggit.create_branch(
    p_name text,
    p_parent text DEFAULT 'main',
    p_copy_data boolean DEFAULT false
) RETURNS integer
LANGUAGE plpgsql AS $create_branch$
DECLARE
    v_parent pggit.branches;
    v_id     integer;
BEGIN
    -- FOR KEY SHARE: a concurrent delete of the parent waits for us, a concurrent commit does not.
    SELECT * INTO v_parent FROM pggit.branches WHERE name = p_parent FOR KEY SHARE;
    IF NOT FOUND OR v_parent.status <> 'ACTIVE' THEN
        RAISE EXCEPTION 'parent branch % does not exist or is deleted', quote_literal(p_parent)
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- p_copy_data is accepted for compatibility; branches here version schema, not data.
    INSERT INTO pggit.branches (name, parent_branch_id, head_commit_hash)
    VALUES (p_name, v_parent.id, v_parent.head_commit_hash)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$create_branch$;

CREATE FUNCTION pggit.delete_branch_simple(p_name text) RETURNS void
LANGUAGE plpgsql AS $delete_branch$
BEGIN
    IF p_name = 'main' THEN
        RAISE EXCEPTION 'the main branch cannot be deleted' USING ERRCODE = 'check_violation';
    END IF;
    UPDATE pggit.branches SET status = 'DELETED' WHERE name = p_name AND status = 'ACTIVE';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'branch % does not exist or is already deleted', quote_literal(p_name)
            USING ERRCODE = 'no_data_found';
    END IF;
END;
$delete_branch$;

CREATE FUNCTION pggit.list_branches()
RETURNS TABLE (name text, parent_name text, status text, head_commit_hash text)
LANGUAGE sql STABLE AS $list_branches$
    SELECT b.name, p.name, b.status, b.head_commit_hash
    FROM pggit.branches b LEFT JOIN pggit.branches p ON p.id = b.parent_branch_id
    ORDER BY b.id;
$list_branches$;

CREATE FUNCTION pggit.commit_changes(
    p_branch_name text,
    p_message text DEFAULT '',
    p_custom_trinity_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql AS $commit$
DECLARE
    v_branch pggit.branches;
    v_id     text;
BEGIN
    -- The row lock serialises commits to one branch: each commit's parent is the previous head.
    SELECT * INTO v_branch FROM pggit.branches WHERE name = p_branch_name FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        -- Created on first use with parent main. ON CONFLICT: a concurrent first use waits for
        -- the other insert instead of failing with a unique violation.
        INSERT INTO pggit.branches (name, parent_branch_id, head_commit_hash)
        SELECT p_branch_name, m.id, m.head_commit_hash FROM pggit.branches m WHERE m.name = 'main'
        ON CONFLICT (name) DO NOTHING;
        SELECT * INTO v_branch FROM pggit.branches WHERE name = p_branch_name FOR NO KEY UPDATE;
    END IF;
    IF v_branch.status <> 'ACTIVE' THEN
        RAISE EXCEPTION 'branch % is deleted', quote_literal(p_branch_name)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_id := coalesce(p_custom_trinity_id, pggit.generate_trinity_id());
    INSERT INTO pggit.commits (hash, branch_id, parent_commit_hash, message, author)
    VALUES (v_id, v_branch.id, v_branch.head_commit_hash, p_message, current_user);
    UPDATE pggit.branches SET head_commit_hash = v_id WHERE id = v_branch.id;
    RETURN v_id;
END;
$commit$;

CREATE FUNCTION pggit.get_version(p_object_name text)
RETURNS TABLE (object_type text, full_name text, version integer)
LANGUAGE sql STABLE AS $get_version$
    SELECT o.object_type, o.full_name, o.version
    FROM pggit.objects o
    WHERE o.full_name = p_object_name AND o.is_active;
$get_version$;

-- One version bump: the object's version + 1 and one contiguous history row.
CREATE FUNCTION pggit.bump_version(
    p_object_id integer, p_change text, p_old_name text DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql AS $bump$
DECLARE
    v_old integer;
    v_new integer;
BEGIN
    UPDATE pggit.objects SET version = version + 1, updated_at = clock_timestamp()
    WHERE id = p_object_id
    RETURNING version - 1, version INTO v_old, v_new;
    INSERT INTO pggit.history (object_id, change_type, old_version, new_version, old_name,
                               sql_executed)
    VALUES (p_object_id, p_change, v_old, v_new, p_old_name, current_query());
    RETURN v_new;
END;
$bump$;

CREATE FUNCTION pggit.track_create(p_relid oid, p_schema text, p_name text) RETURNS void
LANGUAGE plpgsql AS $track_create$
DECLARE
    v_id integer;
BEGIN
    -- Re-create continues the line of the most recently changed dropped object of that name.
    SELECT o.id INTO v_id FROM pggit.objects o
    WHERE o.object_type = 'TABLE' AND o.schema_name = p_schema AND o.object_name = p_name
      AND NOT o.is_active
    ORDER BY (SELECT max(h.id) FROM pggit.history h WHERE h.object_id = o.id) DESC NULLS LAST
    LIMIT 1;
    IF v_id IS NOT NULL THEN
        UPDATE pggit.objects SET is_active = true, relid = p_relid WHERE id = v_id;
        PERFORM pggit.bump_version(v_id, 'CREATE');
    ELSE
        INSERT INTO pggit.objects (schema_name, object_name, relid)
        VALUES (p_schema, p_name, p_relid) RETURNING id INTO v_id;
        INSERT INTO pggit.history (object_id, change_type, old_version, new_version, sql_executed)
        VALUES (v_id, 'CREATE', NULL, 1, current_query());
    END IF;
END;
$track_create$;

CREATE FUNCTION pggit.tracked_schema(p_schema text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $tracked$
    SELECT p_schema NOT IN ('pggit', 'pg_catalog', 'information_schema', 'pg_toast')
       AND p_schema NOT LIKE 'pg\_temp\_%' AND p_schema NOT LIKE 'pg\_toast\_temp\_%';
$tracked$;

CREATE FUNCTION pggit.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql AS $ddl_end$
DECLARE
    r        record;
    v_schema text;
    v_name   text;
    v_obj    pggit.objects;
BEGIN
    -- DISTINCT ON objid: one statement changes one table once, however many subcommands it has.
    FOR r IN
        SELECT DISTINCT ON (c.objid) c.objid, c.command_tag, c.object_identity
        FROM pg_event_trigger_ddl_commands() c
        WHERE c.object_type = 'table' AND c.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
        ORDER BY c.objid
    LOOP
        SELECT n.nspname, k.relname INTO v_schema, v_name
        FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
        WHERE k.oid = r.objid;
        CONTINUE WHEN v_name IS NULL OR NOT pggit.tracked_schema(v_schema);
        IF r.command_tag = 'CREATE TABLE' THEN
            PERFORM pggit.track_create(r.objid, v_schema, v_name);
            CONTINUE;
        END IF;
        SELECT * INTO v_obj FROM pggit.objects WHERE relid = r.objid AND is_active;
        IF NOT FOUND THEN
            -- A table older than pggit: adopted at version 1 by its first tracked change.
            PERFORM pggit.track_create(r.objid, v_schema, v_name);
        ELSIF (v_obj.schema_name, v_obj.object_name) IS DISTINCT FROM (v_schema, v_name) THEN
            UPDATE pggit.objects SET schema_name = v_schema, object_name = v_name
            WHERE id = v_obj.id;
            PERFORM pggit.bump_version(v_obj.id, 'RENAME', v_obj.object_name);
        ELSE
            PERFORM pggit.bump_version(v_obj.id, 'ALTER');
        END IF;
    END LOOP;
END;
$ddl_end$;

CREATE FUNCTION pggit.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $sql_drop$
DECLARE
    r     record;
    v_obj pggit.objects;
BEGIN
    FOR r IN
        SELECT DISTINCT d.objid FROM pg_event_trigger_dropped_objects() d
        WHERE d.object_type = 'table'
    LOOP
        SELECT * INTO v_obj FROM pggit.objects WHERE relid = r.objid AND is_active;
        CONTINUE WHEN NOT FOUND;
        UPDATE pggit.objects SET is_active = false, relid = NULL WHERE id = v_obj.id;
        PERFORM pggit.bump_version(v_obj.id, 'DROP');
    END LOOP;
END;
$sql_drop$;

CREATE EVENT TRIGGER pggit_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION pggit.on_ddl_command_end();
CREATE EVENT TRIGGER pggit_sql_drop ON sql_drop
    EXECUTE FUNCTION pggit.on_sql_drop();
