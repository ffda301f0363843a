/**
 * What the gateway's FHIR read tests share: consumers' accesses, a call of handleFhirRead (the HTTP layer is the
 * auth side's), the stored record as it should be served (decrypted with a fresh keyring, minimised for a
 * purpose), and the audit events of a request.
 */
import { randomUUID } from 'node:crypto';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import type { ResourceType } from '../../lib/domain.js';
import type { Purpose } from '../../lib/fhir/classification.js';
import { minimiseForPurpose } from '../../lib/fhir/minimise.js';
import type { BreakGlassGrant, GatewayAccess, GatewayResponse, GatewayScope } from '../../lib/gateway/access.js';
import { handleFhirRead } from '../../lib/gateway/fhir/handler.js';
import type { Config } from '../../lib/config/schema.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import type { Pool } from '../../lib/store/pool.js';

export const BASE_URL = 'https://gateway.test/fhir';

/** `system/Observation.rs` → a GatewayScope. */
export function scope(text: string): GatewayScope {
  const m = /^system\/([A-Za-z*]+)\.([rs]+)$/.exec(text);
  if (!m) throw new Error(`bad scope in test: ${text}`);
  return {
    context: 'system',
    resourceType: m[1] as ResourceType | '*',
    read: m[2]!.includes('r'),
    search: m[2]!.includes('s'),
  };
}

export function consumer(
  tenantId: string,
  purpose: Purpose,
  scopes: string[],
  breakGlass: BreakGlassGrant[] = [],
  consumerId = 'c-test',
): GatewayAccess {
  return { tenantId, consumerId, purpose, scopes: scopes.map(scope), breakGlass, correlationId: randomUUID() };
}

export async function openKeyring(pool: Pool, config: Config): Promise<TenantKeyring> {
  const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config) });
  return new TenantKeyring({ pool, kek });
}

export interface Caller {
  (access: GatewayAccess, path: string, query?: string): Promise<GatewayResponse>;
}

export function caller(deps: () => { pool: Pool; keyring: TenantKeyring }): Caller {
  return (access, path, query = '') =>
    handleFhirRead(
      deps(),
      { ...access, correlationId: randomUUID() },
      {
        method: 'GET',
        path,
        query: new URLSearchParams(query),
        baseUrl: BASE_URL,
      },
    ).then((res) => {
      lastCorrelation.set(res, res.headers['x-correlation-id']!);
      return res;
    });
}

const lastCorrelation = new WeakMap<GatewayResponse, string>();

/** The audit events the request that produced `res` wrote. */
export async function auditOf(
  pool: Pool,
  res: GatewayResponse,
): Promise<Array<{ action: string; outcome: string; tenant_id: string; details: Record<string, unknown> }>> {
  const correlationId = lastCorrelation.get(res);
  const rows = await pool.query<{
    action: string;
    outcome: string;
    tenant_id: string;
    details: Record<string, unknown>;
  }>('SELECT action, outcome, tenant_id, details FROM audit_events WHERE correlation_id = $1 ORDER BY seq', [
    correlationId,
  ]);
  return rows.rows;
}

/** The stored record of the integration, decrypted with a fresh keyring and minimised for `purpose`. */
export async function storedAs(
  pool: Pool,
  keyring: TenantKeyring,
  at: { tenantId: string; integrationId: string; resourceType: ResourceType; resourceId: string },
  purpose: Purpose,
): Promise<Record<string, unknown>> {
  const { rows } = await pool.query<{ ciphertext: Buffer }>(
    `SELECT ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3
        AND resource_id = $4`,
    [at.tenantId, at.integrationId, at.resourceType, at.resourceId],
  );
  if (!rows[0]) throw new Error('no such stored record');
  const plain = await decryptRecord(rows[0].ciphertext, at, keyring.lookup);
  return minimiseForPurpose(at.resourceType, JSON.parse(plain.toString('utf8')) as Record<string, unknown>, purpose)
    .resource;
}

export interface BundleShape {
  resourceType: string;
  type: string;
  link: Array<{ relation: string; url: string }>;
  entry: Array<{ fullUrl: string; resource: Record<string, unknown> }>;
}

export function asBundle(res: GatewayResponse): BundleShape {
  if (res.status !== 200) throw new Error(`expected a bundle, got ${res.status}`);
  return res.body as BundleShape;
}

/** Follows `next` links from a first search; returns every page's entries in order. */
export async function allPages(
  call: Caller,
  access: GatewayAccess,
  path: string,
  query: string,
  between?: (page: number) => Promise<void>,
): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  let res = await call(access, path, query);
  for (let page = 0; ; page++) {
    const bundle = asBundle(res);
    out.push(...bundle.entry.map((e) => e.resource));
    const next = bundle.link.find((l) => l.relation === 'next');
    if (!next) return out;
    if (page > 10_000) throw new Error('paging does not end');
    await between?.(page);
    const url = new URL(next.url);
    res = await call(access, url.pathname.replace(/^\/fhir\//, ''), url.search.slice(1));
  }
}
