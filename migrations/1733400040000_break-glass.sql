-- Up Migration

-- Break-glass (issue 12 item 4, lib/gateway/break-glass.ts): a time-boxed grant to a gateway consumer of scopes
-- beyond its own, for a reason from a fixed list, and its review by a second person (workflows/
-- break-glass-review.ts). Identifiers, codes, times and the people's own words only; never patient data.
-- consumer_id names a gateway consumer (issue 12 item 2); checked against the consumers table when both exist.
CREATE TABLE break_glass_grants (
  id                 text PRIMARY KEY CHECK (id ~ '^bg-[a-z0-9-]{1,60}$'),
  consumer_id        text NOT NULL CHECK (length(consumer_id) BETWEEN 1 AND 128),
  -- SMART v2 scope strings in canonical form (lib/gateway/scopes.ts), e.g. 'system/Observation.rs'.
  scopes             text[] NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 32),
  reason_code        text NOT NULL CHECK (reason_code IN (
                       'emergency-care', 'patient-safety', 'care-continuity', 'system-outage', 'legal-obligation')),
  reason             text NOT NULL CHECK (reason ~ '^[\x20-\x7e]+$' AND length(reason) <= 500),
  requested_by       text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 128),
  granted_at         timestamptz NOT NULL,
  -- Time-boxed: at most a day whatever the configuration says (EHR_BREAK_GLASS_MAX_MINUTES caps it lower).
  expires_at         timestamptz NOT NULL CHECK (expires_at > granted_at AND expires_at <= granted_at + interval '24 hours'),
  review_workflow_id text NOT NULL,
  revoked_at         timestamptz,
  revoked_by         text,
  revoke_reason      text,
  reminded_at        timestamptz,
  escalated_at       timestamptz,
  reviewed_at        timestamptz,
  reviewed_by        text,
  review_verdict     text CHECK (review_verdict IN ('appropriate', 'inappropriate')),
  review_note        text CHECK (review_note ~ '^[\x20-\x7e]+$' AND length(review_note) <= 500),
  CONSTRAINT break_glass_revocation_complete CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
  CONSTRAINT break_glass_review_complete CHECK (
    (reviewed_at IS NULL) = (reviewed_by IS NULL) AND (reviewed_at IS NULL) = (review_verdict IS NULL)),
  -- Four eyes: whoever asked for the grant never reviews it.
  CONSTRAINT break_glass_four_eyes CHECK (reviewed_by IS NULL OR reviewed_by <> requested_by)
);
-- The gateway asks per request for a consumer's grants that are still running.
CREATE INDEX break_glass_grants_active ON break_glass_grants (consumer_id, expires_at) WHERE revoked_at IS NULL;
CREATE INDEX break_glass_grants_pending ON break_glass_grants (granted_at) WHERE reviewed_at IS NULL;

-- The application records grants and their review; it never deletes one, and never rewrites what was granted,
-- to whom, why or by whom.
REVOKE ALL ON break_glass_grants FROM ehr_app;
GRANT SELECT, INSERT ON break_glass_grants TO ehr_app;
GRANT UPDATE (revoked_at, revoked_by, revoke_reason, reminded_at, escalated_at,
              reviewed_at, reviewed_by, review_verdict, review_note) ON break_glass_grants TO ehr_app;

-- Down Migration
DROP TABLE break_glass_grants;
