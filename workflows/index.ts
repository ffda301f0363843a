// Every workflow the worker registers. One file per business process.
export { nightlySync } from './nightly-sync.js';
export { keyRotation } from './key-rotation.js';
export { breachContainment } from './breach-containment.js';
export { webhookDeltaSync } from './webhook-delta-sync.js';
export { bulkExport } from './bulk-export.js';
export { retention } from './retention.js';
export { breakGlassReview } from './break-glass-review.js';
export { batchExport } from './export.js';
export { writeBack } from './write-back.js';
export { conflictResolution } from './conflict-resolution.js';
export { reconcile } from './reconcile.js';
