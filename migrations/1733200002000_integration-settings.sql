-- Up Migration

-- Compensating controls as an integration's own settings (lib/store/integration-settings.ts): set at
-- registration from the vendor profile (lib/vendors/profiles/compensating.ts), overridable with a
-- reason (audited as integration.settings_changed; `settings_overrides` keeps who, when and why per
-- setting). NULL in rows registered before this migration: the profile's value applies when read.
--   sync_interval_hours: what `ehrctl schedule nightly` runs by default (a divisor of 24, so runs fall
--     at the same local times every day);
--   credential_rotation_days: how often a client secret must be replaced (NULL: the credential is a
--     signing key or a certificate, rotated by its own means); due = credential_rotated_at + that.
ALTER TABLE integrations
  ADD COLUMN sync_interval_hours integer CHECK (sync_interval_hours IN (1, 2, 3, 4, 6, 8, 12, 24)),
  ADD COLUMN credential_rotation_days integer CHECK (credential_rotation_days BETWEEN 1 AND 730),
  ADD COLUMN credential_rotated_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN settings_overrides jsonb NOT NULL DEFAULT '{}'::jsonb;
-- Registered before: their credential dates from registration.
UPDATE integrations SET credential_rotated_at = created_at;

-- Rows are inserted only by register_integration (migration 1733200000000); the settings are then
-- written by the application role, which may update these columns and no secret reference.
GRANT UPDATE (sync_interval_hours, credential_rotation_days, credential_rotated_at, settings_overrides) ON integrations TO ehr_app;

-- Counsel releases an incident's legal hold after recovery (`ehrctl incident release-legal-hold`).
ALTER TABLE incident_holds
  ADD COLUMN legal_hold_released_at timestamptz,
  ADD COLUMN legal_hold_released_by text;

-- Down Migration
ALTER TABLE incident_holds DROP COLUMN legal_hold_released_by, DROP COLUMN legal_hold_released_at;
ALTER TABLE integrations
  DROP COLUMN settings_overrides,
  DROP COLUMN credential_rotated_at,
  DROP COLUMN credential_rotation_days,
  DROP COLUMN sync_interval_hours;
