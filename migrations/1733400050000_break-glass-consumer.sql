-- Up Migration

-- A break-glass grant names a registered gateway consumer: the two tables arrived on separate branches of the same
-- release, so the reference is added here. Consumers are never deleted (revoked instead), so no grant is orphaned.
ALTER TABLE break_glass_grants
  ADD CONSTRAINT break_glass_grants_consumer_fk FOREIGN KEY (consumer_id) REFERENCES gateway_consumers (id);

-- Down Migration
ALTER TABLE break_glass_grants DROP CONSTRAINT break_glass_grants_consumer_fk;
