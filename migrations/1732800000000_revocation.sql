-- Up Migration

-- Revocation that fails closed (issue 4 item 4). An integration's credentials have a generation:
-- revoke and restore bump it, and every worker drops what it cached for an older generation. A
-- revoked integration refuses every vendor call. Workers learn of each change through
-- NOTIFY ehr_revocations, sent by the trigger below in the changing transaction (delivered on commit).
ALTER TABLE integrations ADD COLUMN credential_generation integer NOT NULL DEFAULT 1 CHECK (credential_generation > 0);
ALTER TABLE integrations ADD COLUMN revoked_at timestamptz;
ALTER TABLE integrations DROP CONSTRAINT integrations_status_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_status_check CHECK (status IN ('active', 'suspended', 'revoked'));

-- A revoked tenant: all its integrations are revoked with it, and none may be restored until the
-- tenant is active again.
ALTER TABLE tenants ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked'));
ALTER TABLE tenants ADD COLUMN revoked_at timestamptz;

CREATE FUNCTION integrations_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ehr_revocations', json_build_object(
    'integrationId', NEW.id, 'tenantId', NEW.tenant_id, 'generation', NEW.credential_generation, 'status', NEW.status)::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER integrations_notify_revocation AFTER UPDATE OF status, credential_generation ON integrations
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.credential_generation IS DISTINCT FROM NEW.credential_generation)
  EXECUTE FUNCTION integrations_notify_revocation();

-- Down Migration
DROP TRIGGER integrations_notify_revocation ON integrations;
DROP FUNCTION integrations_notify_revocation();
ALTER TABLE tenants DROP COLUMN revoked_at;
ALTER TABLE tenants DROP COLUMN status;
UPDATE integrations SET status = 'suspended' WHERE status = 'revoked';
ALTER TABLE integrations DROP CONSTRAINT integrations_status_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_status_check CHECK (status IN ('active', 'suspended'));
ALTER TABLE integrations DROP COLUMN revoked_at;
ALTER TABLE integrations DROP COLUMN credential_generation;
