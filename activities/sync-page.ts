/**
 * One sync page, end to end inside one activity: fetch through the vendor wrapper, validate,
 * minimise, encrypt, and upsert with its audit events in one transaction. Only counts and the next
 * cursor leave: clinical content never reaches Temporal.
 */
import { Context } from '@temporalio/activity';
import { PolicyViolationError, ScopeNotGrantedError, VendorHttpError } from '../lib/errors/index.js';
import { purposePolicy } from '../lib/fhir/classification.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import { storeResources } from '../lib/sync/store-resources.js';
import type { SyncActivityDeps } from './deps.js';
import { activityAuditContext } from './audit-context.js';
import type { SyncPageInput, SyncPageResult } from './types.js';

export function createSyncPageActivities(deps: Pick<SyncActivityDeps, 'pool' | 'keyring' | 'vendors' | 'directory'>) {
  return {
    async syncPage(input: SyncPageInput): Promise<SyncPageResult> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      if (integration.tenantId !== input.tenantId) {
        throw new PolicyViolationError(
          'tenant-isolation',
          `integration ${input.integrationId} does not belong to tenant ${input.tenantId}`,
        );
      }
      if (!integration.resourceTypes.includes(input.resourceType)) {
        throw new PolicyViolationError(
          'minimum-necessary',
          `${input.resourceType} is outside integration ${integration.id}'s policy`,
        );
      }
      if (!purposePolicy(integration.purpose).resourceTypes.includes(input.resourceType)) {
        throw new PolicyViolationError(
          'minimum-necessary',
          `${input.resourceType} is outside integration ${integration.id}'s purpose ${integration.purpose}`,
        );
      }
      const url = input.cursor ?? firstPageUrl(integration.baseUrl, input);
      Context.current().heartbeat({ phase: 'fetch' });
      const call = { correlationId: ctx.correlationId, purpose: 'sync.page' };
      const search = (target: string) =>
        deps.vendors.get(input.integrationId, target, call, undefined, freshResults(input)).catch((err: unknown) => {
          // A 403 on a type we asked for means the vendor no longer grants it: name the type, do not retry.
          if (err instanceof VendorHttpError && err.status === 403)
            throw new ScopeNotGrantedError(input.integrationId, input.resourceType);
          throw err;
        });
      // Before the first page: how many matches the server counts. A server that caps its result set still says
      // so here, while its pages (and their Bundle.total) stop at the cap.
      const expected =
        input.cursor === null && input.countCheck
          ? await countOf(search(countUrl(integration.baseUrl, input)))
          : undefined;
      const response = await search(url);
      const page = parseSearchBundle(input.resourceType, response.body);
      Context.current().heartbeat({ phase: 'encrypt', resources: page.resources.length });

      const stored = await storeResources(
        deps,
        ctx,
        {
          tenantId: input.tenantId,
          integrationId: input.integrationId,
          resourceType: input.resourceType,
          purpose: integration.purpose,
        },
        page.resources,
      );
      const { maxLastUpdated, dropped, ...counts } = stored;
      return {
        fetched: page.resources.length,
        ...counts,
        dropped,
        nextCursor: page.nextUrl ?? null,
        maxLastUpdated,
        ...(expected !== undefined ? { expected } : {}),
      };
    },
  };
}

function firstPageUrl(baseUrl: string, input: SyncPageInput): string {
  const url = searchUrl(baseUrl, input);
  url.searchParams.set('_count', String(input.pageSize));
  // Plans without a read plan (recorded before strategies) keep their exact URL: sorted, strictly after.
  if (input.sort ?? input.overlapSeconds === undefined) url.searchParams.set('_sort', '_lastUpdated');
  return url.toString();
}

function countUrl(baseUrl: string, input: SyncPageInput): string {
  const url = searchUrl(baseUrl, input);
  url.searchParams.set('_summary', 'count');
  return url.toString();
}

/**
 * The type's search since its checkpoint. With a read plan it reaches back by the overlap window and includes the
 * checkpoint's own instant (`ge`): a transaction stamped before the checkpoint but committed after it, and resources
 * sharing the checkpoint's exact timestamp, are read again; the upsert's version check stores each version once.
 */
function searchUrl(baseUrl: string, input: SyncPageInput): URL {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}/${input.resourceType}`);
  if (input.since === null) return url;
  if (input.overlapSeconds === undefined) {
    url.searchParams.set('_lastUpdated', `gt${input.since}`);
  } else {
    const from = new Date(Date.parse(input.since) - input.overlapSeconds * 1000).toISOString();
    url.searchParams.set('_lastUpdated', `ge${from}`);
  }
  return url;
}

/** Searches of a read plan ask for fresh results: some servers reuse a cached result set for a minute. */
function freshResults(input: SyncPageInput): Record<string, string> {
  return input.overlapSeconds === undefined ? {} : { 'cache-control': 'no-cache' };
}

/**
 * `Bundle.total` of a `_summary=count` answer; null when the server gives none, ignores `_summary` or refuses it
 * with a 4xx (then there is nothing to check against, and the search itself still decides the run).
 */
export async function countOf(answer: Promise<{ body: Buffer }>): Promise<number | null> {
  let body: Buffer;
  try {
    body = (await answer).body;
  } catch (err) {
    if (err instanceof VendorHttpError && err.status >= 400 && err.status < 500 && err.status !== 429) return null;
    throw err;
  }
  try {
    const bundle = JSON.parse(body.toString('utf8')) as { resourceType?: unknown; total?: unknown };
    return bundle.resourceType === 'Bundle' && typeof bundle.total === 'number' ? bundle.total : null;
  } catch {
    return null;
  }
}
