-- Up Migration

-- A reconcile run over the patient strategy lists each type per rostered patient; a record in two patients'
-- compartments (an Appointment with two patient participants) is listed twice. The first listing claims it: its
-- claim names the patient's place in the run's roster (`<type>:patient:<position>`), so a retried listing of the
-- same patient claims the same records again, and another patient's listing of it compares and counts nothing.
-- NULL for ids listed by a search page, a Bulk Data file or a read by id (no claims there).
-- Column only: no new privilege for the application role (it already inserts and reads reconcile_seen).
ALTER TABLE reconcile_seen ADD COLUMN claimed_by text;

-- Down Migration
ALTER TABLE reconcile_seen DROP COLUMN claimed_by;
