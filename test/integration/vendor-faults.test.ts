/**
 * The nightly sync against a misbehaving vendor: every fault the sandbox injects ends either in a
 * completed sync holding exactly the sandbox's records (no lost, no duplicate) or in a clear
 * non-retryable failure naming the cause, with nothing written for the failing page. A vendor that
 * narrows our scopes later makes the next sync skip that type, say why, and sync the others.
 */
import type { ReadChoiceInput } from '../../lib/integrations/read-choice.js';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { startSync, syncResult } from '../../client/sync-client.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import { adminJson } from '../../sandbox/test-client.js';
import type { SyncProgress, SyncReport } from '../../workflows/nightly-sync.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import {
  registerSandboxTenant,
  sandboxAdmin,
  sandboxManifest,
  startTestSandbox,
  storedVersions,
  useSyncHarness,
} from './support.js';

const PAGE_SIZE = 30;
// Hangs end when the vendor client gives up; everything else on loopback answers well within this.
const harness = useSyncHarness({
  sandbox: { size: 700 },
  config: { EHR_SYNC_PAGE_SIZE: String(PAGE_SIZE), EHR_VENDOR_TIMEOUT_MS: '2500' },
});

interface Target {
  tenantId: string;
  integrationId: string;
}

async function integrationFor(
  resourceTypes: string[],
  sandbox: SandboxHandle = harness.sandbox,
  read?: ReadChoiceInput,
): Promise<Target> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, sandbox, {
    resourceTypes,
    ...(read ? { read } : {}),
  });
  return { tenantId, integrationId: integrationIds[0]! };
}

function start(t: Target): Promise<WorkflowHandle> {
  return startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...t, vendor: 'sandbox' });
}

async function fault(body: Record<string, unknown>): Promise<void> {
  await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', body);
}

/** Stored ids and versions equal the sandbox's, type by type. */
async function expectExactly(t: Target, types: string[], sandbox: SandboxHandle = harness.sandbox): Promise<number> {
  let total = 0;
  for (const type of types) {
    const manifest = await sandboxManifest(sandbox, type);
    const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, type);
    expect(stored.size, type).toBe(manifest.length);
    for (const m of manifest) expect(stored.get(m.id), `${type}/${m.id}`).toBe(m.versionId);
    total += manifest.length;
  }
  return total;
}

async function completesExactly(
  t: Target,
  types: string[],
  sandbox: SandboxHandle = harness.sandbox,
): Promise<SyncReport> {
  const report = await syncResult(await start(t));
  expect(report.outcome).toBe('completed');
  const total = await expectExactly(t, types, sandbox);
  expect(report.totals.inserted).toBe(total);
  return report;
}

/** The run fails with `type`, the failing activity was not retried, and its message names the cause. */
async function failsNonRetryably(handle: WorkflowHandle, type: string, message: RegExp): Promise<void> {
  const failure = await handle.result().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const cause = (failure as WorkflowFailedError).cause?.cause as
    { type?: string; nonRetryable?: boolean; message?: string } | undefined;
  expect(cause?.type).toBe(type);
  expect(cause?.nonRetryable).toBe(true);
  expect(cause?.message).toMatch(message);
  const history = await handle.fetchHistory();
  const attempts = history.events
    ?.filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(attempts?.at(-1)).toBe(1);
}

async function failedCallCodes(integrationId: string): Promise<string[]> {
  const res = await harness.pool.query<{ code: string }>(
    `SELECT details->>'errorCode' AS code FROM audit_events WHERE integration_id = $1
        AND action = 'vendor.call' AND outcome = 'failure' ORDER BY seq`,
    [integrationId],
  );
  return res.rows.map((r) => r.code);
}

async function clientIdOf(integrationId: string): Promise<string> {
  const res = await harness.pool.query<{ client_id: string }>('SELECT client_id FROM integrations WHERE id = $1', [
    integrationId,
  ]);
  return res.rows[0]!.client_id;
}

describe('faults that a resilient sync survives with exactly the vendor records', () => {
  it('a 429 storm with Retry-After in seconds', async () => {
    const t = await integrationFor(['Condition']);
    await fault({ kind: 'status', status: 429, retryAfterSeconds: 1, resourceType: 'Condition', times: 3 });
    await completesExactly(t, ['Condition']);
    expect(await failedCallCodes(t.integrationId)).toEqual([
      'VENDOR_RATE_LIMITED',
      'VENDOR_RATE_LIMITED',
      'VENDOR_RATE_LIMITED',
    ]);
  });

  it('429s with Retry-After as an HTTP-date, and without Retry-After', async () => {
    const t = await integrationFor(['Condition']);
    // Without Retry-After first: the preset's first backoff (2 s) is its shortest.
    await fault({ kind: 'status', status: 429, resourceType: 'Condition', times: 1 });
    await fault({
      kind: 'status',
      status: 429,
      retryAfterSeconds: 1,
      retryAfterAsDate: true,
      resourceType: 'Condition',
      times: 2,
    });
    await completesExactly(t, ['Condition']);
    expect(await failedCallCodes(t.integrationId)).toEqual([
      'VENDOR_RATE_LIMITED',
      'VENDOR_RATE_LIMITED',
      'VENDOR_RATE_LIMITED',
    ]);
  });

  it('a 5xx burst', async () => {
    const t = await integrationFor(['Condition']);
    await fault({ kind: 'status', status: 500, resourceType: 'Condition', times: 1 });
    await fault({ kind: 'status', status: 502, retryAfterSeconds: 1, resourceType: 'Condition', times: 1 });
    await fault({ kind: 'status', status: 503, retryAfterSeconds: 1, resourceType: 'Condition', times: 1 });
    await completesExactly(t, ['Condition']);
    expect(await failedCallCodes(t.integrationId)).toEqual([
      'VENDOR_UNAVAILABLE',
      'VENDOR_UNAVAILABLE',
      'VENDOR_UNAVAILABLE',
    ]);
  });

  it('slow answers, and a hang that the vendor client times out', async () => {
    const t = await integrationFor(['Condition']);
    await fault({ kind: 'slow', delayMs: 400, resourceType: 'Condition', times: 2 });
    await fault({ kind: 'hang', resourceType: 'Condition', times: 1 });
    await completesExactly(t, ['Condition']);
    expect(await failedCallCodes(t.integrationId)).toEqual(['VENDOR_NETWORK']);
  });

  it('a token the vendor expires between two pages', async () => {
    const t = await integrationFor(['Condition']);
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');
    await fault({ kind: 'expire-token', resourceType: 'Condition', times: 1 });
    await completesExactly(t, ['Condition']);
    const stats = await sandboxAdmin<{ rejectedTokens: number; tokensIssued: number }>(
      harness.sandbox,
      'GET',
      '/admin/stats',
    );
    expect(stats.rejectedTokens).toBe(1);
    expect(stats.tokensIssued).toBe(2);
  });

  it('a vendor clock a few seconds off, within the assertion leeway', async () => {
    const t = await integrationFor(['Condition']);
    await adminJson(harness.sandbox, '/admin/clock', { skewSeconds: 5 }, 'PUT');
    try {
      await completesExactly(t, ['Condition']);
    } finally {
      await adminJson(harness.sandbox, '/admin/clock', { skewSeconds: 0 }, 'PUT');
    }
  });
});

describe('faults that stop the sync with a named, non-retryable failure and nothing written', () => {
  it('a vendor clock ten minutes ahead rejects our assertions', async () => {
    const t = await integrationFor(['Condition']);
    await adminJson(harness.sandbox, '/admin/clock', { skewSeconds: 600 }, 'PUT');
    try {
      await failsNonRetryably(
        await start(t),
        'VENDOR_AUTH_FAILED',
        /refused the client \(private_key_jwt: invalid_client: .*(expired|not yet valid|iat|exp|clock)/i,
      );
    } finally {
      await adminJson(harness.sandbox, '/admin/clock', { skewSeconds: 0 }, 'PUT');
    }
    expect((await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition')).size).toBe(0);
  });

  it('a client the vendor disabled', async () => {
    const t = await integrationFor(['Condition']);
    await adminJson(
      harness.sandbox,
      `/admin/clients/${await clientIdOf(t.integrationId)}/disabled`,
      { disabled: true },
      'PUT',
    );
    await failsNonRetryably(
      await start(t),
      'VENDOR_AUTH_FAILED',
      /invalid_client: the client has been disabled by the vendor/,
    );
    expect((await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition')).size).toBe(0);
  });

  it('an assertion the vendor reports as a replayed jti', async () => {
    const t = await integrationFor(['Condition']);
    await fault({ kind: 'jti-replay', times: 1 });
    await failsNonRetryably(
      await start(t),
      'VENDOR_AUTH_FAILED',
      /invalid_client: assertion jti has already been used/,
    );
    expect((await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition')).size).toBe(0);
  });

  for (const kind of ['truncated-body', 'malformed-json'] as const) {
    it(`a ${kind} second page: the first page stays exactly, nothing of the second is written`, async () => {
      const t = await integrationFor(['Condition']);
      // lets the first page through untouched
      await fault({ kind: 'slow', delayMs: 0, resourceType: 'Condition', times: 1 });
      await fault({ kind, resourceType: 'Condition', times: 1 });
      await failsNonRetryably(await start(t), 'VENDOR_DATA_MALFORMED', /malformed Condition page/);
      const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition');
      const firstPage = (await sandboxManifest(harness.sandbox, 'Condition')).slice(0, PAGE_SIZE);
      expect(stored.size).toBe(PAGE_SIZE);
      for (const m of firstPage) expect(stored.get(m.id)).toBe(m.versionId);
      expect((await readCheckpoints(harness.pool, t.tenantId, t.integrationId)).has('Condition')).toBe(false);
    });
  }

  it('a next link to another host is refused before our token goes there', async () => {
    const t = await integrationFor(['Condition']);
    const ledgerFrom = Date.now();
    await fault({ kind: 'foreign-next-link', resourceType: 'Condition', times: 1 });
    await failsNonRetryably(
      await start(t),
      'VENDOR_AUTH_FAILED',
      /refusing to send credentials to http:\/\/127\.0\.0\.2:\d+\/fhir\/Condition/,
    );
    // Only the first page (whose next link was the bad one) is stored, exactly; the checkpoint did not move.
    const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition');
    const firstPage = (await sandboxManifest(harness.sandbox, 'Condition')).slice(0, PAGE_SIZE);
    expect(stored.size).toBe(PAGE_SIZE);
    for (const m of firstPage) expect(stored.get(m.id)).toBe(m.versionId);
    expect((await readCheckpoints(harness.pool, t.tenantId, t.integrationId)).has('Condition')).toBe(false);
    const ledger = await sandboxAdmin<{ entries: unknown[] }>(
      harness.sandbox,
      'GET',
      `/admin/ledger?since=${ledgerFrom}`,
    );
    // The statement, the count and the first page reached the vendor; nothing followed the foreign link.
    expect(ledger.entries.map((e) => (e as { resource: string }).resource)).toEqual([
      'metadata',
      'Condition',
      'Condition',
    ]);
  });
});

describe('scopes the vendor narrows', () => {
  it('a 403 on a granted type skips that type with the reason; the others complete', async () => {
    const t = await integrationFor(['Patient', 'Condition']);
    await fault({ kind: 'scope-violation', resourceType: 'Condition', times: 1 });
    const report = await syncResult(await start(t));
    expect(report.outcome).toBe('completed');
    expect(report.skipped).toEqual([
      {
        resourceType: 'Condition',
        reason: 'VENDOR_SCOPE_NOT_GRANTED',
        detail: expect.stringMatching(/refused Condition/) as unknown,
      },
    ]);
    await expectExactly(t, ['Patient']);
    expect((await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Condition')).size).toBe(0);
  });

  it('after the vendor narrows our scopes the next sync skips that type, says why, and syncs the rest; lifting it catches up', async () => {
    const types = ['Patient', 'Observation', 'Condition'];
    const t = await integrationFor(types);
    await completesExactly(t, types);
    const before = await readCheckpoints(harness.pool, t.tenantId, t.integrationId);

    const narrowed = await adminJson<{ allowedTypes: string[] }>(
      harness.sandbox,
      `/admin/clients/${await clientIdOf(t.integrationId)}/scopes`,
      { scopes: ['system/Patient.rs', 'system/Observation.rs'] },
      'PUT',
    );
    expect(narrowed.allowedTypes).toEqual(['Patient', 'Observation']);
    for (const type of types)
      await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: type, count: 3 });

    const handle = await start(t);
    const report = await syncResult(handle);
    expect(report.outcome).toBe('completed');
    expect(report.skipped).toEqual([
      {
        resourceType: 'Condition',
        reason: 'VENDOR_SCOPE_NOT_GRANTED',
        detail: expect.stringMatching(/refused Condition .*403/) as unknown,
      },
    ]);
    const condition = report.types.find((x) => x.resourceType === 'Condition');
    expect(condition).toMatchObject({ done: false, skippedReason: 'VENDOR_SCOPE_NOT_GRANTED', fetched: 0 });
    expect(
      (await handle.query<SyncProgress>('progress')).types.find((x) => x.resourceType === 'Condition')?.skippedReason,
    ).toBe('VENDOR_SCOPE_NOT_GRANTED');
    await expectExactly(t, ['Patient', 'Observation']);
    const after = await readCheckpoints(harness.pool, t.tenantId, t.integrationId);
    expect(after.get('Condition')).toBe(before.get('Condition'));
    expect(after.get('Patient')).not.toBe(before.get('Patient'));
    const audited = await harness.pool.query<{ details: { skipped?: unknown[] } }>(
      `SELECT details FROM audit_events WHERE integration_id = $1 AND action = 'sync.completed'
          ORDER BY seq DESC LIMIT 1`,
      [t.integrationId],
    );
    expect(audited.rows[0]?.details.skipped).toEqual([
      expect.objectContaining({ resourceType: 'Condition', reason: 'VENDOR_SCOPE_NOT_GRANTED' }),
    ]);

    await adminJson(
      harness.sandbox,
      `/admin/clients/${await clientIdOf(t.integrationId)}/scopes`,
      { scopes: null },
      'PUT',
    );
    const caughtUp = await syncResult(await start(t));
    expect(caughtUp.skipped).toEqual([]);
    expect(caughtUp.types.find((x) => x.resourceType === 'Condition')?.updated).toBe(3);
    await expectExactly(t, types);
  });
});

describe('a vendor personality with a fixed-window limit and no Retry-After', () => {
  let meditech: SandboxHandle | undefined;
  afterAll(async () => {
    await meditech?.close();
  });

  it('syncs through its own base path, waits out the throttled windows, and stores exactly its records', async () => {
    // MEDITECH's base path and v2 scopes (what registration asks for today), with an eClinicalWorks-style
    // limit scaled down: 2 calls per 2 s window, then 429 without Retry-After until the window ends. A practice
    // of 3 patients still needs more calls than one window allows; each throttled attempt waits a longer backoff.
    meditech = await startTestSandbox({
      personality: 'meditech',
      rateLimit: { requests: 2, windowMs: 2000, window: 'fixed' },
      size: 30,
    });
    expect(meditech.fhirBaseUrl).toMatch(/\/v2\/uscore\/STU6$/);
    const types = ['Patient', 'Condition'];
    // MEDITECH serves clinical types per patient only: the patient strategy, as its profile says.
    const t = await integrationFor(types, meditech, { strategy: 'patient', rosterSearch: '_count=50' });
    await completesExactly(t, types, meditech);
    const state = await adminJson<{ rateLimit: { throttled: number } }>(meditech, '/admin/personality');
    expect(state.rateLimit.throttled).toBeGreaterThan(0);
    expect(new Set(await failedCallCodes(t.integrationId))).toEqual(new Set(['VENDOR_RATE_LIMITED']));
  });
});
