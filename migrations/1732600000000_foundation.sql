-- Up Migration

CREATE TABLE tenants (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- An integration is one tenant's connection to one vendor endpoint. The private signing key is
-- never stored here: private_key_ref names a 0600 file (or env var) holding it.
CREATE TABLE integrations (
  id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  tenant_id       text NOT NULL REFERENCES tenants(id),
  vendor          text NOT NULL,
  base_url        text NOT NULL,
  token_url       text NOT NULL,
  client_id       text NOT NULL,
  signing_alg     text NOT NULL CHECK (signing_alg IN ('RS384', 'ES384')),
  signing_kid     text NOT NULL,
  public_jwk      jsonb NOT NULL,
  private_key_ref text NOT NULL,
  resource_types  text[] NOT NULL CHECK (cardinality(resource_types) > 0),
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, id)
);

-- Per-tenant data keys, stored only wrapped by a key-encryption key (KEK) that lives outside the database.
CREATE TABLE data_keys (
  tenant_id    text NOT NULL REFERENCES tenants(id),
  key_version  integer NOT NULL CHECK (key_version > 0),
  kek_id       text NOT NULL,
  kek_version  integer NOT NULL CHECK (kek_version > 0),
  wrapped_key  bytea NOT NULL,
  status       text NOT NULL DEFAULT 'primary' CHECK (status IN ('primary', 'decrypt_only', 'destroyed')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key_version)
);
CREATE UNIQUE INDEX data_keys_one_primary ON data_keys (tenant_id) WHERE status = 'primary';

-- Clinical content exists only here, only as ciphertext. Upserts are version-checked.
CREATE TABLE records (
  tenant_id         text NOT NULL,
  integration_id    text NOT NULL,
  resource_type     text NOT NULL,
  resource_id       text NOT NULL,
  version_id        text NOT NULL,
  last_updated      timestamptz NOT NULL,
  patient_pseudonym text,
  key_version       integer NOT NULL,
  ciphertext        bytea NOT NULL,
  stored_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, integration_id, resource_type, resource_id),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);

CREATE TABLE sync_checkpoints (
  tenant_id       text NOT NULL,
  integration_id  text NOT NULL,
  resource_type   text NOT NULL,
  high_water      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  updated_by_run  text NOT NULL,
  PRIMARY KEY (tenant_id, integration_id, resource_type),
  FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);

-- Append-only, hash-chained audit trail. seq is assigned from audit_head under a row lock, so it is
-- gap-free: a deleted row shows as a missing sequence number.
CREATE TABLE audit_events (
  seq             bigint PRIMARY KEY,
  occurred_at     timestamptz NOT NULL,
  actor           text NOT NULL,
  action          text NOT NULL,
  outcome         text NOT NULL CHECK (outcome IN ('success', 'failure')),
  tenant_id       text,
  integration_id  text,
  correlation_id  text NOT NULL,
  details         jsonb NOT NULL,
  prev_hash       bytea NOT NULL,
  hash            bytea NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, seq);

CREATE TABLE audit_head (
  id    boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq   bigint NOT NULL,
  hash  bytea NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_events_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_insert_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_insert_only();

-- Down Migration
DROP TABLE audit_head;
DROP TRIGGER audit_events_no_truncate ON audit_events;
DROP TRIGGER audit_events_no_update ON audit_events;
DROP TABLE audit_events;
DROP FUNCTION audit_events_insert_only();
DROP TABLE sync_checkpoints;
DROP TABLE records;
DROP TABLE data_keys;
DROP TABLE integrations;
DROP TABLE tenants;
