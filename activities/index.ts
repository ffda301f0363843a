/**
 * Each workflow's activity set, built from its own dependencies (activities/deps.ts): workers/
 * registers the union; workflows see only the types (`import type { SyncPageActivities }`), through
 * proxyActivities with the presets in workflows/presets.ts. Every set leaves through the activity
 * boundary (activities/boundary.ts): errors become ApplicationFailures with stable codes.
 */
import { atActivityBoundary } from './boundary.js';
import { createBreakGlassActivities as createBreakGlassSteps } from './break-glass.js';
import { createBulkExportActivities as createBulkExportSteps } from './bulk-export.js';
import { createConflictActivities as createConflictSteps } from './conflicts.js';
import { createContainmentActivities } from './containment.js';
import type {
  BreakGlassActivityDeps,
  BulkExportActivityDeps,
  ConflictActivityDeps,
  ExportActivityDeps,
  ReconcileActivityDeps,
  SyncActivityDeps,
  WriteBackActivityDeps,
} from './deps.js';
import { createExportActivities as createExportSteps } from './export.js';
import { createKeyRotationActivities } from './key-rotation.js';
import { createReconcileActivities as createReconcileSteps } from './reconcile.js';
import { createSyncDeletionActivities } from './sync-deletions.js';
import { createSyncPageActivities } from './sync-page.js';
import { createSyncPatientActivities } from './sync-patients.js';
import { createSyncPlanningActivities } from './sync-planning.js';
import { createSyncWindowActivities } from './sync-windows.js';
import { createWriteBackActivities as createWriteBackSteps } from './write-back.js';

export type {
  BreakGlassActivityDeps,
  BulkExportActivityDeps,
  ConflictActivityDeps,
  ContainmentActivityDeps,
  ExportActivityDeps,
  KeyRotationActivityDeps,
  ReconcileActivityDeps,
  SyncActivityDeps,
  WriteBackActivityDeps,
} from './deps.js';
export { createContainmentActivities, createKeyRotationActivities };

export function createSyncActivities(deps: SyncActivityDeps) {
  return atActivityBoundary({
    ...createSyncPlanningActivities(deps),
    ...createSyncPageActivities(deps),
    ...createSyncDeletionActivities(deps),
    ...createSyncPatientActivities(deps),
    ...createSyncWindowActivities(deps),
  });
}

export function createBulkExportActivities(deps: BulkExportActivityDeps) {
  return atActivityBoundary(createBulkExportSteps(deps));
}

export function createBreakGlassActivities(deps: BreakGlassActivityDeps) {
  return atActivityBoundary(createBreakGlassSteps(deps));
}

export function createExportActivities(deps: ExportActivityDeps) {
  return atActivityBoundary(createExportSteps(deps));
}

export function createWriteBackActivities(deps: WriteBackActivityDeps) {
  return atActivityBoundary(createWriteBackSteps(deps));
}

export function createConflictActivities(deps: ConflictActivityDeps) {
  return atActivityBoundary(createConflictSteps(deps));
}

export type ConflictActivities = ReturnType<typeof createConflictSteps>;

export function createReconcileActivities(deps: ReconcileActivityDeps) {
  return atActivityBoundary(createReconcileSteps(deps));
}

export type ExportActivities = ReturnType<typeof createExportSteps>;
export type WriteBackActivities = ReturnType<typeof createWriteBackSteps>;
export type ReconcileActivities = ReturnType<typeof createReconcileSteps>;
export type BulkExportActivities = ReturnType<typeof createBulkExportSteps>;
export type BreakGlassActivities = ReturnType<typeof createBreakGlassSteps>;
export type SyncPlanningActivities = ReturnType<typeof createSyncPlanningActivities>;
export type SyncPageActivities = ReturnType<typeof createSyncPageActivities> &
  ReturnType<typeof createSyncDeletionActivities> &
  ReturnType<typeof createSyncPatientActivities> &
  ReturnType<typeof createSyncWindowActivities>;
export type SyncActivities = ReturnType<typeof createSyncActivities>;
export type KeyRotationActivities = ReturnType<typeof createKeyRotationActivities>;
export type ContainmentActivities = ReturnType<typeof createContainmentActivities>;
