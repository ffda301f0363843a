/**
 * The decoded diff of a conflict (GET /conflicts/:id on the codec server) is served only to a caller holding the
 * decode role, and audited before the values leave; a caller without the role, or without a token, is refused and
 * the refusal audited. Real HTTPS, real JWTs, real audit rows; the conflict opened with `openConflict`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { conflictDiff } from '../../lib/writeback/conflicts.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import type { TestCodecServer } from './codec-support.js';
import { httpsCall, startTestCodecServer } from './codec-support.js';
import type { OpenedConflict } from './conflict-support.js';
import { openTestConflict, testKeyring } from './conflict-support.js';
import { registerSandboxTenant, useSyncHarness } from './support.js';

const LOCAL_START = '2029-08-21T08:15:42.000Z';
recordIdentifiers([LOCAL_START]);

const h = useSyncHarness({ worker: false });
let keyring: TenantKeyring;
let server: TestCodecServer;
let conflict: OpenedConflict;

beforeAll(async () => {
  keyring = await testKeyring(h);
  const { tenantId, integrationIds } = await registerSandboxTenant(h.pool, h.sandbox, {
    resourceTypes: ['Patient', 'Appointment'],
  });
  conflict = await openTestConflict(
    h,
    keyring,
    { tenantId, integrationId: integrationIds[0]! },
    {
      local: { start: LOCAL_START },
    },
  );
  server = await startTestCodecServer(h.config, h.pool, 'http://127.0.0.1:18233', {
    conflicts: { diff: (id) => conflictDiff(h.pool, keyring, id) },
  });
});

afterAll(async () => {
  await server?.close();
});

const get = (id: string, token?: string) =>
  httpsCall(`${server.url}/conflicts/${id}`, server.caPem, {
    method: 'GET',
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

async function audited(action: string, actor: string) {
  const res = await h.pool.query<{ outcome: string; details: Record<string, unknown> }>(
    'SELECT outcome, details FROM audit_events WHERE action = $1 AND actor = $2 ORDER BY seq',
    [action, actor],
  );
  return res.rows;
}

describe('GET /conflicts/:id', () => {
  it('refuses a caller without the decode role, and one without a token; both refusals are audited', async () => {
    const noRole = await get(conflict.conflictId, await server.token({ sub: 'clerk@example.test', roles: [] }));
    expect(noRole.status).toBe(403);
    expect(JSON.stringify(noRole.body)).not.toContain(LOCAL_START);
    const refusals = await audited('reconcile.conflict_decode', 'clerk@example.test');
    expect(refusals).toEqual([expect.objectContaining({ outcome: 'failure' })]);
    expect(refusals[0]!.details).toMatchObject({ status: 403, reason: 'role phi-decoder required to decode' });
    const anonymous = await get(conflict.conflictId);
    expect(anonymous.status).toBe(401);
    expect(JSON.stringify(anonymous.body)).not.toContain(LOCAL_START);
  });

  it('serves both sides of the disputed elements to the decode role, audited by element name only', async () => {
    const sub = `decoder-${randomUUID().slice(0, 8)}@example.test`;
    const res = await get(conflict.conflictId, await server.token({ sub, roles: ['phi-decoder'] }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      conflictId: conflict.conflictId,
      resourceType: 'Appointment',
      resourceId: conflict.resourceId,
      reason: 'both-changed',
      elements: ['start'],
      local: { start: LOCAL_START },
      remote: { start: conflict.vendor.start },
    });
    const rows = await audited('reconcile.conflict_decoded', sub);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({ conflictId: conflict.conflictId, elements: ['start'] });
    expect(JSON.stringify(rows[0]!.details)).not.toContain(LOCAL_START);
  });

  it('answers 404 for an unknown conflict and 400 for a malformed id, without decoding anything', async () => {
    const token = await server.token({ roles: ['phi-decoder'] });
    expect((await get(randomUUID(), token)).status).toBe(404);
    expect((await get('not-a-uuid', token)).status).toBe(400);
  });
});
