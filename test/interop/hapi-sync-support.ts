/**
 * The product's own sync, run against the interop HAPI FHIR server: a sync harness (real Temporal, real
 * PostgreSQL, the in-process worker) beside one HAPI instance, an open `fhir-server` integration on loopback
 * registered through the real registration path, and what the tests compare — the stored ids and versions
 * against the server's, decrypted records, tombstones and checkpoints.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import { isResourceType, type ResourceType } from '../../lib/domain.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import type { ReadChoiceInput } from '../../lib/integrations/read-choice.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { SyncReport } from '../../workflows/nightly-sync.js';
import { testEnv, uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { storedVersions, testActor, useSyncHarness, type SyncHarness } from '../integration/support.js';
import { CORPUS_TYPES, currentVersionsByType } from './hapi-data.js';
import { startHapi, type HapiServer, type StartHapiOptions } from './hapi.js';
import { sharedHapiPartition } from './hapi-shared.js';

/** The corpus's types the product stores (the corpus's Group is a roster, not a record, unless the product says so). */
export const SYNCED_TYPES: ResourceType[] = (CORPUS_TYPES as readonly string[]).filter(isResourceType);

/** Where a file's HAPI data lives: a partition of the run's shared server, or a server of its own. */
export interface HapiEndpoint {
  /** The FHIR base URL the file writes to and the integration reads from. */
  baseUrl: string;
}

export interface HapiSync {
  readonly harness: SyncHarness;
  readonly hapi: HapiEndpoint;
}

/**
 * useSyncHarness (its sandbox minimal, unused) and HAPI for the file's tests: a partition of the run's shared
 * server (test/interop/hapi-shared.ts), or, given `hapi` options (a configuration the shared one cannot have), a
 * server of the file's own, stopped after its tests.
 */
export function useHapiSync(options: { hapi?: StartHapiOptions; config?: Partial<Record<string, string>> } = {}) {
  const harness = useSyncHarness({ sandbox: { size: 5 }, config: options.config });
  let hapi: HapiEndpoint | undefined;
  let own: HapiServer | undefined;
  beforeAll(async () => {
    if (options.hapi) hapi = own = await startHapi(options.hapi);
    else hapi = await sharedHapiPartition();
  }, 900_000);
  afterAll(async () => {
    await own?.stop();
  });
  return {
    harness,
    get hapi(): HapiEndpoint {
      if (!hapi) throw new Error('useHapiSync: HAPI is not started (read it inside a test or hook)');
      return hapi;
    },
  } satisfies HapiSync;
}

export interface Ids {
  tenantId: string;
  integrationId: string;
}

/** A fresh tenant and an open `fhir-server` integration (auth method none, loopback, acknowledged) of HAPI. */
export async function registerHapi(
  h: HapiSync,
  options: { types?: ResourceType[]; read?: ReadChoiceInput } = {},
): Promise<Ids> {
  const tenantId = uniqueId('hapi');
  await createTenant(h.harness.pool, { id: tenantId, name: 'Synthetic Interop Clinic' }, testActor);
  const integrationId = uniqueId('hapi-i');
  await registerIntegration(
    h.harness.pool,
    {
      id: integrationId,
      tenantId,
      vendor: 'fhir-server',
      baseUrl: h.hapi.baseUrl,
      resourceTypes: options.types ?? SYNCED_TYPES,
      authMethod: 'none',
      acknowledgeUnauthenticatedServer: true,
      secretsDir: testEnv().secretsDir,
      ...(options.read ? { read: options.read } : {}),
    },
    testActor,
  );
  return { tenantId, integrationId };
}

export async function runSync(h: HapiSync, ids: Ids, full = false): Promise<SyncReport> {
  const target = { ...ids, vendor: 'fhir-server' };
  return syncResult(await startSync(h.harness.temporal.client, h.harness.config.TEMPORAL_TASK_QUEUE, target, { full }));
}

/** Per type, the stored ids and versions equal the server's current (not deleted) resources, exactly. */
export async function expectStoredExactly(h: HapiSync, ids: Ids, types: readonly ResourceType[] = SYNCED_TYPES) {
  const server = await currentVersionsByType(h.hapi.baseUrl, types);
  for (const type of types) {
    const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, type);
    expect(server[type]!.size, `${type} on the server`).toBeGreaterThan(0);
    expect(sorted(stored), `${type}: stored ids and versions`).toEqual(sorted(server[type]!));
  }
  return server;
}

const sorted = (m: Map<string, string>) => [...m.entries()].sort(([a], [b]) => a.localeCompare(b));

/** One stored record, decrypted with a fresh keyring (as another process would) and parsed; plaintext zeroed. */
export async function decryptStored(h: HapiSync, ids: Ids, type: ResourceType, id: string): Promise<FhirJson> {
  const { pool, config } = h.harness;
  const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config) });
  const keyring = new TenantKeyring({ pool, kek });
  const { rows } = await pool.query<{ ciphertext: Buffer }>(
    `SELECT ciphertext FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    [ids.tenantId, ids.integrationId, type, id],
  );
  expect(rows, `${type}/${id} stored`).toHaveLength(1);
  const at = { ...ids, resourceType: type, resourceId: id };
  const plain = await decryptRecord(rows[0]!.ciphertext, at, keyring.lookup);
  try {
    return JSON.parse(plain.toString('utf8')) as FhirJson;
  } finally {
    plain.fill(0);
  }
}

export type FhirJson = Record<string, unknown>;

export async function tombstones(h: HapiSync, ids: Ids): Promise<Array<{ type: string; id: string; how: string }>> {
  const res = await h.harness.pool.query<{ resource_type: string; resource_id: string; learned_how: string }>(
    `SELECT resource_type, resource_id, learned_how FROM record_tombstones
      WHERE tenant_id = $1 AND integration_id = $2 ORDER BY 1, 2`,
    [ids.tenantId, ids.integrationId],
  );
  return res.rows.map((r) => ({ type: r.resource_type, id: r.resource_id, how: r.learned_how }));
}

export function checkpoints(h: HapiSync, ids: Ids): Promise<Map<string, string>> {
  return readCheckpoints(h.harness.pool, ids.tenantId, ids.integrationId);
}

/** The corpus's synthetic names and identifiers, for the end-of-run leak scan (they must appear nowhere). */
export function recordCorpusIdentifiers(patients: number): void {
  const strings: string[] = [];
  for (let i = 0; i < patients; i++) strings.push(`Synthetic${i}`, `SYN-${i}`);
  recordIdentifiers(strings.filter((s) => s.length >= 8));
}

/** What a report says of one type. */
export function typeOf(report: SyncReport, type: ResourceType) {
  const t = report.types.find((x) => x.resourceType === type);
  if (!t) throw new Error(`${type} is not in the report`);
  return t;
}
