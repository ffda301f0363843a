-- Up Migration

-- A consumer that sends a create again (its connection dropped before the answer, its job restarted) must not
-- create a second resource at the EHR: a duplicate Patient or Appointment is a safety problem, not a nuisance.
-- A POST carrying an Idempotency-Key claims the key here in the create's own transaction; the same key again
-- from the same consumer answers with what the first created (lib/gateway/fhir/write-replay.ts), and with a
-- different request it is refused. The request is kept only as a digest under the tenant's pseudonym key (an
-- HMAC; no PHI). Keys are kept 24 hours: each claim first removes the tenant's expired ones.
CREATE TABLE gateway_idempotency_keys (
  tenant_id       text NOT NULL REFERENCES tenants(id),
  consumer_id     text NOT NULL,
  idempotency_key text NOT NULL CHECK (idempotency_key ~ '^[A-Za-z0-9._:/+=-]{8,255}$'),
  request_digest  text NOT NULL,
  integration_id  text NOT NULL,
  resource_type   text NOT NULL,
  -- The local id the create assigned (outbox_changes.resource_id of its change; vendor_resource_id once sent).
  resource_id     text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, consumer_id, idempotency_key)
);
CREATE INDEX gateway_idempotency_keys_expiry ON gateway_idempotency_keys (tenant_id, created_at);

GRANT SELECT, INSERT, DELETE ON gateway_idempotency_keys TO ehr_app;
REVOKE UPDATE ON gateway_idempotency_keys FROM ehr_app;

-- Down Migration
DROP TABLE gateway_idempotency_keys;
