/**
 * Named timeout and retry presets, one per dependency. They live in workflows/ because workflow code
 * may import nothing but @temporalio/workflow and types; activities are retried by these policies,
 * and errors marked non-retryable at the activity boundary (lib/errors) stop retries at once.
 */
import type { ActivityOptions } from '@temporalio/workflow';

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
