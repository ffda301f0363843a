-- Up Migration

-- Reconciliation runs (lib/reconcile/): one row per run of the `reconcile` workflow, with its counts per type and
-- class and its decisions (counts only: identifiers, classes and element names live in the audit events, values
-- nowhere but the encrypted records, outbox changes and conflicts).
CREATE TABLE reconcile_runs (
  id             text PRIMARY KEY,
  tenant_id      text NOT NULL REFERENCES tenants(id),
  integration_id text NOT NULL,
  resource_types text[] NOT NULL,
  -- How the vendor's side was read (search, …), and what was left out with its reason.
  read_strategy  text NOT NULL,
  status         text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  -- { "<type>": { "<class>": n, … } } and { "takeRemote": n, "writeBack": n, "conflicts": n, … }
  counts         jsonb NOT NULL DEFAULT '{}',
  decisions      jsonb NOT NULL DEFAULT '{}',
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE INDEX reconcile_runs_integration ON reconcile_runs (tenant_id, integration_id, started_at);

-- The last agreed state per record: keyed (HMAC) digests per element group, written when a record is found in
-- sync or a group is decided. Shared elements compare each side with it to tell which side changed. When the
-- whole record was agreed, `whole` is the keyed digest of its content and `local_version` the stored version it
-- was agreed at: while the stored record is still that version, a vendor copy with the same digest is in sync
-- without decrypting the stored one.
CREATE TABLE reconcile_baselines (
  tenant_id      text NOT NULL,
  integration_id text NOT NULL,
  resource_type  text NOT NULL,
  resource_id    text NOT NULL,
  digests        jsonb NOT NULL,
  whole          text,
  local_version  text,
  run_id         text NOT NULL,
  agreed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, integration_id, resource_type, resource_id),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);

-- The ids the vendor listed during a run (staging, per run): what is stored but not listed is looked up by id at
-- the end. Unlogged (a crash loses it with the run's cursor anyway: the run re-lists) and emptied when a run ends.
CREATE UNLOGGED TABLE reconcile_seen (
  run_id        text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  PRIMARY KEY (run_id, resource_type, resource_id)
);

-- What each batch of a run decided (its counts), written in the batch's own transaction: a batch repeated after
-- its commit (a lost reply, a worker killed before its heartbeat) finds its counts here instead of deciding and
-- counting again. Emptied when the run ends.
CREATE TABLE reconcile_batches (
  run_id     text NOT NULL,
  batch_key  text NOT NULL,
  tally      jsonb NOT NULL,
  PRIMARY KEY (run_id, batch_key)
);

GRANT SELECT, INSERT, UPDATE ON reconcile_runs TO ehr_app;
GRANT SELECT, INSERT, DELETE ON reconcile_batches TO ehr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON reconcile_baselines TO ehr_app;
GRANT SELECT, INSERT, DELETE ON reconcile_seen TO ehr_app;

-- Down Migration
DROP TABLE reconcile_batches;
DROP TABLE reconcile_seen;
DROP TABLE reconcile_baselines;
DROP TABLE reconcile_runs;
