/**
 * What every reconcile batch activity checks first: the integration is the tenant's and reads the type, and which
 * scope (tenant, integration, type, purpose) and write policy its decisions are made under.
 */
import type { ResourceType } from '../lib/domain.js';
import { PolicyViolationError } from '../lib/errors/index.js';
import { writePolicyFor } from '../lib/writeback/authority.js';
import type { ReconcileActivityDeps } from './deps.js';

export async function reconcileBatchScope(
  deps: ReconcileActivityDeps,
  input: { tenantId: string; integrationId: string; resourceType: ResourceType },
) {
  const integration = await deps.directory.integration(input.integrationId);
  if (integration.tenantId !== input.tenantId || !integration.resourceTypes.includes(input.resourceType))
    throw new PolicyViolationError('minimum-necessary', `${input.resourceType} is outside the integration's policy`);
  const scope = {
    tenantId: integration.tenantId,
    integrationId: integration.id,
    resourceType: input.resourceType,
    purpose: integration.purpose,
  };
  return { integration, scope, policy: await writePolicyFor(deps.pool, scope, input.resourceType) };
}
