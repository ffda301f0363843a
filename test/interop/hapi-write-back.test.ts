/**
 * Write-back against HAPI FHIR JPA (a server this project did not write), through an open `fhir-server`
 * integration: an update with If-Match lands as version n+1; a stale base meets HAPI's own refusal of the stale
 * If-Match (409 Conflict, where the FHIR spec says 412) and takes the policy path; a conditional create
 * (If-None-Exist on our identifier) sent twice creates one resource. A small proxy in front of HAPI makes the two
 * races happen on cue — it saves someone else's edit at HAPI just before our update arrives, and sends our create
 * twice (the first answer lost) — while every answer is HAPI's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultWritePolicy } from '../../lib/writeback/authority.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { queueLocalChange, settled, wakeWriteBack, type WriteBackTenant } from '../integration/write-back-support.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { fhirJson, type Bundle, type FhirResource } from './hapi-fhir.js';
import { javaAndMaven } from './hapi-requirement.js';
import { registerHapi, useHapiSync } from './hapi-sync-support.js';

type Cue = { kind: 'edit-before-put'; path: string; elements: Record<string, unknown> } | { kind: 'post-twice' };

/** A pass-through to HAPI that, on cue, races our next write. */
async function startProxy(hapiBase: string): Promise<{
  base: string;
  cue(c: Cue): void;
  /** HAPI's answers to our writes: method and status. */
  answers: Array<{ method: string; status: number }>;
  close(): Promise<void>;
}> {
  const origin = new URL(hapiBase).origin;
  const cues: Cue[] = [];
  const answers: Array<{ method: string; status: number }> = [];
  const forward = async (method: string, url: string, headers: Record<string, string>, body?: Buffer) =>
    fetch(`${origin}${url}`, { method, headers, body: body && body.length > 0 ? body : undefined });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers))
          if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
        const body = Buffer.concat(chunks);
        const method = req.method ?? 'GET';
        const url = req.url ?? '/';
        const at = cues.findIndex(
          (c) =>
            (c.kind === 'edit-before-put' && method === 'PUT' && url.endsWith(c.path)) ||
            (c.kind === 'post-twice' && method === 'POST'),
        );
        const cue = at >= 0 ? cues.splice(at, 1)[0] : undefined;
        if (cue?.kind === 'edit-before-put') {
          const current = await fhirJson<FhirResource>(`${origin}${url}`);
          const { meta: _meta, ...rest } = current;
          await fhirJson(`${origin}${url}`, { method: 'PUT', body: { ...rest, ...cue.elements } });
        }
        if (cue?.kind === 'post-twice') await (await forward(method, url, headers, body)).arrayBuffer();
        const answer = await forward(method, url, headers, body);
        if (method !== 'GET') answers.push({ method, status: answer.status });
        const out: Record<string, string> = {};
        answer.headers.forEach((v, k) => {
          if (!['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(k)) out[k] = v;
        });
        res.writeHead(answer.status, out).end(Buffer.from(await answer.arrayBuffer()));
      })().catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = hapiBase.replace(origin, `http://127.0.0.1:${port}`);
  return {
    base,
    cue: (c) => cues.push(c),
    answers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describeWhenAvailable(__filename, 'write-back to HAPI FHIR JPA', [javaAndMaven], () => {
  const h = useHapiSync();
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let t: WriteBackTenant;

  beforeAll(async () => {
    proxy = await startProxy(h.hapi.baseUrl);
    const ids = await registerHapi(
      { harness: h.harness, hapi: { baseUrl: proxy.base } },
      {
        types: ['Patient', 'Appointment'],
      },
    );
    await h.harness.pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'Appointment', $3, 'test')`,
      [ids.tenantId, ids.integrationId, JSON.stringify(defaultWritePolicy('Appointment'))],
    );
    const kek = await KeyHierarchy.open({ pool: h.harness.pool, backend: await createKekProvider(h.harness.config) });
    t = { ...ids, keyring: new TenantKeyring({ pool: h.harness.pool, kek }) };
  }, 900_000);
  afterAll(async () => {
    await proxy?.close();
  });

  const appointmentAtHapi = async (): Promise<FhirResource> =>
    fhirJson<FhirResource>(`${h.hapi.baseUrl}/Appointment`, {
      method: 'POST',
      body: {
        resourceType: 'Appointment',
        status: 'booked',
        start: '2026-12-21T09:00:00Z',
        end: '2026-12-21T09:30:00Z',
        participant: [{ actor: { display: 'Synthetic Room 4' }, status: 'accepted' }],
      },
    });

  const queueUpdate = async (copy: FhirResource, elements: Record<string, unknown>): Promise<string> => {
    const base = Object.fromEntries(Object.keys(elements).map((e) => [e, copy[e] ?? null]));
    const id = copy.id!;
    return queueLocalChange(
      h.harness.pool,
      t,
      {
        resourceType: 'Appointment',
        resourceId: id,
        baseVersionId: copy.meta!.versionId!,
        payload: { kind: 'update', elements, base },
      },
      { ...copy, ...elements },
    );
  };
  const wake = () => wakeWriteBack(h.harness.temporal.client, h.harness.config.TEMPORAL_TASK_QUEUE, t);
  const read = (id: string) => fhirJson<FhirResource>(`${h.hapi.baseUrl}/Appointment/${id}`, { fresh: true });

  it('an update with If-Match lands as version n+1', async () => {
    const copy = await appointmentAtHapi();
    const changeId = await queueUpdate(copy, { status: 'cancelled' });
    await wake();
    expect(await settled(h.harness.pool, changeId)).toMatchObject({ status: 'sent', vendorVersionId: '2' });
    const after = await read(copy.id!);
    expect(after).toMatchObject({ status: 'cancelled', start: copy.start, meta: { versionId: '2' } });
  });

  it("a stale base meets HAPI's refusal (409): a local element is applied on the new version, a shared one parks a conflict", async () => {
    const local = await appointmentAtHapi();
    const answered = proxy.answers.length;
    proxy.cue({ kind: 'edit-before-put', path: `/Appointment/${local.id}`, elements: { status: 'arrived' } });
    const localChange = await queueUpdate(local, { status: 'noshow' });
    await wake();
    expect(await settled(h.harness.pool, localChange)).toMatchObject({ status: 'sent', vendorVersionId: '3' });
    expect(await read(local.id!)).toMatchObject({ status: 'noshow', meta: { versionId: '3' } });
    // HAPI refused the stale If-Match itself (with 409 Conflict, where the FHIR spec says 412), then took the next.
    expect(proxy.answers.slice(answered)).toEqual([
      { method: 'PUT', status: 409 },
      { method: 'PUT', status: 200 },
    ]);

    const shared = await appointmentAtHapi();
    const edited = { start: '2026-12-22T10:00:00Z', end: '2026-12-22T10:30:00Z' };
    proxy.cue({ kind: 'edit-before-put', path: `/Appointment/${shared.id}`, elements: edited });
    const sharedChange = await queueUpdate(shared, { start: '2026-12-23T08:00:00Z' });
    await wake();
    const parked = await settled(h.harness.pool, sharedChange);
    expect(parked.status).toBe('conflict');
    const conflict = await h.harness.pool.query<{ reason: string; elements: string[] }>(
      'SELECT reason, elements FROM reconcile_conflicts WHERE id = $1',
      [parked.conflictId],
    );
    expect(conflict.rows[0]).toEqual({ reason: 'stale-write', elements: ['start'] });
    expect(await read(shared.id!)).toMatchObject({ ...edited, meta: { versionId: '2' } });
  });

  it('a conditional create sent twice creates one resource', async () => {
    const localId = `local-${randomUUID()}`;
    const resource = {
      resourceType: 'Appointment',
      status: 'proposed',
      start: '2026-12-29T14:00:00Z',
      end: '2026-12-29T14:15:00Z',
      participant: [{ actor: { display: 'Synthetic Room 9' }, status: 'needs-action' }],
    };
    const changeId = await queueLocalChange(
      h.harness.pool,
      t,
      { resourceType: 'Appointment', resourceId: localId, baseVersionId: null, payload: { kind: 'create', resource } },
      { ...resource, id: localId },
    );
    proxy.cue({ kind: 'post-twice' });
    await wake();
    const change = await settled(h.harness.pool, changeId);
    // The second POST met the first one's resource: HAPI answered 200 with it, creating nothing.
    expect(change).toMatchObject({ status: 'sent', vendorStatus: 200, vendorVersionId: '1' });
    const found = await fhirJson<Bundle>(
      `${h.hapi.baseUrl}/Appointment?identifier=${encodeURIComponent(`urn:ehr-connectors:outbox-change|${changeId}`)}`,
      { fresh: true },
    );
    expect(found.entry?.map((e) => e.resource?.id)).toEqual([change.vendorResourceId]);
  });
});
