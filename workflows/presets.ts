/**
 * Named timeout and retry presets, one per dependency. They live in workflows/ because workflow code
 * may import nothing but @temporalio/workflow and types; activities are retried by these policies,
 * and errors marked non-retryable at the activity boundary (lib/errors) stop retries at once.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/** PostgreSQL-only steps: quick, and a database blip is worth a few retries. */
export const storePreset: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
};

/**
 * A vendor page: fetch + encrypt + store. The heartbeat timeout notices a dead worker within a
 * 20 s so the page is retried elsewhere; Retry-After from a vendor overrides the backoff.
 */
export const vendorPagePreset: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 8 },
};

/**
 * Key rotation steps: database + KEK backend (KMS) work. Batch steps (rewrap, re-encrypt) heartbeat
 * once per call, so a dead worker is noticed within 30 s and the batch runs again elsewhere; a batch
 * is one transaction, so a repeated batch continues where the last commit left off.
 */
export const keyRotationPreset: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
};

/**
 * A containment step (revoke and wait for every worker's acknowledgement, pause schedules, cancel
 * syncs): each is idempotent, so retry quickly and for as long as it takes; containment must not
 * give up on a database or Temporal blip.
 */
export const containmentPreset: ActivityOptions = {
  // Revoke waits at most 5 s for workers' acknowledgements; a dead worker's step is retried after 30 s.
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds' },
};

/** Evidence: an audit export and history fetches can take a while; heartbeats notice a dead worker. */
export const evidencePreset: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/**
 * The containment steps themselves, as local activities: they run in the worker that runs the
 * incident's workflow task instead of waiting in the activity queue behind the sync load being
 * contained. Same idempotent steps, same retry-until-done.
 */
export const containmentLocalPreset: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds' },
};

/**
 * A Bulk Data kick-off or status poll: one short vendor call. The waiting between polls is the workflow's
 * timer; 429 and 5xx on a kick-off are retried here with the vendor's Retry-After.
 */
export const bulkStatusPreset: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 8 },
};

/**
 * One Bulk Data file, streamed and stored in batches: long-running, so heartbeats (after each committed batch,
 * and every few seconds) tell a dead worker from a big file; the retry resumes after the last heartbeat's line.
 */
export const bulkFilePreset: ActivityOptions = {
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
};

/** DELETE on a status URL when an export ends (done, failed, cancelled): courtesy, so a few quick tries only. */
export const bulkCleanupPreset: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 3 },
};

/**
 * A retention batch (workflows/retention.ts): one transaction of at most a few hundred deletions and their
 * audit event. A dead worker is noticed within 30 s; a retried batch finds its ledger row if it committed.
 */
export const retentionPreset: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
};

/**
 * One type of a batch export (workflows/export.ts): stored records decrypted, minimised and written encrypted.
 * Heartbeats after every page, so a dead worker is noticed within 30 s and the file is written again elsewhere.
 */
export const exportFilePreset: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
};

/**
 * One write-back send (workflows/write-back.ts): a read and a write at the vendor, then one transaction. 429,
 * 5xx and network failures are retried for as long as it takes (the change stays pending, and later changes of
 * the integration wait behind it, so a record's changes keep their order), with the vendor's Retry-After
 * overriding the backoff; refusals are answers, not failures. A retried send is harmless (lib/writeback/sender.ts).
 */
export const writeBackSendPreset: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  // The send heartbeats every 2 s: a killed worker's send is retried elsewhere after 10 s.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
};

/**
 * Applying a conflict's resolution (workflows/conflict-resolution.ts): one vendor read and one transaction, while
 * a person waits on the update. A 5xx or 429 is retried with its Retry-After for a few minutes at most; a refusal
 * (the record gone and the resolution mixed, an unknown conflict) fails the update at once.
 */
export const conflictResolvePreset: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 6 },
};

/** An alert hook (chat, paging) that is down is retried for several minutes; the log event went out first. */
export const alertHookPreset: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
};

/**
 * A reconcile batch (workflows/reconcile.ts): one search page, or one batch of reads by id, compared and decided in
 * one transaction. Heartbeats notice a dead worker within 30 s; a retried page decides again from what committed.
 */
export const reconcilePreset: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 8 },
};
