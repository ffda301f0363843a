/**
 * The activity factory: workers call `createActivities(deps)`; workflows see only the types
 * (`import type { SyncActivities }`), through proxyActivities with the presets in workflows/presets.ts.
 */
import { atActivityBoundary } from './boundary.js';
import { createContainmentActivities } from './containment.js';
import type { ActivityDeps } from './deps.js';
import { createSyncPageActivities } from './sync-page.js';
import { createSyncPlanningActivities } from './sync-planning.js';
import { createVendorProbeActivities } from './vendor-probe.js';
import { createKeyRotationActivities } from './key-rotation.js';

export type { ActivityDeps, ContainmentDeps } from './deps.js';

export function createActivities(deps: ActivityDeps) {
  return atActivityBoundary({
    ...createSyncPlanningActivities(deps),
    ...createSyncPageActivities(deps),
    ...createVendorProbeActivities(deps),
    ...createKeyRotationActivities(deps),
    ...createContainmentActivities(deps),
  });
}

export type SyncPlanningActivities = ReturnType<typeof createSyncPlanningActivities>;
export type SyncPageActivities = ReturnType<typeof createSyncPageActivities>;
export type VendorProbeActivities = ReturnType<typeof createVendorProbeActivities>;
export type KeyRotationActivities = ReturnType<typeof createKeyRotationActivities>;
export type ContainmentActivities = ReturnType<typeof createContainmentActivities>;
export type Activities = ReturnType<typeof createActivities>;
