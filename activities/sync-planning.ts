/** Store-side steps of a sync: what to fetch, checkpoint advancement, and the closing report. */
import { appendAuditEvents } from '../lib/audit/chain.js';
import {
  IntegrationRevokedError,
  PolicyViolationError,
  ReadPlanError,
  ScopeNotAdvertisedError,
  VendorHttpError,
} from '../lib/errors/index.js';
import type { ScopeNotGrantedError } from '../lib/errors/index.js';
import type { ServerCapabilities } from '../lib/fhir/capabilities.js';
import { UNKNOWN_CAPABILITIES, parseCapabilityStatement } from '../lib/fhir/capabilities.js';
import type { ReadPlan } from '../lib/sync/read-strategy.js';
import { planRead } from '../lib/sync/read-strategy.js';
import { typesNotGranted } from '../lib/vendors/granted-scopes.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { readCheckpoints } from '../lib/store/checkpoints.js';
import { getIntegration } from '../lib/integrations/repository.js';
import { withTransaction } from '../lib/store/pool.js';
import { endpointQueueFor } from '../lib/vendors/endpoint-queues.js';
import type { SyncActivityDeps } from './deps.js';
import { advanceTypeCheckpoint } from '../lib/sync/store-resources.js';
import { activityAuditContext } from './audit-context.js';
import type { AdvanceCheckpointInput, PlanSyncInput, SyncPlan, SyncReportInput } from './types.js';

const SCOPE_NOT_GRANTED: ScopeNotGrantedError['code'] = 'VENDOR_SCOPE_NOT_GRANTED';
/** Roster positions per patient-strategy activity where no rate limit paces the vendor's endpoint. */
const PATIENTS_PER_BATCH = 25;

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
      // No statement there (404, 401 on an unauthenticated metadata route…): nothing optional. Anything else
      // (our credentials refused, the vendor down, revoked) is the run's problem, not a missing statement.
      if (err instanceof VendorHttpError && err.status >= 400 && err.status < 500 && err.status !== 429)
        return UNKNOWN_CAPABILITIES;
      throw err;
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
      const notAdvertised: NonNullable<ReadPlan['skip']> = wanted
        .filter((t) => unadvertised.has(t))
        .map((resourceType) => {
          const e = new ScopeNotAdvertisedError(integration.id, resourceType);
          return { resourceType, reason: e.code, detail: e.message };
        });
      const types = wanted.map((resourceType) => ({ resourceType, since: checkpoints.get(resourceType) ?? null }));
      const ctx = activityAuditContext();
      const capabilities: ServerCapabilities = await capabilitiesOf(
        integration.id,
        integration.baseUrl,
        ctx.correlationId,
      );
      const read = planRead({ integration, capabilities, types, checkpoints: stored });
      assertRunnable(integration.id, read);
      const skip = [...notAdvertised, ...(read.skip ?? []).filter((x) => !unadvertised.has(x.resourceType))];
      // An open server (auth method none) issues no token, so there is no grant to narrow.
      if (read.strategy === 'bulk' && integration.authMethod !== 'none') {
        // One export asks for every type at once, and a vendor refuses the whole kick-off for one type it does not
        // grant: such a type is skipped here with its reason, as a 403 on a search skips it for the other strategies.
        // A fresh token: the vendor may have narrowed the grant since the cached one was issued.
        deps.vendors.tokens.invalidate(integration.id, await deps.vendors.tokens.accessToken(integration.id));
        const scope = await deps.vendors.tokens.grantedScope(integration.id);
        const readable = types.map((t) => t.resourceType).filter((t) => !unadvertised.has(t));
        for (const resourceType of typesNotGranted(scope, readable)) {
          skip.push({
            resourceType,
            reason: SCOPE_NOT_GRANTED,
            detail: `the vendor did not grant a read scope for ${resourceType}`,
          });
        }
      }
      if (skip.length > 0) read.skip = skip;
      if (read.strategy === 'patient') read.patientsPerBatch = pageQueue ? 1 : PATIENTS_PER_BATCH;
      const maxPageSize = profileFor(integration.vendor).reads.value.maxPageSize;
      return {
        vendor: integration.vendor,
        pageSize: maxPageSize === null ? deps.defaultPageSize : Math.min(deps.defaultPageSize, maxPageSize),
        ...(pageQueue ? { pageTaskQueue: pageQueue.taskQueue } : {}),
        resourceTypes: types,
        read,
      };
    },

    /** Called after every page of a type has committed: the next run starts after `highWater`. */
    async advanceSyncCheckpoint(input: AdvanceCheckpointInput): Promise<string> {
      return advanceTypeCheckpoint(deps, activityAuditContext(), input);
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
