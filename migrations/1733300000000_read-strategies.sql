-- Up Migration

-- How an integration reads from its vendor (lib/sync/read-strategy.ts):
--   read_strategy: 'bulk' (Bulk Data $export), 'patient' (a roster, then searches per patient and type) or
--     'search' (system-wide searches, for servers that allow them); NULL: the vendor profile's default.
--   read_options: the strategy's non-secret settings (bulk level and group id, _typeFilter, roster search,
--     the incremental overlap window). Written by the application role (`integrations update`, audited).
--   bulk_file_hosts: hosts other than the vendor's own that may serve Bulk Data output files. It decides
--     where a download goes (and, with requiresAccessToken, where the bearer token goes), so like the URLs and
--     secret references it is written only through the owner's functions, never by a plain UPDATE.
ALTER TABLE integrations
  ADD COLUMN read_strategy text CHECK (read_strategy IN ('bulk', 'patient', 'search')),
  ADD COLUMN read_options jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN bulk_file_hosts text[] NOT NULL DEFAULT '{}';
GRANT UPDATE (read_strategy, read_options) ON integrations TO ehr_app;

-- Deletions are data: a resource the vendor deleted (bulk deleted[], 410 on read, _history) becomes a
-- tombstone, its ciphertext is removed in the same transaction, and a later fetch of an older version
-- (an overlap window, a slow replica) cannot bring it back. Identifiers and times only, never content.
CREATE TABLE record_tombstones (
  tenant_id      text NOT NULL,
  integration_id text NOT NULL,
  resource_type  text NOT NULL,
  resource_id    text NOT NULL,
  -- When the vendor deleted it (its history entry or export transactionTime), else when we learned it.
  deleted_at     timestamptz NOT NULL,
  learned_at     timestamptz NOT NULL DEFAULT now(),
  learned_how    text NOT NULL CHECK (learned_how IN ('bulk-deleted', 'read-gone', 'history')),
  run_id         text NOT NULL,
  PRIMARY KEY (tenant_id, integration_id, resource_type, resource_id),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON record_tombstones TO ehr_app;

-- The patient strategy's roster for one sync run: the vendor's patient ids, in the order the run reads them.
-- They stay here, never in the workflow history (which carries positions and counts only), and are dropped when
-- the run ends; a roster older than a day belongs to a run that died and is swept by the next run's roster.
CREATE TABLE sync_rosters (
  roster_id      text NOT NULL,
  position       integer NOT NULL,
  tenant_id      text NOT NULL,
  integration_id text NOT NULL,
  patient_id     text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (roster_id, position),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
GRANT SELECT, INSERT, DELETE ON sync_rosters TO ehr_app;

-- Down Migration
DROP TABLE sync_rosters;
DROP TABLE record_tombstones;
ALTER TABLE integrations DROP COLUMN bulk_file_hosts, DROP COLUMN read_options, DROP COLUMN read_strategy;
