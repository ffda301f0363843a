/**
 * The reconcile workflow's activities: plan a run, compare one search page of the vendor's copies with the stored
 * records, look up by id what is stored but was not listed, and finish the run. Each page is fetched through the
 * vendor door and compared and decided in one activity; only counts and cursors leave (no values, no digests).
 */
import { Context } from '@temporalio/activity';
import type { ResourceType } from '../lib/domain.js';
import { isResourceType } from '../lib/domain.js';
import { PolicyViolationError, VendorHttpError } from '../lib/errors/index.js';
import { purposePolicy } from '../lib/fhir/classification.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import type { Integration } from '../lib/integrations/repository.js';
import type { RemoteCopy } from '../lib/reconcile/compare.js';
import { reconcileBatch } from '../lib/reconcile/compare.js';
import { clearSeen, committedBatch, markSeen, unseenLocalIds } from '../lib/reconcile/repository.js';
import { finishRun, insertRun } from '../lib/reconcile/runs-repository.js';
import type { BatchTally } from '../lib/reconcile/tally.js';
import { NOT_PATIENT_SCOPED, readStrategyOf } from '../lib/sync/read-strategy.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { writePolicyFor } from '../lib/writeback/authority.js';
import { activityAuditContext } from './audit-context.js';
import type { ReconcileActivityDeps } from './deps.js';
import { createReconcileBulkActivities } from './reconcile-bulk.js';
import { createReconcilePatientActivities } from './reconcile-patients.js';

export interface ReconcilePlanInput {
  runId: string;
  tenantId: string;
  integrationId: string;
  /** Default: every type the integration reads. */
  types?: string[];
}

export interface ReconcilePlan {
  types: ResourceType[];
  /**
   * How the vendor's side is read in this run: the integration's own strategy — a system search per type, one
   * Bulk Data export, or patient by patient over the sync's roster (activities/reconcile-patients.ts).
   */
  readStrategy: 'search' | 'bulk' | 'patient';
  integrationStrategy: string;
  /** bulk: the export's level and settings (the integration's, as its syncs use them). */
  bulk?: { level: 'system' | 'group' | 'patient'; groupId?: string; typeFilter?: string[] };
  /** patient: where the roster comes from (the sync's plan says the same: a Group, or a Patient search). */
  roster?: { groupId?: string; search?: string };
  /** patient: roster positions per activity. */
  patientsPerBatch?: number;
  /** patient: types in no patient's compartment — no listing, their stored records are read by id. */
  unlistedOnly?: ResourceType[];
  pageSize: number;
}

export interface ReconcilePageInput {
  runId: string;
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  cursor: string | null;
  pageSize: number;
}

export interface ReconcileUnlistedInput {
  runId: string;
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  afterId: string | null;
  batchSize: number;
}

export interface ReconcileFinishInput {
  runId: string;
  status: 'completed' | 'failed';
  counts: Record<string, Record<string, number>>;
  decisions: Record<string, number>;
}

/** Reads by id side by side, per batch of unlisted records. */
const READS_IN_FLIGHT = 4;
/** patient: roster positions per activity (as the sync's patient batches). */
const PATIENTS_PER_BATCH = 25;

export function createReconcileActivities(deps: ReconcileActivityDeps) {
  const integrationOf = async (input: { tenantId: string; integrationId: string }): Promise<Integration> => {
    const integration = await deps.directory.integration(input.integrationId);
    if (integration.tenantId !== input.tenantId)
      throw new PolicyViolationError(
        'tenant-isolation',
        `integration ${input.integrationId} does not belong to tenant ${input.tenantId}`,
      );
    return integration;
  };
  const batchScope = (integration: Integration, resourceType: ResourceType) => {
    if (!integration.resourceTypes.includes(resourceType))
      throw new PolicyViolationError(
        'minimum-necessary',
        `${resourceType} is outside integration ${integration.id}'s policy`,
      );
    return {
      tenantId: integration.tenantId,
      integrationId: integration.id,
      resourceType,
      purpose: integration.purpose,
    };
  };
  const typeUrl = (integration: Integration, resourceType: string) =>
    `${integration.baseUrl.replace(/\/$/, '')}/${resourceType}`;

  return {
    ...createReconcileBulkActivities(deps),
    ...createReconcilePatientActivities(deps),

    async reconcilePlan(input: ReconcilePlanInput): Promise<ReconcilePlan> {
      const integration = await integrationOf(input);
      const allowed = purposePolicy(integration.purpose).resourceTypes;
      const readable = integration.resourceTypes.filter((t) => allowed.includes(t));
      const asked = input.types ?? readable;
      const refused = asked.filter((t) => !isResourceType(t) || !readable.includes(t));
      if (refused.length > 0)
        throw new PolicyViolationError(
          'minimum-necessary',
          `${refused.slice(0, 5).join(', ')} outside integration ${integration.id}'s types or purpose`,
        );
      const types = asked.filter(isResourceType);
      const read = readStrategyOf(integration);
      const readStrategy = read.strategy;
      await insertRun(deps.pool, { id: input.runId, ...input, resourceTypes: types, readStrategy });
      const levels = profileFor(integration.vendor).bulk.value.levels;
      const bulk =
        readStrategy === 'bulk'
          ? {
              level: read.options.bulkLevel ?? levels[0] ?? 'system',
              ...(read.options.groupId ? { groupId: read.options.groupId } : {}),
              ...(read.options.typeFilter?.length ? { typeFilter: read.options.typeFilter } : {}),
            }
          : undefined;
      const patient =
        readStrategy === 'patient'
          ? {
              roster: read.options.groupId
                ? { groupId: read.options.groupId }
                : { search: read.options.rosterSearch ?? '_count=500' },
              patientsPerBatch: PATIENTS_PER_BATCH,
              unlistedOnly: types.filter((t) => NOT_PATIENT_SCOPED.has(t)),
            }
          : {};
      return {
        types,
        readStrategy,
        integrationStrategy: read.strategy,
        ...(bulk ? { bulk } : {}),
        ...patient,
        pageSize: deps.pageSize,
      };
    },

    /** One search page of the type (every resource, no `_lastUpdated`), compared with the stored ones. */
    async reconcilePage(input: ReconcilePageInput): Promise<BatchTally & { nextCursor: string | null }> {
      const ctx = activityAuditContext();
      const integration = await integrationOf(input);
      const scope = batchScope(integration, input.resourceType);
      const first = new URL(typeUrl(integration, input.resourceType));
      first.searchParams.set('_count', String(input.pageSize));
      Context.current().heartbeat({ phase: 'fetch' });
      const call = { correlationId: ctx.correlationId, purpose: 'reconcile.page' };
      const response = await deps.vendors.get(input.integrationId, input.cursor ?? first.toString(), call, undefined, {
        'cache-control': 'no-cache',
      });
      const page = parseSearchBundle(input.resourceType, response.body);
      Context.current().heartbeat({ phase: 'compare', resources: page.resources.length });
      await markSeen(
        deps.pool,
        input.runId,
        input.resourceType,
        page.resources.map((r) => r.id),
      );
      const policy = await writePolicyFor(deps.pool, scope, input.resourceType);
      const batchKey = `${input.resourceType}:page:${input.cursor ?? ''}`;
      const tally = await reconcileBatch(deps, ctx, {
        scope,
        runId: input.runId,
        policy,
        remote: page.resources,
        batchKey,
      });
      return { ...tally, nextCursor: page.nextUrl ?? null };
    },

    /**
     * Stored records the vendor did not list in this run, read by id: 404/410 says gone (deleted-remote, or
     * missing-remote for a record created here), a copy is compared like a listed one.
     */
    async reconcileUnlisted(input: ReconcileUnlistedInput): Promise<BatchTally & { nextAfterId: string | null }> {
      const ctx = activityAuditContext();
      const integration = await integrationOf(input);
      const scope = batchScope(integration, input.resourceType);
      // A batch that committed before (its reply lost) goes on from where it went on then.
      const batchKey = `${input.resourceType}:unlisted:${input.afterId ?? ''}`;
      const committed = await committedBatch(deps.pool, input.runId, batchKey);
      if (committed) return { ...committed.tally, nextAfterId: committed.next ?? null };
      const unseen = await unseenLocalIds(deps.pool, { ...scope, runId: input.runId }, input.afterId, input.batchSize);
      const ids = unseen.ids;
      const call = { correlationId: ctx.correlationId, purpose: 'reconcile.read' };
      const found: RemoteCopy[] = [];
      const gone: string[] = [];
      for (let i = 0; i < ids.length; i += READS_IN_FLIGHT) {
        Context.current().heartbeat({ phase: 'read', done: i });
        await Promise.all(
          ids.slice(i, i + READS_IN_FLIGHT).map(async (id) => {
            const url = `${typeUrl(integration, input.resourceType)}/${encodeURIComponent(id)}`;
            try {
              const res = await deps.vendors.get(input.integrationId, url, call);
              found.push(...asSearchPage(input.resourceType, res.body).resources);
            } catch (err) {
              if (err instanceof VendorHttpError && (err.status === 404 || err.status === 410)) gone.push(id);
              else throw err;
            }
          }),
        );
      }
      const policy = await writePolicyFor(deps.pool, scope, input.resourceType);
      const tally = await reconcileBatch(deps, ctx, {
        scope,
        runId: input.runId,
        policy,
        remote: found,
        gone,
        batchKey,
        next: unseen.lastScanned,
        unlisted: true,
      });
      return { ...tally, nextAfterId: unseen.lastScanned };
    },

    async reconcileFinish(input: ReconcileFinishInput): Promise<void> {
      await finishRun(deps.pool, input.runId, input);
      await clearSeen(deps.pool, input.runId);
    },
  };
}

/** A read by id, validated as search pages are (one entry of the right type, an id, meta.lastUpdated). */
function asSearchPage(type: ResourceType, body: Buffer) {
  const wrapped = Buffer.concat([
    Buffer.from('{"resourceType":"Bundle","type":"searchset","entry":[{"resource":', 'utf8'),
    body,
    Buffer.from('}]}', 'utf8'),
  ]);
  return parseSearchBundle(type, wrapped);
}
