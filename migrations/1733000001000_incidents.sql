-- Up Migration

-- Breach containment (issue 5, workflows/breach-containment.ts). One row per declared incident; the
-- workflow is the source of truth for its timeline, this row is what other code and reports read.
CREATE TABLE incidents (
  id text PRIMARY KEY,
  scope text NOT NULL,
  severity text NOT NULL,
  reason text NOT NULL,
  declared_by text NOT NULL,
  drill boolean NOT NULL DEFAULT false,
  declared_at timestamptz NOT NULL,
  -- The integrations in scope and their status when declared: recovery restores only those it revoked.
  affected jsonb NOT NULL,
  -- The schedules this incident paused (set once; recovery unpauses exactly these).
  paused_schedules jsonb,
  contained_at timestamptz,
  time_to_contain_ms integer,
  recovered_at timestamptz,
  time_to_recover_ms integer,
  status text NOT NULL DEFAULT 'containing' CHECK (status IN ('containing', 'contained', 'recovered'))
);

-- The flags containment raises for a scope ('all', 'tenant:T', 'integration:I', 'vendor:V'): exports
-- and records reads refuse, webhooks are refused, vendor writes are queued, and the scope's retention
-- and deletion clocks are frozen (legal hold). Recovery clears the first three; the legal hold stays
-- until released by someone outside the incident (counsel), not by resumption.
CREATE TABLE incident_holds (
  incident_id text PRIMARY KEY REFERENCES incidents (id),
  scope text NOT NULL,
  exports_frozen boolean NOT NULL DEFAULT true,
  webhooks_refused boolean NOT NULL DEFAULT true,
  writes_queued boolean NOT NULL DEFAULT true,
  legal_hold boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz
);

-- Vendor writes that arrived while their scope was contained, replayed once each after approval
-- through VendorClient with the same idempotency key. The resource is envelope-encrypted with the
-- tenant's data key (it may carry PHI).
CREATE TABLE pending_vendor_actions (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  integration_id text NOT NULL REFERENCES integrations (id),
  method text NOT NULL CHECK (method IN ('create', 'update')),
  resource_type text NOT NULL,
  resource_id text,
  idempotency_key text NOT NULL,
  ciphertext bytea NOT NULL,
  queued_at timestamptz NOT NULL DEFAULT now(),
  queued_by text NOT NULL,
  replayed_at timestamptz,
  replay_status integer,
  UNIQUE (integration_id, idempotency_key)
);

-- Evidence: the manifest and each file's SHA-256. Insert-only for the application (no UPDATE or
-- DELETE privilege), so later cleanup cannot alter what was preserved.
CREATE TABLE incident_evidence (
  incident_id text NOT NULL REFERENCES incidents (id),
  name text NOT NULL,
  kind text NOT NULL,
  sha256 text NOT NULL,
  bytes bigint NOT NULL,
  path text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (incident_id, name)
);

GRANT SELECT, INSERT, UPDATE ON incidents, incident_holds, pending_vendor_actions TO ehr_app;
GRANT USAGE ON SEQUENCE pending_vendor_actions_id_seq TO ehr_app;
GRANT SELECT, INSERT ON incident_evidence TO ehr_app;

-- Down Migration
DROP TABLE incident_evidence;
DROP TABLE pending_vendor_actions;
DROP TABLE incident_holds;
DROP TABLE incidents;
