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
      const response = await deps.vendors
        .get(input.integrationId, url, { correlationId: ctx.correlationId, purpose: 'sync.page' })
        .catch((err: unknown) => {
          // A 403 on a type we asked for means the vendor no longer grants it: name the type, do not retry.
          if (err instanceof VendorHttpError && err.status === 403)
            throw new ScopeNotGrantedError(input.integrationId, input.resourceType);
          throw err;
        });
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
      return { fetched: page.resources.length, ...counts, dropped, nextCursor: page.nextUrl ?? null, maxLastUpdated };
    },
  };
}

function firstPageUrl(baseUrl: string, input: SyncPageInput): string {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}/${input.resourceType}`);
  url.searchParams.set('_count', String(input.pageSize));
  url.searchParams.set('_sort', '_lastUpdated');
  if (input.since) url.searchParams.set('_lastUpdated', `gt${input.since}`);
  return url.toString();
}
