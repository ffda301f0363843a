-- Up Migration

-- Bidirectional reconciliation, the local side. A change the organisation's systems make through the gateway
-- (or that reconciliation or a person's conflict resolution decides to send) waits here until the writeBack
-- workflow has sent it through the vendor door. The change itself (element values, or the whole resource for
-- a create) is envelope-encrypted with the tenant's data key, the AAD naming this row (lib/writeback/outbox.ts);
-- everything else is identifiers, element names and vendor status codes: no PHI.
CREATE TABLE outbox_changes (
  id                  text PRIMARY KEY,
  tenant_id           text NOT NULL REFERENCES tenants(id),
  integration_id      text NOT NULL,
  resource_type       text NOT NULL,
  -- update: the vendor's id; create: the local id the gateway assigned (vendor_resource_id once created)
  resource_id         text NOT NULL,
  kind                text NOT NULL CHECK (kind IN ('create', 'update')),
  origin              text NOT NULL CHECK (origin IN ('gateway', 'reconcile', 'resolution')),
  requested_by        text NOT NULL,
  -- The vendor version the change was made against (If-Match); null for a create.
  base_version_id     text,
  changed_elements    text[] NOT NULL,
  key_version         integer NOT NULL,
  ciphertext          bytea NOT NULL,
  -- The vendor's idempotency key (or the conditional-create identifier) for this change, stable across retries.
  idempotency_key     text NOT NULL,
  status              text NOT NULL CHECK (status IN ('pending', 'sent', 'refused', 'conflict', 'cancelled')),
  attempts            integer NOT NULL DEFAULT 0,
  vendor_status       integer,
  vendor_outcome_code text,
  vendor_resource_id  text,
  vendor_version_id   text,
  conflict_id         text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  sent_at             timestamptz,
  UNIQUE (integration_id, idempotency_key),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
-- The writeBack workflow drains an integration's pending changes oldest first.
CREATE INDEX outbox_changes_pending ON outbox_changes (integration_id, created_at) WHERE status = 'pending';
CREATE INDEX outbox_changes_record ON outbox_changes (tenant_id, integration_id, resource_type, resource_id);

-- Per integration and type, which side owns which elements (lib/writeback/authority.ts). A row overrides the
-- built-in defaults for its type; changing it is audited.
CREATE TABLE write_policies (
  tenant_id      text NOT NULL,
  integration_id text NOT NULL,
  resource_type  text NOT NULL,
  policy         jsonb NOT NULL,
  updated_by     text NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, integration_id, resource_type),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);

-- What neither the authority policy nor write-back can decide waits here for a person (lib/writeback/conflicts.ts):
-- reconciliation found both sides changed a shared element, or a write-back met a record the vendor deleted or
-- changed under it. Each open conflict has a conflictResolution workflow (`conflict-<id>`) that reminds and
-- escalates until a person resolves it. The two sides' values are encrypted (AAD names the conflict row); the
-- columns are identifiers, element names and codes.
CREATE TABLE reconcile_conflicts (
  id             text PRIMARY KEY,
  tenant_id      text NOT NULL REFERENCES tenants(id),
  integration_id text NOT NULL,
  resource_type  text NOT NULL,
  resource_id    text NOT NULL,
  source         text NOT NULL CHECK (source IN ('reconcile', 'write-back')),
  -- The reconcile run or outbox change that opened it.
  run_id         text,
  change_id      text REFERENCES outbox_changes(id),
  reason         text NOT NULL CHECK (reason IN ('both-changed', 'deleted-remote', 'missing-remote', 'stale-write')),
  elements       text[] NOT NULL,
  key_version    integer NOT NULL,
  ciphertext     bytea NOT NULL,
  status         text NOT NULL CHECK (status IN ('open', 'resolved', 'cancelled')),
  -- How it was resolved: element -> 'local' | 'remote' (never values), and who did it.
  resolution     jsonb,
  resolved_by    text,
  opened_at      timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz,
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE INDEX reconcile_conflicts_open ON reconcile_conflicts (tenant_id, integration_id, opened_at) WHERE status = 'open';
-- One open conflict per record: a second finding on it joins the first.
CREATE UNIQUE INDEX reconcile_conflicts_one_open ON reconcile_conflicts (tenant_id, integration_id, resource_type, resource_id)
  WHERE status = 'open';
ALTER TABLE outbox_changes ADD FOREIGN KEY (conflict_id) REFERENCES reconcile_conflicts(id);

-- The application queues, sends and settles changes; it never deletes one (a cancelled change keeps its row).
GRANT SELECT, INSERT, UPDATE ON outbox_changes TO ehr_app;
REVOKE DELETE ON outbox_changes FROM ehr_app;
GRANT SELECT, INSERT, UPDATE ON write_policies TO ehr_app;
GRANT SELECT, INSERT, UPDATE ON reconcile_conflicts TO ehr_app;
REVOKE DELETE ON reconcile_conflicts FROM ehr_app;

-- Down Migration
ALTER TABLE outbox_changes DROP CONSTRAINT outbox_changes_conflict_id_fkey;
DROP TABLE reconcile_conflicts;
DROP TABLE write_policies;
DROP TABLE outbox_changes;
