/**
 * The sandbox's Bulk Data Access IG export over real HTTP: kick-off rules, status polling, the
 * manifest, streamed NDJSON files, cancellation, expiry, and every misbehaviour a test can ask for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import type { PersonalityId } from '../../sandbox/personalities.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';
import { bulkLog, kickOff, pollUntilDone, setBulkBehaviour } from '../../sandbox/test-bulk.js';

const open: SandboxHandle[] = [];
/** A token for a client_secret_basic / client_secret_post personality. */
async function secretToken(sb: SandboxHandle): Promise<string> {
  const secret = 'sandbox-bulk-test-secret-0123456789';
  const method = sb.personality === 'nextgen' ? 'client_secret_post' : 'client_secret_basic';
  const { client_id: id } = await adminJson<{ client_id: string }>(sb, '/admin/clients', {
    token_endpoint_auth_method: method,
    client_secret: secret,
    scopes: ['system/*.read'],
  });
  const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.read' });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'client_secret_basic')
    headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  else {
    form.set('client_id', id);
    form.set('client_secret', secret);
  }
  const res = await fetch(sb.tokenUrl, { method: 'POST', headers, body: form.toString() });
  return ((await res.json()) as { access_token: string }).access_token;
}
async function sandbox(
  personality: PersonalityId = 'standard',
  size = 400,
): Promise<{ sb: SandboxHandle; token: string }> {
  const sb = await startSandbox({ size, personality });
  open.push(sb);
  const syntax = ['standard', 'athenahealth', 'meditech'].includes(personality) ? 'rs' : 'read';
  if (personality === 'oracle-health' || personality === 'nextgen') return { sb, token: await secretToken(sb) };
  const client = await createTestClient(sb, { scopes: [`system/*.${syntax}`] });
  return { sb, token: await client.token() };
}
afterAll(async () => {
  await Promise.all(open.map((sb) => sb.close()));
});

async function download(url: string, token?: string): Promise<{ status: number; lines: string[] }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  return { status: res.status, lines: text.split('\n').filter((l) => l.length > 0) };
}

describe('sandbox Bulk Data $export (standard)', () => {
  let sb: SandboxHandle;
  let token: string;
  beforeAll(async () => {
    ({ sb, token } = await sandbox('standard', 400));
  });

  it('kick-off needs Prefer: respond-async, Accept: application/fhir+json and a token', async () => {
    const url = `${sb.fhirBaseUrl}/$export`;
    const noPrefer = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
    });
    expect(noPrefer.status).toBe(400);
    expect(((await noPrefer.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const noAccept = await fetch(url, { headers: { authorization: `Bearer ${token}`, prefer: 'respond-async' } });
    expect(noAccept.status).toBe(400);
    const noToken = await fetch(url, { headers: { prefer: 'respond-async', accept: 'application/fhir+json' } });
    expect(noToken.status).toBe(401);
    expect((await kickOff(sb, token, 'system', { _outputFormat: 'text/csv' })).status).toBe(400);
    expect((await kickOff(sb, token, 'system', { _type: 'Nonsense' })).status).toBe(400);
  });

  it('exports every record of the requested types: 202 polls, then a manifest whose files hold them all', async () => {
    await setBulkBehaviour(sb, { preparePolls: 2, retryAfterSeconds: 0, resourcesPerFile: 50 });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient,Observation' });
    expect(k.status).toBe(202);
    const { manifest, polls } = await pollUntilDone(sb, k.statusUrl, token);
    expect(polls.filter((p) => p.status === 202)).toHaveLength(2);
    expect(polls[0]?.progress).toMatch(/preparing/);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toContain('$export');
    expect(Date.parse(manifest.transactionTime)).toBeGreaterThan(0);
    const expected = await adminJson<{ records: Array<{ id: string }> }>(sb, '/admin/manifest?type=Observation');
    const obsFiles = manifest.output.filter((o) => o.type === 'Observation');
    expect(obsFiles.length).toBe(Math.ceil(expected.records.length / 50));
    const ids: string[] = [];
    for (const f of obsFiles) {
      const { status, lines } = await download(f.url, token);
      expect(status).toBe(200);
      expect(lines).toHaveLength(f.count);
      ids.push(...lines.map((l) => (JSON.parse(l) as { id: string }).id));
    }
    expect(ids.sort()).toEqual(expected.records.map((r) => r.id).sort());
    expect(manifest.output.some((o) => o.type === 'Encounter')).toBe(false);
    await setBulkBehaviour(sb, null);
  });

  it('a file needs the bearer token when requiresAccessToken is true', async () => {
    const k = await kickOff(sb, token, 'system', { _type: 'Condition' });
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    const url = (manifest.output[0] as { url: string }).url;
    expect((await download(url)).status).toBe(401);
    expect((await download(url, token)).status).toBe(200);
    const log = await bulkLog(sb);
    expect(log.downloads.filter((d) => d.file === url.split('/').pop()).map((d) => [d.status, d.bearer])).toEqual([
      [401, false],
      [200, true],
    ]);
  });

  it('_since exports only later changes and lists deletions in deleted[] as DELETE bundles', async () => {
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const modified = await adminJson<{ modified: Array<{ id: string }> }>(sb, '/admin/records/modify', {
      resourceType: 'Encounter',
      count: 3,
    });
    const deleted = await adminJson<{ deleted: Array<{ id: string }> }>(sb, '/admin/records/delete', {
      resourceType: 'Encounter',
      count: 2,
    });
    const k = await kickOff(sb, token, 'system', { _type: 'Encounter', _since: since });
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    const out = await download((manifest.output[0] as { url: string }).url, token);
    const got = out.lines.map((l) => (JSON.parse(l) as { id: string }).id).sort();
    const deletedIds = new Set(deleted.deleted.map((d) => d.id));
    expect(got).toEqual(
      modified.modified
        .map((m) => m.id)
        .filter((id) => !deletedIds.has(id))
        .sort(),
    );
    expect(manifest.deleted).toHaveLength(1);
    const del = await download((manifest.deleted?.[0] as { url: string }).url, token);
    const bundle = JSON.parse(del.lines[0] as string) as {
      type: string;
      entry: Array<{ request: { method: string; url: string } }>;
    };
    expect(bundle.type).toBe('transaction');
    expect(bundle.entry.map((e) => e.request.method)).toEqual(['DELETE', 'DELETE']);
    expect(bundle.entry.map((e) => e.request.url.split('/')[1]).sort()).toEqual([...deletedIds].sort());
  });

  it('_typeFilter narrows by _lastUpdated; other criteria are refused', async () => {
    const k = await kickOff(sb, token, 'system', {
      _type: 'Patient',
      _typeFilter: 'Patient?_lastUpdated=le2024-01-01T00:00:09Z',
    });
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    expect(manifest.output[0]?.count).toBe(10);
    expect((await kickOff(sb, token, 'system', { _type: 'Patient', _typeFilter: 'Patient?name=x' })).status).toBe(400);
  });

  it('DELETE on the status URL cancels the export: 202, then polls answer 404', async () => {
    await setBulkBehaviour(sb, { preparePolls: 5, retryAfterSeconds: 0 });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    const del = await fetch(k.statusUrl, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(202);
    const poll = await fetch(k.statusUrl, { headers: { authorization: `Bearer ${token}` } });
    expect(poll.status).toBe(404);
    expect((await bulkLog(sb)).deletes.some((d) => k.statusUrl.endsWith(d.jobId) && d.status === 202)).toBe(true);
    await setBulkBehaviour(sb, null);
  });

  it('files expire: status and downloads answer 404 afterwards', async () => {
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    await adminJson(sb, '/admin/bulk/expire', {});
    expect((await download((manifest.output[0] as { url: string }).url, token)).status).toBe(404);
    expect((await fetch(k.statusUrl, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });
});

describe('sandbox Bulk Data misbehaviour on request', () => {
  let sb: SandboxHandle;
  let token: string;
  beforeAll(async () => {
    ({ sb, token } = await sandbox('standard', 200));
  });

  it('429 when polled before Retry-After, Retry-After as an HTTP-date, transient 5xx on poll', async () => {
    await setBulkBehaviour(sb, {
      preparePolls: 3,
      retryAfterSeconds: 2,
      retryAfterAsDate: true,
      enforcePollSpacing: true,
    });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const first = await fetch(k.statusUrl, auth);
    expect(first.status).toBe(202);
    const retryAfter = first.headers.get('retry-after') as string;
    expect(Number.isNaN(Date.parse(retryAfter))).toBe(false);
    expect(/^\d+$/.test(retryAfter)).toBe(false);
    const tooSoon = await fetch(k.statusUrl, auth);
    expect(tooSoon.status).toBe(429);
    expect(tooSoon.headers.get('retry-after')).toBeTruthy();
    await setBulkBehaviour(sb, { pollErrors: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const transient = await fetch(k.statusUrl, auth);
    expect(transient.status).toBe(503);
    expect(((await transient.json()) as { issue: Array<{ code: string }> }).issue[0]?.code).toBe('transient');
    const log = await bulkLog(sb);
    const polls = log.polls.filter((p) => k.statusUrl.endsWith(p.jobId));
    expect(polls.map((p) => p.status)).toEqual([202, 429, 503]);
    expect(polls[2]?.sinceLastMs).toBeGreaterThanOrEqual(2000);
    await setBulkBehaviour(sb, null);
  });

  it('files and status on another host, no token needed, and what the client sent there is recorded', async () => {
    await setBulkBehaviour(sb, {
      filesOnOtherHost: true,
      statusOnOtherHost: true,
      requiresAccessToken: false,
      retryAfterSeconds: 0,
    });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    expect(new URL(k.statusUrl).origin).toBe(sb.otherOrigin);
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    expect(manifest.requiresAccessToken).toBe(false);
    const url = (manifest.output[0] as { url: string }).url;
    expect(new URL(url).origin).toBe(sb.otherOrigin);
    expect((await download(url)).status).toBe(200);
    const d = (await bulkLog(sb)).downloads.at(-1);
    expect(d).toMatchObject({ host: 'other', bearer: false, status: 200 });
    await setBulkBehaviour(sb, null);
  });

  it('error files, a malformed line, transient download errors', async () => {
    await setBulkBehaviour(sb, {
      retryAfterSeconds: 0,
      errorFile: true,
      malformedLine: { type: 'Patient', afterLine: 3 },
      downloadErrors: 1,
    });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    expect(manifest.error).toHaveLength(1);
    const out = manifest.output[0] as { url: string; count: number };
    expect((await download(out.url, token)).status).toBe(503);
    const errors = await download((manifest.error[0] as { url: string }).url, token);
    expect(errors.lines.length).toBeGreaterThan(0);
    for (const l of errors.lines)
      expect((JSON.parse(l) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const file = await download(out.url, token);
    expect(file.lines).toHaveLength(out.count + 1);
    expect(() => JSON.parse(file.lines[3] as string)).toThrow();
    expect(file.lines.filter((_, i) => i !== 3).every((l) => JSON.parse(l) !== undefined)).toBe(true);
    await setBulkBehaviour(sb, null);
  });

  it('a manifest that is not JSON, and a kick-off refused 4xx with an OperationOutcome', async () => {
    await setBulkBehaviour(sb, { retryAfterSeconds: 0, preparePolls: 0, manifestNotJson: true });
    const k = await kickOff(sb, token, 'system', { _type: 'Patient' });
    const res = await fetch(k.statusUrl, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await expect(res.clone().json()).rejects.toThrow();
    await setBulkBehaviour(sb, { manifestNotJson: false, kickoffStatus: 422 });
    const refused = await kickOff(sb, token, 'system', {});
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ resourceType: 'OperationOutcome' });
    expect((await bulkLog(sb)).kickoffs.at(-1)?.status).toBe(422);
    await setBulkBehaviour(sb, null);
  });
});

describe('sandbox Bulk Data levels per personality', () => {
  it('Epic: Group $export only, no _since; the Group is a roster of the patients', async () => {
    const { sb, token } = await sandbox('epic', 200);
    expect((await kickOff(sb, token, 'system', {})).status).toBe(404);
    expect((await kickOff(sb, token, 'patient', {})).status).toBe(404);
    const meta = (await (await fetch(`${sb.fhirBaseUrl}/metadata`)).json()) as {
      rest: Array<{ operation: unknown[]; resource: Array<{ type: string; operation?: Array<{ name: string }> }> }>;
    };
    const group = meta.rest[0]?.resource.find((r) => r.type === 'Group');
    expect(group?.operation?.map((o) => o.name)).toEqual(['export']);
    expect(meta.rest[0]?.operation).toEqual([]);
    const groupId = (await adminJson<{ reads: { groupId: string } }>(sb, '/admin/read-paths')).reads.groupId;
    const roster = (await (
      await fetch(`${sb.fhirBaseUrl}/Group/${groupId}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { member: unknown[] };
    expect(roster.member).toHaveLength(20);
    expect((await kickOff(sb, token, 'group', { _since: '2024-01-01T00:00:00Z' }, groupId)).status).toBe(400);
    expect((await kickOff(sb, token, 'group', {}, 'not-the-group')).status).toBe(404);
    const k = await kickOff(sb, token, 'group', { _type: 'Patient' }, groupId);
    expect(k.status).toBe(202);
    const { manifest } = await pollUntilDone(sb, k.statusUrl, token);
    expect(manifest.output[0]?.count).toBe(20);
  });

  it('Oracle Health: Group and Patient $export with _since; MEDITECH: none', async () => {
    const oracle = await sandbox('oracle-health', 200);
    expect((await kickOff(oracle.sb, oracle.token, 'patient', { _since: '2024-01-01T00:00:05Z' })).status).toBe(202);
    expect((await kickOff(oracle.sb, oracle.token, 'system', {})).status).toBe(404);
    const meditech = await sandbox('meditech', 200);
    expect((await kickOff(meditech.sb, meditech.token, 'patient', {})).status).toBe(404);
  });
});
