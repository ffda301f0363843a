-- Up Migration

-- Webhook deliveries accepted by the receiver (workers/webhook-receiver.ts). The webhook id is the
-- sender's idempotency key (Standard Webhooks): unique per integration, so a redelivery is answered
-- without storing it again. No body and no resource ids are kept (they may identify patients): only
-- the event type, the resource types named and how many entries there were. `signalled_at` is set
-- once the integration's delta-sync workflow has the notification; a redelivery of a stored but
-- unsignalled delivery (Temporal was down) signals it then, so nothing accepted is lost.
CREATE TABLE webhook_deliveries (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  integration_id text NOT NULL REFERENCES integrations (id),
  webhook_id text NOT NULL CHECK (length(webhook_id) BETWEEN 1 AND 255),
  received_at timestamptz NOT NULL DEFAULT now(),
  event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
  resource_types text[] NOT NULL,
  entry_count integer NOT NULL CHECK (entry_count >= 0),
  body_bytes integer NOT NULL CHECK (body_bytes >= 0),
  signalled_at timestamptz,
  UNIQUE (integration_id, webhook_id)
);
CREATE INDEX webhook_deliveries_unsignalled ON webhook_deliveries (integration_id) WHERE signalled_at IS NULL;
-- Later tables get no default privileges (see 1732700001000_audit-checkpoints.sql): grant explicitly.
-- No DELETE: a delivery row is the durable dedupe record.
GRANT SELECT, INSERT ON webhook_deliveries TO ehr_app;
GRANT UPDATE (signalled_at) ON webhook_deliveries TO ehr_app;
GRANT USAGE ON SEQUENCE webhook_deliveries_id_seq TO ehr_app;

-- Down Migration
DROP TABLE webhook_deliveries;
