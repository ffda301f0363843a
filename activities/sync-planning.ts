/** Store-side steps of a sync: what to fetch, checkpoint advancement, and the closing report. */
import { appendAuditEvents } from '../lib/audit/chain.js';
import {
  IntegrationRevokedError,
  PolicyViolationError,
  ReadPlanError,
  ScopeNotAdvertisedError,
} from '../lib/errors/index.js';
import type { ServerCapabilities } from '../lib/fhir/capabilities.js';
import { UNKNOWN_CAPABILITIES, parseCapabilityStatement } from '../lib/fhir/capabilities.js';
import type { ReadPlan } from '../lib/sync/read-strategy.js';
import { planRead } from '../lib/sync/read-strategy.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { advanceCheckpoint, readCheckpoints } from '../lib/store/checkpoints.js';
import { getIntegration } from '../lib/integrations/repository.js';
import { withTransaction } from '../lib/store/pool.js';
import { endpointQueueFor } from '../lib/vendors/endpoint-queues.js';
import type { SyncActivityDeps } from './deps.js';
import { activityAuditContext } from './audit-context.js';
import type { AdvanceCheckpointInput, PlanSyncInput, SyncPlan, SyncReportInput } from './types.js';

export function createSyncPlanningActivities(
  deps: Pick<SyncActivityDeps, 'pool' | 'defaultPageSize' | 'endpointQueues' | 'vendors' | 'directory'>,
) {
  /** The server's CapabilityStatement through the vendor door; unreadable or refused: nothing optional. */
  async function capabilitiesOf(integrationId: string, baseUrl: string, correlationId: string) {
    try {
      const res = await deps.vendors.get(integrationId, `${baseUrl.replace(/\/$/, '')}/metadata`, {
        correlationId,
        purpose: 'sync.capabilities',
      });
      return parseCapabilityStatement(res.body);
    } catch (err) {
      if (err instanceof IntegrationRevokedError) throw err;
      return UNKNOWN_CAPABILITIES;
    }
  }

  return {
    /**
     * The resource types the integration's policy allows (narrowed to `input.resourceTypes` when
     * given), each with its checkpoint (none on --full).
     */
    async planSync(input: PlanSyncInput): Promise<SyncPlan> {
      const integration = await getIntegration(deps.pool, input.integrationId);
      if (integration.tenantId !== input.tenantId) {
        throw new PolicyViolationError(
          'tenant-isolation',
          `integration ${input.integrationId} does not belong to tenant ${input.tenantId}`,
        );
      }
      if (integration.status !== 'active') throw new IntegrationRevokedError(integration.id, integration.status);
      const stored = await readCheckpoints(deps.pool, input.tenantId, input.integrationId);
      const checkpoints = input.full ? new Map<string, string>() : stored;
      const pageQueue = endpointQueueFor(deps.endpointQueues, integration);
      // Types the vendor's discovery does not advertise are skipped with their reason, not fetched.
      const unadvertised = new Set(await deps.directory.unadvertisedTypes(integration.id));
      const wanted = integration.resourceTypes.filter((t) => !input.resourceTypes || input.resourceTypes.includes(t));
      const skipped = wanted
        .filter((t) => unadvertised.has(t))
        .map((resourceType) => {
          const e = new ScopeNotAdvertisedError(integration.id, resourceType);
          return { resourceType, reason: e.code, detail: e.message };
        });
      const types = wanted
        .filter((t) => !unadvertised.has(t))
        .map((resourceType) => ({ resourceType, since: checkpoints.get(resourceType) ?? null }));
      const ctx = activityAuditContext();
      const capabilities: ServerCapabilities = await capabilitiesOf(
        integration.id,
        integration.baseUrl,
        ctx.correlationId,
      );
      const read = planRead({ integration, capabilities, types, checkpoints: stored });
      assertRunnable(integration.id, read);
      const maxPageSize = profileFor(integration.vendor).reads.value.maxPageSize;
      return {
        vendor: integration.vendor,
        pageSize: maxPageSize === null ? deps.defaultPageSize : Math.min(deps.defaultPageSize, maxPageSize),
        ...(pageQueue ? { pageTaskQueue: pageQueue.taskQueue } : {}),
        resourceTypes: types,
        read,
        ...(skipped.length > 0 ? { skipped } : {}),
      };
    },

    /** Called after every page of a type has committed: the next run starts after `highWater`. */
    async advanceSyncCheckpoint(input: AdvanceCheckpointInput): Promise<string> {
      const ctx = activityAuditContext();
      return withTransaction(deps.pool, async (client) => {
        const stored = await advanceCheckpoint(client, { ...input, runId: ctx.correlationId });
        await appendAuditEvents(client, [
          {
            ...ctx,
            action: 'sync.checkpoint_advanced',
            outcome: 'success',
            tenantId: input.tenantId,
            integrationId: input.integrationId,
            details: { resourceType: input.resourceType, highWater: stored },
          },
        ]);
        return stored;
      });
    },

    async recordSyncReport(input: SyncReportInput): Promise<void> {
      const ctx = activityAuditContext();
      await withTransaction(deps.pool, (client) =>
        appendAuditEvents(client, [
          {
            ...ctx,
            action: `sync.${input.outcome}`,
            outcome: 'success',
            tenantId: input.tenantId,
            integrationId: input.integrationId,
            // Skipped types are named with their reason, so the report says what this run did not sync.
            details: {
              ...input.totals,
              ...(input.skipped && input.skipped.length > 0 ? { skipped: input.skipped } : {}),
              ...(input.incomplete && input.incomplete.length > 0 ? { incomplete: input.incomplete } : {}),
            },
          },
        ]),
      );
    },
  };
}

function assertRunnable(integrationId: string, read: ReadPlan): void {
  if (read.bulk?.level === 'group' && !read.bulk.groupId) {
    throw new ReadPlanError(
      integrationId,
      "Group $export needs the vendor's Group id",
      `ehrctl integrations update ${integrationId} --group-id <id> (or --bulk-level / --strategy)`,
    );
  }
}
