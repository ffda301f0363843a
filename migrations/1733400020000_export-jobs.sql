-- Up Migration

-- Encrypted batch exports (issue 12 item 5). One row per export job: what it exported (tenant, purpose,
-- types, since, where) and its job key — a random 256-bit AES key, stored only wrapped by the KEK (the AAD
-- binds tenant, job, key id and KEK id/version, lib/exports/job-key.ts). The files are encrypted under the
-- job key; destroying the wrapped key (crypto-shredding, after the retention period) makes them unreadable
-- for good. A shredded row keeps its place (what was exported, when, by whom) but loses its key bytes.
CREATE TABLE export_jobs (
  id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  tenant_id      text NOT NULL REFERENCES tenants(id),
  workflow_id    text NOT NULL,
  purpose        text NOT NULL,
  resource_types text[] NOT NULL,
  since          timestamptz,
  directory      text NOT NULL,
  key_id         text NOT NULL UNIQUE,
  kek_id         text NOT NULL,
  kek_version    integer NOT NULL CHECK (kek_version > 0),
  wrapped_key    bytea,
  status         text NOT NULL CHECK (status IN ('writing', 'written', 'failed', 'shredded')),
  requested_by   text NOT NULL,
  -- Per type: records and bytes written, once the manifest is signed (counts only, never content).
  counts         jsonb,
  retain_until   timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  written_at     timestamptz,
  shredded_at    timestamptz,
  CHECK ((wrapped_key IS NULL) = (status IN ('failed', 'shredded')))
);
CREATE INDEX export_jobs_tenant ON export_jobs (tenant_id, created_at);
CREATE INDEX export_jobs_kek ON export_jobs (kek_id, kek_version) WHERE wrapped_key IS NOT NULL;

-- Same guard as the other wrapped keys: nothing wrapped below the KEK floor or under an unusable version.
CREATE TRIGGER export_jobs_wrap_guard BEFORE INSERT OR UPDATE OF kek_id, kek_version, wrapped_key ON export_jobs
  FOR EACH ROW EXECUTE FUNCTION key_wrap_guard();

-- The application writes jobs and shreds their keys; it never deletes the row (the record of the export).
GRANT SELECT, INSERT, UPDATE ON export_jobs TO ehr_app;
REVOKE DELETE ON export_jobs FROM ehr_app;

-- Down Migration
DROP TABLE export_jobs;
