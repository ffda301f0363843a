/**
 * The activities a worker registers: each workflow's own set, built from its own dependencies
 * (activities/deps.ts). Activity names are global on a task queue, so two sets naming the same
 * activity is refused here rather than one silently replacing the other.
 */
import type {
  BreakGlassActivityDeps,
  BulkExportActivityDeps,
  ConflictActivityDeps,
  ContainmentActivityDeps,
  ExportActivityDeps,
  KeyRotationActivityDeps,
  ReconcileActivityDeps,
  SyncActivityDeps,
  WriteBackActivityDeps,
} from '../activities/index.js';
import type { RetentionActivityDeps } from '../activities/retention.js';
import { createRetentionActivities } from '../activities/retention.js';
import {
  createBreakGlassActivities,
  createBulkExportActivities,
  createConflictActivities,
  createContainmentActivities,
  createExportActivities,
  createKeyRotationActivities,
  createReconcileActivities,
  createSyncActivities,
  createWriteBackActivities,
} from '../activities/index.js';

/**
 * How often a running activity's heartbeat reaches the server at most. The SDK's default (0.8 × the heartbeat
 * timeout, e.g. 24 s) would let a killed worker's retry resume from a heartbeat tens of seconds old: a Bulk
 * Data download would store that much again. Every worker (main, incident, endpoint queues) uses this.
 */
export const HEARTBEAT_THROTTLE = '2 seconds';

export interface WorkerActivityDeps {
  sync: SyncActivityDeps;
  bulk: BulkExportActivityDeps;
  keyRotation: KeyRotationActivityDeps;
  containment: ContainmentActivityDeps;
  retention: RetentionActivityDeps;
  breakGlass: BreakGlassActivityDeps;
  export: ExportActivityDeps;
  writeBack: WriteBackActivityDeps;
  conflicts: ConflictActivityDeps;
  reconcile: ReconcileActivityDeps;
}

export function createWorkerActivities(deps: WorkerActivityDeps) {
  const sync = createSyncActivities(deps.sync);
  const bulk = createBulkExportActivities(deps.bulk);
  const keyRotation = createKeyRotationActivities(deps.keyRotation);
  const containment = createContainmentActivities(deps.containment);
  const retention = createRetentionActivities(deps.retention);
  const breakGlass = createBreakGlassActivities(deps.breakGlass);
  const exports = createExportActivities(deps.export);
  const writeBack = createWriteBackActivities(deps.writeBack);
  const conflicts = createConflictActivities(deps.conflicts);
  const reconcile = createReconcileActivities(deps.reconcile);
  const sets = [sync, bulk, keyRotation, containment, retention, breakGlass, exports, writeBack, conflicts, reconcile];
  const names = sets.flatMap((set) => Object.keys(set));
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new Error(`activity ${twice} is defined by two workflows' activity sets`);
  return {
    ...sync,
    ...bulk,
    ...keyRotation,
    ...containment,
    ...retention,
    ...breakGlass,
    ...exports,
    ...writeBack,
    ...conflicts,
    ...reconcile,
  };
}
