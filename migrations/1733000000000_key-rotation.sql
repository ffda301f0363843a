-- Up Migration

-- Per-integration webhook signing secrets (Standard Webhooks, issue 5). The secret itself never lives
-- here: `secret_ref` is a secret reference (file:/env:/manager), generated secrets are 0600 files in
-- EHR_SECRETS_DIR. States:
--   current   signs and verifies (exactly one per integration);
--   previous  still verifies during a rotation's dual-acceptance window;
--   retired   refused.
CREATE TABLE webhook_secrets (
  integration_id  text NOT NULL REFERENCES integrations(id),
  version         integer NOT NULL CHECK (version > 0),
  secret_ref      text NOT NULL CHECK (length(secret_ref) BETWEEN 1 AND 2048),
  state           text NOT NULL CHECK (state IN ('current', 'previous', 'retired')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  retired_at      timestamptz,
  PRIMARY KEY (integration_id, version),
  CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);
CREATE UNIQUE INDEX webhook_secrets_one_current ON webhook_secrets (integration_id) WHERE state = 'current';

-- A rotation's steps find what they already did by their workflow id (the correlation id), so a step
-- retried after its commit does not create a second key version; `ehrctl keys status` reads the last
-- rotations. Both would otherwise scan the whole audit trail.
CREATE INDEX audit_events_correlation ON audit_events (correlation_id);
CREATE INDEX audit_events_key_rotation ON audit_events (seq) WHERE action IN ('key.rotation.completed', 'key.rotation.rolled_back');

-- Down Migration
DROP INDEX audit_events_key_rotation;
DROP INDEX audit_events_correlation;
DROP TABLE webhook_secrets;
