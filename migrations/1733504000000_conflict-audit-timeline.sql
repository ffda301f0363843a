-- Up Migration

-- `ehrctl reconcile conflict <id>` shows a conflict's timeline from the audit events that name it (opened,
-- reminded, escalated, decoded, refused, resolved; lib/writeback/conflict-repository.ts conflictTimeline). Without
-- this index that read walked the whole trail. Partial: only events that carry a conflictId.
-- Index only: no new privilege for the application role (it already reads audit_events).
CREATE INDEX audit_events_conflict ON audit_events ((details->>'conflictId'), seq) WHERE details ? 'conflictId';

-- Down Migration
DROP INDEX audit_events_conflict;
