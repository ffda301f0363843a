/**
 * Bulk Data `$export` end to end against the sandbox (real Temporal, real PostgreSQL): the exact records
 * stored, checkpoints at the manifest's transactionTime, and each way the vendor misbehaves handled — slow
 * preparation with 429 on early polls, HTTP-date Retry-After, transient 5xx, expired files (one new kick-off),
 * error files, deleted[] (tombstones), files on another host (allowed or not; no bearer token when the
 * manifest says so), a malformed line, a manifest that is not JSON, a status URL on another host, a refused
 * kick-off, and cancellation (DELETE on the status URL).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readScopeFor, type ResourceType } from '../../lib/domain.js';
import { DEFAULT_PURPOSE } from '../../lib/fhir/classification.js';
import { minimiseForPurpose } from '../../lib/fhir/minimise.js';
import { createTestClient } from '../../sandbox/test-client.js';
import { bulkLog, deleteRecords, setBulkBehaviour } from '../../sandbox/test-bulk.js';
import type { BulkBehaviourPatch } from '../../sandbox/bulk-behaviour.js';
import { bulkProgressQuery } from '../../workflows/bulk-export.js';
import {
  allowFileHosts,
  checkpointsOf,
  failureOf,
  startBulkExport,
  tombstonesOf,
  type BulkHandle,
} from './bulk-support.js';
import { decryptedResources } from './stored-records.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const TYPES: ResourceType[] = ['Patient', 'Observation'];
const harness = useSyncHarness({ sandbox: { size: 300 } });

async function tenantWith(behaviour: BulkBehaviourPatch = {}) {
  await setBulkBehaviour(harness.sandbox, null);
  await sandboxAdmin(harness.sandbox, 'DELETE', '/admin/bulk/log');
  await setBulkBehaviour(harness.sandbox, { retryAfterSeconds: 1, ...behaviour });
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: TYPES,
  });
  return { tenantId, integrationId: integrationIds[0]! };
}

function run(
  ids: { tenantId: string; integrationId: string },
  extra: { concurrency?: number } = {},
): Promise<BulkHandle> {
  return startBulkExport(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
    ...ids,
    types: TYPES,
    ...extra,
  });
}

async function expectExactlyTheSandbox(ids: { tenantId: string; integrationId: string }): Promise<void> {
  for (const type of TYPES) {
    const manifest = await sandboxManifest(harness.sandbox, type);
    const stored = await storedVersions(harness.pool, ids.tenantId, ids.integrationId, type);
    expect(manifest.length).toBeGreaterThan(0);
    expect(new Map(manifest.map((m) => [m.id, m.versionId]))).toEqual(stored);
  }
}

afterEach(async () => {
  await setBulkBehaviour(harness.sandbox, null);
});

describe('bulk export against the sandbox', () => {
  it('stores exactly the vendor records from several files per type and checkpoints at transactionTime', async () => {
    const ids = await tenantWith({ resourcesPerFile: 40, preparePolls: 2 });
    const handle = await run(ids, { concurrency: 3 });
    const result = await handle.result();
    await expectExactlyTheSandbox(ids);
    expect(result.kickoffs).toBe(1);
    expect(result.malformed).toEqual([]);
    const checkpoints = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    for (const t of result.types) {
      expect(t.incomplete).toBeUndefined();
      expect(t.fetched).toBe(t.expected);
      expect(t.inserted).toBe(t.fetched);
      expect(t.checkpoint).toBe(result.transactionTime);
      expect(checkpoints.get(t.resourceType)).toBe(result.transactionTime);
    }
    const obs = result.types.find((t) => t.resourceType === 'Observation')!;
    expect(obs.files).toBe(Math.ceil(obs.fetched / 40));
    expect(obs.files).toBeGreaterThan(1);
    const progress = await handle.query(bulkProgressQuery);
    expect(progress).toMatchObject({ phase: 'done', kickoffs: 1 });
    expect(progress.polls).toBe(3);
    // Done with the export: the status URL is deleted.
    const log = await bulkLog(harness.sandbox);
    expect(log.deletes.map((d) => d.jobId)).toContain(log.kickoffs.at(-1)!.jobId);

    // What is stored is what the vendor serves, minimised for the purpose, element by element (kept whole, a
    // resource is stored as the bytes of its line; otherwise serialised again after minimisation).
    const reader = await createTestClient(harness.sandbox, { scopes: TYPES.map(readScopeFor) });
    const token = await reader.token();
    for (const type of TYPES) {
      const stored = await decryptedResources(harness, { ...ids, resourceType: type });
      for (const id of [...stored.keys()].slice(0, 25)) {
        const res = await fetch(`${harness.sandbox.fhirBaseUrl}/${type}/${id}`, {
          headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
        });
        const served = (await res.json()) as Record<string, unknown>;
        expect(stored.get(id), `${type}/${id}`).toEqual(minimiseForPurpose(type, served, DEFAULT_PURPOSE).resource);
      }
    }

    // A second run finds everything stored already.
    const again = await (await run(ids)).result();
    for (const t of again.types) expect(t).toMatchObject({ inserted: 0, updated: 0, unchanged: t.fetched });
  });

  it('waits out slow preparation: 429 on early polls, an HTTP-date Retry-After, transient 5xx', async () => {
    const ids = await tenantWith({
      preparePolls: 3,
      retryAfterSeconds: 2,
      retryAfterAsDate: true,
      enforcePollSpacing: true,
    });
    await setBulkBehaviour(harness.sandbox, { pollErrors: 2 });
    const result = await (await run(ids)).result();
    await expectExactlyTheSandbox(ids);
    const polls = (await bulkLog(harness.sandbox)).polls;
    expect(polls.filter((p) => p.status === 503)).toHaveLength(2);
    expect(polls.filter((p) => p.status === 202)).toHaveLength(3);
    // An HTTP-date has whole seconds: at most an early poll or two is answered 429, and then waited out.
    expect(polls.filter((p) => p.status === 429).length).toBeLessThanOrEqual(2);
    expect(polls.at(-1)!.status).toBe(200);
    expect(result.types.every((t) => t.checkpoint === result.transactionTime)).toBe(true);
  });

  it('an expired file leads to exactly one new kick-off, and the export completes', async () => {
    const ids = await tenantWith({ fileTtlSeconds: 0 });
    const handle = await run(ids);
    await expect.poll(async () => (await bulkLog(harness.sandbox)).kickoffs.length, { timeout: 20_000 }).toBe(1);
    await setBulkBehaviour(harness.sandbox, { fileTtlSeconds: null });
    const result = await handle.result();
    expect(result.kickoffs).toBe(2);
    expect((await bulkLog(harness.sandbox)).kickoffs).toHaveLength(2);
    await expectExactlyTheSandbox(ids);
    expect(result.types.every((t) => t.checkpoint === result.transactionTime)).toBe(true);
  });

  it('files that expire twice fail the export with BULK_FILE_EXPIRED after two kick-offs', async () => {
    const ids = await tenantWith({ fileTtlSeconds: 0 });
    const failure = await failureOf(await run(ids));
    expect(failure.type).toBe('BULK_FILE_EXPIRED');
    expect((await bulkLog(harness.sandbox)).kickoffs).toHaveLength(2);
  });

  it('summarises error files by issue code, with no text from them', async () => {
    const ids = await tenantWith({ errorFile: true });
    const result = await (await run(ids)).result();
    expect(result.errors).toEqual({ files: 1, outcomes: 2, byCode: { processing: 2 } });
    expect(JSON.stringify(result)).not.toContain('could not be exported');
  });

  it('applies deleted[] as tombstones: the stored records go, the deletion is recorded', async () => {
    const ids = await tenantWith();
    await (await run(ids)).result();
    const gone = await deleteRecords(harness.sandbox, 'Observation', { count: 3 });
    await setBulkBehaviour(harness.sandbox, { deleted: 'always' });
    const result = await (await run(ids)).result();
    const obs = result.types.find((t) => t.resourceType === 'Observation')!;
    expect(obs.deleted).toBeGreaterThanOrEqual(3);
    const stored = await storedVersions(harness.pool, ids.tenantId, ids.integrationId, 'Observation');
    for (const g of gone) expect(stored.has(g.id)).toBe(false);
    const tombstones = await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId);
    for (const g of gone) expect(tombstones).toContainEqual({ type: 'Observation', id: g.id, how: 'bulk-deleted' });
    await expectExactlyTheSandbox(ids);
  });

  it('refuses files on another host unless the integration allows it, and sends no token where none is required', async () => {
    const refused = await tenantWith({ filesOnOtherHost: true });
    const failure = await failureOf(await run(refused));
    expect(failure.type).toBe('BULK_HOST_REFUSED');
    expect(failure.message).toMatch(/manifest: output\[0\] is on 127\.0\.0\.1:\d+/);

    const allowed = await tenantWith({ filesOnOtherHost: true, requiresAccessToken: false });
    const log0 = await bulkLog(harness.sandbox);
    await allowFileHosts(allowed.integrationId, [new URL(log0.otherOrigin).host]);
    await (await run(allowed)).result();
    await expectExactlyTheSandbox(allowed);
    const downloads = (await bulkLog(harness.sandbox)).downloads.filter((d) => d.status === 200);
    expect(downloads.length).toBeGreaterThan(0);
    expect(downloads.every((d) => d.host === 'other' && d.bearer === false)).toBe(true);
  });

  it('reports a malformed line by file and line number, stores the rest, and holds that type back', async () => {
    const ids = await tenantWith({ malformedLine: { type: 'Observation', afterLine: 5 } });
    const result = await (await run(ids)).result();
    expect(result.malformed).toEqual([
      { kind: 'output', fileIndex: expect.any(Number), resourceType: 'Observation', count: 1, lines: [6] },
    ]);
    expect(JSON.stringify(result)).not.toContain('broken-line');
    const obs = result.types.find((t) => t.resourceType === 'Observation')!;
    expect(obs).toMatchObject({ incomplete: 'BULK_MALFORMED_LINES', checkpoint: null, malformedLines: 1 });
    expect(obs.fetched).toBe(obs.expected);
    await expectExactlyTheSandbox(ids);
    const checkpoints = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    expect(checkpoints.has('Observation')).toBe(false);
    expect(checkpoints.get('Patient')).toBe(result.transactionTime);
  });

  it.each([
    ['a manifest that is not JSON', { manifestNotJson: true }, 'BULK_MANIFEST_INVALID', /manifest: .*not JSON/],
    ['a status URL on another host', { statusOnOtherHost: true }, 'BULK_HOST_REFUSED', /kick-off: the status URL/],
    [
      'a refused kick-off',
      { kickoffStatus: 422 },
      'BULK_KICKOFF_REFUSED',
      /kick-off: .*422.*OperationOutcome too-costly/,
    ],
  ] as const)('fails non-retryably on %s, naming the step', async (_what, behaviour, type, message) => {
    const ids = await tenantWith(behaviour);
    const failure = await failureOf(await run(ids));
    expect(failure.type).toBe(type);
    expect(failure.message).toMatch(message);
    expect(await storedVersions(harness.pool, ids.tenantId, ids.integrationId, 'Patient')).toEqual(new Map());
  });

  it('cancelling the export sends DELETE to the status URL', async () => {
    const ids = await tenantWith({ preparePolls: 100 });
    const handle = await run(ids);
    await expect
      .poll(async () => (await bulkLog(harness.sandbox)).polls.length, { timeout: 20_000 })
      .toBeGreaterThan(0);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    const log = await bulkLog(harness.sandbox);
    expect(log.deletes.map((d) => d.jobId)).toEqual([log.kickoffs[0]!.jobId]);
  });
});
