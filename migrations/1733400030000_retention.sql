-- Up Migration

-- Retention by data class (issue 12 item 6; lib/retention/). Per tenant, how many days each kind of
-- stored data is kept: records by data class (`records:<class>`), webhook deliveries, incident evidence,
-- exports and audit rows. Kinds without a row here use the defaults in lib/retention/rules.ts.
CREATE TABLE retention_rules (
  tenant_id   text NOT NULL REFERENCES tenants (id),
  kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z:-]{1,40}$'),
  days        integer NOT NULL CHECK (days BETWEEN 1 AND 36500),
  set_by      text NOT NULL,
  set_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind)
);

-- A purge batch reads a tenant's oldest records first (stored_at < cutoff, in order): without this index each
-- batch would scan all of the tenant's records. One more index entry per stored version (writes of the
-- ciphertext are never HOT updates anyway: records_tenant_header_key_version indexes it).
CREATE INDEX records_retention ON records (tenant_id, stored_at);

-- Legal holds placed by hand (`ehrctl holds place`); incidents place theirs in incident_holds.legal_hold.
-- A hold stops every purge in its scope ('all', 'tenant:T', 'integration:I', 'vendor:V') until released.
CREATE TABLE retention_holds (
  id           text PRIMARY KEY CHECK (id ~ '^hold-[a-z0-9-]{1,60}$'),
  scope        text NOT NULL CHECK (scope ~ '^(all|(tenant|integration|vendor):[a-z0-9][a-z0-9-]{0,62})$'),
  reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
  placed_by    text NOT NULL,
  placed_at    timestamptz NOT NULL DEFAULT now(),
  released_by  text,
  released_at  timestamptz,
  release_reason text
);

-- One row per purge batch a retention run committed, in the same transaction as the deletions and their
-- audit event: a batch retried after its reply was lost returns what it did instead of doing more, and a
-- run's totals are exact.
CREATE TABLE retention_purge_batches (
  run_id      text NOT NULL CHECK (length(run_id) BETWEEN 1 AND 300),
  batch_key   text NOT NULL CHECK (length(batch_key) BETWEEN 1 AND 300),
  kind        text NOT NULL,
  tenant_id   text,
  purged      integer NOT NULL CHECK (purged >= 0),
  committed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, batch_key)
);

-- Audit segments purged: every event with seq <= purged_through_seq is gone, and the chain now starts
-- after the signed checkpoint `checkpoint_seq`, whose head hash is `through_hash`
-- (lib/audit/verify.ts starts there). Written only by retention_purge_audit_segment below.
CREATE TABLE audit_purges (
  checkpoint_seq      bigint PRIMARY KEY REFERENCES audit_checkpoints (checkpoint_seq),
  purged_through_seq  bigint NOT NULL UNIQUE CHECK (purged_through_seq > 0),
  through_hash        bytea NOT NULL,
  rows_purged         bigint NOT NULL CHECK (rows_purged >= 0),
  purged_at           timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_purges_no_update BEFORE UPDATE OR DELETE ON audit_purges
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON audit_purges
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- audit_events stays append-only, except for the rows a segment purge (below) removes: that function sets
-- ehr.audit_purge_through for its own transaction, and only rows at or below it may be deleted. The
-- application role has no DELETE privilege on audit_events at all, so it cannot reach this trigger.
CREATE OR REPLACE FUNCTION audit_events_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
     AND coalesce(nullif(current_setting('ehr.audit_purge_through', true), ''), '0')::bigint >= OLD.seq THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Purges the oldest kept audit segment: the events up to and including signed checkpoint p_checkpoint_seq,
-- which must be the first checkpoint after the previous purge, and whose last event occurred before
-- p_cutoff. Oldest first, whole segments only. Returns the rows deleted (0 when the segment was purged
-- already: a repeated call is harmless).
CREATE FUNCTION retention_purge_audit_segment(p_checkpoint_seq bigint, p_cutoff timestamptz)
RETURNS TABLE (from_seq bigint, through_seq bigint, rows_purged bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  boundary bigint;
  cp public.audit_checkpoints;
  next_cp bigint;
  last_at timestamptz;
  head_seq bigint;
  n bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('ehr-connectors:audit-checkpoints', 0));
  SELECT coalesce(max(p.purged_through_seq), 0) INTO boundary FROM public.audit_purges p;
  SELECT * INTO cp FROM public.audit_checkpoints c WHERE c.checkpoint_seq = p_checkpoint_seq;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'checkpoint % does not exist', p_checkpoint_seq USING ERRCODE = 'no_data_found';
  END IF;
  IF cp.event_seq <= boundary THEN
    RETURN QUERY SELECT boundary + 1, cp.event_seq, 0::bigint;
    RETURN;
  END IF;
  SELECT min(c.checkpoint_seq) INTO next_cp FROM public.audit_checkpoints c WHERE c.event_seq > boundary;
  IF next_cp IS DISTINCT FROM p_checkpoint_seq THEN
    RAISE EXCEPTION 'checkpoint % is not the oldest kept segment (that is checkpoint %)', p_checkpoint_seq, next_cp
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT h.seq INTO head_seq FROM public.audit_head h;
  IF cp.event_seq >= head_seq THEN
    RAISE EXCEPTION 'checkpoint % signs the head: the newest segment is never purged', p_checkpoint_seq
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT e.occurred_at INTO last_at FROM public.audit_events e WHERE e.seq = cp.event_seq;
  IF last_at IS NULL OR last_at >= p_cutoff THEN
    RAISE EXCEPTION 'checkpoint % is not past due', p_checkpoint_seq USING ERRCODE = 'check_violation';
  END IF;
  PERFORM set_config('ehr.audit_purge_through', cp.event_seq::text, true);
  DELETE FROM public.audit_events e WHERE e.seq > boundary AND e.seq <= cp.event_seq;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('ehr.audit_purge_through', '0', true);
  INSERT INTO public.audit_purges (checkpoint_seq, purged_through_seq, through_hash, rows_purged)
  VALUES (cp.checkpoint_seq, cp.event_seq, cp.head_hash, n);
  RETURN QUERY SELECT boundary + 1, cp.event_seq, n;
END;
$$;

-- Webhook deliveries past their retention: only signalled ones (an unsignalled delivery is work not yet
-- handed on), of one tenant, outside the integrations a hold covers. Batched by p_limit.
CREATE FUNCTION retention_purge_webhook_deliveries(
  p_tenant_id text, p_cutoff timestamptz, p_held_integrations text[], p_limit integer
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM public.webhook_deliveries w WHERE w.id IN (
    SELECT d.id FROM public.webhook_deliveries d
     WHERE d.tenant_id = p_tenant_id AND d.received_at < p_cutoff AND d.signalled_at IS NOT NULL
       AND NOT (d.integration_id = ANY (p_held_integrations))
     ORDER BY d.id LIMIT greatest(p_limit, 0)
       FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END;
$$;

-- An incident's evidence rows (insert-only for the application, so that cleanup cannot rewrite them) once
-- it is past its retention: recovered before p_cutoff and its legal hold released. The worker deletes the
-- files in the same transaction (lib/retention/evidence.ts). Returns the rows deleted.
CREATE FUNCTION retention_purge_incident_evidence(p_incident_id text, p_cutoff timestamptz)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM public.incidents i LEFT JOIN public.incident_holds h ON h.incident_id = i.id
     WHERE i.id = p_incident_id AND i.status = 'recovered' AND i.recovered_at < p_cutoff
       AND NOT coalesce(h.legal_hold, false)) THEN
    RAISE EXCEPTION 'incident % evidence is not past due or is under its legal hold', p_incident_id
      USING ERRCODE = 'check_violation';
  END IF;
  DELETE FROM public.incident_evidence e WHERE e.incident_id = p_incident_id;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END;
$$;

REVOKE ALL ON retention_rules, retention_holds, retention_purge_batches, audit_purges FROM ehr_app;
GRANT SELECT, INSERT, UPDATE ON retention_rules, retention_holds TO ehr_app;
GRANT DELETE ON retention_rules TO ehr_app;
GRANT SELECT, INSERT ON retention_purge_batches TO ehr_app;
GRANT SELECT ON audit_purges TO ehr_app;
REVOKE ALL ON FUNCTION retention_purge_audit_segment(bigint, timestamptz),
  retention_purge_webhook_deliveries(text, timestamptz, text[], integer),
  retention_purge_incident_evidence(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_purge_audit_segment(bigint, timestamptz),
  retention_purge_webhook_deliveries(text, timestamptz, text[], integer),
  retention_purge_incident_evidence(text, timestamptz) TO ehr_app;

-- Down Migration
DROP FUNCTION retention_purge_incident_evidence(text, timestamptz);
DROP FUNCTION retention_purge_webhook_deliveries(text, timestamptz, text[], integer);
DROP FUNCTION retention_purge_audit_segment(bigint, timestamptz);
CREATE OR REPLACE FUNCTION audit_events_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TABLE audit_purges;
DROP TABLE retention_purge_batches;
DROP TABLE retention_holds;
DROP TABLE retention_rules;
DROP INDEX records_retention;
