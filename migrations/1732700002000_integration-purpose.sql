-- Up Migration

-- Each integration declares the purpose its data serves (DESIGN §4 invariant 8, minimum necessary).
-- The purpose fixes the resource types it may sync and the data classes it may store
-- (lib/fhir/classification.ts). Integrations registered before purposes existed synced every
-- clinical type, which is exactly what 'clinical-sync' allows.
ALTER TABLE integrations
  ADD COLUMN purpose text NOT NULL DEFAULT 'clinical-sync'
  CHECK (purpose IN ('clinical-sync', 'scheduling-sync', 'billing-export'));

-- Down Migration
ALTER TABLE integrations DROP COLUMN purpose;
