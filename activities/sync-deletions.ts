/**
 * Deletions of one type from the server's history since the previous checkpoint (search strategy, where the
 * CapabilityStatement offers `history-type`): each page's deletions become tombstones and their ciphertext is
 * removed, audited, in one transaction. Only counts and the next cursor leave.
 */
import { Context } from '@temporalio/activity';
import { ScopeNotGrantedError, VendorHttpError } from '../lib/errors/index.js';
import { parseHistoryDeletions } from '../lib/fhir/history-bundle.js';
import { applyDeletions } from '../lib/sync/store-resources.js';
import type { SyncActivityDeps } from './deps.js';
import { activityAuditContext } from './audit-context.js';
import type { SyncDeletionsInput, SyncDeletionsResult } from './types.js';

export function createSyncDeletionActivities(deps: Pick<SyncActivityDeps, 'pool' | 'vendors' | 'directory'>) {
  return {
    async syncDeletions(input: SyncDeletionsInput): Promise<SyncDeletionsResult> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      const url = input.cursor ?? historyUrl(integration.baseUrl, input);
      Context.current().heartbeat({ phase: 'history' });
      const response = await deps.vendors
        .get(input.integrationId, url, { correlationId: ctx.correlationId, purpose: 'sync.history' }, undefined, {
          'cache-control': 'no-cache',
        })
        .catch((err: unknown) => {
          if (err instanceof VendorHttpError && err.status === 403)
            throw new ScopeNotGrantedError(input.integrationId, input.resourceType);
          throw err;
        });
      const page = parseHistoryDeletions(input.resourceType, response.body);
      const learnedAt = new Date().toISOString();
      const counts = await applyDeletions(
        deps,
        ctx,
        { tenantId: input.tenantId, integrationId: input.integrationId, resourceType: input.resourceType },
        page.deletions.map((d) =>
          d.deletedAt
            ? { resourceId: d.resourceId, deletedAt: d.deletedAt }
            : { resourceId: d.resourceId, deletedAt: learnedAt, learned: true },
        ),
        'history',
      );
      return { deletions: page.deletions.length, removed: counts.removed, nextCursor: page.nextUrl ?? null };
    },
  };
}

function historyUrl(baseUrl: string, input: SyncDeletionsInput): string {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}/${input.resourceType}/_history`);
  url.searchParams.set('_since', input.since);
  url.searchParams.set('_count', String(input.pageSize));
  return url.toString();
}
