/**
 * The write-back part of `npm run bench:reconcile`: BENCH_WRITES changes of Appointment status queued as the gateway
 * queues them (encrypted outbox rows, audited), drained by the real writeBack workflow through the vendor door
 * (GET, decide, PUT with If-Match and the change's Idempotency-Key, the vendor's answer stored encrypted) — and,
 * as the floor in the same run, the same number of GET + PUT with If-Match sent straight to the sandbox by one
 * client (no outbox, no Temporal, no encryption, no audit). Duplicates are counted from the sandbox's write ledger:
 * a change whose key the vendor carried out more than once.
 */
import type { Client } from '@temporalio/client';
import type { TenantKeyring } from '../lib/keys/keyring.js';
import type { Pool } from '../lib/store/pool.js';
import { withTransaction } from '../lib/store/pool.js';
import { enqueueChange } from '../lib/writeback/outbox.js';
import type { SandboxHandle } from '../sandbox/index.js';
import { temporalOutboxNotifier } from '../workers/outbox-notifier.js';

export interface WriteBackFigures {
  changes: number;
  sent: number;
  seconds: number;
  floorSeconds: number;
  /** Changes the vendor carried out more than once (extra effects summed). */
  duplicates: number;
}

interface Target {
  sandbox: SandboxHandle;
  pool: Pool;
  keyring: TenantKeyring;
  temporal: Client;
  taskQueue: string;
  tenantId: string;
  integrationId: string;
}

const STATUSES = ['booked', 'arrived', 'fulfilled'];
const FHIR_JSON = 'application/fhir+json';

async function adminGet<T>(sandbox: SandboxHandle, path: string): Promise<T> {
  const res = await fetch(`${sandbox.url}${path}`, { headers: { 'x-sandbox-admin': sandbox.adminToken } });
  if (!res.ok) throw new Error(`sandbox admin ${path} answered ${res.status}`);
  return (await res.json()) as T;
}

async function appointmentIds(t: Target, offset: number, count: number): Promise<string[]> {
  const { rows } = await t.pool.query<{ resource_id: string }>(
    `SELECT resource_id FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = 'Appointment'
      ORDER BY resource_id OFFSET $3 LIMIT $4`,
    [t.tenantId, t.integrationId, offset, count],
  );
  return rows.map((r) => r.resource_id);
}

const nextStatus = (current: unknown): string => STATUSES.find((s) => s !== current) ?? 'booked';

async function queueAndDrain(
  t: Target,
  ids: string[],
): Promise<{ changeIds: string[]; seconds: number; sent: number }> {
  const audit = { actor: 'bench:reconcile', correlationId: 'bench-write-back' };
  const changeIds: string[] = [];
  for (const id of ids) {
    const copy = await adminGet<Record<string, unknown>>(t.sandbox, `/admin/resource/Appointment/${id}`);
    const status = nextStatus(copy.status);
    const queued = await withTransaction(t.pool, (client) =>
      enqueueChange(
        client,
        t.keyring,
        {
          tenantId: t.tenantId,
          integrationId: t.integrationId,
          resourceType: 'Appointment',
          resourceId: id,
          origin: 'gateway',
          requestedBy: 'bench:reconcile',
          baseVersionId: (copy.meta as { versionId: string }).versionId,
          payload: { kind: 'update', elements: { status }, base: { status: copy.status ?? null } },
        },
        audit,
      ),
    );
    changeIds.push(queued.id);
  }
  const started = performance.now();
  await temporalOutboxNotifier(t.temporal, t.taskQueue).changesQueued(t);
  for (;;) {
    const { rows } = await t.pool.query<{ settled: string; sent: string }>(
      `SELECT count(*) FILTER (WHERE status <> 'pending')::text AS settled,
              count(*) FILTER (WHERE status = 'sent')::text AS sent
         FROM outbox_changes WHERE id = ANY($1::text[])`,
      [changeIds],
    );
    if (Number(rows[0]!.settled) === changeIds.length)
      return { changeIds, seconds: (performance.now() - started) / 1000, sent: Number(rows[0]!.sent) };
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function duplicatesOf(t: Target, changeIds: string[]): Promise<number> {
  const { rows } = await t.pool.query<{ idempotency_key: string }>(
    'SELECT idempotency_key FROM outbox_changes WHERE id = ANY($1::text[])',
    [changeIds],
  );
  const keys = new Set(rows.map((r) => r.idempotency_key));
  const { ledger } = await adminGet<{ ledger: Array<{ key: string; effects: number }> }>(t.sandbox, '/admin/writes');
  const effects = new Map<string, number>();
  for (const entry of ledger)
    if (keys.has(entry.key)) effects.set(entry.key, (effects.get(entry.key) ?? 0) + entry.effects);
  return [...effects.values()].reduce((n, e) => n + Math.max(0, e - 1), 0);
}

/** The floor: one client's GET + PUT with If-Match (and an Idempotency-Key, which the sandbox requires) per record. */
async function floorWrites(t: Target, ids: string[], token: string): Promise<number> {
  const started = performance.now();
  for (const id of ids) {
    const url = `${t.sandbox.fhirBaseUrl}/Appointment/${id}`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: FHIR_JSON } });
    const copy = (await res.json()) as Record<string, unknown> & { meta: { versionId: string } };
    const put = await fetch(url, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': FHIR_JSON,
        'if-match': `W/"${copy.meta.versionId}"`,
        'idempotency-key': `bench-floor-${id}-${copy.meta.versionId}`,
      },
      body: JSON.stringify({ ...copy, status: nextStatus(copy.status) }),
    });
    if (!put.ok) throw new Error(`floor PUT answered ${put.status}`);
    await put.arrayBuffer();
  }
  return (performance.now() - started) / 1000;
}

/** Waits until the write-backs reconciliation queued have been sent, so the timing below is of its own changes. */
async function outboxDrained(t: Target): Promise<void> {
  for (;;) {
    const { rows } = await t.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM outbox_changes WHERE integration_id = $1 AND status = 'pending'`,
      [t.integrationId],
    );
    if (Number(rows[0]!.n) === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One write-back measurement on records `offset …` (the floor on the next `count`, so no record is written twice). */
export async function writeBackPhase(
  t: Target,
  opts: { offset: number; count: number; floorToken: string },
): Promise<WriteBackFigures> {
  await outboxDrained(t);
  const ids = await appointmentIds(t, opts.offset, opts.count * 2);
  const drained = await queueAndDrain(t, ids.slice(0, opts.count));
  const floorSeconds = await floorWrites(t, ids.slice(opts.count), opts.floorToken);
  return {
    changes: drained.changeIds.length,
    sent: drained.sent,
    seconds: drained.seconds,
    floorSeconds,
    duplicates: await duplicatesOf(t, drained.changeIds),
  };
}
