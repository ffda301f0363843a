/**
 * Bulk Data `$export` steps, each one vendor call through the vendor door (or one store transaction): the
 * kick-off, one status poll (the waiting between polls is the workflow's durable timer, never a sleep
 * here), the DELETE that ends an export, and a type's checkpoint. The file steps are in bulk-files.ts.
 */
import { BulkExportError, EhrError, VendorHttpError } from '../lib/errors/index.js';
import { kickoffUrl, parseManifest, progressText } from '../lib/sync/bulk-manifest.js';
import { isVendorOrigin } from '../lib/vendors/bulk-hosts.js';
import { parseRetryAfterMs } from '../lib/vendors/http-policy.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { advanceTypeCheckpoint } from '../lib/sync/store-resources.js';
import { activityAuditContext } from './audit-context.js';
import type {
  BulkCheckpointInput,
  BulkKickoffInput,
  BulkKickoffResult,
  BulkPollResult,
  BulkStatusInput,
} from './bulk-types.js';
import { createBulkFileActivities } from './bulk-files.js';
import type { BulkExportActivityDeps } from './deps.js';
import { assertTypeAllowed, integrationOfTenant } from './integration-policy.js';

export function createBulkExportActivities(deps: BulkExportActivityDeps) {
  const call = (purpose: string) => ({ correlationId: activityAuditContext().correlationId, purpose });

  return {
    ...createBulkFileActivities(deps),

    /**
     * `Prefer: respond-async` kick-off; the answer's Content-Location is the status URL, which must be the
     * vendor's own. `_since` only where the vendor's profile says it honours it; otherwise a full export.
     */
    async bulkKickoff(input: BulkKickoffInput): Promise<BulkKickoffResult> {
      const integration = await integrationOfTenant(deps.directory, input);
      for (const type of input.types) assertTypeAllowed(integration, type);
      const since = input.since !== null && profileFor(integration.vendor).bulk.value.incremental ? input.since : null;
      const url = kickoffUrl(integration.baseUrl, { ...input, since });
      const res = await deps.vendors
        .request(input.integrationId, url.toString(), call('bulk.kickoff'), {
          method: 'GET',
          headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
          outcomeOnError: true,
        })
        .catch((err: unknown) => {
          // 429 and 5xx stay retryable (Retry-After honoured by the retry policy); any other refusal is final.
          if (err instanceof VendorHttpError && !err.retryable)
            throw new BulkExportError(
              'BULK_KICKOFF_REFUSED',
              'kick-off',
              `the vendor answered ${err.status}`,
              err.outcomeCode,
            );
          throw err;
        });
      if (res.status !== 202)
        throw new BulkExportError('BULK_KICKOFF_REFUSED', 'kick-off', `expected 202 Accepted, got ${res.status}`);
      const location = res.headers.get('content-location');
      if (!location)
        throw new BulkExportError('BULK_KICKOFF_REFUSED', 'kick-off', 'the answer has no Content-Location');
      const statusUrl = new URL(location, url);
      if (!isVendorOrigin(statusUrl, integration.baseUrl)) {
        throw new BulkExportError(
          'BULK_HOST_REFUSED',
          'kick-off',
          `the status URL is on ${statusUrl.host}, not the vendor's origin`,
        );
      }
      return { statusUrl: statusUrl.toString(), sinceSent: since };
    },

    /**
     * One status request. Still preparing, throttled or briefly unwell is an answer for the workflow to
     * wait on (with the vendor's Retry-After); a 4xx or a manifest we cannot use is a non-retryable failure.
     */
    async bulkPollStatus(input: BulkStatusInput): Promise<BulkPollResult> {
      const integration = await integrationOfTenant(deps.directory, input);
      assertStatusUrl(input.statusUrl, integration.baseUrl, 'status');
      let res;
      try {
        res = await deps.vendors.request(input.integrationId, input.statusUrl, call('bulk.status'), {
          method: 'GET',
          headers: { accept: 'application/json' },
          outcomeOnError: true,
          anywhereOnOrigin: true,
        });
      } catch (err) {
        if (err instanceof EhrError && err.retryable)
          return { state: 'retry', code: err.code, retryAfterMs: err.retryAfterMs ?? null };
        if (err instanceof VendorHttpError)
          throw new BulkExportError(
            'BULK_EXPORT_FAILED',
            'status',
            `the vendor answered ${err.status}`,
            err.outcomeCode,
          );
        throw err;
      }
      if (res.status === 202) {
        return {
          state: 'in-progress',
          retryAfterMs: parseRetryAfterMs(res.headers.get('retry-after')) ?? null,
          progress: progressText(res.headers.get('x-progress')),
        };
      }
      if (res.status !== 200)
        throw new BulkExportError('BULK_EXPORT_FAILED', 'status', `unexpected status answer ${res.status}`);
      const manifest = parseManifest(res.body, { baseUrl: integration.baseUrl, fileHosts: integration.bulkFileHosts });
      return { state: 'complete', manifest };
    },

    /** DELETE on the status URL: the vendor may stop the job and drop its files. A 4xx (already gone) is fine. */
    async bulkDelete(input: BulkStatusInput): Promise<{ status: number }> {
      const integration = await integrationOfTenant(deps.directory, input);
      assertStatusUrl(input.statusUrl, integration.baseUrl, 'status');
      try {
        const res = await deps.vendors.request(input.integrationId, input.statusUrl, call('bulk.delete'), {
          method: 'DELETE',
          headers: { accept: 'application/fhir+json' },
          anywhereOnOrigin: true,
        });
        return { status: res.status };
      } catch (err) {
        if (err instanceof VendorHttpError && !err.retryable) return { status: err.status };
        throw err;
      }
    },

    /** After every file of the type committed whole: the next export of it starts at this transactionTime. */
    async advanceBulkCheckpoint(input: BulkCheckpointInput): Promise<string> {
      const { kickoffs, ...checkpoint } = input;
      return advanceTypeCheckpoint(deps, activityAuditContext(), checkpoint, { via: 'bulk', kickoffs });
    },
  };
}

function assertStatusUrl(statusUrl: string, baseUrl: string, step: 'status'): void {
  const url = new URL(statusUrl);
  if (!isVendorOrigin(url, baseUrl))
    throw new BulkExportError('BULK_HOST_REFUSED', step, `the status URL is on ${url.host}, not the vendor's origin`);
}
