/**
 * Test-owned activity (test/integration/workflows/token-fanout.ts; nothing in the product calls it),
 * registered only by test/integration/token-fanout.test.ts's worker.
 *
 * A connectivity probe: one authenticated GET through the vendor wrapper, so it exercises token
 * issue, TLS, the revocation gate and the audit trail exactly like a sync page. It asks for a count
 * only (`[base]/<first allowed type>?_count=0`): unlike `[base]/metadata`, which vendors serve without
 * a token, a search proves the token and its scope are accepted, and `_count=0` returns the total
 * without a single resource. Only the status and the duration leave the activity.
 */
import { activityAuditContext } from '../../activities/audit-context.js';
import { atActivityBoundary } from '../../activities/boundary.js';
import type { SyncActivityDeps } from '../../activities/deps.js';
import { PolicyViolationError } from '../../lib/errors/index.js';

export interface ProbeVendorInput {
  tenantId: string;
  integrationId: string;
}

export interface ProbeVendorResult {
  status: number;
  durationMs: number;
}

export function createVendorProbeActivities(deps: Pick<SyncActivityDeps, 'directory' | 'vendors'>) {
  return atActivityBoundary({
    async probeVendor(input: ProbeVendorInput): Promise<ProbeVendorResult> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      if (integration.tenantId !== input.tenantId) {
        throw new PolicyViolationError(
          'tenant-isolation',
          `integration ${input.integrationId} does not belong to tenant ${input.tenantId}`,
        );
      }
      const started = Date.now();
      const type = integration.resourceTypes[0];
      if (!type)
        throw new PolicyViolationError(
          'minimum-necessary',
          `integration ${integration.id} allows no resource type to probe`,
        );
      const url = `${integration.baseUrl.replace(/\/$/, '')}/${type}?_count=0`;
      const response = await deps.vendors.get(input.integrationId, url, {
        correlationId: ctx.correlationId,
        purpose: 'vendor.probe',
      });
      return { status: response.status, durationMs: Date.now() - started };
    },
  });
}

export type VendorProbeActivities = ReturnType<typeof createVendorProbeActivities>;
