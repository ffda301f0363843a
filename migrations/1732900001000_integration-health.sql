-- Up Migration

-- Circuit breaker state per integration (lib/vendors/circuit-breaker.ts). Each worker keeps the live
-- state in memory and writes every transition here, so operators see it (`ehrctl integrations list`).
-- With several workers the row is the latest transition any of them made (`updated_by` says which).
CREATE TABLE integration_health (
  integration_id text PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  breaker_state text NOT NULL CHECK (breaker_state IN ('closed', 'open', 'half-open')),
  consecutive_failures integer NOT NULL CHECK (consecutive_failures >= 0),
  retry_at timestamptz,
  last_error_code text,
  updated_at timestamptz NOT NULL,
  updated_by text NOT NULL
);
-- Later tables get no default privileges (see 1732700001000_audit-checkpoints.sql): grant explicitly.
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_health TO ehr_app;

-- Down Migration
DROP TABLE integration_health;
