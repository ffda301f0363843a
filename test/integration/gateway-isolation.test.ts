/**
 * Property (fast-check, fixed seed): across random consumers (tenant, purpose, scopes, break-glass) and random
 * requests (reads, searches with random parameters and page sizes, $everything, next links followed, and next
 * links taken from other tenants' searches), no response ever contains another tenant's resource. The tenants'
 * synthetic records share their ids on purpose; each record's versionId names its tenant. Real PostgreSQL.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ResourceType } from '../../lib/domain.js';
import { PURPOSES } from '../../lib/fhir/classification.js';
import type { BreakGlassGrant, GatewayResponse } from '../../lib/gateway/access.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { storeResources } from '../../lib/sync/store-resources.js';
import { registerSandboxTenant, testActor, useSyncHarness } from './support.js';
import { caller, consumer, openKeyring, scope } from './gateway-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });
let keyring: TenantKeyring;
const call = caller(() => ({ pool: harness.pool, keyring }));
const tenants: string[] = [];

const TYPES = ['Patient', 'Observation', 'Encounter'] as const;
const PATIENTS = ['p-1', 'p-2', 'p-3', 'p-4', 'p-5'];
const IDS: Record<(typeof TYPES)[number], string[]> = {
  Patient: [...PATIENTS, 'p-none'],
  Observation: ['o-1', 'o-2', 'o-3', 'o-4', 'o-5', 'o-6', 'o-7', 'o-none'],
  Encounter: ['e-1', 'e-2', 'e-3', 'e-4', 'e-none'],
};

function record(tenantId: string, type: ResourceType, id: string, n: number) {
  const lastUpdated = new Date(Date.UTC(2026, 0, 1 + (n % 28))).toISOString();
  const versionId = `${tenantId}.${n}`;
  const resource: Record<string, unknown> = {
    resourceType: type,
    id,
    meta: { versionId, lastUpdated },
    identifier: [{ system: 'urn:test:tenant', value: tenantId }],
    status: 'final',
    ...(type === 'Patient' ? {} : { subject: { reference: `Patient/${PATIENTS[n % PATIENTS.length]}` } }),
  };
  return { id, versionId, lastUpdated, resource };
}

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  for (let t = 0; t < 3; t++) {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: [...TYPES],
      integrations: 2,
    });
    tenants.push(tenantId);
    for (const type of TYPES) {
      // Each tenant holds a different subset of the shared ids, split over its two integrations.
      const ids = IDS[type].filter((id, i) => !id.endsWith('-none') && (i + t) % 4 !== 0);
      for (const [k, integrationId] of integrationIds.entries()) {
        const items = ids.filter((_, i) => i % 2 === k || i === 0).map((id, i) => record(tenantId, type, id, i + k));
        const scopeOf = { tenantId, integrationId, resourceType: type, purpose: 'clinical-sync' as const };
        await storeResources({ pool: harness.pool, keyring }, testActor, scopeOf, items);
      }
    }
  }
  // A tenant with integrations but nothing stored (and no data key).
  tenants.push((await registerSandboxTenant(harness.pool, harness.sandbox, { resourceTypes: ['Patient'] })).tenantId);
}, 60_000);

/** Every resource a response carries, whether a single resource or a Bundle's entries. */
function resourcesOf(res: GatewayResponse): Array<Record<string, unknown>> {
  const body = res.body as Record<string, unknown>;
  if (body.resourceType === 'Bundle')
    return ((body.entry as Array<{ resource: Record<string, unknown> }>) ?? []).map((e) => e.resource);
  if (body.resourceType === 'OperationOutcome' || body.resourceType === 'CapabilityStatement') return [];
  return [body];
}

function tenantOf(resource: Record<string, unknown>): string | undefined {
  const versionId = (resource.meta as { versionId?: string } | undefined)?.versionId;
  const identifier = (resource.identifier as Array<{ value: string }> | undefined)?.[0]?.value;
  return versionId?.split('.')[0] ?? identifier;
}

const scopeTexts = [
  'system/*.rs',
  'system/*.r',
  'system/Patient.rs',
  'system/Patient.r',
  'system/Observation.rs',
  'system/Observation.s',
  'system/Encounter.rs',
];

const requestArb = fc.oneof(
  fc
    .record({ type: fc.constantFrom(...TYPES), n: fc.nat() })
    .map(({ type, n }) => ({ path: `${type}/${IDS[type][n % IDS[type].length]}`, query: '' })),
  fc
    .record({
      type: fc.constantFrom(...TYPES),
      ids: fc.subarray(['p-1', 'p-3', 'o-2', 'o-5', 'e-1', 'e-4', 'x-9']),
      patient: fc.option(fc.constantFrom(...PATIENTS, 'p-none'), { nil: undefined }),
      since: fc.option(fc.integer({ min: 1, max: 28 }), { nil: undefined }),
      count: fc.integer({ min: 1, max: 4 }),
    })
    .map(({ type, ids, patient, since, count }) => {
      const q = new URLSearchParams({ _count: String(count) });
      if (ids.length > 0) q.set('_id', ids.join(','));
      if (patient !== undefined && type !== 'Patient') q.set('patient', patient);
      if (since !== undefined) q.set('_lastUpdated', `ge2026-01-${String(since).padStart(2, '0')}`);
      return { path: type, query: q.toString() };
    }),
  fc
    .record({ patient: fc.constantFrom(...PATIENTS, 'p-none'), count: fc.integer({ min: 1, max: 5 }) })
    .map(({ patient, count }) => ({ path: `Patient/${patient}/$everything`, query: `_count=${count}` })),
);

const consumerArb = fc.record({
  tenant: fc.nat({ max: 3 }),
  purpose: fc.constantFrom(...PURPOSES),
  scopes: fc.subarray(scopeTexts, { minLength: 1 }),
  breakGlass: fc.option(fc.constantFrom(...TYPES), { nil: undefined }),
});

describe('tenant isolation (property)', () => {
  it('no response ever contains another tenant’s resource', async () => {
    const nextLinks: string[] = [];
    let served = 0;
    await fc.assert(
      fc.asyncProperty(
        consumerArb,
        fc.array(requestArb, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        async (c, requests, replay) => {
          const tenantId = tenants[c.tenant]!;
          const grants: BreakGlassGrant[] = c.breakGlass
            ? [
                {
                  id: `bg-${c.breakGlass}`,
                  consumerId: 'c-test',
                  scopes: [scope(`system/${c.breakGlass}.rs`)],
                  reasonCode: 'TEST',
                  expiresAt: new Date(Date.now() + 60_000),
                },
              ]
            : [];
          const access = consumer(tenantId, c.purpose, c.scopes, grants);
          // Next links of earlier (other tenants') searches are replayed too.
          const replayed = nextLinks.length > 0 ? [nextLinks[replay % nextLinks.length]!] : [];
          const queue = [
            ...requests,
            ...replayed.map((u) => ({
              path: new URL(u).pathname.replace(/^\/fhir\//, ''),
              query: new URL(u).search.slice(1),
            })),
          ];
          for (let i = 0; i < queue.length && i < 12; i++) {
            const { path, query } = queue[i]!;
            const res = await call(access, path, query);
            expect([400, 200, 403, 404]).toContain(res.status);
            for (const r of resourcesOf(res)) {
              expect(tenantOf(r)).toBe(tenantId);
              served += 1;
            }
            const next = (res.body as { link?: Array<{ relation: string; url: string }> }).link?.find(
              (l) => l.relation === 'next',
            );
            if (next) {
              nextLinks.push(next.url);
              const u = new URL(next.url);
              queue.push({ path: u.pathname.replace(/^\/fhir\//, ''), query: u.search.slice(1) });
            }
          }
        },
      ),
      { seed: 20261205, numRuns: 120 },
    );
    // The property saw resources, not only refusals.
    expect(served).toBeGreaterThan(100);
    // Reads of the tenant with nothing stored (patient= searches included) created no data key for it.
    const keys = await harness.pool.query('SELECT 1 FROM data_keys WHERE tenant_id = $1', [tenants[3]]);
    expect(keys.rowCount).toBe(0);
  }, 120_000);
});
