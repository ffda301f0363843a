-- Up Migration

-- Signed checkpoints over the audit chain (DESIGN §4 invariant 6, §6 "Audit anchors"), the public
-- keys that signed them, and an application role that can only append to the audit tables.

-- A random id for this database's chain; every checkpoint names it, so an anchor file that belongs
-- to another database is recognised as such.
ALTER TABLE audit_head ADD COLUMN chain_id uuid NOT NULL DEFAULT gen_random_uuid();

CREATE TABLE audit_signing_keys (
  kid         text PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 200),
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per checkpoint; the checkpoints are a chain of their own (previous_checkpoint_hash is
-- SHA-256 of the previous checkpoint's compact JWS). The JWS is the authority: the other columns
-- are copies of its payload for querying.
CREATE TABLE audit_checkpoints (
  checkpoint_seq            bigint PRIMARY KEY CHECK (checkpoint_seq > 0),
  event_seq                 bigint NOT NULL CHECK (event_seq >= 0),
  head_hash                 bytea NOT NULL,
  previous_checkpoint_hash  bytea NOT NULL,
  created_at                timestamptz NOT NULL,
  kid                       text NOT NULL REFERENCES audit_signing_keys (kid),
  jws                       text NOT NULL,
  checkpoint_hash           bytea NOT NULL UNIQUE
);

-- Refuses UPDATE, DELETE and TRUNCATE on the checkpoint tables, like audit_events.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_signing_keys_no_update BEFORE UPDATE OR DELETE ON audit_signing_keys
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_signing_keys_no_truncate BEFORE TRUNCATE ON audit_signing_keys
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The chain head without UPDATE rights for the application. Writers lock the head row through
-- audit_lock_head() (SECURITY DEFINER: it runs as the migration role, which may lock the row);
-- the head then moves only as a side effect of INSERT INTO audit_events: the statement trigger
-- below checks that the inserted rows extend the head exactly (next seq numbers, prev_hash links)
-- and advances it. So the application cannot move the head by itself, and an INSERT that does not
-- extend the chain is refused by the database.
CREATE FUNCTION audit_lock_head(OUT seq bigint, OUT hash bytea)
  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT h.seq, h.hash FROM public.audit_head h FOR UPDATE
$$;

CREATE FUNCTION audit_events_advance_head() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  head_seq  bigint;
  head_hash bytea;
  bad_seq   bigint;
  last_seq  bigint;
  last_hash bytea;
BEGIN
  SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_head h FOR UPDATE;
  SELECT n.seq, n.hash INTO last_seq, last_hash FROM new_rows n ORDER BY n.seq DESC LIMIT 1;
  IF last_seq IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT min(x.seq) INTO bad_seq
    FROM (SELECT n.seq, n.prev_hash,
                 row_number() OVER (ORDER BY n.seq) AS rn,
                 lag(n.hash) OVER (ORDER BY n.seq) AS lag_hash
            FROM new_rows n) x
   WHERE x.seq <> head_seq + x.rn OR x.prev_hash <> coalesce(x.lag_hash, head_hash);
  IF bad_seq IS NOT NULL THEN
    RAISE EXCEPTION 'audit_events insert does not extend the chain head (seq %)', bad_seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  UPDATE public.audit_head SET seq = last_seq, hash = last_hash;
  RETURN NULL;
END;
$$;
CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_events_advance_head();

-- The application role (NOLOGIN; login roles are made members of it by lib/store/roles.ts).
-- Roles are cluster-wide, so it may exist already from another database of the same cluster.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ehr_app') THEN
    CREATE ROLE ehr_app NOLOGIN;
  END IF;
END;
$$;
GRANT USAGE ON SCHEMA public TO ehr_app;
-- Full DML on the operational tables, now and those later migrations create...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ehr_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ehr_app;
-- ...but the audit tables are read and append only, and migrations are not the application's.
REVOKE ALL ON audit_events, audit_head, audit_checkpoints, audit_signing_keys, pgmigrations FROM ehr_app;
GRANT SELECT, INSERT ON audit_events, audit_checkpoints, audit_signing_keys TO ehr_app;
GRANT SELECT ON audit_head TO ehr_app;
REVOKE ALL ON FUNCTION audit_lock_head() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_lock_head() TO ehr_app;

-- Down Migration
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM ehr_app;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ehr_app;
REVOKE ALL ON SCHEMA public FROM ehr_app;
DROP TRIGGER audit_events_advance_head ON audit_events;
DROP FUNCTION audit_events_advance_head();
DROP FUNCTION audit_lock_head();
DROP TABLE audit_checkpoints;
DROP TABLE audit_signing_keys;
DROP FUNCTION audit_append_only();
ALTER TABLE audit_head DROP COLUMN chain_id;
-- The role stays while another database of the cluster still grants it something.
DO $$
BEGIN
  DROP ROLE IF EXISTS ehr_app;
EXCEPTION WHEN dependent_objects_still_exist THEN
  NULL;
END;
$$;
