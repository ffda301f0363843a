/**
 * The checks every vendor-bound sync activity makes before it reads: the integration belongs to the tenant
 * the workflow names, and a resource type is inside both the integration's policy and its purpose.
 */
import type { ResourceType } from '../lib/domain.js';
import { PolicyViolationError } from '../lib/errors/index.js';
import { purposePolicy } from '../lib/fhir/classification.js';
import type { Integration } from '../lib/integrations/repository.js';
import type { CredentialDirectory } from '../lib/vendors/credentials.js';

export async function integrationOfTenant(
  directory: Pick<CredentialDirectory, 'integration'>,
  ref: { tenantId: string; integrationId: string },
): Promise<Integration> {
  const integration = await directory.integration(ref.integrationId);
  if (integration.tenantId !== ref.tenantId) {
    throw new PolicyViolationError(
      'tenant-isolation',
      `integration ${ref.integrationId} does not belong to tenant ${ref.tenantId}`,
    );
  }
  return integration;
}

export function assertTypeAllowed(integration: Integration, type: ResourceType): void {
  if (!integration.resourceTypes.includes(type))
    throw new PolicyViolationError('minimum-necessary', `${type} is outside integration ${integration.id}'s policy`);
  if (!purposePolicy(integration.purpose).resourceTypes.includes(type)) {
    throw new PolicyViolationError(
      'minimum-necessary',
      `${type} is outside integration ${integration.id}'s purpose ${integration.purpose}`,
    );
  }
}
