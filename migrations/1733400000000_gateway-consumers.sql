-- Up Migration

-- Consumers of the mediation gateway (issue 12): the organisation's own systems, each a SMART Backend
-- Services client of the gateway, bound to one tenant and one purpose. Their keys are public: a JWKS URL
-- (fetched by the gateway) or a JWKS given at registration. Only public members are stored; a consumer made
-- with `--dev-key` keeps its private key in a 0600 file under the secrets directory, never here.
CREATE TABLE gateway_consumers (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  tenant_id text NOT NULL REFERENCES tenants (id),
  purpose text NOT NULL CHECK (purpose IN ('clinical-sync', 'scheduling-sync', 'billing-export')),
  -- SMART v2 scopes, e.g. {system/Patient.rs, system/Observation.rs}; parsed by lib/gateway/scopes.ts.
  scopes text[] NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 100),
  jwks_url text CHECK (jwks_url IS NULL OR public.integration_url_allowed(jwks_url)),
  jwks jsonb CHECK (jwks IS NULL OR jsonb_typeof(jwks -> 'keys') = 'array'),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  -- Token bucket per consumer: refilled at rate_per_minute, at most burst requests at once.
  rate_per_minute integer NOT NULL DEFAULT 600 CHECK (rate_per_minute BETWEEN 1 AND 1000000),
  rate_burst integer NOT NULL DEFAULT 60 CHECK (rate_burst BETWEEN 1 AND 1000000),
  created_at timestamptz NOT NULL DEFAULT now(),
  status_changed_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT gateway_consumers_one_key_source CHECK ((jwks_url IS NULL) <> (jwks IS NULL))
);
CREATE INDEX gateway_consumers_tenant ON gateway_consumers (tenant_id);
-- No DELETE: a consumer's row is what its audit events name; revoke it instead.
GRANT SELECT, INSERT ON gateway_consumers TO ehr_app;
GRANT UPDATE (status, status_changed_at) ON gateway_consumers TO ehr_app;

-- Client assertion ids (jti) seen by the token endpoint, kept until the assertion expires, so a replay is
-- refused by every gateway process alike. Expired rows are swept by the token endpoint.
CREATE TABLE gateway_assertion_jtis (
  consumer_id text NOT NULL REFERENCES gateway_consumers (id),
  jti text NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (consumer_id, jti)
);
CREATE INDEX gateway_assertion_jtis_expiry ON gateway_assertion_jtis (expires_at);
GRANT SELECT, INSERT, DELETE ON gateway_assertion_jtis TO ehr_app;

-- Down Migration
DROP TABLE gateway_assertion_jtis;
DROP TABLE gateway_consumers;
