-- Up Migration

-- Every sync writes each index on records once per record, and the indexes were most of what a stored record
-- cost PostgreSQL. Two are folded away:
--   * The primary key leads with (tenant_id, resource_type, resource_id) and ends with integration_id, so it also
--     serves what records_tenant_type_id served: the gateway's reads by id across a tenant's integrations, and its
--     searches in id order (lib/store/record-reads.ts), as well as every lookup by the full key. An integration's
--     own pages in id order (reconcile's stored ids, the roster) range over (tenant, type, id) and skip the other
--     integrations' rows: a tenant has a few integrations, not many.
--   * records_tenant_patient keys on (tenant_id, patient_pseudonym) alone: a patient's records are few, and the
--     type and id it also held made it the widest index (43-character pseudonyms plus both).
-- PostgreSQL CPU to upsert 400,000 rows in batches of 1,000 into a fresh table: 33.8 -> 23.3 s per million.
-- Rebuilding the key locks records for as long as the index build takes (minutes for tens of millions of rows):
-- on a large store, run it in a maintenance window.
-- Indexes only: no new privilege for the application role.
ALTER TABLE records DROP CONSTRAINT records_pkey;
ALTER TABLE records ADD CONSTRAINT records_pkey PRIMARY KEY (tenant_id, resource_type, resource_id, integration_id);
DROP INDEX records_tenant_type_id;
DROP INDEX records_tenant_patient;
CREATE INDEX records_tenant_patient ON records (tenant_id, patient_pseudonym) WHERE patient_pseudonym IS NOT NULL;

-- Down Migration
DROP INDEX records_tenant_patient;
CREATE INDEX records_tenant_patient ON records (tenant_id, patient_pseudonym, resource_type, resource_id)
  WHERE patient_pseudonym IS NOT NULL;
CREATE INDEX records_tenant_type_id ON records (tenant_id, resource_type, resource_id, last_updated DESC, integration_id);
ALTER TABLE records DROP CONSTRAINT records_pkey;
ALTER TABLE records ADD CONSTRAINT records_pkey PRIMARY KEY (tenant_id, integration_id, resource_type, resource_id);
