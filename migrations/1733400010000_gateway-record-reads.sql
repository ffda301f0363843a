-- Up Migration

-- The gateway's FHIR read side (lib/store/record-reads.ts) reads a tenant's records across its integrations:
--   records_tenant_type_id: one type's records in resource id order, each id's versions newest first, then by
--     integration id — read by id, and search pages in id order (keyset paging) where the first row of each id is
--     the one served (the newest lastUpdated wins; a tie goes to the lowest integration id). Without it a read
--     walked every integration's part of the primary key.
--   records_tenant_patient: a patient's records (patient= searches, Patient/[id]/$everything) by pseudonym.
-- Indexes only: no new privilege for the application role (it already reads records).
CREATE INDEX records_tenant_type_id ON records (tenant_id, resource_type, resource_id, last_updated DESC, integration_id);
CREATE INDEX records_tenant_patient ON records (tenant_id, patient_pseudonym, resource_type, resource_id)
  WHERE patient_pseudonym IS NOT NULL;

-- Down Migration
DROP INDEX records_tenant_patient;
DROP INDEX records_tenant_type_id;
