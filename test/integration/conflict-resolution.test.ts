/**
 * A conflict waits for a person, against the real Temporal dev server, PostgreSQL, an in-process worker and the
 * sandbox vendor: opened with `openConflict` (as reconciliation and write-back open them) and started through the
 * real notifier, its workflow reminds and escalates on short timers (audit, log and the alert hook); the `resolve`
 * update's validator refuses an unknown element, a partial decision and a second resolution; `take remote` makes
 * the local copy the vendor's; `fields start=local,end=remote` queues exactly one write-back change carrying only
 * `start` and takes `end` from the vendor; a change that opened a conflict is cancelled as superseded; a record the
 * vendor deleted is tombstoned or re-created whole; no value of either side reaches a workflow history.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conflictState, resolveConflict } from '../../client/conflict-client.js';
import { ConflictError, InvalidArgumentError } from '../../lib/errors/index.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { withTransaction } from '../../lib/store/pool.js';
import type { ConflictAlert } from '../../lib/writeback/conflict-alerts.js';
import { getConflict } from '../../lib/writeback/conflict-repository.js';
import { enqueueChange, openChange } from '../../lib/writeback/outbox.js';
import { getOutboxChange, listOutboxChanges } from '../../lib/writeback/outbox-repository.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import type { Resource } from './conflict-support.js';
import { decodedHistoryText, localCopy, openTestConflict, testKeyring, vendorAppointment } from './conflict-support.js';
import { registerSandboxTenant, sandboxAdmin, testActor, useSyncHarness } from './support.js';

// Synthetic local edits: never in a workflow history, a log line or an error output.
const LOCAL_START = '2029-07-13T13:37:11.000Z';
const LOCAL_END = '2029-07-13T14:41:23.000Z';
const HOOK_TOKEN = 'synthetic-conflict-hook-token-77c1';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'conflicts-'));
const posts: ConflictAlert[] = [];
const hook = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString('utf8')));
  req.on('end', () => {
    posts.push(JSON.parse(body) as ConflictAlert);
    res.writeHead(204).end();
  });
});
const hookRef = path.join(tmp, 'alert-url');
recordIdentifiers([LOCAL_START, LOCAL_END, HOOK_TOKEN]);

// Before the harness's own setup (hooks run in order): the configuration checks the reference's file at load.
beforeAll(async () => {
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const { port } = hook.address() as AddressInfo;
  fs.writeFileSync(hookRef, `http://127.0.0.1:${port}/hooks/ops?token=${HOOK_TOKEN}\n`, { mode: 0o600 });
});

const h = useSyncHarness({
  config: {
    EHR_CONFLICT_REMIND_SECONDS: '2',
    EHR_CONFLICT_ESCALATE_SECONDS: '4',
    EHR_BREAK_GLASS_ALERT_URL: `file:${hookRef}`,
  },
});
let keyring: TenantKeyring;
let scope: { tenantId: string; integrationId: string };
let quietIntegrationId: string;

beforeAll(async () => {
  keyring = await testKeyring(h);
  const { tenantId, integrationIds } = await registerSandboxTenant(h.pool, h.sandbox, {
    resourceTypes: ['Patient', 'Appointment'],
    integrations: 2,
  });
  scope = { tenantId, integrationId: integrationIds[0]! };
  quietIntegrationId = integrationIds[1]!;
});

afterAll(async () => {
  await new Promise((resolve) => hook.close(resolve));
});

const record = (resourceId: string) => ({ ...scope, resourceType: 'Appointment', resourceId });
const resolve = (conflictId: string, request: Parameters<typeof resolveConflict>[3]) =>
  resolveConflict(h.pool, h.temporal.client, conflictId, request, testActor);

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
}

async function auditDetails(action: string, conflictId: string): Promise<Array<Record<string, unknown>>> {
  const res = await h.pool.query<{ details: Record<string, unknown> }>(
    `SELECT details FROM audit_events WHERE action = $1 AND details->>'conflictId' = $2 ORDER BY seq`,
    [action, conflictId],
  );
  return res.rows.map((r) => r.details);
}

function withoutMeta(resource: Resource): Resource {
  const { meta: _meta, ...rest } = resource;
  return rest;
}

describe('conflictResolution', () => {
  it('reminds, then escalates, on durable timers: audit events, and the alert hook with ids only', async () => {
    const c = await openTestConflict(h, keyring, scope, { local: { start: LOCAL_START } });
    const deadline = Date.now() + 30_000;
    // The status turns `escalated` as the escalation is raised; its alert is listed once it went out.
    while ((await conflictState(h.temporal.client, c.conflictId)).alerts.length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const state = await conflictState(h.temporal.client, c.conflictId);
    expect(state).toMatchObject({
      status: 'escalated',
      reason: 'both-changed',
      elements: ['start'],
      alerts: ['reconcile.conflict-reminder', 'reconcile.conflict-escalated'],
    });
    expect(await auditDetails('reconcile.conflict_reminded', c.conflictId)).toHaveLength(1);
    expect(await auditDetails('reconcile.conflict_escalated', c.conflictId)).toHaveLength(1);
    const mine = posts.filter((p) => p.conflictId === c.conflictId);
    expect(mine.map((p) => p.event)).toEqual(['reconcile.conflict-reminder', 'reconcile.conflict-escalated']);
    expect(mine[0]).toMatchObject({
      elements: ['start'],
      reason: 'both-changed',
      workflowId: `conflict-${c.conflictId}`,
    });
    expect(JSON.stringify(mine)).not.toContain(c.resourceId);
    // Still open: an escalated conflict is resolved like any other.
    expect((await resolve(c.conflictId, { take: 'remote', by: 'nurse.lee' })).resolution).toEqual({ start: 'remote' });
  });

  it('refuses an unknown element, a partial decision and a second resolution; the conflict stays open until then', async () => {
    const c = await openTestConflict(h, keyring, scope, { local: { start: LOCAL_START, end: LOCAL_END } });
    const unknown = await refusal(
      resolve(c.conflictId, { fields: { start: 'local', end: 'local', status: 'local' }, by: 'a.b' }),
    );
    expect(unknown).toBeInstanceOf(InvalidArgumentError);
    expect(unknown.message).toMatch(/status is not an element of this conflict/);
    const partial = await refusal(resolve(c.conflictId, { fields: { start: 'local' }, by: 'a.b' }));
    expect(partial.message).toMatch(/undecided: end/);
    const malformed = await refusal(resolve(c.conflictId, { take: 'theirs' as 'local', by: 'a.b' }));
    expect(malformed.message).toMatch(/take: local or remote/);
    expect((await getConflict(h.pool, c.conflictId))?.status).toBe('open');
    expect(await auditDetails('reconcile.conflict_resolve_refused', c.conflictId)).toHaveLength(3);

    // Two people at once: the workflow's validator lets exactly one resolution through.
    const handle = h.temporal.client.workflow.getHandle(`conflict-${c.conflictId}`);
    const both = await Promise.allSettled(
      (['nurse.lee', 'dr.kim'] as const).map((by) =>
        handle.executeUpdate('resolve', { args: [{ take: by === 'nurse.lee' ? 'remote' : 'local', by }] }),
      ),
    );
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = both.find((r) => r.status === 'rejected')!;
    expect(String(((loser.reason as Error).cause as Error).message)).toMatch(
      /already resolved by|another resolution of conflict .* is being applied/,
    );
    const winner = (await getConflict(h.pool, c.conflictId))!.resolvedBy!;
    expect(await handle.result()).toMatchObject({ resolvedBy: winner });
    // Once resolved, ehrctl says so from the row: the workflow has completed.
    const second = await refusal(resolve(c.conflictId, { take: 'local', by: 'dr.kim' }));
    expect(second).toBeInstanceOf(ConflictError);
    expect(second.message).toContain(`already resolved by ${winner}`);
  });

  it("take remote: the local copy becomes the vendor's current version, and the conflict is resolved", async () => {
    const c = await openTestConflict(h, keyring, scope, { local: { start: LOCAL_START, end: LOCAL_END } });
    const before = await localCopy(h, keyring, record(c.resourceId));
    expect(before?.resource.start).toBe(LOCAL_START);
    const outcome = await resolve(c.conflictId, { take: 'remote', by: 'nurse.lee' });
    expect(outcome).toMatchObject({
      resolution: { start: 'remote', end: 'remote' },
      resolvedBy: 'nurse.lee',
      changeId: null,
    });
    const after = await localCopy(h, keyring, record(c.resourceId));
    const vendorMeta = c.vendor.meta as { versionId: string };
    expect(after?.versionId).toBe(vendorMeta.versionId);
    expect(withoutMeta(after!.resource)).toEqual(withoutMeta(c.vendor));
    const row = await getConflict(h.pool, c.conflictId);
    expect(row).toMatchObject({
      status: 'resolved',
      resolvedBy: 'nurse.lee',
      resolution: { start: 'remote', end: 'remote' },
    });
    expect(await listOutboxChanges(h.pool, { integrationId: scope.integrationId })).not.toContainEqual(
      expect.objectContaining({ conflictId: c.conflictId }),
    );
    const [event] = await auditDetails('reconcile.conflict_resolved', c.conflictId);
    expect(event).toMatchObject({
      resolution: { start: 'remote', end: 'remote' },
      vendorVersionId: vendorMeta.versionId,
    });
    const history = await decodedHistoryText(h, c.conflictId);
    expect(history).toContain('nurse.lee');
    for (const value of [LOCAL_START, LOCAL_END, c.vendor.start as string, c.vendor.end as string])
      expect(history).not.toContain(value);
  });

  it('fields start=local,end=remote: one write-back change with only start; end comes from the vendor', async () => {
    const c = await openTestConflict(h, keyring, scope, { local: { start: LOCAL_START, end: LOCAL_END } });
    const outcome = await resolve(c.conflictId, { fields: { start: 'local', end: 'remote' }, by: 'dr.kim' });
    const changes = (await listOutboxChanges(h.pool, { integrationId: scope.integrationId })).filter(
      (ch) => ch.conflictId === c.conflictId,
    );
    expect(changes).toHaveLength(1);
    const change = changes[0]!;
    expect(change).toMatchObject({
      id: outcome.changeId,
      origin: 'resolution',
      kind: 'update',
      resourceId: c.resourceId,
      changedElements: ['start'],
      requestedBy: 'dr.kim',
      baseVersionId: (c.vendor.meta as { versionId: string }).versionId,
    });
    expect(await openChange(h.pool, keyring, change.id)).toEqual({
      kind: 'update',
      elements: { start: LOCAL_START },
      base: { start: c.vendor.start },
    });
    const after = await localCopy(h, keyring, record(c.resourceId));
    expect(after?.resource.start).toBe(LOCAL_START);
    expect(after?.resource.end).toBe(c.vendor.end);
    expect(after?.resource.participant).toEqual(c.vendor.participant);
    const history = await decodedHistoryText(h, c.conflictId);
    for (const value of [LOCAL_START, LOCAL_END, c.vendor.start as string]) expect(history).not.toContain(value);
  });

  it('a change that opened a conflict is cancelled as superseded; its other elements go in the resolution', async () => {
    // An integration whose writeBack workflow no resolution has woken yet: nothing sends these changes meanwhile.
    const quiet = { tenantId: scope.tenantId, integrationId: quietIntegrationId };
    const vendor = await vendorAppointment(h);
    const gatewayChange = (elements: Record<string, unknown>) =>
      withTransaction(h.pool, (client) =>
        enqueueChange(
          client,
          keyring,
          {
            ...quiet,
            resourceType: 'Appointment',
            resourceId: vendor.id as string,
            origin: 'gateway',
            requestedBy: 'consumer:scheduler',
            baseVersionId: '1',
            payload: {
              kind: 'update',
              elements,
              base: Object.fromEntries(Object.keys(elements).map((e) => [e, null])),
            },
          },
          testActor,
        ),
      );
    const parkOn = (conflictId: string, id: string) =>
      h.pool.query(`UPDATE outbox_changes SET status = 'conflict', conflict_id = $1 WHERE id = $2`, [conflictId, id]);
    // A gateway change of start and status, which write-back found stale on start (and parked, as its settle does).
    const { id: changeId } = await gatewayChange({ start: LOCAL_START, status: 'cancelled' });
    const c = await openTestConflict(h, keyring, quiet, {
      local: { start: LOCAL_START },
      reason: 'stale-write',
      changeId,
      vendor,
    });
    await parkOn(c.conflictId, changeId);
    // A later change, parked on the same conflict.
    const { id: parkedId } = await gatewayChange({ status: 'noshow', start: LOCAL_END });
    await parkOn(c.conflictId, parkedId);
    const outcome = await resolve(c.conflictId, { take: 'remote', by: 'nurse.lee' });
    expect(outcome.cancelledChangeIds).toEqual([changeId, parkedId]);
    for (const id of [changeId, parkedId]) expect((await getOutboxChange(h.pool, id))?.status).toBe('cancelled');
    // Their elements outside the conflict still go, the newest value of each; the disputed start does not.
    const carried = await getOutboxChange(h.pool, outcome.changeId!);
    expect(carried).toMatchObject({ origin: 'resolution', changedElements: ['status'] });
    expect(await openChange(h.pool, keyring, carried!.id)).toMatchObject({ elements: { status: 'noshow' } });
    expect(await auditDetails('writeback.cancelled', c.conflictId)).toEqual([
      { changeId, reason: 'superseded-by-resolution', conflictId: c.conflictId },
      { changeId: parkedId, reason: 'superseded-by-resolution', conflictId: c.conflictId },
    ]);
  });

  it('a record the vendor deleted: take remote tombstones it; take local re-creates it (a create change)', async () => {
    const gone = await openTestConflict(h, keyring, scope, {
      local: { start: LOCAL_START, end: LOCAL_END },
      reason: 'deleted-remote',
    });
    const again = await openTestConflict(h, keyring, scope, { local: { end: LOCAL_END }, reason: 'deleted-remote' });
    for (const id of [gone.resourceId, again.resourceId])
      await sandboxAdmin(h.sandbox, 'POST', '/admin/records/delete', { resourceType: 'Appointment', ids: [id] });
    const mixed = await refusal(resolve(gone.conflictId, { fields: { start: 'local', end: 'remote' }, by: 'a.b' }));
    expect(mixed.message).toMatch(/decided for the whole record/);
    expect(await resolve(gone.conflictId, { take: 'remote', by: 'nurse.lee' })).toMatchObject({ tombstoned: true });
    expect(await localCopy(h, keyring, record(gone.resourceId))).toBeUndefined();
    const recreated = await resolve(again.conflictId, { take: 'local', by: 'nurse.lee' });
    expect(recreated).toMatchObject({ recreate: true });
    const change = await getOutboxChange(h.pool, recreated.changeId!);
    expect(change).toMatchObject({ kind: 'create', origin: 'resolution', resourceId: again.resourceId });
    const payload = await openChange(h.pool, keyring, change!.id);
    expect(payload.kind === 'create' && payload.resource.end).toBe(LOCAL_END);
    expect(payload.kind === 'create' && 'id' in payload.resource).toBe(false);
    const [event] = await auditDetails('reconcile.conflict_resolved', again.conflictId);
    expect(event).toMatchObject({ recreate: true, vendorGone: true });
  });
});
