/**
 * An incident's scope: `all`, `tenant:T`, `integration:I` or `vendor:V`. Parsed in one place (the CLI
 * and the workflow input agree) and resolved to the integrations it covers.
 */
import { ID_PATTERN } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { Queryable } from '../store/pool.js';

export type IncidentScope = 'all' | `tenant:${string}` | `integration:${string}` | `vendor:${string}`;

export function parseScope(value: string): IncidentScope {
  if (value === 'all') return 'all';
  const m = /^(tenant|integration|vendor):(.+)$/.exec(value);
  if (!m || !ID_PATTERN.test(m[2]!))
    throw new InvalidArgumentError('--scope', 'expected tenant:T, integration:I, vendor:V or all');
  return value as IncidentScope;
}

export interface ScopedIntegration {
  integrationId: string;
  tenantId: string;
  vendor: string;
  baseUrl: string;
  status: string;
  /**
   * How it authenticates (absent in snapshots taken before it was recorded): recovery needs a replacement for
   * secrets and certificates.
   */
  authMethod?: string;
}

/** The integrations a scope covers, in a stable order. */
export async function integrationsInScope(db: Queryable, scope: IncidentScope): Promise<ScopedIntegration[]> {
  const [kind, value] = scope === 'all' ? ['all', null] : (scope.split(/:(.*)/s, 2) as [string, string]);
  const column = kind === 'tenant' ? 'tenant_id' : kind === 'integration' ? 'id' : kind === 'vendor' ? 'vendor' : null;
  const res = await db.query<{
    id: string;
    tenant_id: string;
    vendor: string;
    base_url: string;
    status: string;
    auth_method: string;
  }>(
    `SELECT id, tenant_id, vendor, base_url, status, auth_method
        FROM integrations ${column ? `WHERE ${column} = $1` : ''} ORDER BY id`,
    column ? [value] : [],
  );
  return res.rows.map((r) => ({
    integrationId: r.id,
    tenantId: r.tenant_id,
    vendor: r.vendor,
    baseUrl: r.base_url,
    status: r.status,
    authMethod: r.auth_method,
  }));
}

/** Whether a scope covers the given integration (by its own id, its tenant or its vendor). */
export function scopeCovers(
  scope: string,
  target: { tenantId: string; integrationId?: string; vendor?: string },
): boolean {
  if (scope === 'all') return true;
  if (scope === `tenant:${target.tenantId}`) return true;
  if (target.integrationId && scope === `integration:${target.integrationId}`) return true;
  return target.vendor !== undefined && scope === `vendor:${target.vendor}`;
}

/** The CLI's lists (workflows/breach-containment.ts keeps its own copy: workflows import no runtime code). */
export const INCIDENT_SEVERITIES = ['low', 'moderate', 'high', 'critical'] as const;
export const NOTIFICATION_RECIPIENTS = ['individuals', 'hhs', 'media', 'business-associate'] as const;
